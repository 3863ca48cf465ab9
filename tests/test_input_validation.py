"""Input validation before training: accepted observation layouts, and one test per bad input
(issue 5, item 4), each asserting that the error names the fix."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from tiny_envs import DotEnv

from curl_rl import CurlEncoder, CurlPPO, CurlSAC

SMALL = dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(num_layers=2, num_filters=8))
PPO_KW = dict(n_steps=32, batch_size=16, n_epochs=1, device="cpu")
SAC_KW = dict(buffer_size=100, learning_starts=10, batch_size=8, device="cpu")


class DictDot(gym.ObservationWrapper):
    """DotEnv with its image under ``"image"`` next to a non-image vector."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = spaces.Dict({"image": env.observation_space, "vec": spaces.Box(-1, 1, (2,))})

    def observation(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {"image": obs, "vec": np.full(2, 0.5, np.float32)}


class VectorEnv(gym.Env):
    observation_space = spaces.Box(-1, 1, (4,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self.np_random.uniform(-1, 1, 4).astype(np.float32), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self.np_random.uniform(-1, 1, 4).astype(np.float32), 0.0, False, False, {}


class FloatImageEnv(VectorEnv):
    def __init__(self, low: float = 0.0, high: float = 255.0) -> None:
        self.observation_space = spaces.Box(low, high, (36, 36, 3), np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        return np.zeros((36, 36, 3), np.float32), {}


class VectorEncoder(BaseFeaturesExtractor):
    def __init__(self, observation_space: spaces.Box) -> None:
        super().__init__(observation_space, 16)
        self.net = torch.nn.Linear(int(np.prod(observation_space.shape)), 16)

    def forward(self, observations: torch.Tensor) -> torch.Tensor:
        return self.net(observations)


# -- accepted layouts ----------------------------------------------------------------------------
@pytest.mark.parametrize("channel_first", [False, True])
def test_uint8_images_train_channel_last_or_first(channel_first: bool) -> None:
    model = CurlPPO("CnnPolicy", DotEnv(channel_first=channel_first), aux="curl", policy_kwargs=SMALL, **PPO_KW)
    assert model.observation_space.shape == (6, 24, 24)  # SB3 transposed the channel-last env
    model.learn(64)
    assert np.isfinite(model.logger.name_to_value["aux/loss"])


def test_channel_last_sac_trains() -> None:
    model = CurlSAC("CnnPolicy", DotEnv(continuous=True), aux="curl", policy_kwargs=SMALL, **SAC_KW)
    model.learn(20)
    assert np.isfinite(model.logger.name_to_value["aux/loss"])


def test_dict_observations_augment_only_the_image_keys() -> None:
    model = CurlPPO("MultiInputPolicy", DictDot(DotEnv(size=36)), aux="curl", **PPO_KW)
    assert list(model.aux_head.augmentations) == ["image"]
    obs = {"image": torch.randint(0, 256, (4, 6, 36, 36), dtype=torch.uint8), "vec": torch.rand(4, 2)}
    out = model.aux_head.augment(obs)
    assert out["vec"] is obs["vec"] and out["image"].shape == obs["image"].shape
    assert not torch.equal(out["image"], obs["image"])
    model.learn(64)
    assert np.isfinite(model.logger.name_to_value["aux/loss"])


def test_dict_observations_train_with_sac() -> None:
    model = CurlSAC("MultiInputPolicy", DictDot(DotEnv(size=36, continuous=True)), aux="curl", **SAC_KW)
    model.learn(20)
    assert np.isfinite(model.logger.name_to_value["aux/loss"])


def test_sac_cnn_policy_keeps_a_cnn_encoder() -> None:
    model = CurlSAC("CnnPolicy", DotEnv(size=36, continuous=True), aux="curl", **SAC_KW)
    assert isinstance(model.critic.features_extractor, NatureCNN)


def test_non_image_box_needs_a_user_encoder() -> None:
    with pytest.raises(ValueError, match="features_extractor_class"):
        CurlPPO("MlpPolicy", VectorEnv(), aux={"preset": "atc", "augment": []}, **PPO_KW)
    # with an encoder of their own, a non-augmenting objective trains on vectors
    model = CurlPPO(
        "MlpPolicy",
        VectorEnv(),
        aux={"preset": "atc", "augment": []},
        policy_kwargs=dict(features_extractor_class=VectorEncoder),
        **PPO_KW,
    )
    model.learn(64)
    assert np.isfinite(model.logger.name_to_value["aux/loss"])


def test_augmenting_a_non_image_box_is_rejected_even_with_an_encoder() -> None:
    with pytest.raises(ValueError, match="use a pixel env"):
        CurlPPO("MlpPolicy", VectorEnv(), aux="curl", policy_kwargs=dict(features_extractor_class=VectorEncoder))


# -- one test per bad input ------------------------------------------------------------------------
@pytest.mark.parametrize("dict_obs", [False, True])
def test_images_smaller_than_the_crop(dict_obs: bool) -> None:
    env: gym.Env = DictDot(DotEnv(size=24)) if dict_obs else DotEnv(size=24)
    policy = "MultiInputPolicy" if dict_obs else "CnnPolicy"
    with pytest.raises(ValueError, match="render larger frames or lower crop_size"):
        CurlPPO(policy, env, aux={"preset": "curl", "augment": ["crop"], "crop_size": 30})


def test_stacked_channels_that_do_not_divide_into_frames() -> None:
    with pytest.raises(ValueError, match="set frame_channels to a divisor of 6"):
        CurlPPO(
            "CnnPolicy", DotEnv(frames=2), aux={"preset": "curl", "augment": ["shift", "noise"], "frame_channels": 4}
        )


@pytest.mark.parametrize("low,high", [(0.0, 255.0), (-np.inf, np.inf)])
def test_float_images_outside_the_expected_range(low: float, high: float) -> None:
    with pytest.raises(ValueError, match=r"give uint8 images, or float images in \[0, 1\]"):
        CurlPPO("CnnPolicy", FloatImageEnv(low, high), aux="curl")


def test_non_square_images_with_shift() -> None:
    env = gym.wrappers.ResizeObservation(DotEnv(size=40), (36, 40))
    with pytest.raises(ValueError, match="use 'crop' instead"):
        CurlPPO("CnnPolicy", env, aux="curl")


@pytest.mark.parametrize(
    "overrides,fix",
    [
        ({"tau": 2.0}, "CURL uses 0.05"),
        ({"update_period": 0}, "must be >= 1"),
        ({"temperature": 0.0}, "must be > 0"),
        ({"augment": ["crop"]}, "needs crop_size"),
        ({"augment": ["crop", "shift"], "crop_size": 20}, "use either 'crop' or 'shift'"),
        ({"augment": []}, "set augment="),
        ({"augment": ["blur"]}, "is not one of"),
        ({"nan_policy": "ignore"}, "is not one of \\['raise', 'skip'\\]"),
        ({"batch_size": 1}, "use >= 2"),
        ({"queue_size": -1}, "0 disables the queue"),
        ({"grad_clip": 0.0}, "or None to disable clipping"),
        ({"temprature": 0.1}, "valid fields"),
    ],
)
def test_invalid_config_values(overrides: dict[str, Any], fix: str) -> None:
    with pytest.raises(ValueError, match=fix):
        CurlPPO("CnnPolicy", DotEnv(), aux={"preset": "curl", **overrides})


def test_unknown_preset_and_routing() -> None:
    with pytest.raises(ValueError, match="choose one of"):
        CurlPPO("CnnPolicy", DotEnv(), aux="simclr")
    with pytest.raises(ValueError, match="is not one of"):
        CurlSAC("CnnPolicy", DotEnv(continuous=True), aux="curl", routing="both")


@pytest.mark.parametrize("device", ["gpu0", "mps", "xla"])
def test_device_that_does_not_exist(device: str) -> None:
    if device == "mps" and torch.backends.mps.is_available():
        pytest.skip("this machine has MPS")
    with pytest.raises(ValueError, match="use device='auto'"):
        CurlPPO("CnnPolicy", DotEnv(), aux="curl", device=device, policy_kwargs=SMALL)


@pytest.mark.parametrize("field", ["weight", "future_weight", "temperature", "tau", "lr", "drac_weight"])
@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused_in_every_aux_field(field: str, value: float) -> None:
    from curl_rl import resolve_aux_config

    with pytest.raises(ValueError, match=f"{field}=.* is not a finite number"):
        resolve_aux_config({"preset": "curl+future", field: value})


def test_aux_dict_without_a_preset_is_refused_with_the_fix() -> None:
    from curl_rl import resolve_aux_config

    with pytest.raises(ValueError, match=r"names no preset.*'preset': 'curl'"):
        resolve_aux_config({"weight": 0.1})
    with pytest.raises(ValueError, match="names no preset"):
        CurlPPO("CnnPolicy", DotEnv(), aux={"weight": 0.1})
    assert resolve_aux_config({"preset": "curl", "weight": 0.1}).weight == 0.1


def test_cuda_without_a_gpu_falls_back_to_the_cpu_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    # SB3's behaviour (get_device falls back to the CPU), plus a warning naming the fix
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.warns(RuntimeWarning, match="CUDA is not available: training on the CPU"):
        model = CurlPPO(
            "CnnPolicy", DotEnv(), aux="curl", device="cuda", n_steps=32, batch_size=16, policy_kwargs=SMALL
        )
    assert model.device.type == "cpu"


def test_batch_too_small_for_negatives() -> None:
    with pytest.raises(ValueError, match="batch"):
        CurlSAC("CnnPolicy", DotEnv(continuous=True), aux="curl", batch_size=1, buffer_size=100)


@pytest.mark.parametrize("dict_inputs", ["all", "images"])
def test_dict_inputs_images_hides_the_other_keys_from_the_auxiliary_task(dict_inputs: str) -> None:
    model = CurlPPO(
        "MultiInputPolicy", DictDot(DotEnv(size=36)), aux={"preset": "curl", "dict_inputs": dict_inputs}, **PPO_KW
    )
    image = torch.randint(0, 256, (4, 6, 36, 36), dtype=torch.uint8)
    vec_a, vec_b = torch.rand(4, 2), 10 * torch.rand(4, 2)
    # the RL loss sees every key either way (it hid them before the fix)
    assert torch.equal(model._aux_augment_rl({"image": image, "vec": vec_a})["vec"], vec_a)
    assert torch.equal(
        model.aux_head.aux_view({"image": image, "vec": vec_a})["vec"] == 0, torch.full((4, 2), dict_inputs == "images")
    )

    def aux_loss(vec: torch.Tensor) -> float:
        model.aux_head.generator.manual_seed(0)  # the same augmentations for both calls
        with torch.no_grad():
            return float(model._aux_loss({"image": image, "vec": vec}, None))

    same = aux_loss(vec_a) == aux_loss(vec_b)
    assert same == (dict_inputs == "images")  # with "all", the vector keys change the task
    model.learn(64)
    assert np.isfinite(model.logger.name_to_value["aux/loss"])
