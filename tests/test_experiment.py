"""One run in process: the run folder, the TensorBoard extras, Ctrl-C and ``--resume``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import curl_rl.experiment.run as experiment
from curl_rl.auxiliary.config import ON_POLICY_RL_AUGMENT, resolve_aux_config
from curl_rl.envs.presets import ENV_PATH_VAR
from curl_rl.experiment.callbacks import ProgressBarCallback, aux_metric_tags
from curl_rl.experiment.checkpoint import latest_checkpoint
from curl_rl.experiment.cli import main
from curl_rl.experiment.config import TensorBoardSettings, resolve_experiment

ENVS = str(Path(__file__).with_name("envs"))  # the dots presets, found by name
PROBE = ["probe.episodes=4", "probe.steps_per_episode=6", "eval.freq=32"]


@pytest.fixture(autouse=True)
def _tiny_envs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_PATH_VAR, ENVS)
    monkeypatch.chdir(tmp_path)


def _spec(tmp_path: Path, arm: str = "curl", steps: int = 96, **kwargs: Any) -> experiment.RunSpec:
    config = resolve_experiment(env="dots", algo="ppo", steps=steps, sets=PROBE)
    return experiment.RunSpec(
        experiment_dir=str(tmp_path / "runs" / "dots-ppo"), arm=arm, seed=0, config=config, threads=1, **kwargs
    )


def _events(run_dir: Path) -> EventAccumulator:
    (folder,) = (run_dir / "tb").iterdir()
    acc = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0, "tensors": 0})
    acc.Reload()
    return acc


def test_run_folder_and_tensorboard_extras(tmp_path: Path) -> None:
    tb = TensorBoardSettings(images_every=1, images_n=3, embeddings=True, video=True, video_frames=8)
    spec = _spec(tmp_path, tensorboard=tb)
    result = experiment.run_single(spec)
    run_dir = spec.run_dir
    assert result.status == "done" and result.env_steps >= 96 and result.final_return is not None
    assert result.probe_r2 is not None and np.isfinite(result.probe_r2)

    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "done" and status["steps_per_s"] > 0 and status["final_return"] == result.final_return
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["aux"]["name"] == "curl" and config["aux"]["instance"] == "infonce"
    assert config["aux"]["update_period"] == 1  # the preset's aux override
    assert config["algo"]["n_steps"] == 32 and config["sb3_effective"]["gamma"] == 0.99
    assert config["env"]["preset"] == "dots" and config["run"]["seed"] == 0 and config["steps"] == 96
    assert config["versions"]["stable_baselines3"]
    # what decides a CPU run's last bits, so runs from two machines can be told apart
    assert config["versions"]["torch_cpu_capability"] and config["versions"]["cpu"]
    aux_rows = (run_dir / "aux_metrics.csv").read_text().splitlines()
    assert aux_rows[0].split(",") == [
        "timesteps",
        *aux_metric_tags(resolve_aux_config("curl"), rl_augment=ON_POLICY_RL_AUGMENT),
    ]
    assert len(aux_rows) >= 3

    acc = _events(run_dir)
    scalars = set(acc.Tags()["scalars"])
    for tag in (
        "eval/mean_reward",
        "aux/probe_r2",
        "aux/loss",
        "aux/accuracy",
        "train/value_loss",
        "final/mean_return",
    ):
        assert tag in scalars, tag
    images = acc.Tags()["images"]
    assert "aux/augmentations" in images and "eval/video" in images
    grid = acc.Images("aux/augmentations")[-1]
    # 3 samples x (anchor, positive) of 16x16 frames with 2-pixel gaps
    assert (grid.height, grid.width) == (3 * 18 + 2, 2 * 18 + 2)
    video = acc.Images("eval/video")[-1]
    assert video.encoded_image_string[:6] == b"GIF89a"
    hparams = acc.PluginTagToContent("hparams")
    assert "_hparams_/session_start_info" in hparams and b"curl" in hparams["_hparams_/session_start_info"]
    assert b"eval/mean_reward" in hparams["_hparams_/experiment"]
    assert list(run_dir.glob("tb/*/projector_config.pbtxt"))
    metadata = next(run_dir.glob("tb/*/*/encoder/metadata.tsv")).read_text().splitlines()
    assert metadata[0] == "state_0\tstate_1" and len(metadata) > 10


@pytest.mark.parametrize("arm", ["curl+future", "atc", "triplet"])
def test_aux_metrics_header_holds_every_logged_aux_tag(tmp_path: Path, arm: str) -> None:
    spec = _spec(tmp_path, arm=arm, steps=64, tensorboard=TensorBoardSettings(images_every=0))
    experiment.run_single(spec)
    header = (spec.run_dir / "aux_metrics.csv").read_text().splitlines()[0].split(",")
    logged = {t for t in _events(spec.run_dir).Tags()["scalars"] if t.startswith("aux/")}
    assert "aux/loss" in logged and "aux/probe_r2" in logged
    # only the documented aliases stay out of the CSV
    aliases = {"aux/weight", "aux/instance/accuracy", "aux/instance/gap", "aux/instance/embedding_std"}
    assert logged - aliases <= set(header), f"logged but not in aux_metrics.csv: {logged - aliases - set(header)}"


def test_logging_extras_do_not_change_training(tmp_path: Path) -> None:
    plain = _spec(tmp_path / "a", steps=64, tensorboard=TensorBoardSettings(images_every=0))
    extras = _spec(tmp_path / "b", steps=64, tensorboard=TensorBoardSettings(images_every=1, embeddings=True))
    experiment.run_single(plain)
    experiment.run_single(extras)
    a = (plain.run_dir / "evaluations.csv").read_text()
    b = (extras.run_dir / "evaluations.csv").read_text()
    assert a == b
    loss = [ln.split(",")[1] for ln in (plain.run_dir / "aux_metrics.csv").read_text().splitlines()[1:]]
    loss_b = [ln.split(",")[1] for ln in (extras.run_dir / "aux_metrics.csv").read_text().splitlines()[1:]]
    assert loss == loss_b


class _CtrlC(ProgressBarCallback):
    """Raises KeyboardInterrupt part-way, like Ctrl-C would."""

    def _on_step(self) -> bool:
        if self.num_timesteps >= 48:
            raise KeyboardInterrupt
        return super()._on_step()


TRAIN_128 = ["train", "--env", "dots", "--aux", "curl", "--steps", "128", "--threads", "1", "--tb-images-every", "0"]


def _interrupted_train(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Start a 128-step curl run and Ctrl-C it part-way; returns its command line."""
    argv = [*TRAIN_128, *(f"--set={item}" for item in PROBE)]
    monkeypatch.setattr(experiment, "ProgressBarCallback", _CtrlC)
    assert main(argv) == 130
    return argv


