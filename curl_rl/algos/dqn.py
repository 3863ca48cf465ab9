"""CurlDQN: SB3's DQN with the auxiliary objective on the online Q-network's encoder.

The key encoder is its own EMA copy of that encoder (DQN's target network is a periodic hard
copy, which is not a momentum encoder). ``train()`` follows SB3 2.9's ``DQN.train`` line by line;
our lines are marked ``# curl_rl``.
"""

from __future__ import annotations

import numpy as np
import torch as th
from stable_baselines3 import DQN
from torch.nn import functional as F

from curl_rl.algos.off_policy import OffPolicyAuxMixin
from curl_rl.auxiliary.feature_tap import FeatureTap


class CurlDQN(OffPolicyAuxMixin, DQN):
    """DQN with a contrastive / predictive auxiliary loss on the Q-network's encoder.

    Takes every argument of :class:`stable_baselines3.DQN`, plus ``aux`` (as in
    :class:`~curl_rl.CurlPPO`) and ``routing`` (accepted for a uniform interface; DQN has one
    encoder). ``aux="none"`` trains exactly like SB3's DQN.
    """

    def train(self, gradient_steps: int, batch_size: int = 100) -> None:
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update learning rate according to schedule
        self._update_learning_rate(self.policy.optimizer)

        losses = []
        for _ in range(gradient_steps):
            # Sample replay buffer
            replay_data = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            # For n-step replay, discount factor is gamma**n_steps (when no early termination)
            discounts = replay_data.discounts if replay_data.discounts is not None else self.gamma
            obs = self._aux_augment_rl(replay_data.observations)  # curl_rl
            next_obs = self._aux_augment_rl(replay_data.next_observations)  # curl_rl

            with th.no_grad():
                # Compute the next Q-values using the target network
                next_q_values = self.q_net_target(next_obs)  # curl_rl: next_obs
                # Follow greedy policy: use the one with the highest value
                next_q_values, _ = next_q_values.max(dim=1)
                # Avoid potential broadcast issue
                next_q_values = next_q_values.reshape(-1, 1)
                # 1-step TD target
                target_q_values = replay_data.rewards + (1 - replay_data.dones) * discounts * next_q_values

            # Get current Q-values estimates
            with FeatureTap(self.q_net.features_extractor, self._aux_taps_anchor) as tap:  # curl_rl
                current_q_values = self.q_net(obs)  # curl_rl: obs

            # Retrieve the q-values for the actions from the replay buffer
            current_q_values = th.gather(current_q_values, dim=1, index=replay_data.actions.long())

            # Compute Huber loss (less sensitive to outliers)
            loss = F.smooth_l1_loss(current_q_values, target_q_values)
            losses.append(loss.item())

            # curl_rl: the auxiliary loss joins the TD loss
            anchor = tap.features if self._aux_taps_anchor else None
            total = self._aux_join(loss, replay_data.observations, anchor, self._replay_futures)

            # Optimize the policy
            self.policy.optimizer.zero_grad()
            total.backward()  # curl_rl: total
            # Clip gradient norm
            th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
            self.policy.optimizer.step()
            self._aux_step()  # curl_rl

        # Increase update counter
        self._n_updates += gradient_steps

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/loss", np.mean(losses))
        self._aux_log()  # curl_rl
