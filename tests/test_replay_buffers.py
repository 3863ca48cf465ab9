"""Tests for curl_rl.buffers.replay (sequence sampling and the frame-deduplicating buffer)."""

from __future__ import annotations

import pickle
import warnings
from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stable_baselines3 import DQN, SAC
from stable_baselines3.common.vec_env import DummyVecEnv

from curl_rl.buffers.replay import PixelReplayBuffer, SequenceReplayBuffer, SequenceSamples

# --------------------------------------------------------------------------- helpers


def _frame_axes(k: int, c: int, hw: tuple[int, int], channels_first: bool) -> tuple[int, ...]:
    return (k * c, *hw) if channels_first else (*hw, k * c)


def _stack(frames: list[np.ndarray], channels_first: bool) -> np.ndarray:
    """Concatenate single frames (c, H, W) along channels, newest last, in the requested layout."""
    stacked = np.concatenate(frames, axis=0)
    return stacked if channels_first else np.ascontiguousarray(np.moveaxis(stacked, 0, -1))


class _Feed:
    """
    Random frame-stacked trajectories for ``n_envs`` envs: episode ends (terminal and truncated),
    resets that repeat, zero-pad or randomise the stack, static scenes (a frame equal to the
    previous one) and "glitches" where obs_t is not next_obs_{t-1} (a wrapper that misbehaves).
    """

    def __init__(
        self,
        rng: np.random.Generator,
        n_envs: int,
        k: int,
        c: int,
        hw: tuple[int, int],
        channels_first: bool,
        p_end: float = 0.15,
        p_glitch: float = 0.05,
        p_static: float = 0.1,
        action_dim: int = 2,
    ):
        self.rng, self.n_envs, self.k, self.c, self.hw = rng, n_envs, k, c, hw
        self.channels_first = channels_first
        self.p_end, self.p_glitch, self.p_static = p_end, p_glitch, p_static
        self.action_dim = action_dim
        self.stacks = [self._reset_stack() for _ in range(n_envs)]

    def _frame(self) -> np.ndarray:
        return self.rng.integers(0, 256, size=(self.c, *self.hw), dtype=np.uint8)

    def _reset_stack(self) -> deque[np.ndarray]:
        first = self._frame()
        mode = self.rng.integers(3)
        if mode == 0:
            frames = [first] * self.k
        elif mode == 1:
            frames = [np.zeros_like(first)] * (self.k - 1) + [first]
        else:
            frames = [self._frame() for _ in range(self.k)]
        return deque(frames, maxlen=self.k)

    def step(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict[str, Any]]]:
        obs, next_obs, dones, infos = [], [], [], []
        for e in range(self.n_envs):
            if self.rng.random() < self.p_glitch:
                self.stacks[e] = self._reset_stack()
            stack = self.stacks[e]
            obs.append(_stack(list(stack), self.channels_first))
            new = stack[-1].copy() if self.rng.random() < self.p_static else self._frame()
            stack.append(new)
            next_obs.append(_stack(list(stack), self.channels_first))
            u = self.rng.random()
            done = u < self.p_end
            truncated = done and u < self.p_end / 2
            dones.append(done)
            infos.append({"TimeLimit.truncated": truncated} if truncated else {})
            if done:
                self.stacks[e] = self._reset_stack()
        actions = self.rng.uniform(-1, 1, size=(self.n_envs, self.action_dim)).astype(np.float32)
        rewards = self.rng.normal(size=self.n_envs).astype(np.float32)
        return np.stack(obs), np.stack(next_obs), actions, rewards, np.array(dones, dtype=np.float32), infos


def _make_pair(
    buffer_size: int,
    n_envs: int,
    k: int,
    c: int,
    hw: tuple[int, int],
    channels_first: bool,
    **pixel_kwargs: Any,
) -> tuple[SequenceReplayBuffer, PixelReplayBuffer]:
    obs_space = spaces.Box(0, 255, _frame_axes(k, c, hw, channels_first), dtype=np.uint8)
    act_space = spaces.Box(-1, 1, (2,), dtype=np.float32)
    naive = SequenceReplayBuffer(buffer_size, obs_space, act_space, device="cpu", n_envs=n_envs)
    pixel = PixelReplayBuffer(
        buffer_size, obs_space, act_space, device="cpu", n_envs=n_envs, frame_stack=k, **pixel_kwargs
    )
    return naive, pixel


