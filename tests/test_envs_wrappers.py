"""Pixel wrappers on tiny synthetic envs: stacking order, action repeat, rendering, resizing."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces
from stable_baselines3.common.env_checker import check_env

from curl_rl.envs.wrappers import (
    ActionRepeat,
    FrameStack,
    ImageObservation,
    PixelObservation,
    resize_image,
    to_grayscale,
    wrap_pixels,
)


class CounterEnv(gym.Env[np.ndarray, int]):
    """State = step count; renders a 40x60 frame filled with the count; reward 1 per step."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, render_mode: str | None = "rgb_array", terminate_at: int = 1000) -> None:
        self.render_mode = render_mode
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float64)
        self.action_space = spaces.Discrete(2)
        self.terminate_at = terminate_at
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.t = int(self.np_random.integers(0, 3))
        return np.array([self.t, -self.t], dtype=np.float64), {}

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict]:
        self.t += 1
        return np.array([self.t, -self.t], dtype=np.float64), 1.0, self.t >= self.terminate_at, False, {}

    def render(self) -> np.ndarray:  # type: ignore[override]
        return np.full((40, 60, 3), self.t % 256, dtype=np.uint8)


class ImageEnv(gym.Env[np.ndarray, int]):
    """Observations are already 32x32 RGB frames holding the step count."""

    def __init__(self) -> None:
        self.observation_space = spaces.Box(0, 255, (32, 32, 3), np.uint8)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self) -> np.ndarray:
        return np.full((32, 32, 3), self.t, dtype=np.uint8)

    def step(self, action: int) -> tuple[Any, float, bool, bool, dict]:
        self.t += 1
        return self._obs(), 0.0, False, False, {}


def test_frame_stack_newest_last_and_reset_fill() -> None:
    env = FrameStack(ImageEnv(), 3)
    assert env.observation_space.shape == (32, 32, 9)
    obs, _ = env.reset()
    assert np.all(obs == 0)  # filled with the first frame
    for t in range(1, 5):
        obs, *_ = env.step(0)
        expected = [max(t - 2, 0), max(t - 1, 0), t]  # oldest ... newest
        assert [int(obs[0, 0, 3 * k]) for k in range(3)] == expected
    obs, _ = env.reset()
    assert np.all(obs == 0)


def test_frame_stack_returns_copies() -> None:
    env = FrameStack(ImageEnv(), 2)
    first, _ = env.reset()
    env.step(0)
    assert np.all(first == 0)


def test_action_repeat_sums_and_stops_at_episode_end() -> None:
    base = CounterEnv()
    env = ActionRepeat(base, 4)
    obs, _ = env.reset(seed=0)
    start = int(obs[0])
    base.terminate_at = start + 6
    obs, reward, terminated, _, _ = env.step(0)
    assert reward == 4.0 and obs[0] == start + 4 and not terminated
    obs, reward, terminated, _, _ = env.step(0)
    assert terminated and reward == 2.0 and obs[0] == start + 6
    with pytest.raises(ValueError):
        ActionRepeat(CounterEnv(), 0)


def test_pixel_observation_renders_and_keeps_state() -> None:
    env = PixelObservation(CounterEnv(), 40)
    assert env.observation_space == spaces.Box(0, 255, (40, 40, 3), np.uint8)
    obs, info = env.reset(seed=0)
    assert obs.shape == (40, 40, 3) and obs.dtype == np.uint8
    assert info["state"].dtype == np.float32 and info["state"].shape == (2,)
    obs, _, _, _, info = env.step(0)
    assert np.all(obs == info["state"][0])  # the frame shows the count
    check_env(env)


def test_pixel_observation_needs_rgb_array() -> None:
    with pytest.raises(ValueError, match="rgb_array"):
        PixelObservation(CounterEnv(render_mode=None), 16)


def test_wrap_pixels_full_chain_renders_once_per_agent_step() -> None:
    env = wrap_pixels(CounterEnv(), image_size=(40, 48), grayscale=True, frame_stack=4, action_repeat=3)
    assert env.observation_space.shape == (40, 48, 4)
    obs, info = env.reset(seed=0)
    start = int(info["state"][0])
    obs, reward, _, _, info = env.step(1)
    assert reward == 3.0
    assert [int(obs[0, 0, k]) for k in range(4)] == [start, start, start, start + 3]
    assert int(info["state"][0]) == start + 3
    check_env(env)


def test_wrap_pixels_uses_image_observations_directly() -> None:
    env = wrap_pixels(ImageEnv(), image_size=32, frame_stack=2)
    assert isinstance(env.env, ImageEnv)  # no resize wrapper when the size already matches
    assert env.observation_space.shape == (32, 32, 6)
    env = wrap_pixels(ImageEnv(), image_size=16, grayscale=True, frame_stack=1)
    assert isinstance(env.env, ImageObservation)
    assert env.observation_space.shape == (16, 16, 1)


def test_resize_and_grayscale() -> None:
    image = np.full((100, 150, 3), 77, dtype=np.uint8)
    out = resize_image(image, 84)
    assert out.shape == (84, 84, 3) and np.all(out == 77)
    assert resize_image(image, (10, 20)).shape == (10, 20, 3)
    assert resize_image(image[:, :, :1], 8).shape == (8, 8, 1)
    assert resize_image(image, (100, 150)) is image
    # Area averaging: a 2x2 checkerboard averages to mid grey.
    checker = np.indices((64, 64)).sum(axis=0) % 2 * 255
    out = resize_image(np.repeat(checker[:, :, None], 3, axis=2).astype(np.uint8), 32)
    assert np.all(np.abs(out.astype(int) - 128) <= 1)
    rgb = np.zeros((2, 2, 3), dtype=np.uint8)
    rgb[..., 1] = 255
    assert to_grayscale(rgb).shape == (2, 2, 1) and int(to_grayscale(rgb)[0, 0, 0]) == 150
