"""PPO/A2C's ``views="rollout"``: views drawn once per train() call, keys and old estimates computed once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from tiny_envs import DotEnv

from curl_rl import CurlA2C, CurlEncoder, CurlPPO, CurlSAC

SMALL = dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(num_layers=2, num_filters=8))
N_STEPS, BATCH, EPOCHS = 64, 32, 2


def _ppo(preset: str, views: str, **aux: Any) -> CurlPPO:
    return CurlPPO(
        "CnnPolicy",
        DotEnv(),
        aux={"preset": preset, "views": views, **aux},
        n_steps=N_STEPS,
        batch_size=BATCH,
        n_epochs=EPOCHS,
        seed=0,
        policy_kwargs=SMALL,
        device="cpu",
    )


@pytest.mark.parametrize("preset", ["aug", "curl", "curl+future", "spr", "atc"])
def test_consistent_ratio_starts_at_one(preset: str) -> None:
    model = _ppo(preset, "rollout")
    model.learn(2 * N_STEPS)
    assert model.logger.name_to_value["train/ratio_dev_at_start"] < 1e-5


def _rl_inputs_per_row(model: CurlPPO) -> dict[int, list[torch.Tensor]]:
    """Every RL forward's input, by rollout row, over one train() call."""
    seen: dict[int, list[torch.Tensor]] = {}
    original = model.policy.evaluate_actions

    def recording(obs: torch.Tensor, actions: torch.Tensor) -> Any:
        if not torch.is_grad_enabled():  # the old estimates' forward, not the RL loss's
            return original(obs, actions)
        for row, image in zip(model.rollout_buffer.last_batch_inds, obs, strict=True):
            seen.setdefault(int(row), []).append(image.clone())
        return original(obs, actions)

    model.policy.evaluate_actions = recording  # type: ignore[method-assign]
    model.learn(N_STEPS, reset_num_timesteps=False)
    model.policy.evaluate_actions = original  # type: ignore[method-assign]
    return seen


@pytest.mark.parametrize("views", ["minibatch", "rollout"])
def test_a_frame_keeps_its_view_across_epochs_only_with_rollout_views(views: str) -> None:
    model = _ppo("curl", views)
    model.learn(N_STEPS)
    seen = _rl_inputs_per_row(model)
    assert len(seen) == N_STEPS and all(len(images) == EPOCHS for images in seen.values())
    same = [torch.equal(images[0], images[1]) for images in seen.values()]
    # minibatch views are redrawn (a few draws repeat a shift by chance)
    assert all(same) if views == "rollout" else sum(same) < len(same) / 4


@pytest.mark.parametrize(("preset", "horizon"), [("curl", 0), ("curl+future", 3), ("spr", 5)])
@pytest.mark.parametrize("views", ["minibatch", "rollout"])
def test_key_encoder_forwards_per_train_call(preset: str, horizon: int, views: str) -> None:
    model = _ppo(preset, views)
    model.learn(N_STEPS)
    head = model.aux_head
    rows = []
    original = head.encode_key

    def counting(obs: torch.Tensor) -> torch.Tensor:
        rows.append(len(obs))
        return original(obs)

    head.encode_key = counting  # type: ignore[method-assign]
    model.learn(N_STEPS, reset_num_timesteps=False)
    instance = 0 if preset == "spr" else 1  # spr has no instance loss
    expected = N_STEPS if views == "rollout" else EPOCHS * N_STEPS * (instance + horizon)
    assert sum(rows) == expected


