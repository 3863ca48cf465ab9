"""What a lent GPU runs (benchmarks/gpu_all.sh) runs end to end in its CPU smoke mode: the SAC
benchmark's arms and the DMC study (three arms, a few steps), with outputs the device tool can
bring back (at most 8 files, none deeper than two folders)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_all_smoke_mode_returns_the_benchmark_and_the_study(tmp_path: Path) -> None:
    pytest.importorskip("dm_control")
    # the smoke mode's own wall-time budget (240 s) is for a quiet machine; under a loaded one the test
    # must not fail for being slow, so it gets the most the subprocess timeout below leaves
    out = tmp_path / "out"
    env = {**os.environ, "GPU_STUDY_RUNS": str(tmp_path / "runs"), "OUT": str(out), "GPU_STUDY_SECONDS": "570"}
    env.setdefault("PYTHON", sys.executable)  # the interpreter that has the test's dependencies
    earlier = tmp_path / "runs" / "gpu-study-smoke" / "none" / "seed0"  # a study of an earlier call
    earlier.mkdir(parents=True)
    (earlier / "model.zip").write_bytes(b"an earlier run")
    done = subprocess.run(
        ["bash", "benchmarks/gpu_all.sh", "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=780
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]

    returned = sorted(p.relative_to(out) for p in out.rglob("*") if p.is_file())
    assert [str(p) for p in returned] == ["gpu_all.tar.gz", "gpu_results.md", "gpu_study_summary.md"]
    sac_rows = (out / "gpu_results.md").read_text().split("| arm |", 1)[1].splitlines()[2:]
    assert len(sac_rows) >= 5 and not any("failed" in row for row in sac_rows), sac_rows

    with tarfile.open(out / "gpu_all.tar.gz") as everything:
        names = set(everything.getnames())
        summary = json.loads(everything.extractfile("./study/summary.json").read())  # type: ignore[union-attr]
        records = everything.extractfile("./study/runs.tar.gz").read()  # type: ignore[union-attr]
    assert {"./gpu_all.log", "./bench/gpu_results.md", "./study/learning_curves.png"} <= names, names
    assert summary["arm_order"] == ["none", "aug", "curl"]
    assert all(summary["arms"][arm]["n_done"] == 1 for arm in summary["arm_order"])
    with tarfile.open(fileobj=io.BytesIO(records)) as runs:  # each run's own records come back too
        run_files = set(runs.getnames())
    assert {f"./{arm}/seed0/evaluations.csv" for arm in summary["arm_order"]} <= run_files, run_files
    assert (earlier / "model.zip").read_bytes() == b"an earlier run", "an earlier study was deleted"
