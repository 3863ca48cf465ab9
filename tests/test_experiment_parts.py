"""Small parts of the runner: the aux CSV writer, image grids, status files, job counts."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import curl_rl.experiment.compare as compare
from curl_rl.envs.presets import ENV_PATH_VAR
from curl_rl.experiment.callbacks import AuxMetricsWriter, encode_gif, flatten_hparams, image_grid, last_rgb_frame
from curl_rl.experiment.config import resolve_experiment
from curl_rl.experiment.run import read_status, write_status

ENVS = str(Path(__file__).with_name("envs"))  # the dots presets, found by name


def test_aux_metrics_writer(tmp_path: Path) -> None:
    path = tmp_path / "aux_metrics.csv"
    writer = AuxMetricsWriter(path, ["aux/loss", "aux/probe_r2"])
    writer.write({"train/loss": 1.0}, {}, step=10)  # nothing of ours: no row
    writer.write({"aux/loss": 0.5, "aux/other": 3.0}, {}, step=20)
    writer.write({"aux/probe_r2": float("nan"), "aux/loss": np.float32(0.25)}, {}, step=30)
    writer.close()
    assert path.read_text().splitlines() == ["timesteps,aux/loss,aux/probe_r2", "20,0.5,", "30,0.25,"]
    again = AuxMetricsWriter(path, ["aux/loss", "aux/probe_r2"])  # same header: appends
    again.write({"aux/probe_r2": 0.75}, {}, step=40)
    again.close()
    assert path.read_text().splitlines()[-1] == "40,,0.75"
    with pytest.raises(ValueError, match="cannot append"):
        AuxMetricsWriter(path, ["aux/loss"])


def test_image_grid_and_last_frame() -> None:
    tiles = [[np.full((3, 4, 5), 10 * (i + j), np.uint8) for j in range(2)] for i in range(3)]
    grid = image_grid(tiles, pad=1)
    assert grid.shape == (3, 3 * 5 + 1, 2 * 6 + 1) and grid.dtype == np.uint8
    assert grid[0, 1, 1] == 0 and grid[0, 1 + 5, 1 + 6] == 20 and grid[0, 0, 0] == 255
    rgb_stack = torch.arange(2 * 9 * 2 * 2, dtype=torch.uint8).reshape(2, 9, 2, 2)
    assert torch.equal(last_rgb_frame(rgb_stack), rgb_stack[:, 6:9])
    gray_stack = torch.arange(2 * 4 * 2 * 2, dtype=torch.uint8).reshape(2, 4, 2, 2)
    out = last_rgb_frame(gray_stack)
    assert out.shape == (2, 3, 2, 2) and torch.equal(out[:, 1], gray_stack[:, 3])


def test_gif_and_hparams() -> None:
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (0, 120, 240)]
    gif = Image.open(io.BytesIO(encode_gif(frames, fps=10)))
    assert gif.format == "GIF" and gif.n_frames == 3
    flat = flatten_hparams({"arm": "curl", "algo": {"gamma": 0.9, "net": [64, 64], "x": None}})
    assert flat == {"arm": "curl", "algo/gamma": 0.9, "algo/net": "64,64", "algo/x": "None"}


def test_status_file_is_replaced_atomically_and_merged(tmp_path: Path) -> None:
    write_status(tmp_path, status="running", arm="curl", seed=1)
    write_status(tmp_path, status="done", env_steps=100)
    data = read_status(tmp_path)
    assert data is not None and data["status"] == "done" and data["arm"] == "curl" and data["env_steps"] == 100
    assert [p.name for p in tmp_path.iterdir()] == ["status.json"]
    (tmp_path / "status.json").write_text('{"status": "do')  # a torn file reads as missing
    assert read_status(tmp_path) is None
    assert json.loads(json.dumps(write_status(tmp_path, status="failed")))["status"] == "failed"


def test_default_jobs_respects_cpus_runs_and_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PATH_VAR, ENVS)
    config = resolve_experiment(env="dots", algo="ppo", steps=100)
    monkeypatch.setattr(compare, "available_cpus", lambda: 8)
    monkeypatch.setattr(compare, "available_memory", lambda: 64 * 2**30)
    assert compare.default_jobs(3, config, obs_bytes=1536) == 3
    assert compare.default_jobs(20, config, obs_bytes=1536) == 8
    per_run = compare.estimate_run_memory(config, obs_bytes=1536)
    monkeypatch.setattr(compare, "available_memory", lambda: int(2.5 * per_run / 0.8))
    assert compare.default_jobs(20, config, obs_bytes=1536) == 2
    monkeypatch.setattr(compare, "available_memory", lambda: 1)
    assert compare.default_jobs(20, config, obs_bytes=1536) == 1
    # a replay buffer counts, but only as far as the run can fill it
    off_policy = resolve_experiment(env="dots", algo="dqn", steps=100)
    big = resolve_experiment(env="dots", algo="dqn", steps=100_000, sets=["algo.buffer_size=100000"])
    assert compare.estimate_run_memory(big, 1536) - compare.estimate_run_memory(off_policy, 1536) > 2e8


def test_an_empty_folder_can_become_an_experiment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_PATH_VAR, ENVS)
    config = resolve_experiment(env="dots", algo="ppo", steps=100)
    folder = tmp_path / "exp"
    folder.mkdir()
    assert compare.prepare_experiment_dir(folder, config) is False
    assert (folder / "experiment.yaml").is_file()
    assert compare.experiment_dir_for("runs", None, config) == Path("runs/dots-ppo")


def test_progress_lines_read_each_running_run_from_its_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from curl_rl.experiment.run import RunSpec

    monkeypatch.setenv(ENV_PATH_VAR, ENVS)
    config = resolve_experiment(env="dots", algo="ppo", steps=1000)
    started = RunSpec(experiment_dir=str(tmp_path), arm="curl", seed=0, config=config)
    fresh = RunSpec(experiment_dir=str(tmp_path), arm="curl", seed=1, config=config)
    started.run_dir.mkdir(parents=True)
    write_status(started.run_dir, env_steps=250, total_timesteps=1000, wall_time_s=5.0, last_return=-3.25)
    assert compare.progress_lines([started, fresh]) == [
        "  curl/seed0: 250/1000 steps (25%), 50 steps/s, last return -3.25, ETA 15 s",
        "  curl/seed1: starting (no evaluation yet)",
    ]
