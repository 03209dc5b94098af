"""Runs a detector over a dataset split and writes the paper's metrics, COCO files and plots.

A detector is anything with `predict(images float32 [B, H, W, 1]) -> dict of numpy arrays` in
the OD API's names ("detection_boxes" [B, N, 4], "detection_classes" [B, N],
"detection_scores" [B, N], "num_detections" [B], optionally "detection_masks" [B, N, H, W] and
"segmentation_scores" [B, N]) plus a `describe()` dict (recorded in metrics.json). DecompNet and
the sliding-window baseline both fit.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable

import numpy as np

from decompnet_tf.eval import coco, metrics

SEGM_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)  # Figure 5.
PAPER_PRECISION = 0.84  # Section 3.1: "0.74 recall with very high 0.84 precision" (digit 3).


def iterate_examples(split_ds, batch_size: int, max_images: int = 0):
    """Yields (images float32 [B, H, W, 1], list of ground-truth dicts) from TFDS examples."""
    images, gts = [], []
    for i, ex in enumerate(split_ds):
        if max_images and i >= max_images:
            break
        objs = ex["objects"]
        images.append(ex["image"].astype(np.float32) / 255.0)
        gts.append({"boxes": objs["bbox"].reshape(-1, 4), "classes": objs["label"],
                    "masks": objs["mask"][..., 0].astype(bool) if "mask" in objs else None})
        if len(images) == batch_size:
            yield np.stack(images), gts
            images, gts = [], []
    if images:
        yield np.stack(images), gts


def run_detector(detector, batches, mask_threshold: float, progress: Callable | None = None):
    """Predicts every batch; returns per-image detections, ground truth and model-call timing.

    Returns:
      (dets, gts, seconds in the model call, images, first batch's raw outputs for the sheets)
    """
    dets, gts, seconds, n, first = [], [], 0.0, 0, None
    for images, batch_gts in batches:
        start = time.perf_counter()
        out = detector.predict(images)
        seconds += time.perf_counter() - start
        n += len(images)
        if first is None:
            first = (images, batch_gts, out)
        for b in range(len(images)):
            k = int(out["num_detections"][b])
            det = {"boxes": out["detection_boxes"][b, :k], "classes":
                   out["detection_classes"][b, :k].astype(np.int64),
                   "scores": out["detection_scores"][b, :k]}
            if "detection_masks" in out:
                det["masks"] = out["detection_masks"][b, :k] > mask_threshold
                det["mask_scores"] = out.get("segmentation_scores", out["detection_scores"])[
                    b, :k]
            dets.append(det)
        gts.extend(batch_gts)
        if progress:
            progress(len(images))
    return dets, gts, seconds, n, first


def _curves(results):
    return {k: {"precision": r["precision"].tolist(), "recall": r["recall"].tolist(),
                "ap_voc": r["ap_voc"], "ap_101": r["ap_101"], "num_gt": r["num_gt"],
                "num_det": r["num_det"],
                "recall_at_precision_0.84": metrics.recall_at_precision(
                    r["precision"], r["recall"], PAPER_PRECISION)}
            for k, r in results.items()}


def compute_metrics(dets, gts, class_names, image_size) -> dict:
    """All of issue 4's numbers for one model: detection, segmentation, counting."""
    c = len(class_names)
    box = metrics.evaluate_detections(dets, gts, c, 0.5, "bbox")
    out = {"detection": {"iou_0.5": _curves(box),
                         "ap50_voc_mean": metrics.mean_ap(box, "ap_voc")}}
    gt_coco = coco.to_coco_groundtruth(gts, image_size, class_names)
    det_coco = coco.to_coco_detections(dets, image_size)
    out["detection"]["coco"] = coco.coco_evaluate(gt_coco, det_coco, "bbox")
    counts = metrics.counting_metrics(metrics.count_per_class(dets, c),
                                      metrics.count_per_class(gts, c))
    out["counting"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                       for k, v in counts.items()}
    if all("masks" in d for d in dets) and all(g["masks"] is not None for g in gts):
        mask_dets = [{**d, "scores": d["mask_scores"]} for d in dets]
        out["segmentation"] = {
            f"iou_{t}": _curves(metrics.evaluate_detections(mask_dets, gts, c, t, "segm"))
            for t in SEGM_THRESHOLDS}
        segm_coco = coco.to_coco_detections(mask_dets, image_size, with_masks=True)
        out["segmentation"]["coco"] = coco.coco_evaluate(gt_coco, segm_coco, "segm")
        out["_segm_coco"] = segm_coco
    out["_gt_coco"], out["_det_coco"] = gt_coco, det_coco
    return out


def summary_row(name: str, m: dict, class_names) -> str:
    """One console table row: AP50 and recall at P=0.84 per class, counting, speed."""
    det = m["detection"]["iou_0.5"]
    cells = [f"{det[k]['ap_voc']:.3f}/{det[k]['recall_at_precision_0.84']:.3f}"
             for k in range(len(class_names))]
    segm = m.get("segmentation", {}).get("iou_0.5")
    seg = " ".join(f"{segm[k]['ap_voc']:.3f}" for k in range(len(class_names))) if segm else "-"
    return (f"{name:<24} {'  '.join(cells)}   {seg:<20} {m['counting']['accuracy']:.3f}   "
            f"{m['speed']['ms_per_image']:.2f}")


def table_header(class_names) -> str:
    per = "  ".join(f"'{n}' AP50/R@.84" for n in class_names)
    return f"{'model':<24} {per}   {'segm AP50':<20} count   ms/img"


def write_results(out_dir: str, m: dict) -> None:
    """metrics.json and the COCO files."""
    os.makedirs(out_dir, exist_ok=True)
    for key, name in (("_gt_coco", "groundtruth_coco.json"), ("_det_coco", "detections_coco.json"),
                      ("_segm_coco", "segmentation_results_coco.json")):
        if key in m:
            with open(os.path.join(out_dir, name), "w") as f:
                json.dump(m[key], f)
    public = {k: v for k, v in m.items() if not k.startswith("_")}
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(public, f, indent=1, default=float)
