"""The core promise: the auxiliary loss trains the encoder through each algorithm's own ``train()``.

With plain SGD and a single gradient step, the encoder's update is ``-lr * (g_RL + w * g_aux)``, so
the difference from the ``w = 0`` update is linear in ``w``. Each case fails if the auxiliary term is
dropped from that algorithm's ``train()`` (the updates for w > 0 would equal the one for w = 0).
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from tiny_envs import DotEnv

from curl_rl import ALGOS, CurlEncoder

#: one preset per family: instance (CURL), temporal (ATC), transition (SPR)
FAMILIES = ["curl", "atc", "spr"]
SGD = dict(
    features_extractor_class=CurlEncoder,
    features_extractor_kwargs=dict(num_layers=2, num_filters=8),
    optimizer_class=torch.optim.SGD,
    optimizer_kwargs={},
)


def _one_update(algo: str, preset: str, weight: float) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """Encoder parameters before and after exactly one gradient step of ``train()``."""
    env = DotEnv(continuous=algo in ("sac", "td3"))
    aux = {"preset": preset, "weight": weight}
    common: dict[str, Any] = dict(seed=0, device="cpu", performance="off", learning_rate=1e-2, policy_kwargs=SGD)
    if algo == "ppo":
        model = ALGOS[algo](
            "CnnPolicy", env, aux=aux, n_steps=32, batch_size=32, n_epochs=1, max_grad_norm=1e9, **common
        )
    elif algo == "a2c":
        model = ALGOS[algo]("CnnPolicy", env, aux=aux, n_steps=32, max_grad_norm=1e9, **common)
    else:
        extra = dict(max_grad_norm=1e9, target_update_interval=1000) if algo == "dqn" else {}
        model = ALGOS[algo](
            "CnnPolicy", env, aux=aux, buffer_size=200, learning_starts=40, batch_size=16, **extra, **common
        )
    encoder = model._aux_encoder
    if algo in ("ppo", "a2c"):
        # one rollout; learn() then runs train() once: one minibatch, one step
        before = torch.cat([p.detach().flatten().clone() for p in encoder.parameters()])
        model.learn(32)
    else:
        model.learn(40)  # fills the buffer; no gradient step yet
        before = torch.cat([p.detach().flatten().clone() for p in encoder.parameters()])
        model.train(gradient_steps=1, batch_size=16)
    after = torch.cat([p.detach().flatten() for p in encoder.parameters()])
    return before, after, model


@pytest.mark.parametrize("preset", FAMILIES)
@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_aux_loss_moves_the_encoder_through_train_in_proportion_to_its_weight(algo: str, preset: str) -> None:
    before, base, _ = _one_update(algo, preset, 0.0)
    _, one, model = _one_update(algo, preset, 0.5)
    _, two, _ = _one_update(algo, preset, 1.0)
    assert torch.equal(before, _one_update(algo, preset, 0.0)[0])  # the same start every time
    d1, d2 = one - base, two - base
    assert d1.abs().max() > 1e-7, "the auxiliary loss did not reach the encoder"
    torch.testing.assert_close(d2, 2 * d1, rtol=1e-3, atol=1e-6)
    # and no gradient ever reaches the momentum (key) encoder
    assert model.aux_head is not None
    assert all(p.grad is None and not p.requires_grad for p in model.aux_head.key_encoder.parameters())
