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


# The TF Object Detection API's Faster R-CNN box coder scales: deltas of about unit size.
DELTA_SCALES = (10.0, 10.0, 5.0, 5.0)


def window_deltas(windows: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """R-CNN's box-regression targets float32 [k, 4] (dy, dx, log dh, log dw, times
    DELTA_SCALES) that move each window [k, 4] onto its box [k, 4] (both ymin, xmin, ymax, xmax
    normalised): the centre's offset in window heights / widths and the log size ratios
    (Girshick et al. 2014, app. C). Square windows cannot fit a tall digit; the deltas can."""
    windows, boxes = np.asarray(windows, np.float64), np.asarray(boxes, np.float64)
    wh, bh = windows[:, 2:] - windows[:, :2], boxes[:, 2:] - boxes[:, :2]
    centre = (boxes[:, :2] + bh / 2 - windows[:, :2] - wh / 2) / wh
    deltas = np.concatenate([centre, np.log(bh / wh)], axis=1) * np.array(DELTA_SCALES)
    return deltas.astype(np.float32)


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