def test_ctrl_c_saves_a_checkpoint_and_resume_finishes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _interrupted_train(monkeypatch)
    run_dir = Path("runs") / "dots-ppo" / "curl" / "seed0"
    assert f"--resume {run_dir}" in capsys.readouterr().err
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "interrupted" and status["env_steps"] >= 48
    checkpoint = latest_checkpoint(run_dir)
    assert checkpoint is not None and checkpoint.name.endswith("-interrupted")
    assert status["checkpoint"] == str(checkpoint.relative_to(run_dir))

    # a plain train into the same folder is refused; --resume continues it
    monkeypatch.setattr(experiment, "ProgressBarCallback", ProgressBarCallback)
    assert main(argv) == 2
    assert "already holds a run (status interrupted)" in capsys.readouterr().err
    assert main(["train", "--resume", str(run_dir), "--threads", "1"]) == 0
    status = json.loads((run_dir / "status.json").read_text())
    assert status["status"] == "done" and status["env_steps"] >= 128
    steps = [int(ln.split(",")[0]) for ln in (run_dir / "evaluations.csv").read_text().splitlines()[1:]]
    assert steps == sorted(set(steps)) and steps[0] == 0 and steps[-1] >= 128
    assert (run_dir / "model.zip").is_file()
    assert main(["train", "--resume", str(run_dir)]) == 2
    assert "already finished" in capsys.readouterr().err


