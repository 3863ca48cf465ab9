"""Bundled presets parse, reference valid SB3 settings, and bad input gives clear errors."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import stable_baselines3 as sb3
import yaml

from curl_rl import ALGOS
from curl_rl.envs import EnvPreset, PresetError, list_presets, load_preset
from curl_rl.envs.presets import bundled_presets_dir, make_action_noise, sb3_constructor_params

REQUIRED = {
    "distractor-easy": {"ppo", "a2c", "dqn"},
    "distractor-hard": {"ppo", "a2c", "dqn"},
    "distractor-continuous": {"ppo", "a2c", "sac", "td3"},
    "cartpole-pixels": {"ppo", "a2c", "dqn"},
    "pendulum-pixels": {"ppo", "a2c", "sac", "td3"},
    "dmc-finger-spin": {"ppo", "a2c", "sac", "td3"},
    "dmc-cartpole-swingup": {"ppo", "a2c", "sac", "td3"},
    "dmc-reacher-easy": {"ppo", "a2c", "sac", "td3"},
    "dmc-cheetah-run": {"ppo", "a2c", "sac", "td3"},
    "dmc-walker-walk": {"ppo", "a2c", "sac", "td3"},
    "dmc-ball-in-cup-catch": {"ppo", "a2c", "sac", "td3"},
    "atari-pong": {"ppo", "a2c", "dqn"},
    "atari-breakout": {"ppo", "a2c", "dqn"},
}
CURL_REPEATS = {"finger-spin": 2, "cartpole-swingup": 8, "reacher-easy": 4, "cheetah-run": 4}
CURL_REPEATS |= {"walker-walk": 2, "ball-in-cup-catch": 4}


def test_list_presets_sorted_one_line_and_complete() -> None:
    presets = list_presets()
    assert list(presets) == sorted(presets)
    assert set(REQUIRED) <= set(presets)
    for name, description in presets.items():
        assert description and "\n" not in description, name
        assert len(description) < 140, name


@pytest.mark.parametrize("name", sorted(list_presets()))
def test_bundled_preset_is_valid(name: str) -> None:
    preset = load_preset(name)
    assert isinstance(preset, EnvPreset)
    assert preset.name == name and preset.path is not None and preset.path.stem == name
    assert preset.budgets.quick <= preset.budgets.full
    assert preset.eval.freq < preset.budgets.full and preset.eval.n_episodes >= 1
    assert preset.env.image_size >= 36  # SB3's NatureCNN minimum
    assert set(preset.algos) >= REQUIRED.get(name, set())
    for algo in preset.algorithms:
        cfg = preset.algo_config(algo)
        cls = getattr(sb3, algo.upper())
        valid = set(inspect.signature(cls.__init__).parameters) - {"self", "policy", "env"}
        valid |= set(inspect.signature(ALGOS[algo].__init__).parameters)  # e.g. CurlSAC's encoder_tau
        assert set(cfg["hyperparams"]) <= valid, (name, algo)
        policy_cls = cls.policy_aliases[cfg["policy"]]
        policy_params = set(inspect.signature(policy_cls.__init__).parameters)
        assert set(cfg["hyperparams"].get("policy_kwargs", {})) <= policy_params, (name, algo)
        if "batch_size" in cfg["hyperparams"] and "n_steps" in cfg["hyperparams"]:
            rollout = cfg["hyperparams"]["n_steps"] * cfg["n_envs"]
            assert rollout % cfg["hyperparams"]["batch_size"] == 0, (name, algo)
        crop = cfg["aux"].get("crop_size")
        assert crop is None or crop < preset.env.image_size
        if cfg["action_noise"]:
            assert make_action_noise(cfg["action_noise"], 2) is not None
    assert preset.action_space_type in ("discrete", "continuous")
    if preset.env.kind == "atari":
        assert preset.state_dim is None
    else:
        assert isinstance(preset.state_dim, int) and preset.state_dim > 0


@pytest.mark.parametrize("task,repeat", sorted(CURL_REPEATS.items()))
def test_dmc_presets_follow_curl(task: str, repeat: int) -> None:
    preset = load_preset(f"dmc-{task}")
    assert preset.env.action_repeat == repeat
    assert preset.env.image_size == 84 and preset.env.frame_stack == 3
    assert preset.budgets.quick * repeat == 100_000 and preset.budgets.full * repeat == 500_000
    sac = preset.algo_config("sac")["hyperparams"]
    assert sac["learning_rate"] == (2e-4 if task == "cheetah-run" else 1e-3)
    # Replay of 84x84x9 uint8 obs + next_obs must fit in 24 GiB.
    assert sac["buffer_size"] * 2 * 84 * 84 * 9 < 24 * 2**30


def test_atari_presets_follow_atari_100k() -> None:
    preset = load_preset("atari-pong")
    assert preset.budgets.quick == 100_000 and preset.frames_per_step == 4
    assert preset.env.frame_stack == 4 and preset.env.grayscale
    assert preset.env.kwargs["sticky_actions"] is False


def test_unknown_preset_lists_available() -> None:
    with pytest.raises(ValueError) as err:
        load_preset("distractor-eazy")
    message = str(err.value)
    assert "distractor-easy" in message and "dmc-cheetah-run" in message and "Did you mean" in message


def test_unknown_algo_lists_supported() -> None:
    with pytest.raises(ValueError, match=r"supports: a2c, dqn, ppo"):
        load_preset("distractor-easy").algo_config("sac")


def _write(tmp_path: Path, data: dict, name: str = "mine.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def _base() -> dict:
    return load_preset("distractor-easy").to_dict()


def test_user_preset_file_loads(tmp_path: Path) -> None:
    data = _base()
    del data["name"]
    data["env"]["kwargs"]["difficulty"] = 0.5
    preset = load_preset(_write(tmp_path, data, "medium.yaml"))
    assert preset.name == "medium" and preset.env.kwargs["difficulty"] == 0.5
    assert load_preset(str(tmp_path / "medium.yaml")).name == "medium"


@pytest.mark.parametrize(
    "mutate,match",
    [
        (lambda d: d["env"].update(frame_stak=3), r"unknown field.*'frame_stak'.*did you mean 'frame_stack'"),
        (lambda d: d["env"].update(frame_stack=0), r"env.frame_stack must be an integer >= 1"),
        (lambda d: d["env"].update(kind="mujoco"), r"env.kind must be one of"),
        (lambda d: d["env"].update(image_size="big"), r"env.image_size must be an integer"),
        (lambda d: d["budgets"].update(quick=10**9), r"budgets.quick .* larger than budgets.full"),
        (lambda d: d.update(description="two\nlines"), r"one-line"),
        (lambda d: d["algos"]["ppo"]["hyperparams"].update(n_step=8), r"'n_step'.*did you mean 'n_steps'"),
        (lambda d: d["algos"]["ppo"].update(policy="TransformerPolicy"), r"policy must be one of"),
        (lambda d: d["algos"].update(sac={}), r"SAC needs a continuous action space"),
        (lambda d: d["algos"].update(trpo={}), r"unsupported algorithm 'trpo'"),
        (lambda d: d.update(algos={}), r"at least one algorithm"),
        (lambda d: d.update(extra_field=1), r"unknown field"),
    ],
)
def test_bad_fields_give_clear_errors(tmp_path: Path, mutate, match: str) -> None:
    data = _base()
    mutate(data)
    with pytest.raises(PresetError, match=match):
        load_preset(_write(tmp_path, data))


def test_dqn_rejected_on_continuous(tmp_path: Path) -> None:
    data = load_preset("distractor-continuous").to_dict()
    data["algos"]["dqn"] = {"policy": "CnnPolicy"}
    with pytest.raises(PresetError, match="DQN needs a discrete action space"):
        load_preset(_write(tmp_path, data))


def test_malformed_yaml_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("env: [unclosed\n")
    with pytest.raises(PresetError, match="not valid YAML"):
        load_preset(bad)
    with pytest.raises(PresetError, match="not found"):
        load_preset(tmp_path / "nope.yaml")


def test_sb3_params_and_section_mapping_access() -> None:
    assert "n_steps" in sb3_constructor_params("ppo") and "buffer_size" in sb3_constructor_params("sac")
    preset = load_preset("distractor-easy")
    assert preset.env["kind"] == preset.env.kind == "distractor"
    assert preset.budgets["quick"] == preset.budget("quick")
    assert preset.eval.get("n_episodes") == preset.eval.n_episodes
    assert bundled_presets_dir().name == "envs"


def test_preset_keywords_of_the_curl_classes_match_their_signatures() -> None:
    import inspect

    import stable_baselines3 as sb3

    from curl_rl import ALGOS
    from curl_rl.envs.presets import CURL_RL_ALGO_PARAMS

    for algo, cls in ALGOS.items():
        own = set(inspect.signature(cls.__init__).parameters) - set(
            inspect.signature(getattr(sb3, algo.upper()).__init__).parameters
        )
        own -= {"args", "kwargs", "aux", "routing", "performance"}
        assert own == set(CURL_RL_ALGO_PARAMS.get(algo, ())), algo


def test_own_presets_are_found_by_name_through_the_env_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from curl_rl.envs.presets import ENV_PATH_VAR

    data = yaml.safe_load((bundled_presets_dir() / "distractor-easy.yaml").read_text())
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, description in ((first, "mine, first"), (second, "mine, second")):
        folder.mkdir()
        for name in ("my-task", "distractor-easy"):
            (folder / f"{name}.yaml").write_text(yaml.safe_dump({**data, "name": name, "description": description}))
    assert "my-task" not in list_presets()
    monkeypatch.setenv(ENV_PATH_VAR, f"{first}{__import__('os').pathsep}{second}")
    assert list_presets()["my-task"] == "mine, first"  # the earliest folder wins, like $PATH
    assert load_preset("my-task").path == first / "my-task.yaml"
    assert load_preset("distractor-easy").description == "mine, first"  # a user's file shadows a bundled one
    monkeypatch.setenv(ENV_PATH_VAR, str(tmp_path / "typo"))
    with pytest.raises(PresetError, match=f"{ENV_PATH_VAR} names .*typo, which is not a folder"):
        list_presets()


def test_the_template_is_a_valid_preset_and_the_cli_prints_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from curl_rl.envs.template import PRESET_TEMPLATE
    from curl_rl.experiment.cli import main

    assert main(["envs", "--template"]) == 0
    text = capsys.readouterr().out
    assert text == PRESET_TEMPLATE
    path = tmp_path / "my-task.yaml"
    path.write_text(text)
    preset = load_preset(path)
    assert preset.name == "my-task" and preset.env.id == "CartPole-v1" and preset.budget("quick") == 50000


def test_every_problem_of_a_preset_is_reported_at_once_and_budgets_are_optional(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        'description: "two\\nlines"\nenv: {kind: gym, id: CartPole-v1, frame_stack: 0}\n'
        "eval: {freq: 0}\nalgos: {ppo: {n_envs: 0}, dqn: {hyperparams: {gama: 0.9}}}\n"
    )
    with pytest.raises(PresetError) as err:
        load_preset(path)
    message = str(err.value)
    for part in ("5 problems", "description", "frame_stack", "eval.freq", "n_envs", "'gama'"):
        assert part in message, part
    path.write_text("description: no budgets\nenv: {kind: gym, id: CartPole-v1}\nalgos: {ppo: {}}\n")
    preset = load_preset(path)
    assert preset.budgets is None
    with pytest.raises(ValueError, match="--steps"):
        preset.budget("quick")


def test_wrappers_are_applied_innermost_first(tmp_path: Path) -> None:
    from curl_rl.envs import make_env

    path = tmp_path / "wrapped.yaml"
    path.write_text(
        "description: wrapped\nenv: {kind: gym, id: curl_rl/Distractor-v0, image_size: 64, frame_stack: 1,\n"
        "  wrappers: [gymnasium.wrappers.RecordEpisodeStatistics, {class: gymnasium.wrappers.ClipReward,\n"
        "  kwargs: {}}]}\nalgos: {ppo: {}}\n"
    )
    preset = load_preset(path)
    assert [w["class"] for w in preset.env.wrappers] == [
        "gymnasium.wrappers.RecordEpisodeStatistics",
        "gymnasium.wrappers.ClipReward",
    ]
    with pytest.raises(ValueError, match=r"wrappers\[1\].*ClipReward"):
        make_env(preset, 0)  # ClipReward without bounds is refused: the failing entry is named
    path.write_text(
        "description: wrapped\nenv: {kind: gym, id: curl_rl/Distractor-v0, image_size: 64, frame_stack: 1,\n"
        "  wrappers: [{class: gymnasium.wrappers.ClipReward, kwargs: {min_reward: -0.25, max_reward: 0.25}}]}\n"
        "algos: {ppo: {}}\n"
    )
    env = make_env(load_preset(path), 0)
    rewards = [env.step(env.action_space.sample())[1] for _ in range(30)]
    assert max(abs(r) for r in rewards) <= 0.25
    with pytest.raises(PresetError, match="kind 'gym'"):
        path.write_text(
            "description: x\nenv: {kind: distractor, wrappers: [gymnasium.wrappers.ClipReward]}\nalgos: {ppo: {}}\n"
        )
        load_preset(path)


@pytest.mark.parametrize("name", sorted(n for n in list_presets() if n.startswith("dmc-") or n.endswith("continuous")))
@pytest.mark.parametrize("algo", ["sac", "td3"])
def test_off_policy_presets_use_curls_encoder_without_a_final_relu(name: str, algo: str) -> None:
    # SB3's NatureCNN ends in a ReLU: under the critic's lr 1e-3 all 50 output units died within 250
    # updates on DMC cartpole (batch 32), every frame became the zero vector and the contrastive
    # loss sat at ln(32) for good. CURL's encoder ends in LayerNorm, as CURL_PAPER_SAC has it.
    import torch

    from curl_rl import CurlEncoder, preset_kwargs

    kwargs = preset_kwargs(name, algo, "curl")["policy_kwargs"]
    assert kwargs["features_extractor_class"] is CurlEncoder
    assert kwargs["features_extractor_kwargs"] == {"features_dim": 50, "tanh": False}
    encoder = CurlEncoder(
        __import__("gymnasium").spaces.Box(0, 255, (9, 84, 84), np.uint8), features_dim=50, tanh=False
    )
    assert (encoder(torch.rand(8, 9, 84, 84)) < 0).any()  # no ReLU on the output: units cannot all die
