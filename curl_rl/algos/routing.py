"""CURL's gradient routing for SAC and TD3 policies.

SB3's actor-critic policies either give actor and critic their own extractors, or share one
that only the *actor* loss trains. CURL and DrQ do the opposite: one encoder, trained by the
critic loss (and the auxiliary loss), read by the actor without gradient. These policy classes
build exactly that; everything else is SB3's.
"""

from __future__ import annotations

from typing import Any

import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac import policies as sac_policies
from stable_baselines3.td3 import policies as td3_policies


class DetachedSACActor(sac_policies.Actor):
    """SAC actor reading the shared encoder without gradient (CURL's ``detach_encoder``)."""

    def extract_features(self, obs: Any, features_extractor: BaseFeaturesExtractor) -> th.Tensor:
        with th.no_grad():
            return super().extract_features(obs, features_extractor)


class DetachedTD3Actor(td3_policies.Actor):
    """TD3 actor reading the shared encoder without gradient."""

    def extract_features(self, obs: Any, features_extractor: BaseFeaturesExtractor) -> th.Tensor:
        with th.no_grad():
            return super().extract_features(obs, features_extractor)


def _actor_optimizer(policy: Any, lr_schedule: Schedule) -> th.optim.Optimizer:
    params = [p for name, p in policy.actor.named_parameters() if not name.startswith("features_extractor.")]
    return policy.optimizer_class(params, lr=lr_schedule(1), **policy.optimizer_kwargs)


class CurlRoutedSACPolicy(sac_policies.SACPolicy):
    """SAC policy with one encoder owned and trained by the critic, read detached by the actor.

    Takes :class:`stable_baselines3.sac.policies.SACPolicy`'s arguments;
    ``share_features_extractor`` must stay False (the critic must see gradients).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("share_features_extractor"):
            raise ValueError("routing='curl' builds its own sharing; leave share_features_extractor=False")
        super().__init__(*args, **kwargs)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> sac_policies.Actor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return DetachedSACActor(**actor_kwargs).to(self.device)

    def _build(self, lr_schedule: Schedule) -> None:
        self.critic = self.make_critic(features_extractor=None)
        self.actor = self.make_actor(features_extractor=self.critic.features_extractor)
        self.actor.optimizer = _actor_optimizer(self, lr_schedule)
        self.critic_target = self.make_critic(features_extractor=None)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic.optimizer = self.optimizer_class(
            self.critic.parameters(),
            lr=lr_schedule(1),
            **self.optimizer_kwargs,  # type: ignore[call-arg]
        )
        self.critic_target.set_training_mode(False)


class CurlRoutedSACCnnPolicy(CurlRoutedSACPolicy):
    """:class:`CurlRoutedSACPolicy` defaulting to NatureCNN, like SB3's ``CnnPolicy``."""

    def __init__(
        self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN, **kwargs: Any
    ) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class CurlRoutedSACMultiInputPolicy(CurlRoutedSACPolicy):
    """:class:`CurlRoutedSACPolicy` defaulting to CombinedExtractor, like SB3's ``MultiInputPolicy``."""

    def __init__(
        self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor, **kwargs: Any
    ) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class CurlRoutedTD3Policy(td3_policies.TD3Policy):
    """TD3 policy with one encoder owned and trained by the critic, read detached by the actor."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("share_features_extractor"):
            raise ValueError("routing='curl' builds its own sharing; leave share_features_extractor=False")
        super().__init__(*args, **kwargs)

    def make_actor(self, features_extractor: BaseFeaturesExtractor | None = None) -> td3_policies.Actor:
        actor_kwargs = self._update_features_extractor(self.actor_kwargs, features_extractor)
        return DetachedTD3Actor(**actor_kwargs).to(self.device)

    def _build(self, lr_schedule: Schedule) -> None:
        self.critic = self.make_critic(features_extractor=None)
        self.critic_target = self.make_critic(features_extractor=None)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.actor = self.make_actor(features_extractor=self.critic.features_extractor)
        self.actor_target = self.make_actor(features_extractor=None)
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.actor.optimizer = _actor_optimizer(self, lr_schedule)
        self.critic.optimizer = self.optimizer_class(
            self.critic.parameters(),
            lr=lr_schedule(1),
            **self.optimizer_kwargs,  # type: ignore[call-arg]
        )
        self.actor_target.set_training_mode(False)
        self.critic_target.set_training_mode(False)


class CurlRoutedTD3CnnPolicy(CurlRoutedTD3Policy):
    """:class:`CurlRoutedTD3Policy` defaulting to NatureCNN, like SB3's ``CnnPolicy``."""

    def __init__(
        self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = NatureCNN, **kwargs: Any
    ) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


class CurlRoutedTD3MultiInputPolicy(CurlRoutedTD3Policy):
    """:class:`CurlRoutedTD3Policy` defaulting to CombinedExtractor, like SB3's ``MultiInputPolicy``."""

    def __init__(
        self, *args: Any, features_extractor_class: type[BaseFeaturesExtractor] = CombinedExtractor, **kwargs: Any
    ) -> None:
        super().__init__(*args, features_extractor_class=features_extractor_class, **kwargs)


# SB3's aliases differ only in their default features extractor; keep that default when routing
_ROUTED_BY_ALIAS: dict[type, dict[str, type]] = {
    CurlRoutedSACPolicy: {"CnnPolicy": CurlRoutedSACCnnPolicy, "MultiInputPolicy": CurlRoutedSACMultiInputPolicy},
    CurlRoutedTD3Policy: {"CnnPolicy": CurlRoutedTD3CnnPolicy, "MultiInputPolicy": CurlRoutedTD3MultiInputPolicy},
}


def routed_policy(policy: Any, routed_class: type, parent_aliases: dict[str, type]) -> Any:
    """Swap an SB3 policy alias (``"CnnPolicy"`` ...) for the CURL-routed class.

    :param policy: what the user passed.
    :param routed_class: the routed policy class.
    :param parent_aliases: the parent algorithm's ``policy_aliases``.
    :return: the routed class, or ``policy`` unchanged when the user gave a class of their own.
    """
    if isinstance(policy, str):
        if policy not in parent_aliases:
            raise ValueError(f"unknown policy {policy!r}; use one of {list(parent_aliases)}")
        return _ROUTED_BY_ALIAS.get(routed_class, {}).get(policy, routed_class)
    return policy
