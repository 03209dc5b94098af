"""Bipartite matching of instance maps to ground-truth masks: section 2.2's idx().

As in DETR the cost is the distance the loss trains on (eq. 2's D_p). With `n` objects and `T`
steps, `n <= T` matches `T - n` steps, chosen optimally, to the all-zero stop map (Fig. 3);
`n > T` matches the best `T` objects and warns (`SurplusObjectsWarning`): the rest get no
matched-instance or box loss. Rules (`LossConfig.matching`): "hungarian", the paper's;
"first_n", the same among the first `n` steps and later ones stop, so that the first dim map
ends the category and no step learns to hedge between objects; "ordered" and "largest_first",
step t takes the t-th object left to right or largest first. Solvers: "scipy" on the host
(fastest on a CPU) and "graph" in TensorFlow ops (XLA, TPUs); same optimum.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np
import tensorflow as tf
from scipy.optimize import linear_sum_assignment

from decompnet_tf.config import MATCHING_SOLVERS, MATCHINGS
from decompnet_tf.losses import PROB_EPS, pixel_weight
from decompnet_tf.ops.assignment import linear_sum_assignment as graph_linear_sum_assignment

# Cost given to padded (invalid) ground-truth columns; never selected by `hungarian_assign`,
# which only reads the first `num_gt` columns, but keeps the matrix safe for other consumers.
INVALID_COST = 1e9
# Replacement for non-finite costs (e.g. a NaN prediction) so that the Hungarian solver does
# not raise; the loss itself will still show the NaN.
_NONFINITE_COST = 1e12

_SURPLUS_MESSAGE = (
    "An image has more ground-truth objects than instance-decomposition steps T: the optimal T "
    "objects are matched and the surplus objects are left unmatched (no matched-instance or box "
    "loss). Increase the number of recurrent steps to train on every object. (Shown once per "
    "process under Python's default warning filter.)"
)


class SurplusObjectsWarning(UserWarning):
    """Warned when `num_gt > T` for some image (surplus objects are left unmatched)."""


def _warn_surplus() -> None:
    """Warns once per process: the default filter dedupes by this fixed message and call site."""
    warnings.warn(_SURPLUS_MESSAGE, SurplusObjectsWarning, stacklevel=1)


def instance_cost_matrix(
    pred: tf.Tensor, gt: tf.Tensor, gt_valid: tf.Tensor, p: float | tf.Tensor,
    loss: str = "l2", dtype: tf.DType = tf.float64,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Costs `D(pred_t, gt_j)` `[B, T, N]` and `D(pred_t, 0)` `[B, T]`, D the loss's distance.

    Expanding `v (x - y)^2` (or `v * bce`), `v = y + p` a function of the target, makes all
    pairs batched matmuls; float64 (TPUs: float32) makes the cancellation harmless, TF32-free.
    `pred` `[B, T, h, w]`, `gt` `[B, N, h, w]`; invalid columns (`gt_valid`) cost `INVALID_COST`.
    """
    pred = tf.cast(pred, dtype)
    gt = tf.cast(gt, dtype)
    shape = tf.shape(pred)
    batch, steps = shape[0], shape[1]
    num_pixels = shape[2] * shape[3]
    x = tf.reshape(pred, tf.stack([batch, steps, num_pixels]))  # [B, T, P]
    y = tf.reshape(gt, tf.stack([batch, tf.shape(gt)[1], num_pixels]))  # [B, N, P]
    v = pixel_weight(y, p)  # [B, N, P]
    denom = tf.cast(num_pixels, dtype)
    valid = tf.cast(gt_valid, tf.bool)[:, None, :]  # [B, 1, N]
    if loss == "bce":
        x = tf.clip_by_value(x, PROB_EPS, 1.0 - PROB_EPS)  # As losses.weighted_bce.
        a, b = -tf.math.log(x), -tf.math.log(1.0 - x)
        cost = (tf.einsum("btp,bnp->btn", a, v * y)
                + tf.einsum("btp,bnp->btn", b, v * (1.0 - y))) / denom
        stop_cost = pixel_weight(tf.zeros([], dtype), p) * tf.reduce_mean(b, -1)
        return tf.where(valid, cost, tf.constant(INVALID_COST, dtype)), stop_cost
    xx_v = tf.einsum("btp,bnp->btn", tf.square(x), v)
    x_vy = tf.einsum("btp,bnp->btn", x, v * y)
    yy_v = tf.reduce_sum(v * tf.square(y), axis=-1)  # [B, N]
    cost = tf.maximum((xx_v - 2.0 * x_vy + yy_v[:, None, :]) / denom, 0.0)  # [B, T, N]
    # D(x, 0): the weight of an all-zero target is v(0) = p everywhere.
    stop_cost = pixel_weight(tf.zeros([], dtype), p) * tf.reduce_mean(tf.square(x), -1)
    cost = tf.where(valid, cost, tf.constant(INVALID_COST, dtype))
    return cost, stop_cost


