"""Glue shared by CurlPPO and CurlA2C: how the RL loss sees augmentation, and the rollout windows.

``rl_augment`` (see :class:`~curl_rl.AuxConfig`) decides what the PPO/A2C loss sees:
``"naive"`` evaluates the new policy on ``aug(s)`` against old log-probs of ``s`` (RAD);
``"consistent"`` recomputes the old log-probs and values on the same ``aug(s)`` with a snapshot of
the rollout's parameters, so the ratio starts at exactly 1; ``"drac"`` keeps the loss on ``s`` and
adds DrAC's regularisers from one extra forward of ``aug(s)`` (which doubles as the contrastive
anchor). ``views`` decides how often those views are drawn (see :mod:`curl_rl.algos.rollout_views`).
"""

from __future__ import annotations

import copy
from typing import Any

import torch as th
from gymnasium import spaces

from curl_rl.algos.aux_mixin import AuxAlgorithmMixin, FutureWindows, _batch_rows, _take, features_extractor_is_custom
from curl_rl.algos.rollout_views import RolloutViews, draw_rollout_views, select_rows
from curl_rl.auxiliary.drac import drac_regularisers
from curl_rl.auxiliary.feature_tap import FeatureTap
from curl_rl.auxiliary.head import ObsT
from curl_rl.buffers.rollout import IndexedDictRolloutBuffer, IndexedRolloutBuffer


