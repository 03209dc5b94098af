"""Hard-negative mining for the sliding-window baseline (Girshick et al. 2014), in NumPy.

The patch classifier is trained on random positives and random background squares
(`decompnet_tf.data.patches`), which never show it the windows that cut a digit in half or
straddle two; at test time those score like digits. R-CNN's remedy: score the detector's own
windows on training images with the current classifier and add the ones it wrongly scores as a
digit as background. A window counts as a mistake of class c (the digit class the classifier
ranks highest on it) when its IoU with every true digit of class c is below `iou_bound`; it is
added as background only when its IoU with every true digit of any class is also below
`background_iou` (0.3, as the random background squares): a window overlapping a digit by
more is a confused positive or a near miss, which teaches neither class.

Nothing here imports TensorFlow: the scores come from a caller's function.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from decompnet_tf.ops.np_boxes import box_iou_np


def eligible_windows(probs: np.ndarray, windows: np.ndarray, gt_boxes: np.ndarray,
                     gt_labels: np.ndarray, num_classes: int, iou_bound: float = 0.5,
                     background_iou: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Which windows of one image are the classifier's background mistakes.

    Args:
      probs: [K, C + 1] class probabilities of the K windows (background last; only the first
        C = `num_classes` columns, the digit classes, are read).
      windows: [K, 4] (ymin, xmin, ymax, xmax) normalised; gt_boxes: [n, 4] same format;
      gt_labels: [n] int in [0, C).
      iou_bound: a window is a mistake of its class c (its top digit class) when its IoU with
        every true digit of class c is below this.
      background_iou: and it is background only if its IoU with every true digit (any class)
        is below this.
    Returns:
      (bool [K] eligible, float [K] the digit score: the top digit class's probability).
    """
    digit_probs = np.asarray(probs)[:, :num_classes]
    k = len(windows)
    cls = digit_probs.argmax(axis=1)
    score = digit_probs[np.arange(k), cls]
    gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels).reshape(-1)
    if not len(gt_boxes):
        return np.ones(k, bool), score
    iou = box_iou_np(windows, gt_boxes)  # [K, n]
    class_iou = np.where(gt_labels[None, :] == cls[:, None], iou, 0.0).max(axis=1)
    return (class_iou < iou_bound) & (iou.max(axis=1) < background_iou), score


def select_hard_negatives(probs: np.ndarray, windows: np.ndarray, gt_boxes: np.ndarray,
                          gt_labels: np.ndarray, num_classes: int, num: int,
                          min_score: float = 0.0, iou_bound: float = 0.5,
                          background_iou: float = 0.3) -> np.ndarray:
    """The `num` eligible windows (`eligible_windows`) of one image that the classifier scores
    highest as a digit, among those scoring at least `min_score`.

    Returns:
      int64 [m] window indices, m <= num, by descending digit score (ties by index).
    """
    ok, score = eligible_windows(probs, windows, gt_boxes, gt_labels, num_classes, iou_bound,
                                 background_iou)
    candidates = np.flatnonzero(ok & (score >= min_score))
    order = np.argsort(-score[candidates], kind="stable")
    return candidates[order[:num]].astype(np.int64)


def mine_hard_negatives(images: np.ndarray, gt_boxes: list[np.ndarray],
                        gt_labels: list[np.ndarray], image_ids: np.ndarray, windows: np.ndarray,
                        score_fn: Callable[[np.ndarray], np.ndarray], num_classes: int,
                        per_image: int, min_score: float = 0.0, iou_bound: float = 0.5,
                        background_iou: float = 0.3, images_per_call: int = 8) -> np.ndarray:
    """One mining round over the training images `image_ids`.

    Args:
      images: [N, H, W] (or [N, H, W, 1]) the training images; gt_boxes / gt_labels: one
        [n_i, 4] / [n_i] array per image.
      image_ids: int [M] which images to mine.
      windows: [K, 4] the detector's window set (`decompnet_tf.ops.windows.window_boxes`).
      score_fn: images [b, H, W, ...] -> probabilities [b, K, C + 1] of every window (the
        current classifier); called on `images_per_call` images at a time.
      num_classes: C, the digit classes (background is class C).
      per_image, min_score, iou_bound, background_iou: as `select_hard_negatives`.
    Returns:
      int64 [m, 2] (image id, window index) pairs: the background patches to add.
    """
    image_ids = np.asarray(image_ids, np.int64).reshape(-1)
    found = []
    for start in range(0, len(image_ids), images_per_call):
        ids = image_ids[start:start + images_per_call]
        probs = np.asarray(score_fn(images[ids]))
        for i, p in zip(ids, probs):
            chosen = select_hard_negatives(p, windows, gt_boxes[i], gt_labels[i], num_classes,
                                           per_image, min_score, iou_bound, background_iou)
            found.append(np.stack([np.full(len(chosen), i), chosen], axis=1))
    return np.concatenate(found).astype(np.int64) if found else np.zeros((0, 2), np.int64)


def balanced_order(labels: np.ndarray, batch_size: int, background_share: float,
                   background_class: int, rng: np.random.Generator) -> np.ndarray:
    """One epoch's example order, each batch holding a fixed share of background.

    Every non-background example appears once per epoch (shuffled); each batch of
    `batch_size` holds round(batch_size * background_share) background examples, drawn by
    cycling through shuffled background examples, and the rest positives; the last batch is
    completed with positives drawn again. A share of 0 is the examples' own mix, shuffled.

    Returns:
      int64 [steps * batch_size] indices into `labels` (all of them when the share is 0).
    """
    labels = np.asarray(labels)
    if background_share <= 0:
        return rng.permutation(len(labels)).astype(np.int64)
    bg = np.flatnonzero(labels == background_class)
    pos = np.flatnonzero(labels != background_class)
    n_bg = int(round(batch_size * background_share))
    if n_bg and not len(bg):
        raise ValueError("a background share above 0 needs background examples")
    n_pos = batch_size - n_bg
    if n_pos <= 0 or not len(pos):
        raise ValueError(f"background_share={background_share} leaves no room for the "
                         f"{len(pos)} positives in a batch of {batch_size}")
    steps = -(-len(pos) // n_pos)
    pos_order = np.concatenate([rng.permutation(pos)
                                for _ in range(-(-steps * n_pos // len(pos)))])
    pos_order = pos_order[:steps * n_pos]
    bg_needed = steps * n_bg
    bg_order = (np.concatenate([rng.permutation(bg) for _ in range(-(-bg_needed // len(bg)))])
                [:bg_needed] if n_bg else np.zeros(0, np.int64))
    batches = [np.concatenate([pos_order[s * n_pos:(s + 1) * n_pos],
                               bg_order[s * n_bg:(s + 1) * n_bg]]) for s in range(steps)]
    return np.concatenate([rng.permutation(b) for b in batches]).astype(np.int64)
