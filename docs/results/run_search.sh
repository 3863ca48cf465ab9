#!/usr/bin/env bash
# A fair one-parameter search: runs `curl-rl compare` once per candidate value of one --set key
# (same arms, same held-out seeds, same budget for every value), then ranks the values by one
# criterion fixed in advance (search_table.py) and writes docs/results/<search>/. Nothing there is
# written by hand. Use seeds disjoint from the studies' (--first-seed 100) so that the studies that
# use the chosen value are not scored on the seeds it was chosen on.
#
#   bash docs/results/run_search.sh SEARCH KEY V1,V2,... [--eligible V1,...] -- <curl-rl compare arguments>
#   bash docs/results/run_search.sh aux-weight-distractor-easy aux.weight 0.1,0.3,1 -- \
#       --env distractor-easy --algo ppo --arms curl,curl+future --seeds 3 --first-seed 100
set -euo pipefail
cd "$(dirname "$0")/../.."
source docs/results/record_command.sh
search="$1" key="$2" values="$3"; shift 3
eligible=()
if [[ "${1:-}" == "--eligible" ]]; then eligible=(--eligible "$2"); shift 2; fi
[[ "${1:-}" == "--" ]] && shift
CURL_RL="${CURL_RL:-.venv/bin/curl-rl}"
PYTHON="${PYTHON:-.venv/bin/python}"
export MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=68719476736
start=$(date -u +%s)
# the code that runs is the code at the start (workers import it then), not at the end
commit=$(git rev-parse --short HEAD) dirty=$(git status --porcelain | wc -l)
dest="docs/results/$search"
mkdir -p "$dest"
summaries=()
IFS=, read -r -a candidates <<< "$values"
for value in "${candidates[@]}"; do
  name="search-$search-$value"
  "$CURL_RL" compare "$@" --set "$key=$value" --name "$name" --out runs
  cp "runs/$name/summary.json" "$dest/summary-$value.json"
  summaries+=("$value=$dest/summary-$value.json")
done
"$PYTHON" docs/results/search_table.py --key "$key" --out "$dest" "${eligible[@]}" "${summaries[@]}"
end=$(date -u +%s)
record_command "$dest" "$start" "$end" "$commit" "$dirty" bash docs/results/run_search.sh "$search" "$key" "$values" "${eligible[@]}" -- "$@"
echo "results in $dest"
