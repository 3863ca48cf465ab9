"""What CurlSAC, CurlTD3 and CurlDQN share: replay-buffer defaults and future windows."""

from __future__ import annotations

from typing import Any

import torch as th
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space

from curl_rl.common.augmentations import infer_frame_channels
from curl_rl.common.aux_algorithm import AuxAlgorithmMixin, features_extractor_is_custom
from curl_rl.common.aux_head import ObsT
from curl_rl.common.replay_buffers import PixelReplayBuffer, SequenceReplayBuffer


class OffPolicyAuxMixin(AuxAlgorithmMixin):
    """Replay-buffer choice, validation and future windows for the off-policy algorithms."""

    replay_buffer: Any
    replay_buffer_class: Any
    replay_buffer_kwargs: dict[str, Any]
    batch_size: int
    _vec_normalize_env: Any

    def _setup_off_policy_aux(self) -> None:
        self._aux_validate(self.batch_size, features_extractor_is_custom(self.policy_kwargs))
        space = self.observation_space
        n_step = int(getattr(self, "n_steps", 1) or 1)
        if self.aux_config.future != "none" and isinstance(space, spaces.Dict):
            raise ValueError("future objectives on Dict observations are not supported yet; use aux 'curl' or 'aug'")
        if self.replay_buffer_class is None and n_step == 1 and isinstance(space, spaces.Box):
            if is_image_space(space):
                # frames are stored once; samples are identical to SB3's ReplayBuffer
                frames = space.shape[0] // infer_frame_channels(space.shape[0], self.aux_config.frame_channels)
                self.replay_buffer_class = PixelReplayBuffer
                self.replay_buffer_kwargs = {"frame_stack": frames, **(self.replay_buffer_kwargs or {})}
            else:
                self.replay_buffer_class = SequenceReplayBuffer
        if self.aux_config.future != "none" and self.replay_buffer_class is not None:
            if not issubclass(self.replay_buffer_class, SequenceReplayBuffer):
                raise ValueError(
                    f"future objectives sample k-step windows; {self.replay_buffer_class.__name__} cannot. "
                    "Use curl_rl.common.replay_buffers.PixelReplayBuffer or SequenceReplayBuffer"
                )

    def _replay_futures(self, horizon: int) -> tuple[ObsT, ObsT, th.Tensor, th.Tensor]:
        batch = self.aux_config.batch_size or self.batch_size
        seq = self.replay_buffer.sample_sequences(batch, horizon, env=self._vec_normalize_env)
        return seq.observations[:, 0], seq.observations[:, 1:], seq.actions, seq.valid[:, 1:]
