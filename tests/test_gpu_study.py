"""The GPU study script runs end to end in its CPU smoke mode (DMC, three arms, a few steps)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_study_smoke_mode_writes_a_summary(tmp_path: Path) -> None:
    pytest.importorskip("dm_control")
    # the smoke mode's own wall-time budget (240 s) is for a quiet machine; under a loaded one the test
    # must not fail for being slow, so it gets the most the subprocess timeout below leaves
    env = {
        **os.environ,
        "GPU_STUDY_RUNS": str(tmp_path / "runs"),
        "OUT": str(tmp_path / "out"),
        "GPU_STUDY_SECONDS": "570",
    }
    earlier = tmp_path / "runs" / "gpu-study-smoke" / "none" / "seed0"  # a study of an earlier call
    earlier.mkdir(parents=True)
    (earlier / "model.zip").write_bytes(b"an earlier run")
    done = subprocess.run(
        ["bash", "benchmarks/gpu_study.sh", "--smoke"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=660
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["arm_order"] == ["none", "aug", "curl"]
    assert all(summary["arms"][arm]["n_done"] == 1 for arm in summary["arm_order"])
    assert (tmp_path / "out" / "learning_curves.png").stat().st_size > 0
    for arm in summary["arm_order"]:  # each run's own records come back too
        assert (tmp_path / "out" / "runs" / arm / "seed0" / "evaluations.csv").stat().st_size > 0
    assert (earlier / "model.zip").read_bytes() == b"an earlier run", "an earlier study was deleted"
