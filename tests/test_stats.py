"""Tests of curl_rl.results.stats against hand-computed values and known distributions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from curl_rl.results.stats import (
    align_curves,
    auc,
    curve_band,
    iqm,
    probability_of_improvement,
    probability_of_improvement_ci,
    stratified_bootstrap_ci,
    trim_mean,
)

# ---------------------------------------------------------------------------------------------- IQM


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # n=8: int(0.25*8)=2 cut per side -> mean(1, 2, 3, 10)
        ([100, 0, 3, 50, 1, 10, 0, 2], 4.0),
        # n=10: int(2.5)=2 cut per side (scipy rounds the cut down, no fractional weights):
        # sorted 0 0 | 0 1 2 3 5 8 | 13 100 -> 19/6. A weighted 2.5-cut would give 3.0 instead.
        ([13, 0, 8, 100, 1, 0, 5, 2, 0, 3], 19 / 6),
        # n=5: int(1.25)=1 cut per side: sorted 1 | 3 7 10 | 100 -> 20/3
        ([10, 1, 7, 3, 100], 20 / 3),
        # n=4: one cut per side -> mean(2, 3)
        ([4, 1, 3, 2], 2.5),
        # n=3: int(0.75)=0, nothing cut -> plain mean
        ([1, 2, 30], 11.0),
        ([7.5], 7.5),
    ],
)
def test_iqm_hand_computed(values: list[float], expected: float) -> None:
    assert iqm(values) == pytest.approx(expected, rel=1e-12)


def test_iqm_flattens_2d_scores() -> None:
    flat = [13, 0, 8, 100, 1, 0, 5, 2, 0, 3]
    assert iqm(np.array(flat).reshape(5, 2)) == pytest.approx(19 / 6)


def test_trim_mean_matches_scipy_docstring_examples() -> None:
    # From scipy.stats.trim_mean's documentation.
    assert trim_mean(np.arange(20), 0.1) == pytest.approx(9.5)
    assert trim_mean(np.arange(20).reshape(5, 4), 0.25) == pytest.approx(9.5)


def test_iqm_rejects_empty() -> None:
    with pytest.raises(ValueError):
        iqm([])


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=40), st.randoms())
def test_iqm_bounded_and_order_invariant(values: list[float], rnd: object) -> None:
    shuffled = list(values)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    result = iqm(values)
    assert min(values) - 1e-6 <= result <= max(values) + 1e-6
    assert iqm(shuffled) == pytest.approx(result, rel=1e-9, abs=1e-9)


# ---------------------------------------------------------------------------------------- bootstrap


def test_bootstrap_ci_coverage_of_normal_mean() -> None:
    # The 95% percentile-bootstrap CI of the mean of 10 N(0, 1) draws should cover 0 in roughly 90%
    # of experiments (it slightly undercovers at n=10); a broken resampler lands far outside.
    rng = np.random.default_rng(1234)
    trials = 300
    covered = 0
    for _ in range(trials):
        sample = rng.normal(0.0, 1.0, size=10)
        _, low, high = stratified_bootstrap_ci(sample, np.mean, n_boot=400, seed=rng)
        covered += low <= 0.0 <= high
    assert 0.88 <= covered / trials <= 0.99


def test_bootstrap_point_is_statistic_and_interval_contains_it() -> None:
    scores = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    point, low, high = stratified_bootstrap_ci(scores, iqm, n_boot=300, seed=0)
    assert point == pytest.approx(iqm(scores))
    assert low <= point <= high
    assert scores.min() <= low and high <= scores.max()


def test_bootstrap_is_reproducible_and_seed_dependent() -> None:
    scores = np.arange(12.0).reshape(6, 2)
    a = stratified_bootstrap_ci(scores, iqm, n_boot=200, seed=7)
    b = stratified_bootstrap_ci(scores, iqm, n_boot=200, seed=7)
    c = stratified_bootstrap_ci(scores, iqm, n_boot=200, seed=8)
    assert a == b
    assert a != c


def test_bootstrap_resamples_each_task_independently() -> None:
    # Task 1 is task 0 shifted by 100 run by run. Resampling whole runs would keep every pairing, so
    # the spread of (task1 - task0) would always be 0; stratified resampling breaks the pairing.
    base = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    scores = np.stack([base, base + 100.0], axis=1)

    def spread(a: np.ndarray) -> float:
        return float(np.std(a[:, 1] - a[:, 0]))

    point, _, high = stratified_bootstrap_ci(scores, spread, n_boot=200, seed=0)
    assert point == 0.0
    assert high > 0.0


def test_bootstrap_single_run_collapses() -> None:
    assert stratified_bootstrap_ci([3.5], np.mean, n_boot=50) == (3.5, 3.5, 3.5)


@pytest.mark.parametrize("bad", [[], [1.0, math.nan], np.zeros((2, 2, 2))])
def test_bootstrap_rejects_bad_scores(bad: object) -> None:
    with pytest.raises(ValueError):
        stratified_bootstrap_ci(bad, np.mean)  # type: ignore[arg-type]


# ----------------------------------------------------------------------- probability of improvement


def test_poi_identical_is_half() -> None:
    assert probability_of_improvement([1, 2, 3], [1, 2, 3]) == pytest.approx(0.5)
    assert probability_of_improvement([4, 4], [4, 4, 4]) == pytest.approx(0.5)


def test_poi_disjoint() -> None:
    assert probability_of_improvement([10, 11, 12], [1, 2]) == 1.0
    assert probability_of_improvement([1, 2], [10, 11, 12]) == 0.0


def test_poi_hand_example_with_tie() -> None:
    # x=1 beats nothing; x=4 beats 2 and ties 4 (1.5); x=6 beats both (2) -> 3.5 / 6 pairs.
    assert probability_of_improvement([1, 4, 6], [2, 4]) == pytest.approx(7 / 12)
    assert probability_of_improvement([2, 4], [1, 4, 6]) == pytest.approx(5 / 12)


def test_poi_averages_over_tasks() -> None:
    x = np.array([[1.0, 0.0], [2.0, 0.0]])
    y = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    assert probability_of_improvement(x, y) == pytest.approx(0.5)  # (1.0 + 0.0) / 2


def test_poi_ci() -> None:
    point, low, high = probability_of_improvement_ci([10, 11, 12], [1, 2], n_boot=100, seed=0)
    assert (point, low, high) == (1.0, 1.0, 1.0)
    x, y = [1.0, 4.0, 6.0, 3.0], [2.0, 4.0, 5.0]
    point, low, high = probability_of_improvement_ci(x, y, n_boot=300, seed=0)
    assert point == pytest.approx(probability_of_improvement(x, y))
    assert 0.0 <= low <= point <= high <= 1.0
    assert probability_of_improvement_ci(x, y, n_boot=300, seed=0) == (point, low, high)


def test_poi_task_mismatch() -> None:
    with pytest.raises(ValueError):
        probability_of_improvement(np.zeros((2, 2)), np.zeros((2, 3)))


# ---------------------------------------------------------------------------------------------- AUC


def test_auc_hand_example() -> None:
    # Trapezoids: (0+10)/2*10 + (10+10)/2*10 = 150 over a span of 20.
    assert auc([0, 10, 20], [0, 10, 10]) == pytest.approx(7.5)


def test_auc_unsorted_duplicates_and_nan() -> None:
    assert auc([20, 0, 10], [10, 0, 10]) == pytest.approx(7.5)
    # Two evaluations at t=10 are averaged to 10 before integrating.
    assert auc([0, 10, 10, 20], [0, 8, 12, 10]) == pytest.approx(7.5)
    assert auc([0, 10, 15, 20], [0, 10, math.nan, 10]) == pytest.approx(7.5)


def test_auc_span_normalised_and_degenerate() -> None:
    assert auc([100, 200, 300], [4, 4, 4]) == pytest.approx(4.0)
    assert auc([500], [3.0]) == 3.0
    with pytest.raises(ValueError):
        auc([], [])


# ---------------------------------------------------------------------------------- learning curves


def test_align_curves_union_grid_no_extrapolation() -> None:
    grid, values = align_curves([([0, 10, 20], [0, 1, 2]), ([10, 0], [3, 0])])
    np.testing.assert_array_equal(grid, [0, 10, 20])
    np.testing.assert_allclose(values[0], [0, 1, 2])
    np.testing.assert_allclose(values[1], [0, 3, np.nan])


def test_align_curves_explicit_grid_interpolates_inside_only() -> None:
    grid, values = align_curves([([0, 10, 20], [0, 1, 2]), ([10, 20], [3, 5])], grid=[25, 5, 15])
    np.testing.assert_array_equal(grid, [5, 15, 25])
    np.testing.assert_allclose(values[0], [0.5, 1.5, np.nan])
    np.testing.assert_allclose(values[1], [np.nan, 4.0, np.nan])


def test_align_curves_thins_large_grids() -> None:
    t = np.arange(1000)
    grid, values = align_curves([(t, t * 2.0), (t + 0.5, t * 2.0 + 1.0)], max_points=50)
    assert grid.size == 50
    assert grid[0] == 0 and grid[-1] == 999.5
    assert values.shape == (2, 50)


def test_curve_band() -> None:
    values = np.array([[0.0, 1.0, 2.0], [0.0, 3.0, np.nan], [0.0, 2.0, np.nan]])
    mean, low, high = curve_band(values, n_boot=200, seed=0)
    np.testing.assert_allclose(mean, [0.0, 2.0, 2.0])
    assert low[0] == high[0] == 0.0
    assert 1.0 <= low[1] <= 2.0 <= high[1] <= 3.0
    mean2, _, _ = curve_band(values, n_boot=10, seed=0, min_runs=2)
    assert math.isnan(mean2[2]) and mean2[1] == 2.0
