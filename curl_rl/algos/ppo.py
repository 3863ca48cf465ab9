"""CurlPPO: SB3's PPO with the auxiliary objective trained on the shared features extractor.

Routing: PPO has one extractor shared by actor and critic (SB3's default), so the auxiliary
gradients simply join the PPO loss's gradients in the same ``backward()`` and the same optimizer
step. ``train()`` follows SB3 2.9's ``PPO.train`` line by line; our lines are marked ``# curl_rl``.
"""

from __future__ import annotations

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.utils import explained_variance
from torch.nn import functional as F

from curl_rl.algos.on_policy import OnPolicyAuxMixin
from curl_rl.auxiliary.feature_tap import FeatureTap


class CurlPPO(OnPolicyAuxMixin, PPO):
    """PPO with a contrastive / predictive auxiliary loss on its features extractor.

    Takes every argument of :class:`stable_baselines3.PPO`, plus:

    :param aux: the auxiliary objective: a preset name (``"none"``, ``"aug"``, ``"curl"``,
        ``"atc"``, ``"spr"``, ``"curl+future"``, ``"triplet"``), a dict overriding preset fields
        (``{"preset": "curl", "tau": 0.01}``) or an :class:`~curl_rl.AuxConfig`.
        ``"none"`` trains exactly like SB3's PPO.
    :param routing: accepted for a uniform interface; PPO always shares one extractor.
    :param performance: speed switches for every encoder (``"auto"``, ``"off"``, a dict or a
        :class:`~curl_rl.algos.performance.PerformanceConfig`); state-dict compatible.
    """

    _algorithm_kind = "ppo"

    def _setup_model(self) -> None:
        self._setup_on_policy_aux(self.batch_size)
        super()._setup_model()
        self._setup_aux(self.policy.features_extractor)

    def train(self) -> None:
        """
        Update policy using the currently gathered rollout buffer.
        """
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update optimizer learning rate
        self._update_learning_rate(self.policy.optimizer)
        # Compute current clip range
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        # Optional: clip range for the value function
        if self.clip_range_vf is not None:
            clip_range_vf = self.clip_range_vf(self._current_progress_remaining)  # type: ignore[operator]

        entropy_losses = []
        pg_losses, value_losses = [], []
        clip_fractions = []
        self._aux_begin_train()  # curl_rl
        ratio_dev_at_start = None  # curl_rl: max |ratio - 1| before any update; 0 for a sound objective

        continue_training = True
        # train for n_epochs epochs
        for epoch in range(self.n_epochs):
            approx_kl_divs = []
            # Do a complete pass on the rollout buffer
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                actions = rollout_data.actions
                if isinstance(self.action_space, spaces.Discrete):
                    # Convert discrete action from float to long
                    actions = rollout_data.actions.long().flatten()

                obs_rl = self._aux_augment_rl(rollout_data.observations)  # curl_rl
                old_log_prob, old_values = self._aux_old_estimates(obs_rl, actions, rollout_data)  # curl_rl
                with FeatureTap(self.policy.features_extractor, self._aux_taps_anchor) as tap:  # curl_rl
                    values, log_prob, entropy = self.policy.evaluate_actions(obs_rl, actions)  # curl_rl: obs_rl
                regulariser, anchor = self._aux_rl_regulariser(
                    rollout_data.observations, actions, values, tap
                )  # curl_rl
                values = values.flatten()
                # Normalize advantage
                advantages = rollout_data.advantages
                # Normalization does not make sense if mini batchsize == 1, see GH issue #325
                if self.normalize_advantage and len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

                # ratio between old and new policy, should be one at the first iteration
                ratio = th.exp(log_prob - old_log_prob)  # curl_rl: old_log_prob
                if ratio_dev_at_start is None:  # curl_rl
                    ratio_dev_at_start = (ratio - 1).abs().max().item()  # curl_rl

                # clipped surrogate loss
                policy_loss_1 = advantages * ratio
                policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
                policy_loss = -th.min(policy_loss_1, policy_loss_2).mean()

                # Logging
                pg_losses.append(policy_loss.item())
                clip_fraction = th.mean((th.abs(ratio - 1) > clip_range).float()).item()
                clip_fractions.append(clip_fraction)

                if self.clip_range_vf is None:
                    # No clipping
                    values_pred = values
                else:
                    # Clip the difference between old and new value
                    # NOTE: this depends on the reward scaling
                    values_pred = old_values + th.clamp(  # curl_rl: old_values
                        values - old_values, -clip_range_vf, clip_range_vf
                    )
                # Value loss using the TD(gae_lambda) target
                value_loss = F.mse_loss(rollout_data.returns, values_pred)
                value_losses.append(value_loss.item())

                # Entropy loss favor exploration
                if entropy is None:
                    # Approximate entropy when no analytical form
                    entropy_loss = -th.mean(-log_prob)
                else:
                    entropy_loss = -th.mean(entropy)

                entropy_losses.append(entropy_loss.item())

                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss

                # Calculate approximate form of reverse KL Divergence for early stopping
                # see issue #417: https://github.com/DLR-RM/stable-baselines3/issues/417
                # and discussion in PR #419: https://github.com/DLR-RM/stable-baselines3/pull/419
                # and Schulman blog: http://joschu.net/blog/kl-approx.html
                with th.no_grad():
                    log_ratio = log_prob - old_log_prob  # curl_rl: old_log_prob
                    approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio).cpu().numpy()
                    approx_kl_divs.append(approx_kl_div)

                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    if self.verbose >= 1:
                        print(f"Early stopping at step {epoch} due to reaching max kl: {approx_kl_div:.2f}")
                    break

                # curl_rl: the auxiliary loss (and DrAC's regulariser) joins the PPO loss
                loss = self._aux_join(
                    loss,
                    rollout_data.observations,
                    anchor,
                    self._rollout_futures,
                    self._rollout_frame_ids(),
                    regulariser,
                )

                # Optimization step
                self.policy.optimizer.zero_grad()
                loss.backward()
                # Clip grad norm
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()
                self._aux_step()  # curl_rl

            self._n_updates += 1
            if not continue_training:
                break

        explained_var = explained_variance(self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten())

        # Logs
        self.logger.record("train/entropy_loss", np.mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(value_losses))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", np.mean(clip_fractions))
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/explained_variance", explained_var)
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if ratio_dev_at_start is not None:  # curl_rl
            self.logger.record("train/ratio_dev_at_start", ratio_dev_at_start)  # curl_rl
        if self.clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)
        self._aux_log()  # curl_rl
