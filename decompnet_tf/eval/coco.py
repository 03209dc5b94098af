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

DEFAULT_CLASS_NAMES: tuple[str, ...] = ("3", "6", "9")


def _pixel_xywh(boxes: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Normalised yxyx [N, 4] -> pixel [x, y, w, h] float64 [N, 4]."""
    h, w = image_size
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    xywh = np.stack(
        [b[:, 1] * w, b[:, 0] * h, (b[:, 3] - b[:, 1]) * w, (b[:, 2] - b[:, 0]) * h], axis=-1
    )
    # Rounding to 1e-6 px undoes the normalisation's float noise (7 / 48 * 48 = 7.000000000000001),
    # so pixel-integral boxes stay integral and exact-threshold IoUs (0.5, 0.75) stay exact.
    return np.round(xywh, 6)


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


def coco_evaluate(
    gt_dict: Mapping[str, Any], det_list: Sequence[Mapping[str, Any]], iou_type: str = "bbox"
) -> dict[str, Any]:
    """`COCOeval` (area range "all", `maxDets` 100, silenced) of the two functions' outputs
    (not modified; `det_list` may be empty), `iou_type` "bbox" or "segm".

    Returns:
        {"AP": AP@[.5:.95], "AP50", "AP75", "stats": the 12 COCO numbers, "per_category":
        {name: {"category_id", "AP", "AP50", "AP75"}}}; undefined values (-1) are NaN.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    if iou_type == "segm" and not all("segmentation" in a for a in gt_dict["annotations"]):
        raise ValueError("iou_type='segm' needs ground truth built from masks")
    gt_dict = copy.deepcopy(dict(gt_dict))  # COCOeval writes into the annotations
    det_list = copy.deepcopy(list(det_list))  # loadRes writes ids/areas into the results
    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = gt_dict
        coco_gt.createIndex()
        if det_list:
            coco_dt = coco_gt.loadRes(det_list)
        else:
            coco_dt = COCO()
            coco_dt.dataset = {
                "images": list(gt_dict["images"]),
                "categories": copy.deepcopy(gt_dict["categories"]),
                "annotations": [],
            }
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iouType=iou_type)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    params = ev.params
    precision = ev.eval["precision"]  # [T, R, K, A, M]
    t50 = int(np.flatnonzero(np.isclose(params.iouThrs, 0.5))[0])
    t75 = int(np.flatnonzero(np.isclose(params.iouThrs, 0.75))[0])
    a_all = list(params.areaRngLbl).index("all")
    m_100 = list(params.maxDets).index(100)
    names = {c["id"]: str(c["name"]) for c in gt_dict["categories"]}
    per_category = {}
    for k, cat_id in enumerate(params.catIds):
        p = precision[:, :, k, a_all, m_100]  # [T, R]
        per_category[names.get(cat_id, str(cat_id))] = {
            "category_id": int(cat_id),
            "AP": _mean_valid(p),
            "AP50": _mean_valid(p[t50]),
            "AP75": _mean_valid(p[t75]),
        }
    stats = [_nan_if_undefined(s) for s in ev.stats]
    return {
        "AP": stats[0],
        "AP50": stats[1],
        "AP75": stats[2],
        "stats": stats,
        "per_category": per_category,
    }
