"""NumPy box overlaps for host-side code (evaluation, baseline patches): no TensorFlow import.

Boxes are ``(ymin, xmin, ymax, xmax)``, normalised or in pixels alike; degenerate boxes have
zero area.
"""

from __future__ import annotations

import numpy as np


def _intersection_and_areas(a, b):
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    inter_h = np.clip(np.minimum(a[:, None, 2], b[None, :, 2])
                      - np.maximum(a[:, None, 0], b[None, :, 0]), 0.0, None)
    inter_w = np.clip(np.minimum(a[:, None, 3], b[None, :, 3])
                      - np.maximum(a[:, None, 1], b[None, :, 1]), 0.0, None)
    area = lambda x: (np.clip(x[:, 2] - x[:, 0], 0.0, None)  # noqa: E731
                      * np.clip(x[:, 3] - x[:, 1], 0.0, None))
    return inter_h * inter_w, area(a), area(b)


def _safe_ratio(num, den):
    return np.where(den > 0.0, num / np.where(den > 0.0, den, 1.0), 0.0)


def box_iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a [N, 4], b [M, 4] -> float64 [N, M] IoU; 0 where the union is empty."""
    inter, area_a, area_b = _intersection_and_areas(a, b)
    return _safe_ratio(inter, area_a[:, None] + area_b[None, :] - inter)


def box_ioa_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a [N, 4], b [M, 4] -> float64 [N, M] intersection over the area of a (0 for empty a);
    KITTI's DontCare criterion."""
    inter, area_a, _ = _intersection_and_areas(a, b)
    return _safe_ratio(inter, np.broadcast_to(area_a[:, None], inter.shape))
