"""Frames per stack come from the env's wrappers (or an explicit setting), never from the channel count."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.vec_env import DummyVecEnv, VecFrameStack
from tiny_envs import DotEnv

from curl_rl import CurlEncoder, CurlPPO, resolve_aux_config
from curl_rl.algos.frames import stacked_frame_channels
from curl_rl.auxiliary.augmentations import build_augmentation
from curl_rl.envs.wrappers import FrameStack

SMALL = dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(num_layers=2, num_filters=8))


class GrayEnv(gym.Env):
    """One grayscale 24x24 frame per step (channel last)."""

    observation_space = spaces.Box(0, 255, (24, 24, 1), np.uint8)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        return self.np_random.integers(0, 256, (24, 24, 1), dtype=np.uint8), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        return self.np_random.integers(0, 256, (24, 24, 1), dtype=np.uint8), 0.0, False, False, {}


def _three_gray_frames() -> torch.Tensor:
    # one sample, frames of value 0, 128 and 255 stacked on the channel axis
    return torch.stack([torch.full((8, 8), v, dtype=torch.uint8) for v in (0, 128, 255)]).unsqueeze(0)


def test_grayscale_and_jitter_never_mix_stacked_gray_frames() -> None:
    images = _three_gray_frames()
    gen = torch.Generator().manual_seed(0)
    gray = build_augmentation(
        resolve_aux_config({"preset": "none", "augment": ["grayscale"], "grayscale_p": 1.0, "frame_channels": 1}), 3
    )
    assert torch.equal(gray(images, gen).to(torch.uint8), images)
    jitter = build_augmentation(
        resolve_aux_config({"preset": "none", "augment": ["color_jitter"], "frame_channels": 1}), 3
    )
    out = jitter(images, gen)
    # each frame is flat, so brightness/contrast keep it flat and keep the frames' order
    for f in range(3):
        assert out[0, f].std() < 1e-4
    assert out[0, 0].mean() < out[0, 1].mean() < out[0, 2].mean()


def test_without_frame_information_three_channels_are_one_frame_not_a_guess() -> None:
    # no frame_channels: the whole image is one frame; nothing is inferred from "3"
    cfg = resolve_aux_config({"preset": "none", "augment": ["noise"]})
    assert cfg.frame_channels is None
    aug = build_augmentation(cfg, 3)
    assert aug.augmentations[0].frame_channels == 3  # one 3-channel frame, as given


@pytest.mark.parametrize("stack", ["curl_rl", "sb3"])
def test_frame_channels_come_from_the_stacking_wrapper(stack: str) -> None:
    if stack == "curl_rl":
        venv: Any = DummyVecEnv([lambda: FrameStack(GrayEnv(), 3)])
    else:
        venv = VecFrameStack(DummyVecEnv([GrayEnv]), n_stack=3)
    assert stacked_frame_channels(venv) == 1
    model = CurlPPO(
        "CnnPolicy",
        venv,
        aux={"preset": "curl", "augment": ["shift", "grayscale", "color_jitter"], "grayscale_p": 1.0},
        n_steps=32,
        batch_size=16,
        policy_kwargs=SMALL,
        device="cpu",
    )
    assert model.aux_config.frame_channels == 1
    assert model.aux_head is not None
    grayscale = model.aux_head.augmentations[None].augmentations[1]
    images = _three_gray_frames()
    assert torch.equal(grayscale(images, torch.Generator()).to(torch.uint8), images)
    model.learn(32)


def test_rgb_stack_is_read_from_the_env() -> None:
    assert stacked_frame_channels(DummyVecEnv([DotEnv])) == 3
    assert stacked_frame_channels(DummyVecEnv([GrayEnv])) is None


def test_unknown_stack_with_frame_aware_augmentation_is_refused_with_the_fix() -> None:
    class NineChannels(GrayEnv):
        observation_space = spaces.Box(0, 255, (24, 24, 9), np.uint8)

        def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
            return np.zeros((24, 24, 9), np.uint8), {}

    with pytest.raises(ValueError, match="set aux frame_channels"):
        CurlPPO("CnnPolicy", NineChannels(), aux={"preset": "curl", "augment": ["shift", "grayscale"]}, device="cpu")
    # shift alone does not care where frames end
    CurlPPO("CnnPolicy", NineChannels(), aux="curl", n_steps=32, batch_size=16, policy_kwargs=SMALL, device="cpu")
