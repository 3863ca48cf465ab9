"""Speed switches (channels_last, compile, bf16, fused_adam): same results, same checkpoints, off = untouched."""

from __future__ import annotations

import copy
import importlib
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3.common.preprocessing import preprocess_obs
from tiny_envs import DotEnv

from curl_rl import CurlA2C, CurlEncoder, CurlPPO, CurlSAC
from curl_rl.algos import performance
from curl_rl.algos.fused_adam import model_optimizers
from curl_rl.algos.performance import (
    AUTO_DEFAULTS,
    PerformanceConfig,
    applied_performance,
    apply_performance,
    apply_to_module,
    encoder_input,
    encoder_modules,
    resolve_auto,
    resolve_performance_config,
)
from curl_rl.auxiliary.feature_tap import FeatureTap

SMALL = dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(num_layers=2, num_filters=8))
SAC_KW: dict[str, Any] = dict(buffer_size=200, learning_starts=20, batch_size=16, policy_kwargs=SMALL, device="cpu")
CL = PerformanceConfig(channels_last=True, compile=False, bf16=False, fused_adam=False)
BF16 = PerformanceConfig(channels_last=False, compile=False, bf16=True, fused_adam=False)
COMPILE = PerformanceConfig(channels_last=False, compile=True, bf16=False, fused_adam=False)
needs_cpu_bf16 = pytest.mark.skipif(
    not performance.bf16_supported(torch.device("cpu")), reason="this CPU has no native bf16 (oneDNN)"
)


def _encoder(seed: int = 0) -> CurlEncoder:
    torch.manual_seed(seed)
    return CurlEncoder(gym.spaces.Box(0, 255, (6, 24, 24), np.uint8), features_dim=16, num_layers=2, num_filters=8)


def _batch(n: int = 5) -> torch.Tensor:
    return torch.rand(n, 6, 24, 24, generator=torch.Generator().manual_seed(1))


# the models here are built with every switch off and switched explicitly by the tests
OFF: dict[str, Any] = {"performance": "off"}


def _sac(seed: int = 0, **extra: Any) -> CurlSAC:
    return CurlSAC("CnnPolicy", DotEnv(continuous=True), aux="curl", seed=seed, **{**SAC_KW, **OFF, **extra})


# -- config ---------------------------------------------------------------------------------
def test_config_parsing_and_validation() -> None:
    assert resolve_performance_config(None) == PerformanceConfig()
    assert resolve_performance_config("auto") == PerformanceConfig("auto", "auto", "auto")
    assert resolve_performance_config("off") == PerformanceConfig.off()
    assert resolve_performance_config({"bf16": True}) == PerformanceConfig(bf16=True)
    with pytest.raises(ValueError, match="unknown performance switches"):
        resolve_performance_config({"fp8": True})
    with pytest.raises(ValueError, match="True, False or 'auto'"):
        PerformanceConfig(channels_last="yes")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="pass None"):
        resolve_performance_config(3)


def test_resolve_auto_uses_the_device_table_and_keeps_explicit_values() -> None:
    cpu = resolve_auto(PerformanceConfig(), "cpu")
    assert cpu == PerformanceConfig(**AUTO_DEFAULTS["cpu"])
    assert resolve_auto(PerformanceConfig(channels_last=False, compile=True, bf16=False), "cpu").compile is True
    cuda_bf16 = AUTO_DEFAULTS["cuda"]["bf16"] and performance.bf16_supported(torch.device("cuda"))
    expected = PerformanceConfig(**{**AUTO_DEFAULTS["cuda"], "bf16": cuda_bf16})
    assert resolve_auto(PerformanceConfig(), "cuda") == expected


def test_bf16_without_native_support_is_rejected_cleanly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(performance, "bf16_supported", lambda device: False)
    with pytest.raises(ValueError, match="no native bf16"):
        resolve_auto(PerformanceConfig(bf16=True), "cpu")
    monkeypatch.setitem(AUTO_DEFAULTS, "cpu", {**AUTO_DEFAULTS["cpu"], "channels_last": False, "bf16": True})
    assert resolve_auto(PerformanceConfig(), "cpu").bf16 is False  # "auto" quietly stays off


