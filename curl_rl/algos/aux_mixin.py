"""Glue shared by every Curl algorithm: config, validation, the head, its optimizer, logging.

Each algorithm subclass (``curl_rl/algos/ppo.py`` ...) calls four hooks from its ``train()``:
``_aux_augment_rl`` on the RL minibatch, ``_aux_join`` to add the weighted auxiliary loss (and an
RL regulariser such as DrAC's) to the RL loss before the single ``backward()``, ``_aux_step``
after the RL optimizer step, and ``_aux_log`` once at the end of ``train()``. PPO and A2C add the
hooks of :mod:`curl_rl.algos.on_policy` for ``rl_augment``.
"""

from __future__ import annotations

import dataclasses
import io
import pathlib
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3.common.preprocessing import is_image_space, is_image_space_channels_first
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, NatureCNN
from stable_baselines3.common.type_aliases import GymEnv
from torch import nn

from curl_rl.algos.frames import stacked_frame_channels
from curl_rl.algos.fused_adam import set_fused_adam
from curl_rl.algos.performance import (
    PerformanceConfig,
    apply_performance,
    encoder_input,
    resolve_performance_config,
    resolved_performance,
)
from curl_rl.algos.step_logger import OncePerStepLogger
from curl_rl.auxiliary.augmentations import FRAME_AWARE_AUGMENTATIONS, center_crop
from curl_rl.auxiliary.config import ROUTINGS, AuxConfig, resolve_aux_config
from curl_rl.auxiliary.encoder import CenterCropExtractor
from curl_rl.auxiliary.head import AuxiliaryHead, ObsT

NAN_MESSAGE = (
    "the auxiliary loss became NaN/Inf; training stopped before saving corrupt weights. "
    "Lower aux lr or weight, keep grad_clip on, or set nan_policy='skip' to drop bad updates"
)
SelfAlgo = TypeVar("SelfAlgo")
ObsVar = TypeVar("ObsVar", torch.Tensor, dict[str, torch.Tensor])


@dataclasses.dataclass
class FutureWindows:
    """``o_{t+1..t+K}`` for the rows of a batch, with the actions in between.

    :param anchor_obs: the rows' own ``o_t`` when the windows come with their own anchors (replay
        sequences); ``None`` when they belong to the rows of the batch being trained on.
    :param future_obs: ``(B, K, ...)`` raw future observations, or ``None`` when ``future_keys`` holds
        their key embeddings already.
    :param actions: ``(B, K, ...)`` the actions ``a_t .. a_{t+K-1}``.
    :param valid: ``(B, K)`` bool; False past an episode end.
    :param future_keys: ``(B, K, latent)`` key embeddings of the future frames (PPO's ``views="rollout"``).
    """

    anchor_obs: ObsT | None
    future_obs: ObsT | None
    actions: torch.Tensor
    valid: torch.Tensor
    future_keys: torch.Tensor | None = None

    def first_rows(self, rows: int) -> FutureWindows:
        """The windows of the first ``rows`` rows."""
        return FutureWindows(
            None if self.anchor_obs is None else _take(self.anchor_obs, rows),
            None if self.future_obs is None else _take(self.future_obs, rows),
            self.actions[:rows],
            self.valid[:rows],
            None if self.future_keys is None else self.future_keys[:rows],
        )


FutureFn = Callable[[int], FutureWindows]


def collapse_message(config: AuxConfig) -> str:
    """What a collapsed embedding (the same vector for every frame) means for this loss, and what to try.

    Only the instance losses measure the spread, and both have negatives: a collapsed embedding is
    their worst case (InfoNCE at ln(batch), every triplet at the margin), so they did not drive it;
    a force on the shared encoder that they cannot resist did.

    :param config: the auxiliary config.
    """
    worst = (
        "InfoNCE sits at ln(batch size), its worst value"
        if config.instance == "infonce"
        else ("every triplet sits at the margin, the loss's worst value")
    )
    return (
        f"representation collapse: embedding std below collapse_std={config.collapse_std:g} (aux/embedding_std). "
        f"The '{config.instance}' loss has negatives and a collapsed embedding is its worst case ({worst}), so it "
        "did not cause it: something stronger acts on the shared encoder, typically an RL loss that diverged "
        "(a critic saturating the encoder's tanh) or learning rates too high for the batch. Check the RL losses, "
        "lower the learning rates, raise the aux weight, or give the RL loss a larger batch"
    )


