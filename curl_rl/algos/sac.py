"""CurlSAC: SB3's SAC with the auxiliary objective on the critic's encoder.

Routing (``routing="curl"``, the default whenever the auxiliary config is active): the critic owns
the encoder; the critic loss and the auxiliary loss train it in one ``backward()`` and one
optimizer step; the actor has its own fc + LayerNorm head on the critic's conv trunk, read
detached (CURL's ``copy_conv_weights_from`` + ``detach_encoder``). Under this routing an update is
:meth:`CurlSAC._train_curl`, CURL's update on one screen. ``routing="sb3"`` keeps SB3's separate
actor and critic extractors and runs ``train()``, which follows SB3 2.9's ``SAC.train`` line by
line; our lines are marked ``# curl_rl``.

:data:`CURL_PAPER_SAC` holds CURL's SAC settings (its paper and code) as keyword arguments.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch as th
from stable_baselines3 import SAC
from stable_baselines3.common.utils import polyak_update
from stable_baselines3.sac.policies import LOG_STD_MAX, LOG_STD_MIN
from torch import nn
from torch.nn import functional as F

from curl_rl.algos.off_policy import OffPolicyAuxMixin
from curl_rl.algos.performance import encoder_input
from curl_rl.algos.routing import CurlRoutedSACPolicy, trunk_and_head
from curl_rl.auxiliary.encoder import CurlEncoder
from curl_rl.auxiliary.feature_tap import FeatureTap

#: CURL's SAC (Laskin et al. 2020, paper and code) as CurlSAC keyword arguments; combine with
#: ``aux="curl"`` (or "aug"/"none" for its baselines) and an env rendering 100x100 frames cropped to
#: 84. The paper trains with batch 512, the code's scripts with 128. CURL's code has no tanh
#: after the LayerNorm (the paper's text adds one) and bounds log-std to [-10, 2] (SB3: [-20, 2]).
CURL_PAPER_SAC: dict[str, Any] = {
    "routing": "curl",
    "learning_rate": 1e-3,
    "buffer_size": 100_000,
    "learning_starts": 1000,
    "batch_size": 512,
    "tau": 0.01,
    "encoder_tau": 0.05,
    "target_update_interval": 2,
    "actor_update_freq": 2,
    "gamma": 0.99,
    "ent_coef": "auto_0.1",
    "alpha_lr": 1e-4,
    "alpha_betas": (0.5, 0.999),
    "key_encoder": "target",
    "policy_kwargs": {
        "net_arch": [1024, 1024],
        "features_extractor_class": CurlEncoder,
        "features_extractor_kwargs": {"features_dim": 50, "tanh": False},
    },
}


def _q_heads(critic: Any, features: th.Tensor, actions: th.Tensor) -> tuple[th.Tensor, ...]:
    """SB3's ``ContinuousCritic.forward`` past its extractor: every Q head on ``[features, actions]``."""
    q_in = th.cat([features, actions], dim=1)
    return tuple(q_net(q_in) for q_net in critic.q_networks)


@contextlib.contextmanager
def _frozen(params: Sequence[nn.Parameter]) -> Iterator[None]:
    """Parameters left out of the graphs built inside: no weight gradients computed for them."""
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags, strict=True):
            p.requires_grad_(flag)