# -- one encoder ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "atol"),
    [(CL, 1e-5), (BF16, 5e-2), (PerformanceConfig(True, False, True), 5e-2)],
    ids=["channels_last", "bf16", "channels_last+bf16"],
)
def test_switch_keeps_outputs_gradients_and_keys(config: PerformanceConfig, atol: float) -> None:
    if config.bf16 and not performance.bf16_supported(torch.device("cpu")):
        pytest.skip("this CPU has no native bf16 (oneDNN)")
    ref, enc = _encoder(), _encoder()
    apply_to_module(enc, config)
    x = _batch()
    out_ref, out = ref(x), enc(x)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    torch.testing.assert_close(out, out_ref, atol=atol, rtol=0)
    out.pow(2).sum().backward()
    out_ref.pow(2).sum().backward()
    for (name, p), p_ref in zip(enc.named_parameters(), ref.parameters(), strict=True):
        assert p.grad is not None and p.grad.dtype == torch.float32, name
        assert p_ref.grad is not None
        # bf16 rounds single elements a lot; the gradient as a whole must still point the same way
        rel = ((p.grad - p_ref.grad).norm() / p_ref.grad.norm()).item()
        assert rel < (0.05 if config.bf16 else 1e-4), f"{name}: relative gradient error {rel:.2e}"
    assert list(enc.state_dict()) == list(ref.state_dict())
    assert all(v.dtype == torch.float32 for v in enc.state_dict().values())
    assert not torch.is_autocast_enabled("cpu")  # autocast was left after the forward


@pytest.mark.parametrize("switches", [PerformanceConfig.off(), CL], ids=["off", "channels_last"])
def test_encoder_input_is_sb3s_preprocessing_in_the_encoders_layout(switches: PerformanceConfig) -> None:
    space = gym.spaces.Box(0, 255, (6, 24, 24), np.uint8)
    encoder = _encoder()
    apply_to_module(encoder, switches)
    pixels = torch.randint(0, 256, (5, 6, 30, 30), dtype=torch.uint8)[:, :, 3:27, 2:26]  # a crop: a view
    before = pixels.clone()
    prepared = encoder_input(pixels, space, True, encoder)
    assert torch.equal(prepared, preprocess_obs(pixels, space, normalize_images=True))  # bit for bit
    assert torch.equal(pixels, before)  # the replay batch is left alone
    layout = torch.channels_last if switches.channels_last else torch.contiguous_format
    assert prepared.is_contiguous(memory_format=layout)
    if switches.channels_last:  # the encoder's own pre-hook then has nothing to copy
        assert performance._to_channels_last(prepared) is prepared
    # everything else is SB3's preprocessing, untouched
    floats = torch.rand(5, 6, 24, 24) * 255
    assert torch.equal(encoder_input(floats, space, True, encoder), preprocess_obs(floats, space, True))
    assert torch.equal(encoder_input(pixels, space, False, encoder), pixels.float())
    vector = gym.spaces.Box(-1, 1, (3,), np.float32)
    states = torch.rand(5, 3)
    assert torch.equal(encoder_input(states, vector, True, encoder), states)


def test_channels_last_changes_layout_only() -> None:
    enc = _encoder()
    apply_to_module(enc, CL)
    weight = enc.convs[0].weight
    assert isinstance(weight, torch.Tensor)
    assert weight.is_contiguous(memory_format=torch.channels_last)
    assert applied_performance(enc) == CL


