"""Any gymnasium env from its ``rgb_array`` renders; classic control (CartPole, Pendulum) in particular.

Classic control draws with pygame (extra ``[classic]``). Without a display pygame needs SDL's
dummy video driver, which is selected here when ``SDL_VIDEODRIVER`` is unset. The original state
vector (e.g. CartPole's 4 numbers) goes to ``info["state"]``.
"""

from __future__ import annotations

import os
from typing import Any

import gymnasium as gym
import numpy as np

from curl_rl.envs.extras import require_extra
from curl_rl.envs.wrappers import apply_wrappers, wrap_pixels

_CLASSIC_MODULE = "gymnasium.envs.classic_control"


def needs_pygame(env_id: str) -> bool:
    """Whether a registered gymnasium env renders with pygame (classic control, toy text, box2d).

    :param env_id: a registered id.
    :return: True when its entry point lives in a pygame-rendered gymnasium family.
    """
    try:
        entry = gym.spec(env_id).entry_point
    except gym.error.Error:
        return False
    module = entry if isinstance(entry, str) else getattr(entry, "__module__", "")
    return isinstance(module, str) and module.startswith(
        (_CLASSIC_MODULE, "gymnasium.envs.box2d", "gymnasium.envs.toy_text")
    )


def make_pixel_gym(
    env_id: str,
    *,
    image_size: int = 64,
    grayscale: bool = False,
    frame_stack: int = 3,
    action_repeat: int = 1,
    max_episode_steps: int | None = None,
    render_mode: str | None = None,
    rescale_actions: bool = True,
    wrappers: list[dict[str, Any]] | None = None,
    **env_kwargs: Any,
) -> gym.Env[np.ndarray, Any]:
    """``gym.make(env_id, render_mode="rgb_array")`` made a pixel env with :func:`wrap_pixels`.

    :param env_id: any registered gymnasium id with ``rgb_array`` rendering.
    :param image_size: side of the observation image.
    :param grayscale: one luma channel per frame.
    :param frame_stack: frames stacked along channels, newest last (velocities need >= 2).
    :param action_repeat: underlying steps per agent step.
    :param max_episode_steps: episode limit in agent steps (None keeps the env's own limit).
    :param render_mode: accepted for symmetry; the env always renders ``rgb_array`` internally.
    :param rescale_actions: map a bounded continuous action space to [-1, 1] (SB3's advice;
        Pendulum's torque is [-2, 2]).
    :param wrappers: gymnasium wrappers around the env as made, before the pixel wrappers
        (a preset's ``env.wrappers``: ``[{"class": "module.Class", "kwargs": {...}}]``).
    :param env_kwargs: passed to ``gym.make``.
    :return: the pixel env.
    """
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
    if needs_pygame(env_id):
        require_extra("classic", f"pixel env {env_id}")
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
    if max_episode_steps is not None:
        env_kwargs["max_episode_steps"] = max_episode_steps * action_repeat
    env = gym.make(env_id, render_mode="rgb_array", **env_kwargs)
    env = apply_wrappers(env, wrappers or [])
    space = env.action_space
    if (
        rescale_actions
        and isinstance(space, gym.spaces.Box)
        and space.is_bounded()
        and not (np.all(space.low == -1.0) and np.all(space.high == 1.0))
    ):
        env = gym.wrappers.RescaleAction(env, np.float32(-1.0), np.float32(1.0))
    return wrap_pixels(
        env,
        image_size=image_size,
        grayscale=grayscale,
        frame_stack=frame_stack,
        action_repeat=action_repeat,
    )


def raw_spaces(env_id: str, **env_kwargs: Any) -> tuple[gym.Space[Any], gym.Space[Any]]:
    """Observation and action spaces of an env without rendering (no pygame needed).

    :param env_id: registered gymnasium id.
    :param env_kwargs: passed to ``gym.make``.
    :return: ``(observation_space, action_space)`` of the unwrapped env.
    """
    env = gym.make(env_id, **env_kwargs)
    try:
        return env.observation_space, env.action_space
    finally:
        env.close()
