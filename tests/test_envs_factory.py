"""make_env / make_vec_env: Monitor, seeding, state in vec infos, time limits, SB3 compatibility."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3 import PPO
from stable_baselines3.common.env_checker import check_env
from stable_baselines3.common.env_util import is_wrapped
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv

from curl_rl.envs import EVAL_SEED_OFFSET, load_preset, make_env, make_vec_env, registered_ids


def _frames(env: gym.Env, n: int = 20) -> list[np.ndarray]:
    obs, _ = env.reset()
    out = [obs]
    for i in range(n):
        out.append(env.step(i % env.action_space.n if hasattr(env.action_space, "n") else 0)[0])
    return out


def test_make_env_is_monitored_and_checks() -> None:
    env = make_env("distractor-easy", seed=0)
    assert isinstance(env, Monitor)
    assert env.observation_space.shape == (64, 64, 3) and env.observation_space.dtype == np.uint8
    check_env(env)


def test_make_env_seeding_reproducible() -> None:
    a = _frames(make_env("distractor-hard", seed=3))
    b = _frames(make_env("distractor-hard", seed=3))
    c = _frames(make_env("distractor-hard", seed=4))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])
    ev = _frames(make_env("distractor-hard", seed=3, evaluation=True))
    assert not np.array_equal(a[0], ev[0])
    same = _frames(make_env("distractor-hard", seed=3 + EVAL_SEED_OFFSET))
    assert np.array_equal(same[0], ev[0])


def test_time_limit_and_episode_stats() -> None:
    preset = load_preset("distractor-easy")
    env = make_env(preset, seed=0)
    env.reset()
    for _t in range(preset.env.max_episode_steps or 0):
        _, _, terminated, truncated, info = env.step(0)
    assert truncated and not terminated and info["episode"]["l"] == preset.env.max_episode_steps


def test_render_mode() -> None:
    env = make_env("distractor-easy", seed=0, render_mode="rgb_array")
    obs, _ = env.reset()
    frame = env.render()
    assert isinstance(frame, np.ndarray) and np.array_equal(frame, obs)
    with pytest.raises(ValueError, match="render_mode"):
        make_env("distractor-easy", seed=0, render_mode="human")


def test_make_vec_env_state_in_infos_and_monitor_files(tmp_path: Path) -> None:
    preset = load_preset("distractor-easy")
    venv = make_vec_env(preset, n_envs=3, seed=5, monitor_dir=str(tmp_path))
    assert isinstance(venv, DummyVecEnv) and venv.num_envs == 3
    obs = venv.reset()
    assert obs.shape == (3, 64, 64, 3)
    assert len({o.tobytes() for o in obs}) == 3  # different seeds per env
    venv.step_async(np.zeros(3, dtype=np.int64))
    _, _, _, infos = venv.step_wait()
    for info in infos:
        assert info["state"].dtype == np.float32 and info["state"].shape == (preset.state_dim,)
    assert all(is_wrapped(e, Monitor) for e in venv.envs)
    venv.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{i}.monitor.csv" for i in range(3)]

    again = make_vec_env(preset, n_envs=3, seed=5).reset()
    assert np.array_equal(obs, again)


def test_ppo_runs_with_preset_hyperparams() -> None:
    preset = load_preset("distractor-easy")
    cfg = preset.algo_config("ppo")
    hyper = dict(cfg["hyperparams"], n_steps=16, batch_size=32, n_epochs=1)
    venv = make_vec_env(preset, n_envs=2, seed=0)
    model = PPO(cfg["policy"], venv, seed=0, device="cpu", **hyper)
    model.learn(32)
    assert model.num_timesteps == 32


def test_registered_ids_namespace() -> None:
    ids = registered_ids()
    for expected in (
        "curl_rl/Distractor-v0",
        "curl_rl/DistractorContinuous-v0",
        "curl_rl/CartPolePixels-v0",
        "curl_rl/PendulumPixels-v0",
        "curl_rl/dmc-cartpole-swingup-v0",
        "curl_rl/dmc-ball-in-cup-catch-v0",
        "curl_rl/atari-pong-v0",
    ):
        assert expected in ids
    assert all(i.startswith("curl_rl/") for i in ids)


def test_import_needs_no_optional_extras() -> None:
    # cv2 is left out: stable_baselines3 itself imports it when it is installed.
    import subprocess
    import sys

    code = (
        "import sys, curl_rl.envs\n"
        "heavy = [m for m in ('dm_control', 'mujoco', 'ale_py', 'pygame') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_subproc_vec_env() -> None:
    from stable_baselines3.common.vec_env import SubprocVecEnv

    venv = make_vec_env("distractor-easy", n_envs=2, seed=0, vec_env_cls=SubprocVecEnv)
    try:
        obs = venv.reset()
        assert obs.shape == (2, 64, 64, 3)
        _, _, _, infos = venv.step(np.zeros(2, dtype=np.int64))
        assert infos[0]["state"].shape == (4,)
    finally:
        venv.close()
