"""The pure-numpy distractor task: API compliance, seeding, ground-truth state, crop safety, speed."""

from __future__ import annotations

import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env

import curl_rl.envs  # noqa: F401  (registers the ids)
from curl_rl.envs.distractor import STATE_DIM, DistractorEnv


def oracle_action(state: np.ndarray) -> int:
    """Greedy move along the axis with the larger gap (what a perfect encoder + policy would do)."""
    dx, dy = state[2] - state[0], state[3] - state[1]
    if abs(dx) > abs(dy):
        return 4 if dx > 0 else 3
    return 2 if dy > 0 else 1


def rollout(env: DistractorEnv, seed: int, actions: list[int]) -> list[np.ndarray]:
    obs, _ = env.reset(seed=seed)
    frames = [obs]
    for a in actions:
        obs, *_ = env.step(a)
        frames.append(obs)
    return frames


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("difficulty", [0.0, 1.0])
def test_check_env(continuous: bool, difficulty: float) -> None:
    env = DistractorEnv(continuous=continuous, difficulty=difficulty)
    check_env(env)
    gym_check_env(DistractorEnv(continuous=continuous, difficulty=difficulty), skip_render_check=True)


@pytest.mark.parametrize("env_id", ["curl_rl/Distractor-v0", "curl_rl/DistractorContinuous-v0"])
def test_registered_ids(env_id: str) -> None:
    env = gym.make(env_id)
    obs, _info = env.reset(seed=0)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert env.spec is not None and env.spec.namespace == "curl_rl"
    assert isinstance(env.action_space, gym.spaces.Box if "Continuous" in env_id else gym.spaces.Discrete)
    for _ in range(100):
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
    assert truncated and not terminated  # 100-step time limit


def test_same_seed_same_frames_different_seed_different() -> None:
    actions = [i % 5 for i in range(30)]
    a = rollout(DistractorEnv(difficulty=1.0), 7, actions)
    b = rollout(DistractorEnv(difficulty=1.0), 7, actions)
    c = rollout(DistractorEnv(difficulty=1.0), 8, actions)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[0], c[0])


def test_state_is_ground_truth_and_follows_actions() -> None:
    env = DistractorEnv()
    _, info = env.reset(seed=0)
    state = info["state"]
    assert state.dtype == np.float32 and state.shape == (STATE_DIM,)
    assert np.all((state >= 0) & (state <= 1))
    x0 = state[0]
    _, _, _, _, info = env.step(3)  # left
    assert info["state"][0] < x0 or np.isclose(x0 * env.size, env.lo)
    x1 = info["state"][0]
    _, _, _, _, info = env.step(4)  # right
    assert info["state"][0] > x1
    # The agent's pixels sit where the state says (its colour is unique, drawn on top).
    env2 = DistractorEnv(distractors=False, background=False)
    obs, info = env2.reset(seed=3)
    ys, xs = np.nonzero(np.all(obs == env2._agent_colour, axis=2))
    centre = np.array([xs.mean() + 0.5, ys.mean() + 0.5]) / env2.size
    assert np.allclose(centre, info["state"][:2], atol=1.0 / env2.size)


def test_oracle_beats_random_by_far() -> None:
    env = DistractorEnv(difficulty=1.0)
    _, info = env.reset(seed=0)
    oracle = 0.0
    for _ in range(100):
        _, r, _, _, info = env.step(oracle_action(info["state"]))
        oracle += float(r)
    env.reset(seed=0)
    env.action_space.seed(0)
    rand = sum(float(env.step(env.action_space.sample())[1]) for _ in range(100))
    assert info["targets_reached"] >= 8
    assert oracle > rand + 8


def test_reach_pays_one_and_moves_target() -> None:
    env = DistractorEnv(distractors=False, background=False, shaping=0.0)
    _, info = env.reset(seed=1)
    for _ in range(60):
        old_target = info["state"][2:].copy()
        _, r, _, _, info = env.step(oracle_action(info["state"]))
        if r > 0:
            assert r == 1.0 and info["targets_reached"] == 1
            assert not np.allclose(info["state"][2:], old_target)
            return
    pytest.fail("the oracle never reached the target")


@pytest.mark.parametrize("size", [64, 84])
def test_agent_and_target_stay_crop_safe(size: int) -> None:
    """Everything that matters stays >= size//8 px from the border (64 -> 56 crops keep it)."""
    env = DistractorEnv(size=size, distractors=False, background=False)
    margin = size // 8
    plain = env._texture[0, 0]
    obs, _info = env.reset(seed=0)
    rng = np.random.default_rng(0)
    for t in range(300):
        fg = np.any(obs != plain, axis=2)
        ys, xs = np.nonzero(fg)
        assert ys.min() >= margin and xs.min() >= margin
        assert ys.max() < size - margin and xs.max() < size - margin
        # Push into corners half of the time so the clipping is exercised.
        action = int(rng.integers(5)) if t % 2 else (1 if t % 4 < 2 else 3)
        obs, *_ = env.step(action)
    assert obs.shape == (size, size, 3)


def test_difficulty_and_toggles() -> None:
    easy, hard = DistractorEnv(difficulty=0.0), DistractorEnv(difficulty=1.0)
    assert easy.n_distractors < hard.n_distractors
    assert easy.distractor_speed < hard.distractor_speed
    assert easy.colour_distance > hard.colour_distance
    assert DistractorEnv(distractors=False).n_distractors == 0
    assert DistractorEnv(n_distractors=5).n_distractors == 5
    obs, _ = DistractorEnv(distractors=False, background=False).reset(seed=0)
    assert len(np.unique(obs.reshape(-1, 3), axis=0)) == 3  # background, agent, target
    obs, _ = DistractorEnv(difficulty=1.0).reset(seed=0)
    assert len(np.unique(obs.reshape(-1, 3), axis=0)) > 500  # noise texture


def test_distractors_never_match_true_colours() -> None:
    env = DistractorEnv(difficulty=1.0, n_distractors=40)
    env.reset(seed=0)
    refs = np.where(env._d_is_plus[:, None], env._target_colour, env._agent_colour).astype(int)
    assert np.all(np.abs(env._d_colour.astype(int) - refs).max(axis=1) > 0)


def test_continuous_moves_by_velocity() -> None:
    env = DistractorEnv(continuous=True, distractors=False, background=False)
    _, info = env.reset(seed=0)
    before = info["state"][:2].copy()
    _, _, _, _, info = env.step(np.array([1.0, 1.0], dtype=np.float32))
    moved = (info["state"][:2] - before) * env.size
    assert np.all(moved > 0) or np.any(np.isclose(info["state"][:2] * env.size, env.hi))


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="difficulty"):
        DistractorEnv(difficulty=2.0)
    with pytest.raises(ValueError, match="size"):
        DistractorEnv(size=16)
    with pytest.raises(ValueError, match="render_mode"):
        DistractorEnv(render_mode="human")


def test_render_returns_current_frame() -> None:
    env = DistractorEnv(render_mode="rgb_array")
    obs, _ = env.reset(seed=0)
    frame = env.render()
    assert frame is not None and np.array_equal(frame, obs)
    assert DistractorEnv().render() is None


def test_speed_smoke() -> None:
    """Target is >= 5,000 raw steps/s on one core; the floor here is generous for shared CI."""
    env = DistractorEnv(difficulty=1.0)
    env.reset(seed=0)
    n = 2000
    start = time.perf_counter()
    for i in range(n):
        env.step(i % 5)
    rate = n / (time.perf_counter() - start)
    assert rate > 1000, f"{rate:.0f} steps/s"
