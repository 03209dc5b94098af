"""The sliding-window baseline's window set (section 3.1), in NumPy: what the detector scores at
test time (`decompnet_tf.detectors.sliding_window`) and what training mines hard negatives from
(`decompnet_tf.data.hard_negatives`). No TensorFlow import.
"""

from __future__ import annotations

import numpy as np

from decompnet_tf.ops.np_boxes import box_iou_np


def window_boxes(image_size: tuple[int, int], min_size: float, max_size: float, step: int,
                 num_sizes: int = 5) -> np.ndarray:
    """All square windows of `num_sizes` sizes in [min_size, max_size] px at stride `step`.

    Returns float32 [K, 4] (ymin, xmin, ymax, xmax) normalised. For 100x100 images, sizes
    10..56 px: 2,805 windows at step 3 and 1,038 at step 5 (the paper: "about 3000 and 1000").
    """
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
    """How well a window set can cover the objects, whatever the classifier: the share of
    ground-truth boxes that some window overlaps with IoU >= `iou_threshold` (the paper's "99%
    recall" of its windows at step 5), an upper bound on the baseline's detection recall.

    Args:
      windows: [K, 4] (ymin, xmin, ymax, xmax) normalised, as `window_boxes` gives.
      gt_boxes: one [n_i, 4] array per image, same format (n_i may be 0).
    Returns:
      {"recall", "covered", "objects", "images", "windows_per_image"}; recall is NaN when
      there are no objects.
    """
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
