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
"$CURL_RL" compare "$@" --name "study-$study" --out runs
end=$(date -u +%s)
dest="docs/results/$study"
mkdir -p "$dest"
cp "runs/study-$study"/summary.md "runs/study-$study"/summary.json "$dest"/
cp "runs/study-$study"/*.png "$dest"/ 2>/dev/null || true
record_command "$dest" "$start" "$end" "$commit" "$dirty" bash docs/results/run_study.sh "$study" -- "$@"
echo "results in $dest"
