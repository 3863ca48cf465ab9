"""What CurlSAC, CurlTD3 and CurlDQN share: replay-buffer defaults and future windows."""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space

from curl_rl.algos.aux_mixin import AuxAlgorithmMixin, FutureWindows, features_extractor_is_custom
from curl_rl.algos.routing import routed_policy
from curl_rl.auxiliary.augmentations import infer_frame_channels
from curl_rl.buffers.replay import PixelReplayBuffer, SequenceReplayBuffer


class OffPolicyAuxMixin(AuxAlgorithmMixin):
    """Replay-buffer choice, validation and future windows for the off-policy algorithms."""

    replay_buffer: Any
    replay_buffer_class: Any
    replay_buffer_kwargs: dict[str, Any]
    batch_size: int
    _vec_normalize_env: Any
    #: CURL-routed policy class (SAC/TD3 set it; DQN has a single encoder and leaves it None)
    _routed_policy_class: type | None = None

    def _route_policy(self, policy: Any, policy_kwargs: dict[str, Any]) -> Any:
        if self._routed_policy_class is None:
            return policy
        if self._resolved_routing() == "curl":
            return routed_policy(policy, self._routed_policy_class, self.policy_aliases)  # type: ignore[attr-defined]
        if self.aux_config.has_loss and policy_kwargs.get("share_features_extractor"):
            raise ValueError(
                "with share_features_extractor=True SB3 trains the shared encoder with the actor loss only, "
                "so the auxiliary loss would not meet the critic's gradient; use routing='curl'"
            )
        return policy

    def _setup_model(self) -> None:
        self._setup_off_policy_aux()
        super()._setup_model()  # type: ignore[misc]
        # the auxiliary loss trains the encoder the TD loss trains: the critic's (SAC/TD3), the Q-net's (DQN)
        critic = getattr(self, "critic", None)
        self._setup_aux(critic.features_extractor if critic is not None else self.q_net.features_extractor)  # type: ignore[attr-defined]

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
                    "Use curl_rl.buffers.replay.PixelReplayBuffer or SequenceReplayBuffer"
                )

    def _replay_futures(self, horizon: int) -> FutureWindows:
        batch = self.aux_config.batch_size or self.batch_size
        seq = self.replay_buffer.sample_sequences(batch, horizon, env=self._vec_normalize_env)
        return FutureWindows(seq.observations[:, 0], seq.observations[:, 1:], seq.actions, seq.valid[:, 1:])
