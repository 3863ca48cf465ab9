"""Glue shared by CurlPPO and CurlA2C: the indexed rollout buffer and its future windows."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces

from curl_rl.algos.aux_mixin import AuxAlgorithmMixin, features_extractor_is_custom
from curl_rl.auxiliary.head import ObsT
from curl_rl.buffers.rollout import IndexedDictRolloutBuffer, IndexedRolloutBuffer


class OnPolicyAuxMixin(AuxAlgorithmMixin):
    """What CurlPPO and CurlA2C share: the rollout buffer with indices and its future windows."""

    rollout_buffer: Any
    rollout_buffer_class: Any

    def _setup_on_policy_aux(self, batch_size: int | None) -> None:
        self._aux_validate(batch_size, features_extractor_is_custom(self.policy_kwargs))
        if self.aux_config.future != "none" and isinstance(self.observation_space, spaces.Dict):
            raise ValueError("future objectives on Dict observations are not supported yet; use aux 'curl' or 'aug'")
        if self.rollout_buffer_class is None:
            dict_obs = isinstance(self.observation_space, spaces.Dict)
            self.rollout_buffer_class = IndexedDictRolloutBuffer if dict_obs else IndexedRolloutBuffer

    def _rollout_futures(self, horizon: int) -> tuple[ObsT | None, ObsT, th.Tensor, th.Tensor]:
        buf = self.rollout_buffer
        if not hasattr(buf, "future_windows"):
            raise TypeError(
                f"future objectives need curl_rl's IndexedRolloutBuffer, not {type(buf).__name__}; "
                "leave rollout_buffer_class unset"
            )
        rows, action_rows, valid = buf.future_windows(buf.last_batch_inds, horizon)
        obs = th.as_tensor(buf.observations[rows]).to(self.device)  # stays uint8 until the device
        actions = th.as_tensor(buf.actions[action_rows]).to(self.device)
        return None, obs, actions, th.as_tensor(valid).to(self.device)
