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
"""

from __future__ import annotations

import warnings

import numpy as np
import tensorflow as tf
from scipy.optimize import linear_sum_assignment

from decompnet_tf.losses import PROB_EPS, pixel_weight

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
    loss: str = "l2",
) -> tuple[tf.Tensor, tf.Tensor]:
    """Pairwise matching costs, using exactly the loss distance D (section 2.1 eq. 2, 2.2).

    ``cost[b, t, j] = D(pred[b, t], gt[b, j])`` and ``stop_cost[b, t] = D(pred[b, t], 0)`` with
    ``D(x, y) = mean_i v(y_i) (x_i - y_i)^2`` and ``v = losses.pixel_weight`` (``y + p``).
    Because ``v`` depends on the target only, the expansion

        ``sum_i v (x - y)^2 = sum_i x^2 v - 2 sum_i x (v y) + sum_i v y^2``

    is exact and the first two sums are batched matmuls over the flattened pixels (no Python
    loop over pairs). It is evaluated in float64, which keeps the cancellation harmless and is
    immune to TF32 matmul rounding on GPUs; tiny negative round-off is clipped to 0.

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
        ``(cost, stop_cost)``: float64 ``[B, T, N]`` (``INVALID_COST`` in invalid columns) and
        float64 ``[B, T]``. Differentiable w.r.t. ``pred``; :func:`match` stops the gradient.
    """
    pred = tf.cast(pred, tf.float64)
    gt = tf.cast(gt, tf.float64)
    shape = tf.shape(pred)
    batch, steps = shape[0], shape[1]
    num_pixels = shape[2] * shape[3]
    x = tf.reshape(pred, tf.stack([batch, steps, num_pixels]))  # [B, T, P]
    y = tf.reshape(gt, tf.stack([batch, tf.shape(gt)[1], num_pixels]))  # [B, N, P]
    v = pixel_weight(y, p)  # [B, N, P]
    denom = tf.cast(num_pixels, tf.float64)
    valid = tf.cast(gt_valid, tf.bool)[:, None, :]  # [B, 1, N]
    if loss == "bce":
        x = tf.clip_by_value(x, PROB_EPS, 1.0 - PROB_EPS)  # As losses.weighted_bce.
        a, b = -tf.math.log(x), -tf.math.log(1.0 - x)
        cost = (tf.einsum("btp,bnp->btn", a, v * y)
                + tf.einsum("btp,bnp->btn", b, v * (1.0 - y))) / denom
        stop_cost = pixel_weight(tf.zeros([], tf.float64), p) * tf.reduce_mean(b, -1)
        return tf.where(valid, cost, tf.constant(INVALID_COST, tf.float64)), stop_cost
    xx_v = tf.einsum("btp,bnp->btn", tf.square(x), v)
    x_vy = tf.einsum("btp,bnp->btn", x, v * y)
    yy_v = tf.reduce_sum(v * tf.square(y), axis=-1)  # [B, N]
    cost = tf.maximum((xx_v - 2.0 * x_vy + yy_v[:, None, :]) / denom, 0.0)  # [B, T, N]
    # D(x, 0): the weight of an all-zero target is v(0) = p everywhere.
    stop_cost = pixel_weight(tf.zeros([], tf.float64), p) * tf.reduce_mean(tf.square(x), -1)
    cost = tf.where(valid, cost, tf.constant(INVALID_COST, tf.float64))
    return cost, stop_cost


def _finite(a: np.ndarray) -> np.ndarray:
    return np.nan_to_num(a, nan=_NONFINITE_COST, posinf=_NONFINITE_COST, neginf=-_NONFINITE_COST)


def hungarian_assign(cost: np.ndarray, stop_cost: np.ndarray, num_gt: np.ndarray) -> np.ndarray:
    """Optimal assignment of predictions to objects or to the stop map, per image (host side).

    For image ``b`` with ``n = min(num_gt[b], N)`` objects:

    * ``n <= T``: solve the square ``T x T`` problem whose columns are the ``n`` real objects
      (``cost[b, :, :n]``) followed by ``T - n`` copies of ``stop_cost[b]``; predictions
      assigned to a stop column (the predictions beyond the number of objects) get -1.
    * ``n > T``: solve the rectangular ``T x n`` problem: every prediction gets a real object,
      the optimal ``T`` of the ``n`` objects are matched and the surplus objects are left
      unmatched; a :class:`SurplusObjectsWarning` is emitted (once per process under the
      default warning filter).

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
        if n >= steps:
            if n > steps:
                _warn_surplus()
            rows, cols = linear_sum_assignment(real)  # rectangular: all T rows assigned
            out[b, rows] = cols
        else:
            stop = np.repeat(_finite(stop_cost[b])[:, None], steps - n, axis=1)  # [T, T-n]
            rows, cols = linear_sum_assignment(np.concatenate([real, stop], axis=1))
            out[b, rows] = np.where(cols < n, cols, -1)
    return out


def match(pred: tf.Tensor, gt: tf.Tensor, gt_valid: tf.Tensor, p: float | tf.Tensor,
          loss: str = "l2") -> tf.Tensor:
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

    Returns:
        int32 ``[B, T]``: index of the gt object matched to each prediction, -1 = stop map.
    """
    pred = tf.stop_gradient(pred)
    gt = tf.stop_gradient(gt)
    cost, stop_cost = instance_cost_matrix(pred, gt, gt_valid, p, loss)
    num_gt = tf.reduce_sum(tf.cast(gt_valid, tf.int32), axis=1)  # [B]
    assignment = tf.numpy_function(
        hungarian_assign,
        [cost, stop_cost, num_gt],
        Tout=tf.int32,
        stateful=False,
        name="hungarian_assign",
    )
    # numpy_function loses the static shape; restore (and check) it as [B, T].
    return tf.ensure_shape(assignment, pred.shape[:2])
