"""An experiment's statistics per arm, as the JSON-ready dict that ``summary.json`` holds.

Definitions used throughout (also written into ``summary.json`` under ``"definitions"``):

* **final return** of a run: ``mean_return`` of its last evaluation (largest ``timesteps``) in
  ``evaluations.csv``, i.e. the deterministic-policy return at the end of training, not a best-so-far.
* **AUC** of a run: trapezoid area under its evaluation curve divided by the evaluated step span,
  i.e. the average evaluation return over training (:func:`curl_rl.results.stats.auc`).
* **IQM**: interquartile mean of the arm's final returns over its seeds (:func:`curl_rl.results.stats.iqm`).
* **P(arm > baseline)**: probability that a random finished seed of the arm has a higher final
  return than a random finished seed of the baseline, ties counting half.

Only runs whose ``status.json`` says ``"done"`` and that have at least one readable evaluation enter
the statistics; running, failed and unreadable runs are listed but excluded. Each arm's statistics
use that arm's own finished seeds, so arms can have different seed sets (a note says so).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from curl_rl.results.run_folders import PROBE_TAG, FloatArray, RunRecord, load_experiment, order_arms
from curl_rl.results.stats import (
    auc,
    iqm,
    probability_of_improvement_ci,
    stratified_bootstrap_ci,
)

__all__ = [
    "DEFINITIONS",
    "MIN_SEEDS_FOR_CI",
    "MIN_SEEDS_FOR_CLAIM",
    "SCHEMA_VERSION",
    "joined_info",
    "jsonable",
    "summarize",
    "summarize_runs",
]

SCHEMA_VERSION = 1
#: a run whose last logged embedding spread is below this is marked collapsed (AuxConfig's default)
COLLAPSE_STD = 1e-4
COLLAPSE_TAG = "aux/embedding_std"
#: below this many finished seeds an arm's bootstrap CIs and P values are flagged
MIN_SEEDS_FOR_CI = 3
#: the fewest seeds per arm a comparison should have before it claims anything
MIN_SEEDS_FOR_CLAIM = 5

DEFINITIONS: dict[str, str] = {
    "final_return": "mean_return of the run's last evaluation (largest timesteps) in evaluations.csv",
    "auc": "trapezoid area under the evaluation curve / its step span (average return over training)",
    "iqm": "interquartile mean of the arm's final returns (scipy.stats.trim_mean(x, 0.25) semantics)",
    "ci": "percentile interval of a stratified bootstrap over the arm's finished seeds",
    "probability_of_improvement": (
        "P(final return of an arm seed > that of a baseline seed) + 0.5 P(equal), over all seed pairs "
        "(Mann-Whitney U / (n m)); unpaired, each arm uses its own finished seeds"
    ),
    "probe_r2": "last logged aux/probe_r2 of each finished run, averaged over those that logged it",
    "final_aux_metrics": "last logged value of each aux metric per finished run, averaged over runs",
    "std": "sample standard deviation over seeds (ddof=1); undefined (null) with a single seed",
}


def _finite_mean(values: Iterable[float]) -> float | None:
    vals = [v for v in values if math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def _last_value(series: tuple[FloatArray, FloatArray]) -> float:
    """Value at the largest timestep (the later row wins on a tie)."""
    t, v = series
    return float(v[::-1][int(np.argmax(t[::-1]))])


def _ci(point: float, low: float, high: float) -> dict[str, float]:
    return {"point": point, "low": low, "high": high}


def joined_info(runs: Sequence[RunRecord], key: str) -> tuple[str | None, bool]:
    """Distinct non-empty ``status.json`` values of ``key`` joined, and whether there were several."""
    values = sorted({str(r.info[key]) for r in runs if r.info.get(key) not in (None, "")})
    return (", ".join(values) if values else None), len(values) > 1


def _arm_summary(
    arm: str,
    runs: Sequence[RunRecord],
    baseline_finals: FloatArray | None,
    baseline_seeds: set[int] | None,
    baseline: str,
    n_boot: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    used = [r for r in runs if r.usable]
    finals = np.array([r.final_return for r in used], dtype=np.float64)
    aucs = np.array([auc(r.eval_timesteps, r.eval_returns) for r in used], dtype=np.float64)
    seeds: dict[str, list[int]] = {"done": [], "failed": [], "running": [], "other": []}
    for r in runs:
        if r.usable:
            seeds["done"].append(r.seed)
        elif r.status in ("failed", "running"):
            seeds[r.status].append(r.seed)
        else:
            seeds["other"].append(r.seed)

    out: dict[str, Any] = {
        "arm": arm,
        "n_runs": len(runs),
        "n_done": len(seeds["done"]),
        "n_failed": len(seeds["failed"]),
        "n_running": len(seeds["running"]),
        "n_other": len(seeds["other"]),
        "seeds": seeds,
        "final_return": None,
        "iqm": None,
        "auc": None,
        "probability_of_improvement": None,
        "probe_r2": None,
        "final_aux_metrics": {},
        "steps_per_s": _finite_mean(r.info_float("steps_per_s") for r in used),
        "wall_time_s": _finite_mean(r.info_float("wall_time_s") for r in used),
    }
    if used:
        # The same seed for every arm and statistic keeps each number reproducible on its own
        # (it does not depend on which other arms exist); marginal CIs do not care about correlation.
        out["final_return"] = {
            "mean": float(finals.mean()),
            "std": float(finals.std(ddof=1)) if finals.size > 1 else None,
            "min": float(finals.min()),
            "max": float(finals.max()),
        }
        out["iqm"] = _ci(*stratified_bootstrap_ci(finals, iqm, n_boot=n_boot, confidence=confidence, seed=seed))
        auc_point, auc_low, auc_high = stratified_bootstrap_ci(
            aucs, np.mean, n_boot=n_boot, confidence=confidence, seed=seed
        )
        out["auc"] = {"mean": auc_point, "low": auc_low, "high": auc_high}
        if arm != baseline and baseline_finals is not None and baseline_finals.size:
            poi = probability_of_improvement_ci(
                finals, baseline_finals, n_boot=n_boot, confidence=confidence, seed=seed
            )
            out["probability_of_improvement"] = {
                "baseline": baseline,
                **_ci(*poi),
                "n": int(finals.size),
                "n_baseline": int(baseline_finals.size),
                "seeds_match": set(seeds["done"]) == baseline_seeds,
            }
        tags = sorted({tag for r in used for tag in r.aux})
        for tag in tags:
            lasts = np.array([_last_value(r.aux[tag]) for r in used if tag in r.aux])
            out["final_aux_metrics"][tag] = {
                "mean": float(lasts.mean()),
                "std": float(lasts.std(ddof=1)) if lasts.size > 1 else None,
                "n": int(lasts.size),
            }
        if PROBE_TAG in out["final_aux_metrics"]:
            probe = out["final_aux_metrics"][PROBE_TAG]
            out["probe_r2"] = {"mean": probe["mean"], "n": probe["n"]}

    run_auc = {id(r): float(a) for r, a in zip(used, aucs)}
    out["runs"] = [
        {
            "seed": r.seed,
            "status": r.status,
            "used_in_stats": r.usable,
            "excluded_reason": r.excluded_reason,
            "final_return": r.final_return if r.has_evals else None,
            "final_timesteps": r.final_timesteps if r.has_evals else None,
            "auc": run_auc.get(id(r)),
            "n_evals": int(r.eval_timesteps.size),
            "env_steps": r.info.get("env_steps"),
            "wall_time_s": r.info.get("wall_time_s"),
            "steps_per_s": r.info.get("steps_per_s"),
            "error": r.error,
            "run_dir": str(r.run_dir),
            "problems": list(r.problems),
        }
        for r in runs
    ]
    return out


def curve_gap(timesteps: FloatArray) -> tuple[float, float, float] | None:
    """The widest gap of an evaluation curve, if it is missing at least one scheduled evaluation.

    The schedule is read from the curve itself: the most common spacing between its evaluations.
    The last spacing may be shorter (the final evaluation falls at the end of training, not on the
    schedule), so only spacings longer than 1.5 scheduled steps count as gaps.

    :param timesteps: the run's evaluation steps.
    :return: ``(from, to, usual spacing)`` of the widest gap, or None.
    """
    steps = np.unique(np.asarray(timesteps, dtype=np.float64))
    if steps.size < 3:
        return None
    diffs = np.diff(steps)
    values, counts = np.unique(diffs[:-1], return_counts=True)  # the last spacing may be off-schedule
    usual = float(values[np.argmax(counts)])
    widest = int(np.argmax(diffs))
    if usual <= 0 or diffs[widest] <= 1.5 * usual:
        return None
    return float(steps[widest]), float(steps[widest + 1]), usual


def summarize_runs(
    runs: Sequence[RunRecord],
    experiment_dir: Path,
    baseline: str,
    n_boot: int,
    confidence: float,
    seed: int,
) -> dict[str, Any]:
    arms = order_arms(r.arm for r in runs)
    by_arm = {arm: [r for r in runs if r.arm == arm] for arm in arms}
    notes: list[str] = []

    base_used = [r for r in by_arm.get(baseline, []) if r.usable]
    baseline_finals = np.array([r.final_return for r in base_used], dtype=np.float64) if base_used else None
    baseline_seeds = {r.seed for r in base_used} if base_used else None
    if not runs:
        notes.append("no run folders (<arm>/seed<N>/) found")
    elif baseline not in by_arm:
        notes.append(f"baseline arm {baseline!r} not found: no probability of improvement computed")
    elif not base_used:
        notes.append(f"baseline arm {baseline!r} has no finished seed: no probability of improvement computed")

    arm_stats = {
        arm: _arm_summary(arm, by_arm[arm], baseline_finals, baseline_seeds, baseline, n_boot, confidence, seed)
        for arm in arms
    }

    done_sets = {arm: tuple(s["seeds"]["done"]) for arm, s in arm_stats.items() if s["n_done"]}
    if len(set(done_sets.values())) > 1:
        listing = "; ".join(f"{arm}: {list(s)}" for arm, s in done_sets.items())
        notes.append(
            f"arms have different sets of finished seeds ({listing}); each arm's statistics use its own "
            "seeds and the probability of improvement compares unpaired runs"
        )
    for arm, s in arm_stats.items():
        poi = s["probability_of_improvement"]
        if poi is not None and not poi["seeds_match"]:
            notes.append(
                f"\N{DAGGER} P({arm} > {baseline}) compares different seed sets "
                f"({s['seeds']['done']} vs {sorted(baseline_seeds or ())})"
            )
    few = sorted(arm for arm, s in arm_stats.items() if 0 < s["n_done"] < MIN_SEEDS_FOR_CI)
    if few:
        # a bootstrap over 1-2 seeds prints tight-looking intervals that mean nothing
        notes.append(
            f"fewer than {MIN_SEEDS_FOR_CI} finished seeds in {', '.join(few)}: the confidence intervals and "
            f"P values there are not meaningful; run at least {MIN_SEEDS_FOR_CLAIM} seeds per arm before a claim"
        )
    final_steps = sorted({r.final_timesteps for r in runs if r.usable})
    if len(final_steps) > 1:
        notes.append(
            "finished runs end at different timesteps "
            f"({', '.join(f'{t:g}' for t in final_steps)}): final returns compare different training budgets"
        )
    env, env_mixed = joined_info(runs, "env")
    algo, algo_mixed = joined_info(runs, "algo")
    if env_mixed:
        notes.append(f"runs use different environments: {env}")
    if algo_mixed:
        notes.append(f"runs use different algorithms: {algo}")
    collapsed = []
    for r in runs:
        notes.extend(f"{r.name}: {p}" for p in r.problems)
        spread = _last_value(r.aux[COLLAPSE_TAG]) if r.usable and COLLAPSE_TAG in r.aux else math.nan
        if math.isfinite(spread) and spread < COLLAPSE_STD:
            collapsed.append({"arm": r.arm, "seed": r.seed, "embedding_std": spread})
            notes.append(
                f"{r.name}: its representation collapsed (final {COLLAPSE_TAG} {spread:.2g} < {COLLAPSE_STD:g}: "
                "every frame maps to nearly one vector); its return is that of a blind encoder"
            )
        gap = curve_gap(r.eval_timesteps) if r.usable else None
        if gap is not None:
            notes.append(
                f"{r.name}: its evaluation curve has a gap ({gap[0]:g} \N{RIGHTWARDS ARROW} {gap[1]:g}, evaluations "
                f"every ~{gap[2]:g} steps elsewhere); its AUC interpolates across it"
            )

    return {
        "schema_version": SCHEMA_VERSION,
        "experiment": experiment_dir.resolve().name,
        "experiment_dir": str(experiment_dir),
        "env": env,
        "algo": algo,
        "baseline": baseline,
        "confidence": confidence,
        "n_boot": n_boot,
        "seed": seed,
        "definitions": dict(DEFINITIONS),
        "arm_order": arms,
        "arms": arm_stats,
        "collapsed_runs": collapsed,
        "failed_runs": [
            {"arm": r.arm, "seed": r.seed, "error": r.error, "run_dir": str(r.run_dir)}
            for r in runs
            if r.status == "failed"
        ],
        "excluded_runs": [
            {
                "arm": r.arm,
                "seed": r.seed,
                "status": r.status,
                "reason": r.excluded_reason,
                "run_dir": str(r.run_dir),
            }
            for r in runs
            if not r.usable and r.status != "failed"
        ],
        "notes": notes,
        "figures": {"learning_curves": None, "aux_metrics": None},
    }


def summarize(
    experiment_dir: str | Path,
    baseline: str = "none",
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
) -> dict[str, Any]:
    """Statistics of every arm of an experiment, as a JSON-ready dict (no files written).

    See the module docstring for the definitions. Non-finite numbers are returned as None.

    :param experiment_dir: ``runs/<experiment>``.
    :param baseline: arm the probability of improvement is measured against.
    :param n_boot: bootstrap replicates for every confidence interval.
    :param seed: seed of the bootstrap resampling (the same for every statistic).
    :param confidence: coverage of the intervals.
    :return: the summary dict (``summary.json``'s content; ``"figures"`` entries are None).
    """
    root = Path(experiment_dir)
    runs = load_experiment(root)
    return jsonable(summarize_runs(runs, root, baseline, n_boot, confidence, seed))


def jsonable(obj: Any) -> Any:
    """Strict-JSON copy: numpy scalars to Python, NaN/inf to None, paths to str."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [jsonable(v) for v in obj]
    if isinstance(obj, bool | np.bool_):
        return bool(obj)
    if isinstance(obj, int | np.integer):
        return int(obj)
    if isinstance(obj, float | np.floating):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, Path):
        return str(obj)
    return obj
