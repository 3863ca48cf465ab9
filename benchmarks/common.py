"""Shared pieces of the benchmark scripts: a synthetic pixel env and machine facts."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import datetime, timezone
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces


class SyntheticPixelEnv(gym.Env):
    """Random-but-cheap frames of a fixed shape: isolates the agent's cost from the env's.

    :param size: image side.
    :param channels: channels (e.g. 9 = 3 stacked RGB frames).
    :param continuous: Box actions (SAC/TD3) instead of Discrete(4).
    :param episode_len: steps per episode.
    """

    def __init__(self, size: int = 64, channels: int = 9, continuous: bool = False, episode_len: int = 200) -> None:
        self.observation_space = spaces.Box(0, 255, (size, size, channels), np.uint8)
        self.action_space = spaces.Box(-1, 1, (2,), np.float32) if continuous else spaces.Discrete(4)
        self.episode_len = episode_len
        self._frames = np.random.default_rng(0).integers(0, 256, (16, size, size, channels), dtype=np.uint8)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return self._frames[0], {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        return self._frames[self.t % 16], float(self.np_random.random()), False, self.t >= self.episode_len, {}


def synthetic_ppo(aux: Any, n_steps: int, batch_size: int, n_epochs: int, **kwargs: Any) -> Any:
    """CurlPPO on :class:`SyntheticPixelEnv` with CURL's encoder (50 features), seed 0.

    :param aux: the auxiliary objective.
    :param n_steps: rollout length.
    :param batch_size: minibatch size.
    :param n_epochs: epochs per rollout.
    :param kwargs: more CurlPPO keywords (size/channels go to the env as ``size``/``channels``).
    """
    from curl_rl import CurlEncoder, CurlPPO

    env = SyntheticPixelEnv(kwargs.pop("size", 84), kwargs.pop("channels", 9))
    policy_kwargs = dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(features_dim=50))
    return CurlPPO(
        "CnnPolicy",
        env,
        aux=aux,
        n_steps=n_steps,
        batch_size=batch_size,
        n_epochs=n_epochs,
        policy_kwargs=policy_kwargs,
        seed=0,
        **kwargs,
    )


def preset_ppo(env: str, aux: Any, **kwargs: Any) -> Any:
    """CurlPPO with an env preset's own env, encoder and PPO settings (``preset_kwargs``), seed 0.

    :param env: env preset name (``distractor-easy``).
    :param aux: an auxiliary preset name, or a dict naming one (``"preset"``) with the arm's own overrides
        (e.g. ``views``), applied on top of the preset's (e.g. its searched weight).
    :param kwargs: more CurlPPO keywords (``device``, ``performance``).
    """
    import dataclasses

    from curl_rl import CurlPPO, preset_kwargs
    from curl_rl.auxiliary.config import resolve_aux_config
    from curl_rl.envs import make_vec_env
    from curl_rl.envs.presets import load_preset

    preset = load_preset(env)
    vec_env = make_vec_env(env, n_envs=int(preset.algos["ppo"].get("n_envs", 1)), seed=0)
    overrides = {"preset": aux} if isinstance(aux, str) else dict(aux)
    settings = preset_kwargs(env, "ppo", aux=overrides.pop("preset"))
    settings["aux"] = dataclasses.replace(resolve_aux_config(settings["aux"]), **overrides)
    return CurlPPO("CnnPolicy", vec_env, **settings, seed=0, **kwargs)


def machine_description() -> str:
    """One line naming the CPU, core count, torch version and allocator settings."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    malloc = os.environ.get("MALLOC_MMAP_MAX_", "default")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (
        f"{cpu}, {os.cpu_count()} cores, {gpu}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
        f"MALLOC_MMAP_MAX_={malloc}"
    )


def stamp() -> str:
    """UTC date and git revision for result records."""
    try:
        rev = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
        ).stdout.strip()
    except OSError:
        rev = "unknown"
    return f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, git {rev or 'unknown'}"
