"""Tiny image environments for fast tests (a dot that moves; frames stacked along channels)."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class DotEnv(gym.Env):
    """A bright dot on a dark ``size`` x ``size`` canvas; actions move it; reward for nearing the centre.

    :param size: image side.
    :param frames: frames stacked along the last (channel) axis, newest last.
    :param continuous: Box(2) actions instead of Discrete(5).
    :param episode_len: steps per episode (truncation).
    :param channel_first: emit (C, H, W) instead of (H, W, C).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        size: int = 24,
        frames: int = 2,
        continuous: bool = False,
        episode_len: int = 25,
        channel_first: bool = False,
    ) -> None:
        self.size, self.frames, self.episode_len, self.channel_first = size, frames, episode_len, channel_first
        self.frame_channels = 3  # RGB frames, stacked by the env itself (read by curl_rl's augmentations)
        shape = (3 * frames, size, size) if channel_first else (size, size, 3 * frames)
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.action_space = spaces.Box(-1, 1, (2,), np.float32) if continuous else spaces.Discrete(5)
        self._stack: list[np.ndarray] = []

    def _frame(self) -> np.ndarray:
        img = np.zeros((self.size, self.size, 3), np.uint8)
        y, x = self.pos
        img[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2] = (255, 200, 50)
        return img

    def _obs(self) -> np.ndarray:
        obs = np.concatenate(self._stack, axis=-1)
        return np.transpose(obs, (2, 0, 1)).copy() if self.channel_first else obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        self.pos = self.np_random.integers(2, self.size - 2, size=2)
        self._stack = [self._frame()] * self.frames
        return self._obs(), {"state": (self.pos / self.size).astype(np.float32)}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if isinstance(self.action_space, spaces.Discrete):
            move = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)][int(action)]
        else:
            move = np.sign(np.round(np.asarray(action)))
        self.pos = np.clip(self.pos + np.asarray(move, dtype=int), 1, self.size - 2)
        self.t += 1
        self._stack = [*self._stack[1:], self._frame()]
        dist = float(np.abs(self.pos - self.size // 2).sum())
        return (
            self._obs(),
            -dist / self.size,
            False,
            self.t >= self.episode_len,
            {"state": (self.pos / self.size).astype(np.float32)},
        )
