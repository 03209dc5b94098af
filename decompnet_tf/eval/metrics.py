"""Detection, instance-segmentation and counting metrics (NumPy only, pure functions).

These reproduce the evaluation of the paper (section 3.1, Figures 4 and 5): per-category
precision/recall curves at a fixed IoU threshold (0.5 for detection, several thresholds for
segmentation), plus the summary numbers usually quoted alongside them (VOC all-point AP, COCO
101-point AP, and the best recall at a given precision, e.g. the paper's "0.74 recall with 0.84
precision" for digit 3).

Data formats (one entry per image, same image order for ``dets`` and ``gts``):

* ground truth ``gts[i]``: a mapping with

  - ``"classes"``: int ``[G]``, class ids in ``[0, num_classes)`` (0, 1, 2 = digits 3, 6, 9);
  - ``"boxes"``: float ``[G, 4]``, ``(ymin, xmin, ymax, xmax)`` normalised to [0, 1]
    (needed for ``iou_type="bbox"``);
  - ``"masks"``: bool ``[G, H, W]`` binary instance masks (needed for ``iou_type="segm"``).

* detections ``dets[i]``: the same keys (``[D]``, ``[D, 4]``, ``[D, H, W]``) plus
  ``"scores"``: float ``[D]``, higher = more confident.

Matching follows COCO (``pycocotools``) rather than the original VOC devkit: detections are taken
in descending score order, each one claims the *unmatched* ground truth of its class with the
highest IoU provided that IoU ``>= iou_threshold`` (inclusive, as in pycocotools, with a 1e-9
slack for float rounding, see ``IOU_EPS``); a detection whose best candidate is already taken
falls back to the next best unmatched one, and a detection with no candidate left is a false
positive (so duplicates of one object are false positives).
There are no "difficult"/crowd objects in this project, so nothing is ignored.

Ties in score are broken stably (``np.argsort(-scores, kind="mergesort")``): first by image order,
then by the order of the detections inside an image, exactly as pycocotools does.

Undefined values are NaN, never exceptions: a class without any ground truth in the dataset has
``ap_voc = ap_101 = nan`` (and a NaN recall curve); :func:`mean_ap` skips NaN classes. A class
with ground truth but no detections has AP 0 and empty curves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from decompnet_tf.ops.np_boxes import box_iou_np

IouFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

# Slack on the IoU threshold. Pixel-integral boxes often have an IoU of exactly 0.5 or 0.75, which
# pycocotools (exact integer arithmetic in pixels) counts as a match, while the same IoU computed
# from normalised coordinates can come out 2e-16 short of it.
IOU_EPS = 1e-9

# COCO's recall thresholds 0:.01:1, computed exactly as pycocotools.cocoeval.Params does.
_COCO_REC_THRS_NUM = int(np.round((1.00 - 0.0) / 0.01)) + 1


def coco_recall_thresholds() -> np.ndarray:
    """Returns the 101 COCO recall thresholds, float64 ``[101]``, bit-identical to pycocotools."""
    return np.linspace(0.0, 1.00, _COCO_REC_THRS_NUM, endpoint=True)


def mask_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of binary masks.

    Args:
        a: bool (or 0/1) ``[N, H, W]``.
        b: bool (or 0/1) ``[M, H, W]``, same ``H, W`` as ``a``.

    Returns:
        float64 ``[N, M]``, ``iou[i, j] = |a_i & b_j| / |a_i | b_j|``; 0 where the union is empty
        (two empty masks).
    """
    a = np.asarray(a)
    b = np.asarray(b)
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return np.zeros((n, m), dtype=np.float64)
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"mask shapes differ: {a.shape[1:]} vs {b.shape[1:]}")
    fa = (a.reshape(n, -1) != 0).astype(np.float64)  # [N, H*W]
    fb = (b.reshape(m, -1) != 0).astype(np.float64)  # [M, H*W]
    inter = fa @ fb.T  # [N, M], exact: integer counts far below 2**53
    union = fa.sum(axis=1)[:, None] + fb.sum(axis=1)[None, :] - inter
    return np.where(union > 0.0, inter / np.where(union > 0.0, union, 1.0), 0.0)


