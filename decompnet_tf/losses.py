"""decompNet loss terms (Park & Berg 2016, sections 2.1-2.3 and 5, Appendix B).

Each returns unweighted `{name: scalar}` terms (`TERM_NAMES`), weighted only in `weighted_total`.
"""

from __future__ import annotations

from collections.abc import Mapping

import keras
import tensorflow as tf

from decompnet_tf.config import (
    BOX_LOSSES,
    INSTANCE_LOSSES,
    LAMBDA_GAMMA_READINGS,
    UNMATCHED_STEPS,
)
from decompnet_tf.ops.boxes import generalized_iou, xywh_to_yxyx, yxyx_to_xywh

CATEGORY = "category"
INSTANCE_MATCHED = "instance_matched"
INSTANCE_SUM = "instance_sum"
BOX = "box"
STOP = "stop"
INSTANCE_DICE = "instance_dice"
BOX_GIOU = "box_giou"
CENTER = "center"
TERM_NAMES = (CATEGORY, INSTANCE_MATCHED, INSTANCE_SUM, BOX, STOP, INSTANCE_DICE, BOX_GIOU,
              CENTER)
PROB_EPS = 1e-6  # Clips probabilities away from 0 and 1 before a log (here and in matching).


def _bce(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Elementwise binary cross-entropy of probabilities `x` (clipped) against targets `y`."""
    x = tf.clip_by_value(x, PROB_EPS, 1.0 - PROB_EPS)
    y = tf.cast(y, x.dtype)
    return -(y * tf.math.log(x) + (1.0 - y) * tf.math.log(1.0 - x))


def _as_float(x: tf.Tensor) -> tf.Tensor:
    """Casts to float32 unless already float32 or float64."""
    x = tf.convert_to_tensor(x)
    if x.dtype in (tf.float32, tf.float64):
        return x
    return tf.cast(x, tf.float32)


def pixel_weight(y: tf.Tensor, p: float | tf.Tensor) -> tf.Tensor:
    """Eq. 2's per-pixel weight `y + p` of targets `y` `[..., h, w]`, shared with the matching."""
    y = tf.convert_to_tensor(y)
    return y + tf.cast(p, y.dtype)


def weighted_sq_distance(x: tf.Tensor, y: tf.Tensor, p: float | tf.Tensor) -> tf.Tensor:
    """Eq. 2's D_p squared over the pixel count: `mean_{h,w} (y + p) (x - y)^2`, float `[...]`.

    `x`, `y` `[..., h, w]`; squared for a finite gradient at `x == y` (docs/paper_fidelity.md).
    """
    x = tf.convert_to_tensor(x)
    y = tf.cast(y, x.dtype)
    return tf.reduce_mean(pixel_weight(y, p) * tf.square(x - y), axis=[-2, -1])


def weighted_bce(x: tf.Tensor, y: tf.Tensor, p: float | tf.Tensor) -> tf.Tensor:
    """Section 5's pixel-wise cross-entropy with D_p's weights: `mean_{h,w} (y + p) bce(x, y)`."""
    x = tf.convert_to_tensor(x)
    y = tf.cast(y, x.dtype)
    return tf.reduce_mean(pixel_weight(y, p) * _bce(x, y), axis=[-2, -1])


def map_distance(x: tf.Tensor, y: tf.Tensor, p: float | tf.Tensor, loss: str = "l2"):
    """The matched-map distance: `weighted_sq_distance` ("l2") or `weighted_bce` ("bce")."""
    if loss not in INSTANCE_LOSSES:
        raise ValueError(f"instance loss must be one of {INSTANCE_LOSSES}, got {loss!r}")
    return weighted_sq_distance(x, y, p) if loss == "l2" else weighted_bce(x, y, p)


def size_weights(target: tf.Tensor, assignment: tf.Tensor) -> tf.Tensor:
    """Per-step `clip(mean_area / area, 0.25, 4)` `[B, T]` of matched masks, else 1 (section 5)."""
    area = tf.reduce_sum(target, axis=[-2, -1])  # [B, T]
    matched = (assignment >= 0) & (area > 0)
    mean_area = tf.math.divide_no_nan(tf.reduce_sum(tf.where(matched, area, 0.0)),
                                      tf.reduce_sum(tf.cast(matched, area.dtype)))
    w = tf.clip_by_value(tf.math.divide_no_nan(mean_area, area), 0.25, 4.0)
    return tf.stop_gradient(tf.where(matched, w, tf.ones_like(w)))


def stop_loss(objectness: tf.Tensor, assignment: tf.Tensor) -> dict[str, tf.Tensor]:
    """`{"stop": mean BCE}` of the stop head's `objectness` `[B, T]` against `assignment >= 0`."""
    return {STOP: tf.reduce_mean(_bce(_as_float(objectness), assignment >= 0))}


def object_size_scale(masks: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """Category-loss scale float32 `[B, h, w, C]`, inverse to object area (section 5).

    Each object of `masks` `[B, C, M, h, w]`: `clip(mean_area / area, 0.25, 4)`; overlaps: mean.
    """
    masks = _as_float(masks)
    area = tf.reduce_sum(masks, axis=[-2, -1])  # [B, C, M]
    real = tf.cast(valid, tf.bool) & (area > 0)
    mean_area = tf.math.divide_no_nan(tf.reduce_sum(tf.where(real, area, 0.0)),
                                      tf.reduce_sum(tf.cast(real, area.dtype)))
    w = tf.where(real, tf.clip_by_value(tf.math.divide_no_nan(mean_area, area), 0.25, 4.0), 0.0)
    masks = masks * tf.cast(real, masks.dtype)[..., None, None]
    cover = tf.reduce_sum(masks, axis=2)  # [B, C, h, w]
    weighted = tf.reduce_sum(masks * w[..., None, None], axis=2)
    scale = tf.where(cover > 0, tf.math.divide_no_nan(weighted, cover), tf.ones_like(cover))
    return tf.stop_gradient(tf.transpose(scale, [0, 2, 3, 1]))


def category_loss(pred: tf.Tensor, target: tf.Tensor, p: float | tf.Tensor,
                  scale: tf.Tensor | None = None) -> dict[str, tf.Tensor]:
    """`{"category": scalar}`: eq. 2's D_p (section 2.1), the mean over batch and categories.

    `pred`, `target` `[B, h, w, C]`; `target` sums the instance masks (overlaps count k times).
    """
    pred = _as_float(pred)
    target = tf.stop_gradient(tf.cast(target, pred.dtype))
    scale = 1.0 if scale is None else tf.stop_gradient(tf.cast(scale, pred.dtype))
    # The mean of weighted_sq_distance's per-map means: every map has h * w pixels.
    per_pixel = scale * pixel_weight(target, p) * tf.square(pred - target)
    return {CATEGORY: tf.reduce_mean(per_pixel)}


def center_loss(pred: tf.Tensor, target: tf.Tensor) -> dict[str, tf.Tensor]:
    """`{"center": scalar}`: CenterNet's focal loss of centre maps (not in the paper).

    `pred` (0, 1), `target` (`ops.centers.center_heatmap`) `[B, h, w, C]`; a pixel is a centre
    where the target is 1. The sum over pixels per centre: `-(1 - x)^2 log x` at centres,
    `-(1 - y)^4 x^2 log(1 - x)` elsewhere, so pixels near a centre are pushed down gently.
    """
    pred = tf.clip_by_value(_as_float(pred), PROB_EPS, 1.0 - PROB_EPS)
    target = tf.stop_gradient(tf.cast(target, pred.dtype))
    centre = tf.cast(target >= 1.0 - 1e-4, pred.dtype)
    pos = -tf.square(1.0 - pred) * tf.math.log(pred) * centre
    neg = (-tf.pow(1.0 - target, 4.0) * tf.square(pred) * tf.math.log(1.0 - pred)
           * (1.0 - centre))
    return {CENTER: (tf.reduce_sum(pos) + tf.reduce_sum(neg))
            / tf.maximum(tf.reduce_sum(centre), 1.0)}


def _gather_assigned(values: tf.Tensor, assignment: tf.Tensor) -> tf.Tensor:
    """`values[b, assignment[b, t]]`, `[B, T, ...]` from `values` `[B, N, ...]`; zeros for -1."""
    # Append one all-zero item at index N and send -1 there: exact (no one-hot matmul, which
    # TF32 would round on GPUs) and valid even when N == 0.
    zeros = tf.zeros_like(values[:, :1])
    padded = tf.concat([values, zeros], axis=1)  # [B, N+1, ...]
    n = tf.shape(values, out_type=assignment.dtype)[1]
    idx = tf.where(assignment >= 0, assignment, n)
    return tf.gather(padded, idx, batch_dims=1)


def _check_reading(reading: str) -> None:
    if reading not in LAMBDA_GAMMA_READINGS:
        raise ValueError(f"paper_lambda_gamma must be one of {LAMBDA_GAMMA_READINGS}, got "
                         f"{reading!r}")


def instance_floors(reading: str, p: float | tf.Tensor, lam: float | tf.Tensor,
                    gamma: float | tf.Tensor) -> tuple:
    """D_p's floors `(p_matched, p_sum)` of eq. 3's terms: `(p, p)`; "floors": `(lam, gamma)`."""
    _check_reading(reading)
    return (p, p) if reading == "weights" else (lam, gamma)


def instance_term_weights(reading: str, lam: float | tf.Tensor,
                          gamma: float | tf.Tensor) -> tuple:
    """Weights `(w_matched, w_sum)` of eq. 3's terms: `(lam, gamma)`; "floors": `(1.0, 1.0)`."""
    _check_reading(reading)
    return (lam, gamma) if reading == "weights" else (1.0, 1.0)


def instance_losses(
    pred: tf.Tensor, gt: tf.Tensor, assignment: tf.Tensor, p: float | tf.Tensor,
    loss: str = "l2", size_weighting: bool = False, p_sum: float | tf.Tensor | None = None,
    unmatched: str = "empty",
) -> dict[str, tf.Tensor]:
    """Eq. 3's terms `instance_matched`, `instance_sum` (section 2.2), unweighted.

    Args:
        pred: float `[B, T, h, w]` instance maps, one per recurrent step.
        gt: `[B, N, h, w]` binary masks, padded slots all-zero.
        assignment: int `[B, T]` from `decompnet_tf.matching.match`; -1 = the all-zero map.
        p_sum: the summed-map term's floor (default `p`); that term stays L2 (a sum is no
            probability). Eq. 3's readings (`p_sum`, `unmatched`): docs/paper_fidelity.md.
    """
    pred = _as_float(pred)
    gt = tf.stop_gradient(tf.cast(gt, pred.dtype))
    assignment = tf.cast(assignment, tf.int32)
    target = _gather_assigned(gt, assignment)  # [B, T, h, w]
    per_step = map_distance(pred, target, p, loss)  # [B, T]
    if size_weighting:
        per_step = per_step * size_weights(target, assignment)
    if unmatched not in UNMATCHED_STEPS:
        raise ValueError(f"unmatched must be one of {UNMATCHED_STEPS}, got {unmatched!r}")
    if unmatched == "free":
        per_step = tf.where(assignment >= 0, per_step, tf.zeros_like(per_step))
    matched = tf.reduce_sum(per_step, axis=1)  # [B]
    # Stop-condition term: compare the summed maps (section 2.2).
    summed = weighted_sq_distance(tf.reduce_sum(pred, axis=1), tf.reduce_sum(gt, axis=1),
                                  p if p_sum is None else p_sum)  # [B]
    return {INSTANCE_MATCHED: tf.reduce_mean(matched), INSTANCE_SUM: tf.reduce_mean(summed)}


def dice_loss(pred: tf.Tensor, gt: tf.Tensor, assignment: tf.Tensor) -> dict[str, tf.Tensor]:
    """`{"instance_dice": scalar}`, DETR's mask loss on matched steps (not in the paper).

    `1 - (2 sum(xy) + 1) / (sum(x) + sum(y) + 1)`, `x` in [0, 1]: unlike eq. 2, sizes weigh alike.
    """
    pred = _as_float(pred)
    assignment = tf.cast(assignment, tf.int32)
    target = _gather_assigned(tf.stop_gradient(tf.cast(gt, pred.dtype)), assignment)
    x = tf.clip_by_value(pred, 0.0, 1.0)
    inter = tf.reduce_sum(x * target, axis=[-2, -1])
    total = tf.reduce_sum(x, axis=[-2, -1]) + tf.reduce_sum(target, axis=[-2, -1])
    dice = 1.0 - (2.0 * inter + 1.0) / (total + 1.0)  # [B, T]
    matched = tf.cast(assignment >= 0, dice.dtype)
    return {INSTANCE_DICE: tf.math.divide_no_nan(tf.reduce_sum(dice * matched),
                                                 tf.reduce_sum(matched))}


def box_loss(
    pred_boxes: tf.Tensor, gt_boxes: tf.Tensor, assignment: tf.Tensor,
    distance: str = "smooth_l1", giou: bool = False,
) -> dict[str, tf.Tensor]:
    """Eq. 4's loss (section 2.3), summed over coordinates, mean over matched steps: `{"box": ...}`.

    `pred_boxes` `[B, T, 4]` `xywh`, `gt_boxes` `[B, N, 4]` `yxyx`, in [0, 1]; `giou` adds
    "box_giou", the mean of `1 - GIoU`.
    """
    if distance not in BOX_LOSSES:
        raise ValueError(f"box distance must be one of {BOX_LOSSES}, got {distance!r}")
    pred_boxes = _as_float(pred_boxes)
    gt_xywh = tf.stop_gradient(yxyx_to_xywh(tf.cast(gt_boxes, pred_boxes.dtype)))
    assignment = tf.cast(assignment, tf.int32)
    target = _gather_assigned(gt_xywh, assignment)  # [B, T, 4]
    matched = assignment >= 0  # [B, T]
    # Stop predictions take their (zero) target BEFORE the loss: 0 loss and 0 gradient even for
    # a NaN/inf box (masking afterwards would leak NaN gradients through tf.where).
    pred_boxes = tf.where(matched[..., None], pred_boxes, target)
    # Eq. 4's smooth L1 (Girshick 2015, beta 1) is the Huber loss with delta 1, per coordinate.
    # On [0, 1] coordinates it never leaves its quadratic part, hence the "l1" option (DETR).
    dist = keras.losses.huber(target[..., None], pred_boxes[..., None], delta=1.0) if (
        distance == "smooth_l1") else tf.abs(pred_boxes - target)
    count = tf.reduce_sum(tf.cast(matched, pred_boxes.dtype))
    out = {BOX: tf.math.divide_no_nan(tf.reduce_sum(dist), count)}
    if giou:
        # Stop predictions: their box equals the (zero) target, so their term is masked out.
        g = generalized_iou(xywh_to_yxyx(pred_boxes), xywh_to_yxyx(target))
        out[BOX_GIOU] = tf.math.divide_no_nan(
            tf.reduce_sum(tf.where(matched, 1.0 - g, 0.0)), count)
    return out


def weighted_total(
    terms: Mapping[str, tf.Tensor],
    lam: float | tf.Tensor,
    gamma: float | tf.Tensor,
    eta: float | tf.Tensor,
    stop_weight: float | tf.Tensor = 1.0,
    dice_weight: float | tf.Tensor = 0.0,
    giou_weight: float | tf.Tensor = 0.0,
    lambda_gamma: str = "weights",
    center_weight: float | tf.Tensor = 1.0,
) -> tf.Tensor:
    """Weighted sum of the terms given: the only place where lambda, gamma and eta apply.

    Weights: `instance_term_weights(...)` for the instance terms, eta for `box`, else `*_weight`.
    """
    unknown = sorted(set(terms) - set(TERM_NAMES))
    if unknown:
        raise ValueError(f"Unknown loss terms {unknown}; expected a subset of {TERM_NAMES}.")
    w_matched, w_sum = instance_term_weights(lambda_gamma, lam, gamma)
    weights = {CATEGORY: 1.0, INSTANCE_MATCHED: w_matched, INSTANCE_SUM: w_sum, BOX: eta,
               STOP: stop_weight, INSTANCE_DICE: dice_weight, BOX_GIOU: giou_weight,
               CENTER: center_weight}
    dtype = tf.float32
    if any(tf.convert_to_tensor(v).dtype == tf.float64 for v in terms.values()):
        dtype = tf.float64
    total = tf.zeros([], dtype)
    for name in TERM_NAMES:
        if name in terms:
            value = tf.cast(terms[name], dtype)
            total += tf.cast(weights[name], dtype) * value
    return total
