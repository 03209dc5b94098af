"""Tests for decompnet_tf.ops.assignment: the batched TF solver against scipy's, case by case."""

import numpy as np
import pytest
import tensorflow as tf
from scipy.optimize import linear_sum_assignment as scipy_lsa

from decompnet_tf.ops.assignment import linear_sum_assignment

_xla = tf.function(linear_sum_assignment, jit_compile=True, reduce_retracing=True)
_graph = tf.function(linear_sum_assignment, reduce_retracing=True)


def _scipy_totals(cost: np.ndarray) -> np.ndarray:
    """Optimal total cost of each matrix of ``cost [B, K, K]``, from scipy in float64."""
    cost = np.asarray(cost, np.float64)
    return np.array([m[scipy_lsa(m)].sum() for m in cost])


def _totals(cost: np.ndarray, col: np.ndarray) -> np.ndarray:
    """Total cost of the assignment ``col [B, K]`` of each matrix, summed in float64."""
    return np.take_along_axis(np.asarray(cost, np.float64), col[:, :, None], axis=2).sum((1, 2))


def _assert_optimal(cost: np.ndarray, col, exact: bool = False) -> None:
    """Every row of ``col`` is a permutation and its total equals scipy's optimum.

    ``exact``: bit-for-bit equal totals (integer costs, where every sum is exact). Otherwise
    within ``K * eps * max|cost|`` per matrix (``eps`` of the input dtype), far tighter than
    the gap between distinct assignments of random costs.
    """
    col = np.asarray(col)
    batch, k = cost.shape[:2]
    assert col.shape == (batch, k) and col.dtype == np.int32
    np.testing.assert_array_equal(np.sort(col, axis=1), np.broadcast_to(np.arange(k), col.shape))
    ours, ref = _totals(cost, col), _scipy_totals(cost)
    if exact:
        np.testing.assert_array_equal(ours, ref)
    else:
        tol = k * np.finfo(cost.dtype).eps * np.abs(cost.astype(np.float64)).max(axis=(1, 2))
        assert np.all(np.abs(ours - ref) <= tol), np.max(np.abs(ours - ref) - tol)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_thousands_of_random_matrices_match_scipy(dtype):
    rng = np.random.default_rng(0)
    for k in range(1, 13):  # 12 x 300 = 3600 matrices per dtype, one call per K
        scale = 10.0 ** rng.uniform(-3, 3, size=(300, 1, 1))
        cost = (rng.normal(size=(300, k, k)) * scale).astype(dtype)
        _assert_optimal(cost, linear_sum_assignment(cost))


def test_many_ties_small_integers_are_exact():
    rng = np.random.default_rng(1)
    for k in (2, 3, 5, 8, 12):
        cost = rng.integers(0, 3, size=(400, k, k)).astype(np.float64)  # costs in {0, 1, 2}
        _assert_optimal(cost, linear_sum_assignment(cost), exact=True)
    cost = rng.integers(0, 2, size=(400, 7, 7)).astype(np.float32)
    _assert_optimal(cost, linear_sum_assignment(cost), exact=True)


def test_degenerate_matrices():
    k = 9
    rng = np.random.default_rng(2)
    i, j = np.meshgrid(np.arange(k), np.arange(k), indexing="ij")
    cases = [
        np.zeros((k, k)),
        np.full((k, k), 3.5),
        np.full((k, k), -1e9),
        np.outer(np.arange(k), np.ones(k)),  # every assignment has the same cost
        (i * j).astype(np.float64),  # optimum is the anti-diagonal: long augmenting paths
        -(i * j).astype(np.float64),  # optimum is the diagonal
        np.abs(i - j).astype(np.float64),
        np.tril(np.full((k, k), 5.0)) + rng.integers(0, 2, size=(k, k)),
    ]
    cost = np.stack(cases)
    _assert_optimal(cost, linear_sum_assignment(cost), exact=True)
    col = linear_sum_assignment(cost[4:5]).numpy()
    np.testing.assert_array_equal(col[0], np.arange(k)[::-1])


def test_huge_costs_mixed_with_small_ones():
    rng = np.random.default_rng(3)
    for k in (4, 11):
        small = rng.uniform(0, 10, size=(300, k, k))
        huge = 10.0 ** rng.uniform(9, 12, size=(300, k, k))
        cost = np.where(rng.uniform(size=(300, k, k)) < 0.4, huge, small)
        _assert_optimal(cost, linear_sum_assignment(cost))
    # Padding as the matcher does it: invalid ground-truth columns cost 1e9; the small part
    # must still be solved exactly (here all sums are exact binary fractions).
    cost = rng.integers(0, 64, size=(300, 8, 8)) / 8.0
    cost[:, :, 5:] = 1e9
    _assert_optimal(cost, linear_sum_assignment(cost), exact=True)


def test_negative_costs_and_maximisation():
    rng = np.random.default_rng(4)
    cost = rng.normal(-100.0, 30.0, size=(300, 6, 6))
    _assert_optimal(cost, linear_sum_assignment(cost))
    # Maximising a score = minimising its negation (scipy's maximize=True).
    score = rng.uniform(size=(50, 6, 6))
    col = linear_sum_assignment(-score).numpy()
    best = np.array([m[scipy_lsa(m, maximize=True)].sum() for m in score])
    np.testing.assert_allclose(_totals(score, col), best, rtol=1e-14)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_k_equals_one_and_empty_shapes(dtype):
    cost = np.random.default_rng(5).normal(size=(7, 1, 1)).astype(dtype)
    col = linear_sum_assignment(cost)
    assert col.dtype == tf.int32
    np.testing.assert_array_equal(col.numpy(), np.zeros((7, 1), np.int32))
    assert linear_sum_assignment(np.zeros((0, 5, 5), dtype)).shape == (0, 5)
    assert linear_sum_assignment(np.zeros((3, 0, 0), dtype)).shape == (3, 0)