class AuxAlgorithmMixin:
    """Mixin placed before the SB3 algorithm class in the bases of each Curl algorithm."""

    aux_config: AuxConfig
    aux_head: AuxiliaryHead | None
    aux_optimizer: torch.optim.Optimizer | None
    routing: str
    _aux_finite: torch.Tensor
    #: which RL-augmentation modes apply: "ppo", "a2c" or "off_policy" (see AuxConfig.resolve_rl_augment)
    _algorithm_kind: str = "off_policy"
    # provided by BaseAlgorithm
    device: torch.device
    observation_space: gym.Space
    action_space: gym.Space
    policy: Any
    policy_kwargs: dict[str, Any]
    seed: int | None
    logger: Any
    _current_progress_remaining: float

    # -- construction -----------------------------------------------------------------------
    def __init__(
        self,
        policy: Any,
        env: Any,
        *args: Any,
        aux: Any = "none",
        routing: str = "auto",
        performance: Any = None,
        **kwargs: Any,
    ) -> None:
        """The SB3 parent's constructor with three extra keywords (see the algorithm classes).

        :param policy: as in SB3.
        :param env: as in SB3.
        :param args: the parent's other positional arguments.
        :param aux: the auxiliary objective: preset name, dict of overrides or ``AuxConfig``.
        :param routing: ``"auto"``, ``"sb3"`` or ``"curl"`` (SAC/TD3; others share one encoder).
        :param performance: speed switches for every encoder (``PerformanceConfig``, dict, ``"auto"``,
            ``"off"``).
        :param kwargs: the parent's keyword arguments.
        """
        kwargs["policy_kwargs"] = self._init_aux(aux, routing, kwargs.get("policy_kwargs"), performance)
        self._check_device(kwargs.get("device", "auto"))
        policy = self._route_policy(policy, kwargs.get("policy_kwargs") or {})
        super().__init__(policy, env, *args, **kwargs)  # type: ignore[call-arg]

    def _route_policy(self, policy: Any, policy_kwargs: dict[str, Any]) -> Any:
        """The policy to build; SAC/TD3 swap in CURL-routed policies here."""
        return policy

    def _init_aux(
        self, aux: Any, routing: str, policy_kwargs: dict[str, Any] | None, performance: Any = None
    ) -> dict[str, Any] | None:
        """Resolve the config and adjust ``policy_kwargs`` before SB3's constructor runs.

        :param aux: preset name, dict or ``AuxConfig``.
        :param routing: ``"auto"``, ``"sb3"`` or ``"curl"``.
        :param policy_kwargs: the user's policy kwargs.
        :return: policy kwargs to hand to SB3.
        """
        self.aux_config = resolve_aux_config(aux)
        self.aux_config.resolve_rl_augment(self._algorithm_kind)  # refuses a mode this algorithm cannot run
        self.performance: PerformanceConfig | Any = resolve_performance_config(performance)
        if routing not in ROUTINGS:
            raise ValueError(f"routing={routing!r} is not one of {list(ROUTINGS)}")
        self.routing = routing
        self.aux_head = None
        self.aux_optimizer = None
        self._aux_reset_stats()
        crop = self.aux_config.crop_size if "crop" in self.aux_config.augment else None
        if crop is None:
            # SB3 writes into policy_kwargs (use_sde ...); a copy keeps the user's dict reusable
            return None if policy_kwargs is None else dict(policy_kwargs)
        kwargs = dict(policy_kwargs or {})
        inner = kwargs.get("features_extractor_class", NatureCNN)
        if inner is not CenterCropExtractor:
            # the encoder is built for crops; acting uses the centre crop (CURL's protocol)
            kwargs["features_extractor_class"] = CenterCropExtractor
            kwargs["features_extractor_kwargs"] = {
                "crop_size": crop,
                "inner_class": inner,
                "inner_kwargs": kwargs.get("features_extractor_kwargs", {}),
            }
        return kwargs

    def _resolved_routing(self) -> str:
        if self.routing == "auto":
            return "curl" if self.aux_config.is_active else "sb3"
        return self.routing

    def _check_device(self, device: Any) -> None:
        if isinstance(device, str) and device == "auto":
            return
        try:
            dev = device if isinstance(device, torch.device) else torch.device(device)
        except (RuntimeError, TypeError) as err:
            raise ValueError(
                f"device={device!r} is not a torch device; use device='auto', 'cpu' or 'cuda[:N]'"
            ) from err
        if dev.type == "cuda":
            if not torch.cuda.is_available():
                # SB3 falls back to the CPU here; we do too, but say so (a silent CPU run looks like a hang)
                warnings.warn(
                    f"device={device!r} was asked for but CUDA is not available: training on the CPU "
                    "(as SB3 does); pass device='cpu' or 'auto' to silence this",
                    RuntimeWarning,
                    stacklevel=3,
                )
                return
            n = torch.cuda.device_count()
            if dev.index is not None and dev.index >= n:
                raise ValueError(
                    f"device={device!r} but this machine has {n} CUDA device(s); use device='auto' or 'cuda:0'"
                )
        elif dev.type == "mps":
            if not torch.backends.mps.is_available():
                raise ValueError(
                    f"device={device!r} was asked for but MPS is not available; use device='auto' or 'cpu'"
                )
        elif dev.type != "cpu":
            raise ValueError(f"device type {dev.type!r} is not supported; use device='auto', 'cpu' or 'cuda[:N]'")

    def _aux_validate(self, rl_batch_size: int | None, user_encoder: bool) -> None:
        """Check the observation space and batch against the config, before any training.

        :param rl_batch_size: the RL minibatch the auxiliary loss shares (``None`` if unknown).
        :param user_encoder: whether the user gave their own features extractor.
        """
        self._resolve_frame_channels()
        cfg = self.aux_config
        if not cfg.is_active:
            return
        space = self.observation_space
        images = _image_spaces(space)
        _check_float_images(space)
        if not images:
            if cfg.augment:
                raise ValueError(
                    f"aux '{cfg.name}' augments images, but the observation space {space} holds no uint8 "
                    "image; use a pixel env (curl_rl.envs) or aux='none'"
                )
            if not user_encoder:
                raise ValueError(
                    f"aux '{cfg.name}' needs an encoder of the observations {space}; pass "
                    "policy_kwargs=dict(features_extractor_class=...) or use image observations"
                )
        for key, sub in images.items():
            where = f"observation key {key!r}" if key else "observations"
            shape = sub.shape
            if not _channels_first(sub):
                raise ValueError(
                    f"{where} {shape} are not channel-first; SB3 transposes channel-last images itself, "
                    "so pass an env with (H, W, C) uint8 images or (C, H, W) ones"
                )
            c, h, w = shape
            if cfg.crop_size is not None and "crop" in cfg.augment and cfg.crop_size > min(h, w):
                raise ValueError(
                    f"{where} are {h}x{w}, smaller than crop_size={cfg.crop_size}; "
                    "render larger frames or lower crop_size"
                )
            if "shift" in cfg.augment and h != w:
                raise ValueError(f"{where} are {h}x{w}; 'shift' needs square images, use 'crop' instead")
            frame_aware = sorted(set(cfg.augment) & set(FRAME_AWARE_AUGMENTATIONS))
            if cfg.frame_channels is None and c not in (1, 3) and frame_aware:
                raise ValueError(
                    f"{where} have {c} channels and the env does not say how many stacked frames they hold; "
                    f"{frame_aware} must treat each frame alone: set aux frame_channels (3 for RGB frames, "
                    "1 for grayscale) or stack frames with curl_rl's FrameStack / SB3's VecFrameStack"
                )
            if cfg.frame_channels is not None and c % cfg.frame_channels:
                raise ValueError(
                    f"{where} have {c} channels, which do not divide into frames of frame_channels="
                    f"{cfg.frame_channels}; set frame_channels to a divisor of {c}"
                )
        need = cfg.min_batch_size()
        batch = min(cfg.batch_size or rl_batch_size or 0, rl_batch_size or cfg.batch_size or 0) or None
        if batch is not None and batch < need:
            raise ValueError(
                f"aux '{cfg.name}' needs a batch of at least {need} for its negatives, got {batch}; "
                "raise batch_size (or aux batch_size)"
            )

    def _resolve_frame_channels(self) -> None:
        """Fill ``aux_config.frame_channels`` in from the env's frame stacking (saved with the model)."""
        if self.aux_config.frame_channels is not None:
            return
        found = stacked_frame_channels(getattr(self, "env", None))
        if found is not None:
            self.aux_config = dataclasses.replace(self.aux_config, frame_channels=found)

    def _setup_aux(self, encoder: nn.Module) -> None:
        """Build the head and its optimizer on ``self.device`` (after SB3's ``_setup_model``).

        :param encoder: the online features extractor the auxiliary loss trains.
        """
        self._aux_encoder = encoder
        # the policy is built now; the crop its extractors apply is fixed from here on
        sizes = {m.crop_size for m in self.policy.modules() if isinstance(m, CenterCropExtractor)}
        self._rl_centre_crop: int | None = sizes.pop() if len(sizes) == 1 else None
        if not self.aux_config.is_active:
            self.aux_head, self.aux_optimizer = None, None
            apply_performance(self, getattr(self, "performance", None))
            return
        if not any(p.requires_grad for p in encoder.parameters()):
            # SB3's FlattenExtractor (MlpPolicy on images): the auxiliary loss would train only its own head
            raise ValueError(
                f"aux '{self.aux_config.name}' trains the features extractor, but {type(encoder).__name__} has no "
                "trainable parameters (MlpPolicy flattens the pixels); use CnnPolicy, or pass "
                "policy_kwargs=dict(features_extractor_class=...) with a learned encoder"
            )
        policy = self.policy
        # without a user seed, draw from numpy's global RNG, which SB3 seeds when it is given one
        seed = self.seed if self.seed is not None else int(np.random.randint(0, 2**31 - 1))  # noqa: NPY002

        def preprocess(obs: ObsT) -> Any:
            # the layout of the online encoder; the key encoder copies its switches
            return encoder_input(obs, policy.observation_space, policy.normalize_images, encoder)

        self.aux_head = AuxiliaryHead(
            self.aux_config, encoder, policy.observation_space, self.action_space, preprocess, seed + 1, self.device
        )
        params = self.aux_head.trainable_parameters()
        self.aux_optimizer = torch.optim.Adam(params, lr=self.aux_config.lr) if params else None
        # last: the head's key encoder exists and no optimizer has state yet
        apply_performance(self, getattr(self, "performance", None))

    def _setup_learn(self, *args: Any, **kwargs: Any) -> Any:
        """SB3's ``_setup_learn``; the logger it configures writes each tag at most once per step."""
        out = super()._setup_learn(*args, **kwargs)  # type: ignore[misc]
        if not getattr(self, "_custom_logger", False):
            # setattr keeps mypy from giving the mixin its own _logger next to BaseAlgorithm's
            setattr(self, "_logger", OncePerStepLogger.replacing(getattr(self, "_logger")))  # noqa: B009, B010
        return out

    def learn(self, *args: Any, **kwargs: Any) -> Any:
        """SB3's ``learn``; reports NaN weights left by a non-finite auxiliary loss as that loss's error.

        The finite check runs once per ``train()``; when a later update of the same call fails on
        the NaN weights first (e.g. ``torch.distributions`` rejecting NaN logits), this turns that
        error into the auxiliary loss's ``FloatingPointError`` (one host sync, on the error path only).
        """
        try:
            return super().learn(*args, **kwargs)  # type: ignore[misc]
        except FloatingPointError:
            raise
        except Exception as err:
            if self.aux_head is not None and not bool(self._aux_finite):
                self._aux_reset_stats()
                raise FloatingPointError(NAN_MESSAGE) from err
            raise

    # -- save / load: the head and its optimizer travel with the model -----------------------
    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        state_dicts, variables = super()._get_torch_save_params()  # type: ignore[misc]
        if self.aux_head is not None and not getattr(self, "_saving_for_sb3", False):
            state_dicts = [*state_dicts, "aux_head"]
            if self.aux_optimizer is not None:
                state_dicts.append("aux_optimizer")
        return state_dicts, variables

    def _excluded_save_params(self) -> list[str]:
        excluded = ["_aux_encoder", "_aux_stats", "_saving_for_sb3", "rollout_start_step"]
        return [*super()._excluded_save_params(), *excluded]  # type: ignore[misc]

    def save_as_sb3(self, path: Any, **kwargs: Any) -> None:
        """Save a file that SB3's own class loads (``PPO.load``): everything but the auxiliary head.

        ``model.save`` keeps the head and its optimizer (``CurlPPO.load`` continues training
        exactly); SB3's ``PPO.load`` refuses such a file ("Key aux_head is an invalid object name").
        The policy, its optimizer and every setting are the same in both files.

        :param path: where to save (as ``save``).
        :param kwargs: passed to ``save`` (``exclude``, ``include``).
        """
        self._saving_for_sb3 = True
        try:
            self.save(path, **kwargs)  # type: ignore[attr-defined]
        finally:
            del self._saving_for_sb3

    @classmethod
    def load(
        cls: type[SelfAlgo],
        path: str | pathlib.Path | io.BufferedIOBase,
        env: GymEnv | None = None,
        device: torch.device | str = "auto",
        custom_objects: dict[str, Any] | None = None,
        print_system_info: bool = False,
        force_reset: bool = True,
        **kwargs: Any,
    ) -> SelfAlgo:
        """SB3's ``load``; the auxiliary settings come from the file and cannot be changed here.

        :param path: the saved model.
        :param env: the env to continue on (as SB3).
        :param device: torch device (as SB3).
        :param kwargs: attributes to change after loading (as SB3), except ``aux`` and ``routing``.
        """
        fixed = sorted({"aux", "aux_config", "routing"} & set(kwargs))
        if fixed:
            raise ValueError(
                f"{cls.__name__}.load cannot change {', '.join(fixed)}: the file holds its auxiliary head and "
                f"settings. To train with other ones, build a new {cls.__name__}(..., aux=...) and copy the "
                "weights in with new_model.set_parameters(path, exact_match=False)"
            )
        return super().load(  # type: ignore[misc]
            path,
            env=env,
            device=device,
            custom_objects=custom_objects,
            print_system_info=print_system_info,
            force_reset=force_reset,
            **kwargs,
        )

    def set_parameters(
        self,
        load_path_or_dict: str | dict[str, torch.Tensor],
        exact_match: bool = True,
        device: torch.device | str = "auto",
    ) -> None:
        """SB3's ``set_parameters``, across auxiliary settings: a file's auxiliary head is dropped
        (with a warning) by a model without one; a model with a head refuses a file without one
        unless ``exact_match=False`` (the head then stays as initialised). Adam optimizers then step
        fused or not as this model's ``performance`` says, whatever the file's did.

        :param load_path_or_dict: a saved model or a ``{name: state_dict}`` dict (as SB3).
        :param exact_match: require the same set of state dicts (as SB3).
        :param device: torch device (as SB3).
        """
        params: dict[str, Any]
        if isinstance(load_path_or_dict, dict):
            params = dict(load_path_or_dict)
        else:
            from stable_baselines3.common.save_util import load_from_zip_file

            _, loaded, _ = load_from_zip_file(load_path_or_dict, device=device, load_data=False)
            params = dict(loaded or {})
        aux_keys = [key for key in ("aux_head", "aux_optimizer") if key in params]
        if aux_keys and self.aux_head is None:
            warnings.warn(
                f"set_parameters: dropping {', '.join(aux_keys)} from the parameters: this model trains no "
                "auxiliary loss (aux 'none')",
                UserWarning,
                stacklevel=2,
            )
            for key in aux_keys:
                params.pop(key)
        elif self.aux_head is not None and "aux_head" not in params and exact_match:
            raise ValueError(
                "set_parameters: the parameters hold no auxiliary head (a plain SB3 file, or one trained with aux "
                "'none'); pass exact_match=False to load them and keep this model's freshly initialised head"
            )
        super().set_parameters(params, exact_match=exact_match, device=device)  # type: ignore[misc]
        # the loaded optimizer groups carry the fused flags they were saved with; the switch decides
        set_fused_adam(self, resolved_performance(self, getattr(self, "performance", None)).fused_adam is True)

    # -- the training hooks --------------------------------------------------------------
    @property
    def _rl_augment(self) -> str:
        """The resolved RL-augmentation mode (``AuxConfig.rl_augment`` with ``"auto"`` decided)."""
        return self.aux_config.resolve_rl_augment(self._algorithm_kind)

    @property
    def _aux_uses_rl_augmentation(self) -> bool:
        """Whether the RL loss itself runs on the augmented batch ("naive" and "consistent")."""
        return self.aux_head is not None and self._rl_augment in ("naive", "consistent")

    @property
    def _aux_taps_anchor(self) -> bool:
        """Whether the RL forward pass of the augmented batch doubles as the auxiliary anchor."""
        return self._aux_uses_rl_augmentation and self.aux_config.has_loss

    def _aux_augment_rl(self, obs: ObsVar) -> ObsVar:
        """Augmented observations for the RL loss (RAD/DrQ), or ``obs`` when switched off.

        Switched off under a centre-cropping extractor (the ``none`` baseline of a cropping study),
        the batch is centre-cropped here, while still uint8 and once, so that the extractor's own
        crop is a no-op: the same numbers, without normalising the whole frame and copying a
        strided view for each of the update's encoder passes (1.08-1.09x per SAC update at
        100->84, as fast as ``aug``: BENCHMARKS.md, ``benchmarks/centre_crop.py``).
        """
        if not self._aux_uses_rl_augmentation:
            crop = self._rl_centre_crop
            if crop is not None and isinstance(obs, torch.Tensor) and obs.dim() == 4 and obs.shape[-2:] != (crop, crop):
                return center_crop(obs, crop).contiguous()
            return obs
        assert self.aux_head is not None
        return self.aux_head.augment(obs)  # type: ignore[return-value]

    def _aux_first_view(self, obs: ObsT) -> ObsT:
        """The anchor's view of ``obs`` when the RL forward did not provide it (a fresh augmentation;
        PPO/A2C with ``views="rollout"`` return the view drawn for the rollout)."""
        assert self.aux_head is not None
        return self.aux_head.augment(obs)

    def _aux_cached_keys(self, rows: int) -> torch.Tensor | None:
        """Key embeddings of the first ``rows`` rows of the current batch, if computed already."""
        return None

    def _aux_weight(self) -> float:
        cfg = self.aux_config
        done = 1.0 - float(self._current_progress_remaining)
        if cfg.weight_schedule == "linear_decay":
            return cfg.weight * (1.0 - done)
        if cfg.weight_schedule == "linear_warmup":
            return cfg.weight * min(1.0, done / 0.1)
        return cfg.weight

    def _aux_join(
        self,
        rl_loss: torch.Tensor,
        obs: ObsT,
        anchor: torch.Tensor | None,
        futures: FutureFn | None = None,
        ids: torch.Tensor | None = None,
        regulariser: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The RL loss plus the weighted auxiliary loss (and an RL regulariser such as DrAC's).

        Every algorithm's ``train()`` calls this once per update, just before its ``backward()``.

        :param rl_loss: the algorithm's own loss (PPO/A2C total, SAC/TD3 critic, DQN TD loss).
        :param obs: raw observations of the batch.
        :param anchor: online features of an augmented view of ``obs`` from the RL forward pass,
            or ``None`` to compute the anchor here.
        :param futures: future windows for the future objectives (see :meth:`_aux_loss`).
        :param ids: per-row frame ids (see :meth:`_aux_loss`).
        :param regulariser: an extra, already weighted term of the RL objective.
        :return: the loss to differentiate.
        """
        total = rl_loss if regulariser is None else rl_loss + regulariser
        aux_loss = self._aux_loss(obs, anchor, futures, ids)
        return total if aux_loss is None else total + aux_loss

    def _aux_loss(
        self,
        obs: ObsT,
        anchor_features: torch.Tensor | None,
        futures: FutureFn | None = None,
        ids: torch.Tensor | None = None,
    ) -> torch.Tensor | None:
        """The weighted auxiliary loss for one update, or ``None`` when there is none.

        :param obs: the raw (un-augmented) observations of the RL minibatch.
        :param anchor_features: online features of the RL loss's augmented view of ``obs`` (tapped
            from the RL forward pass); ``None`` computes the anchor here.
        :param futures: callable ``horizon -> FutureWindows``; windows whose ``anchor_obs`` is
            ``None`` belong to the rows of ``obs``.
        :param ids: ``(B,)`` identity of each row's frame, so that a frame seen again (PPO's
            epochs, queued keys) is never its own negative; ``None`` if rows are all distinct.
        :return: scalar loss to add to the RL loss.
        """
        cfg, head = self.aux_config, self.aux_head
        if head is None or not cfg.has_loss:
            return None
        encoder = self._aux_encoder
        if self.aux_optimizer is not None:
            self.aux_optimizer.zero_grad(set_to_none=True)
        rows = cfg.batch_size
        if rows is not None and rows < _batch_rows(obs):
            # the minibatch is already a random draw, so its first rows are a random subset
            obs = _take(obs, rows)
            anchor_features = None if anchor_features is None else anchor_features[:rows]
            ids = None if ids is None else ids[:rows]
        if isinstance(obs, dict) and cfg.dict_inputs == "images":
            # the RL forward saw every key; the auxiliary anchor must see the images only
            anchor_features = None
        if anchor_features is None:
            anchor_features = head.encode_online(encoder, head.hide_non_images(self._aux_first_view(obs)))
        total = torch.zeros((), device=self.device)
        if cfg.instance != "none":
            out = head.instance_loss(anchor_features, obs, ids, key=self._aux_cached_keys(_batch_rows(obs)))
            total = total + out.loss
            self._aux_record("instance", out.loss, out.metrics)
        if cfg.future != "none":
            windows = futures(cfg.future_k) if futures is not None else None
            if windows is None:
                raise RuntimeError("this algorithm gave no future windows for the future objective")
            if windows.anchor_obs is None and rows is not None:
                windows = windows.first_rows(rows)
            future_anchor = (
                anchor_features
                if windows.anchor_obs is None
                else head.encode_online(encoder, head.aux_view(windows.anchor_obs))
            )
            out = head.future_loss(
                future_anchor, windows.future_obs, windows.actions, windows.valid, windows.future_keys
            )
            total = total + cfg.future_weight * out.loss
            self._aux_record("future", out.loss, out.metrics)
        finite = torch.isfinite(total)
        if cfg.nan_policy == "skip":
            # opt-in: one host sync per update buys dropping just the bad update
            if not bool(finite):
                self._aux_stats["skipped"] += 1
                return None
        else:
            self._aux_finite = finite & self._aux_finite
        self._aux_stats_list("loss").append(total.detach())
        return self._aux_weight() * total

    def _aux_step(self) -> None:
        """After the RL optimizer step: step the head's optimizer, then the momentum encoder."""
        if self.aux_head is None:
            return
        if self.aux_optimizer is not None and self.aux_config.has_loss:
            if self.aux_config.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.aux_head.trainable_parameters(), self.aux_config.grad_clip)
            self.aux_optimizer.step()
        self.aux_head.momentum_step(self._aux_encoder)

    def _aux_log(self) -> None:
        """Average this ``train()`` call's diagnostics with one device->host copy; check NaNs."""
        head = self.aux_head
        if head is None:
            return
        names = [n for n, v in self._aux_stats["values"].items() if v]
        values = [torch.stack(self._aux_stats["values"][n]).float().mean() for n in names]
        if not self.aux_config.has_loss:
            # augmentation only: just the RL regulariser's diagnostics (DrAC), if any
            host_only = torch.stack(values).cpu().tolist() if values else []
            self._aux_reset_stats()
            for name, value in zip(names, host_only, strict=True):
                self.logger.record(f"aux/{name}", value)
            return
        values.append(head.key_encoder.distance(head.online(self._aux_encoder)))
        values.append(self._aux_finite.float())
        host = torch.stack(values).cpu().tolist()
        finite = bool(host.pop())
        names.append("key_distance")
        skipped = self._aux_stats["skipped"]
        kept = len(self._aux_stats["values"].get("loss", []))
        self._aux_reset_stats()
        if skipped and not kept:
            # a fixed message: Python shows it once per process, not once per train() call
            warnings.warn(
                "nan_policy='skip' dropped every auxiliary update of a train() call (non-finite auxiliary loss): "
                "the auxiliary loss is not training the encoder; lower aux lr or weight, or use nan_policy='raise'",
                RuntimeWarning,
                stacklevel=2,
            )
        if not finite:
            raise FloatingPointError(NAN_MESSAGE)
        for name, value in zip(names, host, strict=True):
            self.logger.record(f"aux/{name}", value)
        self.logger.record("aux/weight", self._aux_weight())
        if skipped:
            self.logger.record("aux/skipped_updates", skipped)
        std = dict(zip(names, host, strict=True)).get("instance/embedding_std")
        if std is not None and std < self.aux_config.collapse_std:
            # a fixed message: Python shows it once per process instead of once per train() call
            warnings.warn(collapse_message(self.aux_config), RuntimeWarning, stacklevel=2)

    # -- bookkeeping ------------------------------------------------------------------------
    def _aux_reset_stats(self) -> None:
        self._aux_stats: dict[str, Any] = {"values": {}, "skipped": 0}
        self._aux_finite = torch.ones((), dtype=torch.bool)

    def _aux_stats_list(self, name: str) -> list[torch.Tensor]:
        return self._aux_stats["values"].setdefault(name, [])

    def _aux_record(self, prefix: str, loss: torch.Tensor, metrics: dict[str, torch.Tensor]) -> None:
        self._aux_stats_list(f"{prefix}/loss").append(loss.detach())
        for name, value in metrics.items():
            self._aux_stats_list(f"{prefix}/{name}").append(value.detach())
            if name in ("accuracy", "gap", "embedding_std") and prefix == "instance":
                self._aux_stats_list(name).append(value.detach())


