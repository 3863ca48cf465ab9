#!/usr/bin/env bash
# Runs one sample-efficiency study with `curl-rl compare` and copies what it produced (summary
# tables, JSON, figures) into docs/results/<study>/ together with the exact command. Nothing in
# docs/results/<study>/ is written by hand.
#
#   bash docs/results/run_study.sh STUDY -- <curl-rl compare arguments>
#   bash docs/results/run_study.sh distractor-easy-ppo -- --env distractor-easy --algo ppo \
#       --arms none,aug,curl,curl+future --seeds 5 --preset-budget quick
set -euo pipefail
cd "$(dirname "$0")/../.."
source docs/results/record_command.sh
study="$1"; shift
[[ "${1:-}" == "--" ]] && shift
CURL_RL="${CURL_RL:-.venv/bin/curl-rl}"
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
start=$(date -u +%s)
# the code that runs is the code at the start (workers import it then), not at the end
commit=$(git rev-parse --short HEAD) dirty=$(git status --porcelain | wc -l)
dest="docs/results/$study"
exp="runs/study-$study"
# Run folders do not survive between sessions here, so each finished run's small result files
# (no model, checkpoints or events) are committed under $dest/runs/ and put back before compare,
# which then skips those runs as done and runs only the missing seeds (e.g. a larger --seeds).
# Their provenance (commit, machine, date) stays in COMMAND.md below the new invocation's.
earlier=""
if [[ -d "$dest/runs" ]]; then
    mkdir -p "$exp"
    cp -rn "$dest/runs/." "$exp/"
    if [[ -f "$dest/COMMAND.md" ]]; then
        earlier=$(sed '1s/^# Command$/## Earlier invocation (its finished runs were reused, not rerun)/' "$dest/COMMAND.md")
    fi
fi
"$CURL_RL" compare "$@" --name "study-$study" --out runs
end=$(date -u +%s)
mkdir -p "$dest"
cp "$exp"/summary.md "$exp"/summary.json "$dest"/
cp "$exp"/*.png "$dest"/ 2>/dev/null || true
mkdir -p "$dest/runs"
cp "$exp"/experiment.yaml "$dest/runs/"  # compare refuses a folder of runs without it
for status in "$exp"/*/seed*/status.json; do
    run=$(dirname "$status")
    grep -Eq '"status": *"done"' "$status" || continue
    keep="$dest/runs/${run#"$exp"/}"
    mkdir -p "$keep"
    for f in status.json config.yaml evaluations.csv aux_metrics.csv; do
        if [[ -f "$run/$f" ]]; then cp "$run/$f" "$keep/"; fi
    done
done
record_command "$dest" "$start" "$end" "$commit" "$dirty" bash docs/results/run_study.sh "$study" -- "$@"
if [[ -n "$earlier" ]]; then printf '\n%s\n' "$earlier" >> "$dest/COMMAND.md"; fi
echo "results in $dest"
