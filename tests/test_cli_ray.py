"""``curl-rl compare --backend ray`` against a local Ray instance (needs the ``ray`` extra)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from curl_rl.envs.presets import ENV_PATH_VAR
from curl_rl.experiment.cli import main

ENVS = str(Path(__file__).with_name("envs"))  # the dots presets, found by name

# Starting Ray takes ~10 s on a 2-core machine; the suite keeps it out of the default run.
pytestmark = [pytest.mark.slow, pytest.mark.extra]


def test_compare_on_a_local_ray_instance(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'curl_rl[ray]'")
    monkeypatch.setenv(ENV_PATH_VAR, ENVS)
    monkeypatch.chdir(tmp_path)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        argv = ["compare", "--env", "dots", "--arms", "none,curl", "--seeds", "1", "--steps", "64", "--backend", "ray"]
        argv += ["--set", "probe.episodes=4", "--set", "probe.steps_per_episode=6", "--set", "eval.freq=32"]
        assert main(argv) == 0
        assert ray.is_initialized(), "compare must not shut down a Ray instance it did not start"
    finally:
        ray.shutdown()
    out = capsys.readouterr().out
    assert "on Ray (local)" in out and out.count(": done in ") == 2
    experiment = tmp_path / "runs" / "dots-ppo"
    for arm in ("none", "curl"):
        run_dir = experiment / arm / "seed0"
        assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
        for name in ("evaluations.csv", "aux_metrics.csv", "config.yaml", "model.zip"):
            assert (run_dir / name).is_file(), name
        assert list((run_dir / "tb").glob("*/events.out.tfevents.*"))
    summary = json.loads((experiment / "summary.json").read_text())
    assert summary["arms"]["curl"]["n_done"] == 1 and (experiment / "learning_curves.png").is_file()