def _seed_global_rng(seed: int) -> None:
    # SB3 buffers sample with numpy's global RNG; both buffers must see the same state.
    np.random.seed(seed)  # noqa: NPY002


def _assert_same_tuple(a: tuple[th.Tensor, ...], b: tuple[th.Tensor, ...]) -> None:
    for name, x, y in zip(type(a)._fields, a, b):  # type: ignore[attr-defined]
        if x is None or y is None:  # e.g. ReplayBufferSamples.discounts (n-step buffers only)
            assert x is None and y is None, name
            continue
        assert x.dtype == y.dtype, name
        assert x.shape == y.shape, name
        assert x.device == y.device, name
        assert th.equal(x, y), name


def _assert_same_samples(naive: SequenceReplayBuffer, pixel: PixelReplayBuffer, seed: int) -> None:
    """Same RNG state -> same sample() and sample_sequences() tensors, field by field."""
    calls = [lambda b: b.sample(17)]
    if naive.size() >= 2:
        calls.append(lambda b: b.sample_sequences(13, 1))
    if naive.size() >= 4:
        calls.append(lambda b: b.sample_sequences(11, 3))
    for offset, call in enumerate(calls):
        _seed_global_rng(seed + offset)
        expected = call(naive)
        _seed_global_rng(seed + offset)
        _assert_same_tuple(expected, call(pixel))


def _assert_same_contents(naive: SequenceReplayBuffer, pixel: PixelReplayBuffer) -> None:
    """Every stored (row, env) rebuilds to the naive buffer's obs and next_obs, bit for bit."""
    rows = np.arange(naive.size())
    for e in range(naive.n_envs):
        cols = np.full_like(rows, e)
        obs = pixel._gather_stacks(pixel._obs_idx[rows, cols])
        nxt = pixel._gather_stacks(pixel._next_idx[rows, cols])
        obs_np = obs.cpu().numpy() if isinstance(obs, th.Tensor) else obs
        nxt_np = nxt.cpu().numpy() if isinstance(nxt, th.Tensor) else nxt
        np.testing.assert_array_equal(obs_np, naive.observations[rows, e])
        np.testing.assert_array_equal(nxt_np, naive.next_observations[rows, e])


# --------------------------------------------------------------------------- sequence windows


def _vector_buffer(buffer_size: int, n_envs: int = 1, **kwargs: Any) -> SequenceReplayBuffer:
    # obs = (episode id, step in episode, global write time, env)
    obs_space = spaces.Box(-np.inf, np.inf, (4,), dtype=np.float32)
    act_space = spaces.Box(-1, 1, (1,), dtype=np.float32)
    return SequenceReplayBuffer(buffer_size, obs_space, act_space, device="cpu", n_envs=n_envs, **kwargs)


def _fill_known(buf: SequenceReplayBuffer, dones: list[list[int]], truncs: list[list[int]]) -> np.ndarray:
    """Add transitions with given done/truncation flags; returns the write time of each (row, env)."""
    n_envs = buf.n_envs
    episode = np.arange(n_envs, dtype=np.float32) * 1000
    step = np.zeros(n_envs, dtype=np.float32)
    written = np.full((buf.buffer_size, n_envs), -1)
    for time, (done_row, trunc_row) in enumerate(zip(dones, truncs)):
        obs = np.stack([episode, step, np.full(n_envs, time), np.arange(n_envs)], axis=1).astype(np.float32)
        nxt = obs + np.array([0, 1, 1, 0], dtype=np.float32)
        done = np.array(done_row, dtype=np.float32)
        infos = [{"TimeLimit.truncated": bool(t)} for t in trunc_row]
        buf.add(obs, nxt, np.full((n_envs, 1), time, np.float32), np.full(n_envs, time, np.float32), done, infos)
        written[buf.pos - 1 if buf.pos > 0 else buf.buffer_size - 1] = time
        step = np.where(done > 0, 0, step + 1)
        episode = np.where(done > 0, episode + 1, episode)
    return written


