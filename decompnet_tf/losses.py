"""decompNet loss terms (Park & Berg, ICLR 2016 workshop, sections 2.1-2.4, Appendix B).

Every loss function is pure and returns a ``{name: scalar}`` dict of *unweighted* terms; the
hyper-parameters lambda, gamma and eta are applied in exactly one place, :func:`weighted_total`.

Term names (the keys of the returned dicts):

* ``"category"``          - mask loss of the category response maps (section 2.1, eq. 2).
* ``"instance_matched"``  - distance of every instance map to its matched target (section 2.2).
* ``"instance_sum"``      - distance of the sum of instance maps to the sum of all ground-truth
  masks, the "stop condition" term (section 2.2).
* ``"box"``               - smooth-L1 box regression (section 2.3, eq. 4).
* ``"stop"``              - binary cross-entropy of the optional stop head ("this step holds a
  matched object"); not in the paper.
* ``"box_giou"``          - one minus the generalized IoU of each matched box (DETR's box
  loss pairs it with L1); not in the paper.
* ``"instance_dice"``     - one minus the dice overlap of each matched instance map with its
  object's mask (DETR's mask loss); not in the paper.

Options from the paper's section 5 (future work), off by default: ``loss="bce"`` replaces the
squared distance of the matched instance maps by a pixel-wise sigmoid cross-entropy with the
same weights ``y + p``, and ``size_weighting`` weighs each matched object inversely to its area.

Ground-truth tensors (masks, boxes) are wrapped in ``tf.stop_gradient``: gradients flow into
the predictions only. Half-precision predictions (mixed precision) are upcast to float32 before
any loss arithmetic.
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
TERM_NAMES = (CATEGORY, INSTANCE_MATCHED, INSTANCE_SUM, BOX, STOP, INSTANCE_DICE, BOX_GIOU)
PROB_EPS = 1e-6  # Clips probabilities away from 0 and 1 before a log (here and in matching).


def _bce(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
    """Elementwise binary cross-entropy of probabilities x (clipped) against targets y."""
    x = tf.clip_by_value(x, PROB_EPS, 1.0 - PROB_EPS)
    y = tf.cast(y, x.dtype)
    return -(y * tf.math.log(x) + (1.0 - y) * tf.math.log(1.0 - x))


def _as_float(x: tf.Tensor) -> tf.Tensor:
    """Converts to a float tensor of at least float32 precision (float16/bfloat16/int/bool ->
    float32; float32/float64 unchanged)."""
    x = tf.convert_to_tensor(x)
    if x.dtype in (tf.float32, tf.float64):
        return x
    return tf.cast(x, tf.float32)


def pixel_weight(y: tf.Tensor, p: float | tf.Tensor) -> tf.Tensor:
    """Per-pixel weight of the squared distance D_p: ``y + p``.

    This is the single definition shared by :func:`weighted_sq_distance` and by the matching
    cost (``decompnet_tf.matching.instance_cost_matrix``), so that the Hungarian matching
    minimises exactly the distance the loss trains on.

    Paper section 2.1, eq. 2 reads ``D_p(x, y) = ||(Diag(y) + pI)(x - y)||`` in our text, with a
    stray "p" below the line: the remains of a square-root sign lost in extraction. The loss the
    paper cites at that spot (Szegedy et al. 2013, "Deep neural networks for object detection")
    is ``||(Diag(m) + lambda I)^{1/2} (DNN(x) - m)||^2``, so we read eq. 2 as
    ``D_p(x, y) = ||(Diag(y) + pI)^{1/2} (x - y)||``: its square weights pixel i by
    ``y_i + p``. Object pixels weigh ``1 + p``, pixels where k masks overlap ``k + p``, and
    background ``p``.

    Args:
        y: float ``[..., h, w]`` target map (instance mask or sum of masks, >= 0).
        p: scalar, the weight floor ``p > 0`` that stops the trivial all-zero solution.

    Returns:
        float ``[..., h, w]``, same dtype as ``y``.
    """
    y = tf.convert_to_tensor(y)
    return y + tf.cast(p, y.dtype)


def weighted_sq_distance(x: tf.Tensor, y: tf.Tensor, p: float | tf.Tensor) -> tf.Tensor:
    """The mask distance D_p of paper section 2.1, eq. 2, as a per-pixel mean of squares.

    With eq. 2 read as ``D_p(x, y) = ||(Diag(y) + pI)^{1/2}(x - y)||`` (see
    :func:`pixel_weight`), we return

        ``D(x, y) = mean_{h,w} (y + p) * (x - y) ** 2 = D_p(x, y)^2 / (h*w)``

    i.e. the squared weighted norm divided by the number of pixels. This is a monotone
    transform of the paper's norm (same minimiser, same ranking of candidates for one map),
    its gradient ``2 (y+p) (x-y) / hw`` stays finite at ``x == y`` (the gradient of the plain
    norm is 0/0 there) and it does not grow with image size. The Hungarian matching sums this
    squared form too, so it minimises the trained loss (a matching on sums of unsquared norms
    could differ when costs are close). ``Diag(y)`` puts more weight on object pixels, and on
    pixels where masks overlap (``y = 2`` for two overlapping instances), and ``p`` keeps a
    non-zero penalty on background so that all-zero output is not a trivial solution.

    Gradients flow through both arguments; the loss functions below stop the gradient of the
    target themselves.

    Args:
        x: float ``[..., h, w]`` prediction maps.
        y: ``[..., h, w]`` target maps (broadcastable to ``x``); cast to ``x``'s dtype.
        p: scalar weight floor ``p``.

    Returns:
        float ``[...]``: one distance per map (the last two axes are reduced).
    """
    x = tf.convert_to_tensor(x)
    y = tf.cast(y, x.dtype)
    return tf.reduce_mean(pixel_weight(y, p) * tf.square(x - y), axis=[-2, -1])


def weighted_bce(x: tf.Tensor, y: tf.Tensor, p: float | tf.Tensor) -> tf.Tensor:
    """Pixel-wise cross-entropy with the weights of D_p: ``mean_{h,w} (y + p) bce(x, y)``.

    The paper's section 5 suggests a pixel-wise classification loss instead of L2 regression;
    the weights ``y + p`` are kept so that the floor ``p`` plays the same role as in eq. 2.

    Args:
        x: float ``[..., h, w]`` probabilities (sigmoid maps); clipped to [1e-6, 1 - 1e-6].
        y: ``[..., h, w]`` targets in [0, 1], broadcastable to ``x``.
        p: scalar weight floor.

    Returns:
        float ``[...]``: one loss per map.
    """
    x = tf.convert_to_tensor(x)
    y = tf.cast(y, x.dtype)
    return tf.reduce_mean(pixel_weight(y, p) * _bce(x, y), axis=[-2, -1])


def map_distance(x: tf.Tensor, y: tf.Tensor, p: float | tf.Tensor, loss: str = "l2"):
    """The matched-map distance: :func:`weighted_sq_distance` ("l2") or :func:`weighted_bce`."""
    if loss not in INSTANCE_LOSSES:
        raise ValueError(f"instance loss must be one of {INSTANCE_LOSSES}, got {loss!r}")
    return weighted_sq_distance(x, y, p) if loss == "l2" else weighted_bce(x, y, p)


def size_weights(target: tf.Tensor, assignment: tf.Tensor) -> tf.Tensor:
    """Per-prediction weights inversely proportional to the matched object's area.

    Section 5 suggests a loss weighted by object size so that small objects count as much as
    large ones: ``w = clip(mean_area / area, 0.25, 4)``, the mean over the batch's matched
    objects, so the average weight stays near 1; stop predictions weigh 1.

    Args:
        target: ``[B, T, h, w]`` matched target masks (zeros for stop predictions).
        assignment: int ``[B, T]`` (-1 = stop).

    Returns:
        float ``[B, T]``.
    """
    area = tf.reduce_sum(target, axis=[-2, -1])  # [B, T]
    matched = (assignment >= 0) & (area > 0)
    mean_area = tf.math.divide_no_nan(tf.reduce_sum(tf.where(matched, area, 0.0)),
                                      tf.reduce_sum(tf.cast(matched, area.dtype)))
    w = tf.clip_by_value(tf.math.divide_no_nan(mean_area, area), 0.25, 4.0)
    return tf.stop_gradient(tf.where(matched, w, tf.ones_like(w)))


def stop_loss(objectness: tf.Tensor, assignment: tf.Tensor) -> dict[str, tf.Tensor]:
    """Cross-entropy of the stop head: step t should say 1 iff it was matched to an object.

    Args:
        objectness: float ``[B, T]`` probabilities from the stop head.
        assignment: int ``[B, T]`` from ``decompnet_tf.matching.match`` (-1 = stop map).

    Returns:
        ``{"stop": scalar}``, the mean over batch and steps.
    """
    return {STOP: tf.reduce_mean(_bce(_as_float(objectness), assignment >= 0))}


def object_size_scale(masks: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """Per-pixel loss scale of the category maps, inversely proportional to object area.

    Section 5 names a loss weighted by object size: the category network misses small digits
    first, and under D_p a 10-px digit weighs a fifth of a 25-px one. Each object weighs
    ``clip(mean_area / area, 0.25, 4)`` (the mean over the batch's objects, so the average
    object keeps scale 1); a pixel of several objects takes their mean; background pixels 1.

    Args:
        masks: float ``[B, C, M, h, w]`` instance masks per category (the training targets).
        valid: ``[B, C, M]``, nonzero for real objects.

    Returns:
        float32 ``[B, h, w, C]``, channels-last like the category maps.
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
    """Category-decomposition mask loss (paper section 2.1, eq. 2).

    Args:
        pred: float ``[B, h, w, C]`` category response maps (channels-last, one channel per
            object category).
        target: ``[B, h, w, C]`` per-category target: the SUM of that category's binary
            instance masks, so a pixel covered by k instances has value k (paper 2.1: "We sum
            all of the individual masks, which results in higher values at the overlapped
            regions"). Higher target values also get a higher weight ``y + p``.
        p: scalar weight floor ``p`` of D_p.
        scale: optional ``[B, h, w, C]`` per-pixel factor on D_p's weights
            (:func:`object_size_scale`); None: 1 everywhere, eq. 2 as written.

    Returns:
        ``{"category": scalar}``: the mean over batch and categories of ``D_p(pred, target)``
        (:func:`weighted_sq_distance`), each pixel's term times ``scale``.
    """
    pred = _as_float(pred)
    target = tf.stop_gradient(tf.cast(target, pred.dtype))
    scale = 1.0 if scale is None else tf.stop_gradient(tf.cast(scale, pred.dtype))
    # The mean of weighted_sq_distance's per-map means: every map has h * w pixels.
    per_pixel = scale * pixel_weight(target, p) * tf.square(pred - target)
    return {CATEGORY: tf.reduce_mean(per_pixel)}


