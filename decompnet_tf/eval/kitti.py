"""KITTI's official 2D car detection protocol (devkit cpp/evaluate_object.cpp), in numpy.

Per difficulty (`DIFFICULTIES`), cars outside its limits, neighbouring classes (Van for Car) and
detections below its minimum height are ignored: a match with one counts neither way. A match
needs IoU > 0.7; unmatched detections in a DontCare region are not false positives. AP averages
the running-max precision over recall 1/40..1 ("R40") or 0, 0.1, ..., 1 ("R11"). Boxes are yxyx,
normalised or in pixels alike (IoU does not depend on scale); heights are in original pixels.
"""

from __future__ import annotations

import os
import re

import numpy as np

from decompnet_tf.data.kitti_labels import DIFFICULTIES
from decompnet_tf.ops.np_boxes import box_ioa_np, box_iou_np

N_SAMPLE_PTS = 41


def _iou(a, b):
    """a [4], b [n, 4] -> ([n] IoU, [n] intersection over the area of a)."""
    return box_iou_np(a, b)[0], box_ioa_np(a, b)[0]


def _ignore_masks(det, gt, level):
    """int [G] ignored ground truths and int [D] ignored detections (1: ignored), as cleanData.

    A car is ignored at `height <= min`, a detection at `height < min`. The builder's "difficulty",
    where given, decides instead: the builder computes it on the label file's doubles, which float32
    cannot always repeat (32.02 - 7.02 is 25.000000000000004 in doubles, 25.0 in float32).
    """
    _, min_h, max_occ, max_trunc = DIFFICULTIES[level]
    if "difficulty" in gt:
        difficulty = np.asarray(gt["difficulty"])
        hard = (difficulty < 0) | (difficulty > level)
    else:
        hard = ((gt["heights"] <= min_h) | (gt["occluded"] > max_occ)
                | (gt["truncated"] > max_trunc))
    ignored_gt = np.where(gt["neighbour"] | hard, 1, 0)
    ignored_det = np.where(det["heights"] < min_h, 1, 0)
    return ignored_gt, ignored_det


def _statistics(det, gt, level, min_overlap, threshold, compute_fp):
    """One image at one score threshold: (tp, fp, fn, scores of true positives)."""
    ignored_gt, ignored_det = _ignore_masks(det, gt, level)
    below = det["scores"] < threshold
    assigned = np.zeros(len(det["scores"]), bool)
    tp = fp = fn = 0
    tp_scores = []
    for i, box in enumerate(gt["boxes"]):
        best, best_key, best_ignored = -1, -np.inf, False
        if len(det["scores"]):
            ious, _ = _iou(box, det["boxes"])
        for j in range(len(det["scores"])):
            if assigned[j] or below[j] or ious[j] <= min_overlap:
                continue
            if not compute_fp:  # First pass: the highest-scoring match.
                if det["scores"][j] > best_key:
                    best, best_key = j, det["scores"][j]
            elif ignored_det[j] == 0 and (ious[j] > best_key or best_ignored):
                best, best_key, best_ignored = j, ious[j], False
            elif best == -1 and ignored_det[j] == 1:
                best, best_ignored = j, True
        if best == -1:
            fn += int(ignored_gt[i] == 0)
        elif ignored_gt[i] == 1 or ignored_det[best] == 1:
            assigned[best] = True  # Neither rewarded nor penalised.
        else:
            tp += 1
            tp_scores.append(det["scores"][best])
            assigned[best] = True
    if compute_fp:
        free = ~assigned & ~below & (ignored_det == 0)
        for j in np.flatnonzero(free):
            if len(gt["dontcare"]) and (_iou(det["boxes"][j], gt["dontcare"])[1]
                                        > min_overlap).any():
                free[j] = False  # Inside a DontCare region.
        fp = int(free.sum())
    return tp, fp, fn, tp_scores


