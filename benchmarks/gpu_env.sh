# Sourced by gpu.sh and gpu_study.sh: make what gpu_prepare.sh packed usable on the lent GPU machine,
# which reaches no package registry. Does nothing where .whl/ and .gl/ are absent, or where the
# packages already import. Expects PY (the Python to use) and a log function.
if compgen -G ".gl/*.deb" >/dev/null && [[ $(id -u) == 0 ]] && command -v dpkg >/dev/null \
   && ! ldconfig -p 2>/dev/null | grep -q "libEGL.so.1 "; then
  for deb in .gl/*.deb; do dpkg -x "$deb" /; done
  ldconfig
  log "GL/EGL loaders unpacked from .gl"
fi
# the NVIDIA driver's EGL vendor file, where the loader does not find it by itself
EGL_VENDOR=/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json
if [[ -f $EGL_VENDOR && -z ${__EGL_VENDOR_LIBRARY_FILENAMES:-} ]]; then
  export __EGL_VENDOR_LIBRARY_FILENAMES=$EGL_VENDOR
fi
if compgen -G ".whl/*.whl" >/dev/null; then
  # one folder per Python version: the wheels are built for one (3.12, the GPU image's)
  SITE=${CURL_RL_GPU_SITE:-/tmp/curl_rl_site-$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')}
  # an earlier script of the same call (gpu_all.sh runs two) may have installed them already
  [[ :${PYTHONPATH:-}: == *":$SITE:"* ]] || export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
  if ! "$PY" -c "import importlib.util as u, sys; sys.exit(not all(u.find_spec(n) for n in sys.argv[1:]))" \
       gymnasium stable_baselines3 dm_control mujoco >/dev/null 2>&1; then
    if "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl; then
      log "installed $(ls .whl | wc -l) wheels from .whl into $SITE"
    else
      log "installing .whl failed"
    fi
  fi
fi