def test_compile_switch_matches_eager() -> None:
    ref, enc = _encoder(), _encoder()
    apply_to_module(enc, COMPILE)
    x = _batch()
    out = enc(x)
    torch.testing.assert_close(out, ref(x), atol=1e-5, rtol=1e-5)
    out.sum().backward()
    assert all(p.grad is not None for p in enc.parameters())
    assert list(enc.state_dict()) == list(ref.state_dict())
    twin = copy.deepcopy(enc)  # the compiled forward is rebound to the copy, not shared
    with torch.no_grad():
        for p in twin.parameters():
            p.add_(1.0)
    assert not torch.allclose(twin(x), enc(x))


@needs_cpu_bf16
def test_bf16_output_reaches_the_feature_tap_as_float32_and_errors_leave_autocast() -> None:
    enc = _encoder()
    apply_to_module(enc, BF16)
    with FeatureTap(enc) as tap:
        enc(_batch())
    assert tap.features is not None and tap.features.dtype == torch.float32
    with pytest.raises(RuntimeError):
        enc(torch.rand(2, 3, 24, 24))  # wrong channel count: forward raises inside autocast
    assert not torch.is_autocast_enabled("cpu")


def test_deepcopy_of_a_switched_encoder_is_independent() -> None:
    enc = _encoder()
    apply_to_module(enc, PerformanceConfig(True, False, performance.bf16_supported(torch.device("cpu"))))
    x = _batch()
    before = enc(x).detach().clone()
    twin = copy.deepcopy(enc)
    with torch.no_grad():
        for p in twin.parameters():
            p.zero_()
    torch.testing.assert_close(enc(x), before)
    assert applied_performance(twin) == applied_performance(enc)


def test_applying_twice_is_idempotent_and_a_different_config_is_refused() -> None:
    enc = _encoder()
    apply_to_module(enc, CL)
    apply_to_module(enc, CL)
    assert len(enc._forward_pre_hooks) == 1
    with pytest.raises(ValueError, match="already has performance switches"):
        apply_to_module(enc, PerformanceConfig(True, False, True))
    with pytest.raises(ValueError, match="resolved"):
        apply_to_module(_encoder(), PerformanceConfig())


# -- whole models ---------------------------------------------------------------------------
def test_every_encoder_of_a_curl_sac_model_is_found() -> None:
    model = _sac()
    found = encoder_modules(model)
    policy = model.policy
    assert model.aux_head is not None
    expected = {
        id(policy.critic.features_extractor),  # its conv trunk is the actor's too (routing="curl")
        id(policy.actor.features_extractor),  # the actor's own head on that trunk
        id(policy.critic_target.features_extractor),
        id(model.aux_head.key_encoder.target[0]),  # type: ignore[index]
    }
    assert {id(m) for m in found.values()} == expected


