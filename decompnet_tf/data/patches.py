"""Training windows for the sliding-window baseline (section 3.1), in NumPy: positives are
jittered squares with IoU >= 0.5 with their object (the paper, after Girshick et al. 2014),
background squares have IoU < `background_iou` with every object (near misses teach neither)."""

from __future__ import annotations

import numpy as np

from decompnet_tf.ops.np_boxes import box_iou_np
from decompnet_tf.ops.windows import window_deltas


def sample_windows(image_size: tuple[int, int], boxes: np.ndarray, labels: np.ndarray,
                   rng: np.random.Generator, num_classes: int = 3,
                   positives_per_object: int = 2, negatives: int = 8, min_size: float = 10,
                   max_size: float = 56, background_iou: float = 0.3, tries: int = 30):
    """Windows of one image ((H, W) px, boxes [n, 4] normalised, labels [n]): float32 [k, 4]
    (ymin, xmin, ymax, xmax) normalised and int64 [k] labels, background = `num_classes`."""
    h, w = image_size
    scale = np.array([h, w, h, w], np.float64)
    px = boxes.astype(np.float64) * scale
    windows, out_labels = [], []
    for box, label in zip(px, labels):
        side = max(box[2] - box[0], box[3] - box[1])
        cy, cx = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        found = 0
        for _ in range(tries):
            s = float(np.clip(side * rng.uniform(0.8, 1.25), min_size, max_size))
            y, x = cy + rng.uniform(-0.25, 0.25) * s, cx + rng.uniform(-0.25, 0.25) * s
            cand = np.array([y - s / 2, x - s / 2, y + s / 2, x + s / 2])
            if box_iou_np(cand, box)[0, 0] >= 0.5:
                windows.append(cand / scale)
                out_labels.append(int(label))
                found += 1
                if found == positives_per_object:
                    break
    for _ in range(negatives):
        for _ in range(tries):
            s = rng.uniform(min_size, max_size)
            y, x = rng.uniform(0, h - s), rng.uniform(0, w - s)
            cand = np.array([y, x, y + s, x + s])
            if len(px) == 0 or box_iou_np(cand, px).max() < background_iou:
                windows.append(cand / scale)
                out_labels.append(num_classes)
                break
    return (np.array(windows, np.float32).reshape(-1, 4), np.array(out_labels, np.int64))


def regression_targets(windows: np.ndarray, labels: np.ndarray, boxes: np.ndarray,
                       box_labels: np.ndarray, num_classes: int = 3) -> np.ndarray:
    """float32 [k, 5] for windows [k, 4] with labels [k] (background = `num_classes`) on one
    image's objects (boxes [n, 4], labels [n], normalised): each digit window's
    `ops.windows.window_deltas` onto its class's best-overlapping box, then 1; background
    rows are 0 (no box to regress to)."""
    out = np.zeros((len(windows), 5), np.float32)
    for c in np.unique(labels[labels != num_classes]):
        rows, own = np.flatnonzero(labels == c), np.flatnonzero(box_labels == c)
        best = own[box_iou_np(windows[rows], boxes[own]).argmax(axis=1)]
        out[rows, :4] = window_deltas(windows[rows], boxes[best])
        out[rows, 4] = 1.0
    return out
