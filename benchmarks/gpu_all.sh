#!/usr/bin/env bash
# Everything a lent GPU should run, in one command that fits a 15-minute device loan (start-up
# included): the benchmark (gpu.sh) and the DMC study (gpu_study.sh), 270 s each, outputs in $OUT.
#
#   bash benchmarks/gpu_all.sh
#
# The GPU machine reaches no package registry and lacks gymnasium, SB3, dm_control and MuJoCo: run
# `bash benchmarks/gpu_prepare.sh` here first, then in the session
#   run(command="bash benchmarks/gpu_all.sh", carry=[".whl", ".gl"], timeout_s=600)
set -uo pipefail
cd "$(dirname "$0")/.."
GPU_BENCH_SECONDS=${GPU_BENCH_SECONDS:-270} bash benchmarks/gpu.sh
GPU_STUDY_SECONDS=${GPU_STUDY_SECONDS:-270} bash benchmarks/gpu_study.sh