def score_order(scores: np.ndarray) -> np.ndarray:
    """Indices ``[D]`` sorting ``scores`` (float ``[D]``) descending, stably (as pycocotools)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="mergesort")


def match_detections(scores: np.ndarray, ious: np.ndarray, iou_threshold: float) -> np.ndarray:
    """Greedy COCO-style matching of one image's detections (of one class) to its ground truth.

    Args:
        scores: float ``[D]`` detection confidences.
        ious: float ``[D, G]`` IoU of every detection with every ground-truth object, rows in the
            same order as ``scores``.
        iou_threshold: a match needs ``IoU >= min(iou_threshold, 1 - 1e-10) - IOU_EPS``
            (inclusive, as pycocotools; ``IOU_EPS`` only absorbs float rounding).

    Returns:
        bool ``[D]``, **in descending score order** (i.e. ``tp[k]`` refers to detection
        ``score_order(scores)[k]``): True where the detection matched a ground truth not already
        claimed by a higher-scored detection.
    """
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    ious = np.asarray(ious, dtype=np.float64)
    if ious.ndim != 2 or len(ious) != len(scores):
        raise ValueError(f"ious must be [D={len(scores)}, G], got shape {ious.shape}")
    order = score_order(scores)
    thr = min(float(iou_threshold), 1.0 - 1e-10) - IOU_EPS
    taken = np.zeros(ious.shape[1], dtype=bool)
    tp = np.zeros(len(scores), dtype=bool)
    for k, d in enumerate(order):
        cand = np.where(taken, -np.inf, ious[d])  # [G]
        if cand.size == 0:
            continue
        g = len(cand) - 1 - int(np.argmax(cand[::-1]))  # IoU ties: last gt, as pycocotools
        if cand[g] >= thr:
            taken[g] = True
            tp[k] = True
    return tp


def pr_curve(tp: np.ndarray, num_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection of a score-sorted list.

    Args:
        tp: bool ``[K]``, true-positive flags in descending score order (whole dataset).
        num_gt: number of ground-truth objects of the class in the dataset.

    Returns:
        ``(precision, recall)``, float64 ``[K]`` each: ``precision[k] = TP_k / (k + 1)`` and
        ``recall[k] = TP_k / num_gt`` with ``TP_k`` the true positives among the first ``k + 1``
        detections. ``recall`` is all NaN when ``num_gt == 0``.
    """
    tp = np.asarray(tp, dtype=bool).reshape(-1)
    tp_cum = np.cumsum(tp).astype(np.float64)
    precision = tp_cum / np.arange(1, len(tp) + 1, dtype=np.float64)
    if num_gt > 0:
        recall = tp_cum / float(num_gt)
    else:
        recall = np.full(len(tp), np.nan)
    return precision, recall


def precision_envelope(precision: np.ndarray) -> np.ndarray:
    """Monotone non-increasing envelope: ``env[k] = max(precision[k:])``, float64 ``[K]``."""
    p = np.asarray(precision, dtype=np.float64).reshape(-1)
    if p.size == 0:
        return p.copy()
    return np.maximum.accumulate(p[::-1])[::-1]


def _envelope_and_recall(precision, recall):
    """(precision envelope, recall) as float64 [K], or (None, AP) for the empty (0.0) and
    no-ground-truth (NaN) curves."""
    p = np.asarray(precision, dtype=np.float64).reshape(-1)
    r = np.asarray(recall, dtype=np.float64).reshape(-1)
    if r.size == 0:
        return None, 0.0
    if np.isnan(r).any():
        return None, float("nan")
    return precision_envelope(p), r


