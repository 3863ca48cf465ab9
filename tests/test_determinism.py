"""Same seed on CPU, same learning curve: CurlPPO and CurlSAC with the CURL loss and augmentation.

Also: each run records what decides its numbers, down to the commit its code came from.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import torch
from stable_baselines3.common.logger import KVWriter, Logger
from tiny_envs import DotEnv

import curl_rl
from curl_rl import CurlEncoder, CurlPPO, CurlSAC
from curl_rl.experiment.determinism import source_commit, versions

SMALL = dict(features_extractor_class=CurlEncoder, features_extractor_kwargs=dict(num_layers=2, num_filters=8))


class Recorder(KVWriter):
    """Keeps every dumped ``(step, values)``; wall-clock entries are left out."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, dict[str, Any]]] = []

    def write(self, key_values: dict[str, Any], key_excluded: dict[str, Any], step: int = 0) -> None:
        self.rows.append((step, {k: v for k, v in key_values.items() if not k.startswith("time/")}))

    def close(self) -> None:
        pass


def train(algo: str, seed: int) -> tuple[dict[str, torch.Tensor], list[tuple[int, dict[str, Any]]]]:
    if algo == "ppo":
        model: Any = CurlPPO(
            "CnnPolicy",
            DotEnv(),
            aux="curl",
            seed=seed,
            n_steps=32,
            batch_size=16,
            n_epochs=2,
            policy_kwargs=SMALL,
            device="cpu",
        )
        steps = 96
    else:
        model = CurlSAC(
            "CnnPolicy",
            DotEnv(continuous=True),
            aux="curl",
            seed=seed,
            buffer_size=200,
            learning_starts=16,
            batch_size=16,
            policy_kwargs=SMALL,
            device="cpu",
        )
        steps = 48
    recorder = Recorder()
    model.set_logger(Logger(folder=None, output_formats=[recorder]))
    model.learn(steps, log_interval=1)
    state = {**model.policy.state_dict(), **{f"aux.{k}": v for k, v in model.aux_head.state_dict().items()}}
    # where the augmentation stream stands after training (it is drawn from the head's generator)
    state["augmentation_rng"] = model.aux_head.generator.get_state()
    return {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}, recorder.rows


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_same_seed_same_curve_different_seed_different(algo: str) -> None:
    params_a, log_a = train(algo, seed=7)
    params_b, log_b = train(algo, seed=7)
    params_c, log_c = train(algo, seed=8)

    assert all(torch.equal(params_a[k], params_b[k]) for k in params_a)
    assert log_a == log_b
    losses = [row["aux/loss"] for _, row in log_a if "aux/loss" in row]
    assert losses, "the auxiliary loss was never logged"
    assert any(not torch.equal(params_a[k], params_c[k]) for k in params_a)
    assert [row.get("aux/loss") for _, row in log_a] != [row.get("aux/loss") for _, row in log_c]


def test_configure_determinism_toggles_torch_flags() -> None:
    from curl_rl.experiment.determinism import configure_determinism

    try:
        configure_determinism(True, warn_only=True)
        assert torch.are_deterministic_algorithms_enabled()
        assert torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
    finally:
        configure_determinism(False)
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_runs_record_the_commit_their_code_came_from(tmp_path: Path) -> None:
    """A study that grows across sessions mixes commits; each run's versions say which one it ran."""
    assert source_commit(tmp_path) == "unknown (not a git checkout)"
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "code.py").write_text("x = 1\n")
    for command in (["init", "-q"], ["add", "-A"], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c"]):
        subprocess.run(["git", *command], cwd=tmp_path, check=True)
    head = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=tmp_path, check=True, capture_output=True, text=True
    ).stdout.strip()
    assert source_commit(package) == head
    (package / "code.py").write_text("x = 2\n")
    source_commit.cache_clear()
    assert source_commit(package) == head + "+modified"
    (tmp_path / "untracked.py").write_text("")  # not part of the commit's code: not a modification
    (package / "code.py").write_text("x = 1\n")
    source_commit.cache_clear()
    assert source_commit(package) == head
    assert versions()["curl_rl_source"] == source_commit(Path(curl_rl.__file__).parent)