def _gather_assigned(values: tf.Tensor, assignment: tf.Tensor) -> tf.Tensor:
    """Per-prediction gather of matched ground truth, with zeros for the stop target.

    Args:
        values: ``[B, N, ...]`` ground-truth items (masks or boxes).
        assignment: int ``[B, T]``, index into ``N`` or -1 for "matched to the zero map".

    Returns:
        ``[B, T, ...]``: ``values[b, assignment[b, t]]``, or zeros where ``assignment == -1``.
    """
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
    """The floors ``(p_matched, p_sum)`` of D_p in eq. 3's two instance terms.

    Eq. 3 (lost in extraction) names its terms D_lambda and D_gamma, and eq. 2 writes its floor
    as a subscript (D_p). ``reading="weights"``: the subscripts name the terms' weights, both
    terms use the loss's ``p``: ``(p, p)``. ``reading="floors"``: the subscripts are D_p's
    floor, ``(lam, gamma)`` (Appendix B's 0.3 then 1.0 become the floors);
    :func:`instance_term_weights` then weighs both terms 1.

    Args:
        reading: "weights" or "floors" (``LossConfig.paper_lambda_gamma``).
        p, lam, gamma: scalars (floats or scalar tensors, e.g. the warm-up's variables).

    Returns:
        ``(p_matched, p_sum)``, two of the scalars given.
    """
    _check_reading(reading)
    return (p, p) if reading == "weights" else (lam, gamma)


