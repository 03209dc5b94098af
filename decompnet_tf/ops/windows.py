"""The sliding-window baseline's window set (section 3.1), in NumPy (no TensorFlow import)."""

from __future__ import annotations

import numpy as np

from decompnet_tf.ops.np_boxes import box_iou_np


def window_boxes(image_size: tuple[int, int], min_size: float, max_size: float, step: int,
                 num_sizes: int = 5) -> np.ndarray:
    """Square windows float32 [K, 4] (ymin, xmin, ymax, xmax normalised) of `num_sizes` sides
    in [min_size, max_size] px at stride `step` (steps 3 and 5: the paper's "about 3000 and
    1000")."""
    h, w = image_size
    boxes = []
    for size in np.linspace(min_size, max_size, num_sizes):
        ys = np.arange(0, h - size + 1e-6, step)
        xs = np.arange(0, w - size + 1e-6, step)
        yy, xx = np.meshgrid(ys, xs, indexing="ij")
        yy, xx = yy.ravel(), xx.ravel()
        boxes.append(np.stack([yy / h, xx / w, (yy + size) / h, (xx + size) / w], axis=1))
    return np.concatenate(boxes).astype(np.float32)


def window_recall(windows: np.ndarray, gt_boxes: list[np.ndarray],
                  iou_threshold: float = 0.5) -> dict:
    """{"recall", "covered", "objects", "images", "windows_per_image"}: the share of true boxes
    (one [n_i, 4] array per image) some window overlaps with IoU >= `iou_threshold` (NaN without
    objects), an upper bound on the baseline's recall (the paper's "99% recall")."""
    # float32 normalised corners put an IoU of exactly the threshold in pixels (a digit on
    # the window grid) a few ulps either side of it: count those as covered.
    threshold = iou_threshold - 1e-6
    covered = objects = 0
    for boxes in gt_boxes:
        boxes = np.asarray(boxes).reshape(-1, 4)
        if len(boxes):
            covered += int((box_iou_np(boxes, windows).max(axis=1) >= threshold).sum())
            objects += len(boxes)
    return {"recall": covered / objects if objects else float("nan"), "covered": covered,
            "objects": objects, "images": len(gt_boxes), "windows_per_image": len(windows)}
