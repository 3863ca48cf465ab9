"""RL Baselines3 Zoo integration (curl_rl.experiment.zoo, ``curl-rl zoo``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

pytest.importorskip("rl_zoo3", reason='needs the [zoo] extra: pip install "curl_rl[zoo]"')

import optuna
import rl_zoo3
import rl_zoo3.hyperparams_opt as zoo_opt

from curl_rl import CurlPPO, preset_kwargs
from curl_rl.envs.presets import load_preset
from curl_rl.experiment import zoo
from curl_rl.experiment.cli import main as cli_main

pytestmark = pytest.mark.extra

# a few hundred steps of the bundled distractor entry, with a small rollout
SMALL = ["--hyperparams", "n_envs:2", "n_steps:32", "batch_size:32", "n_epochs:1", "--eval-freq", "-1"]


def _train(tmp_path: Path, *extra: str) -> int:
    argv = ["zoo", "train", "--algo", "curl_ppo", "--env", "curl_rl/Distractor-v0", "-n", "128"]
    return cli_main([*argv, "--log-folder", str(tmp_path), "--seed", "3", *SMALL, *extra])


def test_register_adds_every_algorithm_sampler_and_converter() -> None:
    zoo.register()
    for name in ("curl_ppo", "curl_a2c", "curl_sac", "curl_td3", "curl_dqn"):
        assert rl_zoo3.ALGOS[name].__name__ == "Curl" + name.split("_")[1].upper()
        assert name in zoo_opt.HYPERPARAMS_SAMPLER and name in zoo_opt.HYPERPARAMS_CONVERTER
    assert rl_zoo3.ALGOS["ppo"].__name__ == "PPO", "the zoo's own entries must stay"


def test_bundled_hyperparameters_equal_the_distractor_easy_preset() -> None:
    entry = yaml.safe_load(Path(zoo.bundled_conf_file("curl_ppo")).read_text())["curl_rl/Distractor-v0"]
    expected = preset_kwargs("distractor-easy", "ppo", "curl")
    aux = expected.pop("aux")
    expected.pop("routing")
    for key, value in expected.items():
        assert entry[key] == value, key
    assert entry["aux"] == {"preset": "curl", "weight": aux.weight, "crop_size": aux.crop_size}
    preset = load_preset("distractor-easy")
    assert entry["env_kwargs"] == {"size": preset.env.image_size, **preset.env.kwargs}
    assert entry["n_envs"] == preset.algos["ppo"]["n_envs"]
    assert preset.budgets is not None and entry["n_timesteps"] == preset.budgets.quick


def test_zoo_argv_adds_the_bundled_file_and_refuses_a_missing_one() -> None:
    argv = zoo.zoo_argv(["train", "--algo", "curl_ppo", "--env", "E"])
    assert argv[-2:] == ["--conf-file", str(zoo.bundled_conf_file("curl_ppo"))]
    own = ["train", "--algo", "curl_ppo", "--env", "E", "--conf-file", "mine.yml"]
    assert zoo.zoo_argv(own) == own
    assert zoo.zoo_argv(["train", "--algo", "ppo", "--env", "E"]) == ["train", "--algo", "ppo", "--env", "E"]
    with pytest.raises(ValueError, match=r"--conf-file your\.yml"):
        zoo.zoo_argv(["train", "--algo", "curl_td3", "--env", "E"])


def test_cli_error_for_a_missing_conf_file_is_clean(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main(["zoo", "train", "--algo", "curl_dqn", "--env", "E"]) == 2
    assert "bundles no hyperparameters for curl_dqn" in capsys.readouterr().err


def test_train_through_the_zoo_builds_the_aux_config_of_the_yaml(tmp_path: Path) -> None:
    assert _train(tmp_path) == 0
    [model_zip] = tmp_path.glob("curl_ppo/*_1/*.zip")
    model = CurlPPO.load(model_zip, device="cpu")
    assert model.aux_config.name == "curl"
    assert model.aux_config.weight == pytest.approx(0.01)
    assert model.aux_config.crop_size == 56
    assert model.n_steps == 32 and model.n_envs == 2
    # the zoo writes an OrderedDict (and reads it back the same way)
    saved = yaml.load((model_zip.parent / "curl_rl-Distractor-v0" / "config.yml").read_text(), Loader=yaml.UnsafeLoader)
    assert dict(saved)["aux"] == {"preset": "curl", "weight": 0.01, "crop_size": 56}
    # the zoo's enjoy script loads the model through the same registry
    enjoy = ["zoo", "enjoy", "--algo", "curl_ppo", "--env", "curl_rl/Distractor-v0", "-f", str(tmp_path)]
    assert cli_main([*enjoy, "--no-render", "-n", "50"]) == 0


def _small_ppo_sampler(trial: optuna.Trial, n_actions: int, n_envs: int, additional_args: dict) -> dict:
    """The zoo's PPO parameters, each with one small choice (the zoo's own ranges reach 8k-step rollouts)."""
    fixed = {"n_steps_pow": 5, "batch_size_pow": 5, "one_minus_gamma": 0.05, "one_minus_gae_lambda": 0.05}
    fixed |= {"ent_coef": 0.01, "clip_range": 0.2, "n_epochs": 1, "max_grad_norm": 0.5}
    fixed |= {"net_arch": "tiny", "activation_fn": "relu"}
    sampled = {name: trial.suggest_categorical(name, [value]) for name, value in fixed.items()}
    sampled["learning_rate"] = trial.suggest_float("learning_rate", 1e-4, 1e-3, log=True)
    return zoo_opt.convert_onpolicy_params(sampled)


def test_hyperparameter_search_samples_the_weight_and_keeps_the_yaml_block(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # register() wraps whatever the zoo's "ppo" sampler is when the command starts
    monkeypatch.setitem(zoo_opt.HYPERPARAMS_SAMPLER, "ppo", _small_ppo_sampler)
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    search = ["-optimize", "--n-trials", "2", "--n-jobs", "1", "--sampler", "random", "--pruner", "none"]
    search += [
        "--n-evaluations",
        "1",
        "--eval-episodes",
        "1",
        "--storage",
        storage,
        "--study-name",
        "s",
        "--no-optim-plots",
    ]
    assert _train(tmp_path, *search) == 0
    study = optuna.load_study(study_name="s", storage=storage)
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2
    weights = [t.params["aux_weight"] for t in done]
    assert all(zoo.AUX_WEIGHT_RANGE[0] <= w <= zoo.AUX_WEIGHT_RANGE[1] for w in weights)
    assert weights[0] != weights[1]
    for trial in done:
        assert json.loads(trial.params["aux_base"]) == {"preset": "curl", "weight": 0.01, "crop_size": 56}
        # what --trial-id reloads: the YAML's block with the sampled weight, from the study alone
        kwargs = zoo_opt.HYPERPARAMS_CONVERTER["curl_ppo"](dict(trial.params))
        assert kwargs["aux"] == {"preset": "curl", "weight": trial.params["aux_weight"], "crop_size": 56}
        assert "aux_base" not in kwargs and "aux_weight" not in kwargs
        assert kwargs["n_steps"] == 2 ** trial.params["n_steps_pow"]


def test_sampler_without_an_aux_block_searches_the_default_preset() -> None:
    zoo.register()
    trial = optuna.create_study().ask()
    params = zoo_opt.HYPERPARAMS_SAMPLER["curl_sac"](trial, 1, 1, {"using_her_replay_buffer": False, "her_kwargs": {}})
    assert params["aux"]["preset"] == zoo.DEFAULT_SEARCH_PRESET
    assert params["aux"]["weight"] == trial.params["aux_weight"]
    assert "learning_rate" in params
