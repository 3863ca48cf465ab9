"""CurlA2C: SB3's A2C with the auxiliary objective on its shared features extractor.

``train()`` follows SB3 2.9's ``A2C.train`` line by line; our lines are marked ``# curl_rl``.
"""

from __future__ import annotations

import torch as th
from gymnasium import spaces
from stable_baselines3 import A2C
from stable_baselines3.common.utils import explained_variance
from torch.nn import functional as F

from curl_rl.algos.on_policy import OnPolicyAuxMixin
from curl_rl.auxiliary.feature_tap import FeatureTap


class CurlA2C(OnPolicyAuxMixin, A2C):
    """A2C with a contrastive / predictive auxiliary loss on its features extractor.

    Takes every argument of :class:`stable_baselines3.A2C`, plus ``aux``, ``routing`` and ``performance`` as in
    :class:`~curl_rl.CurlPPO`. ``aux="none"`` trains exactly like SB3's A2C.
    """

    _algorithm_kind = "a2c"

    def _setup_model(self) -> None:
        self._setup_on_policy_aux(self.n_steps * self.n_envs if hasattr(self, "n_envs") else None)
        super()._setup_model()
        self._setup_aux(self.policy.features_extractor)

    def train(self) -> None:
        """
        Update policy using the currently gathered
        rollout buffer (one gradient step over whole data).
        """
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)

        # Update optimizer learning rate
        self._update_learning_rate(self.policy.optimizer)
        self._aux_begin_train()  # curl_rl

        # This will only loop once (get all data in one go)
        for rollout_data in self.rollout_buffer.get(batch_size=None):
            actions = rollout_data.actions
            if isinstance(self.action_space, spaces.Discrete):
                # Convert discrete action from float to long
                actions = actions.long().flatten()

            obs_rl = self._aux_augment_rl(rollout_data.observations)  # curl_rl
            with FeatureTap(self.policy.features_extractor, self._aux_taps_anchor) as tap:  # curl_rl
                values, log_prob, entropy = self.policy.evaluate_actions(obs_rl, actions)  # curl_rl: obs_rl
            regulariser, anchor = self._aux_rl_regulariser(rollout_data.observations, actions, values, tap)  # curl_rl
            values = values.flatten()

            # Normalize advantage (not present in the original implementation)
            advantages = rollout_data.advantages
            if self.normalize_advantage:
                advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

            # Policy gradient loss
            policy_loss = -(advantages * log_prob).mean()

            # Value loss using the TD(gae_lambda) target
            value_loss = F.mse_loss(rollout_data.returns, values)

            # Entropy loss favor exploration
            if entropy is None:
                # Approximate entropy when no analytical form
                entropy_loss = -th.mean(-log_prob)
            else:
                entropy_loss = -th.mean(entropy)

            loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss

            # curl_rl: the auxiliary loss (and DrAC's regulariser) joins the A2C loss
            loss = self._aux_join(
                loss, rollout_data.observations, anchor, self._rollout_futures, self._rollout_frame_ids(), regulariser
            )

            # Optimization step
            self.policy.optimizer.zero_grad()
            loss.backward()

            # Clip grad norm
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            self._aux_step()  # curl_rl

        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())

        self._n_updates += 1
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/explained_variance", explained_var)
        self.logger.record("train/entropy_loss", entropy_loss.item())
        self.logger.record("train/policy_loss", policy_loss.item())
        self.logger.record("train/value_loss", value_loss.item())
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self._aux_log()  # curl_rl