def _brute_force_valid(buf: SequenceReplayBuffer, written: np.ndarray, t: int, e: int, horizon: int) -> list[bool]:
    out = [True]
    for j in range(1, horizon + 1):
        prev = (t + j - 1) % buf.buffer_size
        row = (t + j) % buf.buffer_size
        ended = buf.dones[prev, e] > 0 or buf.timeouts[prev, e] > 0
        same_lap = written[row, e] == written[t, e] + j
        out.append(out[-1] and not ended and bool(same_lap))
    return out


def test_valid_mask_hand_built() -> None:
    buf = _vector_buffer(6)
    # times 0..3, termination at time 1
    _fill_known(buf, [[0], [1], [0], [0]], [[0], [0], [0], [0]])
    idx, valid = buf._sequence_indices(np.array([0, 2, 3]), np.zeros(3, dtype=int), 3)
    np.testing.assert_array_equal(idx[0], [0, 1, 2, 3])
    np.testing.assert_array_equal(valid[0], [True, True, False, False])  # episode ends after row 1
    np.testing.assert_array_equal(valid[1], [True, True, False, False])  # row 4 is the write position
    np.testing.assert_array_equal(valid[2], [True, False, False, False])  # newest transition

    buf = _vector_buffer(6)
    # 8 adds into 6 rows: rows 0, 1 hold times 6, 7; pos = 2; truncation at time 4 (row 4)
    written = _fill_known(buf, [[0]] * 4 + [[1]] + [[0]] * 3, [[0]] * 4 + [[1]] + [[0]] * 3)
    assert buf.full and buf.pos == 2
    idx, valid = buf._sequence_indices(np.array([2, 5, 1, 0]), np.zeros(4, dtype=int), 5)
    np.testing.assert_array_equal(idx[0], [2, 3, 4, 5, 0, 1])
    np.testing.assert_array_equal(valid[0], [True, True, True, False, False, False])  # truncation at row 4
    np.testing.assert_array_equal(valid[1], [True, True, True, False, False, False])  # 5 -> 0 -> 1, then pos
    np.testing.assert_array_equal(valid[2], [True] + [False] * 5)  # newest row
    np.testing.assert_array_equal(valid[3], [True, True, False, False, False, False])
    for t in range(6):
        np.testing.assert_array_equal(
            buf._sequence_indices(np.array([t]), np.zeros(1, dtype=int), 5)[1][0],
            _brute_force_valid(buf, written, t, 0, 5),
        )


@given(
    seed=st.integers(0, 2**16),
    buffer_size=st.integers(4, 20),
    n_steps=st.integers(1, 50),
    n_envs=st.sampled_from([1, 2]),
    horizon=st.integers(1, 6),
)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_valid_mask_matches_brute_force(seed: int, buffer_size: int, n_steps: int, n_envs: int, horizon: int) -> None:
    rng = np.random.default_rng(seed)
    buf = _vector_buffer(buffer_size * n_envs, n_envs=n_envs)
    dones = (rng.random((n_steps, n_envs)) < 0.2).astype(int)
    truncs = dones * (rng.random((n_steps, n_envs)) < 0.5)
    written = _fill_known(buf, dones.tolist(), truncs.tolist())
    horizon = min(horizon, buffer_size - 1)
    if horizon < 1:
        return
    rows = np.repeat(np.arange(buf.size()), n_envs)
    envs = np.tile(np.arange(n_envs), buf.size())
    _, valid = buf._sequence_indices(rows, envs, horizon)
    for b, (t, e) in enumerate(zip(rows, envs)):
        assert valid[b].tolist() == _brute_force_valid(buf, written, int(t), int(e), horizon)


