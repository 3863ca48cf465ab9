"""Atari through ale-py with SB3's wrappers (skipped without the [atari] extra)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("ale_py", reason='needs the [atari] extra: pip install "curl_rl[atari]"')
pytest.importorskip("cv2", reason='needs the [atari] extra: pip install "curl_rl[atari]"')

from stable_baselines3.common.atari_wrappers import ClipRewardEnv, EpisodicLifeEnv
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.monitor import Monitor

from curl_rl.envs import list_presets, make_env

pytestmark = pytest.mark.extra
ATARI_PRESETS = sorted(n for n in list_presets() if n.startswith("atari-"))


def _sticky(env: gym.Env) -> float:
    return float(env.unwrapped.ale.getFloat("repeat_action_probability"))


@pytest.mark.parametrize("name", ATARI_PRESETS)
def test_check_env(name: str) -> None:
    env = make_env(name, seed=0)
    assert env.observation_space.shape == (84, 84, 4)
    check_env(env)
    assert is_wrapped(env, Monitor) and is_wrapped(env, EpisodicLifeEnv) and is_wrapped(env, ClipRewardEnv)
    assert _sticky(env) == 0.0  # Atari-100k: sticky actions off
    env.close()


def test_evaluation_plays_whole_games_unclipped() -> None:
    env = make_env("atari-breakout", seed=0, evaluation=True)
    assert is_wrapped(env, Monitor)
    assert not is_wrapped(env, EpisodicLifeEnv) and not is_wrapped(env, ClipRewardEnv)
    env.close()


def test_seeding_and_frame_stack_order() -> None:
    a, b = make_env("atari-pong", seed=3), make_env("atari-pong", seed=3)
    oa, ob = a.reset(), b.reset()
    assert np.array_equal(oa[0], ob[0])
    for _ in range(30):
        oa, *_ = a.step(2)
        ob, *_ = b.step(2)
    assert np.array_equal(oa, ob)
    # Newest frame last: after one more step the old newest frame moved one slot back.
    prev = oa
    oa, *_ = a.step(3)
    assert np.array_equal(oa[:, :, :-1], prev[:, :, 1:])


def test_registered_id_and_sticky_option() -> None:
    env = gym.make("curl_rl/atari-pong-v0", sticky_actions=True)
    env.reset(seed=0)
    assert _sticky(env) == pytest.approx(0.25)
    env.close()