def test_compare_continues_an_interrupted_run_from_its_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["--env", "dots", "--steps", "96", "--tb-images-every", "0"] + [f"--set={item}" for item in PROBE]
    monkeypatch.setattr(experiment, "ProgressBarCallback", _CtrlC)
    assert main(["train", "--aux", "curl", "--seed", "0", "--threads", "1", *common]) == 130
    monkeypatch.setattr(experiment, "ProgressBarCallback", ProgressBarCallback)
    capsys.readouterr()
    # the same experiment through compare: the interrupted run goes on where it stopped
    assert main(["compare", "--arms", "curl", "--seeds", "1", "--jobs", "1", *common]) == 0
    out = capsys.readouterr().out
    assert "continuing 1 interrupted run(s) from their checkpoints: curl/seed0" in out
    run_dir = tmp_path / "runs" / "dots-ppo" / "curl" / "seed0"
    assert json.loads((run_dir / "status.json").read_text())["status"] == "done"
    steps = [int(ln.split(",")[0]) for ln in (run_dir / "evaluations.csv").read_text().splitlines()[1:]]
    assert steps[0] == 0 and steps == sorted(set(steps)) and steps[-1] >= 96
    assert not (run_dir.parent / ".attempts").exists()


def test_resume_continues_exactly_the_folder_given_even_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    _interrupted_train(monkeypatch)
    original = Path("runs") / "dots-ppo" / "curl" / "seed0"
    copy = tmp_path / "elsewhere" / "my-copy"
    shutil.copytree(original, copy)
    before = {p.relative_to(original): p.read_bytes() for p in original.rglob("*") if p.is_file()}
    monkeypatch.setattr(experiment, "ProgressBarCallback", ProgressBarCallback)
    capsys.readouterr()
    assert main(["train", "--resume", str(copy), "--threads", "1"]) == 0
    after = {p.relative_to(original): p.read_bytes() for p in original.rglob("*") if p.is_file()}
    assert after == before  # the original was not touched
    assert json.loads((copy / "status.json").read_text())["status"] == "done"
    assert not (tmp_path / "elsewhere" / "curl").exists()


@pytest.mark.parametrize("algo", ["ppo", "dqn"])
def test_no_tag_is_logged_twice_at_one_step(tmp_path: Path, algo: str) -> None:
    # PPO: SB3 dumps after the last rollout, then the final evaluation dumps again at the same step;
    # DQN: an episode ends on the last step (episode_len 16 divides 96), so SB3's dump meets it too
    config = resolve_experiment(
        env="dots", algo=algo, steps=96, sets=[*PROBE, "algo.learning_starts=16"] if algo == "dqn" else PROBE
    )
    spec = experiment.RunSpec(
        experiment_dir=str(tmp_path / "runs" / f"dots-{algo}"),
        arm="curl",
        seed=0,
        config=config,
        threads=1,
        tensorboard=TensorBoardSettings(images_every=0),
    )
    experiment.run_single(spec)
    acc = _events(spec.run_dir)
    for tag in acc.Tags()["scalars"]:
        steps = [event.step for event in acc.Scalars(tag)]
        assert len(steps) == len(set(steps)), f"{tag} logged twice at one step: {steps}"
    rows = (spec.run_dir / "aux_metrics.csv").read_text().splitlines()[1:]
    steps = [int(row.split(",")[0]) for row in rows]
    assert steps == sorted(set(steps)), steps
    final = rows[-1].split(",")
    assert steps[-1] == 96 and final[-1] != "", "the final row keeps the final probe R²"


