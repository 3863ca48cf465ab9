"""Tests of curl_rl.results.summary / curl_rl.results.plotting on synthetic experiment folders."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from curl_rl.results.stats import iqm, probability_of_improvement_ci, stratified_bootstrap_ci
from curl_rl.results.summary import load_experiment, order_arms, read_numeric_csv, summarize, write_summary

N_BOOT = 200
STEPS = [0, 1000, 2000, 3000]
EVAL_HEADER = "timesteps,mean_return,std_return,n_episodes\n"


def _make_run(
    root: Path,
    arm: str,
    seed: int,
    status: str = "done",
    returns: list[float] | None = None,
    evaluations_text: str | None = None,
    aux_text: str | None = None,
    error: str | None = None,
    steps_per_s: float = 100.0,
    wall_time_s: float = 60.0,
) -> Path:
    run = root / arm / f"seed{seed}"
    run.mkdir(parents=True)
    info = {
        "status": status,
        "error": error,
        "arm": arm,
        "seed": seed,
        "algo": "SAC",
        "env": "PixelPendulum-v0",
        "total_timesteps": 3000,
        "env_steps": 3000,
        "wall_time_s": wall_time_s,
        "steps_per_s": steps_per_s,
    }
    (run / "status.json").write_text(json.dumps(info))
    if evaluations_text is None and returns is not None:
        evaluations_text = EVAL_HEADER + "".join(f"{t},{r},1.0,5\n" for t, r in zip(STEPS, returns))
    if evaluations_text is not None:
        (run / "evaluations.csv").write_text(evaluations_text)
    if aux_text is not None:
        (run / "aux_metrics.csv").write_text(aux_text)
    return run


def _auc(returns: list[float], steps: list[float] = STEPS) -> float:
    return float(np.trapezoid(returns, steps) / (steps[-1] - steps[0]))


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    """Two arms x three seeds: curl/seed2 failed mid-write, curl/seed1 and none/seed2 hold cut rows."""
    root = tmp_path / "exp1"
    _make_run(root, "none", 0, returns=[0, 2, 4, 6], aux_text="timesteps,aux/probe_r2\n1000,0.1\n3000,0.3\n")
    _make_run(root, "none", 1, returns=[0, 1, 3, 5], steps_per_s=110.0, wall_time_s=70.0)
    # The aux file's last row was cut mid-line: "30" has one field for a two-column header.
    _make_run(
        root,
        "none",
        2,
        returns=[0, 3, 5, 9],
        aux_text="timesteps,aux/probe_r2\n1000,0.2\n30",
        steps_per_s=120.0,
        wall_time_s=80.0,
    )
    curl_aux = (
        "timesteps,aux/loss,aux/accuracy,aux/pos_neg_gap,aux/embedding_std,aux/probe_r2\n"
        "1000,2.0,0.5,0.1,0.9,\n2000,1.5,0.7,0.3,0.8,{p2}\n3000,1.0,0.9,0.5,0.7,{p3}\n"
    )
    _make_run(root, "curl", 0, returns=[0, 4, 7, 9], aux_text=curl_aux.format(p2=0.4, p3=""), steps_per_s=80.0)
    # A row cut by a killed writer and followed by a resumed run's rows: the 1500 row must be skipped.
    _make_run(
        root,
        "curl",
        1,
        evaluations_text=EVAL_HEADER + "0,0,0,5\n1000,5,1,5\n1500,6.2\n2000,6,1,5\n3000,10,1,5\n",
        aux_text=curl_aux.format(p2=0.5, p3=0.6),
        steps_per_s=90.0,
        wall_time_s=50.0,
    )
    _make_run(
        root,
        "curl",
        2,
        status="failed",
        evaluations_text=EVAL_HEADER + "0,0,0,5\n1000,2,1,5\n20",
        error="Traceback (most recent call last):\n  File x\nRuntimeError: boom",
        steps_per_s=70.0,
    )
    return root


def test_summarize_numbers(experiment: Path) -> None:
    s = summarize(experiment, baseline="none", n_boot=N_BOOT, seed=3)
    assert s["arm_order"] == ["none", "curl"]
    assert s["env"] == "PixelPendulum-v0" and s["algo"] == "SAC"
    none, curl = s["arms"]["none"], s["arms"]["curl"]

    assert (none["n_done"], none["n_failed"]) == (3, 0)
    assert (curl["n_done"], curl["n_failed"]) == (2, 1)
    assert curl["seeds"] == {"done": [0, 1], "failed": [2], "running": [], "other": []}

    none_finals = np.array([6.0, 5.0, 9.0])
    curl_finals = np.array([9.0, 10.0])
    assert none["final_return"]["mean"] == pytest.approx(20 / 3)
    assert none["final_return"]["std"] == pytest.approx(np.std(none_finals, ddof=1))
    assert curl["final_return"]["mean"] == pytest.approx(9.5)
    assert curl["final_return"]["std"] == pytest.approx(math.sqrt(0.5))

    # n=3: int(0.75)=0 values trimmed, IQM = mean. n=2: likewise.
    assert none["iqm"]["point"] == pytest.approx(20 / 3)
    assert curl["iqm"]["point"] == pytest.approx(9.5)
    _, low, high = stratified_bootstrap_ci(none_finals, iqm, n_boot=N_BOOT, seed=3)
    assert (none["iqm"]["low"], none["iqm"]["high"]) == pytest.approx((low, high))
    assert 5.0 <= none["iqm"]["low"] <= none["iqm"]["high"] <= 9.0

    none_aucs = [_auc([0, 2, 4, 6]), _auc([0, 1, 3, 5]), _auc([0, 3, 5, 9])]
    curl_aucs = [_auc([0, 4, 7, 9]), _auc([0, 5, 6, 10])]  # the cut 1500 row is not in curl/seed1
    assert none["auc"]["mean"] == pytest.approx(np.mean(none_aucs))
    assert curl["auc"]["mean"] == pytest.approx(np.mean(curl_aucs))
    assert [r["auc"] for r in curl["runs"]] == pytest.approx([*curl_aucs, None])  # type: ignore[list-item]

    # P(curl > none) by hand: 9 vs (6, 5, 9) = 2 wins + 1 tie, 10 vs all = 3 wins -> 5.5 / 6.
    poi = curl["probability_of_improvement"]
    assert poi["point"] == pytest.approx(5.5 / 6)
    assert poi["baseline"] == "none"
    assert poi["seeds_match"] is False
    ci = probability_of_improvement_ci(curl_finals, none_finals, n_boot=N_BOOT, seed=3)
    assert (poi["low"], poi["high"]) == pytest.approx(ci[1:])
    assert none["probability_of_improvement"] is None  # the baseline itself

    # Last *logged* probe: curl/seed0 left the final cell empty, so its 2000-step value counts.
    assert curl["probe_r2"] == {"mean": pytest.approx(0.5), "n": 2}
    assert none["probe_r2"] == {"mean": pytest.approx(0.25), "n": 2}  # seed2's cut 3000 row skipped
    assert curl["final_aux_metrics"]["aux/accuracy"]["mean"] == pytest.approx(0.9)

    assert none["steps_per_s"] == pytest.approx(110.0)
    assert curl["steps_per_s"] == pytest.approx(85.0)  # the failed run's 70 is excluded
    assert none["wall_time_s"] == pytest.approx(70.0)

    assert s["failed_runs"] == [
        {
            "arm": "curl",
            "seed": 2,
            "error": "Traceback (most recent call last):\n  File x\nRuntimeError: boom",
            "run_dir": str(experiment / "curl" / "seed2"),
        }
    ]
    notes = "\n".join(s["notes"])
    assert "different sets of finished seeds" in notes
    assert "curl/seed1: skipped 1 malformed row(s) in evaluations.csv" in notes
    assert "none/seed2: skipped 1 malformed row(s) in aux_metrics.csv" in notes


def test_write_summary_files(experiment: Path) -> None:
    result = write_summary(experiment, n_boot=N_BOOT, seed=0)

    def no_nan(token: str) -> Any:
        raise AssertionError(f"non-strict JSON constant {token}")

    on_disk = json.loads((experiment / "summary.json").read_text(), parse_constant=no_nan)
    assert on_disk == result
    assert on_disk["figures"] == {"learning_curves": "learning_curves.png", "aux_metrics": "aux_metrics.png"}

    md = (experiment / "summary.md").read_text()
    for arm in ("none", "curl"):
        assert f"| `{arm}` |" in md
    assert "RuntimeError: boom" in md
    assert "P(arm > none)" in md
    assert "![Learning curves](learning_curves.png)" in md

    for name in ("learning_curves.png", "aux_metrics.png"):
        data = (experiment / name).read_bytes()
        assert data.startswith(b"\x89PNG") and len(data) > 10_000


def test_unfinished_arms_and_unreadable_status(tmp_path: Path) -> None:
    root = tmp_path / "exp2"
    _make_run(root, "none", 0, returns=[0, 1, 2, 3])
    _make_run(root, "aug", 0, status="running", returns=[0, 1, 2, 3])
    _make_run(root, "spr", 0, status="failed", error=None)
    run = _make_run(root, "atc", 1, returns=[0, 1, 2, 3])
    (run / "status.json").write_text('{"status": "do')  # half-written
    (root / "notes").mkdir()  # a stray folder without seed runs is ignored

    result = write_summary(root, n_boot=20, seed=0)
    assert result["arm_order"] == ["none", "aug", "atc", "spr"]
    for arm in ("aug", "atc", "spr"):
        stats = result["arms"][arm]
        assert stats["n_done"] == 0
        assert stats["final_return"] is None and stats["iqm"] is None
    assert result["arms"]["atc"]["runs"][0]["status"] == "unknown"
    assert result["arms"]["none"]["final_return"]["std"] is None  # one seed
    md = (root / "summary.md").read_text()
    aug_row = next(line for line in md.splitlines() if line.startswith("| `aug`"))
    assert "\N{EM DASH}" in aug_row and "+1 running" in aug_row
    assert "status.json missing or unreadable" in md
    assert result["figures"]["aux_metrics"] is None  # nothing logged
    assert (root / "learning_curves.png").stat().st_size > 0


def test_missing_baseline_and_empty_experiment(tmp_path: Path) -> None:
    root = tmp_path / "exp3"
    _make_run(root, "curl", 0, returns=[0, 1, 2, 3])
    s = summarize(root, baseline="none", n_boot=20)
    assert s["arms"]["curl"]["probability_of_improvement"] is None
    assert any("baseline arm 'none' not found" in n for n in s["notes"])

    empty = tmp_path / "empty"
    empty.mkdir()
    result = write_summary(empty, n_boot=20)
    assert result["arms"] == {} and result["figures"]["learning_curves"] is None
    assert "No runs found." in (empty / "summary.md").read_text()
    with pytest.raises(FileNotFoundError):
        summarize(tmp_path / "does-not-exist")


def test_order_arms() -> None:
    assert order_arms(["triplet", "curl+future", "none", "aug", "atc", "curl", "aug"]) == [
        "none",
        "aug",
        "curl",
        "curl+future",
        "atc",
        "triplet",
    ]


def test_read_numeric_csv_skips_garbage(tmp_path: Path) -> None:
    path = tmp_path / "evaluations.csv"
    path.write_bytes(
        EVAL_HEADER.encode() + b"0,1.5,0.1,5\n\x00\x00\x00\x00\n1000,abc,0.1,5\n2000,,0.1,5\n3000,2.5,,5\r\n4000,3."
    )
    data = read_numeric_csv(path, required=("timesteps", "mean_return"))
    np.testing.assert_array_equal(data.columns["timesteps"], [0, 3000])
    assert math.isnan(data.columns["std_return"][1])
    assert data.n_skipped == 4
    assert read_numeric_csv(tmp_path / "nope.csv").problem == "nope.csv missing"
    (tmp_path / "empty.csv").write_text("")
    assert read_numeric_csv(tmp_path / "empty.csv").problem is not None


def test_final_return_uses_last_timestep_not_last_row(tmp_path: Path) -> None:
    root = tmp_path / "exp4"
    _make_run(root, "none", 0, evaluations_text=EVAL_HEADER + "2000,7,0,5\n0,0,0,5\n1000,3,0,5\n")
    (run,) = load_experiment(root)
    assert run.final_return == 7.0


def test_fewer_than_three_seeds_are_flagged(tmp_path: Path) -> None:
    root = tmp_path / "few"
    for seed in (0, 1):
        _make_run(root, "none", seed, returns=[0, 1, 2, 3])
        _make_run(root, "curl", seed, returns=[0, 2, 4, 6])
    result = write_summary(root, n_boot=20, seed=0)
    flagged = [n for n in result["notes"] if "fewer than 3 finished seeds" in n]
    assert flagged and "curl" in flagged[0] and "at least 5 seeds" in flagged[0]
    assert "fewer than 3 finished seeds" in (root / "summary.md").read_text()
    for seed in (2, 3):
        _make_run(root, "none", seed, returns=[0, 1, 2, 3])
        _make_run(root, "curl", seed, returns=[0, 2, 4, 6])
    assert not [n for n in write_summary(root, n_boot=20, seed=0)["notes"] if "fewer than" in n]


def test_a_gap_in_an_evaluation_curve_is_noted(tmp_path: Path) -> None:
    root = tmp_path / "gaps"
    _make_run(root, "none", 0, evaluations_text=EVAL_HEADER + "".join(f"{t},1,0,5\n" for t in (0, 1024, 2048, 3072)))
    # the row at 2048 was lost; a short last spacing (the final evaluation off the schedule) is not a gap
    _make_run(root, "curl", 0, evaluations_text=EVAL_HEADER + "".join(f"{t},1,0,5\n" for t in (0, 1024, 3072, 3500)))
    _make_run(root, "curl", 1, evaluations_text=EVAL_HEADER + "".join(f"{t},1,0,5\n" for t in (0, 1024, 2048, 2500)))
    notes = [n for n in summarize(root, n_boot=20)["notes"] if "gap" in n]
    assert notes == [
        "curl/seed0: its evaluation curve has a gap (1024 \N{RIGHTWARDS ARROW} 3072, evaluations every ~1024 steps "
        "elsewhere); its AUC interpolates across it"
    ]


def test_arms_get_distinct_line_styles_so_a_hidden_curve_still_shows(tmp_path: Path) -> None:
    from curl_rl.results.plotting import arm_styles, plot_aux_metrics

    styles = arm_styles(["none", "aug", "curl", "curl+future", "atc"])
    assert styles["none"] == "--" and styles["aug"] == ":" and styles["curl"] != styles["curl+future"]
    assert len({styles["none"], styles["aug"], styles["curl"]}) == 3
    # equal values in two arms: both lines are drawn, each in its own style
    series = (np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 1.0]))
    path = plot_aux_metrics({"aux/loss": {"none": [series], "curl": [series]}}, tmp_path / "aux.png")
    assert path.stat().st_size > 1000


def test_a_collapsed_run_is_marked(tmp_path: Path) -> None:
    root = tmp_path / "collapse"
    aux = "timesteps,aux/loss,aux/embedding_std\n1000,3.0,0.2\n2000,3.46,0.00001\n"
    _make_run(root, "curl", 0, returns=[0, 1, 2, 3], aux_text=aux)
    _make_run(root, "curl", 1, returns=[0, 1, 2, 3], aux_text="timesteps,aux/loss,aux/embedding_std\n2000,2.0,0.3\n")
    result = write_summary(root, n_boot=20)
    assert result["collapsed_runs"] == [{"arm": "curl", "seed": 0, "embedding_std": 1e-05}]
    assert "curl/seed0: its representation collapsed" in (root / "summary.md").read_text()


def test_the_collapse_warning_fits_the_loss_family() -> None:
    from curl_rl.algos.aux_mixin import collapse_message
    from curl_rl.auxiliary.config import resolve_aux_config

    infonce = collapse_message(resolve_aux_config("curl"))
    assert "ln(batch size)" in infonce and "did not cause it" in infonce and "use a contrastive" not in infonce
    assert "margin" in collapse_message(resolve_aux_config("triplet"))
