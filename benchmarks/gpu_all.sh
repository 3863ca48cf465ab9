#!/usr/bin/env bash
# Everything a lent GPU should run, in one command that fits a 15-minute device loan (start-up
# included): the benchmark (gpu.sh) and the DMC study (gpu_study.sh), 270 s each, outputs in $OUT.
#
#   bash benchmarks/gpu_all.sh
#
# The GPU machine reaches no package registry and lacks gymnasium, SB3, dm_control and MuJoCo: run
# `bash benchmarks/gpu_prepare.sh` here first, then in the session
#   run(command="bash benchmarks/gpu_all.sh", carry=[".whl", ".gl"], timeout_s=600)
#
# The device tool brings back at most 8 files from $OUT, none deeper than two folders, so the two
# scripts write into a staging folder and $OUT gets three files: gpu_all.tar.gz (everything, the
# log included), gpu_results.md (the SAC arms) and gpu_study_summary.md.
#
#   bash benchmarks/gpu_all.sh --smoke    # both scripts' CPU smoke modes (the test suite runs this)
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1  # the log shows each step as it happens, also through tee
SMOKE=()
[[ "${1:-}" == "--smoke" ]] && SMOKE=(--smoke)
FINAL_OUT=${OUT:-}
STAGE=$(mktemp -d /tmp/gpu_all.XXXXXX)
{
  OUT=$STAGE/bench GPU_BENCH_SECONDS=${GPU_BENCH_SECONDS:-270} bash benchmarks/gpu.sh ${SMOKE[@]+"${SMOKE[@]}"}
  OUT=$STAGE/study GPU_STUDY_SECONDS=${GPU_STUDY_SECONDS:-270} bash benchmarks/gpu_study.sh ${SMOKE[@]+"${SMOKE[@]}"}
} 2>&1 | tee "$STAGE/gpu_all.log"
if [[ -n $FINAL_OUT ]]; then
  mkdir -p "$FINAL_OUT"
  tar -czf "$FINAL_OUT/gpu_all.tar.gz" -C "$STAGE" .
  cp "$STAGE/bench/gpu_results.md" "$FINAL_OUT/" 2>/dev/null || echo "[gpu_all.sh] no gpu_results.md"
  cp "$STAGE/study/summary.md" "$FINAL_OUT/gpu_study_summary.md" 2>/dev/null || echo "[gpu_all.sh] no study summary"
  echo "[gpu_all.sh] outputs: $(ls "$FINAL_OUT" | tr '\n' ' ')"
fi
