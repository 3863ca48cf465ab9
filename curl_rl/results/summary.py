"""Summaries of an experiment folder: ``summary.json``, ``summary.md`` and the figures.

Layout read (written by the training runner)::

    runs/<experiment>/<arm>/seed<N>/status.json
                                    evaluations.csv   timesteps,mean_return,std_return,n_episodes
                                    aux_metrics.csv   timesteps,aux/loss,aux/accuracy,... (optional)

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

All readers tolerate partially written files (a process killed mid-line, a half-written
``status.json``): bad rows are skipped and counted in the notes, nothing raises.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from curl_rl.results.stats import (
    auc,
    iqm,
    probability_of_improvement_ci,
    stratified_bootstrap_ci,
)

__all__ = [
    "ARM_ORDER",
    "RunRecord",
    "load_experiment",
    "order_arms",
    "read_numeric_csv",
    "render_markdown",
    "summarize",
    "write_figures",
    "write_summary",
]

FloatArray = NDArray[np.float64]

#: Arms shown first, in this order; any other arm follows alphabetically.
ARM_ORDER: tuple[str, ...] = ("none", "aug", "curl", "curl+future")

SCHEMA_VERSION = 1
_SEED_DIR = re.compile(r"^seed(\d+)$")
_EVAL_REQUIRED = ("timesteps", "mean_return")
_PROBE_TAG = "aux/probe_r2"
_MISSING = "\N{EM DASH}"

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


@dataclass
class CsvData:
    """Numeric columns of a CSV file read by :func:`read_numeric_csv`.

    :param columns: column name -> float values (NaN for empty cells), one entry per kept row.
    :param n_skipped: rows dropped as malformed (wrong field count, unparseable number).
    :param problem: why nothing could be read (missing file, no header), else None.
    """

    columns: dict[str, FloatArray] = field(default_factory=dict)
    n_skipped: int = 0
    problem: str | None = None


@dataclass
class RunRecord:
    """Everything read from one ``<arm>/seed<N>/`` run folder.

    :param arm: arm name (the folder name).
    :param seed: seed (from the ``seed<N>`` folder name).
    :param run_dir: the run folder.
    :param status: ``status.json``'s status, or ``"unknown"`` when it is missing/unreadable.
    :param error: the error recorded by the runner, if any.
    :param info: the raw ``status.json`` content (empty when unreadable).
    :param eval_timesteps: evaluation timesteps, as read (not sorted).
    :param eval_returns: mean evaluation return per evaluation.
    :param aux: aux metric tag -> (timesteps, values), only finite points.
    :param problems: human-readable reading problems (skipped rows, unreadable files).
    """

    arm: str
    seed: int
    run_dir: Path
    status: str
    error: str | None
    info: dict[str, Any]
    eval_timesteps: FloatArray
    eval_returns: FloatArray
    aux: dict[str, tuple[FloatArray, FloatArray]]
    problems: list[str]

    @property
    def name(self) -> str:
        """``<arm>/seed<N>``, how runs are referred to in reports."""
        return f"{self.arm}/seed{self.seed}"

    @property
    def has_evals(self) -> bool:
        """Whether at least one evaluation row could be read."""
        return self.eval_timesteps.size > 0

    @property
    def usable(self) -> bool:
        """Whether the run enters the statistics: finished and with at least one evaluation."""
        return self.status == "done" and self.has_evals

    @property
    def excluded_reason(self) -> str | None:
        """Why the run is left out of the statistics, or None if it is used."""
        if self.status == "done":
            return None if self.has_evals else "done but evaluations.csv has no readable row"
        if self.status == "unknown":
            return "status.json missing or unreadable"
        return f"status is {self.status!r}"

    @property
    def final_return(self) -> float:
        """``mean_return`` of the last evaluation (largest timesteps; later row wins on a tie)."""
        if not self.has_evals:
            return math.nan
        # Reversed so that argmax picks the *last* row among equal timesteps (a re-logged eval).
        rev_t = self.eval_timesteps[::-1]
        return float(self.eval_returns[::-1][int(np.argmax(rev_t))])

    @property
    def final_timesteps(self) -> float:
        """Timestep of the last evaluation."""
        return float(self.eval_timesteps.max()) if self.has_evals else math.nan

    def info_float(self, key: str) -> float:
        """A numeric ``status.json`` field, NaN when missing or not a number.

        :param key: field name, e.g. ``"steps_per_s"``.
        """
        value = self.info.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return math.nan
        return float(value)


def read_numeric_csv(path: Path, required: Sequence[str] = ()) -> CsvData:
    """Read a numeric CSV with a header, skipping malformed rows instead of raising.

    A row is kept only if it has exactly as many fields as the header and every non-empty cell
    parses as a float; empty cells become NaN. Rows where a ``required`` column is not finite are
    dropped too. This covers a row cut mid-line by a killed writer: a cut inside any column but the
    last leaves too few fields. (A cut inside the *last* column cannot be detected; only runs that
    did not finish can have one and those are excluded from statistics.)

    :param path: CSV file.
    :param required: columns that must be present in the header and finite in a kept row.
    :return: the parsed columns, the number of skipped rows, and a problem string if unreadable.
    """
    try:
        text = path.read_bytes().decode("utf-8", errors="replace")
    except FileNotFoundError:
        return CsvData(problem=f"{path.name} missing")
    except OSError as exc:
        return CsvData(problem=f"{path.name} unreadable: {exc}")
    lines = text.splitlines()
    if not lines or not lines[0].strip():
        return CsvData(problem=f"{path.name} has no header")
    header = [h.strip().strip('"').strip() for h in lines[0].split(",")]
    missing = [c for c in required if c not in header]
    if missing:
        return CsvData(problem=f"{path.name} lacks column(s) {', '.join(missing)}")
    required_idx = [header.index(c) for c in required]
    rows: list[list[float]] = []
    skipped = 0
    for line in lines[1:]:
        if not line.strip():
            continue
        cells = line.split(",")
        if len(cells) != len(header):
            skipped += 1
            continue
        try:
            row = [float(c) if c.strip() else math.nan for c in cells]
        except ValueError:
            skipped += 1
            continue
        if not all(math.isfinite(row[i]) for i in required_idx):
            skipped += 1
            continue
        rows.append(row)
    table = np.array(rows, dtype=np.float64).reshape(len(rows), len(header))
    columns = {name: table[:, j] for j, name in enumerate(header) if name}
    return CsvData(columns=columns, n_skipped=skipped)


def read_status_file(run_dir: Path) -> tuple[dict[str, Any], str | None]:
    """Parse ``status.json``; a missing or half-written file yields ``({}, problem)``."""
    path = run_dir / "status.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        return {}, "status.json missing"
    except (OSError, ValueError) as exc:
        return {}, f"status.json unreadable ({type(exc).__name__})"
    if not isinstance(data, dict):
        return {}, "status.json is not a JSON object"
    return data, None


def _load_run(arm: str, seed: int, run_dir: Path) -> RunRecord:
    info, status_problem = read_status_file(run_dir)
    problems = [status_problem] if status_problem else []
    status_value = info.get("status")
    status = status_value if isinstance(status_value, str) and status_value else "unknown"
    error_value = info.get("error")
    error = None if error_value is None else str(error_value)
    for key, expected in (("arm", arm), ("seed", seed)):
        if key in info and info[key] != expected:
            problems.append(f"status.json says {key}={info[key]!r}, folder says {expected!r}")

    evals = read_numeric_csv(run_dir / "evaluations.csv", required=_EVAL_REQUIRED)
    # Unfinished runs may legitimately have no evaluation yet; only a finished one is suspicious.
    if evals.problem and status == "done":
        problems.append(evals.problem)
    if evals.n_skipped:
        problems.append(f"skipped {evals.n_skipped} malformed row(s) in evaluations.csv")
    empty = np.empty(0, dtype=np.float64)
    eval_t = evals.columns.get("timesteps", empty)
    eval_r = evals.columns.get("mean_return", empty)

    aux: dict[str, tuple[FloatArray, FloatArray]] = {}
    aux_path = run_dir / "aux_metrics.csv"
    if aux_path.exists():
        aux_csv = read_numeric_csv(aux_path, required=("timesteps",))
        if aux_csv.problem:
            problems.append(aux_csv.problem)
        if aux_csv.n_skipped:
            problems.append(f"skipped {aux_csv.n_skipped} malformed row(s) in aux_metrics.csv")
        steps = aux_csv.columns.get("timesteps", empty)
        for tag, values in aux_csv.columns.items():
            if tag == "timesteps":
                continue
            keep = np.isfinite(values)
            if keep.any():
                aux[tag] = (steps[keep], values[keep])
    return RunRecord(
        arm=arm,
        seed=seed,
        run_dir=run_dir,
        status=status,
        error=error,
        info=info,
        eval_timesteps=eval_t,
        eval_returns=eval_r,
        aux=aux,
        problems=problems,
    )


def order_arms(arms: Iterable[str]) -> list[str]:
    """Canonical display order: ``none, aug, curl, curl+future``, then the rest alphabetically.

    :param arms: arm names (duplicates ignored).
    :return: ordered list.
    """
    unique = set(arms)
    known = [a for a in ARM_ORDER if a in unique]
    return known + sorted(unique.difference(ARM_ORDER))


def load_experiment(experiment_dir: str | Path) -> list[RunRecord]:
    """Read every ``<arm>/seed<N>/`` run folder of an experiment.

    Folders that do not match the layout (no ``seed<N>`` subfolder, hidden folders) are ignored.

    :param experiment_dir: ``runs/<experiment>``.
    :return: run records ordered by arm (see :func:`order_arms`), then seed.
    :raises FileNotFoundError: if ``experiment_dir`` is not a directory.
    """
    root = Path(experiment_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"experiment folder not found: {root}")
    runs: list[RunRecord] = []
    for arm_dir in root.iterdir():
        if not arm_dir.is_dir() or arm_dir.name.startswith("."):
            continue
        for run_dir in arm_dir.iterdir():
            match = _SEED_DIR.match(run_dir.name)
            if match and run_dir.is_dir():
                runs.append(_load_run(arm_dir.name, int(match.group(1)), run_dir))
    rank = {arm: i for i, arm in enumerate(order_arms(r.arm for r in runs))}
    runs.sort(key=lambda r: (rank[r.arm], r.seed))
    return runs


def _finite_mean(values: Iterable[float]) -> float | None:
    vals = [v for v in values if math.isfinite(v)]
    return float(np.mean(vals)) if vals else None


def _last_value(series: tuple[FloatArray, FloatArray]) -> float:
    """Value at the largest timestep (the later row wins on a tie)."""
    t, v = series
    return float(v[::-1][int(np.argmax(t[::-1]))])


def _ci(point: float, low: float, high: float) -> dict[str, float]:
    return {"point": point, "low": low, "high": high}


def _joined_info(runs: Sequence[RunRecord], key: str) -> tuple[str | None, bool]:
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
        if _PROBE_TAG in out["final_aux_metrics"]:
            probe = out["final_aux_metrics"][_PROBE_TAG]
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


def _summarize_runs(
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
    env, env_mixed = _joined_info(runs, "env")
    algo, algo_mixed = _joined_info(runs, "algo")
    if env_mixed:
        notes.append(f"runs use different environments: {env}")
    if algo_mixed:
        notes.append(f"runs use different algorithms: {algo}")
    for r in runs:
        notes.extend(f"{r.name}: {p}" for p in r.problems)

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
    return _jsonable(_summarize_runs(runs, root, baseline, n_boot, confidence, seed))


def _jsonable(obj: Any) -> Any:
    """Strict-JSON copy: numpy scalars to Python, NaN/inf to None, paths to str."""
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple | set):
        return [_jsonable(v) for v in obj]
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


def _title(summary: Mapping[str, Any]) -> str:
    parts = [p for p in (summary.get("env"), summary.get("algo")) if p]
    return f"{summary['experiment']} \N{EN DASH} {' / '.join(parts)}" if parts else str(summary["experiment"])


def _curves_and_aux(
    runs: Sequence[RunRecord], include_unfinished: bool
) -> tuple[dict[str, list[tuple[FloatArray, FloatArray]]], dict[str, dict[str, list[tuple[FloatArray, FloatArray]]]]]:
    picked = [r for r in runs if r.has_evals and (r.usable or include_unfinished)]
    curves: dict[str, list[tuple[FloatArray, FloatArray]]] = {}
    for r in picked:
        curves.setdefault(r.arm, []).append((r.eval_timesteps, r.eval_returns))
    aux: dict[str, dict[str, list[tuple[FloatArray, FloatArray]]]] = {}
    for tag in sorted({t for r in picked for t in r.aux}):
        aux[tag] = {}
        for r in picked:
            if tag in r.aux:
                aux[tag].setdefault(r.arm, []).append(r.aux[tag])
    return curves, aux


def _write_figures_from_runs(
    runs: Sequence[RunRecord],
    out_dir: Path,
    title: str,
    n_boot: int,
    confidence: float,
    seed: int,
    include_unfinished: bool,
) -> dict[str, Path | None]:
    # Imported here so that reading/summarising never pays matplotlib's import time.
    from curl_rl.results.plotting import plot_aux_metrics, plot_learning_curves

    curves, aux = _curves_and_aux(runs, include_unfinished)
    arms = order_arms(r.arm for r in runs)
    figures: dict[str, Path | None] = {"learning_curves": None, "aux_metrics": None}
    if curves:
        figures["learning_curves"] = plot_learning_curves(
            curves,
            out_dir / "learning_curves.png",
            title=f"Evaluation return \N{EN DASH} {title}",
            n_boot=n_boot,
            confidence=confidence,
            seed=seed,
        )
    if aux:
        figures["aux_metrics"] = plot_aux_metrics(
            aux, out_dir / "aux_metrics.png", title=f"Auxiliary metrics \N{EN DASH} {title}", arm_order=arms
        )
    return figures


def write_figures(
    experiment_dir: str | Path,
    out_dir: str | Path | None = None,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    include_unfinished: bool = False,
) -> dict[str, Path | None]:
    """Draw ``learning_curves.png`` and ``aux_metrics.png`` for an experiment (``curl-rl plot``).

    A figure with nothing to show is not written and its entry is None.

    :param experiment_dir: ``runs/<experiment>``.
    :param out_dir: where to write; defaults to ``experiment_dir``.
    :param n_boot: bootstrap replicates per grid point of the CI band.
    :param confidence: coverage of the band.
    :param seed: resampling seed.
    :param include_unfinished: also draw running/failed runs' partial curves (e.g. to watch an
        experiment in progress); they never enter ``summary.json``'s statistics.
    :return: ``{"learning_curves": path | None, "aux_metrics": path | None}``.
    """
    root = Path(experiment_dir)
    runs = load_experiment(root)
    env, _ = _joined_info(runs, "env")
    algo, _ = _joined_info(runs, "algo")
    title = _title({"experiment": root.resolve().name, "env": env, "algo": algo})
    return _write_figures_from_runs(
        runs,
        Path(out_dir) if out_dir is not None else root,
        title,
        n_boot,
        confidence,
        seed,
        include_unfinished,
    )


def _decimals(value: Any) -> int:
    """Decimals that keep about four significant digits for table values."""
    if not _is_number(value):
        return 2
    magnitude = abs(value)
    if magnitude >= 1000:
        return 0
    if magnitude >= 100:
        return 1
    if magnitude >= 1:
        return 2
    return 3


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _fmt(value: Any, digits: int | None = None) -> str:
    """Compact number for the table: more decimals for small magnitudes, a dash for missing.

    :param value: number or None.
    :param digits: fixed number of decimals; by default chosen from the magnitude.
    """
    if not _is_number(value):
        return _MISSING
    return f"{value:.{_decimals(value) if digits is None else digits}f}"


def _fmt_ci(ci: Mapping[str, Any] | None, key: str = "point", digits: int | None = None) -> str:
    if not ci or not _is_number(ci[key]):
        return _MISSING
    # Interval ends use the point's precision so a row reads as one number with its uncertainty.
    d = _decimals(ci[key]) if digits is None else digits
    return f"{_fmt(ci[key], d)} [{_fmt(ci['low'], d)}, {_fmt(ci['high'], d)}]"


def _fmt_duration(seconds: Any) -> str:
    if not _is_number(seconds):
        return _MISSING
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.2f} h"


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _error_line(error: str | None) -> str:
    """The last non-empty line of an error (the exception message of a traceback), shortened."""
    if not error:
        return "(no error recorded)"
    lines = [ln.strip() for ln in error.strip().splitlines() if ln.strip()]
    line = lines[-1] if lines else error.strip()
    return line if len(line) <= 240 else line[:237] + "..."


#: below this many finished seeds an arm's bootstrap CIs and P values are flagged
MIN_SEEDS_FOR_CI = 3
#: the fewest seeds per arm a comparison should have before it claims anything
MIN_SEEDS_FOR_CLAIM = 5


def render_markdown(summary: Mapping[str, Any]) -> str:
    """Markdown report of a :func:`summarize` dict (``summary.md``'s content).

    :param summary: the dict returned by :func:`summarize` / :func:`write_summary`.
    :return: Markdown text.
    """
    baseline = summary["baseline"]
    pct = f"{round(summary['confidence'] * 100)}%"
    lines = [f"# Summary: {summary['experiment']}", ""]
    meta = []
    if summary.get("env"):
        meta.append(f"env **{summary['env']}**")
    if summary.get("algo"):
        meta.append(f"algo **{summary['algo']}**")
    meta.append(f"baseline **{baseline}**")
    meta.append(f"{pct} CIs: percentile stratified bootstrap, {summary['n_boot']} resamples, seed {summary['seed']}")
    lines += [", ".join(meta) + ".", ""]

    header = [
        "Arm",
        "Seeds done / failed",
        "Final return (mean \N{PLUS-MINUS SIGN} std)",
        f"IQM final return [{pct} CI]",
        f"AUC mean [{pct} CI]",
        f"P(arm > {baseline}) [{pct} CI]",
        "Probe R\N{SUPERSCRIPT TWO}",
        "Env steps/s",
        "Wall time",
    ]
    lines.append("| " + " | ".join(_md_cell(h) for h in header) + " |")
    lines.append("|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|")
    for arm in summary["arm_order"]:
        s = summary["arms"][arm]
        seeds = f"{s['n_done']} / {s['n_failed']}"
        extra = [f"+{s['n_running']} running"] if s["n_running"] else []
        extra += [f"+{s['n_other']} other"] if s["n_other"] else []
        if extra:
            seeds += f" ({', '.join(extra)})"
        final = s["final_return"]
        if final is None:
            final_txt = _MISSING
        elif final["std"] is None:
            final_txt = f"{_fmt(final['mean'])} (1 seed)"
        else:
            d = _decimals(final["mean"])
            final_txt = f"{_fmt(final['mean'], d)} \N{PLUS-MINUS SIGN} {_fmt(final['std'], d)}"
        poi = s["probability_of_improvement"]
        if arm == baseline:
            poi_txt = "(baseline)"
        else:
            poi_txt = _fmt_ci(poi, digits=2)
            if poi is not None and not poi["seeds_match"]:
                poi_txt += " \N{DAGGER}"
        auc_txt = _fmt_ci(s["auc"], key="mean")
        probe = s["probe_r2"]
        row = [
            f"`{arm}`",
            seeds,
            final_txt,
            _fmt_ci(s["iqm"]),
            auc_txt,
            poi_txt,
            _fmt(probe["mean"], 3) if probe else _MISSING,
            _fmt(s["steps_per_s"], 0),
            _fmt_duration(s["wall_time_s"]),
        ]
        lines.append("| " + " | ".join(_md_cell(c) for c in row) + " |")
    lines.append("")
    if not summary["arm_order"]:
        lines += ["No runs found.", ""]

    defs = summary["definitions"]
    lines += [
        "**Definitions.** "
        f"*Final return*: {defs['final_return']}. "
        f"*AUC*: {defs['auc']}. "
        f"*IQM*: {defs['iqm']}. "
        f"*P(arm > {baseline})*: {defs['probability_of_improvement']}. "
        f"*std*: {defs['std']}. "
        "Only runs with status `done` enter the statistics.",
        "",
    ]

    if summary["notes"]:
        lines += ["## Notes", ""] + [f"- {n}" for n in summary["notes"]] + [""]
    if summary["failed_runs"]:
        lines += ["## Failed runs", ""]
        lines += [f"- `{f['arm']}/seed{f['seed']}`: {_error_line(f['error'])}" for f in summary["failed_runs"]]
        lines.append("")
    if summary["excluded_runs"]:
        lines += ["## Other runs not in the statistics", ""]
        lines += [f"- `{e['arm']}/seed{e['seed']}`: {e['reason']}" for e in summary["excluded_runs"]]
        lines.append("")
    figures = summary.get("figures") or {}
    shown = [
        (label, figures.get(key))
        for key, label in (("learning_curves", "Learning curves"), ("aux_metrics", "Auxiliary metrics"))
    ]
    if any(path for _, path in shown):
        lines += ["## Figures", ""]
        lines += [f"![{label}]({path})" + "\n" for label, path in shown if path]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_summary(
    experiment_dir: str | Path,
    baseline: str = "none",
    n_boot: int = 2000,
    seed: int = 0,
    confidence: float = 0.95,
    out_dir: str | Path | None = None,
    figures: bool = True,
) -> dict[str, Any]:
    """Summarise an experiment and write ``summary.json``, ``summary.md`` and the figures.

    :param experiment_dir: ``runs/<experiment>``.
    :param baseline: arm the probability of improvement is measured against.
    :param n_boot: bootstrap replicates for every confidence interval (and the figure bands).
    :param seed: bootstrap seed.
    :param confidence: coverage of the intervals.
    :param out_dir: where to write; defaults to ``experiment_dir``.
    :param figures: also draw ``learning_curves.png`` / ``aux_metrics.png``.
    :return: the summary dict as written to ``summary.json``; ``"figures"`` holds the PNG file names
        relative to ``out_dir`` (None for a figure with nothing to draw).
    """
    root = Path(experiment_dir)
    target = Path(out_dir) if out_dir is not None else root
    target.mkdir(parents=True, exist_ok=True)
    runs = load_experiment(root)
    summary = _summarize_runs(runs, root, baseline, n_boot, confidence, seed)
    if figures:
        paths = _write_figures_from_runs(
            runs, target, _title(summary), n_boot, confidence, seed, include_unfinished=False
        )
        summary["figures"] = {k: (p.name if p is not None else None) for k, p in paths.items()}
    result: dict[str, Any] = _jsonable(summary)
    # Written to a temp name and renamed so a reader never sees a half-written summary.
    for name, text in (
        ("summary.json", json.dumps(result, indent=2, allow_nan=False) + "\n"),
        ("summary.md", render_markdown(result)),
    ):
        tmp = target / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(target / name)
    return result
