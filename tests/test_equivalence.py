"""With the auxiliary objective off, every Curl algorithm trains exactly like its SB3 parent.

This guards the copied ``train()`` methods (our lines are marked ``# curl_rl``), the uint8
rollout buffer and the frame-deduplicating replay buffer: any drift in RNG use, sample order or
arithmetic shows up as a parameter difference.
"""

from __future__ import annotations

from typing import Any

import pytest
import stable_baselines3 as sb3
import torch
from tiny_envs import DotEnv

from curl_rl import ALGOS, CurlEncoder

PARENTS = {"ppo": sb3.PPO, "a2c": sb3.A2C, "sac": sb3.SAC, "td3": sb3.TD3, "dqn": sb3.DQN}


def _kwargs(algo: str) -> dict[str, Any]:
    kw: dict[str, Any] = dict(
        seed=3,
        device="cpu",
        policy_kwargs=dict(
            features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(num_layers=2, num_filters=8)
        ),
    )
    if algo == "ppo":
        kw.update(n_steps=64, batch_size=32, n_epochs=2)
    elif algo == "a2c":
        kw.update(n_steps=8)
    else:
        kw.update(buffer_size=400, learning_starts=60, batch_size=16, train_freq=2)
        if algo == "dqn":
            kw.update(target_update_interval=40, exploration_fraction=0.5)
    return kw


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_none_trains_exactly_like_sb3(algo: str) -> None:
    continuous = algo in ("sac", "td3")
    steps = 300
    ours = ALGOS[algo]("CnnPolicy", DotEnv(continuous=continuous), aux="none", **_kwargs(algo))
    ours.learn(steps)
    parent = PARENTS[algo]("CnnPolicy", DotEnv(continuous=continuous), **_kwargs(algo))
    parent.learn(steps)
    ours_state, parent_state = ours.policy.state_dict(), parent.policy.state_dict()
    assert ours_state.keys() == parent_state.keys()
    changed = 0
    initial = PARENTS[algo]("CnnPolicy", DotEnv(continuous=continuous), **_kwargs(algo)).policy.state_dict()
    for name, value in parent_state.items():
        assert torch.equal(ours_state[name], value), f"{algo}: {name} differs from SB3"
        changed += int(not torch.equal(initial[name], value))
    assert changed > 0, "training did not change any parameter; the test would prove nothing"


#: branches of the copied train() that the default settings never enter
BRANCHES = {
    "ppo-target_kl-clip_range_vf": ("ppo", dict(target_kl=0.001, clip_range_vf=0.1)),
    "ppo-sde": ("ppo-continuous", dict(use_sde=True, sde_sample_freq=4)),
    "sac-fixed-ent_coef": ("sac", dict(ent_coef=0.05)),
    "sac-sde": ("sac", dict(use_sde=True)),
    "sac-n-step": ("sac", dict(n_steps=3)),
    "td3-n-step": ("td3", dict(n_steps=3)),
    "dqn-n-step": ("dqn", dict(n_steps=3)),
}


@pytest.mark.parametrize("branch", sorted(BRANCHES))
def test_none_trains_exactly_like_sb3_in_other_branches(branch: str) -> None:
    name, extra = BRANCHES[branch]
    algo = name.split("-")[0]
    continuous = algo in ("sac", "td3") or name.endswith("continuous")
    kwargs = {**_kwargs(algo), **extra}
    ours = ALGOS[algo]("CnnPolicy", DotEnv(continuous=continuous), aux="none", **kwargs)
    ours.learn(200)
    parent = PARENTS[algo]("CnnPolicy", DotEnv(continuous=continuous), **kwargs)
    parent.learn(200)
    for key, value in parent.policy.state_dict().items():
        assert torch.equal(ours.policy.state_dict()[key], value), f"{branch}: {key} differs from SB3"
