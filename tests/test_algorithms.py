"""Every Curl algorithm trains with and without the auxiliary loss, saves and loads."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from tiny_envs import DotEnv

from curl_rl import ALGOS, CurlEncoder

SMALL_ENCODER = dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(num_layers=2, num_filters=8))
CONTINUOUS = {"sac", "td3"}


def make(algo: str, aux: Any, seed: int = 0, **extra: Any) -> Any:
    env = DotEnv(continuous=algo in CONTINUOUS)
    kwargs: dict[str, Any] = dict(seed=seed, policy_kwargs=SMALL_ENCODER, device="cpu")
    if algo == "ppo":
        kwargs.update(n_steps=64, batch_size=32, n_epochs=2)
    elif algo == "a2c":
        kwargs.update(n_steps=16)
    else:
        kwargs.update(buffer_size=1000, learning_starts=50, batch_size=16)
        if algo == "dqn":
            kwargs.update(target_update_interval=50)
    kwargs.update(extra)
    return ALGOS[algo]("CnnPolicy", env, aux=aux, **kwargs)


@pytest.mark.parametrize("algo", sorted(ALGOS))
@pytest.mark.parametrize("aux", ["none", "curl", "curl+future"])
def test_learns_a_few_hundred_steps(algo: str, aux: str) -> None:
    model = make(algo, aux)
    model.learn(200)
    assert model.num_timesteps >= 200
    logged = model.logger.name_to_value
    if aux == "none":
        assert model.aux_head is None
    else:
        assert model.aux_head is not None
        assert np.isfinite(logged["aux/loss"])
        assert 0.0 <= logged["aux/accuracy"] <= 1.0
        assert "aux/key_distance" in logged and "aux/embedding_std" in logged
    if aux == "curl+future":
        assert 0.0 < logged["aux/future/valid_fraction"] <= 1.0


def test_aux_batch_subset_of_the_minibatch() -> None:
    model = make("ppo", {"preset": "curl+future", "batch_size": 8})
    model.learn(128)
    assert np.isfinite(model.logger.name_to_value["aux/loss"])
    make("sac", {"preset": "curl+future", "batch_size": 8}).learn(80)


@pytest.mark.parametrize("algo", ["ppo", "sac", "dqn"])
@pytest.mark.parametrize("aux", ["atc", "spr", "triplet", "aug"])
def test_other_presets_run(algo: str, aux: str) -> None:
    model = make(algo, aux)
    model.learn(120)
    assert model.aux_head is not None and model.aux_config.name == aux
    logged = model.logger.name_to_value
    if aux == "aug":
        assert "aux/loss" not in logged  # augmentation only: no auxiliary loss
    else:
        assert np.isfinite(logged["aux/loss"]) and "aux/key_distance" in logged
    if aux in ("atc", "spr"):
        assert 0.0 < logged["aux/future/valid_fraction"] <= 1.0


@pytest.mark.parametrize("algo", ["ppo", "sac", "dqn"])
def test_spr_targets_come_from_the_online_encoder_as_in_spr_with_augmentation(algo: str) -> None:
    # SPR's README runs the augmented agent with --momentum-tau 1.: the target encoder (and
    # projection) is the online one, copied each update; EMA 0.01 is its no-augmentation setting
    model = make(algo, "spr")
    model.learn(120)
    head = model.aux_head
    online = dict(head.online(model._aux_encoder).named_parameters())
    target = dict(head.key_encoder.target.named_parameters())
    assert online.keys() == target.keys()
    for name, p in online.items():
        assert torch.equal(p, target[name]), name


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_save_load_round_trip_continues(algo: str, tmp_path: Any) -> None:
    model = make(algo, "curl")
    model.learn(150)
    path = tmp_path / "model.zip"
    model.save(path)
    loaded = type(model).load(path, env=DotEnv(continuous=algo in CONTINUOUS), device="cpu")
    obs = np.stack([DotEnv(continuous=algo in CONTINUOUS).reset(seed=i)[0] for i in range(4)])
    np.testing.assert_array_equal(model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0])
    assert loaded.aux_config == model.aux_config
    for (name, a), b in zip(model.aux_head.state_dict().items(), loaded.aux_head.state_dict().values(), strict=True):
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), name
    assert loaded.aux_head.key_encoder.num_steps == model.aux_head.key_encoder.num_steps
    assert torch.equal(loaded.aux_head.generator.get_state(), model.aux_head.generator.get_state())
    before = [p.detach().clone() for p in loaded.aux_head.trainable_parameters()]
    loaded.learn(100, reset_num_timesteps=False)
    assert loaded.num_timesteps >= model.num_timesteps + 100
    after = loaded.aux_head.trainable_parameters()
    assert any(not torch.equal(x, y) for x, y in zip(before, after, strict=True))


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_aux_optimizer_never_holds_the_encoder(algo: str) -> None:
    # CURL's reference code stepped the encoder twice per update (RL and contrastive optimizers)
    model = make(algo, "curl+future")
    encoder_params = {id(p) for p in model._aux_encoder.parameters()}
    key_params = {id(p) for p in model.aux_head.key_encoder.parameters()}
    aux_params = {id(p) for g in model.aux_optimizer.param_groups for p in g["params"]}
    assert not aux_params & encoder_params
    assert not aux_params & key_params
    rl_opt = model.policy.optimizer if algo in ("ppo", "a2c", "dqn") else model.critic.optimizer
    rl_params = {id(p) for g in rl_opt.param_groups for p in g["params"]}
    assert encoder_params <= rl_params


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_no_gradient_reaches_the_key_encoder(algo: str) -> None:
    model = make(algo, "curl")
    model.learn(120)
    for p in model.aux_head.key_encoder.parameters():
        assert not p.requires_grad and p.grad is None


def test_encoder_receives_aux_gradient_and_actor_is_detached() -> None:
    model = make("sac", "curl")
    model.learn(60)
    obs = torch.as_tensor(np.stack([DotEnv(continuous=True).reset(seed=i)[0] for i in range(8)])).permute(0, 3, 1, 2)
    # CURL's routing: the actor's conv trunk is the critic's (read detached), its head its own
    assert model.actor.features_extractor.convs.trunk is model.critic.features_extractor.convs
    assert model.actor.features_extractor.head is not model.critic.features_extractor.head
    actor_params = {id(p) for g in model.actor.optimizer.param_groups for p in g["params"]}
    assert not actor_params & {id(p) for p in model.critic.features_extractor.parameters()}
    model.critic.optimizer.zero_grad()
    loss = model._aux_loss(obs, None, model._replay_futures)
    assert loss is not None
    loss.backward()
    grads = [p.grad for p in model.critic.features_extractor.parameters()]
    assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_channel_first_and_dict_observations_train() -> None:
    import gymnasium as gym
    from gymnasium import spaces

    from curl_rl import CurlPPO

    CurlPPO(
        "CnnPolicy",
        DotEnv(channel_first=True),
        aux="curl",
        n_steps=32,
        batch_size=16,
        n_epochs=1,
        policy_kwargs=SMALL_ENCODER,
    ).learn(64)

    class DictDot(gym.ObservationWrapper):
        def __init__(self, env: gym.Env) -> None:
            super().__init__(env)
            self.observation_space = spaces.Dict({"image": env.observation_space, "vec": spaces.Box(-1, 1, (2,))})

        def observation(self, obs: np.ndarray) -> dict:
            return {"image": obs, "vec": np.zeros(2, np.float32)}

    model = CurlPPO("MultiInputPolicy", DictDot(DotEnv(size=36)), aux="curl", n_steps=32, batch_size=16, n_epochs=1)
    model.learn(64)
    assert np.isfinite(model.logger.name_to_value["aux/loss"])


def test_crop_protocol_acts_on_centre_crop() -> None:
    from curl_rl import CurlPPO

    model = CurlPPO(
        "CnnPolicy",
        DotEnv(size=40),
        aux={"preset": "curl", "augment": ["crop"], "crop_size": 36},
        n_steps=32,
        batch_size=16,
        n_epochs=1,
    )
    model.learn(32)
    obs = DotEnv(size=40).reset(seed=0)[0]
    action, _ = model.predict(obs, deterministic=True)
    assert model.action_space.contains(action)


@pytest.mark.parametrize("algo", ["ppo", "sac", "dqn"])
def test_loading_across_classes_and_aux_settings(algo: str, tmp_path: Any) -> None:
    import stable_baselines3 as sb3

    model = make(algo, "curl")
    model.learn(64)
    obs = model.env.reset()
    # SB3's own class reads the file save_as_sb3 writes; the full save keeps the head for CurlX.load
    model.save_as_sb3(tmp_path / "plain.zip")
    plain = getattr(sb3, algo.upper()).load(tmp_path / "plain.zip", device="cpu")
    np.testing.assert_array_equal(plain.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    model.save(tmp_path / "full.zip")
    with pytest.raises((ValueError, KeyError)):  # SB3's own refusal (SAC's ends in a KeyError)
        getattr(sb3, algo.upper()).load(tmp_path / "full.zip", device="cpu")
    # CurlX.load does not silently ignore aux=
    with pytest.raises(ValueError, match="cannot change aux"):
        type(model).load(tmp_path / "full.zip", aux="none")
    # a model without aux takes the policy and drops the head, with a warning
    # (same routing: with aux, SAC's "auto" routing is CURL's, whose actor sits on the critic's trunk)
    bare = make(algo, "none", **({"routing": "curl"} if algo == "sac" else {}))
    with pytest.warns(UserWarning, match="dropping aux_head"):
        bare.set_parameters(str(tmp_path / "full.zip"))
    np.testing.assert_array_equal(bare.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])
    # a model with a head refuses a file without one, unless told to keep its fresh head
    other = make(algo, "curl", seed=1)
    with pytest.raises(ValueError, match="exact_match=False"):
        other.set_parameters(str(tmp_path / "plain.zip"))
    other.set_parameters(str(tmp_path / "plain.zip"), exact_match=False)
    np.testing.assert_array_equal(other.predict(obs, deterministic=True)[0], model.predict(obs, deterministic=True)[0])


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_the_none_baseline_of_a_cropping_study_crops_once_with_the_same_numbers(algo: str) -> None:
    """``none`` with a centre crop: the RL batch is cropped while uint8, before the extractor (the
    extractor's own crop of the whole normalised frame made a SAC update up to 1.25x slower at 100->84)."""
    aux = {"preset": "none", "augment": ["crop"], "crop_size": 20, "rl_augment": "none"}
    fast = make(algo, aux)
    assert fast._aux_augment_rl(torch.zeros((4, 3, 24, 24), dtype=torch.uint8)).shape[-2:] == (20, 20)
    fast.learn(120)
    reference = make(algo, aux)  # built after fast has learned: the seed resets torch's global RNG
    reference._aux_augment_rl = lambda obs: obs  # the extractor crops, as before
    reference.learn(120)
    for (name, a), b in zip(fast.policy.state_dict().items(), reference.policy.state_dict().values(), strict=True):
        assert torch.equal(a, b), name
