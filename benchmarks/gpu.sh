#!/usr/bin/env bash
# GPU benchmark of curl_rl, self-contained, under 8 minutes on one CUDA GPU (sized for an H200).
#
#   bash benchmarks/gpu.sh            # full run; results in $OUT (if set) and on stdout
#   bash benchmarks/gpu.sh --smoke    # a few updates, works on CPU (synthetic env without dm_control)
#
# 1. Python: uses $PYTHON (default python3). If curl_rl's dependencies and dm_control already
#    import, nothing is installed. Otherwise a venv .venv-gpu is made with --system-site-packages
#    (so the machine's own CUDA torch stays visible) and `pip install -e ".[dmc]"` runs in it; torch
#    is installed only when `import torch` fails. Offline machines (the lent GPU machine is one):
#    run `bash benchmarks/gpu_prepare.sh` here first and carry .whl and .gl (gpu_env.sh installs
#    them), or put wheels in shared/wheels (or $WHEELHOUSE) for pip to find. Without dm_control
#    the SAC benchmark falls back to a synthetic pixel env and says so in its table.
# 2. benchmarks/gpu_sac.py: plain SAC, CurlSAC("aug"), CurlSAC("curl") and curl with the
#    channels_last / bf16 / fused Adam switches on DMC cartpole swingup (CURL_PAPER_SAC, batch
#    512): updates/s, env steps/s, peak GPU memory, GPU utilisation -> $OUT/gpu_results.md.
# 3. benchmarks/encoder_efficiency.py at batch 512 (switch arms incl. torch.compile and bf16) and
#    benchmarks/augmentation.py (on-device crop/shift), each in the time that is left.
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
TOTAL=${GPU_BENCH_SECONDS:-465}   # the whole script, install included; the issue allows 480
SMOKE=0
EXTRA=()
for arg in "$@"; do
  if [[ "$arg" == "--smoke" ]]; then SMOKE=1; else EXTRA+=("$arg"); fi
done
elapsed() { echo $(( $(date +%s) - START )); }
left() { echo $(( TOTAL - $(elapsed) )); }
OUT_DIR=${OUT:-}
log() { echo "[gpu.sh $(elapsed)s] $*"; }

PY=${PYTHON:-python3}
export MUJOCO_GL=${MUJOCO_GL:-egl}
# the same allocator settings for every arm (docs/perf_notes.md: it matters on CPU)
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
export PIP_DEFAULT_TIMEOUT=${PIP_DEFAULT_TIMEOUT:-15} PIP_DISABLE_PIP_VERSION_CHECK=1
WHEELHOUSE=${WHEELHOUSE:-shared/wheels}
if [[ -d "$WHEELHOUSE" ]]; then export PIP_FIND_LINKS="$WHEELHOUSE"; fi

have_deps() { "$1" -c "import torch, gymnasium, stable_baselines3, yaml, curl_rl" >/dev/null 2>&1; }
have_dmc() { "$1" -c "import dm_control.suite, mujoco" >/dev/null 2>&1; }

# -- 1. environment -------------------------------------------------------------------------------
# what benchmarks/gpu_prepare.sh packed here (.whl, .gl): the lent GPU machine reaches no registry
source benchmarks/gpu_env.sh
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if have_deps "$PY" && { have_dmc "$PY" || [[ $SMOKE == 1 ]]; }; then
  log "using $PY as is (dependencies import)"
else
  if [[ ! -x .venv-gpu/bin/python ]]; then
    log "creating .venv-gpu (system site packages visible, for the machine's torch)"
    "$PY" -m venv --system-site-packages .venv-gpu || { log "venv creation failed"; exit 1; }
  fi
  PY=.venv-gpu/bin/python
  if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    log "torch missing: installing it"
    timeout 240 "$PY" -m pip install --retries 1 torch || log "torch install failed"
  fi
  log "pip install -e .[dmc]"
  timeout 150 "$PY" -m pip install --retries 1 -q -e ".[dmc]" \
    || timeout 90 "$PY" -m pip install --retries 1 -q --no-build-isolation -e ".[dmc]" \
    || { log "the [dmc] extra did not install; trying the core package alone";
         timeout 60 "$PY" -m pip install --retries 1 -q --no-build-isolation -e . \
         || log "curl_rl did not install; relying on PYTHONPATH"; }
  if ! have_deps "$PY"; then
    log "FATAL: torch/gymnasium/stable-baselines3 do not import; put wheels in $WHEELHOUSE"
    exit 2
  fi
fi
"$PY" -c "import torch; print('[gpu.sh] torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
have_dmc "$PY" && log "dm_control imports" || log "dm_control does not import: synthetic env"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

save() { if [[ -n "$OUT_DIR" ]]; then mkdir -p "$OUT_DIR"; tee "$OUT_DIR/$1"; else cat; fi; }

# -- smoke: the SAC script only, tiny --------------------------------------------------------------
if [[ $SMOKE == 1 ]]; then
  "$PY" -m benchmarks.gpu_sac --smoke ${EXTRA[@]+"${EXTRA[@]}"}
  exit $?
fi

# -- 2. SAC arms: ~60% of what is left -------------------------------------------------------------
ARMS=(sac aug curl curl+cl curl+bf16 curl+fused)
SAC_S=$(( $(left) * 60 / 100 ))
# per arm: its update phase, after ~15 s of building and 1000 random steps
ARM_S=$(( SAC_S / ${#ARMS[@]} - 15 ))
(( ARM_S < 10 )) && ARM_S=10
log "gpu_sac: ${#ARMS[@]} arms, update phase <= ${ARM_S}s each, hard limit ${SAC_S}s"
timeout --kill-after=10 "$SAC_S" "$PY" -m benchmarks.gpu_sac --arms "${ARMS[@]}" --updates 5000 \
  --arm-seconds "$ARM_S" ${EXTRA[@]+"${EXTRA[@]}"} || log "gpu_sac exited with $?"

# -- 3. encoder efficiency (batch 512) and augmentation, in what is left ---------------------------
# eager arms first (quick, always wanted), then the compile arms if there is time for compilation
ENC_S=$(( $(left) - 30 ))
if (( ENC_S > 25 )); then
  log "encoder_efficiency (eager arms), limit ${ENC_S}s"
  timeout --kill-after=5 "$ENC_S" "$PY" -m benchmarks.encoder_efficiency --batches 512 --rounds 5 --reps 10 \
    --allocator-rounds 0 --arms channels_last bf16 bf16+channels_last 2>&1 | save encoder_gpu.md \
    || log "encoder_efficiency exited with $?"
fi
ENC_S=$(( $(left) - 30 ))
if (( ENC_S > 60 )); then
  log "encoder_efficiency (compile arms), limit ${ENC_S}s"
  timeout --kill-after=5 "$ENC_S" "$PY" -m benchmarks.encoder_efficiency --batches 512 --rounds 5 --reps 10 \
    --allocator-rounds 0 --arms compile compile+channels_last 2>&1 | save encoder_compile_gpu.md \
    || log "encoder_efficiency (compile) exited with $?"
else
  log "no time left for the compile arms"
fi
AUG_S=$(( $(left) - 3 ))
if (( AUG_S > 10 )); then
  log "augmentation, limit ${AUG_S}s"
  timeout --kill-after=3 "$AUG_S" "$PY" -m benchmarks.augmentation --rounds 5 --reps 3 2>&1 | save augmentation_gpu.md \
    || log "augmentation exited with $?"
fi
log "done"