@pytest.mark.parametrize("n_envs", [1, 2])
@pytest.mark.parametrize("optimize", [False, True])
def test_sampled_windows_stay_in_one_episode(n_envs: int, optimize: bool) -> None:
    rng = np.random.default_rng(0)
    kwargs = {"optimize_memory_usage": True, "handle_timeout_termination": False} if optimize else {}
    buf = _vector_buffer(40 * n_envs, n_envs=n_envs, **kwargs)
    for n_steps in (12, 57):  # before and after the ring wraps
        buf.reset()
        dones = (rng.random((n_steps, n_envs)) < 0.15).astype(int)
        _fill_known(buf, dones.tolist(), (dones * 0).tolist())
        _seed_global_rng(n_steps)
        horizon = 4
        s = buf.sample_sequences(256, horizon)
        assert isinstance(s, SequenceSamples)
        assert s.observations.shape == (256, horizon + 1, 4)
        assert s.actions.shape == (256, horizon, 1) and s.actions.dtype == th.float32
        assert s.rewards.shape == (256, horizon) and s.valid.dtype == th.bool
        obs, valid = s.observations.numpy(), s.valid.numpy()
        assert valid[:, 0].all()
        assert (np.diff(valid.astype(int), axis=1) <= 0).all()  # prefix of True
        t0 = obs[:, 0, 2]
        newest = n_steps - 1
        if optimize and buf.full:
            # SB3's optimized buffer never samples row `pos`: its obs was overwritten by a next_obs.
            assert not np.any(t0 == newest - buf.buffer_size + 1)
        for j in range(1, horizon + 1):
            v = valid[:, j]
            np.testing.assert_array_equal(obs[v, j, 0], obs[v, 0, 0])  # same episode
            np.testing.assert_array_equal(obs[v, j, 1], obs[v, 0, 1] + j)  # consecutive steps
            np.testing.assert_array_equal(obs[v, j, 2], t0[v] + j)  # never crosses the write position
            np.testing.assert_array_equal(obs[v, j, 3], obs[v, 0, 3])  # same env column
            assert (obs[~v, j] == 0).all()
            assert (t0[v] + j <= newest).all()
            np.testing.assert_array_equal(s.actions.numpy()[v[:], j - 1, 0], t0[v] + j - 1)
        step_valid = valid[:, :horizon]
        assert (s.actions.numpy()[~step_valid] == 0).all() and (s.rewards.numpy()[~step_valid] == 0).all()
        np.testing.assert_array_equal(s.rewards.numpy()[:, 0], t0)


def test_sequence_request_errors() -> None:
    buf = _vector_buffer(10)
    with pytest.raises(ValueError, match="horizon must be"):
        buf.sample_sequences(4, 0)
    with pytest.raises(ValueError, match="add transitions first"):
        buf.sample_sequences(4, 2)
    _fill_known(buf, [[0]] * 3, [[0]] * 3)
    with pytest.raises(ValueError, match="needs 4"):
        buf.sample_sequences(4, 3)
    with pytest.raises(ValueError, match="raise buffer_size"):
        buf.sample_sequences(4, 10)
    assert buf.sample_sequences(4, 2).observations.shape == (4, 3, 4)


def test_dict_spaces_rejected_clearly() -> None:
    obs_space = spaces.Dict({"img": spaces.Box(0, 255, (3, 8, 8), np.uint8)})
    act_space = spaces.Box(-1, 1, (1,), dtype=np.float32)
    with pytest.raises(NotImplementedError, match="DictReplayBuffer"):
        SequenceReplayBuffer(10, obs_space, act_space)
    with pytest.raises(NotImplementedError, match="DictReplayBuffer"):
        PixelReplayBuffer(10, obs_space, act_space)


# --------------------------------------------------------------------------- pixel buffer exactness

_LAYOUTS = [
    # (k, c, (H, W), channels_first, n_envs, extra kwargs)
    (3, 3, (10, 12), True, 2, {}),
    (3, 3, (10, 12), False, 2, {}),
    (3, 3, (10, 12), True, 1, {"device_storage": "cpu"}),
    (3, 3, (10, 12), False, 2, {"device_storage": "cpu"}),
    (4, 1, (7, 9), True, 1, {}),
    (1, 3, (6, 8), False, 2, {}),
]


