#!/usr/bin/env bash
# Run HERE, before a GPU session, on a machine that reaches PyPI and Debian's archive: packs what the
# lent GPU machine lacks into two git-ignored folders that the device tool can carry, since that
# machine reaches no package registry. Its image has python3 3.12 with CUDA PyTorch, numpy, scipy,
# tensorboard, matplotlib, pyyaml, ... (../.library/device/KINDS.md), but no gymnasium,
# stable-baselines3, dm_control or MuJoCo.
#
#   bash benchmarks/gpu_prepare.sh        # writes .whl/ and .gl/ (about 45 MiB)
#
# .whl/  wheels for CPython 3.12 on x86-64 Linux, at the versions this checkout's .venv runs
#        (pins below otherwise): gymnasium, stable-baselines3, dm_control (trimmed of the assets of
#        tasks we never build: 54 -> 5 MiB), mujoco, and what those need beyond the image.
# .gl/   Debian's GL/EGL loader packages, for MuJoCo's headless rendering (MUJOCO_GL=egl).
#
# Then, in the GPU session, one call (gpu.sh and gpu_study.sh install both through gpu_env.sh):
#   run(command="bash benchmarks/gpu_all.sh", carry=[".whl", ".gl"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}

# the versions our tests ran with, where this checkout has them installed
version() {
  "$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$1" 2>/dev/null || echo "$2"
}
WHEELS=(
  "gymnasium==$(version gymnasium 1.4.0)"
  "farama-notifications==$(version farama-notifications 0.0.6)"
  "stable-baselines3==$(version stable-baselines3 2.9.2)"
  "dm-control==$(version dm-control 1.0.50)"
  "dm-env==$(version dm-env 1.6)"
  "dm-tree==$(version dm-tree 0.1.10)"
  "labmaze==$(version labmaze 1.0.6)"
  "mujoco==$(version mujoco 3.17.0)"
  "glfw==$(version glfw 2.11.0)"
  "pyopengl==$(version pyopengl 3.1.10)"
)
rm -rf .whl.new && mkdir -p .whl.new
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
  --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 --platform any \
  -d .whl.new "${WHEELS[@]}"
"$PY" -m benchmarks.trim_wheel .whl.new/dm_control-*.whl --drop dm_control/locomotion/ \
  --drop dm_control/suite/dog_assets/ --drop dm_control/suite/all_domains.png --drop dm_control/blender/
rm -f .whl.new/*.full
rm -rf .whl && mv .whl.new .whl

rm -rf .gl.new && mkdir -p .gl.new /tmp/curl_rl_apt/partial
apt_opts=(-oAPT::Architecture=amd64 -oAPT::Architectures=amd64 -oDir::State::Lists=/tmp/curl_rl_apt)
apt-get "${apt_opts[@]}" update -qq
(cd .gl.new && apt-get "${apt_opts[@]}" download -qq libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 2>/dev/null)
rm -rf .gl && mv .gl.new .gl

echo "packed: $(du -sh .whl | cut -f1) in .whl ($(ls .whl | wc -l) wheels), $(du -sh .gl | cut -f1) in .gl"
echo "the working tree that travels may hold 64 MiB in all; tracked files: $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) bytes"
echo 'in the GPU session: run(command="bash benchmarks/gpu_all.sh", carry=[".whl", ".gl"], timeout_s=600)'
