"""A 16x16 "moving dot" env for the command-line tests, reached the way a user's own env is.

The presets in ``tests/envs/*.yaml`` name it as ``cli_envs:Dots-v0`` (gymnasium imports this
module, which registers the id) and the tests put that folder on ``$CURL_RL_ENV_PATH``, so the
CLI tests run in seconds through the same preset code as the bundled envs. ``crash_flag`` makes the
env raise while that file exists (how the tests make one run of a compare fail).
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces


class DotEnv(gym.Env):
    """A dot on a dark canvas that the actions move; reward for nearing the centre.

    :param size: image side.
    :param frames: frames stacked along the channel axis, newest last.
    :param continuous: Box(2) actions instead of Discrete(5).
    :param episode_len: steps per episode.
    :param render_mode: None or ``"rgb_array"``.
    :param crash_seeds: seeds (of the first reset) whose env raises in ``step`` ...
    :param crash_flag: ... while this file exists.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        size: int = 16,
        frames: int = 1,
        continuous: bool = False,
        episode_len: int = 16,
        render_mode: str | None = None,
        crash_seeds: tuple[int, ...] = (),
        crash_flag: str | None = None,
    ) -> None:
        self.size, self.frames, self.episode_len, self.render_mode = size, frames, episode_len, render_mode
        self.crash_seeds, self.crash_flag, self.first_seed = tuple(crash_seeds), crash_flag, None
        self.observation_space = spaces.Box(0, 255, (size, size, 3 * frames), np.uint8)
        self.action_space: spaces.Space[Any] = (
            spaces.Box(-1.0, 1.0, (2,), np.float32) if continuous else spaces.Discrete(5)
        )
        self._stack: list[np.ndarray] = []
        self.pos = np.zeros(2, dtype=int)
        self.t = 0

    def _frame(self) -> np.ndarray:
        img = np.full((self.size, self.size, 3), 20, np.uint8)
        y, x = self.pos
        img[max(0, y - 1) : y + 2, max(0, x - 1) : x + 2] = (250, 180, 40)
        return img

    def _state(self) -> np.ndarray:
        return (self.pos / self.size).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self.first_seed is None:
            self.first_seed = seed
        self.t = 0
        self.pos = self.np_random.integers(2, self.size - 2, size=2)
        self._stack = [self._frame()] * self.frames
        return np.concatenate(self._stack, axis=-1), {"state": self._state()}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        if self.first_seed in self.crash_seeds and self.crash_flag and os.path.exists(self.crash_flag):
            raise RuntimeError(f"deliberate failure of the env seeded {self.first_seed} ({self.crash_flag} exists)")
        if isinstance(self.action_space, spaces.Discrete):
            move = np.array([(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)][int(action)])
        else:
            move = np.sign(np.round(np.asarray(action, dtype=np.float64))).astype(int)
        self.pos = np.clip(self.pos + move, 1, self.size - 2)
        self.t += 1
        self._stack = [*self._stack[1:], self._frame()]
        reward = -float(np.abs(self.pos - self.size // 2).sum()) / self.size
        obs = np.concatenate(self._stack, axis=-1)
        return obs, reward, False, self.t >= self.episode_len, {"state": self._state()}

    def render(self) -> np.ndarray:
        return self._frame()


gym.register("Dots-v0", entry_point=DotEnv)
