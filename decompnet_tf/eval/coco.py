"""COCO-format export and ``pycocotools`` evaluation (the reference our own metrics match).

Input formats are those of :mod:`decompnet_tf.eval.metrics`: per-image mappings with
``"classes"`` int ``[N]``, ``"boxes"`` float ``[N, 4]`` ``(ymin, xmin, ymax, xmax)`` normalised to
[0, 1], optional ``"masks"`` bool ``[N, H, W]`` and, for detections, ``"scores"`` float ``[N]``.

COCO ids: image ``i`` of the list gets ``image_id = i + 1``, class ``c`` gets
``category_id = c + 1`` and annotations are numbered from 1 (pycocotools treats a matched id of
0 as "unmatched", so 0 must never be used). Boxes become absolute pixel ``[x, y, w, h]``
(``x = xmin * W``, ``w = (xmax - xmin) * W``, no +1, rounded to 1e-6 px), so pycocotools' box
IoU equals the IoU of the normalised boxes. Masks become compressed RLE with ``counts`` as
``str`` (JSON-safe).

``pycocotools`` must be installed (``pip install .[dev]``); it is imported lazily so the rest of
the package does not depend on it.
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
    """Normalised yxyx ``[N, 4]`` -> absolute pixel ``[x, y, w, h]`` float64 ``[N, 4]``."""
    h, w = image_size
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    xywh = np.stack(
        [b[:, 1] * w, b[:, 0] * h, (b[:, 3] - b[:, 1]) * w, (b[:, 2] - b[:, 0]) * h], axis=-1
    )
    # Rounding to 1e-6 px undoes the normalisation's float noise (7 / 48 * 48 = 7.000000000000001),
    # so pixel-integral boxes stay integral and exact-threshold IoUs (0.5, 0.75) stay exact.
    return np.round(xywh, 6)


def _encode_masks(masks: np.ndarray) -> list[dict[str, Any]]:
    """Binary masks ``[N, H, W]`` -> compressed RLEs ``{"size": [H, W], "counts": str}``."""
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
    """Pixel ``[n, 4]`` xywh boxes (from ``"boxes"``, else from the masks) and optional RLEs."""
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
    """Builds a COCO ground-truth dataset dict (what ``instances_*.json`` holds).

    Args:
        gts: one mapping per image: ``"classes"`` int ``[G]``, ``"boxes"`` float ``[G, 4]``
            normalised yxyx, optional ``"masks"`` bool ``[G, H, W]``. Segmentations are written
            only when every entry has ``"masks"``.
        image_size: ``(H, W)`` in pixels, shared by all images.
        class_names: name of class id ``c`` at index ``c``.

    Returns:
        ``{"info", "images", "annotations", "categories"}``; each annotation has ``id``,
        ``image_id``, ``category_id``, ``bbox`` ``[x, y, w, h]`` (pixels), ``area`` (mask pixel
        count with masks, else box area), ``iscrowd = 0`` and, with masks, ``segmentation`` RLE.
    """
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
    """Builds a COCO results list (what ``loadRes`` reads).

    Args:
        dets: one mapping per image (same order as the ground truth): ``"classes"`` int ``[D]``,
            ``"scores"`` float ``[D]``, ``"boxes"`` float ``[D, 4]`` normalised yxyx (may be
            omitted when ``with_masks``; the box is then the mask's bounding box) and, when
            ``with_masks``, ``"masks"`` bool ``[D, H, W]``.
        image_size: ``(H, W)`` in pixels.
        with_masks: add ``segmentation`` RLEs (needed for ``iou_type="segm"``).

    Returns:
        ``[{"image_id", "category_id", "bbox": [x, y, w, h], "score"[, "segmentation"]}]``.
    """
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
    """Runs ``pycocotools`` ``COCOeval`` (area range "all", ``maxDets`` 100) with prints silenced.

    Args:
        gt_dict: output of :func:`to_coco_groundtruth` (not modified).
        det_list: output of :func:`to_coco_detections` (not modified); may be empty, which
            pycocotools' ``loadRes`` rejects, so an empty result set is built directly (every AP
            with ground truth is then 0).
        iou_type: ``"bbox"`` or ``"segm"``.

    Returns:
        ``{"AP": AP@[.5:.95], "AP50", "AP75", "stats": the 12 COCO summary numbers,
        "per_category": {name: {"category_id", "AP", "AP50", "AP75"}}}``. Values pycocotools
        reports as -1 (undefined: no ground truth) are NaN.
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
