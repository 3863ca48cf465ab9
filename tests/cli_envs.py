"""A tiny env-preset module for the CLI tests, loaded through ``CURL_RL_ENVS_MODULE=<this file>``.

It offers the same four functions as ``curl_rl.envs`` (``list_presets``, ``load_preset``,
``make_env``, ``make_vec_env``) over a 16x16 "moving dot" task, so the command-line tests run in
seconds and do not depend on the real presets' budgets. Presets are ``SimpleNamespace`` objects so
that they pickle into worker processes.
"""

from __future__ import annotations

import copy
import types
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv


class DotEnv(gym.Env):
    """A dot on a dark canvas that the actions move; reward for nearing the centre.

    :param size: image side.
    :param frames: frames stacked along the channel axis, newest last.
    :param continuous: Box(2) actions instead of Discrete(5).
    :param episode_len: steps per episode.
    :param render_mode: None or ``"rgb_array"``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}

    def __init__(
        self,
        size: int = 16,
        frames: int = 2,
        continuous: bool = False,
        episode_len: int = 16,
        render_mode: str | None = None,
    ) -> None:
        self.size, self.frames, self.episode_len, self.render_mode = size, frames, episode_len, render_mode
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
        self.t = 0
        self.pos = self.np_random.integers(2, self.size - 2, size=2)
        self._stack = [self._frame()] * self.frames
        return np.concatenate(self._stack, axis=-1), {"state": self._state()}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
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


_ENCODER = {
    "features_extractor_class": "CurlEncoder",
    "features_extractor_kwargs": {"features_dim": 16, "num_layers": 2, "num_filters": 8},
}
_ALGOS: dict[str, dict[str, Any]] = {
    "ppo": {
        "policy": "CnnPolicy",
        "n_envs": 1,
        "hyperparams": {"n_steps": 32, "batch_size": 16, "n_epochs": 1, "policy_kwargs": _ENCODER},
        "aux": {"update_period": 1},
    },
    "a2c": {"policy": "CnnPolicy", "n_envs": 2, "hyperparams": {"n_steps": 8, "policy_kwargs": _ENCODER}, "aux": {}},
    "dqn": {
        "policy": "CnnPolicy",
        "n_envs": 1,
        "hyperparams": {"buffer_size": 500, "learning_starts": 32, "batch_size": 16, "policy_kwargs": _ENCODER},
        "aux": {},
    },
    "sac": {
        "policy": "CnnPolicy",
        "n_envs": 1,
        "hyperparams": {"buffer_size": 500, "learning_starts": 32, "batch_size": 16, "policy_kwargs": _ENCODER},
        "aux": {},
    },
}
_PRESETS: dict[str, dict[str, Any]] = {
    "dots": {
        "description": "a moving dot, discrete actions (CLI tests)",
        "env": {"size": 16, "frame_stack": 2, "continuous": False, "episode_len": 16},
        "budgets": {"quick": 128, "full": 1024},
        "eval": {"freq": 64, "n_episodes": 1},
        "algos": _ALGOS,
        "state_dim": 2,
        "action_space_type": "discrete",
    },
    "dots-continuous": {
        "description": "a moving dot, continuous actions (CLI tests)",
        "env": {"size": 16, "frame_stack": 2, "continuous": True, "episode_len": 16},
        "budgets": {"quick": 128, "full": 1024},
        "eval": {"freq": 64, "n_episodes": 1},
        "algos": _ALGOS,
        "state_dim": 2,
        "action_space_type": "continuous",
    },
}


def list_presets() -> dict[str, str]:
    """Preset name -> description."""
    return {name: p["description"] for name, p in _PRESETS.items()}


def load_preset(name: str) -> Any:
    """A preset by name (KeyError for unknown names, like a missing registry entry)."""
    if name not in _PRESETS:
        raise KeyError(f"no env preset named {name!r}")
    return types.SimpleNamespace(name=name, **copy.deepcopy(_PRESETS[name]))


def make_env(preset: Any, seed: int, *, evaluation: bool = False, render_mode: str | None = None) -> gym.Env:
    """One Monitor-wrapped env of the preset."""
    e = preset.env
    env = DotEnv(e["size"], e["frame_stack"], e["continuous"], e["episode_len"], render_mode=render_mode)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return Monitor(env)


def make_vec_env(
    preset: Any,
    n_envs: int,
    seed: int,
    *,
    evaluation: bool = False,
    vec_env_cls: Any = None,
    monitor_dir: str | None = None,
) -> VecEnv:
    """``n_envs`` envs seeded ``seed, seed + 1, ...``."""
    cls = vec_env_cls or DummyVecEnv
    venv = cls([lambda i=i: make_env(preset, seed + i, evaluation=evaluation) for i in range(n_envs)])
    venv.seed(seed)
    return venv