@pytest.mark.parametrize(("k", "c", "hw", "channels_first", "n_envs", "extra"), _LAYOUTS)
@given(seed=st.integers(0, 2**16), rows=st.integers(1, 16))
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_pixel_buffer_matches_naive(
    k: int,
    c: int,
    hw: tuple[int, int],
    channels_first: bool,
    n_envs: int,
    extra: dict[str, Any],
    seed: int,
    rows: int,
) -> None:
    rng = np.random.default_rng(seed)
    naive, pixel = _make_pair(rows * n_envs, n_envs, k, c, hw, channels_first, **extra)
    assert pixel.channels_first == channels_first
    feed = _Feed(rng, n_envs, k, c, hw, channels_first)
    n_steps = int(rng.integers(1, 3 * rows + 2))  # often wraps the ring, sometimes twice
    for step in range(n_steps):
        batch = feed.step()
        naive.add(*batch)
        pixel.add(*batch)
        if step % 7 == 0 or step == n_steps - 1:
            _assert_same_samples(naive, pixel, seed + step)
    _assert_same_contents(naive, pixel)
    live = naive.size() * n_envs
    assert pixel.frames_in_use <= 2 * k * live  # at most obs + next_obs frames of live transitions


def test_pixel_buffer_matches_naive_with_normalization() -> None:
    class _Scale:
        """Stands in for VecNormalize: only the two methods the buffers call."""

        def normalize_obs(self, obs: np.ndarray) -> np.ndarray:
            return obs.astype(np.float32) / 255.0 - 0.5

        def normalize_reward(self, reward: np.ndarray) -> np.ndarray:
            return reward * 0.5

    rng = np.random.default_rng(3)
    naive, pixel = _make_pair(24, 2, 3, 3, (10, 12), True)
    feed = _Feed(rng, 2, 3, 3, (10, 12), True)
    for _ in range(30):
        batch = feed.step()
        naive.add(*batch)
        pixel.add(*batch)
    env: Any = _Scale()
    for call in (lambda b: b.sample(9, env=env), lambda b: b.sample_sequences(9, 2, env=env)):
        _seed_global_rng(5)
        expected = call(naive)
        _seed_global_rng(5)
        _assert_same_tuple(expected, call(pixel))


def test_pixel_buffer_discrete_actions() -> None:
    obs_space = spaces.Box(0, 255, (9, 10, 12), dtype=np.uint8)
    naive = SequenceReplayBuffer(16, obs_space, spaces.Discrete(4), device="cpu")
    pixel = PixelReplayBuffer(16, obs_space, spaces.Discrete(4), device="cpu", frame_stack=3)
    feed = _Feed(np.random.default_rng(1), 1, 3, 3, (10, 12), True, action_dim=1)
    for _ in range(20):
        obs, nxt, _act, rew, done, infos = feed.step()
        act = feed.rng.integers(0, 4, size=(1, 1))
        naive.add(obs, nxt, act, rew, done, infos)
        pixel.add(obs, nxt, act, rew, done, infos)
    _assert_same_samples(naive, pixel, 11)
    _seed_global_rng(0)
    assert pixel.sample(4).actions.dtype == th.int64  # as SB3 stores discrete actions


def test_pixel_buffer_frames_and_memory_for_long_episodes() -> None:
    k, c, hw, n = 3, 3, (32, 32), 500
    _naive, pixel = _make_pair(n, 1, k, c, hw, True)
    del _naive
    feed = _Feed(np.random.default_rng(0), 1, k, c, hw, True, p_end=1 / 200, p_glitch=0.0, p_static=0.0)
    for _ in range(3 * n):  # wraps twice: reclaimed slots must be reused
        pixel.add(*feed.step())
    frames_only = n * c * hw[0] * hw[1]
    resets = int(pixel.dones.sum())
    # One frame per transition, at most k per reset stack, k older frames of the oldest stack.
    assert pixel.frames_in_use <= n + k * (resets + 1) + k
    assert pixel.nbytes < 1.3 * frames_only


