"""Centre heatmaps (CenterNet, Zhou et al. 2019): training targets in TensorFlow, peaks in NumPy.

A target peaks at exactly 1 on the map pixel that holds an object's box centre, falling off as a
Gaussian whose sigmas follow the box (TTFNet's 0.54 * size / 6), so small digits get sharp
peaks; objects of one class meet by their maximum. Two digits of one class with centres in one
map pixel share one peak: decomp_mnist keeps boxes at IoU <= 0.2, which makes that rare.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy import ndimage

SIGMA_SCALE = 0.54 / 6.0  # Gaussian sigma per box side, in map pixels (TTFNet).
MIN_SIGMA = 0.5  # Map pixels: a digit a few pixels wide still spreads to its neighbours.


def center_heatmap(boxes: tf.Tensor, valid: tf.Tensor, map_size: tuple[int, int]) -> tf.Tensor:
    """Centre targets float32 [B, h, w, C] in [0, 1] from boxes.

    Args:
      boxes: float [B, C, M, 4] (ymin, xmin, ymax, xmax) normalised to [0, 1].
      valid: [B, C, M], nonzero where a box is an object (padding elsewhere).
      map_size: (h, w) of the maps.
    """
    h, w = map_size
    boxes = tf.cast(boxes, tf.float32)
    ymin, xmin, ymax, xmax = tf.unstack(boxes, num=4, axis=-1)  # [B, C, M]
    cy = tf.clip_by_value(tf.floor((ymin + ymax) * 0.5 * h), 0.0, h - 1.0)
    cx = tf.clip_by_value(tf.floor((xmin + xmax) * 0.5 * w), 0.0, w - 1.0)
    sy = tf.maximum(SIGMA_SCALE * (ymax - ymin) * h, MIN_SIGMA)
    sx = tf.maximum(SIGMA_SCALE * (xmax - xmin) * w, MIN_SIGMA)
    ys = tf.range(h, dtype=tf.float32)[:, None]
    xs = tf.range(w, dtype=tf.float32)[None, :]
    e = lambda v: v[..., None, None]  # noqa: E731  [B, C, M] -> [B, C, M, 1, 1]
    g = tf.exp(-tf.square(ys - e(cy)) / (2 * tf.square(e(sy)))
               - tf.square(xs - e(cx)) / (2 * tf.square(e(sx))))  # [B, C, M, h, w]
    g = g * tf.cast(tf.not_equal(valid, 0), tf.float32)[..., None, None]
    return tf.transpose(tf.reduce_max(g, axis=2), (0, 2, 3, 1))


def heatmap_peaks(heatmap: np.ndarray, threshold: float) -> list[np.ndarray]:
    """Local maxima (3x3) of each class's map above `threshold`: per class int [n, 2] (y, x).

    `heatmap` float [h, w, C]. A plateau of equal maxima gives one peak (its first pixel)."""
    peaks = []
    for k in range(heatmap.shape[-1]):
        m = heatmap[..., k]
        top = (m == ndimage.maximum_filter(m, size=3, mode="constant", cval=-np.inf))
        top &= m > threshold
        labels, n = ndimage.label(top, structure=np.ones((3, 3)))
        firsts = [np.argwhere(labels == i)[0] for i in range(1, n + 1)]
        peaks.append(np.asarray(firsts, np.int64).reshape(-1, 2))
    return peaks