def _finite(a: np.ndarray) -> np.ndarray:
    return np.nan_to_num(a, nan=_NONFINITE_COST, posinf=_NONFINITE_COST, neginf=-_NONFINITE_COST)


def hungarian_assign(cost: np.ndarray, stop_cost: np.ndarray, num_gt: np.ndarray,
                     first_n: bool = False) -> np.ndarray:
    """Optimal assignment int32 `[B, T]` per image on the host: object index, or -1 = stop map.

    `cost` `[B, T, N]` (the first `num_gt[b]` columns real), `stop_cost` `[B, T]`. `n <= T` solves
    the square problem with `T - n` stop columns (`first_n`: the first `n` rows only); `n > T` the
    rectangular one. Non-finite costs become a large finite value, so the solver never raises.
    """
    cost = np.asarray(cost, dtype=np.float64)
    stop_cost = np.asarray(stop_cost, dtype=np.float64)
    num_gt = np.asarray(num_gt).reshape(-1)
    batch, steps, num_cols = cost.shape
    out = np.full((batch, steps), -1, dtype=np.int32)
    for b in range(batch):
        n = int(min(max(int(num_gt[b]), 0), num_cols))
        if n == 0 or steps == 0:
            continue  # every prediction is a stop map
        real = _finite(cost[b, :, :n])  # [T, n]
        if first_n and n < steps:
            rows, cols = linear_sum_assignment(real[:n])
            out[b, rows] = cols
        elif n >= steps:
            if n > steps:
                _warn_surplus()
            rows, cols = linear_sum_assignment(real)  # rectangular: all T rows assigned
            out[b, rows] = cols
        else:
            stop = np.repeat(_finite(stop_cost[b])[:, None], steps - n, axis=1)  # [T, T-n]
            rows, cols = linear_sum_assignment(np.concatenate([real, stop], axis=1))
            out[b, rows] = np.where(cols < n, cols, -1)
    return out


def graph_assign(cost: tf.Tensor, stop_cost: tf.Tensor, num_gt: tf.Tensor,
                 first_n: bool = False) -> tf.Tensor:
    """`hungarian_assign` in TensorFlow ops (XLA, TPUs): same arguments, rules and result.

    Each image is one square `K x K` problem, `K = max(T, N)`: the predictions then dummy rows, the
    `n` objects then stop copies; forbidden (`+inf`) pairs make its optimum the rule's.
    """
    cost = tf.convert_to_tensor(cost)
    stop_cost = tf.cast(stop_cost, cost.dtype)
    big = tf.constant(_NONFINITE_COST, cost.dtype)
    cost = tf.where(tf.math.is_finite(cost), cost, big)
    stop_cost = tf.where(tf.math.is_finite(stop_cost), stop_cost, big)
    steps, num_cols = cost.shape[1], cost.shape[2]
    k = max(steps, num_cols)
    inf = tf.constant(np.inf, cost.dtype)
    n = tf.minimum(tf.maximum(tf.cast(num_gt, tf.int32), 0), num_cols)[:, None, None]  # [B,1,1]
    row = tf.range(k)[None, :, None]  # [1, K, 1]
    col = tf.range(k)[None, None, :]  # [1, 1, K]
    pred, real = row < steps, col < n
    fewer = n <= steps
    # [B, K, K] with the prediction rows' costs in place (padded columns are never read).
    pred_real = tf.pad(cost, [[0, 0], [0, k - steps], [0, k - num_cols]])
    pred_stop = tf.pad(stop_cost, [[0, 0], [0, k - steps]])[:, :, None]
    if first_n:
        head = row < n  # Predictions that must take an object (when n <= T).
        free = tf.where(real, tf.where(head, pred_real, inf), tf.where(head, inf, 0.0))
    else:
        free = tf.where(real, pred_real, pred_stop)
    surplus = tf.where(real, pred_real, inf)  # n > T: predictions take objects only.
    predictions = tf.where(fewer, free, surplus)
    dummies = tf.where(real & fewer, inf, tf.zeros_like(pred_real))
    square = tf.where(pred, predictions, dummies)
    assigned = graph_linear_sum_assignment(square)[:, :steps]  # [B, T]
    return tf.where(assigned < n[:, :, 0], assigned, -1)


