"""Bounding-box helpers: format conversion and IoU.

Two box formats are used in this project, both with coordinates normalised to [0, 1] by the
image height (y) and width (x):

* ``xywh``: ``(x_center, y_center, width, height)``. This is what the box-regression head
  predicts (paper section 2.3: "best = (x, y, w, h) where x and y are center coordinates of the
  box, and w and h are width and height ... each scaled from 0 to 1").
* ``yxyx``: ``(ymin, xmin, ymax, xmax)``. This is the TFDS / ``tf.image`` convention used for the
  ground-truth boxes of the dataset.
"""

from __future__ import annotations

import tensorflow as tf


def xywh_to_yxyx(boxes: tf.Tensor) -> tf.Tensor:
    """Converts centre/size boxes to corner boxes.

    Args:
        boxes: float ``[..., 4]``, ``(x_center, y_center, w, h)`` normalised to [0, 1].

    Returns:
        float ``[..., 4]``, ``(ymin, xmin, ymax, xmax)`` normalised, same dtype as ``boxes``.
    """
    boxes = tf.convert_to_tensor(boxes)
    xc, yc, w, h = tf.unstack(boxes, num=4, axis=-1)
    return tf.stack([yc - 0.5 * h, xc - 0.5 * w, yc + 0.5 * h, xc + 0.5 * w], axis=-1)


def yxyx_to_xywh(boxes: tf.Tensor) -> tf.Tensor:
    """Converts corner boxes to centre/size boxes (inverse of :func:`xywh_to_yxyx`).

    Args:
        boxes: float ``[..., 4]``, ``(ymin, xmin, ymax, xmax)`` normalised to [0, 1].

    Returns:
        float ``[..., 4]``, ``(x_center, y_center, w, h)`` normalised, same dtype as ``boxes``.
    """
    boxes = tf.convert_to_tensor(boxes)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=-1)
    return tf.stack([0.5 * (xmin + xmax), 0.5 * (ymin + ymax), xmax - xmin, ymax - ymin], axis=-1)


def box_mask(boxes: tf.Tensor, h: int | tf.Tensor, w: int | tf.Tensor) -> tf.Tensor:
    """Binary masks M(b) of boxes on an h x w pixel grid (paper eq. 5).

    A pixel (r, c) is inside when its centre ((r + 0.5) / h, (c + 0.5) / w) lies in the box,
    borders inclusive; boxes covering no pixel centre give all-zero masks.

    Args:
        boxes: float [..., 4] (ymin, xmin, ymax, xmax) normalised.
        h, w: the grid size.

    Returns:
        [..., h, w] masks of boxes' dtype.
    """
    dtype = boxes.dtype
    rows = (tf.cast(tf.range(h), dtype) + 0.5) / tf.cast(h, dtype)  # [h]
    cols = (tf.cast(tf.range(w), dtype) + 0.5) / tf.cast(w, dtype)  # [w]
    ymin, xmin, ymax, xmax = (boxes[..., i : i + 1] for i in range(4))  # [..., 1] each
    in_y = tf.cast((rows >= ymin) & (rows <= ymax), dtype)  # [..., h]
    in_x = tf.cast((cols >= xmin) & (cols <= xmax), dtype)  # [..., w]
    return in_y[..., :, None] * in_x[..., None, :]


def generalized_iou(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Elementwise generalized IoU of paired corner boxes (Rezatofighi et al. 2019):
    ``IoU - (C - U) / C`` with ``C`` the area of the smallest box enclosing both and ``U`` the
    union; in [-1, 1], 1 for equal boxes. Degenerate boxes have zero area; a pair whose
    enclosing box has no area gets 0 (not NaN).

    Args:
        a, b: float ``[..., 4]`` ``(ymin, xmin, ymax, xmax)``, broadcastable.

    Returns:
        float ``[...]``.
    """
    a = tf.convert_to_tensor(a)
    b = tf.cast(b, a.dtype)
    area = lambda x: tf.nn.relu(x[..., 2] - x[..., 0]) * tf.nn.relu(x[..., 3] - x[..., 1])  # noqa: E731
    inter_h = tf.nn.relu(tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]))
    inter_w = tf.nn.relu(tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1]))
    inter = inter_h * inter_w
    union = area(a) + area(b) - inter
    hull = (tf.maximum(a[..., 2], b[..., 2]) - tf.minimum(a[..., 0], b[..., 0])) * (
        tf.maximum(a[..., 3], b[..., 3]) - tf.minimum(a[..., 1], b[..., 1]))
    hull = tf.nn.relu(hull)
    return tf.math.divide_no_nan(inter, union) - tf.math.divide_no_nan(hull - union, hull)