def test_pixel_buffer_reclaims_with_short_episodes_and_reset() -> None:
    _naive, pixel = _make_pair(40, 2, 3, 3, (10, 12), True)
    feed = _Feed(np.random.default_rng(0), 2, 3, 3, (10, 12), True, p_end=0.5, p_glitch=0.3)
    for _ in range(200):
        pixel.add(*feed.step())
    # Worst case is 2k fresh frames per transition; the store must not keep dead ones.
    assert pixel.frames_in_use <= 2 * 3 * 40
    assert pixel.frame_capacity <= 2 * 3 * 40 + 200
    live = int((pixel._refcount > 0).sum())
    assert live == pixel.frames_in_use
    pixel.reset()
    assert pixel.size() == 0 and pixel.frames_in_use == 0


@pytest.mark.parametrize("protocol", [4, 5])
def test_pixel_buffer_survives_pickling(protocol: int) -> None:
    """SB3's save_replay_buffer pickles the buffer; loaded arrays do not own their data."""
    naive, pixel = _make_pair(30, 1, 3, 3, (10, 12), True)
    feed = _Feed(np.random.default_rng(7), 1, 3, 3, (10, 12), True, p_end=0.05, p_glitch=0.0)
    for _ in range(40):
        batch = feed.step()
        naive.add(*batch)
        pixel.add(*batch)
    pixel = pickle.loads(pickle.dumps(pixel, protocol=protocol))
    capacity = pixel.frame_capacity
    feed.p_end, feed.p_glitch = 0.9, 0.5  # many fresh frames: the store must grow
    for _ in range(40):
        batch = feed.step()
        naive.add(*batch)
        pixel.add(*batch)
    assert pixel.frame_capacity > capacity
    _assert_same_contents(naive, pixel)
    _assert_same_samples(naive, pixel, 1)


def test_pixel_buffer_constructor_checks() -> None:
    act = spaces.Box(-1, 1, (1,), dtype=np.float32)
    with pytest.raises(ValueError, match="multiple of frame_stack"):
        PixelReplayBuffer(10, spaces.Box(0, 255, (8, 20, 20), np.uint8), act, frame_stack=3)
    with pytest.raises(ValueError, match="3-D Box"):
        PixelReplayBuffer(10, spaces.Box(0, 255, (20,), np.uint8), act)
    with pytest.warns(UserWarning, match="ignores optimize_memory_usage"):
        buf = PixelReplayBuffer(
            10, spaces.Box(0, 255, (9, 20, 20), np.uint8), act, optimize_memory_usage=True, device="cpu"
        )
    assert not buf.optimize_memory_usage
    assert PixelReplayBuffer(10, spaces.Box(0, 255, (20, 20, 9), np.uint8), act).channels_first is False
    forced = PixelReplayBuffer(10, spaces.Box(0, 255, (6, 4, 5), np.uint8), act, channels_first=True)
    assert forced.frame_shape == (2, 4, 5)
    auto = PixelReplayBuffer(10, spaces.Box(0, 255, (9, 20, 20), np.uint8), act, device="cpu", device_storage="auto")
    assert auto.storage_device is None  # "auto" keeps CPU buffers in host memory


# --------------------------------------------------------------------------- inside SB3 algorithms


