"""How PPO/A2C see augmentation: a ratio that starts at 1, DrAC's regularisers, explicit modes."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch
from tiny_envs import DotEnv
from torch.distributions import Categorical, Normal

from curl_rl import CurlA2C, CurlEncoder, CurlPPO, CurlSAC
from curl_rl.auxiliary.config import AUX_PRESETS, ON_POLICY_RL_AUGMENT, resolve_aux_config
from curl_rl.auxiliary.drac import drac_regularisers, policy_kl

SMALL = dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(num_layers=2, num_filters=8))
AUGMENTED_PRESETS = sorted(name for name, values in AUX_PRESETS.items() if values.get("augment"))


def _ppo(aux: Any, **extra: Any) -> CurlPPO:
    kwargs: dict[str, Any] = dict(n_steps=64, batch_size=32, n_epochs=2, seed=0, policy_kwargs=SMALL, device="cpu")
    kwargs.update(extra)
    return CurlPPO("CnnPolicy", DotEnv(), aux=aux, **kwargs)


def test_every_augmented_preset_is_covered() -> None:
    assert {"aug", "curl", "atc", "spr", "curl+future", "triplet"} <= set(AUGMENTED_PRESETS)


@pytest.mark.parametrize("preset", AUGMENTED_PRESETS)
def test_default_ppo_ratio_is_one_before_any_update(preset: str) -> None:
    model = _ppo(preset)
    model.learn(128)  # two train() calls; the value logged is the last call's first minibatch
    assert model._rl_augment == ON_POLICY_RL_AUGMENT
    assert model.logger.name_to_value["train/ratio_dev_at_start"] < 1e-5


@pytest.mark.parametrize("mode", ["consistent", "drac"])
@pytest.mark.parametrize("preset", ["aug", "curl"])
def test_sound_modes_start_at_ratio_one(preset: str, mode: str) -> None:
    model = _ppo({"preset": preset, "rl_augment": mode}, clip_range_vf=0.2)
    model.learn(128)
    assert model.logger.name_to_value["train/ratio_dev_at_start"] < 1e-5


def test_naive_mode_is_still_available_and_its_ratio_is_not_one() -> None:
    # the metric measures something real: RAD's naive objective starts away from 1
    model = _ppo({"preset": "aug", "rl_augment": "naive"})
    model.learn(128)
    assert model.logger.name_to_value["train/ratio_dev_at_start"] > 1e-3


def test_consistent_old_estimates_use_the_rollout_parameters_on_the_augmented_view() -> None:
    model = _ppo({"preset": "aug", "rl_augment": "consistent"}, n_epochs=1)
    model.learn(64)
    old = model._aux_old_policy
    # the snapshot is the policy the rollout acted with, not the one train() moved
    model._aux_begin_train()
    for a, b in zip(old.parameters(), model.policy.parameters(), strict=True):
        assert torch.equal(a, b)
    assert old.optimizer is None  # the optimizer is not copied


def test_drac_mode_logs_its_regularisers_and_moves_the_encoder_more_than_without() -> None:
    model = _ppo({"preset": "aug", "rl_augment": "drac", "drac_weight": 0.1})
    model.learn(64)
    logged = model.logger.name_to_value
    assert logged["aux/drac/policy_kl"] >= 0.0 and logged["aux/drac/value_gap"] >= 0.0
    assert math.isfinite(logged["aux/drac/loss"])


def test_drac_weight_zero_equals_plain_ppo_on_unaugmented_frames() -> None:
    # with alpha_r = 0 DrAC's loss is PPO's on s: same parameters as aux="none" ...
    # (each model learns right after it is built: building one reseeds torch's global RNG)
    plain = _ppo("none")
    plain.learn(64)
    drac = _ppo({"preset": "aug", "rl_augment": "drac", "drac_weight": 0.0}, performance="off")
    drac.learn(64)
    for (name, a), b in zip(plain.policy.state_dict().items(), drac.policy.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)
    # ... and with alpha_r > 0 the regulariser changes the update
    weighted = _ppo({"preset": "aug", "rl_augment": "drac", "drac_weight": 1.0}, performance="off")
    weighted.learn(64)
    moved = [
        not torch.allclose(a, b) for a, b in zip(plain.policy.parameters(), weighted.policy.parameters(), strict=True)
    ]
    assert any(moved)


def test_drac_regularisers_match_the_formula() -> None:
    logits_s = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    logits_a = torch.tensor([[1.0, 1.0, 0.0], [0.5, 0.0, -0.5]], requires_grad=True)
    p, q = logits_s.softmax(-1), logits_a.softmax(-1)
    kl = (p * (p.log() - q.log())).sum(-1)
    v_s, v_a = torch.tensor([1.0, 2.0]), torch.tensor([0.5, 2.5], requires_grad=True)
    out = drac_regularisers(Categorical(logits=logits_s), v_s, Categorical(logits=logits_a), v_a, weight=0.1)
    expected = 0.1 * (kl.mean() + ((v_s - v_a) ** 2).mean())
    torch.testing.assert_close(out.loss, expected)
    # the policy on s is the target: no gradient reaches it
    logits_s.requires_grad_(True)
    policy_kl(Categorical(logits=logits_s), Categorical(logits=logits_a)).sum().backward()
    assert logits_s.grad is None


def test_drac_kl_of_diagonal_gaussians_sums_dimensions() -> None:
    s = Normal(torch.zeros(4, 2), torch.ones(4, 2))
    a = Normal(torch.ones(4, 2), torch.ones(4, 2))
    torch.testing.assert_close(policy_kl(s, a), torch.full((4,), 1.0))  # 2 dims x 0.5 each


def test_a2c_runs_drac_and_naive_and_refuses_consistent() -> None:
    for mode in ("drac", "naive"):
        model = CurlA2C(
            "CnnPolicy",
            DotEnv(),
            aux={"preset": "curl", "rl_augment": mode},
            n_steps=16,
            seed=0,
            policy_kwargs=SMALL,
            device="cpu",
        )
        model.learn(32)
        assert np.isfinite(model.logger.name_to_value["aux/loss"])
    with pytest.raises(ValueError, match="A2C takes one step per rollout"):
        CurlA2C("CnnPolicy", DotEnv(), aux={"preset": "aug", "rl_augment": "consistent"}, device="cpu")


@pytest.mark.parametrize("mode", ["consistent", "drac"])
def test_off_policy_refuses_on_policy_modes(mode: str) -> None:
    with pytest.raises(ValueError, match="off-policy algorithms use 'naive'"):
        CurlSAC("CnnPolicy", DotEnv(continuous=True), aux={"preset": "curl", "rl_augment": mode}, device="cpu")


def test_old_bool_field_still_reads() -> None:
    assert resolve_aux_config({"preset": "curl", "augment_rl": False}).rl_augment == "none"
    assert resolve_aux_config({"preset": "curl", "augment_rl": True}).rl_augment == "auto"
    with pytest.raises(ValueError, match="rl_augment"):
        resolve_aux_config({"preset": "curl", "rl_augment": "sometimes"})


def test_ppo_epochs_never_meet_their_own_frame_among_queued_negatives(monkeypatch: pytest.MonkeyPatch) -> None:
    import curl_rl.auxiliary.head as head_module

    calls: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    real = head_module.info_nce

    def spy(query: torch.Tensor, key: torch.Tensor, **kwargs: Any) -> Any:
        out = real(query, key, **kwargs)
        calls.append((kwargs["ids"], kwargs["queue_ids"], out.loss.detach()))
        # the same call with the own-frame keys removed from the queue by hand gives the same loss
        queue, queue_ids, ids = kwargs["queue"], kwargs["queue_ids"], kwargs["ids"]
        if queue is not None and len(queue):
            for row in range(0, query.shape[0], 7):
                keep = queue_ids != ids[row]
                alone = {**kwargs, "queue": queue[keep], "queue_ids": queue_ids[keep], "ids": ids[row : row + 1]}
                alone.update(ids=None, queue_ids=None)
                by_hand = real(query[row : row + 1], key[row : row + 1], **alone).loss
                single = {**kwargs, "ids": ids[row : row + 1]}
                torch.testing.assert_close(real(query[row : row + 1], key[row : row + 1], **single).loss, by_hand)
        return out

    monkeypatch.setattr(head_module, "info_nce", spy)
    model = _ppo({"preset": "curl", "queue_size": 256}, n_epochs=3)
    model.learn(128)  # two rollouts, three epochs each
    own_frames_queued = sum(int(torch.isin(ids, queue_ids).sum()) for ids, queue_ids, _ in calls)
    assert own_frames_queued > 0  # the case is real: from epoch 2 on, the queue holds this rollout's keys
    first, last = calls[0][0], calls[-1][0]
    assert not torch.isin(first, last).any()  # ids of different rollouts never collide
