# Sourced by run_study.sh and run_search.sh: writes DEST/COMMAND.md, the provenance of a result.
#   record_command DEST START_EPOCH END_EPOCH COMMIT DIRTY COMMAND...
record_command() {
  local dest="$1" start="$2" end="$3" commit="$4" dirty="$5"
  shift 5
  {
    echo "# Command"
    echo
    echo '```bash'
    echo "$*"
    echo '```'
    echo
    echo "Ran $(date -u -d @"$start" '+%Y-%m-%d %H:%M') UTC for $(( (end - start) / 60 )) min on: $(nproc) cores,"
    echo "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $commit ($dirty uncommitted paths at the start)."
  } > "$dest/COMMAND.md"
}
