"""Statistics for comparing RL arms over a handful of seeds.

The aggregate estimators follow *Deep RL at the Edge of the Statistical Precipice* (Agarwal et al.,
2021) and its ``rliable`` library: interquartile mean (IQM), stratified bootstrap percentile
confidence intervals and the probability of improvement. Everything here is plain numpy so that the
summary tooling does not pull in scipy/pandas, and every random draw goes through a seeded
:class:`numpy.random.Generator` so a summary is reproducible bit for bit.

Score arrays are shaped ``(n_runs, n_tasks)`` like in ``rliable``; a 1-D array is read as
``n_runs`` runs of a single task.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import SupportsFloat

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "align_curves",
    "auc",
    "curve_band",
    "iqm",
    "probability_of_improvement",
    "probability_of_improvement_ci",
    "stratified_bootstrap_ci",
    "trim_mean",
]

FloatArray = NDArray[np.float64]
Statistic = Callable[[FloatArray], SupportsFloat]


def _as_scores(scores: ArrayLike, name: str = "scores") -> FloatArray:
    """Coerce to a finite ``(n_runs, n_tasks)`` float array.

    :param scores: 1-D (one task) or 2-D array of scores.
    :param name: argument name used in error messages.
    :return: a 2-D float64 array.
    """
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (n_runs, n_tasks), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape})")
    if not np.all(np.isfinite(arr)):
        # A NaN would silently poison every bootstrap replicate; callers must drop missing runs.
        raise ValueError(f"{name} contains non-finite values")
    return arr


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _percentile_interval(replicates: FloatArray, confidence: float) -> tuple[float, float]:
    """Percentile bootstrap interval, the method ``rliable`` uses by default.

    :param replicates: bootstrap replicates of the statistic.
    :param confidence: two-sided coverage, e.g. 0.95.
    :return: (low, high).
    """
    alpha = 1.0 - confidence
    low, high = np.percentile(replicates, [100.0 * alpha / 2.0, 100.0 * (1.0 - alpha / 2.0)])
    return float(low), float(high)


def trim_mean(x: ArrayLike, proportiontocut: float) -> float:
    """Mean of the flattened ``x`` after cutting ``proportiontocut`` of the values from each tail.

    Same semantics as ``scipy.stats.trim_mean(x, proportiontocut, axis=None)``: the number of values
    cut from each end is ``int(proportiontocut * n)``, i.e. when the proportion does not fall on a
    whole number of values the cut is rounded *down* (scipy "conservatively slices off" less) and the
    kept values are averaged with equal weight; no value is partially weighted.

    :param x: values (any shape; flattened).
    :param proportiontocut: fraction cut from *each* tail, in ``[0, 0.5)``.
    :return: the trimmed mean.
    :raises ValueError: on empty input or an out-of-range proportion.
    """
    arr = np.asarray(x, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError("trim_mean of an empty array")
    if not 0.0 <= proportiontocut < 0.5:
        raise ValueError(f"proportiontocut must be in [0, 0.5), got {proportiontocut}")
    n = arr.size
    # Written exactly as scipy computes it so the float rounding of the product matches too.
    lowercut = int(proportiontocut * n)
    uppercut = n - lowercut
    kept = np.sort(arr)[lowercut:uppercut]
    return float(kept.mean())


def iqm(x: ArrayLike) -> float:
    """Interquartile mean: the mean of the middle 50% of all values (``rliable``'s definition).

    Equals ``scipy.stats.trim_mean(x, 0.25)`` on the flattened array: ``int(0.25 * n)`` values are
    dropped from each end, so for ``n = 10`` the mean is over the 6 middle values and for ``n = 5``
    over the 3 middle values.

    :param x: scores, any shape (e.g. ``(n_runs, n_tasks)``); flattened.
    :return: the interquartile mean.
    """
    return trim_mean(x, 0.25)


def _resample_indices(rng: np.random.Generator, n_runs: int, n_tasks: int, n_boot: int) -> NDArray[np.intp]:
    """Run indices drawn with replacement, independently per task (stratified by task).

    :return: array of shape ``(n_boot, n_runs, n_tasks)``.
    """
    return rng.integers(0, n_runs, size=(n_boot, n_runs, n_tasks))


def stratified_bootstrap_ci(
    scores: ArrayLike,
    statistic: Statistic,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float, float]:
    """Point estimate and stratified-bootstrap percentile interval of ``statistic(scores)``.

    Each bootstrap replicate resamples the runs *within each task* with replacement (``rliable``'s
    stratified bootstrap), so every task keeps its weight in the aggregate.

    :param scores: ``(n_runs, n_tasks)`` scores; a 1-D array is one task. Must be finite.
    :param statistic: maps an ``(n_runs, n_tasks)`` array to a scalar, e.g. :func:`iqm` or
        ``np.mean``.
    :param n_boot: number of bootstrap replicates.
    :param confidence: two-sided coverage of the interval.
    :param seed: seed or generator for the resampling.
    :return: ``(point, low, high)``. With a single run the interval collapses onto the point.
    """
    arr = _as_scores(scores)
    _check_confidence(confidence)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    n_runs, n_tasks = arr.shape
    point = float(statistic(arr))
    idx = _resample_indices(rng, n_runs, n_tasks, n_boot)
    task_cols = np.arange(n_tasks)[None, None, :]
    resampled = arr[idx, task_cols]  # (n_boot, n_runs, n_tasks)
    replicates = np.fromiter((float(statistic(resampled[b])) for b in range(n_boot)), dtype=np.float64, count=n_boot)
    low, high = _percentile_interval(replicates, confidence)
    return point, low, high


def _poi_per_task(x: FloatArray, y: FloatArray) -> FloatArray:
    """P(X > Y) + 0.5 P(X = Y) over all (x run, y run) pairs, for each task.

    :param x: ``(..., n, n_tasks)``.
    :param y: ``(..., m, n_tasks)``.
    :return: ``(..., n_tasks)``.
    """
    diff = x[..., :, None, :] - y[..., None, :, :]  # (..., n, m, n_tasks)
    wins = (diff > 0).mean(axis=(-3, -2))
    ties = (diff == 0).mean(axis=(-3, -2))
    return np.asarray(wins + 0.5 * ties, dtype=np.float64)


def probability_of_improvement(x: ArrayLike, y: ArrayLike) -> float:
    """Probability that a run of X scores higher than a run of Y, averaged over tasks.

    Per task this is the Mann-Whitney U statistic divided by ``n * m``: ``P(X > Y) + 0.5 P(X = Y)``
    over all ``n * m`` pairs of runs. X and Y may have different numbers of runs (unpaired).

    :param x: ``(n, n_tasks)`` scores of the candidate (1-D = one task).
    :param y: ``(m, n_tasks)`` scores of the reference, same tasks in the same column order.
    :return: a probability in ``[0, 1]``; 0.5 means no detectable difference.
    """
    xa = _as_scores(x, "x")
    ya = _as_scores(y, "y")
    if xa.shape[1] != ya.shape[1]:
        raise ValueError(f"x and y must have the same number of tasks, got {xa.shape[1]} and {ya.shape[1]}")
    return float(_poi_per_task(xa, ya).mean())


def probability_of_improvement_ci(
    x: ArrayLike,
    y: ArrayLike,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
) -> tuple[float, float, float]:
    """:func:`probability_of_improvement` with a stratified-bootstrap percentile interval.

    X and Y are resampled independently of each other, each stratified by task, as ``rliable``
    does for pairwise comparisons; this does not assume the two arms share seeds.

    :param x: ``(n, n_tasks)`` scores of the candidate.
    :param y: ``(m, n_tasks)`` scores of the reference.
    :param n_boot: number of bootstrap replicates.
    :param confidence: two-sided coverage of the interval.
    :param seed: seed or generator for the resampling.
    :return: ``(point, low, high)``.
    """
    xa = _as_scores(x, "x")
    ya = _as_scores(y, "y")
    if xa.shape[1] != ya.shape[1]:
        raise ValueError(f"x and y must have the same number of tasks, got {xa.shape[1]} and {ya.shape[1]}")
    _check_confidence(confidence)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    n_tasks = xa.shape[1]
    point = float(_poi_per_task(xa, ya).mean())
    task_cols = np.arange(n_tasks)[None, None, :]
    replicates = np.empty(n_boot, dtype=np.float64)
    # Chunked so the (chunk, n, m, n_tasks) pairwise tensor stays small for large seed counts.
    pair_cells = xa.shape[0] * ya.shape[0] * n_tasks
    chunk = max(1, min(n_boot, 2_000_000 // max(pair_cells, 1)))
    for start in range(0, n_boot, chunk):
        b = min(chunk, n_boot - start)
        xb = xa[_resample_indices(rng, xa.shape[0], n_tasks, b), task_cols]
        yb = ya[_resample_indices(rng, ya.shape[0], n_tasks, b), task_cols]
        replicates[start : start + b] = _poi_per_task(xb, yb).mean(axis=-1)
    low, high = _percentile_interval(replicates, confidence)
    return point, low, high


def _clean_curve(timesteps: ArrayLike, values: ArrayLike) -> tuple[FloatArray, FloatArray]:
    """Sort a curve by timestep, drop non-finite points and average duplicate timesteps.

    Duplicates happen when a resumed run re-logs an evaluation; averaging keeps each timestep's
    weight in the trapezoid the same as for a clean curve.

    :return: strictly increasing timesteps and their values.
    """
    t = np.asarray(timesteps, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    if t.shape != v.shape:
        raise ValueError(f"timesteps and values differ in length: {t.size} vs {v.size}")
    keep = np.isfinite(t) & np.isfinite(v)
    t, v = t[keep], v[keep]
    uniq, inverse = np.unique(t, return_inverse=True)
    if uniq.size == t.size:
        order = np.argsort(t, kind="stable")
        return t[order], v[order]
    sums = np.bincount(inverse, weights=v, minlength=uniq.size)
    counts = np.bincount(inverse, minlength=uniq.size)
    return uniq, sums / counts


def auc(timesteps: ArrayLike, returns: ArrayLike) -> float:
    """Normalised area under a learning curve: the time-average return over the evaluated span.

    Trapezoid rule over the evaluations, divided by ``last_timestep - first_timestep``, so the result
    is in return units and comparable across runs of different lengths. Points are sorted by
    timestep, non-finite points dropped and evaluations at the same timestep averaged first.

    :param timesteps: evaluation timesteps, any order.
    :param returns: mean evaluation return at each timestep.
    :return: the average return; a single evaluation (zero span) gives that evaluation's return.
    :raises ValueError: if there is no finite point.
    """
    t, v = _clean_curve(timesteps, returns)
    if t.size == 0:
        raise ValueError("auc of an empty curve")
    if t.size == 1:
        return float(v[0])
    area = float(np.sum(np.diff(t) * (v[1:] + v[:-1]) / 2.0))
    return area / float(t[-1] - t[0])


def align_curves(
    curves: Sequence[tuple[ArrayLike, ArrayLike]],
    grid: ArrayLike | None = None,
    max_points: int = 200,
) -> tuple[FloatArray, FloatArray]:
    """Put per-seed learning curves onto one timestep grid by linear interpolation.

    A curve is only interpolated inside its own evaluated range: grid points before its first or
    after its last evaluation are NaN rather than extrapolated, so a shorter run never pretends to
    have results it does not have.

    :param curves: one ``(timesteps, values)`` pair per seed; unsorted/duplicate points are fine.
    :param grid: timesteps to evaluate at. By default the union of all evaluation timesteps (seeds
        usually share them, so no interpolation happens), thinned to ``max_points`` evenly spaced
        points over the same span when the union is larger.
    :param max_points: size cap of the default grid.
    :return: ``(grid, values)`` with ``values`` of shape ``(n_curves, len(grid))``.
    """
    cleaned = [_clean_curve(t, v) for t, v in curves]
    if grid is None:
        nonempty = [t for t, _ in cleaned if t.size]
        if not nonempty:
            return np.empty(0, dtype=np.float64), np.empty((len(cleaned), 0), dtype=np.float64)
        grid_arr = np.unique(np.concatenate(nonempty))
        if grid_arr.size > max_points:
            grid_arr = np.linspace(grid_arr[0], grid_arr[-1], max_points)
    else:
        grid_arr = np.unique(np.asarray(grid, dtype=np.float64).ravel())
    out = np.full((len(cleaned), grid_arr.size), np.nan, dtype=np.float64)
    for i, (t, v) in enumerate(cleaned):
        if t.size == 0:
            continue
        inside = (grid_arr >= t[0]) & (grid_arr <= t[-1])
        out[i, inside] = np.interp(grid_arr[inside], t, v)
    return grid_arr, out


def curve_band(
    values: ArrayLike,
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int | np.random.Generator = 0,
    min_runs: int = 1,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Mean over seeds and a bootstrap percentile CI of that mean, at every grid point.

    Each grid point uses only the seeds that have a value there (NaN = not evaluated, see
    :func:`align_curves`).

    :param values: ``(n_curves, n_points)`` aligned curves, NaN where a seed has no value.
    :param n_boot: bootstrap replicates per grid point.
    :param confidence: two-sided coverage of the band.
    :param seed: seed or generator for the resampling.
    :param min_runs: grid points with fewer seeds than this get NaN everywhere, so the mean does not
        jump when seeds drop out at the end.
    :return: ``(mean, low, high)``, each of length ``n_points``.
    """
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2:
        raise ValueError(f"values must be 2-D (n_curves, n_points), got shape {arr.shape}")
    _check_confidence(confidence)
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    rng = np.random.default_rng(seed)
    n_points = arr.shape[1]
    mean = np.full(n_points, np.nan)
    low = np.full(n_points, np.nan)
    high = np.full(n_points, np.nan)
    for j in range(n_points):
        col = arr[:, j]
        col = col[np.isfinite(col)]
        k = col.size
        if k == 0 or k < min_runs:
            continue
        mean[j] = col.mean()
        boot_means = col[rng.integers(0, k, size=(n_boot, k))].mean(axis=1)
        low[j], high[j] = _percentile_interval(boot_means, confidence)
    return mean, low, high
