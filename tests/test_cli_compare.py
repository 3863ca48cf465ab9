"""``curl-rl compare`` end to end: parallel workers, a failing run, resume, summary, ``plot``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from curl_rl.experiment.cli import main

ENVS = str(Path(__file__).with_name("envs"))  # the dots presets, found by name
ARGV = [
    "compare",
    "--env",
    "crashing-dots.yaml",
    "--algo",
    "ppo",
    "--arms",
    "none,curl",
    "--seeds",
    "2",
    "--steps",
    "96",
    "--jobs",
    "2",
    "--set",
    "probe.episodes=4",
    "--set",
    "probe.steps_per_episode=6",
    "--set",
    "eval.freq=32",
]


def _status(run_dir: Path) -> dict:
    return json.loads((run_dir / "status.json").read_text())


def test_compare_runs_fails_one_resumes_and_plots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    # the dots task, whose training env seeded 1 raises while the flag file exists
    preset = yaml.safe_load((Path(ENVS) / "dots.yaml").read_text())
    preset["name"] = "dots"
    preset["env"]["kwargs"] |= {"crash_seeds": [1], "crash_flag": str(tmp_path / "crash")}
    Path("crashing-dots.yaml").write_text(yaml.safe_dump(preset))
    Path("crash").touch()
    experiment = tmp_path / "runs" / "dots-ppo"

    # first invocation: both seed1 runs raise inside their workers; the two others finish
    assert main(ARGV) == 1
    out = capsys.readouterr().out
    assert "curl/seed1: FAILED: RuntimeError: deliberate failure" in out
    assert out.count(": done in ") == 2
    assert "2 run(s) did not finish: none/seed1, curl/seed1" in out and "tensorboard --logdir" in out

    failed = _status(experiment / "curl" / "seed1")
    assert failed["status"] == "failed" and "Traceback" in failed["error"] and "deliberate failure" in failed["error"]
    for arm in ("none", "curl"):
        for seed in (0, 1):
            run_dir = experiment / arm / f"seed{seed}"
            if seed == 1:
                continue
            status = _status(run_dir)
            assert status["status"] == "done" and status["error"] is None
            assert (status["arm"], status["seed"], status["algo"], status["env"]) == (arm, seed, "ppo", "dots")
            assert status["total_timesteps"] == 96 and status["env_steps"] >= 96
            assert status["wall_time_s"] > 0 and status["steps_per_s"] > 0
            evals = (run_dir / "evaluations.csv").read_text().splitlines()
            assert evals[0] == "timesteps,mean_return,std_return,n_episodes"
            steps = [int(line.split(",")[0]) for line in evals[1:]]
            assert steps[0] == 0 and steps == sorted(steps) and steps[-1] >= 96 and 32 in steps
            header = (run_dir / "aux_metrics.csv").read_text().splitlines()[0].split(",")
            assert header[0] == "timesteps" and header[-1] == "aux/probe_r2"
            assert ("aux/loss" in header) == (arm == "curl")
            assert (run_dir / "config.yaml").is_file() and (run_dir / "model.zip").is_file()
            assert list((run_dir / "tb").glob("*/events.out.tfevents.*"))

    summary = json.loads((experiment / "summary.json").read_text())
    assert summary["arms"]["none"]["n_done"] == 1 and summary["arms"]["curl"]["n_done"] == 1
    assert summary["arms"]["curl"]["n_failed"] == 1
    assert sorted((f["arm"], f["seed"]) for f in summary["failed_runs"]) == [("curl", 1), ("none", 1)]
    assert (experiment / "summary.md").is_file()
    assert (experiment / "learning_curves.png").stat().st_size > 1000
    assert (experiment / "aux_metrics.png").stat().st_size > 1000
    assert summary["arms"]["curl"]["probe_r2"] is not None

    # the same command again resumes: finished runs are skipped, the failed one is redone
    Path("crash").unlink()
    finished_before = (experiment / "none" / "seed0" / "status.json").read_text()
    assert main(ARGV) == 0
    out = capsys.readouterr().out
    assert "(resuming)" in out and "skipping 2 finished run(s)" in out and "redoing 2 unfinished run(s)" in out
    assert out.count(": done in ") == 2
    assert (experiment / "none" / "seed0" / "status.json").read_text() == finished_before
    assert _status(experiment / "curl" / "seed1")["status"] == "done"
    kept = list((experiment / "curl" / ".attempts").iterdir())
    assert len(kept) == 1 and _status(kept[0])["status"] == "failed"
    summary = json.loads((experiment / "summary.json").read_text())
    assert summary["arms"]["curl"]["n_done"] == 2 and summary["arms"]["none"]["n_done"] == 2
    assert not summary["failed_runs"]

    # plot rebuilds everything from disk (for one experiment, or a folder of experiments)
    for name in ("summary.json", "summary.md", "learning_curves.png", "aux_metrics.png"):
        (experiment / name).unlink()
    assert main(["plot", str(experiment)]) == 0
    assert json.loads((experiment / "summary.json").read_text())["arms"]["curl"]["n_done"] == 2
    (experiment / "summary.md").unlink()
    assert main(["plot", str(tmp_path / "runs")]) == 0
    assert (experiment / "summary.md").is_file() and (experiment / "learning_curves.png").is_file()
    assert "| `curl` |" in capsys.readouterr().out