def instance_term_weights(reading: str, lam: float | tf.Tensor,
                          gamma: float | tf.Tensor) -> tuple:
    """The weights ``(w_matched, w_sum)`` of eq. 3's two instance terms: ``(lam, gamma)``
    under ``reading="weights"``, ``(1.0, 1.0)`` under "floors" (lambda and gamma are then the
    terms' floors, :func:`instance_floors`)."""
    _check_reading(reading)
    return (lam, gamma) if reading == "weights" else (1.0, 1.0)


def instance_losses(
    pred: tf.Tensor, gt: tf.Tensor, assignment: tf.Tensor, p: float | tf.Tensor,
    loss: str = "l2", size_weighting: bool = False, p_sum: float | tf.Tensor | None = None,
    unmatched: str = "empty",
) -> dict[str, tf.Tensor]:
    """Instance-decomposition loss terms (paper section 2.2, eq. 3 - reconstructed).

    The paper's eq. 3 was lost in extraction; from its text ("two distance terms, D_lambda and
    D_gamma", "the idx() function returns the corresponding id of ground truth masks", "the
    second distance term ... is the distance between sum of instance maps that the network has
    generated and sum of ground truth masks") we reconstruct, for one image/category with
    recurrent outputs ``g_1..g_T`` and ground-truth masks ``y_1..y_N``:

        ``L_inst = lambda * sum_t D(g_t, y_idx(t)) + gamma * D(sum_t g_t, sum_j y_j)``

    where ``idx`` is the optimal bipartite matching (``decompnet_tf.matching.match``), and
    predictions that are not matched to an object (``t`` beyond the number of objects) are
    matched to the all-zero map, which is what teaches the network to stop (the last map "is
    usually a black image and it works as a stop sign", Fig. 3). This function returns the two
    distance terms unweighted; lambda and gamma are applied by :func:`weighted_total`.

    Gradients flow through ``pred`` only (the targets are wrapped in ``tf.stop_gradient``; the
    assignment is an integer tensor).

    Args:
        pred: float ``[B, T, h, w]`` instance maps, one per recurrent step.
        gt: ``[B, N, h, w]`` binary ground-truth instance masks; padded slots must be all-zero
            (they are never selected by a valid assignment and add nothing to the sum).
        assignment: int32 ``[B, T]``, ``assignment[b, t]`` = index of the gt mask matched to
            prediction ``t``, or -1 when ``t`` is matched to the all-zero stop map.
        p: scalar weight floor ``p`` of D_p (of the matched term).
        loss: "l2" (D_p, the paper) or "bce" (:func:`weighted_bce`) for the matched term; the
            summed-map term stays L2 (a sum of maps is no probability).
        size_weighting: weigh each matched term by :func:`size_weights`.
        p_sum: the summed-map term's floor (default: ``p``; see :func:`instance_floors`).
        unmatched: "empty": steps matched to no object (``assignment == -1``) are trained toward
            the all-zero map in the matched term; "free": they are left out of it, so only the
            summed-map term constrains them.

    Returns:
        ``{"instance_matched": mean_b sum_t D_p(pred[b,t], target[b,t]),
        "instance_sum": mean_b D_p(sum_t pred[b,t], sum_j gt[b,j])}`` (scalars).
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
    """Dice term of the matched instance maps (not in the paper; DETR's mask loss).

    ``1 - (2 sum(x y) + 1) / (sum(x) + sum(y) + 1)`` per matched step, with ``x`` the map
    clipped to [0, 1]. Unlike eq. 2's per-pixel mean, it weighs every object alike whatever its
    size, and it is lowest when the step covers all of its object and nothing else: a map that
    hedges between two objects (half of each) scores about 0.5 however dim or bright it is.

    Args:
        pred: float ``[B, T, h, w]`` instance maps.
        gt: ``[B, N, h, w]`` ground-truth masks (soft masks in [0, 1] allowed).
        assignment: int ``[B, T]`` (-1 = matched to the empty map: no dice term).

    Returns:
        ``{"instance_dice": scalar}``: the mean over matched steps of the batch (0 if none).
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
    """Bounding-box regression loss (paper section 2.3, eq. 4).

    Each instance map's regressed box is compared with the box of the ground-truth object it
    was matched to. Predictions matched to the stop map (``assignment == -1``) have no box and
    contribute nothing.

    ``distance="l1"`` replaces eq. 4's smooth L1: on coordinates in [0, 1] the smooth L1
    (beta 1) never leaves its quadratic part, where a 4 px error on a 100 px image gets a
    gradient of 0.04; L1's stays 1 (DETR). ``giou`` adds the term ``"box_giou"``, the mean of
    ``1 - GIoU`` over the matched boxes (`decompnet_tf.ops.boxes.generalized_iou`).

    Args:
        pred_boxes: float ``[B, T, 4]`` predicted boxes ``(x_center, y_center, w, h)`` in
            [0, 1] (section 2.3).
        gt_boxes: float ``[B, N, 4]`` ground-truth boxes ``(ymin, xmin, ymax, xmax)``
            normalised to [0, 1]; converted to ``xywh`` internally.
        assignment: int32 ``[B, T]`` from ``decompnet_tf.matching.match`` (-1 = stop).

    Returns:
        ``{"box": scalar}`` (and ``"box_giou"``): the distance summed over the 4 coordinates
        and averaged over the matched real objects (``assignment >= 0``) of the whole batch;
        0 when there are none.
    """
    if distance not in BOX_LOSSES:
        raise ValueError(f"box distance must be one of {BOX_LOSSES}, got {distance!r}")
    pred_boxes = _as_float(pred_boxes)
    gt_xywh = tf.stop_gradient(yxyx_to_xywh(tf.cast(gt_boxes, pred_boxes.dtype)))
    assignment = tf.cast(assignment, tf.int32)
    target = _gather_assigned(gt_xywh, assignment)  # [B, T, 4]
    matched = assignment >= 0  # [B, T]
    # Stop predictions are replaced by their (zero) target BEFORE the loss, so they give exactly
    # 0 loss and 0 gradient even if their box is NaN/inf (masking afterwards would leak NaN
    # gradients through tf.where).
    pred_boxes = tf.where(matched[..., None], pred_boxes, target)
    # Eq. 4's smooth L1 (Girshick 2015, beta 1) is the Huber loss with delta 1, per coordinate.
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
) -> tf.Tensor:
    """Combines the loss terms; the ONLY place where lambda, gamma and eta are applied.

    ``total = category + lam * instance_matched + gamma * instance_sum + eta * box
    + stop_weight * stop + dice_weight * instance_dice + giou_weight * box_giou``

    Reading of the paper (sections 2.2, 2.3 and Appendix B; eq. 3 was lost in extraction):
    lambda weights the matched-instance distance term ``D_lambda``, gamma the sum
    (stop-condition) term ``D_gamma``, and eta - which the paper names as a hyper-parameter
    ("lambda, gamma, and eta are hyperparameters"; "For eta we set to 1 in every experiments")
    but whose equation was lost - is read as the weight of the box-regression term. The paper
    trains with lambda = gamma = 0.3 for the first epoch, then 1.0, and eta = 1 (Appendix B).
    Alternative reading: ``D_lambda`` / ``D_gamma`` could instead mean the distance D_p with
    its weight floor ``p = lambda`` / ``p = gamma``; Appendix B's remark that too large a value
    gives "trivial solution with producing all zeros" fits a loss weight at least as well, which
    is why this reading is the default; ``lambda_gamma="floors"`` trains the other one.

    Args:
        terms: mapping from term name (``"category"``, ``"instance_matched"``,
            ``"instance_sum"``, ``"box"``) to a scalar tensor; missing terms count as 0 (e.g.
            the category-only first training stage of Appendix B).
        lam, gamma, eta: scalar weights (Python floats or scalar tensors, e.g. a schedule).
        stop_weight: weight of the stop head's term (not in the paper).
        dice_weight: weight of the dice term (not in the paper).
        giou_weight: weight of the GIoU box term (not in the paper).
        lambda_gamma: "weights" (the reading above) or "floors": lambda and gamma are the
            instance terms' floors (:func:`instance_floors`, applied where the terms are
            computed) and the two terms weigh 1 (:func:`instance_term_weights`).

    Returns:
        float scalar tensor (float32 unless the terms are float64).

    Raises:
        ValueError: if ``terms`` has a key that is not in ``TERM_NAMES`` (catches
            typos that would otherwise silently drop a term).
    """
    unknown = sorted(set(terms) - set(TERM_NAMES))
    if unknown:
        raise ValueError(f"Unknown loss terms {unknown}; expected a subset of {TERM_NAMES}.")
    w_matched, w_sum = instance_term_weights(lambda_gamma, lam, gamma)
    weights = {CATEGORY: 1.0, INSTANCE_MATCHED: w_matched, INSTANCE_SUM: w_sum, BOX: eta,
               STOP: stop_weight, INSTANCE_DICE: dice_weight, BOX_GIOU: giou_weight}
    dtype = tf.float32
    if any(tf.convert_to_tensor(v).dtype == tf.float64 for v in terms.values()):
        dtype = tf.float64
    total = tf.zeros([], dtype)
    for name in TERM_NAMES:
        if name in terms:
            value = tf.cast(terms[name], dtype)
            total += tf.cast(weights[name], dtype) * value
    return total
