"""DeepMind Control from pixels (skipped without the [dmc] extra)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

pytest.importorskip("dm_control", reason='needs the [dmc] extra: pip install "curl_rl[dmc]"')

from stable_baselines3.common.env_checker import check_env

from curl_rl.envs import list_presets, load_preset, make_env
from curl_rl.envs.dmc import DMCEnv

pytestmark = pytest.mark.extra
ROOT = Path(__file__).parents[1]
DMC_PRESETS = sorted(n for n in list_presets() if n.startswith("dmc-"))


def _dmc(env: gym.Env) -> DMCEnv:
    base = env.unwrapped
    assert isinstance(base, DMCEnv)
    return base


@pytest.mark.parametrize("name", DMC_PRESETS)
def test_check_env_and_fast_render(name: str) -> None:
    preset = load_preset(name)
    env = make_env(preset, seed=0)
    assert env.observation_space.shape == (84, 84, 9)
    check_env(env)
    _, _, _, _, info = env.step(env.action_space.sample())
    assert info["state"].dtype == np.float32 and info["state"].shape == (preset.state_dim,)
    base = _dmc(env)
    assert base.physics_quality() == (0, 0)
    env.close()


def test_gym_make_registered_id() -> None:
    env = gym.make("curl_rl/dmc-cartpole-swingup-v0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (84, 84, 9) and obs.dtype == np.uint8
    assert _dmc(env).action_repeat == 8
    env.close()


def test_seeding_and_action_repeat_and_episode_length() -> None:
    a = make_env("dmc-reacher-easy", seed=1)
    b = make_env("dmc-reacher-easy", seed=1)
    c = make_env("dmc-reacher-easy", seed=2)
    oa, ia = a.reset()
    ob, ib = b.reset()
    _oc, ic = c.reset()
    assert np.array_equal(oa, ob) and np.array_equal(ia["state"], ib["state"])
    assert not np.array_equal(ia["state"], ic["state"])
    action = np.full(a.action_space.shape, 0.3, dtype=np.float32)
    assert np.array_equal(a.step(action)[0], b.step(action)[0])
    for env in (a, b, c):
        env.close()

    env = make_env("dmc-cartpole-swingup", seed=0)
    physics = _dmc(env)._env.physics
    start = float(physics.data.time)
    obs, *_ = env.step(np.zeros(1, dtype=np.float32))
    assert np.isclose(float(physics.data.time) - start, 8 * _dmc(env)._env.control_timestep())
    # Newest frame last: the last 3 channels equal a fresh render of the current state.
    assert np.array_equal(obs[:, :, -3:], _dmc(env)._frame)
    steps = 1
    while True:
        _, _, terminated, truncated, _ = env.step(np.zeros(1, dtype=np.float32))
        steps += 1
        if terminated or truncated:
            break
    assert truncated and not terminated and steps == 1000 // 8
    env.close()


def test_default_render_quality_keeps_mujoco_settings() -> None:
    env = DMCEnv("cartpole", "swingup", render_quality="default")
    assert env.physics_quality() != (0, 0)
    with pytest.raises(ValueError, match="render_quality"):
        DMCEnv("cartpole", "swingup", render_quality="ultra")
    with pytest.raises(ValueError, match="unknown dm_control task"):
        DMCEnv("cartpole", "juggle")


def _run(code: str, **env_vars: str | None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    for key, value in env_vars.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, timeout=120)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="headless selection is Linux-only")
def test_egl_chosen_when_unset_and_headless() -> None:
    code = "from curl_rl.envs.dmc import select_mujoco_gl; print(select_mujoco_gl())"
    result = _run(code, MUJOCO_GL=None, DISPLAY=None, WAYLAND_DISPLAY=None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "egl"
    result = _run(code, MUJOCO_GL="osmesa", DISPLAY=None)
    assert result.stdout.strip() == "osmesa"  # an explicit choice is respected


def test_broken_gl_names_the_choices() -> None:
    code = "from curl_rl.envs import make_env; make_env('dmc-cartpole-swingup', seed=0)"
    result = _run(code, MUJOCO_GL="bogus")
    assert result.returncode != 0
    assert "Set the MUJOCO_GL environment variable" in result.stderr  # ours, not dm_control's
    for choice in ("egl", "osmesa", "glfw"):
        assert choice in result.stderr
