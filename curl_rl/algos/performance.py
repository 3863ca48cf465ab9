"""Speed switches of a built model: channels_last, ``torch.compile`` and bf16 for its pixel
encoders, fused Adam steps for its optimizers.

:func:`apply_performance` changes *how* the model computes, never *what* it holds: parameter
names, shapes and dtypes stay as they are, so ``state_dict`` keys are unchanged and a model saved
with any switches loads into a model built with any others. With every switch off nothing is
touched and training is bit-identical to a model that never called it.

- ``channels_last``: 4-D conv weights and the encoder's image input are laid out NHWC, which
  oneDNN (CPU) and cuDNN run faster for 32-filter convolutions; the values are the same.
- ``compile``: the encoder's ``forward`` is replaced, on the instance, by ``torch.compile`` of its
  class's ``forward`` bound to it. ``torch.compile(module)`` would wrap it in an
  ``OptimizedModule`` and prefix every key with ``_orig_mod.``; ``Module.compile()`` keeps the keys
  but (torch 2.13) compiles nothing: its ``_call_impl`` frame is on Dynamo's skip list. Hooks run in
  the eager ``_call_impl`` around the compiled forward, so the feature tap and the bf16 switch stay
  outside the graph, and deepcopy rebinds the compiled function to the copy.
- ``bf16``: the encoder's forward runs under ``torch.autocast(dtype=torch.bfloat16)``, entered
  by a forward pre-hook and left by an always-called forward hook that casts the features back to
  float32; weights, gradients and optimizer state stay float32, and the copied SB3 ``train()``
  loops need no change.
- ``fused_adam``: every Adam/AdamW optimizer of the model steps with PyTorch's fused kernel (one
  pass over each parameter instead of one per operation; :mod:`curl_rl.algos.fused_adam`). Same
  formula in float32, rounded differently in the last bit.

``"auto"`` picks per device from the measurements in ``docs/perf_notes.md``
(:data:`AUTO_DEFAULTS`); a model whose auxiliary objective is off (``aux="none"``, promised to
train exactly like SB3) resolves every ``"auto"`` to off.
"""

from __future__ import annotations

import dataclasses
import types
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import torch
from gymnasium import spaces
from stable_baselines3.common.preprocessing import is_image_space, preprocess_obs
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch.utils.hooks import RemovableHandle

from curl_rl.algos.fused_adam import set_fused_adam

Switch = bool | Literal["auto"]
#: the switches that change how an encoder module computes (:func:`apply_to_module`)
ENCODER_SWITCHES = ("channels_last", "compile", "bf16")
SWITCHES = (*ENCODER_SWITCHES, "fused_adam")

#: what ``"auto"`` becomes per device type, from the measurements in docs/perf_notes.md
#: - cpu: channels_last measured faster for one encoder update (see the notes for the ratio);
#:   compile measured slower to pay back (tens of seconds of compilation per shape/grad mode on
#:   2 cores against a small per-update gain); bf16 not auto: it changes the numerics and the
#:   issue asks for it on GPU only; fused_adam measured 1.04x (one thread) and 1.01x (two) per
#:   CurlSAC update (BENCHMARKS.md).
#: - cuda: no GPU measurement exists yet; everything stays off until ``benchmarks/gpu.sh`` has
#:   measured it (its encoder table prints the ratios needed to flip these).
AUTO_DEFAULTS: dict[str, dict[str, bool]] = {
    "cpu": {"channels_last": True, "compile": False, "bf16": False, "fused_adam": True},
    "cuda": {"channels_last": False, "compile": False, "bf16": False, "fused_adam": False},
}
_OFF = dict.fromkeys(SWITCHES, False)


