"""Training patches for the sliding-window baseline (section 3.1): pure numpy/OpenCV.

"We take random image patches with >= 0.5 IoU overlap with ground truth boxes as positive
examples (Girshick et al., 2014)". Positives are squares around each object (side = the
object's longer side x U(0.8, 1.25), centre shifted by up to a quarter side) kept when their IoU
with the object is >= 0.5; negatives ("background") are random squares whose IoU with every
object is < 0.3, so that near misses of 0.3-0.5 teach neither class. Sizes stay within the
windows' [min_size, max_size], as at test time.
"""

from __future__ import annotations

import cv2
import numpy as np

from decompnet_tf.ops.np_boxes import box_iou_np


def _crop(image, box, patch_size):
    h, w = image.shape
    y0, x0, y1, x1 = (box * np.array([h, w, h, w])).round().astype(int)
    pad = max(0, -y0, -x0, y1 - h, x1 - w)
    padded = np.pad(image, pad) if pad else image
    crop = padded[y0 + pad:y1 + pad, x0 + pad:x1 + pad]
    return cv2.resize(crop, (patch_size, patch_size), interpolation=cv2.INTER_AREA)


def sample_patches(image: np.ndarray, boxes: np.ndarray, labels: np.ndarray,
                   rng: np.random.Generator, num_classes: int = 3, patch_size: int = 32,
                   positives_per_object: int = 2, negatives: int = 8, min_size: float = 10,
                   max_size: float = 56, tries: int = 30):
    """Patches of one image.

    Args:
      image: uint8 [H, W]; boxes: [n, 4] (ymin, xmin, ymax, xmax) normalised; labels: [n].
    Returns:
      (uint8 [k, patch_size, patch_size], int64 [k]) with background = num_classes.
    """
    h, w = image.shape
    scale = np.array([h, w, h, w], np.float64)
    px = boxes.astype(np.float64) * scale
    patches, out_labels = [], []
    for box, label in zip(px, labels):
        side = max(box[2] - box[0], box[3] - box[1])
        cy, cx = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
        found = 0
        for _ in range(tries):
            s = float(np.clip(side * rng.uniform(0.8, 1.25), min_size, max_size))
            y, x = cy + rng.uniform(-0.25, 0.25) * s, cx + rng.uniform(-0.25, 0.25) * s
            cand = np.array([y - s / 2, x - s / 2, y + s / 2, x + s / 2])
            if box_iou_np(cand, box)[0, 0] >= 0.5:
                patches.append(_crop(image, cand / scale, patch_size))
                out_labels.append(int(label))
                found += 1
                if found == positives_per_object:
                    break
    for _ in range(negatives):
        for _ in range(tries):
            s = rng.uniform(min_size, max_size)
            y, x = rng.uniform(0, h - s), rng.uniform(0, w - s)
            cand = np.array([y, x, y + s, x + s])
            if len(px) == 0 or box_iou_np(cand, px).max() < 0.3:
                patches.append(_crop(image, cand / scale, patch_size))
                out_labels.append(num_classes)
                break
    if not patches:
        return np.zeros((0, patch_size, patch_size), np.uint8), np.zeros(0, np.int64)
    return np.stack(patches), np.array(out_labels, np.int64)
