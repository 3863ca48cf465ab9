"""CurlTD3: SB3's TD3 with the auxiliary objective on the critic's encoder.

Routing as in :mod:`curl_rl.algos.sac`. ``train()`` follows SB3 2.9's ``TD3.train`` line by line; our
lines are marked ``# curl_rl``.
"""

from __future__ import annotations

import numpy as np
import torch as th
from stable_baselines3 import TD3
from stable_baselines3.common.utils import polyak_update
from torch.nn import functional as F

from curl_rl.algos.off_policy import OffPolicyAuxMixin
from curl_rl.algos.routing import CurlRoutedTD3Policy
from curl_rl.auxiliary.feature_tap import FeatureTap


class CurlTD3(OffPolicyAuxMixin, TD3):
    """TD3 with a contrastive / predictive auxiliary loss on the critic's encoder.

    Takes every argument of :class:`stable_baselines3.TD3`, plus ``aux``, ``routing`` and ``performance`` as in
    :class:`~curl_rl.CurlSAC`. ``aux="none"`` trains exactly like SB3's TD3.
    """

    _routed_policy_class = CurlRoutedTD3Policy

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)

        # Update learning rate according to lr schedule
        self._update_learning_rate([self.actor.optimizer, self.critic.optimizer])

        actor_losses, critic_losses = [], []
        for _ in range(gradient_steps):
            self._n_updates += 1
            # Sample replay buffer
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            obs = self._aux_augment_rl(replay_data.observations)  # curl_rl
            next_obs = self._aux_augment_rl(replay_data.next_observations)  # curl_rl

            with th.no_grad():
                # Select action according to policy and add clipped noise
                noise = replay_data.actions.clone().data.normal_(0, self.target_policy_noise)
                noise = noise.clamp(-self.target_noise_clip, self.target_noise_clip)
                next_actions = (self.actor_target(next_obs) + noise).clamp(-1, 1)  # curl_rl: next_obs

                # Compute the next Q-values: min over all critics targets
                next_q_values = th.cat(self.critic_target(next_obs, next_actions), dim=1)  # curl_rl: next_obs
                next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            # Get current Q-values estimates for each critic network
            with FeatureTap(self.critic.features_extractor, self._aux_taps_anchor) as tap:  # curl_rl
                current_q_values = self.critic(obs, replay_data.actions)  # curl_rl: obs

            # Compute critic loss
            critic_loss = sum(F.mse_loss(current_q, target_q_values) for current_q in current_q_values)
            assert isinstance(critic_loss, th.Tensor)
            critic_losses.append(critic_loss.item())

            # curl_rl: the auxiliary loss joins the critic loss (one backward, one encoder step)
            anchor = tap.features if self._aux_taps_anchor else None
            critic_total = self._aux_join(critic_loss, replay_data.observations, anchor, self._replay_futures)

            # Optimize the critics
            self.critic.optimizer.zero_grad()
            critic_total.backward()  # curl_rl: critic_total
            self.critic.optimizer.step()
            self._aux_step()  # curl_rl

            # Delayed policy updates
            if self._n_updates % self.policy_delay == 0:
                # Compute actor loss
                actor_loss = -self.critic.q1_forward(obs, self.actor(obs)).mean()  # curl_rl: obs
                actor_losses.append(actor_loss.item())

                # Optimize the actor
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()

                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                polyak_update(self.actor.parameters(), self.actor_target.parameters(), self.tau)
                # Copy running stats, see GH issue #996
                polyak_update(self.critic_batch_norm_stats, self.critic_batch_norm_stats_target, 1.0)
                polyak_update(self.actor_batch_norm_stats, self.actor_batch_norm_stats_target, 1.0)

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        if len(actor_losses) > 0:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        self._aux_log()  # curl_rl
