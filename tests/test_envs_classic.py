"""Classic control from pixels through pygame renders (skipped without the [classic] extra)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("pygame", reason='needs the [classic] extra: pip install "curl_rl[classic]"')

from stable_baselines3.common.env_checker import check_env

from curl_rl.envs import make_env, wrap_pixels

pytestmark = pytest.mark.extra


@pytest.mark.parametrize("name,state_dim", [("cartpole-pixels", 4), ("pendulum-pixels", 3)])
def test_check_env_and_state(name: str, state_dim: int) -> None:
    env = make_env(name, seed=0)
    assert env.observation_space.shape == (64, 64, 9)
    check_env(env)
    obs, info = env.reset()
    assert info["state"].shape == (state_dim,) and info["state"].dtype == np.float32
    obs2, *_ = env.step(env.action_space.sample())
    assert np.array_equal(obs2[:, :, :6], obs[:, :, 3:])  # newest frame last
    env.close()


@pytest.mark.parametrize("env_id", ["curl_rl/CartPolePixels-v0", "curl_rl/PendulumPixels-v0"])
def test_registered_ids(env_id: str) -> None:
    env = gym.make(env_id)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (64, 64, 9)
    env.close()


def test_seeding_reproducible() -> None:
    a, b = make_env("cartpole-pixels", seed=2), make_env("cartpole-pixels", seed=2)
    for _ in range(5):
        oa, ra, *_ = a.step(1)
        ob, rb, *_ = b.step(1)
        assert np.array_equal(oa, ob) and ra == rb


def test_pendulum_action_repeat_and_time_limit() -> None:
    env = make_env("pendulum-pixels", seed=0)
    assert env.action_space.low.tolist() == [-1.0] and env.action_space.high.tolist() == [1.0]
    env.reset()
    steps = 0
    while True:
        _, _, terminated, truncated, _ = env.step(np.zeros(1, dtype=np.float32))
        steps += 1
        if terminated or truncated:
            break
    assert truncated and not terminated and steps == 100  # 200 underlying steps / action repeat 2


def test_wrap_pixels_on_plain_gym_env() -> None:
    env = wrap_pixels(gym.make("CartPole-v1", render_mode="rgb_array"), image_size=48, frame_stack=2)
    obs, info = env.reset(seed=0)
    assert obs.shape == (48, 48, 6) and info["state"].shape == (4,)
