"""The GPU benchmark's SAC script runs every arm in its CPU smoke mode.

Its first real run will be on a lent GPU with minutes to spare, so an arm that cannot even be
built must show up here, not there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# every arm but torch.compile's (20 s of compilation per graph; the smoke mode leaves it out too)
ARMS = ["sac", "aug", "curl", "curl+cl", "curl+bf16", "curl+cl+bf16", "curl+fused"]


def test_gpu_sac_smoke_runs_every_arm(tmp_path: Path) -> None:
    env = {**os.environ, "OUT": str(tmp_path)}
    cmd = [sys.executable, "-m", "benchmarks.gpu_sac", "--smoke", "--env", "synthetic", "--arms", *ARMS]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    table = (tmp_path / "gpu_results.md").read_text().split("| arm |", 1)[1].splitlines()[2:]
    by_arm = {row.split("|")[1].strip(): row for row in table if row.startswith("| ")}
    assert sorted(by_arm) == sorted(ARMS)
    for arm, row in by_arm.items():
        assert "failed" not in row, row
        assert row.split("|")[2].strip() == "4", f"{arm} did not run its 4 updates: {row}"