def _batch_rows(obs: ObsT) -> int:
    return int(next(iter(obs.values())).shape[0]) if isinstance(obs, dict) else int(obs.shape[0])


def _take(obs: ObsT, rows: int) -> ObsT:
    return {k: v[:rows] for k, v in obs.items()} if isinstance(obs, dict) else obs[:rows]


def _image_spaces(space: gym.Space) -> dict[str, gym.spaces.Box]:
    if isinstance(space, gym.spaces.Dict):
        return {k: s for k, s in space.spaces.items() if is_image_space(s, check_channels=False)}  # type: ignore[misc]
    if is_image_space(space, check_channels=False):
        return {"": space}  # type: ignore[dict-item]
    return {}


def _channels_first(space: gym.spaces.Box) -> bool:
    return is_image_space_channels_first(space)


def _check_float_images(space: gym.Space) -> None:
    subs = space.spaces.values() if isinstance(space, gym.spaces.Dict) else [space]
    for sub in subs:
        if isinstance(sub, gym.spaces.Box) and len(sub.shape) == 3 and sub.dtype != np.uint8:
            high = float(np.max(sub.high))
            if high > 1.0 + 1e-6:
                raise ValueError(
                    f"float image observations with values up to {high:g} are not treated as images by SB3 "
                    "(no /255 scaling); give uint8 images, or float images in [0, 1] with your own encoder"
                )


def features_extractor_is_custom(policy_kwargs: dict[str, Any] | None) -> bool:
    """Whether the user chose a features extractor (other than SB3's defaults)."""
    cls = (policy_kwargs or {}).get("features_extractor_class")
    return cls is not None and issubclass(cls, BaseFeaturesExtractor) and cls is not NatureCNN