def ap_voc(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC 2010+ all-point average precision: area under the precision envelope.

    Args:
        precision: float ``[K]`` from :func:`pr_curve`.
        recall: float ``[K]`` from :func:`pr_curve` (non-decreasing).

    Returns:
        ``sum_k (r_k - r_{k-1}) * env_k`` with ``r_{-1} = 0``; 0 for an empty curve, NaN if the
        recall is NaN (no ground truth).
    """
    env, r = _envelope_and_recall(precision, recall)
    if env is None:
        return r
    steps = np.diff(np.concatenate([[0.0], r]))  # [K], 0 where a false positive kept recall
    return float(np.sum(steps * env))


def ap_101(precision: np.ndarray, recall: np.ndarray) -> float:
    """COCO 101-point interpolated AP, computed exactly as ``pycocotools`` ``accumulate``.

    The precision envelope is sampled at recall thresholds ``0, 0.01, ..., 1`` with
    ``np.searchsorted(recall, thresholds, side="left")``; thresholds beyond the last reached
    recall contribute 0.

    Args:
        precision: float ``[K]`` from :func:`pr_curve`.
        recall: float ``[K]`` from :func:`pr_curve` (non-decreasing).

    Returns:
        Mean of the 101 samples; 0 for an empty curve, NaN if the recall is NaN.
    """
    env, r = _envelope_and_recall(precision, recall)
    if env is None:
        return r
    idx = np.searchsorted(r, coco_recall_thresholds(), side="left")  # [101]
    q = np.where(idx < len(env), env[np.minimum(idx, len(env) - 1)], 0.0)
    return float(np.mean(q))


def recall_at_precision(precision: np.ndarray, recall: np.ndarray, p_min: float = 0.84) -> float:
    """Best recall among operating points with precision ``>= p_min``.

    Uses the raw curve points (no envelope): each point is reachable by thresholding the score
    just below that detection, so the result is an achievable (recall, precision) pair, like the
    paper's "0.74 recall with 0.84 precision".

    Args:
        precision: float ``[K]`` from :func:`pr_curve`.
        recall: float ``[K]`` from :func:`pr_curve`.
        p_min: minimum precision.

    Returns:
        The max recall, 0.0 if no point reaches ``p_min`` (or the curve is empty), NaN if the
        recall is NaN (no ground truth).
    """
    p = np.asarray(precision, dtype=np.float64).reshape(-1)
    r = np.asarray(recall, dtype=np.float64).reshape(-1)
    if r.size and np.isnan(r).any():
        return float("nan")
    ok = p >= p_min
    return float(r[ok].max()) if ok.any() else 0.0


def _items(entry: Mapping[str, Any], key: str, n: int) -> np.ndarray:
    if key not in entry:
        raise KeyError(f"iou_type needs {key!r} in every detection/ground-truth entry")
    arr = np.asarray(entry[key])
    if key == "boxes":
        return arr.astype(np.float64).reshape(n, 4)
    if len(arr) != n:
        raise ValueError(f"{len(arr)} masks for {n} classes")
    return arr


def evaluate_detections(
    dets: Sequence[Mapping[str, Any]],
    gts: Sequence[Mapping[str, Any]],
    num_classes: int,
    iou_threshold: float = 0.5,
    iou_type: str = "bbox",
    iou_fn: IouFn | None = None,
    max_dets: int | None = None,
) -> dict[int, dict[str, Any]]:
    """Dataset-level per-class precision/recall curves and AP.

    Args:
        dets: one mapping per image, ``"classes"`` int ``[D]``, ``"scores"`` float ``[D]`` and
            ``"boxes"`` float ``[D, 4]`` (normalised yxyx) and/or ``"masks"`` bool ``[D, H, W]``.
        gts: one mapping per image (same order and length as ``dets``), ``"classes"`` ``[G]``
            and ``"boxes"`` ``[G, 4]`` and/or ``"masks"`` ``[G, H, W]``.
        num_classes: number of classes C; class ids are ``0 .. C-1``.
        iou_threshold: IoU needed for a true positive (inclusive).
        iou_type: ``"bbox"`` (uses ``"boxes"``) or ``"segm"`` (uses ``"masks"``).
        iou_fn: optional override ``iou_fn(det_items [D, ...], gt_items [G, ...]) -> [D, G]``
            applied to the arrays under the key chosen by ``iou_type``; defaults to
            ``decompnet_tf.ops.np_boxes.box_iou_np`` / :func:`mask_iou`.
        max_dets: keep at most this many top-scored detections per image and class (pycocotools'
            ``maxDets``, applied per image and category); None keeps all.

    Returns:
        ``{class_id: result}`` for every class in ``range(num_classes)``, where ``result`` has
        ``"precision"``, ``"recall"`` (float64 ``[K]``, see :func:`pr_curve`), ``"scores"``
        (float64 ``[K]``, descending), ``"tp"`` (bool ``[K]``), ``"num_gt"`` and ``"num_det"``
        (int), ``"ap_voc"`` and ``"ap_101"`` (float; NaN when ``num_gt == 0``), with ``K`` the
        number of detections of that class over the dataset.
    """
    if len(dets) != len(gts):
        raise ValueError(f"{len(dets)} detection entries for {len(gts)} ground-truth entries")
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    key = "boxes" if iou_type == "bbox" else "masks"
    if iou_fn is None:
        iou_fn = box_iou_np if iou_type == "bbox" else mask_iou

    scores_per_class: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    tp_per_class: list[list[np.ndarray]] = [[] for _ in range(num_classes)]
    num_gt = np.zeros(num_classes, dtype=np.int64)
    for det, gt in zip(dets, gts):
        d_cls = np.asarray(det["classes"], dtype=np.int64).reshape(-1)
        g_cls = np.asarray(gt["classes"], dtype=np.int64).reshape(-1)
        d_scores = np.asarray(det["scores"], dtype=np.float64).reshape(-1)
        d_items = _items(det, key, len(d_cls)) if len(d_cls) else None
        g_items = _items(gt, key, len(g_cls)) if len(g_cls) else None
        for c in range(num_classes):
            gi = np.flatnonzero(g_cls == c)
            num_gt[c] += len(gi)
            di = np.flatnonzero(d_cls == c)
            if len(di) == 0:
                continue
            di = di[score_order(d_scores[di])]  # descending, stable
            if max_dets is not None:
                di = di[:max_dets]
            if len(di) == 0:
                continue
            if len(gi):
                ious = np.asarray(iou_fn(d_items[di], g_items[gi]), dtype=np.float64)
            else:
                ious = np.zeros((len(di), 0))
            # di is already sorted, so match_detections keeps this order.
            tp_per_class[c].append(match_detections(d_scores[di], ious, iou_threshold))
            scores_per_class[c].append(d_scores[di])

    results: dict[int, dict[str, Any]] = {}
    for c in range(num_classes):
        scores = np.concatenate(scores_per_class[c]) if scores_per_class[c] else np.zeros(0)
        tp = np.concatenate(tp_per_class[c]) if tp_per_class[c] else np.zeros(0, dtype=bool)
        order = score_order(scores)
        scores, tp = scores[order], tp[order]
        precision, recall = pr_curve(tp, int(num_gt[c]))
        undefined = num_gt[c] == 0
        results[c] = {
            "precision": precision,
            "recall": recall,
            "scores": scores,
            "tp": tp,
            "num_gt": int(num_gt[c]),
            "num_det": len(tp),
            "ap_voc": float("nan") if undefined else ap_voc(precision, recall),
            "ap_101": float("nan") if undefined else ap_101(precision, recall),
        }
    return results


def mean_ap(results: Mapping[int, Mapping[str, Any]], key: str = "ap_voc") -> float:
    """Mean of ``results[c][key]`` over classes, skipping NaN (classes without ground truth).

    Args:
        results: output of :func:`evaluate_detections`.
        key: ``"ap_voc"`` or ``"ap_101"``.

    Returns:
        The mean, NaN if every class is NaN (or there are no classes).
    """
    vals = np.array([float(r[key]) for r in results.values()], dtype=np.float64)
    vals = vals[~np.isnan(vals)]
    return float(vals.mean()) if vals.size else float("nan")


def count_per_class(
    entries: Sequence[Mapping[str, Any]], num_classes: int, score_threshold: float | None = None
) -> np.ndarray:
    """Number of instances per image and class.

    Args:
        entries: per-image mappings with ``"classes"`` int ``[N]`` (and ``"scores"`` ``[N]``
            when ``score_threshold`` is given): ground truth or detections.
        num_classes: C.
        score_threshold: if set, only entries with ``score >= score_threshold`` are counted.

    Returns:
        int64 ``[I, C]`` counts.
    """
    counts = np.zeros((len(entries), num_classes), dtype=np.int64)
    for i, e in enumerate(entries):
        cls = np.asarray(e["classes"], dtype=np.int64).reshape(-1)
        if score_threshold is not None:
            cls = cls[np.asarray(e["scores"], dtype=np.float64).reshape(-1) >= score_threshold]
        counts[i] = np.bincount(cls, minlength=num_classes)[:num_classes]
    return counts


def counting_metrics(pred_counts: np.ndarray, true_counts: np.ndarray) -> dict[str, Any]:
    """Object-counting accuracy and error.

    Args:
        pred_counts: int ``[I, C]`` predicted number of instances per image and class.
        true_counts: int ``[I, C]`` true counts.

    Returns:
        ``{"accuracy": float, "mae": float, "accuracy_per_class": float64 [C],
        "mae_per_class": float64 [C]}`` where ``accuracy`` is the share of (image, class) pairs
        counted exactly and ``mae`` the mean absolute count error over those pairs; all NaN when
        ``I == 0``.
    """
    pred = np.asarray(pred_counts, dtype=np.float64)
    true = np.asarray(true_counts, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 2:
        raise ValueError(f"need matching [I, C] arrays, got {pred.shape} and {true.shape}")
    num_classes = pred.shape[1]
    if pred.shape[0] == 0:
        nan_c = np.full(num_classes, np.nan)
        return {
            "accuracy": float("nan"),
            "mae": float("nan"),
            "accuracy_per_class": nan_c,
            "mae_per_class": nan_c.copy(),
        }
    exact = pred == true
    err = np.abs(pred - true)
    return {
        "accuracy": float(exact.mean()),
        "mae": float(err.mean()),
        "accuracy_per_class": exact.mean(axis=0),
        "mae_per_class": err.mean(axis=0),
    }