def _mixed_batch(rng: np.random.Generator, k: int, dtype) -> np.ndarray:
    """Random, tied, integer and wide-range matrices in one ``[200, k, k]`` batch."""
    cost = np.concatenate([
        rng.uniform(size=(50, k, k)),
        rng.integers(0, 3, size=(50, k, k)),
        rng.normal(-5.0, 10.0, size=(50, k, k)),
        10.0 ** rng.uniform(-2, 8, size=(50, k, k)),
    ])
    return cost.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_xla_and_tf_function_match_eager_and_scipy(dtype):
    rng = np.random.default_rng(6)
    for k in (3, 11):
        cost = _mixed_batch(rng, k, dtype)
        eager = linear_sum_assignment(cost).numpy()
        xla = _xla(tf.constant(cost)).numpy()
        graph = _graph(tf.constant(cost)).numpy()
        for col in (eager, xla, graph):
            _assert_optimal(cost, col)
        tol = k * np.finfo(dtype).eps * np.abs(cost.astype(np.float64)).max(axis=(1, 2))
        assert np.all(np.abs(_totals(cost, xla) - _totals(cost, eager)) <= tol)
        np.testing.assert_array_equal(_totals(cost, graph), _totals(cost, eager))


def test_dynamic_batch_size_in_tf_function():
    k = 5

    @tf.function(input_signature=[tf.TensorSpec([None, k, k], tf.float64)])
    def solve(cost):
        col = linear_sum_assignment(cost)
        assert col.shape.as_list() == [None, k]  # static K survives, B stays dynamic
        return col

    rng = np.random.default_rng(7)
    for batch in (1, 24, 96):
        cost = rng.uniform(size=(batch, k, k))
        _assert_optimal(cost, solve(tf.constant(cost)))
    assert solve.experimental_get_tracing_count() == 1

    @tf.function(input_signature=[tf.TensorSpec([None, None, None], tf.float64)],
                 jit_compile=True)
    def solve_any(cost):
        return linear_sum_assignment(cost)

    for batch, k in ((3, 2), (40, 7)):
        cost = rng.integers(0, 4, size=(batch, k, k)).astype(np.float64)
        _assert_optimal(cost, solve_any(tf.constant(cost)), exact=True)


def test_inf_marks_forbidden_pairs_like_scipy():
    rng = np.random.default_rng(8)
    k = 6
    cost = rng.uniform(0, 10, size=(300, k, k))
    forbidden = rng.uniform(size=cost.shape) < 0.5
    allowed = np.zeros_like(forbidden)  # keep one random permutation allowed: feasible
    for b in range(len(cost)):
        allowed[b, np.arange(k), rng.permutation(k)] = True
    cost[forbidden & ~allowed] = np.inf
    for col in (linear_sum_assignment(cost), _xla(tf.constant(cost))):
        col = np.asarray(col)
        assert np.isfinite(_totals(cost, col)).all()
        np.testing.assert_allclose(_totals(cost, col), _scipy_totals(cost), rtol=1e-13)


def test_invalid_entries_raise_eagerly_and_give_permutations_in_graphs():
    good = np.random.default_rng(9).uniform(size=(4, 3, 3))
    nan, minus_inf, infeasible = good.copy(), good.copy(), good.copy()
    nan[1, 2, 0] = np.nan
    minus_inf[2, 0, 1] = -np.inf
    infeasible[3, 1, :] = np.inf  # row 1 of matrix 3 cannot be assigned
    with pytest.raises(ValueError, match="NaN or -inf"):
        linear_sum_assignment(nan)
    with pytest.raises(ValueError, match="NaN or -inf"):
        linear_sum_assignment(minus_inf)
    with pytest.raises(ValueError, match="infeasible"):
        linear_sum_assignment(infeasible)
    with pytest.raises(ValueError, match="infeasible"):  # scipy agrees
        scipy_lsa(infeasible[3])
    for fn in (_graph, _xla):
        for bad in (nan, minus_inf, infeasible):
            col = fn(tf.constant(bad)).numpy()
            np.testing.assert_array_equal(np.sort(col, axis=1), np.tile(np.arange(3), (4, 1)))
            _assert_optimal(good[:1], col[:1])  # the valid matrices are still solved
        # Infeasibility is visible in the chosen costs.
        chosen = tf.gather(infeasible, fn(tf.constant(infeasible)), batch_dims=2).numpy()
        assert np.isinf(chosen[3]).any() and np.isfinite(chosen[:3]).all()


def test_no_gradient_and_input_checks():
    cost = tf.Variable(np.random.default_rng(10).uniform(size=(2, 4, 4)))
    with tf.GradientTape() as tape:
        col = linear_sum_assignment(cost)
        matched = tf.reduce_sum(tf.gather(cost, col, batch_dims=2))
    grad = tape.gradient(matched, cost).numpy()
    # Only the gather contributes: exactly one 1 per row, at the matched column.
    np.testing.assert_array_equal(grad.sum(axis=2), np.ones((2, 4)))
    np.testing.assert_array_equal(np.take_along_axis(grad, col.numpy()[:, :, None], 2), 1.0)
    with pytest.raises(TypeError, match="float32 or float64"):
        linear_sum_assignment(tf.zeros([2, 3, 3], tf.int32))
    with pytest.raises(ValueError, match="square"):
        linear_sum_assignment(tf.zeros([2, 3, 4]))
    with pytest.raises(ValueError, match=r"\[B, K, K\]"):
        linear_sum_assignment(tf.zeros([3, 3]))
