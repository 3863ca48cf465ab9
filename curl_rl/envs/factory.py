"""Build single and vectorised envs from presets.

Every env comes back wrapped in SB3's ``Monitor`` (so episode returns reach the logger), seeded,
and with channel-last ``uint8`` observations (SB3 transposes them itself).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import TimeLimit
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv

from curl_rl.envs.presets import EnvPreset, load_preset

#: Evaluation envs draw seeds from a stream offset by this much, so that evaluation episodes
#: never replay the training envs' starts when both are given the same seed.
EVAL_SEED_OFFSET = 1_000_000


def _as_preset(preset: EnvPreset | str | os.PathLike[str]) -> EnvPreset:
    return preset if isinstance(preset, EnvPreset) else load_preset(preset)


def build_env(
    preset: EnvPreset,
    *,
    evaluation: bool = False,
    render_mode: str | None = None,
    inner_wrapper: Callable[[gym.Env[Any, Any]], gym.Env[Any, Any]] | None = None,
) -> gym.Env[np.ndarray, Any]:
    """Build the preset's env, wrappers included, without ``Monitor`` and without seeding.

    :param preset: the preset.
    :param evaluation: evaluation variant (Atari: whole games, unclipped rewards).
    :param render_mode: None or ``"rgb_array"``.
    :param inner_wrapper: for Atari, wrapped right around the ALE env (else ignored).
    :return: the env.
    """
    spec = preset.env
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
    env: gym.Env[np.ndarray, Any]
    if spec.kind == "distractor":
        from curl_rl.envs.distractor import DistractorEnv
        from curl_rl.envs.presets import DISTRACTOR_IDS
        from curl_rl.envs.wrappers import wrap_pixels

        kwargs = {"continuous": DISTRACTOR_IDS[spec.id or ""], **spec.kwargs}
        base = DistractorEnv(size=spec.image_size, render_mode=render_mode, **kwargs)
        env = wrap_pixels(
            base,
            image_size=spec.image_size,
            grayscale=spec.grayscale,
            frame_stack=spec.frame_stack,
            action_repeat=spec.action_repeat,
        )
    elif spec.kind == "gym":
        from curl_rl.envs.classic import make_pixel_gym

        env = make_pixel_gym(
            spec.id or "",
            image_size=spec.image_size,
            grayscale=spec.grayscale,
            frame_stack=spec.frame_stack,
            action_repeat=spec.action_repeat,
            max_episode_steps=spec.max_episode_steps,
            wrappers=spec.wrappers,
            **spec.kwargs,
        )
    elif spec.kind == "dmc":
        from curl_rl.envs.dmc import make_dmc

        env = make_dmc(
            spec.domain or "",
            spec.task or "",
            image_size=spec.image_size,
            grayscale=spec.grayscale,
            frame_stack=spec.frame_stack,
            action_repeat=spec.action_repeat,
            render_mode=render_mode,
            **spec.kwargs,
        )
    elif spec.kind == "atari":
        from curl_rl.envs.atari import make_atari

        return make_atari(
            spec.id or "",
            image_size=spec.image_size,
            grayscale=spec.grayscale,
            frame_stack=spec.frame_stack,
            action_repeat=spec.action_repeat,
            max_episode_steps=spec.max_episode_steps,
            evaluation=evaluation,
            render_mode=render_mode,
            inner_wrapper=inner_wrapper,
            **spec.kwargs,
        )
    else:  # pragma: no cover - parse_preset rejects other kinds
        raise ValueError(f"unknown env kind {spec.kind!r}")
    if spec.max_episode_steps is not None and spec.kind != "gym":
        # gym kinds pass the limit to gym.make (in underlying steps); others count agent steps.
        env = TimeLimit(env, max_episode_steps=spec.max_episode_steps)
    return env


def _monitored(
    preset: EnvPreset, evaluation: bool, render_mode: str | None, monitor_file: str | None
) -> gym.Env[np.ndarray, Any]:
    def monitor(env: gym.Env[Any, Any]) -> gym.Env[Any, Any]:
        return Monitor(env, filename=monitor_file)

    if preset.env.kind == "atari":
        # Monitor under the life-loss/clipping wrappers so it logs true game scores.
        return build_env(preset, evaluation=evaluation, render_mode=render_mode, inner_wrapper=monitor)
    return monitor(build_env(preset, evaluation=evaluation, render_mode=render_mode))


def make_env(
    preset: EnvPreset | str | os.PathLike[str],
    seed: int,
    *,
    evaluation: bool = False,
    render_mode: str | None = None,
    monitor_file: str | None = None,
) -> gym.Env[np.ndarray, Any]:
    """Build one seeded, monitored pixel env from a preset.

    The env is reset once with the seed here, so a later ``reset()`` without a seed continues a
    reproducible stream; its action space is seeded too.

    :param preset: an :class:`EnvPreset`, a bundled preset name or a preset file path.
    :param seed: seed (evaluation envs use ``seed + EVAL_SEED_OFFSET``).
    :param evaluation: build the evaluation variant.
    :param render_mode: None or ``"rgb_array"`` (``env.render()`` then returns a frame).
    :param monitor_file: SB3 Monitor CSV path prefix (None: keep stats in memory only).
    :return: the env, ``Monitor``-wrapped (for Atari, Monitor sits under the Atari wrappers).
    """
    preset = _as_preset(preset)
    env = _monitored(preset, evaluation, render_mode, monitor_file)
    seed = int(seed) + (EVAL_SEED_OFFSET if evaluation else 0)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    return env


def _env_fn(preset: EnvPreset, seed: int, evaluation: bool, monitor_file: str | None) -> gym.Env[np.ndarray, Any]:
    return make_env(preset, seed, evaluation=evaluation, monitor_file=monitor_file)


def make_vec_env(
    preset: EnvPreset | str | os.PathLike[str],
    n_envs: int,
    seed: int,
    *,
    evaluation: bool = False,
    vec_env_cls: type[VecEnv] | None = None,
    monitor_dir: str | None = None,
) -> VecEnv:
    """Build ``n_envs`` copies of the preset's env (env ``i`` seeded with ``seed + i``).

    :param preset: an :class:`EnvPreset`, a bundled preset name or a preset file path.
    :param n_envs: number of envs.
    :param seed: base seed.
    :param evaluation: build evaluation variants (seeds offset by ``EVAL_SEED_OFFSET``).
    :param vec_env_cls: ``DummyVecEnv`` (default) or ``SubprocVecEnv`` (the latter needs an
        ``if __name__ == "__main__":`` guard in the calling script).
    :param monitor_dir: folder for SB3 Monitor CSVs (``<rank>.monitor.csv``; ``eval-<rank>...``
        for evaluation envs); None keeps stats in memory only.
    :return: the vectorised env, seeded for its next ``reset()``.
    """
    if n_envs < 1:
        raise ValueError(f"n_envs must be >= 1, got {n_envs}")
    preset = _as_preset(preset)
    if monitor_dir is not None:
        os.makedirs(monitor_dir, exist_ok=True)
    fns = []
    for rank in range(n_envs):
        monitor_file = None
        if monitor_dir is not None:
            monitor_file = os.path.join(monitor_dir, f"{'eval-' if evaluation else ''}{rank}")
        fns.append(functools.partial(_env_fn, preset, int(seed) + rank, evaluation, monitor_file))
    cls: Any = vec_env_cls or DummyVecEnv
    vec_env: VecEnv = cls(fns)
    vec_env.seed(int(seed) + (EVAL_SEED_OFFSET if evaluation else 0))
    vec_env.action_space.seed(int(seed))
    return vec_env