class OnPolicyAuxMixin(AuxAlgorithmMixin):
    """What CurlPPO and CurlA2C share: RL-augmentation modes, the indexed rollout buffer, its windows."""

    rollout_buffer: Any
    rollout_buffer_class: Any
    num_timesteps: int

    def _setup_on_policy_aux(self, batch_size: int | None) -> None:
        self._aux_validate(batch_size, features_extractor_is_custom(self.policy_kwargs))
        if self.aux_config.future != "none" and isinstance(self.observation_space, spaces.Dict):
            raise ValueError("future objectives on Dict observations are not supported yet; use aux 'curl' or 'aug'")
        if self.rollout_buffer_class is None:
            dict_obs = isinstance(self.observation_space, spaces.Dict)
            self.rollout_buffer_class = IndexedDictRolloutBuffer if dict_obs else IndexedRolloutBuffer

    def collect_rollouts(self, *args: Any, **kwargs: Any) -> bool:
        """SB3's ``collect_rollouts``; remembers the step it started at (``rollout_start_step``).

        The weights do not change during a rollout, so a run stopped in the middle of one can be
        checkpointed as of its start (see :mod:`curl_rl.experiment.run`).
        """
        self.rollout_start_step = int(self.num_timesteps)
        return bool(super().collect_rollouts(*args, **kwargs))  # type: ignore[misc]

    def _rollout_futures(self, horizon: int) -> FutureWindows:
        buf = self.rollout_buffer
        if not hasattr(buf, "future_windows"):
            raise TypeError(
                f"future objectives need curl_rl's IndexedRolloutBuffer, not {type(buf).__name__}; "
                "leave rollout_buffer_class unset"
            )
        rows, action_rows, valid = buf.future_windows(buf.last_batch_inds, horizon)
        actions = th.as_tensor(buf.actions[action_rows]).to(self.device)
        valid_t = th.as_tensor(valid).to(self.device)
        views = self._aux_rollout_views
        if views is not None and views.keys is not None:
            # the future frames' keys were encoded with the rollout's views: no observation to gather
            keys = views.keys[th.as_tensor(rows, device=self.device)]
            return FutureWindows(None, None, actions, valid_t, future_keys=keys)
        obs = th.as_tensor(buf.observations[rows]).to(self.device)  # stays uint8 until the device
        return FutureWindows(None, obs, actions, valid_t)

    def _rollout_frame_ids(self) -> th.Tensor | None:
        """A unique id per frame of this rollout (unique across rollouts too: it includes the
        step count at which the rollout ended), for the queue's own-frame exclusion."""
        inds = getattr(self.rollout_buffer, "last_batch_inds", None)
        if inds is None or not self.aux_config.queue_size:
            return None
        rows = int(self.rollout_buffer.buffer_size * self.rollout_buffer.n_envs)
        return th.as_tensor(inds, dtype=th.long, device=self.device) + int(self.num_timesteps) * rows

    # -- how the RL loss sees augmentation -----------------------------------------------------
    def _excluded_save_params(self) -> list[str]:
        # the snapshot and the rollout's views are rebuilt at every train() call
        return [*super()._excluded_save_params(), "_aux_old_policy", "_aux_rollout_views"]

    @property
    def _aux_rollout_views(self) -> RolloutViews | None:
        return getattr(self, "_aux_views", None)

    def _aux_batch_rows(self) -> th.Tensor:
        return th.as_tensor(self.rollout_buffer.last_batch_inds, device=self.device)

    def _aux_begin_train(self) -> None:
        """Once per ``train()``, before any update: draw the rollout's views (``views="rollout"``),
        or snapshot the rollout policy for "consistent"."""
        self._aux_views: RolloutViews | None = None
        if self.aux_head is None:
            return
        if self.aux_config.views == "rollout":
            self._aux_views = draw_rollout_views(
                self,
                consistent=self._rl_augment == "consistent",
                keys=self.aux_config.has_loss,
                chunk=int(getattr(self, "batch_size", None) or 256),
            )
            return
        if self._rl_augment != "consistent":
            return
        if getattr(self, "_aux_old_policy", None) is None:
            # the optimizer is not part of the snapshot (memo maps it to None)
            self._aux_old_policy = copy.deepcopy(self.policy, memo={id(self.policy.optimizer): None})
        self._aux_old_policy.load_state_dict(self.policy.state_dict())
        self._aux_old_policy.set_training_mode(False)  # as in collect_rollouts

    def _aux_old_estimates(self, obs_rl: ObsT, actions: th.Tensor, rollout_data: Any) -> tuple[th.Tensor, th.Tensor]:
        """The old log-probs and values the ratio and the value clipping compare against.

        :param obs_rl: the observations the new policy is evaluated on (augmented or not).
        :param actions: the minibatch's actions, as given to ``evaluate_actions``.
        :param rollout_data: the minibatch (its ``old_log_prob`` / ``old_values`` are of ``s``).
        :return: ``(old_log_prob, old_values)``; under "consistent", those of the rollout's
            parameters on ``obs_rl`` itself.
        """
        if self.aux_head is None or self._rl_augment != "consistent":
            return rollout_data.old_log_prob, rollout_data.old_values
        views = self._aux_rollout_views
        if views is not None:
            assert views.old_log_prob is not None and views.old_values is not None
            rows = self._aux_batch_rows()
            return views.old_log_prob[rows], views.old_values[rows]
        with th.no_grad():
            values, log_prob, _ = self._aux_old_policy.evaluate_actions(obs_rl, actions)
        return log_prob, values.flatten()

    def _aux_rl_regulariser(
        self, obs: ObsT, actions: th.Tensor, values: th.Tensor, tap: FeatureTap
    ) -> tuple[th.Tensor | None, th.Tensor | None]:
        """Call right after the RL forward: DrAC's weighted regularisers and the contrastive anchor.

        :param obs: the raw minibatch observations ``s``.
        :param actions: the minibatch's actions.
        :param values: ``V`` from the RL forward (of ``s`` under "drac").
        :param tap: the tap around the RL forward.
        :return: ``(regulariser or None, anchor features or None)``.
        """
        if self.aux_head is None or self._rl_augment != "drac":
            return None, (tap.features if self._aux_taps_anchor else None)
        # SB3 keeps the last forward's torch distribution here; take it before the next forward
        dist_s = self.policy.action_dist.distribution
        with FeatureTap(self.policy.features_extractor, self.aux_config.has_loss) as aug_tap:
            values_aug, _, _ = self.policy.evaluate_actions(self._aux_first_view(obs), actions)
        out = drac_regularisers(
            dist_s, values, self.policy.action_dist.distribution, values_aug, self.aux_config.drac_weight
        )
        self._aux_record("drac", out.loss, out.metrics)
        return out.loss, aug_tap.features

    def _aux_augment_rl(self, obs: Any) -> Any:
        views = self._aux_rollout_views
        if views is None or not self._aux_uses_rl_augmentation:
            return super()._aux_augment_rl(obs)
        return select_rows(views.first, self._aux_batch_rows())

    def _aux_first_view(self, obs: ObsT) -> ObsT:
        views = self._aux_rollout_views
        if views is None:
            return super()._aux_first_view(obs)
        return _take(select_rows(views.first, self._aux_batch_rows()), _batch_rows(obs))

    def _aux_cached_keys(self, rows: int) -> th.Tensor | None:
        views = self._aux_rollout_views
        if views is None or views.keys is None:
            return None
        return views.keys[self._aux_batch_rows()][:rows]

    def _aux_log(self) -> None:
        self._aux_views = None  # the views are of this rollout only; free them before the next one
        super()._aux_log()
