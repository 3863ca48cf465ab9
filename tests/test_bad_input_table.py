"""Every kind of bad command-line input, table-driven: exit code 2, no traceback, the field named.

Each row is (argv after the subcommand's common part, text the error must contain). The rows run
through ``main`` in-process on the tiny ``dots`` presets (``tests/envs``), so the whole table
takes seconds; none of them may create a run folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from curl_rl.envs.presets import ENV_PATH_VAR
from curl_rl.experiment.cli import main

ENVS = str(Path(__file__).with_name("envs"))
COMPARE = ["compare", "--env", "dots", "--arms", "none,curl", "--seeds", "1", "--steps", "64"]
TRAIN = ["train", "--env", "dots", "--aux", "curl", "--steps", "64"]


def _set(item: str, base: list[str] = COMPARE) -> list[str]:
    return [*base, "--set", item]


CASES: list[tuple[str, list[str], str]] = [
    # what to run, where, and how much
    ("unknown env", ["compare", "--env", "nope", "--arms", "none"], "unknown env 'nope'"),
    ("missing preset file", ["compare", "--env", "missing.yaml", "--arms", "none"], "not found"),
    ("unknown algo", [*COMPARE, "--algo", "xyz"], "--algo"),
    ("unknown arm", ["compare", "--env", "dots", "--arms", "none,bogus"], "bogus"),
    ("empty arms", ["compare", "--env", "dots", "--arms", ""], "--arms"),
    ("duplicate arm", ["compare", "--env", "dots", "--arms", "none,none"], "none"),
    ("zero seeds", ["compare", "--env", "dots", "--arms", "none", "--seeds", "0"], "--seeds"),
    ("negative seeds", ["compare", "--env", "dots", "--arms", "none", "--seeds", "-2"], "--seeds"),
    ("zero steps", ["compare", "--env", "dots", "--arms", "none", "--steps", "0"], "--steps"),
    ("steps not a number", ["compare", "--env", "dots", "--arms", "none", "--steps", "many"], "--steps"),
    ("unknown budget", [*COMPARE, "--preset-budget", "medium"], "--preset-budget"),
    ("zero jobs", [*COMPARE, "--jobs", "0"], "--jobs"),
    ("zero threads", [*COMPARE, "--threads", "0"], "--threads"),
    ("negative checkpoint freq", [*COMPARE, "--checkpoint-freq", "-5"], "--checkpoint-freq"),
    ("unknown device", [*COMPARE, "--device", "tpu"], "tpu"),
    ("unknown routing", [*COMPARE, "--routing", "sideways"], "routing"),
    ("baseline not an arm", [*COMPARE, "--baseline", "aug"], "--baseline"),
    ("address without ray", [*COMPARE, "--address", "auto"], "--address"),
    ("name with a slash", [*COMPARE, "--name", "a/b"], "--name"),
    ("name ..", [*COMPARE, "--name", ".."], "--name"),
    ("config and env", ["compare", "--env", "dots", "--config", "x.yaml"], "--config"),
    ("dqn on continuous actions", ["compare", "--env", "dots-continuous", "--algo", "dqn", "--arms", "none"], "dqn"),
    ("sac on discrete actions", [*TRAIN, "--algo", "sac"], "sac needs continuous"),
    ("override makes actions continuous", [*_set("env.kwargs.continuous=true"), "--algo", "dqn"], "dqn"),
    ("train with two arms", ["train", "--env", "dots", "--aux", "curl,aug"], "one --aux"),
    ("resume a folder without config", ["train", "--resume", "nowhere"], "no config.yaml"),
    # --set syntax and keys
    ("set without =", _set("aux.weight"), "KEY=VALUE"),
    ("set with an empty part", _set("aux..weight=1"), "empty part"),
    ("unknown section", _set("model.lr=1"), "model.lr"),
    ("unknown algo key", _set("algo.learning_rat=1e-3"), "algo.learning_rat"),
    ("unknown aux key", _set("aux.wieght=1"), "aux.wieght"),
    ("unknown eval key", _set("eval.every=5"), "eval.every"),
    ("unknown probe key", _set("probe.size=5"), "probe.size"),
    ("unknown env key", _set("env.colour=red"), "env.colour"),
    ("managed key seed", _set("algo.seed=3"), "--seed"),
    ("managed key device", _set("algo.device=cpu"), "--device"),
    ("managed key tensorboard_log", _set("algo.tensorboard_log=x"), "tb/"),
    ("managed key verbose", _set("algo.verbose=1"), "--verbose"),
    ("sub-key of a scalar setting", _set("algo.gamma.x=1"), "algo.gamma"),
    # algorithm values
    ("gamma above 1", _set("algo.gamma=1.5"), "algo.gamma"),
    ("gamma below 0", _set("algo.gamma=-0.1"), "algo.gamma"),
    ("gamma not a number", _set("algo.gamma=high"), "algo.gamma"),
    ("negative learning rate", _set("algo.learning_rate=-1"), "algo.learning_rate"),
    ("infinite learning rate", _set("algo.learning_rate=inf"), "algo.learning_rate"),
    ("n_steps of one", _set("algo.n_steps=1"), "n_steps"),
    ("n_steps of zero", _set("algo.n_steps=0"), "n_steps"),
    ("fractional n_steps", _set("algo.n_steps=2.5"), "algo.n_steps"),
    ("zero batch size", _set("algo.batch_size=0"), "batch_size"),
    ("zero epochs", _set("algo.n_epochs=0"), "n_epochs"),
    ("gae_lambda above 1", _set("algo.gae_lambda=2"), "algo.gae_lambda"),
    ("negative clip range", _set("algo.clip_range=-0.2"), "algo.clip_range"),
    ("negative max_grad_norm", _set("algo.max_grad_norm=-1"), "algo.max_grad_norm"),
    ("zero n_envs", _set("algo.n_envs=0"), "algo.n_envs"),
    ("unknown policy", _set("algo.policy=FancyPolicy"), "FancyPolicy"),
    ("MLP policy on images with aux", [*_set("algo.policy=MlpPolicy"), "--set", "algo.policy_kwargs={}"], "MlpPolicy"),
    ("dqn zero buffer", [*_set("algo.buffer_size=0"), "--algo", "dqn"], "buffer_size"),
    ("dqn exploration above 1", [*_set("algo.exploration_fraction=2"), "--algo", "dqn"], "exploration_fraction"),
    ("dqn tau above 1", [*_set("algo.tau=2"), "--algo", "dqn"], "algo.tau"),
    ("dqn zero target interval", [*_set("algo.target_update_interval=0"), "--algo", "dqn"], "target_update_interval"),
    # auxiliary values
    ("aux weight NaN", _set("aux.weight=nan"), "weight"),
    ("aux weight inf", _set("aux.weight=inf"), "weight"),
    ("aux weight negative", _set("aux.weight=-1"), "weight"),
    ("aux weight a boolean", _set("aux.weight=true"), "aux.weight"),
    ("aux future_weight NaN", _set("aux.future_weight=nan"), "future_weight"),
    ("aux temperature zero", _set("aux.temperature=0"), "temperature"),
    ("aux tau above 1", _set("aux.tau=2"), "tau"),
    ("aux lr negative", _set("aux.lr=-1"), "lr"),
    ("aux crop larger than the image", [*_set("aux.augment=crop"), "--set", "aux.crop_size=100"], "crop_size"),
    ("aux unknown augmentation", _set("aux.augment=blur"), "blur"),
    ("aux unknown rl_augment", _set("aux.rl_augment=maybe"), "rl_augment"),
    ("aux negative queue", _set("aux.queue_size=-5"), "queue_size"),
    ("aux zero future_k", _set("aux.future_k=0"), "future_k"),
    ("aux drac weight NaN", _set("aux.drac_weight=nan"), "drac_weight"),
    # evaluation and probe
    ("eval freq zero", _set("eval.freq=0"), "eval.freq"),
    ("eval episodes zero", _set("eval.n_episodes=0"), "eval.n_episodes"),
    ("probe episodes one", _set("probe.episodes=1"), "probe.episodes"),
    ("probe alpha negative", _set("probe.alpha=-1"), "probe.alpha"),
    ("probe held-out fraction above 1", _set("probe.held_out_fraction=1.5"), "probe.held_out_fraction"),
    # env values the preset validation or the dry-run build refuse
    ("env image too small", _set("env.image_size=4"), "image_size"),
    ("env image too small for NatureCNN", [*_set("env.image_size=16"), "--set", "algo.policy_kwargs={}"], "image_size"),
    ("env unknown kind", _set("env.kind=bogus"), "kind"),
    ("env frame_stack zero", _set("env.frame_stack=0"), "frame_stack"),
    # where the runs go
    ("out is a file", [*COMPARE, "--out", "afile"], "--out"),
    ("out under a file", [*TRAIN, "--out", "afile/sub"], "--out"),
]


@pytest.fixture(autouse=True)
def _tiny_envs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_PATH_VAR, ENVS)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "afile").write_text("not a folder\n")


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 60 and len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.parametrize(("argv", "names"), [(argv, names) for _, argv, names in CASES], ids=[c[0] for c in CASES])
def test_bad_input_is_refused_before_training(
    argv: list[str], names: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    assert "Traceback" not in err, err
    assert names in err, err
    assert not list(tmp_path.glob("runs/*/*/seed*")), "a run folder was created despite the error"


def test_resume_from_an_unreadable_config_is_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run_dir = tmp_path / "runs" / "dots-ppo" / "curl" / "seed0"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("garbage: [\n")
    assert main(["train", "--resume", str(run_dir)]) == 2
    err = capsys.readouterr().err
    assert "not readable YAML" in err and "Traceback" not in err


def test_the_dry_run_judges_the_real_rollout_size() -> None:
    from curl_rl.experiment.build import check_runs_buildable
    from curl_rl.experiment.config import UsageError, resolve_experiment

    # n_steps 1 x 2 envs is a rollout of 2: valid, although the dry run builds one env
    check_runs_buildable(resolve_experiment(env="dots", algo="ppo", sets=["algo.n_envs=2", "algo.n_steps=1"]), ["none"])
    with pytest.raises(UsageError, match="n_steps=1 and n_envs=1"):
        check_runs_buildable(resolve_experiment(env="dots", algo="ppo", sets=["algo.n_steps=1"]), ["none"])