@dataclass(frozen=True)
class PerformanceConfig:
    """Which speed switches to apply to a model's encoders.

    :param channels_last: NHWC conv weights and inputs; ``"auto"`` = where it measured faster.
    :param compile: ``torch.compile`` the encoder's layers; ``"auto"`` = where compilation pays back.
    :param bf16: bf16 autocast around the encoder forward; ``"auto"`` = where it measured faster
        and the device supports bf16.
    :param fused_adam: the model's Adam/AdamW optimizers step with PyTorch's fused kernel;
        ``"auto"`` = where it measured faster.
    """

    channels_last: Switch = "auto"
    compile: Switch = "auto"
    bf16: Switch = "auto"
    fused_adam: Switch = "auto"

    def __post_init__(self) -> None:
        for name in SWITCHES:
            value = getattr(self, name)
            if not (isinstance(value, bool) or value == "auto"):
                raise ValueError(f"PerformanceConfig.{name}={value!r} must be True, False or 'auto'")

    @property
    def any_on(self) -> bool:
        """Whether any switch is on (``"auto"`` counts as possibly on)."""
        return any(getattr(self, name) is not False for name in SWITCHES)

    @classmethod
    def off(cls) -> PerformanceConfig:
        """Every switch off: today's behaviour, bit for bit."""
        return cls(**_OFF)

    @property
    def encoder_part(self) -> PerformanceConfig:
        """These switches with the model-level ones off: what an encoder module carries."""
        return dataclasses.replace(self, **{name: False for name in SWITCHES if name not in ENCODER_SWITCHES})


def resolve_performance_config(value: Any) -> PerformanceConfig:
    """Turn what a user may pass as ``performance=`` into a :class:`PerformanceConfig`.

    :param value: ``None`` or ``"auto"`` (every switch ``"auto"``), ``"off"`` (or ``False``), a mapping of
        switch names to values, or a :class:`PerformanceConfig`.
    :return: the config (``"auto"`` values kept; see :func:`resolve_auto`).
    """
    if value is None or value == "auto":
        return PerformanceConfig()
    if value == "off" or value is False:  # YAML (and ``--set``) read a bare ``off`` as false
        return PerformanceConfig.off()
    if isinstance(value, PerformanceConfig):
        return value
    if isinstance(value, Mapping):
        unknown = set(value) - set(SWITCHES)
        if unknown:
            raise ValueError(f"unknown performance switches {sorted(unknown)}; known: {list(SWITCHES)}")
        return PerformanceConfig(**value)
    raise ValueError(f"performance={value!r}: pass None, 'auto', 'off', a dict or a PerformanceConfig")


def bf16_supported(device: torch.device) -> bool:
    """Whether bf16 autocast runs natively on ``device`` (CUDA: Ampere or newer; CPU: oneDNN bf16).

    :param device: the model's device.
    """
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_auto(config: PerformanceConfig, device: torch.device | str) -> PerformanceConfig:
    """Replace every ``"auto"`` by this device type's measured default (:data:`AUTO_DEFAULTS`).

    :param config: the requested switches.
    :param device: where the model runs.
    :return: a config holding only booleans.
    :raises ValueError: ``bf16=True`` on a device without native bf16.
    """
    device = torch.device(device)
    defaults = AUTO_DEFAULTS.get(device.type, _OFF)
    values = {name: defaults[name] if getattr(config, name) == "auto" else getattr(config, name) for name in SWITCHES}
    if values["bf16"] and not bf16_supported(device):
        if config.bf16 == "auto":
            values["bf16"] = False
        else:
            raise ValueError(
                f"bf16=True but {device} has no native bf16 support (CUDA needs compute capability 8.0+, "
                "CPU needs oneDNN with AVX512-BF16/AMX); use bf16=False or 'auto'"
            )
    return PerformanceConfig(**values)


# -- the hooks ---------------------------------------------------------------------------------
# Module-level callables with no reference to the module they sit on, so deepcopy and pickling
# of a switched module work (the copy gets the same behaviour, not a link to the original).


