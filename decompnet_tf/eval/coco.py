"""COCO-format export and `pycocotools` evaluation (the reference our own metrics match).

Inputs are `eval.metrics`' per-image mappings: "classes" int [N], "boxes" float [N, 4]
(ymin, xmin, ymax, xmax) normalised, optional "masks" bool [N, H, W], for detections "scores".
Image, category and annotation ids start at 1: pycocotools reads a matched id 0 as unmatched.
Boxes become pixel [x, y, w, h] without +1, so COCO's IoU equals the normalised boxes' IoU.
`pycocotools` is imported lazily, so only evaluation needs it.
"""

from __future__ import annotations

import contextlib
import copy
import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from decompnet_tf.eval import metrics

DEFAULT_CLASS_NAMES: tuple[str, ...] = ("3", "6", "9")


def _pixel_xywh(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Normalised yxyx [N, 4] -> pixel [x, y, w, h] float64 [N, 4]."""
    h, w = image_size
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    xywh = np.stack(
        [b[:, 1] * w, b[:, 0] * h, (b[:, 3] - b[:, 1]) * w, (b[:, 2] - b[:, 0]) * h], axis=-1
    )
    # Rounding to 1e-4 px undoes the float32 noise of stored normalised coordinates (a 9 px side
    # reads 8.999997), so pixel-integral boxes stay integral and an IoU of exactly 0.5 matches.
    return np.round(xywh, 4)


def _encode_masks(masks: np.ndarray) -> list[dict[str, Any]]:
    """Binary masks [N, H, W] -> compressed RLEs {"size": [H, W], "counts": str}."""
    from pycocotools import mask as mask_utils

    m = np.asarray(masks)
    if len(m) == 0:
        return []
    rles = mask_utils.encode(np.asfortranarray((m != 0).transpose(1, 2, 0).astype(np.uint8)))
    for rle in rles:
        rle["counts"] = rle["counts"].decode("ascii")
    return rles


def _boxes_and_rles(
    entry: Mapping[str, Any], n: int, image_size: tuple[int, int], with_masks: bool
) -> tuple[np.ndarray, list[dict[str, Any]] | None]:
    """Pixel xywh boxes [n, 4] (from "boxes", else from the masks) and optional RLEs."""
    from pycocotools import mask as mask_utils

    rles = None
    if with_masks:
        if "masks" not in entry:
            raise KeyError("masks requested but an entry has no 'masks'")
        rles = _encode_masks(entry["masks"]) if n else []
        if len(rles) != n:
            raise ValueError(f"{len(rles)} masks for {n} classes")
    if "boxes" in entry:
        xywh = _pixel_xywh(entry["boxes"], image_size)
    elif rles is not None:
        xywh = np.asarray(mask_utils.toBbox(rles), dtype=np.float64).reshape(-1, 4)
    else:
        raise KeyError("an entry has neither 'boxes' nor 'masks'")
    if len(xywh) != n:
        raise ValueError(f"{len(xywh)} boxes for {n} classes")
    return xywh, rles


def to_coco_groundtruth(
    gts: Sequence[Mapping[str, Any]],
    image_size: tuple[int, int],
    class_names: Sequence[str] = DEFAULT_CLASS_NAMES,
) -> dict[str, Any]:
    """A COCO ground-truth dataset dict (what `instances_*.json` holds) of images of one
    (H, W) `image_size`; with segmentations (and mask areas) only when every entry has "masks"."""
    from pycocotools import mask as mask_utils

    h, w = int(image_size[0]), int(image_size[1])
    with_masks = len(gts) > 0 and all("masks" in g for g in gts)
    images, annotations = [], []
    for i, gt in enumerate(gts):
        image_id = i + 1
        images.append({"id": image_id, "height": h, "width": w, "file_name": f"{i:06d}.png"})
        classes = np.asarray(gt["classes"], dtype=np.int64).reshape(-1)
        xywh, rles = _boxes_and_rles(gt, len(classes), (h, w), with_masks)
        areas = (
            np.asarray(mask_utils.area(rles), dtype=np.float64).reshape(-1)
            if rles
            else xywh[:, 2] * xywh[:, 3]
        )
        for k, c in enumerate(classes):
            ann = {
                "id": len(annotations) + 1,
                "image_id": image_id,
                "category_id": int(c) + 1,
                "bbox": [float(v) for v in xywh[k]],
                "area": float(areas[k]),
                "iscrowd": 0,
            }
            if rles is not None:
                ann["segmentation"] = rles[k]
            annotations.append(ann)
    categories = [
        {"id": c + 1, "name": str(name), "supercategory": "digit"}
        for c, name in enumerate(class_names)
    ]
    return {"info": {}, "images": images, "annotations": annotations, "categories": categories}


def to_coco_detections(
    dets: Sequence[Mapping[str, Any]], image_size: tuple[int, int], with_masks: bool = False
) -> list[dict[str, Any]]:
    """A COCO results list (what `loadRes` reads) of `dets`, in the ground truth's image order;
    `with_masks` adds "segmentation" RLEs, and a detection without "boxes" gets its mask's."""
    h, w = int(image_size[0]), int(image_size[1])
    results = []
    for i, det in enumerate(dets):
        classes = np.asarray(det["classes"], dtype=np.int64).reshape(-1)
        scores = np.asarray(det["scores"], dtype=np.float64).reshape(-1)
        xywh, rles = _boxes_and_rles(det, len(classes), (h, w), with_masks)
        for k, c in enumerate(classes):
            res = {
                "image_id": i + 1,
                "category_id": int(c) + 1,
                "bbox": [float(v) for v in xywh[k]],
                "score": float(scores[k]),
            }
            if rles is not None:
                res["segmentation"] = rles[k]
            results.append(res)
    return results


def _nan_if_undefined(x: float) -> float:
    return float("nan") if x < 0 else float(x)


def _mean_valid(p: np.ndarray) -> float:
    valid = p[p > -1]
    return float(valid.mean()) if valid.size else float("nan")


def cocoeval(gt_dict: Mapping[str, Any], det_list: Sequence[Mapping[str, Any]],
             iou_type: str = "bbox", area_ranges: Mapping[str, tuple[float, float]] | None = None,
             gt_areas: Sequence[float] | None = None, det_areas: Sequence[float] | None = None,
             iou_thresholds: Sequence[float] | None = None):
    """A finished pycocotools `COCOeval` (evaluate, accumulate, summarize; silenced) of the two
    functions' outputs (not modified; `det_list` may be empty).

    Args:
        iou_type: "bbox" or "segm".
        area_ranges: {label: (lo, hi)} in px**2, added to COCO's four, each half-open [lo, hi).
        gt_areas, det_areas: per annotation / result (in their order), the areas the ranges
            test instead of COCO's own (the mask's pixels, the box's w * h).
        iou_thresholds: instead of COCO's 0.5:0.95 (each threshold is matched on its own).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    if iou_type == "segm" and not all("segmentation" in a for a in gt_dict["annotations"]):
        raise ValueError("iou_type='segm' needs ground truth built from masks")
    gt_dict = copy.deepcopy(dict(gt_dict))  # COCOeval writes into the annotations
    det_list = copy.deepcopy(list(det_list))  # loadRes writes ids/areas into the results
    if gt_areas is not None:
        for ann, area in zip(gt_dict["annotations"], gt_areas, strict=True):
            ann["area"] = float(area)
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_dict
        coco_gt.createIndex()
        if det_list:
            coco_dt = coco_gt.loadRes(det_list)
        else:  # loadRes rejects an empty list.
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(gt_dict["images"]), "annotations": [],
                               "categories": copy.deepcopy(gt_dict["categories"])}
            coco_dt.createIndex()
        if det_areas is not None:  # loadRes keeps the results' order, ids 1..N.
            for ann, area in zip(coco_dt.dataset["annotations"], det_areas, strict=True):
                ann["area"] = float(area)
        ev = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        if iou_thresholds is not None:
            ev.params.iouThrs = np.asarray(iou_thresholds, dtype=np.float64)
        for label, (lo, hi) in (area_ranges or {}).items():
            # COCO's ranges are closed; the largest float below hi makes them half-open.
            ev.params.areaRng.append([lo, float(np.nextafter(hi, -np.inf))])
            ev.params.areaRngLbl.append(label)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def summary(ev, categories: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """metrics.json's "coco" entry of a finished `cocoeval` (area "all", `maxDets` 100).

    Returns:
        {"AP": AP@[.5:.95], "AP50", "AP75", "stats": the 12 COCO numbers, "per_category":
        {name: {"category_id", "AP", "AP50", "AP75"}}}; undefined values (-1) are NaN.
    """
    params = ev.params
    precision = ev.eval["precision"]  # [T, R, K, A, M]
    t50, t75 = _iou_index(ev, 0.5), _iou_index(ev, 0.75)
    a_all = list(params.areaRngLbl).index("all")
    m_100 = list(params.maxDets).index(100)
    names = {c["id"]: str(c["name"]) for c in categories}
    per_category = {}
    for k, cat_id in enumerate(params.catIds):
        p = precision[:, :, k, a_all, m_100]  # [T, R]
        per_category[names.get(cat_id, str(cat_id))] = {
            "category_id": int(cat_id), "AP": _mean_valid(p), "AP50": _mean_valid(p[t50]),
            "AP75": _mean_valid(p[t75])}
    stats = [_nan_if_undefined(s) for s in ev.stats]
    return {"AP": stats[0], "AP50": stats[1], "AP75": stats[2], "stats": stats,
            "per_category": per_category}


def coco_evaluate(gt_dict: Mapping[str, Any], det_list: Sequence[Mapping[str, Any]],
                  iou_type: str = "bbox") -> dict[str, Any]:
    """`summary` of one plain `cocoeval` run."""
    return summary(cocoeval(gt_dict, det_list, iou_type), gt_dict["categories"])


def _iou_index(ev, iou: float) -> int:
    found = np.flatnonzero(np.isclose(ev.params.iouThrs, iou))
    if not len(found):
        raise ValueError(f"IoU {iou} is not one of COCOeval's thresholds {ev.params.iouThrs}")
    return int(found[0])


def pr_curves(ev, iou: float = 0.5, area: str = "all") -> dict[int, dict[str, Any]]:
    """Per class id (0-based), the precision-recall curve of a finished `cocoeval` at one IoU
    threshold and area range, drawn from its per-image matches as `accumulate` draws them:
    each image's best `maxDets` (100) detections pooled, sorted by score (stable), the ignored
    ones (matched to out-of-range ground truth, or unmatched and out of range) left out.

    Returns:
        {class: {"precision", "recall": float64 [K] (`metrics.pr_curve`), "num_gt", "num_det",
        "ap_voc": all-point VOC AP, "ap_101": COCO's 101-point AP}}; the APs (and recall) are
        NaN for a class without ground truth in the range.
    """
    params = ev.params
    t = _iou_index(ev, iou)
    a = list(params.areaRngLbl).index(area)
    m = list(params.maxDets).index(100)
    max_dets = params.maxDets[m]
    images, areas = len(params.imgIds), len(params.areaRng)
    out = {}
    for k, cat_id in enumerate(params.catIds):
        evals = [e for e in ev.evalImgs[(k * areas + a) * images:(k * areas + a + 1) * images]
                 if e is not None]
        scores = np.concatenate([e["dtScores"][:max_dets] for e in evals] or [np.zeros(0)])
        order = np.argsort(-scores, kind="mergesort")
        matched = np.concatenate([e["dtMatches"][t, :max_dets] for e in evals]
                                 or [np.zeros(0)])[order]
        ignored = np.concatenate([e["dtIgnore"][t, :max_dets] for e in evals]
                                 or [np.zeros(0, bool)])[order].astype(bool)
        num_gt = int(sum(np.count_nonzero(e["gtIgnore"] == 0) for e in evals))
        precision, recall = metrics.pr_curve(matched[~ignored] != 0, num_gt)
        q = ev.eval["precision"][t, :, k, a, m]
        out[int(cat_id) - 1] = {
            "precision": precision, "recall": recall, "num_gt": num_gt,
            "num_det": int((~ignored).sum()),
            "ap_voc": metrics.ap_voc(precision, recall) if num_gt else float("nan"),
            "ap_101": float(q.mean()) if num_gt else float("nan")}
    return out