class _TinyImageEnv(gym.Env):
    """A bright square moving on a 36x36 RGB canvas; continuous or discrete actions."""

    def __init__(self, discrete: bool) -> None:
        self.observation_space = spaces.Box(0, 255, (36, 36, 3), dtype=np.uint8)
        self.action_space = spaces.Discrete(3) if discrete else spaces.Box(-1, 1, (1,), dtype=np.float32)
        self.discrete = discrete
        self.x = 0

    def _render_frame(self) -> np.ndarray:
        frame = np.zeros((36, 36, 3), dtype=np.uint8)
        frame[14:22, self.x : self.x + 6] = (255, 128, 30)
        return frame

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.x = int(self.np_random.integers(0, 30))
        return self._render_frame(), {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        move = int(action) - 1 if self.discrete else round(float(np.asarray(action).reshape(-1)[0]) * 2)
        self.x = int(np.clip(self.x + move + self.np_random.integers(-1, 2), 0, 30))
        terminated = bool(self.np_random.random() < 0.04)
        return self._render_frame(), float(self.x == 15), terminated, False, {}


class _ChannelFrameStack(gym.Wrapper):
    """Stack the last ``k`` frames along the channel axis, newest last (reset repeats the first frame)."""

    def __init__(self, env: gym.Env, k: int = 3) -> None:
        super().__init__(env)
        h, w, c = env.observation_space.shape  # type: ignore[misc]
        self.observation_space = spaces.Box(0, 255, (h, w, c * k), dtype=np.uint8)
        self.frames: deque[np.ndarray] = deque(maxlen=k)

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(**kwargs)
        self.frames.extend([obs] * self.frames.maxlen)  # type: ignore[operator]
        return np.concatenate(list(self.frames), axis=-1), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.frames.append(obs)
        return np.concatenate(list(self.frames), axis=-1), float(reward), terminated, truncated, info


class _ShadowedPixelBuffer(PixelReplayBuffer):
    """Feeds a naive SequenceReplayBuffer alongside, to compare contents after real SB3 training."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        kwargs.pop("frame_stack", None)
        self.shadow = SequenceReplayBuffer(*args, **kwargs)

    def add(self, *args: Any, **kwargs: Any) -> None:
        super().add(*args, **kwargs)
        self.shadow.add(*args, **kwargs)


@pytest.fixture
def one_thread():
    threads = th.get_num_threads()
    th.set_num_threads(1)
    yield
    th.set_num_threads(threads)


@pytest.mark.parametrize("algo", ["sac", "dqn"])
def test_works_as_sb3_replay_buffer_class(algo: str, one_thread: None) -> None:
    discrete = algo == "dqn"
    env = DummyVecEnv(
        [lambda: gym.wrappers.TimeLimit(_ChannelFrameStack(_TinyImageEnv(discrete)), 30) for _ in range(2)]
    )
    common: dict[str, Any] = {
        "buffer_size": 200,  # 100 rows x 2 envs: 300 steps wrap the ring
        "learning_starts": 50,
        "batch_size": 16,
        "replay_buffer_class": _ShadowedPixelBuffer,
        "replay_buffer_kwargs": {"frame_stack": 3},
        "policy_kwargs": {"net_arch": [32], "features_extractor_kwargs": {"features_dim": 32}},
        "seed": 0,
        "device": "cpu",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SB3's CNN-size and env-checker hints are irrelevant here
        if algo == "sac":
            model: SAC | DQN = SAC("CnnPolicy", env, train_freq=4, gradient_steps=1, **common)
        else:
            model = DQN("CnnPolicy", env, train_freq=4, target_update_interval=50, **common)
        model.learn(300)
    buf = model.replay_buffer
    assert isinstance(buf, _ShadowedPixelBuffer)
    assert buf.full and buf.observation_space.shape == (9, 36, 36)  # VecTransposeImage made it channel-first
    assert buf.channels_first
    assert buf.timeouts.sum() > 0 and (buf.dones * (1 - buf.timeouts)).sum() > 0  # both kinds of episode end
    _assert_same_contents(buf.shadow, buf)
    _assert_same_samples(buf.shadow, buf, 0)
    transitions = buf.buffer_size * buf.n_envs
    resets = int(buf.dones.sum())
    # One new frame per step, one per reset (the repeated first frame is stored once), k frames of lag.
    assert buf.frames_in_use <= transitions + resets + 2 * 3 * buf.n_envs
    s = buf.sample_sequences(8, 3)
    assert s.observations.dtype == th.uint8 and s.observations.shape == (8, 4, 9, 36, 36)
