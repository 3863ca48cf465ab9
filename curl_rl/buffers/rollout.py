"""On-policy rollout buffers that keep images as uint8 and know which rows a minibatch holds.

SB3's ``RolloutBuffer`` stores observations as float32 (4x the memory of the uint8 frames) and
does not expose the indices of a minibatch, which the future-prediction objectives need to find
``o_{t+k}`` of the same environment. Values are unchanged: SB3 scales uint8 and float32 images
identically, so PPO/A2C train exactly as with the parent buffer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from stable_baselines3.common.buffers import DictRolloutBuffer, RolloutBuffer
from stable_baselines3.common.preprocessing import is_image_space


class _IndexedMixin:
    """Records the row indices of the last minibatch and answers future-window queries."""

    buffer_size: int
    n_envs: int
    episode_starts: np.ndarray
    actions: np.ndarray
    last_batch_inds: np.ndarray | None = None

    def _remember(self, batch_inds: np.ndarray) -> None:
        self.last_batch_inds = np.asarray(batch_inds)

    def future_windows(self, batch_inds: np.ndarray, horizon: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Indices of ``o_{t+1..t+K}`` and ``a_{t..t+K-1}`` for flattened minibatch rows.

        After ``get()`` the arrays are flattened env-major (row = ``env * n_steps + t``), so the
        future of row ``r`` at step ``j`` is row ``r + j`` when it stays inside the rollout and no
        episode starts in between (``episode_starts`` is not flattened by SB3).

        :param batch_inds: flattened rows of the minibatch.
        :param horizon: K.
        :return: ``(future_rows (B, K), action_rows (B, K), valid (B, K))``; invalid entries point
            at the anchor row itself so gathers stay in bounds.
        """
        n_steps = self.buffer_size
        env = batch_inds // n_steps
        t = batch_inds % n_steps
        j = np.arange(1, horizon + 1)
        tj = t[:, None] + j[None, :]
        inside = tj < n_steps
        starts = self.episode_starts[np.minimum(tj, n_steps - 1), env[:, None]].astype(bool)
        # an episode start at t+j' (j' <= j) cuts every later step too
        valid = inside & ~np.logical_or.accumulate(starts | ~inside, axis=1)
        future_rows = np.where(valid, batch_inds[:, None] + j[None, :], batch_inds[:, None])
        action_rows = np.where(valid, batch_inds[:, None] + j[None, :] - 1, batch_inds[:, None])
        return future_rows, action_rows, valid


class IndexedRolloutBuffer(_IndexedMixin, RolloutBuffer):
    """``RolloutBuffer`` with uint8 image storage and minibatch indices (same samples, same RNG)."""

    def reset(self) -> None:
        super().reset()
        if is_image_space(self.observation_space):
            self.observations = np.zeros((self.buffer_size, self.n_envs, *self.obs_shape), dtype=np.uint8)

    def _get_samples(self, batch_inds: np.ndarray, env: Any = None) -> Any:
        self._remember(batch_inds)
        return super()._get_samples(batch_inds, env)


class IndexedDictRolloutBuffer(_IndexedMixin, DictRolloutBuffer):
    """``DictRolloutBuffer`` with uint8 image keys and minibatch indices."""

    def reset(self) -> None:
        super().reset()
        assert isinstance(self.observation_space, spaces.Dict)
        for key, sub in self.observation_space.spaces.items():
            if is_image_space(sub):
                self.observations[key] = np.zeros((self.buffer_size, self.n_envs, *self.obs_shape[key]), dtype=np.uint8)

    def _get_samples(self, batch_inds: np.ndarray, env: Any = None) -> Any:
        self._remember(batch_inds)
        return super()._get_samples(batch_inds, env)