def test_ctrl_c_during_an_evaluation_loses_no_row(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from curl_rl.experiment.callbacks import EvaluationCallback

    evaluate = EvaluationCallback.evaluate

    def interrupted_at_64(self: EvaluationCallback) -> float:
        if self.num_timesteps == 64:
            raise KeyboardInterrupt  # Ctrl-C while the evaluation at step 64 runs
        return evaluate(self)

    monkeypatch.setattr(EvaluationCallback, "evaluate", interrupted_at_64)
    argv = [*TRAIN_128, *(f"--set={item}" for item in PROBE)]
    assert main(argv) == 130
    monkeypatch.setattr(EvaluationCallback, "evaluate", evaluate)
    run_dir = Path("runs") / "dots-ppo" / "curl" / "seed0"
    assert main(["train", "--resume", str(run_dir), "--threads", "1"]) == 0
    steps = [int(ln.split(",")[0]) for ln in (run_dir / "evaluations.csv").read_text().splitlines()[1:]]
    assert steps == [0, 32, 64, 96, 128]
    acc = _events(run_dir)  # the resumed run's logger also writes each tag once per step
    for tag in acc.Tags()["scalars"]:
        tag_steps = [event.step for event in acc.Scalars(tag)]
        assert len(tag_steps) == len(set(tag_steps)), f"{tag}: {tag_steps}"


def test_curl_callbacks_give_the_python_api_what_the_cli_logs(tmp_path: Path) -> None:
    from cli_envs import DotEnv

    from curl_rl import CurlCallbacks, CurlEncoder, CurlPPO

    kwargs = {"features_extractor_class": CurlEncoder, "features_extractor_kwargs": {"num_layers": 2, "num_filters": 8}}
    model = CurlPPO(
        "CnnPolicy",
        DotEnv(frames=2),
        aux="curl",
        n_steps=32,
        batch_size=16,
        n_epochs=1,
        seed=0,
        policy_kwargs=kwargs,
        tensorboard_log=str(tmp_path / "tb"),
    )
    callbacks = CurlCallbacks(
        DotEnv(frames=2), eval_freq=32, n_episodes=1, probe_env=DotEnv(frames=2), probe_episodes=6
    )
    model.learn(96, callback=callbacks, tb_log_name="api")
    folder = tmp_path / "tb" / "api_1"
    steps = [int(row.split(",")[0]) for row in (folder / "evaluations.csv").read_text().splitlines()[1:]]
    assert steps == [0, 32, 64, 96]
    header = (folder / "aux_metrics.csv").read_text().splitlines()[0].split(",")
    assert "aux/loss" in header and header[-1] == "aux/probe_r2"
    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0, "tensors": 0})
    acc.Reload()
    assert {"eval/mean_reward", "aux/probe_r2", "aux/loss"} <= set(acc.Tags()["scalars"])
    assert callbacks.evaluation is not None and callbacks.evaluation.last_probe_r2 is not None


def test_ctrl_c_and_resume_log_the_same_steps_as_an_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = _interrupted_train(monkeypatch)  # Ctrl-C at step 48, in the middle of a rollout
    monkeypatch.setattr(experiment, "ProgressBarCallback", ProgressBarCallback)
    run_dir = Path("runs") / "dots-ppo" / "curl" / "seed0"
    assert main(["train", "--resume", str(run_dir), "--threads", "1"]) == 0
    assert main([*argv, "--name", "straight"]) == 0
    interrupted, straight = _events(run_dir), _events(Path("runs") / "straight" / "curl" / "seed0")
    for tag in ("train/loss", "aux/loss", "eval/mean_reward", "aux/probe_r2"):
        got = [event.step for event in interrupted.Scalars(tag)]
        assert got == [event.step for event in straight.Scalars(tag)], tag
    first, second = (folder / "evaluations.csv" for folder in (run_dir, Path("runs") / "straight" / "curl" / "seed0"))
    assert [row.split(",")[0] for row in first.read_text().splitlines()] == [
        row.split(",")[0] for row in second.read_text().splitlines()
    ]
