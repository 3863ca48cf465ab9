"""Register every curl_rl env with gymnasium under the ``curl_rl/`` namespace.

Entry points are strings, so registering imports nothing heavy: dm_control, ale-py and pygame
are imported only when such an env is made. ``gym.make`` ids (defaults shown)::

    curl_rl/Distractor-v0, curl_rl/DistractorContinuous-v0      64x64 RGB, 100 steps
    curl_rl/CartPolePixels-v0, curl_rl/PendulumPixels-v0        64x64 RGB, 3 frames  [classic]
    curl_rl/dmc-<domain>-<task>-v0 (the six CURL tasks)         84x84 RGB, 3 frames  [dmc]
    curl_rl/atari-<game>-v0 (pong, breakout, boxing, mspacman)  84x84 gray, 4 frames [atari]
"""

from __future__ import annotations

import gymnasium as gym

from curl_rl.envs.dmc import CURL_ACTION_REPEAT

NAMESPACE = "curl_rl"

#: Atari games registered as ``curl_rl/atari-<key>-v0`` (Atari-100k protocol, sticky actions off).
ATARI_GAMES = {"pong": "Pong", "breakout": "Breakout", "boxing": "Boxing", "mspacman": "MsPacman"}


def _register(env_id: str, entry_point: str, **kwargs: object) -> None:
    if env_id in gym.registry:
        return
    gym.register(env_id, entry_point=entry_point, **kwargs)  # type: ignore[arg-type]


def registered_ids() -> list[str]:
    """All ids this package registers, sorted."""
    return sorted(k for k in gym.registry if k.startswith(f"{NAMESPACE}/"))


def register_envs() -> None:
    """Register the ids (idempotent; run on ``import curl_rl``, as ``import ale_py`` registers ALE)."""
    _register(f"{NAMESPACE}/Distractor-v0", "curl_rl.envs.distractor:DistractorEnv", max_episode_steps=100)
    _register(
        f"{NAMESPACE}/DistractorContinuous-v0",
        "curl_rl.envs.distractor:DistractorEnv",
        max_episode_steps=100,
        kwargs={"continuous": True},
    )
    _register(
        f"{NAMESPACE}/CartPolePixels-v0",
        "curl_rl.envs.classic:make_pixel_gym",
        kwargs={"env_id": "CartPole-v1", "image_size": 64, "frame_stack": 3},
    )
    _register(
        f"{NAMESPACE}/PendulumPixels-v0",
        "curl_rl.envs.classic:make_pixel_gym",
        kwargs={"env_id": "Pendulum-v1", "image_size": 64, "frame_stack": 3},
    )
    for domain, task in CURL_ACTION_REPEAT:
        _register(
            f"{NAMESPACE}/dmc-{domain.replace('_', '-')}-{task}-v0",
            "curl_rl.envs.dmc:make_dmc",
            kwargs={"domain": domain, "task": task},
        )
    for key, game in ATARI_GAMES.items():
        _register(
            f"{NAMESPACE}/atari-{key}-v0",
            "curl_rl.envs.atari:make_atari",
            kwargs={"env_id": f"ALE/{game}-v5"},
        )


register_envs()
