"""The auxiliary-objective configuration: one dataclass, named presets, and validation.

Every place that names an arm (the algorithms' ``aux=`` argument, the CLI's ``--aux`` and
``--arms``, the env presets' ``aux`` sections) goes through :func:`resolve_aux_config`, so the
same names mean the same settings everywhere.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

AUGMENTATION_NAMES = ("crop", "shift", "intensity", "noise", "color_jitter", "cutout", "grayscale")
INSTANCE_LOSSES = ("none", "infonce", "triplet")
FUTURE_OBJECTIVES = ("none", "temporal", "transition")
FUTURE_LOSSES = ("cosine", "infonce")
SIMILARITIES = ("bilinear", "cosine")
TRIPLET_MINING = ("random", "hard", "semi-hard")
WEIGHT_SCHEDULES = ("constant", "linear_decay", "linear_warmup")
NAN_POLICIES = ("raise", "skip")
DICT_INPUTS = ("all", "images")
#: the algorithms (command-line names) and encoder routings; plain names, importable without torch
ALGO_NAMES = ("ppo", "a2c", "sac", "td3", "dqn")
ROUTINGS = ("auto", "sb3", "curl")
#: how the RL loss sees augmentation (see ``AuxConfig.rl_augment``)
RL_AUGMENT_MODES = ("auto", "none", "naive", "consistent", "drac")
#: what ``rl_augment="auto"`` means for PPO/A2C (A2C has no old policy: "consistent" becomes "drac")
#: and for the off-policy algorithms, where augmenting replay batches is DrQ/RAD and sound
ON_POLICY_RL_AUGMENT = "consistent"
OFF_POLICY_RL_AUGMENT = "naive"
#: how often PPO/A2C draw a frame's augmented views (see ``AuxConfig.views``)
VIEW_REFRESH = ("minibatch", "rollout")


@dataclass(frozen=True)
class AuxConfig:
    """Settings of the auxiliary objective trained jointly with the RL loss.

    :param name: preset the config came from (informational; shown in logs and run folders).
    :param augment: augmentations applied in order, each from ``AUGMENTATION_NAMES``.
    :param rl_augment: how the RL loss uses augmentation. ``"none"``: only the auxiliary loss sees
        augmented views. ``"naive"``: the RL loss runs on augmented observations as they are (RAD;
        DrQ for SAC/TD3/DQN, where it is sound; in PPO the ratio then mixes
        ``pi_new(a|aug s) / pi_old(a|s)``, which DrAC showed unsound). ``"consistent"`` (PPO): the
        old log-probs and values are recomputed on the same augmented view with the rollout's
        parameters, so the ratio starts at exactly 1. ``"drac"`` (PPO/A2C): the RL loss on
        un-augmented observations plus DrAC's regularisers ``KL(pi(.|s) || pi(.|aug s))`` and
        ``(V(s) - V(aug s))^2`` with weight ``drac_weight``. ``"auto"``: the measured on-policy
        default (:data:`ON_POLICY_RL_AUGMENT`) for PPO/A2C, ``"naive"`` off-policy.
    :param views: PPO/A2C only: how often a frame's augmented views are drawn. ``"minibatch"``
        (RAD, DrAC): fresh views at every minibatch of every epoch, keys from the key encoder of
        that moment. ``"rollout"``: each frame's two views are drawn once per ``train()`` call and
        reused in every epoch; "consistent"'s old estimates and the key embeddings (instance keys
        and future targets alike, one key per frame) are computed once, at the start of
        ``train()``, by the rollout's parameters and the key encoder of that moment (which then
        lags by up to the call's updates, as MoCo's queued keys do). Cheaper by one encoder
        forward per frame and epoch, and by ``future_k`` more for future objectives.
    :param drac_weight: DrAC's ``alpha_r``, the weight of its two regularisers (paper: 0.1).
    :param crop_size: output side of ``"crop"``; the policy acts on the centre crop.
    :param pad: replicate padding of ``"shift"`` (DrQ uses 4 at 84x84).
    :param intensity_scale: std of the per-sample multiplicative intensity factor.
    :param noise_std: std of additive Gaussian pixel noise, in pixel units (0-255).
    :param jitter_strength: max relative change of brightness, contrast and saturation.
    :param cutout_min: smallest side of the cutout rectangle, in pixels.
    :param cutout_max: largest side of the cutout rectangle, in pixels.
    :param grayscale_p: probability that a sample is turned to grayscale.
    :param frame_channels: channels per stacked frame; ``None`` takes it from the env's frame
        stacking (curl_rl's ``FrameStack``, SB3's ``VecFrameStack``) when the model is built, and
        otherwise treats the observation as one frame. Never guessed from the channel count.
    :param dict_inputs: for Dict observations, what the auxiliary views show the encoder:
        ``"all"`` keys (non-image keys pass un-augmented, so the contrastive task can be solved
        from them alone, without the image), or ``"images"`` only (the other keys are zeroed in the
        auxiliary views; the RL loss still sees every key; costs one more encoder forward).
    :param instance: instance-discrimination loss between two views of one frame.
    :param similarity: ``"bilinear"`` (CURL's learned W) or ``"cosine"`` with ``temperature``.
    :param temperature: softmax temperature of the cosine similarity.
    :param symmetric: also classify queries given keys (both directions of InfoNCE).
    :param queue_size: MoCo-style queue of past keys used as extra negatives (0 disables).
    :param triplet_margin: margin of the triplet loss on L2-normalised embeddings.
    :param triplet_mining: how the in-batch negative of the triplet loss is chosen.
    :param future: ``"temporal"`` (ATC: o_t vs o_{t+k}) or ``"transition"`` (SPR-style
        action-conditioned latent model rolled ``future_k`` steps).
    :param future_k: prediction horizon in environment steps.
    :param future_loss: loss of the transition model: negative-free ``"cosine"`` or ``"infonce"``.
    :param future_weight: weight of the future term relative to the instance term.
    :param projection_dim: linear projection of the features before the losses; ``None`` uses the
        features directly (CURL).
    :param hidden_dim: hidden width of the predictor and transition MLPs.
    :param tau: EMA coefficient of the momentum key encoder (1.0 copies the online encoder).
    :param update_period: update the key encoder every this many gradient steps.
    :param weight: weight of the auxiliary loss relative to the RL loss.
    :param weight_schedule: how the weight changes over training progress.
    :param lr: learning rate of the auxiliary head's own parameters (W, projector, predictors).
    :param grad_clip: max gradient norm of the auxiliary head's parameters (``None``: no clip).
    :param batch_size: rows the auxiliary loss uses: a random subset of each RL minibatch (its
        anchors still come from the RL forward pass), and the size of separately sampled batches
        (off-policy future windows); ``None`` uses the whole RL minibatch. Smaller is cheaper (the
        key encoder runs on fewer rows) at the price of fewer negatives.
    :param nan_policy: ``"raise"`` stops training on a non-finite auxiliary loss (checked once per
        ``train()`` call, no per-step sync); ``"skip"`` drops the offending update and counts it
        (one host sync per update).
    :param collapse_std: warn when the embedding std over the batch falls below this value.
    """

    name: str = "custom"
    augment: tuple[str, ...] = ()
    rl_augment: str = "none"
    views: str = "minibatch"
    drac_weight: float = 0.1
    crop_size: int | None = None
    pad: int = 4
    intensity_scale: float = 0.05
    noise_std: float = 8.0
    jitter_strength: float = 0.2
    cutout_min: int = 4
    cutout_max: int = 16
    grayscale_p: float = 0.2
    frame_channels: int | None = None
    dict_inputs: str = "all"
    instance: str = "none"
    similarity: str = "bilinear"
    temperature: float = 0.1
    symmetric: bool = False
    queue_size: int = 0
    triplet_margin: float = 0.5
    triplet_mining: str = "semi-hard"
    future: str = "none"
    future_k: int = 1
    future_loss: str = "cosine"
    future_weight: float = 1.0
    projection_dim: int | None = None
    hidden_dim: int = 256
    tau: float = 0.05
    update_period: int = 2
    weight: float = 1.0
    weight_schedule: str = "constant"
    lr: float = 1e-3
    grad_clip: float | None = 10.0
    batch_size: int | None = None
    nan_policy: str = "raise"
    collapse_std: float = 1e-4

    @property
    def has_loss(self) -> bool:
        """Whether any auxiliary loss term is active (augmentation alone is not a loss)."""
        return self.instance != "none" or self.future != "none"

    @property
    def is_active(self) -> bool:
        """Whether this config changes training at all compared with the SB3 parent."""
        return self.has_loss or (self.rl_augment != "none" and bool(self.augment))

    def resolve_rl_augment(self, kind: str) -> str:
        """The RL-augmentation mode an algorithm of ``kind`` runs (``"auto"`` resolved).

        :param kind: ``"ppo"``, ``"a2c"`` or ``"off_policy"`` (SAC, TD3, DQN).
        :return: ``"none"``, ``"naive"``, ``"consistent"`` or ``"drac"``.
        :raises ValueError: a mode the algorithm cannot run, naming the ones it can.
        """
        if kind == "off_policy" and self.views != "minibatch":
            raise ValueError(
                f"aux config: views={self.views!r} reuses the views of an on-policy rollout; SAC/TD3/DQN sample a "
                "new batch at every update. Use views='minibatch' (the default)"
            )
        if not self.augment or self.rl_augment == "none":
            return "none"
        mode = self.rl_augment
        if mode == "auto":
            mode = OFF_POLICY_RL_AUGMENT if kind == "off_policy" else ON_POLICY_RL_AUGMENT
            if kind == "a2c" and mode == "consistent":
                mode = "drac"
        if kind == "off_policy" and mode in ("consistent", "drac"):
            raise ValueError(
                f"aux config: rl_augment={mode!r} is for PPO/A2C (it corrects a policy ratio or adds "
                "DrAC's regularisers); off-policy algorithms use 'naive' (DrQ/RAD), 'none' or 'auto'"
            )
        if kind == "a2c" and mode == "consistent":
            raise ValueError(
                "aux config: rl_augment='consistent' recomputes PPO's old log-probs; A2C takes one step per "
                "rollout and has none. Use 'drac', 'naive', 'none' or 'auto'"
            )
        return mode

    def validate(self) -> AuxConfig:
        """Check every value; raise ``ValueError`` naming the field and the fix.

        :return: ``self``, so calls can be chained.
        """
        self._check_choices()
        self._check_finite()
        self._check_augmentation()
        self._check_numbers()
        if self.has_loss and not self.augment and self.instance != "none":
            raise ValueError(
                "aux config: an instance loss needs at least one augmentation (two views of one frame "
                "must differ); set augment=('shift',)"
            )
        return self

    def _check_choices(self) -> None:
        _check_choice("instance", self.instance, INSTANCE_LOSSES)
        _check_choice("future", self.future, FUTURE_OBJECTIVES)
        _check_choice("future_loss", self.future_loss, FUTURE_LOSSES)
        _check_choice("similarity", self.similarity, SIMILARITIES)
        _check_choice("triplet_mining", self.triplet_mining, TRIPLET_MINING)
        _check_choice("weight_schedule", self.weight_schedule, WEIGHT_SCHEDULES)
        _check_choice("nan_policy", self.nan_policy, NAN_POLICIES)
        _check_choice("dict_inputs", self.dict_inputs, DICT_INPUTS)
        _check_choice("rl_augment", self.rl_augment, RL_AUGMENT_MODES)
        _check_choice("views", self.views, VIEW_REFRESH)
        for aug in self.augment:
            _check_choice("augment", aug, AUGMENTATION_NAMES)

    def _check_finite(self) -> None:
        # NaN passes every comparison below (NaN < 0 is False), and inf slips past range checks
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"aux config: {f.name}={value} is not a finite number; give a finite value")

    def _check_augmentation(self) -> None:
        if "crop" in self.augment and self.crop_size is None:
            raise ValueError("aux config: augment 'crop' needs crop_size (e.g. crop_size=84 for 100x100 frames)")
        if "crop" in self.augment and "shift" in self.augment:
            raise ValueError("aux config: use either 'crop' or 'shift', not both (shift is pad + crop)")
        if self.crop_size is not None and self.crop_size < 8:
            raise ValueError(f"aux config: crop_size={self.crop_size} is too small; use at least 8")
        if self.pad < 0:
            raise ValueError(f"aux config: pad={self.pad} must be >= 0")
        if self.cutout_min < 1 or self.cutout_max < self.cutout_min:
            raise ValueError("aux config: need 1 <= cutout_min <= cutout_max")
        if not 0.0 <= self.grayscale_p <= 1.0:
            raise ValueError("aux config: grayscale_p must lie in [0, 1]")
        if self.frame_channels is not None and self.frame_channels < 1:
            raise ValueError("aux config: frame_channels must be >= 1, or None to take it from the env")

    def _check_numbers(self) -> None:
        if self.drac_weight < 0:
            raise ValueError(f"aux config: drac_weight={self.drac_weight} must be >= 0 (DrAC uses 0.1)")
        if not 0.0 < self.tau <= 1.0:
            raise ValueError(f"aux config: tau={self.tau} must lie in (0, 1]; CURL uses 0.05, ATC 0.01")
        if self.update_period < 1:
            raise ValueError(f"aux config: update_period={self.update_period} must be >= 1")
        if self.future_k < 1:
            raise ValueError(f"aux config: future_k={self.future_k} must be >= 1 (steps into the future)")
        if self.queue_size < 0:
            raise ValueError(f"aux config: queue_size={self.queue_size} must be >= 0 (0 disables the queue)")
        if self.temperature <= 0:
            raise ValueError(f"aux config: temperature={self.temperature} must be > 0")
        if self.weight < 0 or self.future_weight < 0:
            raise ValueError("aux config: weight and future_weight must be >= 0")
        if self.lr <= 0:
            raise ValueError(f"aux config: lr={self.lr} must be > 0")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError("aux config: grad_clip must be > 0, or None to disable clipping")
        if self.batch_size is not None and self.batch_size < 2:
            raise ValueError(f"aux config: batch_size={self.batch_size} leaves no negatives; use >= 2")
        if self.projection_dim is not None and self.projection_dim < 1:
            raise ValueError("aux config: projection_dim must be >= 1, or None to use the features")

    def min_batch_size(self) -> int:
        """Smallest batch that gives the requested negatives."""
        if self.instance == "triplet" and self.triplet_mining != "random":
            return 3
        return 2 if self.has_loss else 1

    def to_dict(self) -> dict[str, Any]:
        """Plain, YAML/JSON-friendly dict of every field."""
        out = dataclasses.asdict(self)
        out["augment"] = list(self.augment)
        return out


_BASE_AUG: dict[str, Any] = {"augment": ("shift",), "rl_augment": "auto"}

AUX_PRESETS: dict[str, dict[str, Any]] = {
    # The SB3 parent, unchanged.
    "none": {},
    # RAD/DrQ baseline: augmentation of the RL input, no auxiliary loss.
    "aug": dict(_BASE_AUG),
    # CURL: two augmented views, bilinear InfoNCE, momentum key encoder (tau 0.05 every 2 steps).
    "curl": {**_BASE_AUG, "instance": "infonce", "similarity": "bilinear", "tau": 0.05, "update_period": 2},
    # ATC: o_t against o_{t+k} through a residual predictor, momentum encoder tau 0.01 every step.
    "atc": {
        **_BASE_AUG,
        "future": "temporal",
        "future_k": 1,
        "projection_dim": 128,
        "tau": 0.01,
        "update_period": 1,
    },
    # SPR: action-conditioned latent model rolled 5 steps, cosine to the target encoder's
    # embeddings, weight 5. With augmentation SPR's target encoder is the online one, copied every
    # update (its README: `--momentum-tau 1.`; the EMA 0.01 is its no-augmentation setting).
    "spr": {
        "augment": ("shift", "intensity"),
        "rl_augment": "auto",
        "future": "transition",
        "future_k": 5,
        "future_loss": "cosine",
        "projection_dim": 128,
        "tau": 1.0,
        "update_period": 1,
        "weight": 5.0,
    },
    # CURL plus an action-conditioned 3-step latent prediction.
    "curl+future": {
        **_BASE_AUG,
        "instance": "infonce",
        "future": "transition",
        "future_k": 3,
        "future_loss": "cosine",
        "tau": 0.05,
        "update_period": 2,
    },
    # Triplet loss with semi-hard in-batch negatives instead of InfoNCE.
    "triplet": {**_BASE_AUG, "instance": "triplet", "triplet_mining": "semi-hard", "triplet_margin": 0.5},
}


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"aux config: {name}={value!r} is not one of {list(choices)}")


def _coerce(name: str, value: Any) -> Any:
    # YAML and --set give lists and strings; the dataclass wants tuples and numbers.
    if name == "rl_augment" and isinstance(value, bool):
        # the 0.1 field augment_rl was a bool: True meant "augment the RL input", now "auto"
        return "auto" if value else "none"
    if name == "augment":
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()] if value else []
        return tuple(value)
    return value


def resolve_aux_config(aux: str | Mapping[str, Any] | AuxConfig | None = "none", **overrides: Any) -> AuxConfig:
    """Turn a preset name, a dict or an ``AuxConfig`` into a validated ``AuxConfig``.

    A dict may name its base preset under ``"preset"`` (default ``"none"``) and override any field.

    :param aux: preset name (see ``AUX_PRESETS``), dict, ``AuxConfig`` or ``None`` (= ``"none"``).
    :param overrides: further field overrides, applied last.
    :return: the validated config.
    """
    if aux is None:
        aux = "none"
    unnamed = False
    if isinstance(aux, AuxConfig):
        base = aux.to_dict()
        values: dict[str, Any] = base
    elif isinstance(aux, str):
        if aux not in AUX_PRESETS:
            raise ValueError(f"unknown aux preset {aux!r}; choose one of {list(AUX_PRESETS)} or pass a dict")
        values = {"name": aux, **AUX_PRESETS[aux]}
    elif isinstance(aux, Mapping):
        aux = dict(aux)
        unnamed = "preset" not in aux and "name" not in aux
        preset = aux.pop("preset", aux.get("name", "none"))
        if preset not in AUX_PRESETS:
            raise ValueError(f"unknown aux preset {preset!r}; choose one of {list(AUX_PRESETS)}")
        values = {"name": preset, **AUX_PRESETS[preset], **aux}
    else:
        raise TypeError(f"aux must be a preset name, a dict or an AuxConfig, not {type(aux).__name__}")
    values.update(overrides)
    if "augment_rl" in values:
        values["rl_augment"] = values.pop("augment_rl")
    known = {f.name for f in fields(AuxConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown aux config field(s) {unknown}; valid fields: {sorted(known)}")
    config = AuxConfig(**{k: _coerce(k, v) for k, v in values.items()}).validate()
    if isinstance(aux, Mapping) and unnamed and not config.is_active:
        # overrides on top of "none" change nothing: the model would silently train without a head
        raise ValueError(
            f"aux dict {dict(aux)} names no preset, so it overrides 'none' and trains no auxiliary loss; "
            f"say which preset it overrides, e.g. {{'preset': 'curl', **{dict(aux)}}} "
            f"(presets: {', '.join(AUX_PRESETS)}), or pass 'preset': 'none' explicitly"
        )
    return config
