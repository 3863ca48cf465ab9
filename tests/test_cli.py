"""``curl-rl`` argument parsing and every bad-input error, all reported before any run starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from curl_rl.envs.presets import ENV_PATH_VAR
from curl_rl.experiment.cli import build_parser, main
from curl_rl.experiment.compare import prepare_experiment_dir
from curl_rl.experiment.config import UsageError, parse_set, parse_value, resolve_experiment

ENVS = str(Path(__file__).with_name("envs"))  # the dots presets, found by name


@pytest.fixture(autouse=True)
def _tiny_envs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_PATH_VAR, ENVS)
    monkeypatch.chdir(tmp_path)


def _error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error:" in err
    return err


def _nothing_ran(tmp_path: Path) -> None:
    assert not list(tmp_path.glob("runs/*/*/seed*")), "a run folder was created despite the error"


def test_parser_defaults_and_types() -> None:
    parser = build_parser()
    args = parser.parse_args(
        ["compare", "--env", "dots", "--steps", "2e4", "--set", "algo.gamma=0.9", "--set", "aux.tau=0.1"]
    )
    assert args.steps == 20_000 and args.arms == "none,aug,curl" and args.seeds == 5 and args.backend == "local"
    assert args.sets == ["algo.gamma=0.9", "aux.tau=0.1"] and args.device == "auto" and args.jobs is None
    args = parser.parse_args(["train", "--algo", "sac", "--aux", "aug", "--seed", "3", "--device", "cuda:1"])
    assert (args.algo, args.aux, args.seed, args.device) == ("sac", "aug", 3, "cuda:1")
    args = parser.parse_args(["plot", "runs/x"])
    assert args.runs_dir == "runs/x"


@pytest.mark.parametrize(
    "argv, message",
    [
        (["compare", "--algo", "nope"], "invalid choice"),
        (["compare", "--steps", "0"], "must be a whole number >= 1"),
        (["compare", "--jobs", "0"], "must be >= 1"),
        (["train", "--device", "tpu"], "unknown device"),
        (["compare", "--env", "dots", "--config", "x.yaml"], "not allowed with argument"),
    ],
)
def test_argparse_errors(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_unknown_arm(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = _error(capsys, ["compare", "--env", "dots", "--arms", "none,curll", "--seeds", "1"])
    assert "unknown arm(s) 'curll'" in err and "curl+future" in err
    err = _error(capsys, ["train", "--env", "dots", "--aux", "byol"])
    assert "unknown arm(s) 'byol'" in err
    err = _error(capsys, ["compare", "--env", "dots", "--arms", "none,none"])
    assert "listed twice" in err
    _nothing_ran(tmp_path)


def test_unknown_env(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = _error(capsys, ["compare", "--env", "nope", "--arms", "none"])
    assert "unknown env 'nope'" in err and "dots" in err
    err = _error(capsys, ["train", "--config", "missing.yaml"])
    assert "missing.yaml" in err
    _nothing_ran(tmp_path)


@pytest.mark.parametrize(
    "item, message",
    [
        ("algo.learnin_rate=1e-3", "Did you mean algo.learning_rate"),
        ("foo.bar=1", "first part must be one of env, algo, aux, eval, probe"),
        ("env.nope=3", "env.frame_stack"),
        ("aux.nope=1", "aux.tau"),
        ("aux.tau.x=1", "AuxConfig fields"),
        ("eval.every=10", "eval.freq"),
        ("algo.seed=3", "use --seed"),
        ("algo.tensorboard_log=x", "not allowed"),
    ],
)
def test_unknown_set_key(capsys: pytest.CaptureFixture[str], tmp_path: Path, item: str, message: str) -> None:
    err = _error(capsys, ["compare", "--env", "dots", "--arms", "none,curl", "--set", item])
    assert "--set" in err and message in err
    _nothing_ran(tmp_path)


@pytest.mark.parametrize(
    "item, message",
    [
        ("algo.learning_rate=abc", "expected a number"),
        ("algo.n_steps=12.5", "expected an integer"),
        ("algo.normalize_advantage=3", "expected true or false"),
        ("aux.tau=2", "tau=2.0 must lie in (0, 1]"),
        ("aux.instance=bogus", "instance='bogus' is not one of"),
        ("eval.freq=0", "eval.freq and eval.n_episodes must be >= 1"),
        ("algo.n_envs=0", "algo.n_envs=0 must be an integer >= 1"),
        ("algo.batch_size=[1, 2", "cannot parse value"),
        ("novalue", "expects KEY=VALUE"),
        ("probe.alpha=-1", "probe.alpha=-1 must be a number >= 0"),
    ],
)
def test_bad_set_value(capsys: pytest.CaptureFixture[str], tmp_path: Path, item: str, message: str) -> None:
    err = _error(capsys, ["compare", "--env", "dots", "--arms", "none,curl", "--set", item])
    assert message in err
    _nothing_ran(tmp_path)


def test_incompatible_algo_and_env(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # from the preset's declared action space
    err = _error(capsys, ["compare", "--env", "dots-continuous", "--algo", "dqn", "--arms", "none,curl"])
    assert "dqn needs discrete actions, but env 'dots-continuous' has continuous actions" in err
    err = _error(capsys, ["train", "--env", "dots", "--algo", "sac", "--aux", "curl"])
    assert "sac needs continuous actions" in err
    # from the env actually built, when an override changes the action space
    err = _error(
        capsys, ["compare", "--env", "dots", "--algo", "dqn", "--arms", "none", "--set", "env.kwargs.continuous=true"]
    )
    assert "dqn needs discrete actions" in err and "Box" in err
    _nothing_ran(tmp_path)


def test_real_presets(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(ENV_PATH_VAR)
    config = resolve_experiment(env="distractor-easy", algo="ppo", sets=["env.kwargs.difficulty=0.5"])
    assert config.steps == config.preset.budget("quick") and config.env_settings["kwargs"]["difficulty"] == 0.5
    assert config.aux_config("curl").crop_size == 56  # the preset's aux override
    err = _error(capsys, ["compare", "--env", "distractor-continuous", "--algo", "dqn", "--arms", "none"])
    assert "dqn needs discrete actions" in err
    err = _error(capsys, ["compare", "--env", "distractor-easy", "--set", "env.frame_stac=2", "--arms", "none"])
    assert "Did you mean env.frame_stack" in err
    err = _error(capsys, ["compare", "--env", "distractor-easy", "--set", "env.kwargs.bogus=1", "--arms", "none"])
    assert "cannot be built" in err and "bogus" in err
    _nothing_ran(tmp_path)


def test_aux_that_the_observations_cannot_take(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # a 20-pixel crop of 16-pixel frames is caught by the dry-run build, with the arm named
    err = _error(
        capsys,
        ["compare", "--env", "dots", "--arms", "none,curl", "--set", "aux.augment=crop", "--set", "aux.crop_size=20"],
    )
    # none reads the same centre crop as the arms it is compared with, so it is the first refused
    assert "arm 'none'" in err and "crop_size=20" in err
    _nothing_ran(tmp_path)


def test_cuda_unavailable(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    err = _error(capsys, ["compare", "--env", "dots", "--arms", "none", "--device", "cuda"])
    assert "CUDA is not available" in err


def test_existing_run_folder_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "dots-ppo" / "curl" / "seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "status.json").write_text('{"status": "done"}')
    err = _error(capsys, ["train", "--env", "dots", "--aux", "curl", "--seed", "0"])
    assert "already holds a run (status done)" in err and "--restart" in err  # no checkpoint: --resume cannot
    assert (run_dir / "status.json").read_text() == '{"status": "done"}'


def test_existing_experiment_with_another_config_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = resolve_experiment(env="dots", algo="ppo", steps=128)
    experiment = tmp_path / "runs" / "dots-ppo"
    assert prepare_experiment_dir(experiment, config) is False
    assert prepare_experiment_dir(experiment, resolve_experiment(env="dots", algo="ppo", steps=128)) is True
    before = (experiment / "experiment.yaml").read_text()
    err = _error(capsys, ["compare", "--env", "dots", "--arms", "none", "--steps", "256"])
    assert "different config" in err and "steps: 128 -> 256" in err and "--name" in err
    err = _error(capsys, ["compare", "--env", "dots", "--arms", "none", "--steps", "128", "--set", "algo.gamma=0.5"])
    assert "algo.gamma: '<unset>' -> 0.5" in err
    assert "invocations" in (experiment / "experiment.yaml").read_text()
    assert (experiment / "experiment.yaml").read_text().startswith(before.split("invocations")[0])
    # a folder that is not an experiment is not written into either
    other = tmp_path / "runs" / "mine"
    other.mkdir()
    (other / "notes.txt").write_text("keep me")
    err = _error(capsys, ["compare", "--env", "dots", "--arms", "none", "--name", "mine"])
    assert "not a curl-rl experiment" in err
    _nothing_ran(tmp_path)


def test_other_usage_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = _error(capsys, ["compare", "--env", "dots", "--arms", "none", "--address", "auto"])
    assert "--address is for --backend ray" in err
    err = _error(capsys, ["compare", "--env", "dots", "--arms", "aug,curl", "--baseline", "none"])
    assert "--baseline 'none' is not one of the arms" in err
    err = _error(capsys, ["train", "--resume", str(tmp_path / "nothing")])
    assert "no config.yaml there" in err
    err = _error(capsys, ["plot", str(tmp_path / "nothing")])
    assert "is not a folder" in err
    err = _error(capsys, ["compare", "--env", "dots", "--arms", "none", "--name", "a/b"])
    assert "plain folder name" in err


def test_set_overrides_reach_the_config() -> None:
    config = resolve_experiment(
        env="dots",
        algo="ppo",
        sets=[
            "algo.learning_rate=3e-4",
            "algo.n_steps=64",
            "algo.policy_kwargs.net_arch=[32]",
            "env.frame_stack=3",
            "aux.tau=0.01",
            "eval.freq=1e3",
            "probe.enabled=false",
        ],
    )
    assert config.hyperparams["learning_rate"] == 3e-4 and config.hyperparams["n_steps"] == 64
    assert config.hyperparams["policy_kwargs"]["net_arch"] == [32]
    assert config.hyperparams["policy_kwargs"]["features_extractor_class"] == "CurlEncoder"
    assert config.preset.env["frame_stack"] == 3 and config.env_settings["frame_stack"] == 3
    assert config.eval_freq == 1000 and config.probe.enabled is False
    assert config.steps == 128  # the preset's quick budget
    assert config.aux_config("curl").tau == 0.01
    assert config.aux_config("none").tau != 0.01 and not config.aux_config("none").is_active
    # the preset's per-algo aux overrides apply to every arm but none
    assert config.aux_config("aug").update_period == 1
    assert config.fingerprint()["algo"]["learning_rate"] == 3e-4
    assert resolve_experiment(env="dots", algo="ppo", budget="full").steps == 1024
    assert resolve_experiment(env="dots-continuous", algo="sac").routing == "curl"
    assert resolve_experiment(env="dots", algo="ppo").routing == "auto"


def test_parse_value() -> None:
    assert parse_value("3e-4") == 3e-4 and parse_value("10") == 10 and parse_value("true") is True
    assert parse_value("[64, 64]") == [64, 64] and parse_value("null") is None and parse_value("crop") == "crop"
    assert parse_set(["a.b=1", "c.d=x=y"]) == [("a.b", 1), ("c.d", "x=y")]
    with pytest.raises(UsageError):
        parse_set(["a..b=1"])


def test_list_envs_and_arms(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["envs"]) == 0
    out = capsys.readouterr().out
    assert "dots " in out and "discrete actions" in out
    assert main(["arms"]) == 0
    out = capsys.readouterr().out
    assert "curl+future" in out and "instance=infonce" in out and "SB3 unchanged" in out
    assert main(["presets"]) == 0
    assert "triplet" in capsys.readouterr().out


def test_python_dash_m_entry_point() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "curl_rl", "--help"], capture_output=True, text=True, timeout=120, check=True
    ).stdout
    for command in ("train", "compare", "plot", "envs", "arms"):
        assert command in out


def test_the_same_compare_twice_is_refused_while_the_first_runs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from curl_rl.experiment.lock import FolderLock

    # the first compare holds the experiment folder (here: this process, as it would)
    with FolderLock(tmp_path / "runs" / "dots-ppo", what="experiment"):
        err = _error(capsys, ["compare", "--env", "dots", "--arms", "none", "--seeds", "1", "--steps", "32"])
    assert "is being written by pid" in err and ".lock" in err
    _nothing_ran(tmp_path)


@pytest.mark.parametrize(
    "setting",
    [
        "algo.gamma=1.5",
        "algo.gamma=0",
        "algo.gae_lambda=-0.1",
        "algo.learning_rate=-1e-3",
        "algo.learning_rate=nan",
        "algo.clip_range=0",
        "algo.ent_coef=-0.01",
        "algo.batch_size=0",
        "algo.n_epochs=0",
        "algo.vf_coef=inf",
    ],
)
def test_out_of_range_hyperparameters_are_refused_by_name(capsys: pytest.CaptureFixture[str], setting: str) -> None:
    err = _error(capsys, ["compare", "--env", "dots", "--arms", "none", "--set", setting])
    assert f"algo.{setting.split('=')[0].split('.')[1]}=" in err and "Traceback" not in err


def test_help_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys; from curl_rl.experiment.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"  # `curl-rl --help` stays fast (no torch, no SB3)


def test_a_budget_that_is_not_whole_rollouts_is_announced(capsys: pytest.CaptureFixture[str]) -> None:
    from curl_rl.experiment.cli import _resolve, build_parser

    args = build_parser().parse_args(["compare", "--env", "dots", "--steps", "100"])
    config = _resolve(args)
    rollout = int(config.hyperparams["n_steps"]) * config.n_envs
    err = capsys.readouterr().err
    assert f"{rollout} env steps per rollout" in err and f"100 steps run as {-(-100 // rollout) * rollout}" in err


def test_import_curl_rl_registers_the_envs_without_torch() -> None:
    code = (
        "import sys, gymnasium as gym, curl_rl; env = gym.make('curl_rl/Distractor-v0'); "
        "print(env.observation_space.shape, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(64, 64, 3) False"


def test_a_budget_below_one_rollout_and_a_costly_evaluation_are_announced(capsys: pytest.CaptureFixture[str]) -> None:
    from curl_rl.experiment.cli import _resolve, build_parser

    _resolve(build_parser().parse_args(["compare", "--env", "dots", "--steps", "20"]))
    assert "20 steps (less than one rollout) run as 32" in capsys.readouterr().err
    # the real distractor preset: 100-step episodes, 10 per evaluation, every 64 steps here
    _resolve(
        build_parser().parse_args(["compare", "--env", "distractor-easy", "--steps", "1024", "--set", "eval.freq=64"])
    )
    err = capsys.readouterr().err
    assert "18 evaluations x 10 episodes of up to 100 steps may take up to 18000 env steps" in err
    _resolve(build_parser().parse_args(["compare", "--env", "distractor-easy"]))
    assert "evaluations x" not in capsys.readouterr().err  # the preset's own schedule is cheap enough


def test_none_arm_reads_the_centre_crop_when_the_other_arms_crop() -> None:
    """CURL's pixel-SAC baseline: same encoder on the same 84-of-100 input, centre-cropped; before
    this, ``none`` dropped every ``aux.*`` override and built a larger encoder on the whole frame."""
    from stable_baselines3.common.vec_env import DummyVecEnv

    from curl_rl import CenterCropExtractor
    from curl_rl.envs.factory import make_env
    from curl_rl.experiment.build import build_model

    config = resolve_experiment(
        env="dots-continuous", algo="sac", sets=["env.image_size=20", "aux.augment=[crop]", "aux.crop_size=16"]
    )
    none = config.aux_config("none")
    assert none.augment == ("crop",) and none.crop_size == 16 and not none.is_active
    extractors = {}
    for arm in ("none", "curl"):
        vec = DummyVecEnv([lambda: make_env(config.preset, 0)])
        model = build_model(config, arm, vec, seed=0, device="cpu", buffer_size=64)
        extractors[arm] = model.critic.features_extractor
        vec.close()
    assert all(isinstance(e, CenterCropExtractor) and e.crop_size == 16 for e in extractors.values())
    shapes = {arm: [p.shape for p in e.parameters()] for arm, e in extractors.items()}
    assert shapes["none"] == shapes["curl"]
    # without a crop, none stays SB3's parent on the whole frame
    plain = resolve_experiment(env="dots-continuous", algo="sac", sets=["aux.crop_size=12"])
    assert plain.aux_config("none").augment == ()


def test_performance_switches_are_set_like_any_algo_key() -> None:
    from curl_rl.algos.performance import PerformanceConfig, resolve_performance_config

    config = resolve_experiment(env="dots-continuous", algo="sac", sets=["algo.performance.bf16=true"])
    assert config.model_kwargs()["performance"] == {"bf16": True}
    # YAML reads a bare off as false; both mean every switch off
    off = resolve_experiment(env="dots-continuous", algo="sac", sets=["algo.performance=off"])
    assert resolve_performance_config(off.model_kwargs()["performance"]) == PerformanceConfig.off()
    assert "performance" not in resolve_experiment(env="dots-continuous", algo="sac").model_kwargs()
    # what the run records is what ran: "auto" resolved for the device
    from stable_baselines3.common.vec_env import DummyVecEnv

    from curl_rl.envs.factory import make_env
    from curl_rl.experiment.build import build_model

    partial = resolve_experiment(env="dots-continuous", algo="sac", sets=["algo.performance.compile=false"])
    vec = DummyVecEnv([lambda: make_env(partial.preset, 0)])
    built = build_model(partial, "curl", vec, seed=0, device="cpu", buffer_size=64).performance
    vec.close()
    assert built.compile is False and isinstance(built.channels_last, bool) and isinstance(built.bf16, bool)
    # every arm runs the same kernels: none's "auto" switches are resolved for it as for the others
    # (left to the model, aux="none" turns "auto" off, to keep SB3's exact arithmetic)
    from curl_rl.algos.performance import applied_performance

    applied = {}
    for arm in ("none", "curl"):
        vec = DummyVecEnv([lambda: make_env(partial.preset, 0)])
        applied[arm] = applied_performance(
            build_model(partial, arm, vec, seed=0, device="cpu", buffer_size=64).critic.features_extractor
        )
        vec.close()
    assert applied["none"] == applied["curl"]
    with pytest.raises(UsageError, match=r"algo\.performance"):
        resolve_experiment(env="dots-continuous", algo="sac", sets=["algo.performanc.bf16=true"])


def test_dry_run_judges_bf16_for_the_device_the_runs_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check model is built on the CPU; a bf16 that only the GPU has must not fail it there,
    and a bf16 the device lacks is refused before anything runs, with the setting named."""
    import torch

    import curl_rl.algos.performance as performance
    from curl_rl.experiment.build import check_runs_buildable

    monkeypatch.setattr(performance, "bf16_supported", lambda device: device.type == "cuda")
    monkeypatch.setattr("curl_rl.experiment.build.bf16_supported", performance.bf16_supported, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    config = resolve_experiment(env="dots-continuous", algo="sac", sets=["algo.performance.bf16=true"])
    check_runs_buildable(config, ["none", "curl"], device="cuda")
    with pytest.raises(UsageError, match=r"algo\.performance: bf16=True but cpu has no native bf16"):
        check_runs_buildable(config, ["none"], device="cpu")
