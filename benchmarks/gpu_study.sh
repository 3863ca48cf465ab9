#!/usr/bin/env bash
# CURL in its own setting, sized for one lent GPU: CurlSAC from pixels on DMC cartpole swing-up,
# arms none / aug / curl, CURL's SAC update (the preset's sac section) at batch 512, several runs
# at once on the one GPU, all inside a wall-time budget (default 300 s, so that gpu.sh and this
# script fit one 15-minute device loan together; see benchmarks/gpu_all.sh).
#
#   bash benchmarks/gpu_study.sh            # on the GPU machine; results in $OUT (or runs/)
#   bash benchmarks/gpu_study.sh --smoke    # a few steps on the CPU (the test suite runs this)
#
# Every arm sees the same 84x84 frames: augmentation is DrQ's shift +-4 px (pad and crop back to
# 84) rather than CURL's 100 -> 84 crop, so `none` needs no centre crop to match the others. The
# budget that fits is far below DMC-100k; the summary says what was run, and nothing here is a
# reproduction of CURL's table.
#
# Environment: PYTHON (default .venv/bin/python if present, else python3), OUT (where summaries and
# figures go), GPU_STUDY_SECONDS (wall-time budget), GPU_STUDY_STEPS (env steps per run, default
# 6000), GPU_STUDY_SEEDS (default 2), GPU_STUDY_JOBS (runs at once, default 6).
set -uo pipefail
cd "$(dirname "$0")/.."
START=$(date +%s)
SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1
PY=${PYTHON:-$([[ -x .venv/bin/python ]] && echo .venv/bin/python || echo python3)}
export MUJOCO_GL=${MUJOCO_GL:-egl} LP_NUM_THREADS=1
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
log() { echo "[gpu_study.sh $(( $(date +%s) - START ))s] $*"; }
# what benchmarks/gpu_prepare.sh packed here (.whl, .gl): the lent GPU machine reaches no registry
source benchmarks/gpu_env.sh

if [[ $SMOKE == 1 ]]; then
  BUDGET=${GPU_STUDY_SECONDS:-240}
  STEPS=48 SEEDS=1 JOBS=1 DEVICE=cpu
  EXTRA=(--set algo.learning_starts=24 --set algo.batch_size=8 --set algo.buffer_size=200
         --set eval.freq=48 --set eval.n_episodes=1 --set probe.enabled=false)
  NAME=gpu-study-smoke
else
  BUDGET=${GPU_STUDY_SECONDS:-300}
  STEPS=${GPU_STUDY_STEPS:-6000} SEEDS=${GPU_STUDY_SEEDS:-2} JOBS=${GPU_STUDY_JOBS:-6} DEVICE=cuda
  EXTRA=(--set algo.batch_size=512 --set eval.freq=1500 --set eval.n_episodes=3)
  NAME=gpu-study-dmc-cartpole-sac
fi
RUNS_DIR=${GPU_STUDY_RUNS:-runs}
# a fresh study each time (the budget is for this loan), in a folder of its own: an earlier
# run's study is never deleted or continued
NAME="$NAME-$(date -u +%Y%m%d-%H%M%S)"
while [[ -e "$RUNS_DIR/$NAME" ]]; do NAME="$NAME-x"; done
log "$SEEDS seed(s) x 3 arms, $STEPS env steps each, $JOBS at once on $DEVICE, budget ${BUDGET}s"
# the summary step needs a few seconds: the runs get the budget minus a margin
timeout --kill-after=10 $(( BUDGET - 20 )) "$PY" -m curl_rl compare --env dmc-cartpole-swingup --algo sac \
  --arms none,aug,curl --seeds "$SEEDS" --steps "$STEPS" --jobs "$JOBS" --device "$DEVICE" \
  --set aux.augment=shift "${EXTRA[@]}" --name "$NAME" --out "$RUNS_DIR"
status=$?
PLOT=()
if (( status != 0 )); then
  log "compare exited with $status (a timeout leaves the unfinished runs out of the statistics; their curves are drawn)"
  PLOT=(--include-unfinished)
fi
# summarise whatever finished (compare writes the summary itself when it is not cut short)
"$PY" -m curl_rl plot ${PLOT[@]+"${PLOT[@]}"} "$RUNS_DIR/$NAME" >/dev/null 2>&1 || log "plot exited with $?"
if [[ -n "${OUT:-}" ]]; then
  mkdir -p "$OUT"
  cp "$RUNS_DIR/$NAME"/summary.md "$RUNS_DIR/$NAME"/summary.json "$OUT"/ 2>/dev/null || log "no summary"
  cp "$RUNS_DIR/$NAME"/*.png "$OUT"/ 2>/dev/null || true
  # each run's small records (evaluations, status, config), so a run cut short by the budget still
  # comes back with what it measured; one archive, since the device tool returns few files
  (cd "$RUNS_DIR/$NAME" && find . -path "./*/seed*/*" \( -name evaluations.csv -o -name status.json \
     -o -name config.yaml -o -name aux_metrics.csv \) -print0 | tar --null -czf "$OUT/runs.tar.gz" -T -) \
    || log "could not archive the runs' records"
fi
[[ -f "$RUNS_DIR/$NAME/summary.md" ]] && cat "$RUNS_DIR/$NAME/summary.md"
log "done"
[[ -f "$RUNS_DIR/$NAME/summary.json" ]]
