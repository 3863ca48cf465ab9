"""CurlSAC under routing="curl" is CURL's SAC: who each loss moves, two taus, update frequencies, encodes."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from tiny_envs import DotEnv
from torch import nn
from torch.overrides import TorchFunctionMode

from curl_rl import CurlEncoder, CurlSAC
from curl_rl.algos.routing import DetachedTrunk, trunk_and_head
from curl_rl.algos.sac import CURL_PAPER_SAC

SMALL = dict(
    net_arch=[32, 32],
    features_extractor_class=CurlEncoder,
    features_extractor_kwargs=dict(num_layers=2, num_filters=8, tanh=False),
)


def _curl_sac(aux: Any = "curl", **extra: Any) -> CurlSAC:
    kwargs = {**CURL_PAPER_SAC, "policy_kwargs": SMALL, "buffer_size": 500, "learning_starts": 40, "batch_size": 16}
    kwargs.update(extra)
    kwargs.setdefault("performance", "off")
    model = CurlSAC("CnnPolicy", DotEnv(continuous=True), aux=aux, seed=0, device="cpu", **kwargs)
    model.learn(40)  # fills the buffer; no update yet
    assert model._n_updates == 0
    return model


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in module.named_parameters()}


def _changed(before: dict[str, torch.Tensor], module: nn.Module) -> set[str]:
    return {n for n, p in module.named_parameters() if not torch.equal(before[n], p)}


def test_actor_has_its_own_head_on_the_critics_conv_trunk() -> None:
    model = _curl_sac()
    critic_fe, actor_fe = model.critic.features_extractor, model.actor.features_extractor
    assert model.policy.conv_tied
    assert isinstance(actor_fe.convs, DetachedTrunk) and actor_fe.convs.trunk is critic_fe.convs
    assert actor_fe.head is not critic_fe.head  # its own fc + LayerNorm
    in_actor_optimizer = {id(p) for g in model.actor.optimizer.param_groups for p in g["params"]}
    assert not in_actor_optimizer & {id(p) for p in model.critic.parameters()}
    assert {id(p) for p in actor_fe.head.parameters()} <= in_actor_optimizer


def test_which_parameters_each_loss_moves() -> None:
    model = _curl_sac()
    actor_before, critic_before = _snapshot(model.actor), _snapshot(model.critic)
    steps: list[tuple[set[str], set[str]]] = []
    real_step = model.actor.optimizer.step

    def spy_step(*args: Any, **kwargs: Any) -> Any:
        critic_now = _snapshot(model.critic)
        out = real_step(*args, **kwargs)
        steps.append((_changed(critic_now, model.critic), set()))
        return out

    model.actor.optimizer.step = spy_step  # type: ignore[method-assign]
    model.train(gradient_steps=1, batch_size=16)  # update 0: critic + aux, then actor and alpha
    assert len(steps) == 1 and steps[0][0] == set()  # the actor step moves nothing the critic owns
    moved_actor = _changed(actor_before, model.actor)
    assert any(n.startswith("features_extractor.head.") for n in moved_actor)  # its own head learns
    assert any(n.startswith("latent_pi.") for n in moved_actor)
    moved_critic = _changed(critic_before, model.critic)
    assert any(n.startswith("features_extractor.convs.") for n in moved_critic)
    assert any(n.startswith("features_extractor.head.") for n in moved_critic)
    assert any(n.startswith("qf0.") for n in moved_critic)


def test_the_auxiliary_loss_reaches_the_critic_encoder_only() -> None:
    model = _curl_sac()
    assert model.aux_head is not None
    model.policy.zero_grad(set_to_none=True)
    batch = model.replay_buffer.sample(16)
    loss = model._aux_loss(batch.observations, None)
    assert loss is not None
    loss.backward()
    fe = model.critic.features_extractor
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in fe.parameters())  # conv and head
    assert all(p.grad is None for p in model.critic.qf0.parameters())
    critic_ids = {id(p) for p in model.critic.parameters()}
    assert all(p.grad is None for p in model.actor.parameters() if id(p) not in critic_ids)
    assert all(p.grad is None for p in model.aux_head.key_encoder.parameters())
    assert model.aux_head.W is not None and model.aux_head.W.grad is not None


def test_target_encoder_and_q_heads_move_with_their_own_taus() -> None:
    model = _curl_sac()
    target_before = _snapshot(model.critic_target)
    model.train(gradient_steps=1, batch_size=16)  # update 0 is a target update (interval 2)
    online = dict(model.critic.named_parameters())
    for name, p in model.critic_target.named_parameters():
        tau = 0.05 if name.startswith("features_extractor.") else 0.01
        expected = (1 - tau) * target_before[name] + tau * online[name].detach()
        torch.testing.assert_close(p.detach(), expected, rtol=1e-5, atol=1e-7, msg=name)


def test_actor_alpha_and_targets_update_every_second_step() -> None:
    model = _curl_sac()
    counts = {"actor": 0, "alpha": 0}
    for name, opt in (("actor", model.actor.optimizer), ("alpha", model.ent_coef_optimizer)):
        real = opt.step

        def counted(*args: Any, _name: str = name, _real: Any = real, **kwargs: Any) -> Any:
            counts[_name] += 1
            return _real(*args, **kwargs)

        opt.step = counted  # type: ignore[method-assign]
    target_moves = 0
    for _ in range(4):  # four train() calls of one step each, as in learn()
        before = _snapshot(model.critic_target)
        model.train(gradient_steps=1, batch_size=16)
        target_moves += bool(_changed(before, model.critic_target))
    assert counts == {"actor": 2, "alpha": 2}
    assert target_moves == 2


def test_alpha_has_its_own_learning_rate_and_betas() -> None:
    model = _curl_sac()
    model.train(gradient_steps=2, batch_size=16)
    group = model.ent_coef_optimizer.param_groups[0]
    assert group["lr"] == pytest.approx(1e-4) and tuple(group["betas"]) == (0.5, 0.999)
    assert model.actor.optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    assert model.log_ent_coef.exp().item() == pytest.approx(0.1, rel=0.01)  # CURL's initial temperature


@pytest.mark.parametrize("key_encoder", ["target", "own"])
def test_each_batch_is_encoded_as_few_times_as_the_maths_allows(key_encoder: str) -> None:
    model = _curl_sac(key_encoder=key_encoder)
    assert model.aux_head is not None
    trunks = {
        "critic": getattr(*trunk_and_head(model.critic.features_extractor)[:2]),
        "target": getattr(*trunk_and_head(model.critic_target.features_extractor)[:2]),
        "key": getattr(*trunk_and_head(model.aux_head.key_encoder.target[0])[:2]),
    }
    if key_encoder == "target":
        assert trunks.pop("key") is trunks["target"]
    calls: dict[str, list[bool]] = {name: [] for name in trunks}
    handles = [
        trunk.register_forward_hook(lambda *_, _n=name: calls[_n].append(torch.is_grad_enabled()))
        for name, trunk in trunks.items()
    ]
    backward = []
    # a hook on the weight, not the module: a module backward hook refuses the in-place ReLU after it
    first_conv = trunks["critic"][0]
    handles.append(first_conv.weight.register_hook(lambda grad: backward.append(1)))
    model.train(gradient_steps=1, batch_size=16)  # an update with an actor step
    for h in handles:
        h.remove()
    # obs: one critic pass with grad (critic loss, anchor, actor, alpha); next_obs: one online pass
    # (next action) and one target pass; the positive view: one key-encoder pass (CURL: the target's)
    if key_encoder == "target":
        assert calls == {"critic": [False, True], "target": [False, False]}
    else:
        assert calls == {"critic": [False, True], "target": [False], "key": [False]}
    assert backward == [1]


class _PixelPasses(TorchFunctionMode):
    """Counts full passes over image batches and conv maps: uint8 -> float conversions, layout
    copies (uint8 and float), and ReLUs run as a pass of their own over a conv output."""

    def __init__(self) -> None:
        super().__init__()
        self.to_float = 0
        self.float_relayouts = 0
        self.uint8_relayouts = 0
        self.relu_passes = 0

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        out = func(*args, **(kwargs or {}))
        source = args[0] if args else None
        if isinstance(source, torch.Tensor) and source.dim() == 4 and isinstance(out, torch.Tensor):
            if source.dtype == torch.uint8 and out.is_floating_point():
                self.to_float += 1
            elif func is torch.Tensor.contiguous and out is not source:
                if source.is_floating_point():
                    self.float_relayouts += 1
                else:
                    self.uint8_relayouts += 1
            elif func in (torch.relu, torch.relu_, torch.nn.functional.relu):
                self.relu_passes += 1
        return out


@pytest.mark.parametrize("performance", ["off", "auto"])
def test_each_pixel_batch_becomes_floats_once_per_update(performance: str) -> None:
    model = _curl_sac(performance=performance)  # "auto" on a CPU: channels_last
    with _PixelPasses() as passes:
        model.train(gradient_steps=1, batch_size=16)
    # obs, next_obs (shared by the online and the target trunk), the positive view; a channels_last
    # encoder gets its layout from the crop itself, not from a copy of the uint8 or the float batch
    assert (passes.to_float, passes.float_relayouts, passes.uint8_relayouts) == (3, 0, 0)
    # each ReLU of the four trunk passes runs inside its convolution's kernel (conv_trunk.py)
    assert passes.relu_passes == 0


def test_keys_come_from_the_target_critics_encoder_as_in_curls_code(tmp_path: Any) -> None:
    model = _curl_sac()  # CURL_PAPER_SAC: key_encoder="target"
    head = model.aux_head
    assert head is not None
    model.train(gradient_steps=3, batch_size=16)  # the target moved at updates 0 and 2, not 1
    frames = torch.randint(0, 256, (4, *model.observation_space.shape), dtype=torch.uint8)
    with torch.no_grad():
        target = model.critic_target.extract_features(frames, model.critic_target.features_extractor)
    torch.testing.assert_close(head.encode_key(frames), target, rtol=0, atol=0)
    model.save(tmp_path / "m.zip")
    loaded = CurlSAC.load(tmp_path / "m.zip", device="cpu")
    assert loaded.aux_head is not None
    assert loaded.aux_head.key_encoder.target[0] is loaded.critic_target.features_extractor
    torch.testing.assert_close(loaded.aux_head.encode_key(frames), target, rtol=0, atol=0)


def test_key_encoder_target_refuses_settings_it_would_ignore() -> None:
    with pytest.raises(ValueError, match=r"aux tau=0.01.*key_encoder='own'"):
        _curl_sac(aux={"preset": "curl", "tau": 0.01})
    with pytest.raises(ValueError, match="projection_dim=8"):
        _curl_sac(aux={"preset": "curl", "projection_dim": 8})
    with pytest.raises(ValueError, match="routing='curl'"):
        _curl_sac(routing="sb3")
    with pytest.raises(ValueError, match="key_encoder='mine'"):
        _curl_sac(key_encoder="mine")
    _curl_sac(aux="aug")  # the baselines run with the same settings: no keys, nothing to refuse


def test_bad_curl_settings_are_refused_with_the_fix() -> None:
    env = DotEnv(continuous=True)
    with pytest.raises(ValueError, match="encoder_tau"):
        CurlSAC("CnnPolicy", env, encoder_tau=0.0)
    with pytest.raises(ValueError, match="actor_update_freq"):
        CurlSAC("CnnPolicy", env, actor_update_freq=0)
    with pytest.raises(ValueError, match="alpha_betas"):
        CurlSAC("CnnPolicy", env, alpha_betas=(0.5,))


def test_the_actor_loss_computes_no_critic_weight_gradients() -> None:
    """Its backward through the Q heads needs only the action gradient; the critic's were thrown away."""
    model = _curl_sac()
    q_params = [p for n, p in model.critic.named_parameters() if not n.startswith("features_extractor")]
    computed: list[int] = []
    handles = [p.register_hook(lambda g: computed.append(1) or g) for p in q_params]
    model.train(gradient_steps=1, batch_size=16)  # update 0: critic, then actor
    for handle in handles:
        handle.remove()
    assert len(computed) == len(q_params)  # once each, by the critic loss
    assert all(p.requires_grad for p in q_params)