def test_off_is_bit_identical_and_auto_leaves_aux_none_alone() -> None:
    plain = _sac(seed=4)
    plain.learn(60)
    switched = _sac(seed=4)  # built after plain trained: seeding restarts the global RNGs
    apply_performance(switched, "off")
    for module in encoder_modules(switched).values():
        assert not module._forward_pre_hooks and not module._forward_hooks and "forward" not in vars(module)
    switched.learn(60)
    for (name, a), b in zip(plain.policy.state_dict().items(), switched.policy.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
    # built with the default ("auto" once wired): aux="none" promises SB3's arithmetic, so auto is off
    none = CurlPPO("CnnPolicy", DotEnv(), aux="none", n_steps=32, batch_size=16, policy_kwargs=SMALL, device="cpu")
    apply_performance(none, "auto")
    assert applied_performance(none.policy.features_extractor) == PerformanceConfig.off()
    apply_performance(none, CL)  # an explicit switch still applies
    assert applied_performance(none.policy.features_extractor) == CL


@pytest.mark.parametrize("saved_with", [CL, PerformanceConfig(True, False, True)], ids=["channels_last", "cl+bf16"])
def test_save_load_round_trip_across_switches(tmp_path: Path, saved_with: PerformanceConfig) -> None:
    if saved_with.bf16 and not performance.bf16_supported(torch.device("cpu")):
        pytest.skip("this CPU has no native bf16 (oneDNN)")
    model = _sac(seed=1)
    apply_performance(model, saved_with)
    model.learn(50)  # trains with the switches: hooks, feature tap, momentum encoder, targets
    path = tmp_path / "sac.zip"
    model.save(path)
    obs = np.stack([DotEnv(continuous=True).reset(seed=s)[0] for s in range(4)])
    saved_state = {k: v.clone() for k, v in model.policy.state_dict().items()}

    plain = CurlSAC.load(path, env=DotEnv(continuous=True), device="cpu", **OFF)  # switches off
    assert plain.policy.state_dict().keys() == saved_state.keys()
    for name, value in plain.policy.state_dict().items():
        assert torch.equal(value, saved_state[name]), name
    assert plain.aux_head is not None and model.aux_head is not None
    torch.testing.assert_close(
        plain.aux_head.state_dict()["key_encoder.target.0.convs.0.weight"],
        model.aux_head.state_dict()["key_encoder.target.0.convs.0.weight"],
    )
    plain_actions, _ = plain.predict(obs, deterministic=True)
    model_actions, _ = model.predict(obs, deterministic=True)
    np.testing.assert_allclose(plain_actions, model_actions, atol=5e-2 if saved_with.bf16 else 1e-5)

    other = CurlSAC.load(path, env=DotEnv(continuous=True), device="cpu", **OFF)  # then other switches
    has_bf16 = performance.bf16_supported(torch.device("cpu"))
    # bf16 is refused on CPUs without native support, so there the second switch is "off"
    apply_performance(other, BF16 if saved_with == CL and has_bf16 else "off")
    other.learn(20, reset_num_timesteps=False)  # optimizer state saved in NHWC drives NCHW parameters
    assert all(torch.isfinite(p).all() for p in other.policy.parameters())


@pytest.mark.slow
def test_compiled_model_trains_and_round_trips(tmp_path: Path) -> None:
    model = _sac(seed=2)
    with pytest.warns(RuntimeWarning, match="compile=True on CPU"):
        apply_performance(model, PerformanceConfig(True, True, False))
    model.learn(40)  # compiles the graphs for acting, the critic, its target and the key encoder
    model.save(tmp_path / "sac.zip")
    loaded = CurlSAC.load(tmp_path / "sac.zip", env=DotEnv(continuous=True), device="cpu", **OFF)
    for name, value in loaded.policy.state_dict().items():
        assert torch.equal(value, model.policy.state_dict()[name]), name


def test_performance_kwarg_is_applied_at_build_and_load_and_can_be_overridden(tmp_path: Path) -> None:
    model = _sac(performance=CL)
    assert all(applied_performance(m) == CL for m in encoder_modules(model).values())
    model.save(tmp_path / "sac.zip")
    again = CurlSAC.load(tmp_path / "sac.zip", env=DotEnv(continuous=True), device="cpu")
    assert all(applied_performance(m) == CL for m in encoder_modules(again).values())  # saved switches
    off = CurlSAC.load(tmp_path / "sac.zip", env=DotEnv(continuous=True), device="cpu", performance="off")
    assert all(applied_performance(m) == PerformanceConfig.off() for m in encoder_modules(off).values())
    auto = _sac(performance=None)  # the default: "auto", i.e. this device's measured defaults
    expected = resolve_auto(PerformanceConfig(), "cpu").encoder_part
    assert all(applied_performance(m) == expected for m in encoder_modules(auto).values())


# -- fused Adam ------------------------------------------------------------------------------
ADAM_MODULE = importlib.import_module("torch.optim.adam")  # torch.optim's namespace hides the module
FUSED_ONLY = PerformanceConfig(channels_last=False, compile=False, bf16=False, fused_adam=True)


def _count_adam_kernels(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the Adam implementations torch dispatches to (it looks them up at every step)."""
    calls = {"fused": 0, "unfused": 0}
    for name, kind in [("_fused_adam", "fused"), ("_single_tensor_adam", "unfused"), ("_multi_tensor_adam", "unfused")]:
        real = getattr(ADAM_MODULE, name)

        def counted(*args: Any, _real: Any = real, _kind: str = kind, **kwargs: Any) -> Any:
            calls[_kind] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(ADAM_MODULE, name, counted)
    return calls


def _adam_groups(model: Any) -> list[dict[str, Any]]:
    return [g for o in model_optimizers(model) if isinstance(o, torch.optim.Adam) for g in o.param_groups]


def _build(algo: str, performance_: Any, **extra: Any) -> Any:
    if algo == "sac":
        return _sac(performance=performance_, **extra)
    cls = {"ppo": CurlPPO, "a2c": CurlA2C}[algo]
    return cls(
        "CnnPolicy",
        DotEnv(),
        aux="curl",
        n_steps=16,
        policy_kwargs=SMALL,
        device="cpu",
        seed=0,
        performance=performance_,
        **({"batch_size": 16} if algo == "ppo" else {}),
        **extra,
    )


@pytest.mark.parametrize("algo", ["sac", "ppo", "a2c"])
def test_fused_adam_switch_steps_every_adam_optimizer_fused(monkeypatch: pytest.MonkeyPatch, algo: str) -> None:
    model = _build(algo, FUSED_ONLY)
    names = {type(o).__name__ for o in model_optimizers(model)}
    # SAC: actor, critic, entropy coefficient and the head; PPO: policy and head; A2C keeps RMSprop
    assert len(model_optimizers(model)) == {"sac": 4, "ppo": 2, "a2c": 2}[algo], names
    calls = _count_adam_kernels(monkeypatch)
    model.learn(48)
    assert calls["fused"] > 0 and calls["unfused"] == 0, calls
    assert all(torch.isfinite(p).all() for p in model.policy.parameters())
    if algo == "a2c":
        assert any(
            isinstance(o, torch.optim.RMSprop) and not o.param_groups[0].get("fused") for o in model_optimizers(model)
        )


def test_fused_adam_off_keeps_torchs_default_and_a_users_own_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _count_adam_kernels(monkeypatch)
    _sac(performance="off").learn(30)
    assert calls == {"fused": 0, "unfused": calls["unfused"]} and calls["unfused"] > 0
    # aux="none" promises SB3's arithmetic: "auto" leaves its optimizers alone
    none = CurlSAC("CnnPolicy", DotEnv(continuous=True), aux="none", **SAC_KW)
    assert not any(g["fused"] for g in _adam_groups(none))
    assert all(g["fused"] for g in _adam_groups(_sac(performance=None)))  # "auto" on a CPU: on
    own = dict(SMALL, optimizer_kwargs={"fused": True})
    mine = _sac(performance="off", policy_kwargs=own)  # the user's fused=True stays with the switch off
    assert all(g["fused"] for o in (mine.actor.optimizer, mine.critic.optimizer) for g in o.param_groups)


def test_loading_applies_the_loading_models_fused_switch_not_the_files(tmp_path: Path) -> None:
    model = _sac(performance=FUSED_ONLY)
    model.learn(30)  # optimizer state exists (step counts, moments) and is saved with the fused flags
    model.save(tmp_path / "fused.zip")
    env = DotEnv(continuous=True)
    off = CurlSAC.load(tmp_path / "fused.zip", env=env, device="cpu", performance="off")
    assert _adam_groups(off) and not any(g["fused"] for g in _adam_groups(off))
    off.learn(10, reset_num_timesteps=False)
    off.save(tmp_path / "unfused.zip")
    on = CurlSAC.load(tmp_path / "unfused.zip", env=env, device="cpu", performance=FUSED_ONLY)
    assert all(g["fused"] and not g["foreach"] for g in _adam_groups(on))
    on.learn(10, reset_num_timesteps=False)
    assert all(torch.isfinite(p).all() for p in on.policy.parameters())