def ordered_assignment(gt_boxes: tf.Tensor, gt_valid: tf.Tensor, steps: int,
                       by: str = "position") -> tf.Tensor:
    """Fixed-order rule int32 `[B, T]`: step t takes the t-th object, -1 after the last.

    `by="position"`: box centre x, then y; "area": largest first, ties by position. `gt_boxes`
    `[B, N, 4]` `yxyx`; `gt_valid` `[B, N]`, real objects first.
    """
    if by not in ("position", "area"):
        raise ValueError(f"by must be 'position' or 'area', got {by!r}")
    boxes = tf.cast(gt_boxes, tf.float32)
    valid = tf.cast(gt_valid, tf.bool)
    # Centre x in [0, 1] dominates; centre y breaks ties.
    key = (boxes[..., 1] + boxes[..., 3]) * 0.5 + 1e-6 * (boxes[..., 0] + boxes[..., 2])
    key = tf.where(valid, key, 1e9)  # Padding last.
    order = tf.cast(tf.argsort(key, axis=-1, stable=True), tf.int32)  # [B, N]
    if by == "area":
        # A stable sort by area of the position order: equal areas stay left to right.
        area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
        # Rounded to 1e-6 of the image (under a pixel of a 384x1248 image), so that boxes of
        # equal pixel area tie despite float32 rounding of their corners.
        area = tf.round(area * 1e6)
        area = tf.gather(tf.where(valid, area, -1.0), order, batch_dims=1)
        order = tf.gather(order, tf.argsort(-area, axis=-1, stable=True), batch_dims=1)
    n = tf.reduce_sum(tf.cast(valid, tf.int32), axis=-1, keepdims=True)  # [B, 1]
    num = tf.shape(order)[1]
    pad = tf.maximum(steps - num, 0)
    order = tf.pad(order, [[0, 0], [0, pad]], constant_values=-1)[:, :steps]
    t = tf.range(steps, dtype=tf.int32)[None]
    return tf.stop_gradient(tf.where(t < n, order, -1))


def match(pred: tf.Tensor, gt: tf.Tensor, gt_valid: tf.Tensor, p: float | tf.Tensor,
          loss: str = "l2", rule: str = "hungarian",
          gt_boxes: tf.Tensor | None = None, solver: str = "scipy",
          cost_dtype: tf.DType = tf.float64, free_unmatched: bool = False) -> tf.Tensor:
    """Section 2.2's idx(): int32 `[B, T]`, each step's gt object, -1 = the all-zero stop map.

    `pred` float `[B, T, h, w]`; `gt` `[B, N, h, w]`, real objects first (`gt_valid` `[B, N]`);
    `gt_boxes` `[B, N, 4]` `yxyx` for "ordered" and "largest_first". Pass the loss's `p` and `loss`
    so that the matching minimises it; `free_unmatched` mirrors `unmatched="free"` (no stop cost).
    """
    if rule not in MATCHINGS:
        raise ValueError(f"matching rule must be one of {MATCHINGS}, got {rule!r}")
    if solver not in MATCHING_SOLVERS:
        raise ValueError(f"matching solver must be one of {MATCHING_SOLVERS}, got {solver!r}")
    if rule in ("ordered", "largest_first"):
        if gt_boxes is None:
            raise ValueError(f"the {rule!r} matching rule needs the ground-truth boxes")
        by = "position" if rule == "ordered" else "area"
        return tf.ensure_shape(ordered_assignment(gt_boxes, gt_valid, pred.shape[1], by),
                               pred.shape[:2])
    pred = tf.stop_gradient(pred)
    gt = tf.stop_gradient(gt)
    cost, stop_cost = instance_cost_matrix(pred, gt, gt_valid, p, loss, cost_dtype)
    if free_unmatched:
        stop_cost = tf.zeros_like(stop_cost)
    num_gt = tf.reduce_sum(tf.cast(gt_valid, tf.int32), axis=1)  # [B]
    if solver == "graph":
        return tf.ensure_shape(graph_assign(cost, stop_cost, num_gt, rule == "first_n"),
                               pred.shape[:2])
    assignment = tf.numpy_function(
        functools.partial(hungarian_assign, first_n=rule == "first_n"),
        [cost, stop_cost, num_gt],
        Tout=tf.int32,
        stateful=False,
        name="hungarian_assign",
    )
    # numpy_function loses the static shape; restore (and check) it as [B, T].
    return tf.ensure_shape(assignment, pred.shape[:2])
