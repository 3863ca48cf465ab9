"""The auxiliary head: everything the auxiliary objective owns besides the online encoder.

It holds the projector, CURL's bilinear ``W``, the ATC predictor, the SPR-style transition model,
the momentum key encoder, the MoCo queue and the augmentation generator. The online encoder
belongs to the SB3 policy and is passed in, never registered here, so the auxiliary optimizer
(built from this module's parameters) cannot step it a second time — the CURL reference code's
double encoder step.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym
import torch
import torch.nn.functional as F
from stable_baselines3.common.preprocessing import is_image_space
from torch import nn

from curl_rl.auxiliary.augmentations import Compose, build_augmentation
from curl_rl.auxiliary.config import AuxConfig
from curl_rl.auxiliary.losses import LossOutput, cosine_prediction_loss, info_nce, triplet_loss
from curl_rl.auxiliary.momentum import MomentumEncoder

ObsT = torch.Tensor | dict[str, torch.Tensor]


def action_dim(space: gym.Space) -> int:
    """Width of the action encoding fed to the transition model."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.MultiDiscrete):
        return int(space.nvec.sum())
    if isinstance(space, gym.spaces.Box | gym.spaces.MultiBinary):
        return int(torch.tensor(space.shape).prod().item())
    raise ValueError(f"unsupported action space {space} for the transition model")


def encode_actions(actions: torch.Tensor, space: gym.Space) -> torch.Tensor:
    """One-hot discrete actions, flatten continuous ones.

    :param actions: ``(..., action_shape)`` as SB3 buffers store them (discrete: ``(..., 1)``).
    :param space: the action space.
    :return: ``(..., action_dim(space))`` float.
    """
    if isinstance(space, gym.spaces.Discrete):
        return F.one_hot(actions.long().reshape(actions.shape[:-1]), int(space.n)).float()
    if isinstance(space, gym.spaces.MultiDiscrete):
        parts = [F.one_hot(actions[..., i].long(), int(n)).float() for i, n in enumerate(space.nvec)]
        return torch.cat(parts, dim=-1)
    return actions.float()


def _mlp(inp: int, hidden: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, hidden), nn.ReLU(), nn.Linear(hidden, out))