def _thresholds(scores, n_gt):
    """The devkit's getThresholds: scores at (about) 41 evenly spaced recall levels."""
    scores = np.sort(np.asarray(scores))[::-1]
    out, current = [], 0.0
    for i, s in enumerate(scores):
        left = (i + 1) / n_gt
        right = (i + 2) / n_gt if i < len(scores) - 1 else left
        if right - current < current - left and i < len(scores) - 1:
            continue
        out.append(s)
        current += 1.0 / (N_SAMPLE_PTS - 1)
    return out


def kitti_ap(dets: list[dict], gts: list[dict], level: int, min_overlap: float = 0.7) -> dict:
    """AP of one class at difficulty `level` (0 easy, 1 moderate, 2 hard).

    `dets[i]`: "boxes" [D, 4], "scores" [D], "heights" [D] (px). `gts[i]`: "boxes" [G, 4],
    "heights" [G] (px), "occluded" [G], "truncated" [G], bool "neighbour" [G], "dontcare" [K, 4],
    optionally int "difficulty" [G] (-1: none). Returns "ap_r40" and "ap_r11" (NaN when no car
    counts), "precision" [41], "recall" [41] and "num_gt".
    """
    pairs = list(zip(dets, gts))
    scores, n_gt = [], 0
    for det, gt in pairs:
        ignored_gt, _ = _ignore_masks(det, gt, level)
        n_gt += int((ignored_gt == 0).sum())
        scores += _statistics(det, gt, level, min_overlap, -np.inf, False)[3]
    precision = np.zeros(N_SAMPLE_PTS)
    recall = np.zeros(N_SAMPLE_PTS)
    if n_gt == 0:
        return {"ap_r40": float("nan"), "ap_r11": float("nan"), "precision": precision,
                "recall": recall, "num_gt": 0}
    for k, threshold in enumerate(_thresholds(scores, n_gt)):
        tp = fp = fn = 0
        for det, gt in pairs:
            a, b, c, _ = _statistics(det, gt, level, min_overlap, threshold, True)
            tp, fp, fn = tp + a, fp + b, fn + c
        precision[k] = tp / max(tp + fp, 1)
        recall[k] = tp / max(tp + fn, 1)
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    return {"ap_r40": float(precision[1:].sum() / 40), "ap_r11": float(precision[::4].sum() / 11),
            "precision": precision, "recall": recall, "num_gt": n_gt}


def groundtruth_from_example(example: dict, ignore_names, class_id: int = 0) -> dict:
    """A decomp_kitti example (numpy) -> the `gts[i]` of `kitti_ap` for class `class_id`.

    Other classes' objects and non-DontCare ignore regions are neighbours; boxes stay normalised.
    """
    objs, ignore = example["objects"], example["ignore"]
    own = objs["label"] == class_id
    types = np.array([ignore_names[t] for t in ignore["type"]], dtype=object)
    care = types != "DontCare"
    others = np.concatenate([objs["bbox"][~own].reshape(-1, 4),
                             ignore["bbox"][care].reshape(-1, 4)])
    n_other = len(others)
    return {"boxes": np.concatenate([objs["bbox"][own].reshape(-1, 4), others]),
            "heights": np.concatenate([objs["height"][own], np.zeros(n_other)]),
            "occluded": np.concatenate([objs["occluded"][own], np.zeros(n_other, int)]),
            "truncated": np.concatenate([objs["truncated"][own], np.zeros(n_other)]),
            "difficulty": np.concatenate([objs["difficulty"][own], np.full(n_other, -1)]),
            "neighbour": np.concatenate([np.zeros(own.sum(), bool), np.ones(n_other, bool)]),
            "dontcare": ignore["bbox"][~care].reshape(-1, 4)}


def canvas_scale(canvas_size, original_size) -> float:
    """The builder's image scale, min(1, canvas / original) per axis (`fit_image`)."""
    return min(1.0, canvas_size[0] / original_size[0], canvas_size[1] / original_size[1])


