"""CURL's gradient routing for SAC and TD3 policies.

SB3's actor-critic policies either give actor and critic their own extractors, or share one
that only the *actor* loss trains. CURL does the opposite: the critic owns the encoder, which the
critic loss (and the auxiliary loss) trains; the actor's conv layers are *tied* to the critic's
(``copy_conv_weights_from``) and read without gradient, while the actor keeps its own fc +
LayerNorm head, trained by the actor loss. These policy classes build exactly that for encoders
whose conv trunk we can find (:class:`~curl_rl.CurlEncoder`, SB3's ``NatureCNN``, either inside a
:class:`~curl_rl.CenterCropExtractor`); any other extractor is shared whole and read detached
(DrQ's way), with a warning. Everything else is SB3's.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch as th
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, CombinedExtractor, NatureCNN
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.sac import policies as sac_policies
from stable_baselines3.td3 import policies as td3_policies
from torch import nn

from curl_rl.auxiliary.encoder import CenterCropExtractor, CurlEncoder


class DetachedTrunk(nn.Module):
    """Another module's conv trunk, read without gradient (CURL's ``detach_encoder`` for the actor).

    Registering the trunk here shares its parameters (no copy); the actor's optimizer leaves them out.

    :param trunk: the critic's conv trunk.
    """

    def __init__(self, trunk: nn.Module) -> None:
        super().__init__()
        self.trunk = trunk

    def forward(self, x: th.Tensor) -> th.Tensor:
        with th.no_grad():
            return self.trunk(x)


def trunk_and_head(extractor: nn.Module) -> tuple[nn.Module, str, nn.Module] | None:
    """Where an extractor keeps its conv trunk and its head: ``(owner, trunk attribute, head)``.

    :param extractor: a features extractor.
    :return: ``None`` when the extractor is not one whose parts we know.
    """
    inner = extractor.inner if isinstance(extractor, CenterCropExtractor) else extractor
    if isinstance(inner, CurlEncoder):
        return inner, "convs", inner.head
    if isinstance(inner, NatureCNN):
        return inner, "cnn", inner.linear
    return None


def tie_conv_trunk(extractor: nn.Module, source: nn.Module) -> bool:
    """Make ``extractor`` read ``source``'s conv trunk, detached; its own head stays its own.

    :param extractor: the actor's freshly built extractor (its own trunk is dropped).
    :param source: the critic's extractor, which keeps training its trunk.
    :return: whether the two could be tied (both of a known kind).
    """
    mine, theirs = trunk_and_head(extractor), trunk_and_head(source)
    if mine is None or theirs is None:
        return False
    owner, name, _ = mine
    setattr(owner, name, DetachedTrunk(getattr(theirs[0], theirs[1])))
    return True


def _warn_untied(extractor: nn.Module) -> None:
    warnings.warn(
        f"routing='curl': cannot find the conv trunk of {type(extractor).__name__}, so the actor reads the "
        "critic's whole encoder (fc and LayerNorm included) detached, as DrQ does, instead of keeping its own "
        "head as CURL does; use CurlEncoder or NatureCNN for CURL's routing",
        RuntimeWarning,
        stacklevel=4,
    )


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


def _build_actor(policy: Any, actor_cls: type, detached_cls: type) -> tuple[Any, bool]:
    """The actor of a routed policy whose critic is built: its own head on the critic's tied conv
    trunk (CURL), or, for an extractor whose trunk we cannot find, the critic's whole encoder read
    detached. Returns the actor and whether the trunk is tied."""
    own = policy.make_features_extractor()
    if tie_conv_trunk(own, policy.critic.features_extractor):
        return actor_cls(**policy._update_features_extractor(policy.actor_kwargs, own)).to(policy.device), True
    _warn_untied(own)
    shared = policy._update_features_extractor(policy.actor_kwargs, policy.critic.features_extractor)
    return detached_cls(**shared).to(policy.device), False


def _actor_optimizer(policy: Any, lr_schedule: Schedule) -> th.optim.Optimizer:
    # the actor loss never steps what the critic owns (the tied conv trunk, or the whole encoder)
    critic_owned = {id(p) for p in policy.critic.parameters()}
    params = [p for p in policy.actor.parameters() if id(p) not in critic_owned]
    return policy.optimizer_class(params, lr=lr_schedule(1), **policy.optimizer_kwargs)


class CurlRoutedSACPolicy(sac_policies.SACPolicy):
    """SAC policy with one encoder owned and trained by the critic, read detached by the actor.

    Takes :class:`stable_baselines3.sac.policies.SACPolicy`'s arguments;
    ``share_features_extractor`` must stay False (the critic must see gradients).
    """

    #: whether the actor has its own head on the critic's tied conv trunk (CURL) or reads the
    #: critic's whole encoder (fallback for extractors whose trunk we cannot find)
    conv_tied: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("share_features_extractor"):
            raise ValueError("routing='curl' builds its own sharing; leave share_features_extractor=False")
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        self.critic = self.make_critic(features_extractor=None)
        self.actor, self.conv_tied = _build_actor(self, sac_policies.Actor, DetachedSACActor)
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
    """TD3 policy whose critic owns the encoder; the actor has its own head on the tied conv trunk.

    The actor target ties its head to a conv trunk of its own, which Polyak-averages the critic's
    trunk through the actor (TD3 moves the actor target from the actor's parameters).
    """

    conv_tied: bool

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if kwargs.get("share_features_extractor"):
            raise ValueError("routing='curl' builds its own sharing; leave share_features_extractor=False")
        super().__init__(*args, **kwargs)

    def _build(self, lr_schedule: Schedule) -> None:
        self.critic = self.make_critic(features_extractor=None)
        self.critic_target = self.make_critic(features_extractor=None)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.actor, self.conv_tied = _build_actor(self, td3_policies.Actor, DetachedTD3Actor)
        target_own = self.make_features_extractor()
        if self.conv_tied:
            tie_conv_trunk(target_own, target_own)  # same structure as the actor: state dicts match
        target_cls = td3_policies.Actor if self.conv_tied else DetachedTD3Actor
        self.actor_target = target_cls(**self._update_features_extractor(self.actor_kwargs, target_own)).to(self.device)
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
