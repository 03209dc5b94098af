"""Hard-negative mining (Girshick et al. 2014) for the sliding-window baseline, in NumPy.

Random background squares never show the patch classifier windows that cut or straddle digits.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from decompnet_tf.ops.np_boxes import box_iou_np


def eligible_windows(probs: np.ndarray, windows: np.ndarray, gt_boxes: np.ndarray,
                     gt_labels: np.ndarray, num_classes: int, iou_bound: float = 0.5,
                     background_iou: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    """Which windows of one image are background mistakes: (bool [K], float [K] top digit score).

    `probs` [K, C + 1] has background last; boxes are yxyx, normalised. A window is a mistake when
    its IoU with every digit of its top class is below `iou_bound`, and background only when it is
    below `background_iou` with every digit (a near miss teaches neither class).
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
    """int64 [m <= num]: the eligible windows scoring >= `min_score` as digits, highest first."""
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
    """One mining round: int64 [m, 2] (image id, window index) background patches to add.

    `score_fn` maps images [b, H, W, ...] to window probabilities [b, K, C + 1].
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
    """int64: one epoch's order of `labels`, each batch holding a fixed share of background."""
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
