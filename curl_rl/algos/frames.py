"""How many channels one frame of a stacked image observation has, read from the env's wrappers.

Photometric augmentations (grayscale, colour jitter, noise) must treat each stacked frame as one
image. The channel count alone cannot say whether 3 channels are one RGB frame or three grayscale
frames, so the answer comes from the frame stacking itself: curl_rl's ``FrameStack`` (which
exposes ``frame_channels``) and SB3's ``VecFrameStack`` (``n_stack``), or from an explicit
``AuxConfig.frame_channels``.
"""

from __future__ import annotations

from typing import Any

from stable_baselines3.common.vec_env import VecEnv, VecEnvWrapper, VecFrameStack


def stacked_frame_channels(env: Any) -> int | None:
    """Channels per frame of ``env``'s image observations, or ``None`` when no wrapper says.

    :param env: a ``VecEnv`` (possibly wrapped) or ``None``.
    :return: channels of one frame; ``None`` when the env stacks no frames that we can see.
    """
    if not isinstance(env, VecEnv):
        return None
    innermost_stack: VecFrameStack | None = None
    inner = env
    while isinstance(inner, VecEnvWrapper):
        if isinstance(inner, VecFrameStack):
            innermost_stack = inner
        inner = inner.venv
    # has_attr first: a missing attribute in get_attr would crash a SubprocVecEnv worker
    if inner.has_attr("frame_channels"):
        return int(inner.get_attr("frame_channels", indices=[0])[0])
    if innermost_stack is not None:
        # what VecFrameStack stacks is one frame: its input's channel axis
        shape = getattr(innermost_stack.venv.observation_space, "shape", None)
        if shape is not None and len(shape) == 3:
            return int(shape[0] if innermost_stack.stacked_obs.channels_first else shape[-1])
    return None
