"""Replay buffers with k-step sequence sampling, and a frame-deduplicating pixel replay buffer.

Both classes are drop-in ``replay_buffer_class`` values for SB3's off-policy algorithms
(SAC, TD3, DQN): same constructor arguments, same :meth:`sample`, plus
:meth:`SequenceReplayBuffer.sample_sequences` for temporal auxiliary losses (ATC, SPR).

Indexing conventions (shared by both classes):

* the buffer is a ring of ``buffer_size`` rows, each row holding one transition per env
  column (``n_envs`` columns); row ``i`` of column ``e`` stores ``(o_i, a_i, r_i, o'_i, done_i)``;
* a sequence window of horizon ``K`` starts at a stored transition ``t`` of one column and
  reads ``o_{t+j} = observations[(t + j) % buffer_size]`` of that same column;
* ``o_{t+j}`` is *valid* iff no episode ended (``done`` -- termination or truncation -- or
  ``timeout``) in steps ``t .. t+j-1`` and row ``t+j`` was written after row ``t`` (the ring
  distance from ``t`` to the newest row ``pos - 1`` is at least ``j``). The terminal ``o'``
  of an episode is never substituted for a masked ``o_{t+j}``: use :meth:`sample` if you
  need it.

Invalid entries of a :class:`SequenceSamples` are zero (observations, actions and rewards),
so a loss can multiply by the mask without reading stale data.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.buffers import BaseBuffer, ReplayBuffer
from stable_baselines3.common.preprocessing import is_image_space_channels_first
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.utils import get_device
from stable_baselines3.common.vec_env import VecNormalize

__all__ = ["PixelReplayBuffer", "SequenceReplayBuffer", "SequenceSamples"]


class SequenceSamples(NamedTuple):
    """
    A batch of ``B`` windows of ``K`` consecutive transitions of one env column.

    ``observations[:, j]`` is ``o_{t+j}`` (``j = 0..K``), stored dtype (uint8 images stay uint8);
    ``actions[:, j]`` / ``rewards[:, j]`` are ``a_{t+j}`` / ``r_{t+j}`` (``j = 0..K-1``), float32.
    ``valid[:, j]`` says whether ``o_{t+j}`` belongs to the episode of ``o_t`` and is stored;
    ``actions[:, j]`` and ``rewards[:, j]`` are meaningful iff ``valid[:, j]``. ``valid[:, 0]``
    is always True and each row of ``valid`` is a prefix of True values. Invalid entries are 0.
    """

    observations: th.Tensor  # (B, K+1, *obs_shape)
    actions: th.Tensor  # (B, K, action_dim), float32
    rewards: th.Tensor  # (B, K), float32
    valid: th.Tensor  # (B, K+1), bool


def _as_device_tensor(array: np.ndarray, device: th.device) -> th.Tensor:
    # as_tensor shares freshly gathered host memory instead of copying it a second time, and
    # images cross to the device as uint8 (4x fewer bytes than float32).
    return th.as_tensor(array).to(device)


class SequenceReplayBuffer(ReplayBuffer):
    """
    SB3 :class:`~stable_baselines3.common.buffers.ReplayBuffer` that can also sample windows
    of ``K`` consecutive transitions (see :meth:`sample_sequences`).

    Storage and :meth:`sample` are SB3's, unchanged. ``optimize_memory_usage=True`` is
    supported: windows then start at the same rows that SB3's :meth:`sample` may draw (never
    at ``pos`` once full), and ``o_{t+j}`` is read from the shared observation array.

    :param buffer_size: Max number of transitions in the buffer (over all envs, as in SB3)
    :param observation_space: Observation space (``Dict`` spaces are not supported)
    :param action_space: Action space
    :param device: PyTorch device the samples are returned on
    :param n_envs: Number of parallel environments (one ring column each)
    :param optimize_memory_usage: SB3's variant that stores ``next_obs`` in the next row of
        ``observations``; cannot be combined with ``handle_timeout_termination``
    :param handle_timeout_termination: Store truncations in ``timeouts`` so that
        :meth:`sample` does not treat them as terminal (SB3's default)
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
    ):
        _reject_dict_space(observation_space, type(self).__name__)
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
        )

    @property
    def nbytes(self) -> int:
        """
        Bytes of all arrays the buffer allocated. SB3 allocates with ``np.zeros``, so pages
        are only committed once written: this is the footprint of a full buffer.
        """
        arrays = [self.observations, self.actions, self.rewards, self.dones, self.timeouts]
        if not self.optimize_memory_usage:
            arrays.append(self.next_observations)
        return int(sum(a.nbytes for a in arrays))

    # ------------------------------------------------------------------ sequence sampling
    def sample_sequences(self, batch_size: int, horizon: int, env: VecNormalize | None = None) -> SequenceSamples:
        """
        Sample ``batch_size`` windows ``o_t .. o_{t+horizon}`` of one env column each.

        ``(t, env_index)`` is drawn uniformly among stored transitions with numpy's global RNG,
        exactly as :meth:`sample` draws them (first the rows, then the env columns), so two
        buffers holding the same data return the same windows for the same RNG state.

        :param batch_size: Number of windows ``B``
        :param horizon: Number of steps ``K >= 1`` after ``o_t``
        :param env: VecNormalize wrapper whose statistics normalize observations and rewards
        :return: A :class:`SequenceSamples` (invalid entries zeroed, see the module docstring)
        """
        self._check_sequence_request(batch_size, horizon)
        rows = self._sample_rows(batch_size)
        env_indices = np.random.randint(0, high=self.n_envs, size=(batch_size,))  # noqa: NPY002
        idx, valid = self._sequence_indices(rows, env_indices, horizon)

        obs = self._gather_sequence_observations(idx, env_indices, valid, env)
        step_idx = idx[:, :horizon]
        cols = env_indices[:, None]
        step_valid = valid[:, :horizon]
        actions = self.actions[step_idx, cols].astype(np.float32, copy=False)
        actions = np.where(step_valid[..., None], actions, np.float32(0.0))
        rewards = self._normalize_reward(self.rewards[step_idx, cols], env)
        rewards = np.where(step_valid, rewards, np.float32(0.0)).astype(np.float32, copy=False)
        return SequenceSamples(
            observations=obs,
            actions=_as_device_tensor(actions, self.device),
            rewards=_as_device_tensor(rewards, self.device),
            valid=_as_device_tensor(valid, self.device),
        )

    def _check_sequence_request(self, batch_size: int, horizon: int) -> None:
        if int(horizon) != horizon or horizon < 1:
            raise ValueError(f"horizon must be an integer >= 1 (got {horizon!r}); use sample() for one step.")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1 (got {batch_size}).")
        if horizon >= self.buffer_size:
            raise ValueError(
                f"horizon={horizon} does not fit in a ring of {self.buffer_size} rows per env "
                f"(buffer_size // n_envs): lower horizon or raise buffer_size above {horizon * self.n_envs}."
            )
        if self.size() < horizon + 1:
            raise ValueError(
                f"The buffer holds {self.size()} transition(s) per env but a window of horizon={horizon} "
                f"needs {horizon + 1}: add transitions first (e.g. raise learning_starts) or lower horizon."
            )

    def _sample_rows(self, batch_size: int) -> np.ndarray:
        # Mirrors ReplayBuffer.sample / BaseBuffer.sample draw-for-draw on numpy's global RNG (which
        # SB3 seeds), so sample() and sample_sequences() consume it the same way.
        if self.optimize_memory_usage and self.full:
            starts = np.random.randint(1, self.buffer_size, size=batch_size)  # noqa: NPY002
            return (starts + self.pos) % self.buffer_size
        upper_bound = self.buffer_size if self.full else self.pos
        return np.random.randint(0, upper_bound, size=batch_size)  # noqa: NPY002

    def _sequence_indices(
        self, rows: np.ndarray, env_indices: np.ndarray, horizon: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """
        Ring rows and validity of ``o_t .. o_{t+horizon}`` for each start row ``t``.

        :param rows: Start rows ``t``, shape ``(B,)``
        :param env_indices: Env column of each window, shape ``(B,)``
        :param horizon: ``K``
        :return: ``(idx, valid)``, both ``(B, K+1)``: ring rows (always in range, also where
            invalid) and the validity mask
        """
        offsets = np.arange(horizon + 1)
        idx = (rows[:, None] + offsets[None, :]) % self.buffer_size
        # Rows written after t in ring order: the newest written row is pos - 1; anything at or
        # past pos is unwritten (not full) or older than t (full).
        written_after = (self.pos - 1 - rows) % self.buffer_size
        in_ring = offsets[None, :] <= written_after[:, None]
        step_rows = idx[:, :horizon]
        cols = env_indices[:, None]
        # SB3 stores truncations in `dones` too; `timeouts` is or-ed in for buffers restored or
        # edited by code that only set it.
        ended = (self.dones[step_rows, cols] != 0) | (self.timeouts[step_rows, cols] != 0)
        same_episode = np.ones_like(in_ring)
        same_episode[:, 1:] = np.logical_and.accumulate(~ended, axis=1)
        return idx, in_ring & same_episode

    def _gather_sequence_observations(
        self, idx: np.ndarray, env_indices: np.ndarray, valid: np.ndarray, env: VecNormalize | None
    ) -> th.Tensor:
        obs = self.observations[idx, env_indices[:, None]]
        obs = _normalize_flat(obs, idx.shape, env)
        obs[~valid] = 0
        return _as_device_tensor(obs, self.device)


def _normalize_flat(obs: np.ndarray, lead: tuple[int, ...], env: VecNormalize | None) -> np.ndarray:
    """Apply ``env.normalize_obs`` to a ``(*lead, *obs_shape)`` array (it expects a batch axis)."""
    if env is None:
        return obs
    flat = obs.reshape(-1, *obs.shape[len(lead) :])
    out = env.normalize_obs(flat)
    assert isinstance(out, np.ndarray)
    return np.ascontiguousarray(out).reshape(obs.shape)


def _reject_dict_space(observation_space: spaces.Space, name: str) -> None:
    if isinstance(observation_space, spaces.Dict):
        raise NotImplementedError(
            f"{name} does not support Dict observation spaces (no sequence sampling for them yet); "
            "use SB3's DictReplayBuffer, which SB3 picks by default for Dict spaces."
        )


class PixelReplayBuffer(SequenceReplayBuffer):
    """
    Pixel replay buffer that stores each frame of frame-stacked image observations once.

    Observations are 3-D images whose channel axis concatenates ``frame_stack`` frames of
    ``c`` channels each, oldest first and newest last (``(k*c, H, W)`` channel-first, as SB3's
    ``VecTransposeImage`` delivers them to off-policy algorithms, or ``(H, W, k*c)``
    channel-last). Frames live in one frame store; every transition keeps ``k`` frame slots
    for its observation and ``k`` for its next observation. On :meth:`add`, each incoming frame
    is compared byte for byte with the frames the newest transition of the same env column
    already stored (``obs_t`` against ``next_obs_{t-1}``; the older frames of ``next_obs_t``
    against the newer frames of ``obs_t``) and with the frames already handled in the same
    stack; only frames without an exact match are stored. Reuse therefore never changes what
    is returned: :meth:`sample` and :meth:`sample_sequences` return exactly what a
    :class:`SequenceReplayBuffer` fed the same transitions returns for the same RNG state.
    Consistent stacking costs one frame per transition, plus the frames of each reset stack.

    Frame slots are reference counted; a slot is reused once no live transition points to it,
    so the store stays at about ``buffer_size + resets`` frames. It starts with 2% + a few
    frames of slack and grows by 1/16 when that is not enough (short episodes).

    :param buffer_size: Max number of transitions in the buffer (over all envs, as in SB3)
    :param observation_space: 3-D ``Box`` observation space (channel-stacked frames)
    :param action_space: Action space
    :param device: PyTorch device the samples are returned on
    :param n_envs: Number of parallel environments (one ring column each)
    :param optimize_memory_usage: Accepted for SB3 compatibility and ignored (with a warning):
        this buffer already stores every frame once, and samples like the non-optimized buffer
    :param handle_timeout_termination: As in SB3's ReplayBuffer
    :param frame_stack: Number ``k`` of frames stacked along the channel axis
    :param device_storage: Where the frame store lives. ``False``: host memory (numpy).
        ``True``: a torch tensor on ``device`` (e.g. GPU-resident; sampling then gathers on
        the GPU). A device string (``"cuda:0"``, ``"cpu"``): a torch tensor there.
        ``"auto"``: on ``device`` if it is a CUDA device and the store fits in half of its free
        memory, else host memory.
    :param channels_first: Force the channel axis (``True``: axis 0, ``False``: last axis);
        ``None`` infers it with SB3's ``is_image_space_channels_first`` (smallest axis)
    """

    _obs_idx: np.ndarray
    _next_idx: np.ndarray

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        device: th.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        frame_stack: int = 3,
        device_storage: bool | str = False,
        channels_first: bool | None = None,
    ):
        _reject_dict_space(observation_space, type(self).__name__)
        if not isinstance(observation_space, spaces.Box) or len(observation_space.shape) != 3:
            raise ValueError(
                f"PixelReplayBuffer needs a 3-D Box image observation space, got {observation_space}; "
                "use SequenceReplayBuffer for other spaces."
            )
        if frame_stack < 1:
            raise ValueError(f"frame_stack must be >= 1, got {frame_stack}.")
        if optimize_memory_usage:
            warnings.warn(
                "PixelReplayBuffer ignores optimize_memory_usage=True: it already stores every frame once.",
                stacklevel=2,
            )
        # Skip ReplayBuffer.__init__: it would allocate the full observation arrays.
        BaseBuffer.__init__(self, buffer_size, observation_space, action_space, device, n_envs=n_envs)
        self.buffer_size = max(buffer_size // n_envs, 1)
        self.optimize_memory_usage = False
        self.handle_timeout_termination = handle_timeout_termination
        self.actions = np.zeros(
            (self.buffer_size, self.n_envs, self.action_dim), dtype=self._maybe_cast_dtype(action_space.dtype)
        )
        self.rewards = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)
        self.dones = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)
        self.timeouts = np.zeros((self.buffer_size, self.n_envs), dtype=np.float32)

        shape = tuple(int(s) for s in observation_space.shape)
        self.channels_first = (
            is_image_space_channels_first(observation_space) if channels_first is None else channels_first
        )
        n_channels = shape[0] if self.channels_first else shape[-1]
        if n_channels % frame_stack != 0:
            axis = "first" if self.channels_first else "last"
            raise ValueError(
                f"The channel axis ({axis}) of observation shape {shape} has {n_channels} channels, "
                f"not a multiple of frame_stack={frame_stack}: set frame_stack to the number of stacked "
                "frames, or channels_first if the channel axis was guessed wrong."
            )
        self.frame_stack = frame_stack
        c = n_channels // frame_stack
        self.frame_shape: tuple[int, ...] = (c, *shape[1:]) if self.channels_first else (*shape[:-1], c)
        self._frame_dtype = np.dtype(observation_space.dtype)
        self._frame_nbytes = int(np.prod(self.frame_shape)) * self._frame_dtype.itemsize

        self._storage_device = self._resolve_storage(device_storage)
        self._init_storage()

    # ------------------------------------------------------------------ storage management
    def _initial_capacity(self) -> int:
        transitions = self.buffer_size * self.n_envs
        k = self.frame_stack
        # One frame per transition; the older frames of the oldest stacks and the frames added
        # before the overwritten row is released; ~2% for reset stacks (episodes >= ~150 steps).
        return transitions + (k + 1) * self.n_envs + max(transitions // 50, 2 * k * self.n_envs)

    def _resolve_storage(self, device_storage: bool | str) -> th.device | None:
        if device_storage is False:
            return None
        if device_storage is True:
            return self.device
        if device_storage == "auto":
            if self.device.type != "cuda":
                return None
            free, _total = th.cuda.mem_get_info(self.device)
            if self._initial_capacity() * self._frame_nbytes * 1.25 < 0.5 * free:
                return self.device
            warnings.warn(
                "PixelReplayBuffer: the frame store does not fit comfortably on "
                f"{self.device} ({free / 2**30:.1f} GiB free); keeping it in host memory.",
                stacklevel=3,
            )
            return None
        return get_device(device_storage)

    def _init_storage(self) -> None:
        capacity = self._initial_capacity()
        k = self.frame_stack
        self._frames_np: np.ndarray | None = None
        self._frames_th: th.Tensor | None = None
        if self._storage_device is None:
            # np.zeros maps lazily: untouched slack costs address space, not memory.
            self._frames_np = np.zeros((capacity, *self.frame_shape), dtype=self._frame_dtype)
        else:
            torch_dtype = th.as_tensor(np.zeros(0, dtype=self._frame_dtype)).dtype
            self._frames_th = th.zeros((capacity, *self.frame_shape), dtype=torch_dtype, device=self._storage_device)
        self._capacity = capacity
        self._refcount = np.zeros(capacity, dtype=np.int32)
        self._high_water = 0  # slots [0, high_water) have been handed out at least once
        self._free: list[int] = []
        self._obs_idx = np.zeros((self.buffer_size, self.n_envs, k), dtype=np.int64)
        self._next_idx = np.zeros((self.buffer_size, self.n_envs, k), dtype=np.int64)
        # Raw bytes of the newest next_obs frames per env (empty before the first add): matching
        # never reads the store, which may be on a GPU.
        self._last_next_bytes: list[list[bytes]] = [[] for _ in range(self.n_envs)]
        self._last_next_slots = np.zeros((self.n_envs, k), dtype=np.int64)

    def reset(self) -> None:
        """Empty the buffer (keeps the frame store allocation)."""
        super().reset()
        self._refcount[:] = 0
        self._high_water = 0
        self._free = []
        self._last_next_bytes = [[] for _ in range(self.n_envs)]

    def _grow(self, needed: int) -> None:
        step = max(self._capacity // 16, 64 + 2 * self.frame_stack * self.n_envs)
        new_capacity = max(needed, self._capacity + step)
        if self._frames_np is not None:
            try:
                # realloc: large blocks are moved with mremap, without a second copy in memory.
                self._frames_np.resize((new_capacity, *self.frame_shape), refcheck=False)
            except ValueError:  # does not own its data (e.g. unpickled from a buffer)
                grown = np.zeros((new_capacity, *self.frame_shape), dtype=self._frame_dtype)
                grown[: self._capacity] = self._frames_np
                self._frames_np = grown
        else:
            assert self._frames_th is not None
            grown_th = self._frames_th.new_zeros((new_capacity, *self.frame_shape))
            grown_th[: self._capacity] = self._frames_th
            self._frames_th = grown_th
        self._refcount = np.concatenate([self._refcount, np.zeros(new_capacity - self._capacity, np.int32)])
        self._capacity = new_capacity

    def _alloc_slot(self) -> int:
        if self._free:
            return self._free.pop()
        if self._high_water >= self._capacity:
            self._grow(self._high_water + 1)
        slot = self._high_water
        self._high_water += 1
        return slot

    def _write_frames(self, slots: list[int], frames: list[np.ndarray]) -> None:
        if not slots:
            return
        if self._frames_np is not None:
            for slot, frame in zip(slots, frames):
                self._frames_np[slot] = frame
        else:
            assert self._frames_th is not None
            # One host-to-device copy per add, whatever the number of new frames.
            index = th.as_tensor(slots, dtype=th.long, device=self._frames_th.device)
            self._frames_th[index] = th.as_tensor(np.stack(frames)).to(self._frames_th.device)

    @property
    def nbytes(self) -> int:
        """
        Bytes held by all arrays of the buffer: the frame store at its allocated capacity
        (host or device), the per-transition slot tables, actions, rewards, dones, timeouts
        and bookkeeping.
        """
        store = self._capacity * self._frame_nbytes
        arrays = [
            self._obs_idx,
            self._next_idx,
            self._refcount,
            self.actions,
            self.rewards,
            self.dones,
            self.timeouts,
            self._last_next_slots,
        ]
        held_bytes = sum(len(b) for env_bytes in self._last_next_bytes for b in env_bytes)
        return int(store + sum(a.nbytes for a in arrays) + held_bytes + 8 * len(self._free))

    @property
    def frames_in_use(self) -> int:
        """Number of frame slots referenced by stored transitions."""
        return self._high_water - len(self._free)

    @property
    def frame_capacity(self) -> int:
        """Number of frame slots allocated in the store."""
        return self._capacity

    @property
    def storage_device(self) -> th.device | None:
        """Device of the torch frame store, or None when frames live in host memory (numpy)."""
        return self._storage_device

    # ------------------------------------------------------------------ adding transitions
    def _split_frames(self, batch: np.ndarray) -> np.ndarray:
        """``(n, *obs_shape)`` -> ``(n, k, *frame_shape)`` view, oldest frame first."""
        n, k = batch.shape[0], self.frame_stack
        if self.channels_first:
            return batch.reshape(n, k, *self.frame_shape)
        height, width, c = self.frame_shape
        return np.moveaxis(batch.reshape(n, height, width, k, c), 3, 1)

    @staticmethod
    def _frame_bytes(frames: np.ndarray) -> list[list[bytes]]:
        """
        Raw bytes of each frame. Comparing bytes is an early-exit memcmp, faster than
        ``np.array_equal``, and bitwise: equal bytes means reuse returns identical data.

        :param frames: ``(n, k, *frame_shape)`` frames (views are fine)
        :return: ``n`` lists of ``k`` bytes objects
        """
        return [[frame.tobytes() for frame in env_frames] for env_frames in frames]

    def _match_stack(
        self,
        frames: np.ndarray,
        frame_bytes: list[bytes],
        cand_bytes: list[bytes],
        cand_slots: np.ndarray,
        shift: int,
        new_slots: list[int],
        new_frames: list[np.ndarray],
    ) -> np.ndarray:
        """
        Slot of each frame of one stack: an identical candidate's or earlier frame's slot,
        else a newly allocated one (queued in ``new_slots``/``new_frames``).

        :param frames: ``(k, *frame_shape)`` frames of the incoming stack
        :param frame_bytes: Their raw bytes
        :param cand_bytes: Raw bytes of already stored frames (may be empty)
        :param cand_slots: ``(m,)`` their slots
        :param shift: Candidate ``i + shift`` is the likeliest match of frame ``i`` (tried first)
        :param new_slots: Output list of allocated slots, to be written
        :param new_frames: Output list of the frames to write there
        :return: ``(k,)`` slots
        """
        k = frames.shape[0]
        slots = np.empty(k, dtype=np.int64)
        m = len(cand_bytes)
        for i in range(k):
            data = frame_bytes[i]
            slot = -1
            guess = i + shift
            if 0 <= guess < m and cand_bytes[guess] == data:
                slot = int(cand_slots[guess])
            else:
                for j in range(m):
                    if cand_bytes[j] == data:
                        slot = int(cand_slots[j])
                        break
            if slot < 0:
                # Reset stacks often repeat a frame (or zero padding): store it once.
                for j in range(i):
                    if frame_bytes[j] == data:
                        slot = int(slots[j])
                        break
            if slot < 0:
                slot = self._alloc_slot()
                new_slots.append(slot)
                new_frames.append(frames[i])
            slots[i] = slot
        return slots

    def add(
        self,
        obs: np.ndarray,
        next_obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        done: np.ndarray,
        infos: list[dict[str, Any]],
    ) -> None:
        """
        Store one transition per env (same arguments as SB3's ``ReplayBuffer.add``).

        :param obs: ``(n_envs, *obs_shape)`` observations
        :param next_obs: ``(n_envs, *obs_shape)`` next observations (terminal ones on episode end)
        :param action: ``(n_envs, action_dim)`` actions
        :param reward: ``(n_envs,)`` rewards
        :param done: ``(n_envs,)`` episode ends (terminations and truncations)
        :param infos: Per-env info dicts (``TimeLimit.truncated`` marks truncations)
        """
        # Cast as SB3's buffer does on assignment, so byte comparisons see the stored values.
        obs = np.asarray(obs, dtype=self._frame_dtype).reshape((self.n_envs, *self.obs_shape))
        next_obs = np.asarray(next_obs, dtype=self._frame_dtype).reshape((self.n_envs, *self.obs_shape))
        obs_frames = self._split_frames(obs)
        next_frames = self._split_frames(next_obs)
        obs_bytes = self._frame_bytes(obs_frames)
        next_bytes = self._frame_bytes(next_frames)
        k = self.frame_stack
        row_obs = np.empty((self.n_envs, k), dtype=np.int64)
        row_next = np.empty((self.n_envs, k), dtype=np.int64)
        new_slots: list[int] = []
        new_frames: list[np.ndarray] = []
        for e in range(self.n_envs):
            if obs_bytes[e] == self._last_next_bytes[e]:
                # The usual case: obs_t is next_obs_{t-1}.
                row_obs[e] = self._last_next_slots[e]
            else:
                row_obs[e] = self._match_stack(
                    obs_frames[e],
                    obs_bytes[e],
                    self._last_next_bytes[e],
                    self._last_next_slots[e],
                    0,
                    new_slots,
                    new_frames,
                )
            # next_obs_t normally drops obs_t's oldest frame and appends one new frame.
            row_next[e] = self._match_stack(
                next_frames[e], next_bytes[e], obs_bytes[e], row_obs[e], 1, new_slots, new_frames
            )
        self._write_frames(new_slots, new_frames)

        # Take the new references before releasing the overwritten row: with buffer_size 1 the
        # row being released is also the one the new obs was matched against.
        refcount = self._refcount
        # A handful of slots per add: scalar updates beat ufunc.at / np.unique here.
        for slot in row_obs.ravel().tolist() + row_next.ravel().tolist():
            refcount[slot] += 1
        if self.full:
            self._release_row(self.pos)
        self._obs_idx[self.pos] = row_obs
        self._next_idx[self.pos] = row_next
        self._last_next_bytes = next_bytes
        self._last_next_slots[:] = row_next

        action = np.asarray(action).reshape((self.n_envs, self.action_dim))
        self.actions[self.pos] = action
        self.rewards[self.pos] = np.asarray(reward)
        self.dones[self.pos] = np.asarray(done)
        if self.handle_timeout_termination:
            self.timeouts[self.pos] = np.array([info.get("TimeLimit.truncated", False) for info in infos])
        self.pos += 1
        if self.pos == self.buffer_size:
            self.full = True
            self.pos = 0

    def _release_row(self, row: int) -> None:
        refcount, free = self._refcount, self._free
        for slot in self._obs_idx[row].ravel().tolist() + self._next_idx[row].ravel().tolist():
            refcount[slot] -= 1
            if refcount[slot] == 0:  # duplicates reach 0 once, on their last reference
                free.append(slot)

    # ------------------------------------------------------------------ sampling
    def _gather_stacks(self, slots: np.ndarray) -> np.ndarray | th.Tensor:
        """
        Rebuild stacked observations from frame slots.

        :param slots: ``(*lead, k)`` frame slots
        :return: ``(*lead, *obs_shape)`` numpy array (host store) or tensor (torch store)
        """
        lead = slots.shape[:-1]
        flat = slots.reshape(-1)
        n, k = int(np.prod(lead)), self.frame_stack
        if self._frames_np is not None:
            frames = np.take(self._frames_np, flat, axis=0)
            if self.channels_first:
                # Frames of one stack are adjacent in the gathered array: stacking is a free view.
                return frames.reshape(*lead, *self.obs_shape)
            split = frames.reshape(n, k, *self.frame_shape)
            return np.ascontiguousarray(split.transpose(0, 2, 3, 1, 4)).reshape(*lead, *self.obs_shape)
        assert self._frames_th is not None
        frames_th = self._frames_th.index_select(0, th.as_tensor(flat).to(self._frames_th.device))
        if self.channels_first:
            return frames_th.reshape(*lead, *self.obs_shape)
        split_th = frames_th.reshape(n, k, *self.frame_shape)
        return split_th.permute(0, 2, 3, 1, 4).contiguous().reshape(*lead, *self.obs_shape)

    def _stacks_to_device(self, stacks: np.ndarray | th.Tensor, env: VecNormalize | None) -> th.Tensor:
        if env is not None:
            host = stacks.cpu().numpy() if isinstance(stacks, th.Tensor) else stacks
            normalized = self._normalize_obs(host, env)
            assert isinstance(normalized, np.ndarray)
            return _as_device_tensor(normalized, self.device)
        if isinstance(stacks, th.Tensor):
            return stacks.to(self.device)
        return _as_device_tensor(stacks, self.device)

    def _get_samples(self, batch_inds: np.ndarray, env: VecNormalize | None = None) -> ReplayBufferSamples:
        # Same RNG draw as SB3's ReplayBuffer._get_samples (global RNG, seeded by SB3's set_random_seed).
        env_indices = np.random.randint(0, high=self.n_envs, size=(len(batch_inds),))  # noqa: NPY002
        obs = self._stacks_to_device(self._gather_stacks(self._obs_idx[batch_inds, env_indices]), env)
        next_obs = self._stacks_to_device(self._gather_stacks(self._next_idx[batch_inds, env_indices]), env)
        # Only terminations are terminal for bootstrapping, as in SB3.
        not_timeout = 1 - self.timeouts[batch_inds, env_indices]
        dones = (self.dones[batch_inds, env_indices] * not_timeout).reshape(-1, 1)
        rewards = self._normalize_reward(self.rewards[batch_inds, env_indices].reshape(-1, 1), env)
        return ReplayBufferSamples(
            observations=obs,
            actions=_as_device_tensor(self.actions[batch_inds, env_indices], self.device),
            next_observations=next_obs,
            dones=_as_device_tensor(dones, self.device),
            rewards=_as_device_tensor(rewards, self.device),
        )

    def _gather_sequence_observations(
        self, idx: np.ndarray, env_indices: np.ndarray, valid: np.ndarray, env: VecNormalize | None
    ) -> th.Tensor:
        stacks = self._gather_stacks(self._obs_idx[idx, env_indices[:, None]])
        if env is not None:
            host = stacks.cpu().numpy() if isinstance(stacks, th.Tensor) else stacks
            host = _normalize_flat(host, idx.shape, env)
            host[~valid] = 0
            return _as_device_tensor(host, self.device)
        if isinstance(stacks, th.Tensor):
            stacks[th.as_tensor(~valid).to(stacks.device)] = 0
            return stacks.to(self.device)
        stacks[~valid] = 0
        return _as_device_tensor(stacks, self.device)
