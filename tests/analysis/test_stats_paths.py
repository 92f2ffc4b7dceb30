"""The ANOVA and the fast paths of the rank kernels (neurorecord.analysis.stats), each forced and
checked against scipy / statsmodels: ANOVA on offsets and special columns, float32 rank keys
straight from float32 activity (chunked transposes, -0.0, NaN, infinities, runs of ties),
counting, and the one-region FDR family."""

from __future__ import annotations

import warnings

import dask.array as da
import numpy as np
import pytest
import scipy.stats
import xarray as xr
from statsmodels.stats.multitest import multipletests

from neurorecord.analysis import _ranks, _units, stats

RTOL = 1e-10


def activity(x: np.ndarray, codes: np.ndarray, regions: list[str] | None = None) -> xr.DataArray:
    """``x`` (presentation, neuroid) with condition ``label`` = ``codes`` (and ``region`` if given)."""
    coords = {"label": ("presentation", codes)}
    if regions is not None:
        coords["region"] = ("neuroid", regions)
    return xr.DataArray(x, dims=("presentation", "neuroid"), coords=coords)


def scipy_per_unit(fn, x: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """(statistic, p) of ``fn`` on each column's groups, float64."""
    x = np.asarray(x, dtype=np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.array([fn(*[x[codes == g, j] for g in np.unique(codes)])[:2] for j in range(x.shape[1])])


# ----------------------------------------------------------------------------- ANOVA


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_anova_on_offsets_and_blocks(dtype, monkeypatch):
    """Columns near zero, large offsets, an offset that starts after the first rows, and strong
    condition effects on a large mean: F equals scipy's, block by block."""
    rng = np.random.default_rng(0)
    n, k = 400, 5
    codes = np.sort(rng.integers(0, k, size=n))
    x = rng.normal(size=(n, 12)) + 0.3 * (codes == 2)[:, None]
    x[:, 4:8] = 1e4 + rng.normal(size=(n, 4)) + (codes == 1)[:, None]
    x[20:, 8] += 1e5  # first 20 rows near 0, then a large offset
    x[20:, 9] += 30.0 * (codes[20:] + 1)
    x = x.astype(dtype)
    monkeypatch.setattr(_units, "BLOCK_BYTES", 8 * n * 4)  # blocks of 4 units
    result = stats.anova(activity(x, codes), "label")
    ref = scipy_per_unit(scipy.stats.f_oneway, x, codes)
    np.testing.assert_allclose(result["F"].values, ref[:, 0], rtol=RTOL)
    np.testing.assert_allclose(result["p"].values, ref[:, 1], rtol=RTOL, atol=1e-300)


def test_anova_special_columns():
    """Constant, constant-within-conditions, NaN and infinite columns, with and without an offset."""
    rng = np.random.default_rng(2)
    n, k = 60, 3
    codes = np.tile(np.arange(k), n // k)
    base = rng.normal(size=(n, 5))
    base[:, 0] = 0.0
    base[:, 1] = 0.5 * codes
    base[7, 2] = np.nan
    base[9, 3] = np.inf
    for offset in (0.0, 1e3):
        x = (base + offset).astype(np.float32)
        result = stats.anova(activity(x, codes), "label")
        assert np.isnan(result["F"].values[0]) and result["F"].values[1] == np.inf
        assert np.isnan(result["F"].values[2:4]).all() and np.isnan(result["p"].values[2:4]).all()
        ref = scipy_per_unit(scipy.stats.f_oneway, x[:, 4:], codes)
        np.testing.assert_allclose(result["F"].values[4:], ref[:, 0], rtol=RTOL)


def test_anova_float32_counts_and_offsets_against_scipy():
    """Tolerance of the float32 kernel: float32 values are exact in float64, so F agrees with
    scipy on the same values (as float64) to RTOL, centred or not, counts or offsets."""
    rng = np.random.default_rng(3)
    n, k = 2000, 10
    codes = rng.permutation(np.arange(n) % k)
    x = np.concatenate([rng.poisson(rng.uniform(0.5, 20, size=8), size=(n, 8)),  # spike counts
                        rng.normal(size=(n, 8)) * rng.uniform(0.1, 10, size=8) + rng.uniform(-3, 3, size=8),
                        300 + rng.normal(size=(n, 4))], axis=1).astype(np.float32)
    result = stats.anova(activity(x, codes), "label")
    ref = scipy_per_unit(scipy.stats.f_oneway, x, codes)
    np.testing.assert_allclose(result["F"].values, ref[:, 0], rtol=RTOL)


# ----------------------------------------------------------------------------- ranks


def rank_reference(values: np.ndarray, codes: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Group rank sums and tie terms of each column with scipy.stats.rankdata."""
    values = np.asarray(values, dtype=np.float64)
    sums = np.empty((k, values.shape[1]))
    ties = np.empty(values.shape[1])
    for j in range(values.shape[1]):
        ranks = scipy.stats.rankdata(values[:, j])
        sums[:, j] = [ranks[codes == g].sum() for g in range(k)]
        _, t = np.unique(values[:, j], return_counts=True)
        ties[j] = (t**3 - t).sum()
    return sums, ties


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_rank_sums_from_float32_activity(dtype, monkeypatch):
    """float32 (and float16) columns go straight to the float32 keys, chunk by chunk: several
    transposed chunks and a partial last slice, runs of ties of every length, ties in the first
    and last sorted places, -0.0 with +0.0, NaN and infinities (ranked by argsort instead)."""
    monkeypatch.setattr(_ranks, "_RANK_UNITS", 4)
    monkeypatch.setattr(_ranks, "_RANK_CHUNK_BYTES", 3 * 4 * 64)  # chunks of 12 units of 64 presentations
    rng = np.random.default_rng(4)
    n, u, k = 64, 31, 3
    codes = rng.integers(0, k, size=n)
    values = rng.normal(size=(n, u)).astype(dtype)
    values[:5, 1] = values[5, 1]  # a run of 6
    values[10:13, 1] = values[20, 1]  # and one of 4 in the same column
    values[:, 2] = np.round(values[:, 2] * 2) / 4  # quarter steps: runs everywhere, not integers
    values[::2, 3], values[1::2, 3] = -0.0, 0.0  # -0.0 ties with +0.0
    values[::3, 4] = -0.0
    values[:, 5] = values[:, 5].min()  # all tied
    values[[3, 8], 6] = values[:, 6].max() + 1  # tie in the last place
    values[[2, 9], 7] = values[:, 7].min() - 1  # tie in the first place
    values[4, 13] = np.inf
    values[[6, 7], 14] = -np.inf
    values[9, 25] = np.nan
    values[:, 26] = rng.integers(-3, 4, size=n)  # small integers: counted, not sorted
    sums, ties, has_nan = stats.rank_sums(values, codes, k)
    expected_sums, expected_ties = rank_reference(values, codes, k)
    ok = np.arange(u) != 25
    np.testing.assert_array_equal(sums[:, ok], expected_sums[:, ok])
    np.testing.assert_array_equal(ties[ok], expected_ties[ok])
    assert has_nan.tolist() == [j == 25 for j in range(u)]
    # the same values as float64 (checked for float32 exactness slice by slice) agree exactly
    wide = stats.rank_sums(values.astype(np.float64), codes, k)
    np.testing.assert_array_equal(wide[0][:, ok], sums[:, ok])
    np.testing.assert_array_equal(wide[1], ties)


def test_rank_sums_sparse_and_dense_ties(monkeypatch):
    """Slices of 4 units: one with a few tied pairs (corrected entry by entry), one where most
    entries are tied (average rank of every run), one of small integers (counted), one without
    ties; float32 and float64 values."""
    monkeypatch.setattr(_ranks, "_RANK_UNITS", 4)
    rng = np.random.default_rng(7)
    n, k = 50, 4
    codes = rng.integers(0, k, size=n)
    values = rng.normal(size=(n, 16))
    values[[3, 17], 0] = values[30, 0]  # a run of three
    values[[0, 49], 1] = values[10, 1]  # first and last rows of the unit
    values[5, 2] = values[6, 2]
    values[:, 4:8] = np.round(values[:, 4:8] * 1.5) / 2 + 0.25  # half steps, not integers
    values[:, 8:12] = rng.poisson(1.0, size=(n, 4))
    for dtype in (np.float32, np.float64):
        column_values = values.astype(dtype)
        sums, ties, has_nan = stats.rank_sums(column_values, codes, k)
        expected_sums, expected_ties = rank_reference(column_values, codes, k)
        np.testing.assert_array_equal(sums, expected_sums)
        np.testing.assert_array_equal(ties, expected_ties)
        assert not has_nan.any()
        assert (expected_ties[4:12] > 0).all() and (expected_ties[12:] == 0).all()


def test_kruskal_float32_continuous_through_dask(monkeypatch):
    """Continuous float32 activity with ties, -0.0 and a NaN unit: numpy, dask and scipy agree."""
    monkeypatch.setattr(_units, "BLOCK_BYTES", 8 * 90 * 7)  # blocks of 7 units
    rng = np.random.default_rng(5)
    n, u, k = 90, 20, 4
    codes = rng.integers(0, k, size=n)
    x = np.maximum(rng.normal(size=(n, u)), 0.0).astype(np.float32)  # rectified: a run of zeros
    x[::4, 3] = -0.0
    x[:, 4] = np.round(x[:, 4], 1)
    x[11, 9] = np.nan
    act = activity(x, codes)
    result = stats.kruskal(act, "label")
    lazy = stats.kruskal(act.copy(data=da.from_array(x, chunks=(32, u))), "label")
    xr.testing.assert_identical(lazy, result)
    ref = scipy_per_unit(scipy.stats.kruskal, x, codes)
    np.testing.assert_allclose(result["H"].values, ref[:, 0], rtol=RTOL)
    np.testing.assert_allclose(result["p"].values, ref[:, 1], rtol=RTOL, atol=1e-300)
    assert np.isnan(result["H"].values[9])
    mw = stats.mannwhitney_ovr(act, "label")
    for g in range(k):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref_u = [scipy.stats.mannwhitneyu(x[codes == g, j].astype(np.float64), x[codes != g, j].astype(np.float64),
                                              method="asymptotic", use_continuity=True)[0] for j in range(u)]
        np.testing.assert_array_equal(mw["U"].values[g], ref_u)


# ----------------------------------------------------------------------------- FDR families


def test_fdr_families_one_region_and_interleaved():
    rng = np.random.default_rng(6)
    p = rng.uniform(size=40) ** 3
    p[5] = np.nan
    one = activity(np.zeros((2, 40)), np.array([0, 1]), ["fc1"] * 40)
    q, family = _units.fdr(p, one)
    ok = ~np.isnan(p)
    np.testing.assert_array_equal(q[ok], multipletests(p[ok], method="fdr_bh")[1])
    assert np.isnan(q[5]) and family == "fdr_bh over the 40 units of region fc1"
    regions = ["v2", "v1", "v2", "v4"] * 10  # families in order of first appearance
    mixed = activity(np.zeros((2, 40)), np.array([0, 1]), regions)
    q, family = _units.fdr(p, mixed, "bonferroni")
    for region in ("v1", "v2", "v4"):
        cols = (np.array(regions) == region) & ok
        np.testing.assert_array_equal(q[cols], multipletests(p[cols], method="bonferroni")[1])
    assert family == ("bonferroni over the 20 units of region v2; 10 units of region v1; "
                      "10 units of region v4")
    q, family = _units.fdr(p, activity(np.zeros((2, 40)), np.array([0, 1])))
    assert family == "fdr_bh over the 40 units of region all"