class CurlSAC(OffPolicyAuxMixin, SAC):
    """SAC with a contrastive / predictive auxiliary loss on the critic's encoder.

    Takes every argument of :class:`stable_baselines3.SAC`, plus:

    :param aux: the auxiliary objective (preset name, dict or :class:`~curl_rl.AuxConfig`);
        ``"none"`` with ``routing="auto"`` trains exactly like SB3's SAC.
    :param routing: ``"curl"`` (critic + aux train one encoder, actor detached), ``"sb3"`` (SB3's
        defaults) or ``"auto"`` (``"curl"`` when the aux config is active, else ``"sb3"``).
    :param performance: speed switches for every encoder (``"auto"``, ``"off"``, a dict or a
        :class:`~curl_rl.algos.performance.PerformanceConfig`); state-dict compatible.
    :param encoder_tau: soft-update coefficient of the target critic's encoder (CURL: 0.05, while
        its Q heads use ``tau`` = 0.01); ``None`` moves everything with ``tau`` (SB3).
    :param actor_update_freq: update the actor and the entropy coefficient every this many
        gradient steps (CURL: 2). Counted over the whole run, like ``target_update_interval``
        under ``routing="curl"`` (SB3 counts that one within each ``train()`` call).
    :param alpha_lr: learning rate of the entropy coefficient (CURL: 1e-4); ``None``: ``learning_rate``.
    :param alpha_betas: Adam betas of the entropy coefficient (CURL: (0.5, 0.999)); ``None``: Adam's.
    :param key_encoder: where the contrastive keys come from under ``routing="curl"``: ``"target"``
        (CURL's code: the target critic's encoder, moved by the critic's soft update with
        ``encoder_tau`` every ``target_update_interval`` updates; the aux ``tau`` and
        ``update_period`` must equal those) or ``"own"`` (the head's own EMA copy of the critic's
        encoder, with the aux ``tau`` and ``update_period``).
    """

    _routed_policy_class = CurlRoutedSACPolicy

    def __init__(
        self,
        policy: Any,
        env: Any,
        *args: Any,
        encoder_tau: float | None = None,
        actor_update_freq: int = 1,
        alpha_lr: float | None = None,
        alpha_betas: tuple[float, float] | None = None,
        key_encoder: str = "own",
        **kwargs: Any,
    ) -> None:
        if encoder_tau is not None and not 0.0 < encoder_tau <= 1.0:
            raise ValueError(f"encoder_tau={encoder_tau} must lie in (0, 1] (CURL: 0.05), or None to use tau")
        if int(actor_update_freq) < 1:
            raise ValueError(f"actor_update_freq={actor_update_freq} must be >= 1 (CURL: 2)")
        if alpha_lr is not None and not alpha_lr > 0:
            raise ValueError(f"alpha_lr={alpha_lr} must be > 0 (CURL: 1e-4), or None to use learning_rate")
        if alpha_betas is not None and (len(alpha_betas) != 2 or not all(0.0 <= b < 1.0 for b in alpha_betas)):
            raise ValueError(f"alpha_betas={alpha_betas} must be two numbers in [0, 1) (CURL: (0.5, 0.999))")
        if key_encoder not in ("own", "target"):
            raise ValueError(f"key_encoder={key_encoder!r} must be 'target' (CURL's code) or 'own'")
        self.key_encoder = key_encoder
        self.encoder_tau = encoder_tau
        self.actor_update_freq = int(actor_update_freq)
        self.alpha_lr = alpha_lr
        self.alpha_betas = None if alpha_betas is None else (float(alpha_betas[0]), float(alpha_betas[1]))
        super().__init__(policy, env, *args, **kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        if self.ent_coef_optimizer is not None and (self.alpha_lr is not None or self.alpha_betas is not None):
            betas = self.alpha_betas or (0.9, 0.999)
            lr = self.alpha_lr if self.alpha_lr is not None else self.lr_schedule(1)
            assert self.log_ent_coef is not None
            self.ent_coef_optimizer = th.optim.Adam([self.log_ent_coef], lr=lr, betas=betas)
        if self.key_encoder == "target":
            self._keys_from_target_critic()

    def _keys_from_target_critic(self) -> None:
        """Make the target critic's encoder the key encoder, as CURL's code does (``key_encoder="target"``).

        Without a contrastive loss (the ``aug``/``none`` baselines run with the same settings) there
        are no keys, so nothing changes.
        """
        head, cfg = self.aux_head, self.aux_config
        if head is None or cfg.instance == "none":
            return
        if not self._uses_curl_update():
            raise ValueError(
                "key_encoder='target' belongs to CURL's update (routing='curl' with a CurlEncoder or NatureCNN, "
                "no gSDE); use key_encoder='own' here"
            )
        if cfg.projection_dim:
            raise ValueError(
                f"key_encoder='target': the keys are the target encoder's features, but aux projection_dim="
                f"{cfg.projection_dim} projects the anchors; set projection_dim=None or use key_encoder='own'"
            )
        encoder_tau = self._target_encoder_tau
        if (cfg.tau, cfg.update_period) != (encoder_tau, self.target_update_interval):
            raise ValueError(
                f"key_encoder='target': the keys move with the target critic's encoder (tau {encoder_tau} every "
                f"{self.target_update_interval} updates), not with aux tau={cfg.tau}, update_period="
                f"{cfg.update_period}; make them equal or use key_encoder='own'"
            )
        head.key_encoder.follow(nn.Sequential(self.critic_target.features_extractor, head.projector))

    @property
    def _target_encoder_tau(self) -> float:
        """The soft-update coefficient of the target critic's encoder (``encoder_tau``, else ``tau``)."""
        return self.tau if self.encoder_tau is None else self.encoder_tau

    def _uses_curl_update(self) -> bool:
        return self._resolved_routing() == "curl" and getattr(self.policy, "conv_tied", False) and not self.use_sde

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
        return _q_heads(self.critic, features, actions)

    def train(self, gradient_steps: int, batch_size: int = 64) -> None:
        if self._uses_curl_update():  # curl_rl
            return self._train_curl(gradient_steps, batch_size)  # curl_rl
        # Switch to train mode (this affects batch norm / dropout)
        self.policy.set_training_mode(True)
        # Update optimizers learning rate
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None and self.alpha_lr is None:  # curl_rl: alpha_lr is fixed
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

    def _pi_from_features(self, features: th.Tensor) -> tuple[th.Tensor, th.Tensor]:
        """SB3's ``Actor.action_log_prob`` from the actor extractor's output (no gSDE under CURL's update)."""
        latent = self.actor.latent_pi(features)
        log_std = th.clamp(self.actor.log_std(latent), LOG_STD_MIN, LOG_STD_MAX)  # type: ignore[operator]
        mean = self.actor.mu(latent)
        return self.actor.action_dist.log_prob_from_params(mean, log_std)  # type: ignore[call-arg]

    def _train_curl(self, gradient_steps: int, batch_size: int) -> None:
        """CURL's SAC update (``curl_sac.py``'s ``update``), encoding each batch as few times as it can.

        Per update: the critic encodes ``obs`` once with gradient; that one pass is the contrastive
        anchor (tapped) and, detached, the conv input of the actor and alpha losses (as DrQ-v2
        does). ``next_obs`` is encoded once by the online trunk (no grad, for the next action) and
        once by the target critic; the key encoder encodes the positive view once. Each batch is
        turned into floats once (:func:`~curl_rl.algos.performance.encoder_input`).

        Where it differs from CURL's code, and why: the actor reads the conv output from before
        this step's critic update (CURL encodes ``obs`` again after it: one more conv forward for a
        one-step-old trunk; DrQ-v2 reuses it too); the critic and auxiliary losses take one joint
        Adam step on the encoder (CURL steps it separately for each, and twice for its loss: the
        reference's double-step bug); the critic loss keeps SB3's factor 0.5.
        """
        self.policy.set_training_mode(True)
        optimizers = [self.actor.optimizer, self.critic.optimizer]
        if self.ent_coef_optimizer is not None and self.alpha_lr is None:
            optimizers.append(self.ent_coef_optimizer)
        self._update_learning_rate(optimizers)
        critic_parts, actor_parts = (
            trunk_and_head(self.critic.features_extractor),
            trunk_and_head(self.actor.features_extractor),
        )
        assert critic_parts is not None and actor_parts is not None
        critic_trunk, critic_head, actor_head = getattr(*critic_parts[:2]), critic_parts[2], actor_parts[2]
        encoder_params = list(self.critic.features_extractor.parameters())
        encoder_ids = {id(p) for p in encoder_params}
        q_params = [p for p in self.critic.parameters() if id(p) not in encoder_ids]
        target_encoder = list(self.critic_target.features_extractor.parameters())
        target_ids = {id(p) for p in target_encoder}
        target_q = [p for p in self.critic_target.parameters() if id(p) not in target_ids]
        space, normalize = self.policy.observation_space, self.policy.normalize_images
        ent_coef_losses, ent_coefs, actor_losses, critic_losses = [], [], [], []

        for _ in range(gradient_steps):
            update = self._n_updates  # CURL's ``step``: counted over the run
            replay = self.replay_buffer.sample(batch_size, env=self._vec_normalize_env)
            discounts = replay.discounts if replay.discounts is not None else self.gamma
            obs = self._aux_augment_rl(replay.observations)
            next_obs = self._aux_augment_rl(replay.next_observations)
            log_alpha = self.log_ent_coef if self.ent_coef_optimizer is not None else None
            ent_coef = th.exp(log_alpha.detach()) if log_alpha is not None else self.ent_coef_tensor
            ent_coefs.append(ent_coef.item())

            # each batch turned into floats once; the online and target extractors share next_obs's
            obs_in = encoder_input(obs, space, normalize, self.critic.features_extractor)
            next_in = encoder_input(next_obs, space, normalize, self.critic_target.features_extractor)
            with th.no_grad():
                next_actions, next_log_prob = self._pi_from_features(self.actor.features_extractor(next_in))
                # not critic_target(...): SB3's critic re-enables grad for its own extractor
                target_features = self.critic_target.features_extractor(next_in)
                next_q = th.cat(_q_heads(self.critic_target, target_features, next_actions), dim=1)
                next_q = next_q.min(dim=1, keepdim=True).values
                next_q = next_q - ent_coef * next_log_prob.reshape(-1, 1)
                target = replay.rewards + (1 - replay.dones) * discounts * next_q

            with (
                FeatureTap(self.critic.features_extractor, self._aux_taps_anchor) as tap,
                FeatureTap(critic_trunk) as trunk_tap,
            ):
                current_q = _q_heads(self.critic, self.critic.features_extractor(obs_in), replay.actions)
            critic_loss = 0.5 * sum(F.mse_loss(q, target) for q in current_q)
            assert isinstance(critic_loss, th.Tensor)
            critic_losses.append(critic_loss.item())
            anchor = tap.features if self._aux_taps_anchor else None
            total = self._aux_join(critic_loss, replay.observations, anchor, self._replay_futures)
            self.critic.optimizer.zero_grad()
            total.backward()
            self.critic.optimizer.step()
            self._aux_step()

            if update % self.actor_update_freq == 0:
                assert trunk_tap.features is not None
                conv = trunk_tap.features.detach().float()  # float: a bf16 encoder hands out bf16
                actions_pi, log_prob = self._pi_from_features(actor_head(conv))
                log_prob = log_prob.reshape(-1, 1)
                with th.no_grad():
                    critic_features = critic_head(conv)
                # the actor loss never steps the critic (its grads are zeroed before the next critic step),
                # so its backward computes no weight gradients for the Q heads; the actor's are unchanged
                with _frozen(q_params):
                    q_pi = _q_heads(self.critic, critic_features, actions_pi)
                min_q_pi = th.cat(q_pi, dim=1).min(dim=1, keepdim=True)
                actor_loss = (ent_coef * log_prob - min_q_pi.values).mean()
                actor_losses.append(actor_loss.item())
                self.actor.optimizer.zero_grad()
                actor_loss.backward()
                self.actor.optimizer.step()
                if log_alpha is not None and self.ent_coef_optimizer is not None:
                    # CURL's form: alpha (not log alpha) times the detached entropy gap
                    assert isinstance(self.target_entropy, float)
                    alpha_loss = (th.exp(log_alpha) * (-log_prob - self.target_entropy).detach()).mean()
                    ent_coef_losses.append(alpha_loss.item())
                    self.ent_coef_optimizer.zero_grad()
                    alpha_loss.backward()
                    self.ent_coef_optimizer.step()

            if update % self.target_update_interval == 0:
                polyak_update(q_params, target_q, self.tau)
                polyak_update(encoder_params, target_encoder, self._target_encoder_tau)
                polyak_update(self.batch_norm_stats, self.batch_norm_stats_target, 1.0)
            self._n_updates += 1

        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/ent_coef", np.mean(ent_coefs))
        self.logger.record("train/critic_loss", np.mean(critic_losses))
        if actor_losses:
            self.logger.record("train/actor_loss", np.mean(actor_losses))
        if ent_coef_losses:
            self.logger.record("train/ent_coef_loss", np.mean(ent_coef_losses))
        self._aux_log()