def test_losses_read_the_keys_drawn_for_the_rollout() -> None:
    model = _ppo("curl+future", "rollout")
    model.learn(N_STEPS)
    head, checked = model.aux_head, {"instance": 0, "future": 0}
    instance_loss, future_loss = head.instance_loss, head.future_loss

    def check_instance(anchor: torch.Tensor, obs: torch.Tensor, ids: Any = None, key: Any = None) -> Any:
        rows = torch.as_tensor(model.rollout_buffer.last_batch_inds)
        assert key is not None and torch.equal(key, model._aux_views.keys[rows])
        checked["instance"] += 1
        return instance_loss(anchor, obs, ids, key)

    def check_future(anchor: torch.Tensor, future_obs: Any, actions: Any, valid: Any, future_keys: Any = None) -> Any:
        buf = model.rollout_buffer
        future_rows, _, _ = buf.future_windows(buf.last_batch_inds, 3)
        assert future_obs is None and torch.equal(future_keys, model._aux_views.keys[torch.as_tensor(future_rows)])
        checked["future"] += 1
        return future_loss(anchor, future_obs, actions, valid, future_keys)

    head.instance_loss, head.future_loss = check_instance, check_future  # type: ignore[method-assign]
    model.learn(N_STEPS, reset_num_timesteps=False)
    assert checked == {"instance": EPOCHS * N_STEPS // BATCH, "future": EPOCHS * N_STEPS // BATCH}
    assert model._aux_views is None  # freed once train() is over


def test_keys_are_the_key_encoder_on_a_second_view_drawn_at_the_start_of_the_call() -> None:
    model = _ppo("curl", "rollout")
    model.learn(N_STEPS)
    seen: list[torch.Tensor] = []
    original = model.aux_head.encode_key

    def recording(obs: torch.Tensor) -> torch.Tensor:
        seen.append(obs.clone())
        return original(obs)

    model.aux_head.encode_key = recording  # type: ignore[method-assign]
    model._aux_begin_train()
    second = torch.cat(seen)
    views = model._aux_views
    assert torch.equal(views.keys, model.aux_head.key_encoder(model.aux_head._preprocess(second)))
    # the key view is an independent draw, not the first view again
    assert second.shape == views.first.shape and not torch.equal(second, views.first)


def test_batch_subset_and_queue_and_a2c_run(tmp_path: Path) -> None:
    model = _ppo("curl", "rollout", batch_size=16, queue_size=64)  # aux on half of each minibatch
    model.learn(2 * N_STEPS)
    assert torch.isfinite(torch.tensor(model.logger.name_to_value["aux/loss"]))
    aux = {"preset": "curl+future", "views": "rollout"}
    a2c = CurlA2C("CnnPolicy", DotEnv(), aux=aux, n_steps=16, seed=0, policy_kwargs=SMALL, device="cpu")
    a2c.learn(64)
    assert torch.isfinite(torch.tensor(a2c.logger.name_to_value["aux/loss"]))
    model.save(tmp_path / "m.zip")
    loaded = CurlPPO.load(tmp_path / "m.zip", device="cpu")
    assert loaded.aux_config.views == "rollout"


def test_off_policy_refuses_rollout_views() -> None:
    with pytest.raises(ValueError, match="views='minibatch'"):
        CurlSAC("CnnPolicy", DotEnv(continuous=True), aux={"preset": "curl", "views": "rollout"}, buffer_size=100)


@pytest.mark.parametrize("future_loss", ["cosine", "infonce"])
def test_future_loss_equals_one_prediction_per_step(future_loss: str) -> None:
    """The K predictions go through the predictor and the loss at once; the maths is SPR's per-step one."""
    from curl_rl.auxiliary.head import encode_actions
    from curl_rl.auxiliary.losses import cosine_prediction_loss, info_nce

    model = _ppo("curl+future", "minibatch", future_loss=future_loss)
    head = model.aux_head
    gen = torch.Generator().manual_seed(1)
    b, k = 8, head.config.future_k
    anchor = torch.randn(b, head.latent_dim, generator=gen)
    keys = torch.randn(b, k, head.latent_dim, generator=gen)
    actions = torch.randint(0, 4, (b, k, 1), generator=gen)
    valid = torch.rand(b, k, generator=gen) > 0.3
    out = head.future_loss(anchor, None, actions, valid, future_keys=keys)
    z, act, losses = head.projector(anchor), encode_actions(actions, head.action_space), []
    for j in range(k):
        z = head.transition(z, act[:, j])
        pred = head.future_predictor(z)
        if future_loss == "cosine":
            losses.append(cosine_prediction_loss(pred, keys[:, j], valid[:, j]).loss)
        else:
            step = info_nce(
                pred, keys[:, j], weight=head.W_future, temperature=head.config.temperature, mask=valid[:, j]
            )
            losses.append(step.loss)
    assert torch.allclose(out.loss, torch.stack(losses).mean(), atol=1e-5)