def _channels_last_input(_module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple(_to_channels_last(a) for a in args)


def _to_channels_last(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.dim() == 4 and value.is_floating_point():
        return value.contiguous(memory_format=torch.channels_last)
    if isinstance(value, dict):  # Dict observation spaces (CombinedExtractor)
        return {k: _to_channels_last(v) for k, v in value.items()}
    return value


class _Bf16Autocast:
    """Pre-hook half: enter bf16 autocast for the device of the module's parameters.

    The matching :class:`_Bf16Exit` leaves it; the open contexts live on this object (one per
    nested call), which deepcopy duplicates along with the module.
    """

    def __init__(self) -> None:
        self.open: list[torch.autocast] = []

    def __call__(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        device_type = next(module.parameters()).device.type
        ctx = torch.autocast(device_type=device_type, dtype=torch.bfloat16)
        ctx.__enter__()
        self.open.append(ctx)

    def __deepcopy__(self, memo: dict[int, Any]) -> _Bf16Autocast:
        return _Bf16Autocast()

    def __getstate__(self) -> dict[str, Any]:
        return {"open": []}


class _Bf16Exit:
    """Forward-hook half, always called (also when forward raises): leave autocast, cast to fp32."""

    def __init__(self, enter: _Bf16Autocast) -> None:
        self.enter = enter

    def __call__(self, _module: nn.Module, _args: tuple[Any, ...], output: Any) -> Any:
        if self.enter.open:
            self.enter.open.pop().__exit__(None, None, None)
        return _to_float32(output)


def _to_float32(value: Any) -> Any:
    if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != torch.float32:
        return value.float()
    if isinstance(value, tuple):
        return tuple(_to_float32(v) for v in value)
    return value


# -- applying ----------------------------------------------------------------------------------
_STATE_ATTR = "_curl_rl_performance"


_COMPILED: dict[type, Any] = {}


def _compile_forward(module: nn.Module) -> None:
    """Bind ``torch.compile(type(module).forward)`` to ``module`` as its instance ``forward``.

    One compiled function per class: Dynamo caches graphs on the code object and treats the
    module's parameters as inputs, so the online, target and key encoders share graphs instead of
    compiling one each.
    """
    cls = type(module)
    if cls not in _COMPILED:
        _COMPILED[cls] = torch.compile(cls.forward)
    # an instance attribute: nn.Module.__call__ looks ``forward`` up on the instance first
    object.__setattr__(module, "forward", types.MethodType(_COMPILED[cls], module))


def apply_to_module(module: nn.Module, config: PerformanceConfig) -> None:
    """Apply resolved switches to one encoder module, in place (idempotent per module).

    :param module: an encoder (e.g. an SB3 features extractor); its parameters set the device.
    :param config: switches holding booleans only (see :func:`resolve_auto`).
    :raises ValueError: a switch is still ``"auto"``, or the module was switched differently before.
    """
    if any(not isinstance(getattr(config, name), bool) for name in ENCODER_SWITCHES):
        raise ValueError(f"apply_to_module needs resolved switches, got {config}; call resolve_auto first")
    config = config.encoder_part
    previous: PerformanceConfig | None = getattr(module, _STATE_ATTR, None)
    if previous is not None:
        if previous == config:
            return
        # switching twice would stack hooks; a model is switched once, when it is built
        raise ValueError(f"{type(module).__name__} already has performance switches {previous}; build a new model")
    if not config.any_on:
        return
    handles: list[RemovableHandle] = []
    if config.channels_last:
        # only 4-D tensors change layout; parameter objects stay the same, so optimizers keep them
        module.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        handles.append(module.register_forward_pre_hook(_channels_last_input))
    if config.bf16:
        enter = _Bf16Autocast()
        handles.append(module.register_forward_pre_hook(enter))
        handles.append(module.register_forward_hook(_Bf16Exit(enter), always_call=True))
    if config.compile:
        _compile_forward(module)
    object.__setattr__(module, _STATE_ATTR, config)


def encoder_modules(model: Any) -> dict[str, nn.Module]:
    """The outermost features extractors of a built SB3/Curl model, each once.

    Covers the policy's online extractors (actor, critic, shared or not), its target networks and
    the auxiliary head's momentum (key) encoder.

    :param model: a built algorithm (``model.policy`` exists).
    :return: qualified name -> module.
    """
    roots: list[tuple[str, nn.Module]] = [("policy", model.policy)]
    head = getattr(model, "aux_head", None)
    if isinstance(head, nn.Module):
        roots.append(("aux_head", head))
    found: dict[str, nn.Module] = {}
    seen: set[int] = set()
    for root_name, root in roots:
        outer: list[str] = []
        for name, sub in root.named_modules():
            if not isinstance(sub, BaseFeaturesExtractor) or id(sub) in seen:
                continue
            if any(name.startswith(prefix + ".") for prefix in outer):
                continue  # e.g. the CurlEncoder inside a CenterCropExtractor
            outer.append(name)
            seen.add(id(sub))
            found[f"{root_name}.{name}"] = sub
    return found


def resolved_performance(model: Any, config: PerformanceConfig | Any = None) -> PerformanceConfig:
    """The switches ``config`` turns into for ``model``: booleans for its device and aux settings.

    :param model: the algorithm; ``model.device`` picks the ``"auto"`` defaults.
    :param config: anything :func:`resolve_performance_config` accepts; ``None`` = all ``"auto"``.
    """
    requested = resolve_performance_config(config)
    aux_config = getattr(model, "aux_config", None)
    if aux_config is not None and not aux_config.is_active:
        # aux="none" promises SB3's exact arithmetic: only explicit switches apply
        requested = dataclasses.replace(
            requested, **{name: False for name in SWITCHES if getattr(requested, name) == "auto"}
        )
    return resolve_auto(requested, model.device)


def apply_performance(model: Any, config: PerformanceConfig | Any = None) -> None:
    """Apply the speed switches to every encoder (online, target and key) and optimizer of a built model.

    Call once the policy and the auxiliary head exist (the end of ``_setup_aux``), before any
    optimizer step, so optimizer state is created in the encoders' final layout. Loading
    optimizer state brings the saved ``fused`` flags back; :func:`set_fused_adam` puts the
    switch's back (the Curl algorithms' ``set_parameters`` does).

    :param model: the algorithm; ``model.device`` picks the ``"auto"`` defaults.
    :param config: anything :func:`resolve_performance_config` accepts; ``None`` = all ``"auto"``.
    """
    resolved = resolved_performance(model, config)
    set_fused_adam(model, resolved.fused_adam is True)
    if not resolved.encoder_part.any_on:
        return
    if resolved.compile and model.device.type == "cpu":
        warnings.warn(
            "compile=True on CPU: the first updates of each batch shape and grad mode compile for tens of "
            "seconds; it pays back only on long runs (see docs/perf_notes.md)",
            RuntimeWarning,
            stacklevel=2,
        )
    for module in encoder_modules(model).values():
        apply_to_module(module, resolved)
    aux_head = getattr(model, "aux_head", None)
    if resolved.channels_last and aux_head is not None:
        # crops written in the encoders' layout: encoder_input's relayout copy finds nothing to do
        for pipeline in aux_head.augmentations.values():
            pipeline.write_channels_last(True)


def encoder_input(obs: Any, observation_space: spaces.Space, normalize_images: bool, encoder: nn.Module) -> Any:
    """SB3's ``preprocess_obs``, laid out as ``encoder`` takes it: the same values, fewer passes.

    SB3 turns a uint8 image batch into floats and divides into a second new tensor; with
    channels_last the encoder's pre-hook then copies it into a third. Here the uint8 batch (a
    quarter of the bytes) changes layout first and the division runs in place on the fresh float
    copy: one float tensor allocated instead of three, two passes over it instead of three. A batch
    prepared once this way can feed several encoders with the same switches (their hook finds
    nothing to do). Anything else (float or Dict observations, no image space) goes to
    ``preprocess_obs`` unchanged.

    :param obs: a batch of observations.
    :param observation_space: the policy's observation space.
    :param normalize_images: the policy's ``normalize_images``.
    :param encoder: the encoder the batch is for; its channels_last switch sets the layout.
    :return: exactly what ``preprocess_obs`` returns, possibly in channels_last layout.
    """
    if not (
        isinstance(obs, torch.Tensor)
        and obs.dtype == torch.uint8
        and obs.dim() == 4
        and isinstance(observation_space, spaces.Box)
        and normalize_images
        and is_image_space(observation_space)
    ):
        return preprocess_obs(obs, observation_space, normalize_images=normalize_images)
    if applied_performance(encoder).channels_last:
        obs = obs.contiguous(memory_format=torch.channels_last)
    return obs.float().div_(255.0)  # .float() of uint8 is always a new tensor: in place is safe


def applied_performance(module: nn.Module) -> PerformanceConfig:
    """The switches :func:`apply_to_module` put on ``module`` (all off if none).

    :param module: an encoder module.
    """
    return getattr(module, _STATE_ATTR, None) or PerformanceConfig.off()
