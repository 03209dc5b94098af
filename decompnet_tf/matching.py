"""Bipartite matching of instance maps to ground-truth masks (paper section 2.2).

The instance-decomposition RNN emits ``T`` maps per image and category in an arbitrary order,
so the loss needs the "idx()" function of section 2.2: "We find the best bipartite matching
between outputs of network and ground truth masks". Like DETR, we build a cost matrix with
the same distance the loss trains on (``decompnet_tf.losses.weighted_sq_distance``, eq. 2) and
solve it exactly with the Hungarian algorithm (``scipy.optimize.linear_sum_assignment``) on the
host, once per batch, through ``tf.numpy_function``.

Padding to a square problem. With ``n = num_gt`` objects and ``T`` predictions:

* ``n <= T``: the ``T - n`` surplus *predictions* are matched to the all-zero "stop" map (paper
  Fig. 3: "The last instance map ... is usually a black image and it works as a stop sign").
  We add ``T - n`` stop columns whose cost is ``D(g_t, 0)`` and solve the square ``T x T``
  problem, so *which* predictions become stop maps is chosen optimally too (not simply the
  last ones). These predictions get assignment -1 and the zero map as loss target.
* ``n > T``: there are more objects than recurrent steps. The optimal ``T``-subset of objects
  is matched (a rectangular ``T x n`` assignment, every prediction gets a real object) and the
  remaining ``n - T`` *objects* are left unmatched: they contribute no matched-instance or box
  loss (they still count in the summed-mask term of ``instance_losses``). A
  :class:`SurplusObjectsWarning` is emitted; raise ``T`` to train on every object.

Matching rules (``LossConfig.matching``):

* ``"hungarian"``: the above, the paper's.
* ``"first_n"``: the ``n`` objects go to the first ``n`` steps (the optimal assignment among
  them, the square ``n x n`` problem) and every later step to the stop map, so that what
  training teaches is the paper's stop rule: the first dim map ends the category. With a free
  matching any step may be the empty one, and a step that cannot tell which object it will be
  given learns to hedge between several.
* ``"ordered"``: the first ``n`` steps too, in a fixed order (left to right by box centre,
  then top to bottom; :func:`ordered_assignment`): no cost matrix and no host call.
* ``"largest_first"``: the same with the largest box first (ties left to right), so the
  first steps take the objects the category map shows most clearly.

Two solvers give the same optimum (ties may pick another assignment of equal cost):
``solver="scipy"`` (:func:`hungarian_assign` on the host through ``tf.numpy_function``; the
fastest on a CPU) and ``solver="graph"`` (:func:`graph_assign`, TensorFlow ops only through
``decompnet_tf.ops.assignment``, so that an XLA-compiled or TPU training step can match).
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
    """Warned when ``num_gt > T`` for some image (surplus objects are left unmatched)."""


def _warn_surplus() -> None:
    """Warns about surplus objects, once per process under the default warning filter.

    De-duplication comes from the ``warnings`` machinery itself rather than a mutable module
    flag: the message and category are fixed and the call site (this line, ``stacklevel=1``)
    never changes, so the default action ("default": show once per message/category/module/
    line) prints it only the first time. ``-W always``, ``-W error`` or
    ``warnings.catch_warnings`` (e.g. ``pytest.warns``) see every occurrence.
    """
    warnings.warn(_SURPLUS_MESSAGE, SurplusObjectsWarning, stacklevel=1)


def instance_cost_matrix(
    pred: tf.Tensor, gt: tf.Tensor, gt_valid: tf.Tensor, p: float | tf.Tensor,
    loss: str = "l2", dtype: tf.DType = tf.float64,
) -> tuple[tf.Tensor, tf.Tensor]:
    """Pairwise matching costs, using exactly the loss distance D (section 2.1 eq. 2, 2.2).

    ``cost[b, t, j] = D(pred[b, t], gt[b, j])`` and ``stop_cost[b, t] = D(pred[b, t], 0)`` with
    ``D(x, y) = mean_i v(y_i) (x_i - y_i)^2`` and ``v = losses.pixel_weight`` (``y + p``).
    Because ``v`` depends on the target only, the expansion

        ``sum_i v (x - y)^2 = sum_i x^2 v - 2 sum_i x (v y) + sum_i v y^2``

    is exact and the first two sums are batched matmuls over the flattened pixels (no Python
    loop over pairs). It is evaluated in float64 (`dtype`), which keeps the cancellation
    harmless and is immune to TF32 matmul rounding on GPUs; tiny negative round-off is clipped
    to 0. TPUs have no float64: there the trainer asks for float32, whose rounding can only
    reorder costs that are equal to about 1e-6.

    With ``loss="bce"`` the cost is ``losses.weighted_bce``: with ``A = -log x`` and
    ``B = -log(1 - x)``, ``v * bce = A (v y) + B (v (1 - y))``, again two matmuls, exact for
    any target in [0, 1]; ``stop_cost = p * mean B``.

    Args:
        pred: float ``[B, T, h, w]`` instance maps.
        gt: ``[B, N, h, w]`` ground-truth instance masks (padded slots arbitrary).
        gt_valid: bool or 0/1 int ``[B, N]``, true for real objects. Real objects must come first
            (padding at the end), as produced by padded batching.
        p: scalar weight floor ``p`` of D_p.
        loss: "l2" or "bce", the loss's matched-map distance (``losses.map_distance``).

    Returns:
        ``(cost, stop_cost)``: `dtype` ``[B, T, N]`` (``INVALID_COST`` in invalid columns) and
        `dtype` ``[B, T]``. Differentiable w.r.t. ``pred``; :func:`match` stops the gradient.
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
    """Optimal assignment of predictions to objects or to the stop map, per image (host side).

    For image ``b`` with ``n = min(num_gt[b], N)`` objects:

    * ``n <= T``: solve the square ``T x T`` problem whose columns are the ``n`` real objects
      (``cost[b, :, :n]``) followed by ``T - n`` copies of ``stop_cost[b]``; predictions
      assigned to a stop column (the predictions beyond the number of objects) get -1.
    * ``n > T``: solve the rectangular ``T x n`` problem: every prediction gets a real object,
      the optimal ``T`` of the ``n`` objects are matched and the surplus objects are left
      unmatched; a :class:`SurplusObjectsWarning` is emitted (once per process under the
      default warning filter).

    With ``first_n`` and ``n <= T`` the square ``n x n`` problem of the first ``n`` predictions
    is solved instead and predictions ``n..T-1`` get -1 (the "first_n" matching rule).

    Non-finite costs are replaced by a large finite value so the solver never raises.

    Args:
        cost: float ``[B, T, N]`` costs ``D(pred_t, gt_j)``; only the first ``num_gt[b]``
            columns of each image are read.
        stop_cost: float ``[B, T]`` costs ``D(pred_t, 0)``.
        num_gt: int ``[B]`` number of real objects per image (they are the first columns).

    Returns:
        int32 ``[B, T]``: ``assignment[b, t]`` = index of the matched gt object, or -1 when
        prediction ``t`` is matched to the all-zero stop map.
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
    """:func:`hungarian_assign` in TensorFlow ops (XLA- and TPU-compilable), same rules.

    Each image becomes one square ``K x K`` problem, ``K = max(T, N)``, for
    ``decompnet_tf.ops.assignment.linear_sum_assignment``: rows are the ``T`` predictions then
    ``K - T`` dummy rows; columns are the ``n`` real objects then ``K - n`` copies of the stop
    map. Forbidden pairs (``+inf``) make the square problem's optimum the rule's:

    * ``n <= T``: prediction -> stop costs ``stop_cost[t]``; dummy -> object is forbidden, so
      every object is matched to a prediction, as in the padded square problem on the host.
      With ``first_n``, prediction ``t < n`` may only take an object and ``t >= n`` only a stop
      copy (at cost 0).
    * ``n > T``: prediction -> stop is forbidden (every prediction gets an object); dummy rows
      take the ``n - T`` unmatched objects and the stop copies at cost 0.

    Args:
        cost: float ``[B, T, N]``; stop_cost: float ``[B, T]``; num_gt: int ``[B]``, as
            :func:`hungarian_assign`. Non-finite costs become a large finite value, as there.
        first_n: the "first_n" rule.

    Returns:
        int32 ``[B, T]``: object index per prediction, -1 = stop map.
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
    """A fixed-order matching rule: step t learns the t-th object in a set order.

    ``by="position"`` (the "ordered" rule): objects sorted by box centre x, then centre y (ties
    of x within 1e-6 of the image width). ``by="area"`` (the "largest_first" rule): by box area,
    largest first, ties by the position order. Padded objects go last; step ``t < n`` gets the
    ``t``-th object, later steps the stop map. With ``n > T`` the first ``T`` objects in that
    order are matched and the others left unmatched.

    Args:
        gt_boxes: float ``[B, N, 4]`` (ymin, xmin, ymax, xmax) normalised.
        gt_valid: bool or 0/1 ``[B, N]``, real objects first.
        steps: ``T``.
        by: "position" or "area".

    Returns:
        int32 ``[B, T]``: object index per step, -1 = stop map.
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
    """Hungarian matching of instance maps to ground-truth masks (paper section 2.2, "idx()").

    Computes :func:`instance_cost_matrix` under ``tf.stop_gradient`` and calls
    :func:`hungarian_assign` once per batch through ``tf.numpy_function`` (works eagerly and
    inside ``tf.function``). The result is an integer tensor, so no gradient flows through the
    matching; the loss then differentiates through the matched targets only.

    Predictions beyond the number of objects are matched to the all-zero stop map (-1), and
    which ones are chosen optimally. If an image has more objects than ``T``, the optimal ``T``
    objects are matched, the surplus objects are left unmatched and a
    :class:`SurplusObjectsWarning` is emitted once per process.

    Args:
        pred: float ``[B, T, h, w]`` instance maps.
        gt: ``[B, N, h, w]`` ground-truth instance masks.
        gt_valid: bool ``[B, N]``, True for real objects, which come first (padding last).
        p: scalar weight floor ``p`` of D_p (use the loss's ``p``).
        loss: the loss's matched-map distance, "l2" or "bce".
        rule: "hungarian", "first_n", "ordered" or "largest_first" (see the module docstring).
        gt_boxes: float ``[B, N, 4]``, needed by the "ordered" and "largest_first" rules.
        solver: "scipy" (host) or "graph" (TensorFlow ops: XLA, TPUs); same optimum.
        cost_dtype: the cost matrix's precision (float32 on TPUs, which have no float64).
        free_unmatched: a step left without an object costs nothing (instead of ``D(g_t, 0)``),
            as the loss with ``unmatched="free"`` charges nothing for it
            (``losses.instance_losses``).

    Returns:
        int32 ``[B, T]``: index of the gt object matched to each prediction, -1 = stop map.
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
