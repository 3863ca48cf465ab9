"""Our copies of SB3's ``train()`` differ from upstream only in lines marked ``# curl_rl``.

A new SB3 release that changes one of these methods fails here, naming the lines, instead of
silently training differently (the copies follow the SB3 version pinned in pyproject.toml).
"""

from __future__ import annotations

import difflib
import inspect
import re
import textwrap

import pytest
import stable_baselines3 as sb3

from curl_rl import ALGOS

MARK = "curl_rl"


def _lines(method: object) -> list[str]:
    # type-checker pragmas are not behaviour: SB3's and ours differ with the two packages' checks
    lines = textwrap.dedent(inspect.getsource(method)).splitlines()  # type: ignore[arg-type]
    return [re.sub(r"\s*# type: ignore(\[[^\]]*\])?", "", line).rstrip() for line in lines]


def unmarked_drift(upstream: list[str], ours: list[str]) -> list[str]:
    """Hunks of the diff that hold no line marked ``# curl_rl`` (each hunk as text)."""
    bad = []
    matcher = difflib.SequenceMatcher(a=upstream, b=ours, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        if not any(MARK in line for line in ours[j1:j2]):
            removed = [f"- {line}" for line in upstream[i1:i2]]
            added = [f"+ {line}" for line in ours[j1:j2]]
            bad.append("\n".join(removed + added))
    return bad


def test_the_pinned_sb3_is_installed() -> None:
    major, minor = (int(x) for x in sb3.__version__.split(".")[:2])
    assert (major, minor) == (2, 9), f"the train() copies follow SB3 2.9; installed {sb3.__version__}"


@pytest.mark.parametrize("algo", sorted(ALGOS))
def test_train_differs_from_upstream_only_in_marked_lines(algo: str) -> None:
    ours = ALGOS[algo]
    upstream = next(base for base in ours.__mro__ if base.__module__.startswith("stable_baselines3."))
    drift = unmarked_drift(_lines(upstream.train), _lines(ours.train))
    assert not drift, f"{ours.__name__}.train differs from {upstream.__name__}.train outside # curl_rl lines:\n" + (
        "\n---\n".join(drift)
    )


def test_the_check_catches_an_unmarked_change() -> None:
    upstream = ["a = 1", "b = a + 1", "return b"]
    assert unmarked_drift(upstream, ["a = 1", "b = a + 2", "return b"])  # changed, unmarked
    assert not unmarked_drift(upstream, ["a = 1", "b = a + 2  # curl_rl", "return b"])
    assert unmarked_drift(upstream, ["a = 1", "return b"])  # an upstream line dropped silently


def test_pyproject_pins_the_sb3_the_copies_follow() -> None:
    # the copies read replay_data.discounts (SB3 >= 2.7): a range admitting 2.6 crashed CurlSAC and
    # CurlDQN at their first update; the pin is the minor version the copies were diffed against
    from pathlib import Path

    import tomllib
    from packaging.requirements import Requirement

    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    req = next(Requirement(d) for d in pyproject["project"]["dependencies"] if d.startswith("stable-baselines3"))
    for version, allowed in [("2.6.0", False), ("2.8.0", False), ("2.9.2", True), ("2.10.0", False), ("3.0.0", False)]:
        assert req.specifier.contains(version) == allowed, (version, str(req.specifier))
