"""docs/results/run_study.sh: a study that grows by seeds across sessions keeps every run and its provenance."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results"

#: stands in for ``curl-rl compare``: records which finished runs it found, then "runs" seed N-1
FAKE_COMPARE = """#!/usr/bin/env bash
set -euo pipefail
seeds=1
while [[ $# -gt 0 ]]; do
  case "$1" in --seeds) seeds="$2"; shift 2;; --name) name="$2"; shift 2;; --out) out="$2"; shift 2;; *) shift;; esac
done
exp="$out/$name"
mkdir -p "$exp"
ls "$exp" > "$exp/found_before_compare.txt"
[[ -f "$exp/experiment.yaml" ]] || echo "config: {}" > "$exp/experiment.yaml"
seed=$((seeds - 1))
mkdir -p "$exp/curl/seed$seed"
echo '{"status": "done"}' > "$exp/curl/seed$seed/status.json"
echo "return,$seed" > "$exp/curl/seed$seed/evaluations.csv"
echo "| curl | $seeds seeds |" > "$exp/summary.md"
echo "{}" > "$exp/summary.json"
"""


def _run_study(tree: Path, seeds: int) -> None:
    subprocess.run(
        ["bash", "docs/results/run_study.sh", "toy", "--", "--env", "toy", "--seeds", str(seeds)],
        cwd=tree,
        env={**os.environ, "CURL_RL": str(tree / "fake-curl-rl")},
        check=True,
        capture_output=True,
    )
    subprocess.run(["git", "add", "-A"], cwd=tree, check=True)
    subprocess.run(["git", "commit", "-qm", f"seeds {seeds}"], cwd=tree, check=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_continued_study_reuses_the_committed_runs_and_keeps_their_provenance(tmp_path: Path) -> None:
    (tmp_path / "docs" / "results").mkdir(parents=True)
    for script in ("run_study.sh", "record_command.sh"):
        shutil.copy(RESULTS / script, tmp_path / "docs" / "results" / script)
    fake = tmp_path / "fake-curl-rl"
    fake.write_text(FAKE_COMPARE)
    fake.chmod(0o755)
    (tmp_path / ".gitignore").write_text("runs/\n")
    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    subprocess.run(["git", "config", "user.name", "t"], cwd=tmp_path, check=True)
    subprocess.run(["git", "config", "user.email", "t@t"], cwd=tmp_path, check=True)
    subprocess.run(["git", "add", "-A"], cwd=tmp_path, check=True)
    subprocess.run(["git", "commit", "-qm", "scripts"], cwd=tmp_path, check=True)
    first_commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout.strip()
    dest = tmp_path / "docs" / "results" / "toy"

    _run_study(tmp_path, seeds=1)
    first = (dest / "COMMAND.md").read_text()
    assert "--seeds 1" in first and first_commit in first and "Earlier invocation" not in first

    shutil.rmtree(tmp_path / "runs")  # a new session: the run folders are gone, the commit is not
    _run_study(tmp_path, seeds=2)
    found = (tmp_path / "runs" / "study-toy" / "found_before_compare.txt").read_text().split()
    assert "curl" in found, "the committed seed-0 run was not put back before compare"
    assert (dest / "runs" / "curl" / "seed0" / "evaluations.csv").is_file()
    assert (dest / "runs" / "curl" / "seed1" / "evaluations.csv").is_file()
    command = (dest / "COMMAND.md").read_text()
    newest, _, earlier = command.partition("## Earlier invocation")
    assert "--seeds 2" in newest and "--seeds 1" not in newest
    assert "--seeds 1" in earlier and first_commit in earlier, "the reused run's provenance was dropped"
