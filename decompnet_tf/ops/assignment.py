"""Exact, batched linear assignment in TensorFlow ops, for XLA and TPUs.

Jonker & Volgenant's shortest augmenting paths (Computing 38(4), 1987), as Crouse (IEEE TAES
52(4), 2016) and scipy write them, in a `tf.while_loop`: XLA cannot run `tf.numpy_function`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

__all__ = ["linear_sum_assignment"]


def linear_sum_assignment(cost: tf.Tensor) -> tf.Tensor:
    """Minimum-cost perfect matchings int32 `[B, K]` of square costs `[B, K, K]`, as scipy's.

    `col[b, i]` is row i's column (scipy's `col_ind`); ties may give another optimum; no gradient.
    `B`, `K` may be dynamic or 0. Computed in the dtype (float32 or float64): totals within about
    `K^2 * eps * max|cost[b]|` are not told apart; keep entries below `finfo.max / (4 K^2)`. `+inf`
    marks a forbidden pair. Unchecked in `tf.function`: `inf` among the chosen costs = infeasible.

    Raises:
        TypeError: `cost` is not float32 or float64.
        ValueError: `cost` is not `[B, K, K]`; eagerly also a NaN or `-inf` entry, or a matrix
            whose every assignment uses `+inf` (like scipy).
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
    # Eagerly, a traced (not XLA-compiled) copy of the loop runs far faster than op by op.
    col4row = (_solve_traced if eager else _solve)(_replace_nonfinite(cost))
    if eager and cost.shape[0] and cost.shape[1]:
        chosen = tf.gather(cost, col4row, batch_dims=2)  # [B, K]
        if bool(tf.reduce_any(chosen == np.inf)):
            raise ValueError("cost matrix is infeasible (every assignment uses an inf entry)")
    return col4row


def _replace_nonfinite(cost: tf.Tensor) -> tf.Tensor:
    """Replaces +inf and NaN by a per-matrix forbidden value F, -inf by -F.

    `F = (2K + 1) m`, `m` the largest finite `|cost|` (1 if 0): an assignment using F costs at
    least `F - (K - 1) m > K m`, more than any all-finite one.
    """
    finite = tf.math.is_finite(cost)
    m = tf.reduce_max(tf.where(finite, tf.abs(cost), tf.zeros_like(cost)), axis=[1, 2],
                      keepdims=True)  # [B, 1, 1]
    k = tf.cast(tf.shape(cost)[1], cost.dtype)
    forbidden = tf.where(m > 0, (2.0 * k + 1.0) * m, tf.ones_like(m))
    replacement = tf.where(cost < 0, -forbidden, forbidden)  # NaN < 0 is False: NaN -> +F
    return tf.where(finite, cost, replacement)


def _take(params: tf.Tensor, index: tf.Tensor) -> tf.Tensor:
    """`params[b, index[b]]` for `params` `[B, K]`, `index` `[B]`; indices are clamped."""
    index = tf.clip_by_value(index, 0, tf.shape(params)[1] - 1)
    return tf.gather(params, index, batch_dims=1)


def _solve(cost: tf.Tensor) -> tf.Tensor:
    """The batched augmenting-path loop on finite `cost` `[B, K, K]`; int32 `[B, K]`.

    Rows join one at a time: a Dijkstra search over reduced costs `cost - u - v >= 0` finds a
    free column, then `v` is updated and the path flipped. `u[i] = cost[i, col[i]] - v[col[i]]`
    is recomputed, never stored, so it gathers no rounding. `sc`, `spc`: Crouse's SC and
    shortestPathCosts.
    """
    dtype = cost.dtype
    shape = tf.shape(cost)
    batch = shape[0]
    # A static K keeps every [B, K] loop variable's static shape fixed across iterations (with
    # a dynamic depth, one_hot's [B, ?] would broadcast a static K = 1 to ?).
    k = cost.shape[1] if cost.shape[1] is not None else shape[1]
    inf = tf.constant(np.inf, dtype)
    max_iterations = k * (k + 1) + 1  # a safety bound: row r takes <= 2 (r + 1) steps

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
