"""Where a detector fails: AP50 per object size (and at the looser IoUs 0.1 and 0.3, which
tell a badly placed box from a missed object), counting per true count, and the category maps'
recall per object size.

An object's size is `sqrt(box area)` in pixels; sizes fall into the half-open buckets
[0, 14), [14, 20), [20, 28), [28, 40), [40, inf) (`SIZE_EDGES`), by box area even where the
COCO ground truth's "area" is the mask's pixel count. pycocotools does the matching.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from decompnet_tf.eval import coco, metrics

SIZE_EDGES = (14.0, 20.0, 28.0, 40.0)  # px; digits on decomp_mnist span about 10-45 px.
MAP_THRESHOLD = 0.5  # ComponentsDetector's default: a map pixel above it is "on".
SIZED_IOUS = (0.1, 0.3, 0.5)  # The sized COCOeval run's thresholds: 0.5 and two looser.


def size_buckets() -> list[tuple[float, float]]:
    """The buckets as ``[(lo, hi)]`` in px, half-open ``[lo, hi)``, the last with ``hi = inf``."""
    edges = (0.0, *SIZE_EDGES, float("inf"))
    return list(zip(edges[:-1], edges[1:]))


def bucket_label(lo: float, hi: float) -> str:
    """``"<14"``, ``"14-20"``, ..., ``">=40"``: metrics.json's keys and the printed headers."""
    if lo == 0:
        return f"<{hi:g}"
    return f">={lo:g}" if np.isinf(hi) else f"{lo:g}-{hi:g}"


