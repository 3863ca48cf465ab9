"""CurlSAC: SB3's SAC with the auxiliary objective on the critic's encoder.

Routing (``routing="curl"``, the default whenever the auxiliary config is active): one encoder,
owned by the critic; the critic loss and the auxiliary loss train it in one ``backward()`` and
one optimizer step; the actor reads it detached. ``routing="sb3"`` keeps SB3's separate actor and
critic extractors (the auxiliary loss then trains the critic's). ``train()`` follows SB3 2.x's
``SAC.train`` line by line; our lines are marked ``# curl_rl``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.utils import polyak_update
from torch.nn import functional as F

from curl_rl.algos.off_policy import OffPolicyAuxMixin
from curl_rl.algos.routing import CurlRoutedSACPolicy
from curl_rl.auxiliary.feature_tap import FeatureTap


class CurlSAC(OffPolicyAuxMixin, SAC):
    """SAC with a contrastive / predictive auxiliary loss on the critic's encoder.

    Takes every argument of :class:`stable_baselines3.SAC`, plus:

    :param aux: the auxiliary objective (preset name, dict or :class:`~curl_rl.AuxConfig`);
        ``"none"`` with ``routing="auto"`` trains exactly like SB3's SAC.
    :param routing: ``"curl"`` (critic + aux train one encoder, actor detached), ``"sb3"`` (SB3's
        defaults) or ``"auto"`` (``"curl"`` when the aux config is active, else ``"sb3"``).
    :param performance: speed switches for every encoder (``"auto"``, ``"off"``, a dict or a
        :class:`~curl_rl.algos.performance.PerformanceConfig`); state-dict compatible.
    """

    _routed_policy_class = CurlRoutedSACPolicy

    def _critic_for_actor(self, obs: Any, actions: th.Tensor) -> tuple[th.Tensor, ...]:
        """Q-values for the actor loss; under CURL routing the encoder output is detached.

        CURL's ``detach_encoder=True``: the actor loss never steps the encoder (the actor optimizer
        leaves it out, and the critic's ``zero_grad`` clears what reaches it), so its backward
        through the convolutions was wasted work. The forward is unchanged (same kernels, grad on),
        so training is bit-identical.
        """
        if self._resolved_routing() != "curl":
            return self.critic(obs, actions)
        features = self.critic.extract_features(obs, self.critic.features_extractor).detach()
        qvalue_input = th.cat([features, actions], dim=1)
        return tuple(q_net(qvalue_input) for q_net in self.critic.q_networks)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update optimizers learning rate
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None:
            optimizers += [self.ent_coef_optimizer]

        # Update learning rate according to lr schedule
        self._update_learning_rate(optimizers)

        ent_coef_losses, ent_coefs = [], []
        actor_losses, critic_losses = [], []

        for gradient_step in range(gradient_steps):
            # Sample replay buffer
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            obs = self._aux_augment_rl(replay_data.observations)  # curl_rl
            next_obs = self._aux_augment_rl(replay_data.next_observations)  # curl_rl

            # We need to sample because `log_std` may have changed between two gradient steps
            if self.use_sde:
                self.actor.reset_noise()

            # Action by the current actor for the sampled state
            actions_pi, log_prob = self.actor.action_log_prob(obs)  # curl_rl: obs
            log_prob = log_prob.reshape(-1, 1)

            ent_coef_loss = None
            if self.ent_coef_optimizer is not None and self.log_ent_coef is not None:
                # Important: detach the variable from the graph
                # so we don't change it with other losses
                # see https://github.com/rail-berkeley/softlearning/issues/60
                ent_coef = th.exp(self.log_ent_coef.detach())
                assert isinstance(self.target_entropy, float)
                ent_coef_loss = -(self.log_ent_coef * (log_prob + self.target_entropy).detach()).mean()
                ent_coef_losses.append(ent_coef_loss.item())
            else:
                ent_coef = self.ent_coef_tensor

            ent_coefs.append(ent_coef.item())

            # Optimize entropy coefficient, also called
            # entropy temperature or alpha in the paper
            if ent_coef_loss is not None and self.ent_coef_optimizer is not None:
                self.ent_coef_optimizer.zero_grad()
                ent_coef_loss.backward()
                self.ent_coef_optimizer.step()

            with th.no_grad():
                # Select action according to policy
                next_actions, next_log_prob = self.actor.action_log_prob(next_obs)  # curl_rl: next_obs
                # Compute the next Q values: min over all critics targets
                next_q_values = th.cat(self.critic_target(next_obs, next_actions), dim=1)  # curl_rl: next_obs
                next_q_values, _ = th.min(next_q_values, dim=1, keepdim=True)
                # add entropy term
                next_q_values = next_q_values - ent_coef * next_log_prob.reshape(-1, 1)
                # td error + entropy term
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            # Get current Q-values estimates for each critic network
            # using action from the replay buffer
            with FeatureTap(self.critic.features_extractor, self._aux_taps_anchor) as tap:  # curl_rl
                current_q_values = self.critic(obs, replay_data.actions)  # curl_rl: obs

            # Compute critic loss
            critic_loss = 0.5 * sum(F.mse_loss(current_q, target_q_values) for current_q in current_q_values)
            assert isinstance(critic_loss, th.Tensor)  # for type checker
            critic_losses.append(critic_loss.item())

            # curl_rl: the auxiliary loss joins the critic loss (one backward, one encoder step)
            anchor = tap.features if self._aux_taps_anchor else None
            critic_total = self._aux_join(critic_loss, replay_data.observations, anchor, self._replay_futures)

            # Optimize the critic
            self.critic.optimizer.zero_grad()
            critic_total.backward()  # curl_rl: critic_total
            self.critic.optimizer.step()
            self._aux_step()  # curl_rl

            # Compute actor loss
            # Alternative: actor_loss = th.mean(log_prob - qf1_pi)
            # Min over all critic networks
            q_values_pi = th.cat(self._critic_for_actor(obs, actions_pi), dim=1)  # curl_rl: obs, detached encoder
            min_qf_pi, _ = th.min(q_values_pi, dim=1, keepdim=True)
            actor_loss = (ent_coef * log_prob - min_qf_pi).mean()
            actor_losses.append(actor_loss.item())

            # Optimize the actor
            self.actor.optimizer.zero_grad()
            actor_loss.backward()
            self.actor.optimizer.step()

            # Update target networks
            if gradient_step % self.target_update_interval == 0:
                polyak_update(self.critic.parameters(), self.critic_target.parameters(), self.tau)
                # Copy running stats, see GH issue #996
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)

        self._n_updates += gradient_steps

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/actor_loss", np.mean(actor_losses))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if len(ent_coef_losses) > 0:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))
        self._aux_log()  # curl_rl