class ResidualPredictor(nn.Module):
    """ATC's anchor predictor: ``z + MLP(z)``.

    :param dim: embedding size.
    :param hidden: hidden width.
    """

    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.mlp = _mlp(dim, hidden, dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.mlp(z)


class TransitionModel(nn.Module):
    """Action-conditioned latent dynamics: ``z' = z + MLP([z, a])`` (residual, SPR-style).

    :param dim: embedding size.
    :param act_dim: width of the action encoding.
    :param hidden: hidden width.
    """

    def __init__(self, dim: int, act_dim: int, hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(dim + act_dim, hidden), nn.ReLU(), nn.Linear(hidden, dim), nn.LayerNorm(dim))

    def forward(self, z: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return z + self.mlp(torch.cat([z, action], dim=-1))


class AuxiliaryHead(nn.Module):
    """Auxiliary objectives on top of an SB3 features extractor.

    :param config: the validated auxiliary config.
    :param encoder: the online features extractor (owned and optimised by the SB3 policy).
    :param observation_space: the policy's (channel-first) observation space.
    :param action_space: the env's action space (for the transition model).
    :param preprocess: SB3's observation preprocessing of the policy (uint8 -> [0, 1] floats).
    :param seed: seed of the augmentation generator.
    :param device: where everything lives.
    """

    queue: torch.Tensor
    queue_ids: torch.Tensor

    def __init__(
        self,
        config: AuxConfig,
        encoder: nn.Module,
        observation_space: gym.Space,
        action_space: gym.Space,
        preprocess: Callable[[ObsT], Any],
        seed: int,
        device: torch.device,
    ) -> None:
        super().__init__()
        self.config = config
        self.action_space = action_space
        self._preprocess = preprocess
        features_dim = int(getattr(encoder, "features_dim"))  # noqa: B009 - SB3 extractors expose it
        self.latent_dim = config.projection_dim or features_dim
        self.augmentations: dict[str | None, Compose] = {}
        if isinstance(observation_space, gym.spaces.Dict):
            for key, sub in observation_space.spaces.items():
                if is_image_space(sub, check_channels=False) and sub.shape is not None:
                    self.augmentations[key] = build_augmentation(config, sub.shape[0])
        else:
            assert observation_space.shape is not None
            self.augmentations[None] = build_augmentation(config, observation_space.shape[0])

        self.projector: nn.Module = (
            nn.Linear(features_dim, config.projection_dim) if config.projection_dim else nn.Identity()
        )
        self.key_encoder = MomentumEncoder(nn.Sequential(encoder, self.projector), config.tau, config.update_period)
        bilinear = config.similarity == "bilinear"
        # W starts at the identity, so the first logits are plain dot products (CURL uses rand)
        self.W = nn.Parameter(torch.eye(self.latent_dim)) if bilinear and config.instance == "infonce" else None
        self.temporal_predictor = (
            ResidualPredictor(self.latent_dim, config.hidden_dim) if config.future == "temporal" else None
        )
        self.W_future = (
            nn.Parameter(torch.eye(self.latent_dim))
            if bilinear and (config.future == "temporal" or config.future_loss == "infonce")
            else None
        )
        if config.future == "transition":
            self.transition: TransitionModel | None = TransitionModel(
                self.latent_dim, action_dim(action_space), config.hidden_dim
            )
            self.future_predictor: nn.Module | None = _mlp(self.latent_dim, config.hidden_dim, self.latent_dim)
        else:
            self.transition, self.future_predictor = None, None
        self.register_buffer("queue", torch.zeros(config.queue_size, self.latent_dim))
        # the frame each queued key came from (-1: unknown), so no anchor meets its own frame
        self.register_buffer("queue_ids", torch.full((config.queue_size,), -1, dtype=torch.long))
        self._queue_ptr = 0
        self._queue_len = 0
        self.to(device)
        self.generator = torch.Generator(device=device)
        self.generator.manual_seed(int(seed))

    # -- parameters -------------------------------------------------------------------------
    def trainable_parameters(self) -> list[nn.Parameter]:
        """The head's own trainable parameters (the key encoder and the online encoder excluded)."""
        return [p for n, p in self.named_parameters() if not n.startswith("key_encoder.") and p.requires_grad]

    def online(self, encoder: nn.Module) -> nn.Sequential:
        """The online encoder followed by the projector (the module the key encoder tracks)."""
        return nn.Sequential(encoder, self.projector)

    def momentum_step(self, encoder: nn.Module) -> None:
        """Count one gradient step of the encoder; EMA-update the key encoder on its period."""
        self.key_encoder.step(self.online(encoder))

    # -- augmentation and encoding ---------------------------------------------------------
    def augment(self, obs: ObsT) -> ObsT:
        """Augment image observations (each image key of a Dict); other keys pass through unchanged.
        This is the view the RL loss sees; the auxiliary task's views come from :meth:`aux_view`."""
        if isinstance(obs, dict):
            return {
                k: self.augmentations[k](v, self.generator) if k in self.augmentations else v for k, v in obs.items()
            }
        return self.augmentations[None](obs, self.generator)

    def hide_non_images(self, obs: ObsT) -> ObsT:
        """With ``dict_inputs="images"``, zero a Dict's non-image keys, so the auxiliary task must be
        solved from the images; otherwise ``obs`` itself."""
        if not isinstance(obs, dict) or self.config.dict_inputs != "images":
            return obs
        return {k: v if k in self.augmentations else torch.zeros_like(v) for k, v in obs.items()}

    def aux_view(self, obs: ObsT) -> ObsT:
        """A fresh augmented view for the auxiliary task (non-image keys hidden per ``dict_inputs``)."""
        return self.hide_non_images(self.augment(obs))

    def encode_online(self, encoder: nn.Module, obs: ObsT) -> torch.Tensor:
        """Features of the online encoder for raw (already augmented) observations."""
        return encoder(self._preprocess(obs))

    def encode_key(self, obs: ObsT) -> torch.Tensor:
        """Projected key embedding from the momentum encoder (no gradient)."""
        return self.key_encoder(self._preprocess(obs))

    # -- losses ------------------------------------------------------------------------------
    def instance_loss(
        self,
        anchor_features: torch.Tensor,
        obs: ObsT,
        ids: torch.Tensor | None = None,
        key: torch.Tensor | None = None,
    ) -> LossOutput:
        """Two views of one frame: the anchor (first view, online) against a second view (key).

        :param anchor_features: online features of the first augmented view (with gradient).
        :param obs: the raw observations; the key view is a fresh augmentation of them.
        :param ids: ``(B,)`` identity of each row's frame; keys of the same frame (in the batch
            or in the queue) are never negatives for it. ``None``: rows are distinct frames and
            queued keys are treated as other frames.
        :param key: the rows' key embeddings when already computed (PPO's ``views="rollout"``);
            ``None`` encodes a fresh view of ``obs``.
        :return: loss and diagnostics.
        """
        cfg = self.config
        query = self.projector(anchor_features)
        if key is None:
            key = self.encode_key(self.aux_view(obs))
        if cfg.instance == "triplet":
            out = triplet_loss(
                query, key, margin=cfg.triplet_margin, mining=cfg.triplet_mining, generator=self.generator
            )
        else:
            queue = self.queue[: self._queue_len] if cfg.queue_size else None
            queue_ids = self.queue_ids[: self._queue_len] if cfg.queue_size else None
            out = info_nce(
                query,
                key,
                weight=self.W,
                temperature=cfg.temperature,
                queue=queue,
                symmetric=cfg.symmetric,
                ids=ids,
                queue_ids=queue_ids,
            )
            if cfg.queue_size:
                self._enqueue(key, ids)
        out.metrics["embedding_std"] = F.normalize(query.detach(), dim=1).std(dim=0).mean()
        return out

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor, ids: torch.Tensor | None = None) -> None:
        n = min(keys.shape[0], self.queue.shape[0])
        idx = (torch.arange(n, device=keys.device) + self._queue_ptr) % self.queue.shape[0]
        self.queue[idx] = keys[-n:].detach()
        self.queue_ids[idx] = -1 if ids is None else ids[-n:].to(self.queue_ids)
        self._queue_ptr = (self._queue_ptr + n) % self.queue.shape[0]
        self._queue_len = min(self._queue_len + n, self.queue.shape[0])

    def future_loss(
        self,
        anchor_features: torch.Tensor,
        future_obs: ObsT | None,
        actions: torch.Tensor,
        valid: torch.Tensor,
        future_keys: torch.Tensor | None = None,
    ) -> LossOutput:
        """Predict the key embeddings of ``o_{t+1..t+K}`` from the anchor ``o_t``.

        :param anchor_features: online features of augmented ``o_t`` (with gradient), ``(B, D)``.
        :param future_obs: raw ``o_{t+1..t+K}``, shaped ``(B, K, ...)``.
        :param actions: ``a_t .. a_{t+K-1}`` as stored, ``(B, K, ...)``.
        :param valid: ``(B, K)`` bool; False where the future lies past an episode end.
        :param future_keys: ``(B, K, latent)`` key embeddings of those frames when already computed
            (PPO's ``views="rollout"``); then ``future_obs`` is not read.
        :return: loss and diagnostics.
        """
        cfg = self.config
        z = self.projector(anchor_features)
        if future_keys is None and future_obs is None:
            raise ValueError("future_loss needs future_obs or future_keys")
        if cfg.future == "temporal":
            # ATC compares o_t with o_{t+k} only
            if future_keys is not None:
                key = future_keys[:, -1]
            else:
                assert future_obs is not None
                key = self.encode_key(self.aux_view(_index_time(future_obs, -1)))
            assert self.temporal_predictor is not None
            out = info_nce(
                self.temporal_predictor(z), key, weight=self.W_future, temperature=cfg.temperature, mask=valid[:, -1]
            )
            out.metrics["valid_fraction"] = valid[:, -1].float().mean()
            return out
        assert self.transition is not None and self.future_predictor is not None
        k = valid.shape[1]
        if future_keys is not None:
            targets = future_keys
        else:
            assert future_obs is not None
            targets = self.encode_key(self.aux_view(_flatten_time(future_obs))).reshape(z.shape[0], k, -1)
        act = encode_actions(actions, self.action_space)
        steps: list[torch.Tensor] = []
        for j in range(k):
            z = self.transition(z, act[:, j])
            steps.append(z)
        # the predictor and the cosine loss take all K steps at once (per-step means, averaged over
        # steps, as one call per step would give): far fewer small ops, which dominate on a CPU
        predictions = self.future_predictor(torch.stack(steps, dim=1).flatten(0, 1)).reshape(*targets.shape)
        if cfg.future_loss == "cosine":
            out = cosine_prediction_loss(predictions, targets, valid)
        else:
            losses: list[torch.Tensor] = []
            metrics_sum: dict[str, torch.Tensor] = {}
            for j in range(k):
                step = info_nce(
                    predictions[:, j],
                    targets[:, j],
                    weight=self.W_future,
                    temperature=cfg.temperature,
                    mask=valid[:, j],
                )
                losses.append(step.loss)
                for name, value in step.metrics.items():
                    metrics_sum[name] = metrics_sum.get(name, torch.zeros_like(value)) + value / k
            out = LossOutput(torch.stack(losses).mean(), metrics_sum)
        out.metrics["valid_fraction"] = valid.float().mean()
        return out

    # -- state -------------------------------------------------------------------------------
    def get_extra_state(self) -> dict[str, Any]:
        return {"rng": self.generator.get_state(), "queue_ptr": self._queue_ptr, "queue_len": self._queue_len}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["rng"].cpu())
        self._queue_ptr = int(state["queue_ptr"])
        self._queue_len = int(state["queue_len"])


def _index_time(obs: ObsT, j: int) -> ObsT:
    if isinstance(obs, dict):
        return {k: v[:, j] for k, v in obs.items()}
    return obs[:, j]


def _flatten_time(obs: ObsT) -> ObsT:
    if isinstance(obs, dict):
        return {k: v.reshape(-1, *v.shape[2:]) for k, v in obs.items()}
    return obs.reshape(-1, *obs.shape[2:])