def box_areas(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Box areas in px**2, float64 [N], of normalised yxyx boxes [N, 4]."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    h, w = image_size
    # Sides rounded to 1e-3 px: the datasets' float32 coordinates put a 14 px side at
    # 13.99999 or 14.00001 px at random, which would scatter such objects across an edge.
    bh = np.round(np.maximum(b[:, 2] - b[:, 0], 0) * h, 3)
    bw = np.round(np.maximum(b[:, 3] - b[:, 1], 0) * w, 3)
    return bh * bw


def box_sizes(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """`sqrt(box area)` in px, float64 [N], of normalised yxyx boxes [N, 4]."""
    return np.sqrt(box_areas(boxes, image_size))


def area_ranges() -> dict[str, tuple[float, float]]:
    """The size buckets as COCO area ranges: {label: (lo**2, hi**2)} in px**2, half-open."""
    return {bucket_label(lo, hi): (lo**2, hi**2) for lo, hi in size_buckets()}


def entry_areas(entries: Sequence[Mapping[str, Any]], image_size: tuple[int, int]) -> np.ndarray:
    """`box_areas` of every box of `entries`, image after image: the order of the COCO
    annotations and results `coco.to_coco_groundtruth` / `to_coco_detections` write."""
    return np.concatenate([box_areas(e["boxes"], image_size) for e in entries] or [np.zeros(0)])


def ap_by_size(ev, num_classes: int, iou: float = 0.5) -> dict[str, dict[str, Any]]:
    """Box AP at `iou` per size bucket from a `coco.cocoeval` run with `area_ranges` and box
    areas:
    ground truth outside a bucket is ignored, and so are detections matched to it or matching
    nothing outside the bucket (COCO's area ranges).

    Returns:
        {label: {"per_category": {c: {"ap_voc", "ap_101", "num_gt", "num_det"}},
        "ap_voc_mean", "ap_101_mean", "num_gt"}}; AP is NaN where a bucket has no ground
        truth of the category, and the means skip it.
    """
    out = {}
    for label in area_ranges():
        curves = coco.pr_curves(ev, iou, label)
        per = {c: {k: curves[c][k] for k in ("ap_voc", "ap_101", "num_gt", "num_det")}
               for c in range(num_classes)}
        out[label] = {"per_category": per, "ap_voc_mean": metrics.mean_ap(per, "ap_voc"),
                      "ap_101_mean": metrics.mean_ap(per, "ap_101"),
                      "num_gt": sum(p["num_gt"] for p in per.values())}
    return out


def counting_by_true_count(pred_counts: np.ndarray, true_counts: np.ndarray) -> dict[str, list]:
    """Counting per true count n, pooled over categories.

    Args:
        pred_counts, true_counts: int ``[I, C]`` (``metrics.count_per_class``).

    Returns:
        ``{"true_count": [0 .. max], "pairs": [...], "exact": [...],
        "mean_signed_error": [...]}``, one entry per n: the number of (image, category) pairs
        with n true objects, the share of them counted exactly and the mean of (emitted - true)
        over them (NaN where no pair has n).
    """
    pred = np.asarray(pred_counts, dtype=np.int64).reshape(-1)
    true = np.asarray(true_counts, dtype=np.int64).reshape(-1)
    out = {"true_count": [], "pairs": [], "exact": [], "mean_signed_error": []}
    for n in range(int(true.max()) + 1 if true.size else 0):
        sel = true == n
        k = int(sel.sum())
        out["true_count"].append(n)
        out["pairs"].append(k)
        out["exact"].append(float((pred[sel] == n).mean()) if k else float("nan"))
        out["mean_signed_error"].append(float((pred[sel] - n).mean()) if k else float("nan"))
    return out


def found_in_category_maps(category_maps: np.ndarray, masks: np.ndarray, classes: np.ndarray,
                           threshold: float = MAP_THRESHOLD) -> np.ndarray:
    """Whether each true object is covered by its own category's map.

    The maps are resized to the image size by nearest neighbour (as ComponentsDetector resizes
    its blobs), then an object counts as found when more than half of its mask pixels lie where
    its category's map is above ``threshold``; an empty mask is not found.

    Args:
        category_maps: float ``[h, w, C]``; masks: bool ``[G, H, W]``; classes: int ``[G]``.

    Returns:
        bool ``[G]``.
    """
    masks = np.asarray(masks, dtype=bool)
    classes = np.asarray(classes, dtype=np.int64).reshape(-1)
    if len(classes) == 0:
        return np.zeros(0, dtype=bool)
    hh, ww = masks.shape[1:3]
    h, w = category_maps.shape[:2]
    rows = np.minimum((np.arange(hh) * h) // hh, h - 1)  # nearest: floor of the scaled centre
    cols = np.minimum((np.arange(ww) * w) // ww, w - 1)
    on = np.asarray(category_maps)[rows][:, cols] > threshold  # [H, W, C]
    inside = masks.reshape(len(masks), -1).sum(axis=1)
    hits = np.array([(on[..., c][m]).sum() for c, m in zip(classes, masks)], dtype=np.int64)
    return (inside > 0) & (2 * hits > inside)


def recall_by_size(found: Sequence[np.ndarray], gts: Sequence[Mapping[str, Any]],
                   image_size: tuple[int, int]) -> dict[str, dict[str, float]]:
    """The category maps' recall per size bucket.

    Args:
        found: per image, bool ``[G]`` from :func:`found_in_category_maps`.
        gts: per image ``"boxes"`` ``[G, 4]`` (normalised yxyx).

    Returns:
        ``{label: {"recall", "num_gt"}}`` per bucket; recall is NaN for an empty bucket.
    """
    f = np.concatenate([np.asarray(x, dtype=bool).reshape(-1) for x in found]) if found else \
        np.zeros(0, dtype=bool)
    s = np.concatenate([box_sizes(g["boxes"], image_size) for g in gts]) if gts else np.zeros(0)
    out = {}
    for lo, hi in size_buckets():
        sel = (s >= lo) & (s < hi)
        n = int(sel.sum())
        out[bucket_label(lo, hi)] = {"recall": float(f[sel].mean()) if n else float("nan"),
                                     "num_gt": n}
    return out


def breakdown(sized, dets, gts, class_names, image_size, found=None) -> dict[str, Any]:
    """metrics.json's "breakdown": "ap50_by_size" (`ap_by_size` of the `coco.cocoeval` run
    `sized`), "ap_voc_mean_by_size_at_iou" ({iou: {bucket: mean AP}} at each of `sized`'s other
    thresholds), "counting_by_true_count" and, given `found` (per image bool [G]),
    "category_map_recall_by_size"."""
    c = len(class_names)
    loose = [float(t) for t in sized.params.iouThrs if t < 0.5]
    out = {"size_edges_px": list(SIZE_EDGES),
           "ap50_by_size": ap_by_size(sized, c),
           "ap_voc_mean_by_size_at_iou": {
               f"{t:g}": {k: v["ap_voc_mean"] for k, v in ap_by_size(sized, c, t).items()}
               for t in loose},
           "counting_by_true_count": counting_by_true_count(
               metrics.count_per_class(dets, c), metrics.count_per_class(gts, c))}
    if found is not None:
        out["category_map_recall_by_size"] = recall_by_size(found, gts, image_size)
    return out


def breakdown_lines(b: Mapping[str, Any], class_names: Sequence[str]) -> list[str]:
    """The printed breakdown: AP50 per size and category, counting per true count, maps'
    recall per size."""
    labels = list(b["ap50_by_size"])
    lines = ["AP50 by size (sqrt box area, px)  " + " ".join(f"{x:>7}" for x in labels)]
    rows = [("all", "ap_voc_mean", None)] + [(f"'{n}'", None, k)
                                             for k, n in enumerate(class_names)]
    for name, key, k in rows:
        vals = [v[key] if key else v["per_category"][k]["ap_voc"]
                for v in b["ap50_by_size"].values()]
        lines.append(f"  {name:<32}" + " ".join(f"{x:>7.3f}" for x in vals))
    for t, by_size in b.get("ap_voc_mean_by_size_at_iou", {}).items():
        lines.append(f"  {f'all, IoU {t} (placed loosely)':<32}" + " ".join(
            f"{x:>7.3f}" for x in by_size.values()))
    lines.append("  " + f"{'objects':<32}" + " ".join(
        f"{v['num_gt']:>7d}" for v in b["ap50_by_size"].values()))
    if "category_map_recall_by_size" in b:
        lines.append("  " + f"{'category-map recall':<32}" + " ".join(
            f"{v['recall']:>7.3f}" for v in b["category_map_recall_by_size"].values()))
    cnt = b["counting_by_true_count"]
    lines.append(f"{'counting by true count n':<34}" + " ".join(
        f"{n:>6d}" for n in cnt["true_count"]))
    lines.append(f"  {'(image, category) pairs':<32}" + " ".join(
        f"{p:>6d}" for p in cnt["pairs"]))
    lines.append(f"  {'counted exactly':<32}" + " ".join(f"{e:>6.2f}" for e in cnt["exact"]))
    lines.append(f"  {'mean error (emitted - true)':<32}" + " ".join(
        f"{e:>+6.2f}" for e in cnt["mean_signed_error"]))
    return lines
