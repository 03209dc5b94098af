"""Box conversion, masks and GIoU; boxes are normalised to [0, 1] by image height and width.

`xywh` = `(x_center, y_center, w, h)` (box head, section 2.3); `yxyx` = `(ymin, xmin, ymax, xmax)`.
"""

from __future__ import annotations

import tensorflow as tf


def xywh_to_yxyx(boxes: tf.Tensor) -> tf.Tensor:
    """Converts `xywh` boxes `[..., 4]` to `yxyx`, in the same dtype."""
    boxes = tf.convert_to_tensor(boxes)
    xc, yc, w, h = tf.unstack(boxes, num=4, axis=-1)
    return tf.stack([yc - 0.5 * h, xc - 0.5 * w, yc + 0.5 * h, xc + 0.5 * w], axis=-1)


def yxyx_to_xywh(boxes: tf.Tensor) -> tf.Tensor:
    """Converts `yxyx` boxes `[..., 4]` to `xywh`, in the same dtype."""
    boxes = tf.convert_to_tensor(boxes)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=-1)
    return tf.stack([0.5 * (xmin + xmax), 0.5 * (ymin + ymax), xmax - xmin, ymax - ymin], axis=-1)


def box_mask(boxes: tf.Tensor, h: int | tf.Tensor, w: int | tf.Tensor) -> tf.Tensor:
    """Eq. 5's M(b): `[..., h, w]` masks of the pixels whose centre lies in `yxyx` `boxes`."""
    dtype = boxes.dtype
    rows = (tf.cast(tf.range(h), dtype) + 0.5) / tf.cast(h, dtype)  # [h]
    cols = (tf.cast(tf.range(w), dtype) + 0.5) / tf.cast(w, dtype)  # [w]
    ymin, xmin, ymax, xmax = (boxes[..., i : i + 1] for i in range(4))  # [..., 1] each
    in_y = tf.cast((rows >= ymin) & (rows <= ymax), dtype)  # [..., h]
    in_x = tf.cast((cols >= xmin) & (cols <= xmax), dtype)  # [..., w]
    return in_y[..., :, None] * in_x[..., None, :]


def generalized_iou(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """GIoU `[...]` in [-1, 1] of `yxyx` boxes (Rezatofighi et al. 2019); 0 for an empty hull."""
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