def to_original_pixels(boxes, canvas_size, original_size) -> np.ndarray:
    """Canvas-normalised yxyx `boxes` [n, 4] -> float64 original pixels, unclipped (as scored)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    scale = canvas_scale(canvas_size, original_size)
    return boxes * np.array([canvas_size[0], canvas_size[1]] * 2, np.float64) / scale


def detections_for_class(boxes, scores, classes, canvas_size, original_size,
                         class_id: int = 0, image_id: str | bytes | None = None) -> dict:
    """One image's detections of `class_id` (yxyx, normalised to the canvas) -> `dets[i]`."""
    keep = np.asarray(classes) == class_id
    boxes = np.asarray(boxes, float).reshape(-1, 4)[keep]
    pixel_boxes = to_original_pixels(boxes, canvas_size, original_size)
    if isinstance(image_id, bytes):
        image_id = image_id.decode()
    return {"boxes": boxes, "scores": np.asarray(scores, float)[keep],
            "heights": pixel_boxes[:, 2] - pixel_boxes[:, 0], "pixel_boxes": pixel_boxes,
            "image_id": image_id}


def result_lines(pixel_boxes, scores, type_name: str = "Car") -> list[str]:
    """Devkit result-format lines (alpha -10: no AOS) for yxyx `pixel_boxes` [n, 4] and `scores`."""
    boxes = np.asarray(pixel_boxes, np.float64).reshape(-1, 4)
    scores = np.asarray(scores, np.float64).reshape(-1)
    if len(boxes) != len(scores):
        raise ValueError(f"{len(boxes)} boxes but {len(scores)} scores: pass one score per box")
    return [f"{type_name} -1 -1 -10 {x1:.4f} {y1:.4f} {x2:.4f} {y2:.4f} "
            f"-1 -1 -1 -1000 -1000 -1000 -10 {s:.6f}"
            for (y1, x1, y2, x2), s in zip(boxes, scores)]


_RESULT_FILE = re.compile(r"^\d{6}\.txt$")


def result_file_name(image_id: str | bytes) -> str:
    """The devkit's result file name of a KITTI image: "%06d.txt" of its numeric id."""
    if isinstance(image_id, bytes):
        image_id = image_id.decode()
    if image_id is None or not str(image_id).isdigit():
        raise ValueError(f"image id {image_id!r} is not a KITTI image id (digits, e.g. "
                         "'000123'): pass the example's image_id to detections_for_class")
    return f"{int(image_id):06d}.txt"


def write_results(folder: str, dets: list[dict], type_name: str = "Car") -> list[str]:
    """Write `dets` as one devkit result file per image in `folder`; return the paths.

    Images without detections get an empty file (the devkit fails on a missing one), and old
    `NNNNNN.txt` files go first (some devkit variants evaluate every id they find in the folder).
    """
    names = [result_file_name(d.get("image_id")) for d in dets]
    if len(set(names)) != len(names):
        raise ValueError("the same image id appears twice in dets: evaluate each image once")
    import tensorflow as tf  # tf.io.gfile: folder may be on gs://.

    tf.io.gfile.makedirs(folder)
    for old in tf.io.gfile.listdir(folder):
        if _RESULT_FILE.match(old):
            tf.io.gfile.remove(os.path.join(folder, old))
    paths = []
    for name, d in zip(names, dets):
        lines = result_lines(d["pixel_boxes"], d["scores"], type_name)
        path = os.path.join(folder, name)
        with tf.io.gfile.GFile(path, "w") as f:
            f.write("".join(line + "\n" for line in lines))
        paths.append(path)
    return paths


def evaluate_kitti(dets: list[dict], gts: list[dict], min_overlap: float = 0.7) -> dict:
    """{difficulty name: kitti_ap result} for easy, moderate and hard."""
    return {name: kitti_ap(dets, gts, level, min_overlap)
            for level, (name, *_) in enumerate(DIFFICULTIES)}
