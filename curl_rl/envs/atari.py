"""Atari through ale-py with SB3's Atari wrappers and channel frame stacking (extra ``[atari]``).

The Atari-100k protocol (Kaiser et al. 2020, used by CURL, DrQ, SPR): 100k agent steps = 400k
frames with a frame skip of 4; 84x84 grayscale, 4 stacked frames; up to 30 no-op starts; episodes
capped at 108k frames (27k agent steps); rewards clipped to [-1, 1] and a lost life ends a
training episode; evaluation uses the true episode and the unclipped score. Sticky actions are
**off** (``repeat_action_probability=0``) as in that protocol; ``sticky_actions: true`` gives
Machado et al. (2018)'s recommended 0.25 instead, which is ALE v5's default.

SB3's ``Monitor`` goes directly around the ALE env, under the life-loss and clipping wrappers, so
logged returns are true game scores of whole games (as in SB3's ``make_atari_env``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np

from curl_rl.envs.extras import require_extra
from curl_rl.envs.wrappers import FrameStack

STICKY_ACTION_PROBABILITY = 0.25


def make_atari(
    env_id: str,
    *,
    image_size: int = 84,
    grayscale: bool = True,
    frame_stack: int = 4,
    action_repeat: int = 4,
    max_episode_steps: int | None = 27_000,
    sticky_actions: bool = False,
    noop_max: int = 30,
    terminal_on_life_loss: bool = True,
    clip_reward: bool = True,
    full_action_space: bool = False,
    evaluation: bool = False,
    render_mode: str | None = None,
    inner_wrapper: Callable[[gym.Env[Any, Any]], gym.Env[Any, Any]] | None = None,
) -> gym.Env[np.ndarray, Any]:
    """Build one Atari env.

    :param env_id: an ALE id, e.g. ``"ALE/Pong-v5"``.
    :param image_size: side of the warped grayscale frame.
    :param grayscale: must be True (SB3's ``WarpFrame`` is grayscale only).
    :param frame_stack: frames stacked along channels, newest last.
    :param action_repeat: frame skip (max-pooled over the last two frames).
    :param max_episode_steps: cap in agent steps (27k = 108k frames); None for ALE's own.
    :param sticky_actions: repeat the previous action with probability 0.25 at every frame.
    :param noop_max: up to this many no-ops at reset.
    :param terminal_on_life_loss: end training episodes at a lost life (ignored in evaluation).
    :param clip_reward: clip training rewards to their sign (ignored in evaluation).
    :param full_action_space: use all 18 actions instead of the game's minimal set.
    :param evaluation: whole games and raw scores (no life-loss ends, no clipping).
    :param render_mode: None or ``"rgb_array"`` (full-resolution ALE frames).
    :param inner_wrapper: applied right around the ALE env (used for ``Monitor``).
    :return: env with a ``Box(0, 255, (size, size, frame_stack), uint8)`` observation space.
    """
    require_extra("atari", f"Atari env {env_id}")
    if not grayscale:
        raise ValueError("Atari presets use SB3's grayscale WarpFrame; set env.grayscale: true")
    import ale_py
    from stable_baselines3.common.atari_wrappers import AtariWrapper

    gym.register_envs(ale_py)
    make_kwargs: dict[str, Any] = {
        "frameskip": 1,  # AtariWrapper skips (and max-pools) frames itself
        "repeat_action_probability": STICKY_ACTION_PROBABILITY if sticky_actions else 0.0,
        "full_action_space": full_action_space,
    }
    if max_episode_steps is not None:
        make_kwargs["max_episode_steps"] = max_episode_steps * action_repeat
    env: gym.Env[Any, Any] = gym.make(env_id, render_mode=render_mode, **make_kwargs)
    if inner_wrapper is not None:
        env = inner_wrapper(env)
    env = AtariWrapper(
        env,
        noop_max=noop_max,
        frame_skip=action_repeat,
        screen_size=image_size,
        terminal_on_life_loss=terminal_on_life_loss and not evaluation,
        clip_reward=clip_reward and not evaluation,
    )
    return FrameStack(env, frame_stack)
