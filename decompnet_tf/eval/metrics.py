"""What is drawn from pycocotools' matches (`coco.pr_curves`), and counting (NumPy only).

A precision-recall curve is read after each detection of a score-sorted list; VOC's all-point
AP is the area under its precision envelope; the best recall at a precision is the paper's
operating point ("0.74 recall with 0.84 precision" for digit 3, section 3.1). Undefined values
(a class without ground truth) are NaN, never exceptions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def pr_curve(tp: np.ndarray, num_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """(precision, recall) float64 [K] after each of the K score-sorted detections (bool `tp`
    [K]) of `num_gt` objects; recall is all NaN when `num_gt` is 0."""
    tp = np.asarray(tp, dtype=bool).reshape(-1)
    tp_cum = np.cumsum(tp).astype(np.float64)
    precision = tp_cum / np.arange(1, len(tp) + 1, dtype=np.float64)
    recall = tp_cum / float(num_gt) if num_gt > 0 else np.full(len(tp), np.nan)
    return precision, recall


def precision_envelope(precision: np.ndarray) -> np.ndarray:
    """Monotone non-increasing envelope: `env[k] = max(precision[k:])`, float64 [K]."""
    p = np.asarray(precision, dtype=np.float64).reshape(-1)
    if p.size == 0:
        return p.copy()
    return np.maximum.accumulate(p[::-1])[::-1]


def ap_voc(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC 2010+ all-point AP: `sum_k (r_k - r_{k-1}) env_k` over `pr_curve`'s [K] arrays;
    0 for an empty curve, NaN when the recall is NaN (no ground truth)."""
    r = np.asarray(recall, dtype=np.float64).reshape(-1)
    if r.size == 0:
        return 0.0
    if np.isnan(r).any():
        return float("nan")
    steps = np.diff(np.concatenate([[0.0], r]))  # 0 where a false positive kept the recall
    return float(np.sum(steps * precision_envelope(precision)))


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
