"""Exact, batched linear assignment (Hungarian matching) in TensorFlow ops only.

:func:`linear_sum_assignment` solves ``B`` square assignment problems at once with the shortest
augmenting path algorithm of Jonker & Volgenant, in the form that
``scipy.optimize.linear_sum_assignment`` implements (Crouse 2016), written with
``tf.while_loop`` and element-wise ops so that it runs eagerly, inside ``tf.function`` and under
XLA (``jit_compile=True``, hence on TPUs), where ``tf.numpy_function`` cannot.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["linear_sum_assignment"]


def linear_sum_assignment(cost: tf.Tensor) -> tf.Tensor:
    """Minimum-cost perfect matching of rows to columns for a batch of square cost matrices.

    For every batch item ``b`` it returns the permutation ``col[b]`` that minimises
    ``sum_i cost[b, i, col[b, i]]``, i.e. the same optimum as
    ``scipy.optimize.linear_sum_assignment(cost[b])`` (whose ``col_ind`` it is, as rows come
    out in order). When several assignments have the same minimal cost, either may be returned.
    No gradient flows through the matching (the input goes through ``tf.stop_gradient``).

    Algorithm: shortest augmenting paths with dual potentials (Jonker & Volgenant 1987, in the
    form of Crouse 2016, which scipy implements). Rows are added one at a time; for each new
    row a Dijkstra-like search over the reduced costs ``cost[i, j] - u[i] - v[j] >= 0`` finds
    the cheapest augmenting path to a free column, the potentials are updated so that reduced
    costs stay non-negative and are zero on the matching, and the matching is flipped along the
    path. Adding row ``r`` takes at most ``r + 1`` Dijkstra steps (each scans one row of the
    matrix, O(K)) and at most ``r + 1`` steps back along the path, so one matrix costs O(K^3)
    operations in at most ``K * (K + 1)`` sequential steps. Only the column potentials ``v``
    are stored: the row potential of a matched row is recomputed as
    ``u[i] = cost[i, col[i]] - v[col[i]]`` (complementary slackness), so row potentials never
    accumulate rounding error.

    Batching: the B problems advance together in one ``tf.while_loop``, each item with its own
    current row; an iteration does one Dijkstra step and/or one step back along the path per
    item, and finished items are masked. The loop runs ``max_b(steps_b) <= K * (K + 1)``
    sequential iterations (measured on uniform random costs: 55 for B = 24, K = 11; 137 for
    B = 96, K = 21), each doing O(B * K) element-wise work. Called eagerly, the loop runs as a
    traced (not XLA-compiled) ``tf.function``, which is ~100x faster than op-by-op execution.

    Precision: everything is computed in the input dtype. Reduced costs carry an absolute
    rounding error of a few ``K * eps * max|cost|`` (``eps`` of the dtype), so the returned
    total may exceed the true optimum by about ``K^2 * eps * max|cost[b]|`` at worst; assignments
    whose totals differ by less than that are not told apart. Integer-valued costs (below
    ``2**53 / K`` in float64, ``2**24 / K`` in float32) are solved exactly. Measured on about
    16,000 random, tied and wide-range (1e-3 .. 1e12) matrices with K up to 21, the totals
    equal scipy's (run in float64 on the same values) almost always, and never differ by more
    than ``0.01 * K * eps * max|cost[b]|``; the tests assert ``K * eps * max|cost[b]|``.
    Entries must stay below about ``finfo(dtype).max / (4 * K**2)`` in magnitude so that sums
    of them cannot overflow.

    Non-finite costs follow scipy where it has an answer: ``+inf`` marks a forbidden pair
    (replaced, per matrix, by ``(2K + 1) * max|finite cost|``, which no assignment made only
    of finite pairs can reach, so an assignment avoiding every forbidden pair is found whenever
    one exists; the finite costs of such a matrix are then resolved ``2K + 1`` times more
    coarsely). ``NaN`` and ``-inf`` are invalid. Called eagerly, the function raises
    ``ValueError`` on a ``NaN`` or ``-inf`` entry and on a matrix with no finite assignment,
    like scipy. Inside ``tf.function`` / XLA there are no checks: ``NaN`` is treated like
    ``+inf``, ``-inf`` like minus the forbidden value, and the result is still a permutation;
    test ``tf.gather(cost, col, batch_dims=2)`` for ``inf`` to detect an infeasible matrix.

    References:
        R. Jonker and A. Volgenant, "A shortest augmenting path algorithm for dense and sparse
        linear assignment problems", Computing 38(4):325-340, 1987.
        D. F. Crouse, "On implementing 2D rectangular assignment algorithms", IEEE Transactions
        on Aerospace and Electronic Systems 52(4):1679-1696, 2016.

    Args:
        cost: float32 or float64 ``[B, K, K]`` cost matrices; ``B`` and ``K`` may be dynamic
            (``B = 0`` and ``K = 0`` are allowed).

    Returns:
        int32 ``[B, K]``: ``col[b, i]`` is the column assigned to row ``i`` of ``cost[b]``;
        each ``col[b]`` is a permutation of ``0 .. K - 1``.

    Raises:
        TypeError: ``cost`` is not float32 or float64.
        ValueError: ``cost`` is not ``[B, K, K]`` (statically known shapes only); eagerly, also
            a ``NaN`` or ``-inf`` entry or an infeasible matrix (every assignment uses ``+inf``).
    """
    cost = tf.stop_gradient(tf.convert_to_tensor(cost))
    if cost.dtype not in (tf.float32, tf.float64):
        raise TypeError(f"cost must be float32 or float64, got {cost.dtype.name}")
    if cost.shape.rank is not None:
        if cost.shape.rank != 3:
            raise ValueError(f"cost must be [B, K, K], got shape {cost.shape}")
        rows, cols = cost.shape[1], cost.shape[2]
        if rows is not None and cols is not None and rows != cols:
            raise ValueError(f"cost must be square [B, K, K], got shape {cost.shape}")
    eager = tf.executing_eagerly()
    if eager and bool(tf.reduce_any(tf.math.is_nan(cost) | (cost == -np.inf))):
        raise ValueError("cost contains NaN or -inf entries")
    # Eagerly, a traced (not XLA-compiled) copy of the loop runs ~100x faster than op by op.
    col4row = (_solve_traced if eager else _solve)(_replace_nonfinite(cost))
    if eager and cost.shape[0] and cost.shape[1]:
        chosen = tf.gather(cost, col4row, batch_dims=2)  # [B, K]
        if bool(tf.reduce_any(chosen == np.inf)):
            raise ValueError("cost matrix is infeasible (every assignment uses an inf entry)")
    return col4row


def _replace_nonfinite(cost: tf.Tensor) -> tf.Tensor:
    """Replaces +inf and NaN by a per-matrix "forbidden" value F, -inf by -F.

    ``F = (2K + 1) * m`` (or 1 when ``m = 0``), with ``m`` the largest finite ``|cost|`` of the
    matrix: any assignment with an F entry costs at least ``F - (K - 1) m > K m``, more than any
    all-finite one. Finite entries are returned unchanged.
    """
    finite = tf.math.is_finite(cost)
    m = tf.reduce_max(tf.where(finite, tf.abs(cost), tf.zeros_like(cost)), axis=[1, 2],
                      keepdims=True)  # [B, 1, 1]
    k = tf.cast(tf.shape(cost)[1], cost.dtype)
    forbidden = tf.where(m > 0, (2.0 * k + 1.0) * m, tf.ones_like(m))
    replacement = tf.where(cost < 0, -forbidden, forbidden)  # NaN < 0 is False: NaN -> +F
    return tf.where(finite, cost, replacement)


def _take(params: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """``params[b, index[b]]`` for ``params [B, K]``, ``index [B]``; indices are clamped."""
    index = tf.clip_by_value(index, 0, tf.shape(params)[1] - 1)
    return tf.gather(params, index, batch_dims=1)


def _solve(cost: tf.Tensor) -> tf.Tensor:
    """The batched shortest augmenting path loop on finite ``cost [B, K, K]``; int32 ``[B, K]``.

    Per batch item the loop state is (Crouse 2016's names in brackets): the current row ``cur``
    (``curRow``; ``K`` when done), the phase (search for a free column, or walk back along the
    found path), the matching ``col4row`` / ``row4col`` (-1 = free), the column potentials
    ``v``, and for the current search the scanned columns ``sc`` (``SC``), the shortest path
    lengths ``spc`` (``shortestPathCosts``), the predecessor rows ``path``, the length
    ``min_val`` (``minVal``) of the last scanned column, the row ``row`` to scan next, and in
    the walk-back phase the column ``walk`` to be reassigned next.
    """
    dtype = cost.dtype
    shape = tf.shape(cost)
    batch = shape[0]
    # A static K keeps every [B, K] loop variable's static shape fixed across iterations (with
    # a dynamic depth, one_hot's [B, ?] would broadcast a static K = 1 to ?).
    k = cost.shape[1] if cost.shape[1] is not None else shape[1]
    inf = tf.constant(np.inf, dtype)
    max_iterations = k * (k + 1) + 1  # a safety bound; see the docstring of the public function

    zeros_i = tf.zeros([batch], tf.int32)
    free = tf.fill([batch, k], -1)
    state = (
        tf.constant(0),  # iteration counter
        zeros_i,  # cur [B]
        tf.ones([batch], tf.bool),  # searching [B]
        free,  # col4row [B, K]
        free,  # row4col [B, K]
        tf.zeros([batch, k], dtype),  # v [B, K]
        tf.zeros([batch, k], tf.bool),  # sc [B, K]
        tf.fill([batch, k], inf),  # spc [B, K]
        tf.zeros([batch, k], tf.int32),  # path [B, K]
        tf.zeros([batch], dtype),  # min_val [B]
        zeros_i,  # row [B]
        zeros_i - 1,  # walk [B]
    )

    def cond(it, cur, *_):
        return tf.logical_and(it < max_iterations, tf.reduce_any(cur < k))

    def body(it, cur, searching, col4row, row4col, v, sc, spc, path, min_val, row, walk):
        active = cur < k
        search = active & searching  # [B]
        search_k = search[:, None]

        # --- One Dijkstra step: scan `row`, then settle the closest unscanned column. ---
        row_cost = tf.gather(cost, tf.minimum(row, k - 1), batch_dims=1)  # [B, K]
        own = _take(col4row, row)  # the column `row` is matched to; -1 for the current row
        u_row = tf.where(own >= 0, _take(row_cost, own) - _take(v, own), tf.zeros_like(min_val))
        reduced = min_val[:, None] + row_cost - u_row[:, None] - v  # path length via `row`
        remaining = ~sc
        better = search_k & remaining & (reduced < spc)
        path = tf.where(better, row[:, None], path)
        spc = tf.where(better, reduced, spc)
        key = tf.where(remaining, spc, inf)
        lowest = tf.reduce_min(key, axis=1)  # [B]
        # Among the closest columns prefer a free one (it ends the search), as scipy does.
        free_col = row4col < 0
        closest = remaining & (key == lowest[:, None])
        pick = tf.where(tf.reduce_any(closest & free_col, axis=1, keepdims=True),
                        closest & free_col, closest)
        # Unreachable with finite sums; keeps the result a permutation if they overflowed.
        pick = tf.where(tf.reduce_any(pick, axis=1, keepdims=True), pick, remaining & free_col)
        col = tf.argmax(tf.cast(pick, tf.int32), axis=1, output_type=tf.int32)  # first pick
        col_owner = _take(row4col, col)
        found = search & (col_owner < 0)  # reached a free column: the sink
        sc = sc | (search_k & tf.one_hot(col, k, on_value=True, off_value=False))
        min_val = tf.where(search, lowest, min_val)
        row = tf.where(search & ~found, col_owner, row)
        # Potentials: v[j] -= min_val - spc[j] on the scanned columns (Crouse's u update is
        # implicit in u[i] = cost[i, col4row[i]] - v[col4row[i]]).
        v = tf.where(found[:, None] & sc, v - (min_val[:, None] - spc), v)
        searching = searching & ~found
        walk = tf.where(found, col, walk)

        # --- One step back along the augmenting path (also right after the sink is found). ---
        augment = active & ~searching
        walk_k = tf.one_hot(walk, k, on_value=True, off_value=False)  # all False for -1
        back_row = _take(path, walk)
        row_k = tf.one_hot(back_row, k, on_value=True, off_value=False)
        previous = _take(col4row, back_row)  # the column `back_row` gives up
        row4col = tf.where(augment[:, None] & walk_k, back_row[:, None], row4col)
        col4row = tf.where(augment[:, None] & row_k, walk[:, None], col4row)
        walk = tf.where(augment, previous, walk)
        done = augment & (back_row == cur)  # reached the new row: it is matched now

        # --- Start the next row's search. ---
        cur = tf.where(done, cur + 1, cur)
        done_k = done[:, None]
        searching = searching | done
        sc = sc & ~done_k
        spc = tf.where(done_k, inf, spc)
        path = tf.where(done_k, cur[:, None], path)
        min_val = tf.where(done, tf.zeros_like(min_val), min_val)
        row = tf.where(done, cur, row)
        walk = tf.where(done, -1, walk)
        return it + 1, cur, searching, col4row, row4col, v, sc, spc, path, min_val, row, walk

    final = tf.while_loop(cond, body, state)
    return final[3]


_solve_traced = tf.function(_solve, reduce_retracing=True)
