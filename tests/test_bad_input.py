"""Bad input fails before training with an error naming the fix."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from tiny_envs import DotEnv

from curl_rl import CurlDQN, CurlPPO, CurlSAC


class VectorEnv(gym.Env):
    observation_space = spaces.Box(-1, 1, (4,), np.float32)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        return np.zeros(4, np.float32), {}

    def step(self, action):  # type: ignore[no-untyped-def]
        return np.zeros(4, np.float32), 0.0, False, False, {}


class FloatImageEnv(VectorEnv):
    observation_space = spaces.Box(0, 255, (24, 24, 3), np.float32)

    def reset(self, *, seed=None, options=None):  # type: ignore[no-untyped-def]
        return np.zeros((24, 24, 3), np.float32), {}


def test_non_image_observations_rejected_without_encoder() -> None:
    with pytest.raises(ValueError, match="pixel env"):
        CurlPPO("MlpPolicy", VectorEnv(), aux="curl")


def test_float_images_rejected() -> None:
    with pytest.raises(ValueError, match="uint8"):
        CurlPPO("MlpPolicy", FloatImageEnv(), aux="curl")


def test_crop_larger_than_image() -> None:
    with pytest.raises(ValueError, match="crop_size"):
        CurlPPO("CnnPolicy", DotEnv(size=24), aux={"preset": "curl", "augment": ["crop"], "crop_size": 30})


def test_frames_must_divide_channels() -> None:
    with pytest.raises(ValueError, match="frame_channels"):
        CurlPPO("CnnPolicy", DotEnv(frames=2), aux={"preset": "curl", "frame_channels": 4})


def test_batch_too_small_for_negatives() -> None:
    with pytest.raises(ValueError, match="batch"):
        CurlSAC("CnnPolicy", DotEnv(continuous=True), aux="curl", batch_size=1, buffer_size=100)


def test_invalid_config_and_unknown_preset() -> None:
    with pytest.raises(ValueError, match="tau"):
        CurlDQN("CnnPolicy", DotEnv(), aux={"preset": "curl", "tau": 2.0}, buffer_size=100)
    with pytest.raises(ValueError, match="unknown aux preset"):
        CurlPPO("CnnPolicy", DotEnv(), aux="simclr")
    with pytest.raises(ValueError, match="routing"):
        CurlPPO("CnnPolicy", DotEnv(), aux="curl", routing="both")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_crop_protocol_acts_on_centre_crop() -> None:
    model = CurlPPO(
        "CnnPolicy",
        DotEnv(size=40),
        aux={"preset": "curl", "augment": ["crop"], "crop_size": 36},
        n_steps=32,
        batch_size=16,
        n_epochs=1,
    )
    model.learn(32)
    obs = DotEnv(size=40).reset(seed=0)[0]
    action, _ = model.predict(obs, deterministic=True)
    assert model.action_space.contains(action)
