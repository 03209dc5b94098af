"""Runs a `detectors.Detector` over a dataset split; writes the paper's metrics, COCO files and
plots."""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable

import numpy as np

from decompnet_tf.console import cpu_kind
from decompnet_tf.detectors import Detector
from decompnet_tf.eval import breakdown, coco, metrics

SEGM_THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.9)  # Figure 5.
PAPER_PRECISION = 0.84  # Section 3.1: "0.74 recall with very high 0.84 precision" (digit 3).


def iterate_examples(split_ds, batch_size: int, max_images: int = 0):
    """Yields (images float32 [B, H, W, ch] in [0, 1], ground-truth dicts) from TFDS examples."""
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


class PredictionLoop:
    """Yields (images, gts, outputs) per batch of `loop(batches)`, timing the model calls alone.

    The first batch is also predicted untimed before (tracing is not speed), and batches of
    another size (a retrace) are untimed, rather than padded. `seconds` and `timed_images` hold
    the timed totals, `images` all images.

    Args:
      progress: called with the number of images after each batch.
    """

    def __init__(self, detector: Detector, progress: Callable | None = None):
        self.detector, self.progress = detector, progress
        self.seconds, self.timed_images, self.images = 0.0, 0, 0

    def __call__(self, batches):
        timed_size = None
        for images, gts in batches:
            if timed_size is None:
                timed_size = len(images)
                self.detector.predict(images, gts)  # Warm-up: tracing, untimed.
            start = time.perf_counter()
            out = self.detector.predict(images, gts)
            if len(images) == timed_size:
                self.seconds += time.perf_counter() - start
                self.timed_images += len(images)
            self.images += len(images)
            if self.progress:
                self.progress(len(images))
            yield images, gts, out


def run_detector(detector: Detector, batches, mask_threshold: float,
                 progress: Callable | None = None):
    """Predicts every batch.

    Returns:
      (per-image detection dicts, gts, timed seconds, timed images (`PredictionLoop`), the
      first batch's (images, gts, outputs)). With "category_maps" output, a detection dict also
      holds "category_map_found" bool [G] (`breakdown.found_in_category_maps`).
    """
    dets, gts, first = [], [], None
    loop = PredictionLoop(detector, progress)
    for images, batch_gts, out in loop(batches):
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
            if "category_maps" in out and batch_gts[b]["masks"] is not None:
                det["category_map_found"] = breakdown.found_in_category_maps(
                    out["category_maps"][b], batch_gts[b]["masks"], batch_gts[b]["classes"])
            dets.append(det)
        gts.extend(batch_gts)
    return dets, gts, loop.seconds, loop.timed_images, first


def speed(loop_seconds: float, images: int, batch_size: int) -> dict:
    """metrics.json's "speed" entry for `images` predicted in `loop_seconds`, with the CPU kind."""
    return {"images_per_second": images / loop_seconds, "ms_per_image":
            1000 * loop_seconds / images, "batch_size": batch_size, "images": images,
            "cpu_cores": os.cpu_count(), "cpu": cpu_kind()}


def _curves(results):
    return {k: {"precision": r["precision"].tolist(), "recall": r["recall"].tolist(),
                "ap_voc": r["ap_voc"], "ap_101": r["ap_101"], "num_gt": r["num_gt"],
                "num_det": r["num_det"],
                "recall_at_precision_0.84": metrics.recall_at_precision(
                    r["precision"], r["recall"], PAPER_PRECISION)}
            for k, r in results.items()}


@dataclasses.dataclass
class CocoFiles:
    """The COCO payloads written beside metrics.json (a dataset dict and result lists)."""

    groundtruth: dict
    detections: list
    segmentation: list | None = None


def compute_metrics(dets, gts, class_names, image_size) -> tuple[dict, CocoFiles]:
    """(metrics, their COCO payloads): detection, segmentation, counting, and the breakdown by
    object size and true count. pycocotools matches every detection: one run per kind gives
    COCO's summary, one more for boxes bucketed by their own area."""
    c = len(class_names)
    gt_coco = coco.to_coco_groundtruth(gts, image_size, class_names)
    det_coco = coco.to_coco_detections(dets, image_size)
    files = CocoFiles(gt_coco, det_coco)
    sized = coco.cocoeval(gt_coco, det_coco, "bbox", breakdown.area_ranges(),
                          breakdown.entry_areas(gts, image_size),
                          breakdown.entry_areas(dets, image_size), breakdown.SIZED_IOUS)
    box = coco.pr_curves(sized, 0.5)
    out = {"detection": {"iou_0.5": _curves(box), "ap50_voc_mean": metrics.mean_ap(box, "ap_voc"),
                         "coco": coco.coco_evaluate(gt_coco, det_coco, "bbox")}}
    counts = metrics.counting_metrics(metrics.count_per_class(dets, c),
                                      metrics.count_per_class(gts, c))
    out["counting"] = {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                       for k, v in counts.items()}
    if all("masks" in d for d in dets) and all(g["masks"] is not None for g in gts):
        mask_dets = [{**d, "scores": d["mask_scores"]} for d in dets]
        segm_coco = coco.to_coco_detections(mask_dets, image_size, with_masks=True)
        segm = coco.cocoeval(gt_coco, segm_coco, "segm")
        out["segmentation"] = {f"iou_{t}": _curves(coco.pr_curves(segm, t))
                               for t in SEGM_THRESHOLDS}
        out["segmentation"]["coco"] = coco.summary(segm, gt_coco["categories"])
        files.segmentation = segm_coco
    found = ([d["category_map_found"] for d in dets]
             if dets and all("category_map_found" in d for d in dets) else None)
    out["breakdown"] = breakdown.breakdown(sized, dets, gts, class_names, image_size, found)
    return out, files


def summary_row(name: str, m: dict, class_names, reference_ms: float | None = None) -> str:
    """One console table row; with `reference_ms`, also the ms per image relative to it."""
    det = m["detection"]["iou_0.5"]
    cells = [f"{det[k]['ap_voc']:.3f}/{det[k]['recall_at_precision_0.84']:.3f}"
             for k in range(len(class_names))]
    segm = m.get("segmentation", {}).get("iou_0.5")
    seg = " ".join(f"{segm[k]['ap_voc']:.3f}" for k in range(len(class_names))) if segm else "-"
    ms = m["speed"]["ms_per_image"]
    ratio = f" {ms / reference_ms:.2f}x" if reference_ms else ""
    return (f"{name:<24} {'  '.join(cells)}   {seg:<20} {m['counting']['accuracy']:.3f}   "
            f"{ms:.2f}{ratio}")


def breakdown_lines(name: str, m: dict, class_names) -> list[str]:
    """The console's breakdown of one model (AP50 by size, counting by true count)."""
    return [f"{name}:"] + breakdown.breakdown_lines(m["breakdown"], class_names)


def table_header(class_names, compare: bool = False) -> str:
    """The console table's header; `compare` adds `summary_row`'s relative-speed column."""
    per = "  ".join(f"'{n}' AP50/R@.84" for n in class_names)
    return (f"{'model':<24} {per}   {'segm AP50':<20} count   ms/img"
            + (" vs first" if compare else ""))


def evaluate_split(detector: Detector, builder, split: str, out_dir: str, batch_size: int = 32,
                   max_images: int = 0, mask_threshold: float = 0.1, num_sheets: int = 4,
                   validation_examples: int = 0, model_info: dict | None = None) -> dict:
    """Writes metrics.json, COCO files, PR plots (Figures 4, 5) and sheets (Figures 3, 6) of
    `detector` on a logical split to `out_dir`; returns the metrics.

    Args:
      split: "train", "validation" or "test" (`data.builders.tfds_split`).
      max_images: the first N images of the split (0: all).
      model_info: more entries for metrics.json's "model".
    """
    import tensorflow_datasets as tfds
    from tqdm import tqdm

    from decompnet_tf import viz
    from decompnet_tf.data.builders import split_of
    from decompnet_tf.eval import plots

    names = builder.info.features["objects"]["label"].names
    tfds_name = split_of(builder, split, validation_examples)
    total = builder.info.splits[tfds_name].num_examples
    total = min(total, max_images) if max_images else total
    if total == 0:
        raise ValueError(f"split {split!r} ({tfds_name}) of {builder.info.full_name} is empty")
    image_size = builder.info.features["image"].shape[:2]
    batches = iterate_examples(tfds.as_numpy(builder.as_dataset(split=tfds_name)), batch_size,
                               max_images)
    with tqdm(total=total, desc=f"evaluating on {split}", unit="img") as bar:
        dets, gts, seconds, n, first = run_detector(detector, batches, mask_threshold,
                                                    bar.update)
    m, files = compute_metrics(dets, gts, names, image_size)
    m["speed"] = speed(seconds, n, batch_size)
    m["model"] = {**detector.describe(), **(model_info or {}), "dataset": builder.info.full_name,
                  "digit_source": builder.info.metadata.get("digit_source"),
                  "split": split, "tfds_split": tfds_name, "mask_threshold": mask_threshold}
    write_results(out_dir, m, files)
    det = m["detection"]["iou_0.5"]
    plots.pr_figure({"model": {k: (det[k]["recall"], det[k]["precision"], det[k]["ap_voc"])
                               for k in det}},
                    "Detection, IoU 0.5 (Fig. 4)", os.path.join(out_dir, "pr_detection.png"),
                    names)
    if "segmentation" in m:
        seg = {f"IoU {t}": {k: (r["recall"], r["precision"], r["ap_voc"]) for k, r in
                            m["segmentation"][f"iou_{t}"].items()} for t in SEGM_THRESHOLDS}
        plots.pr_figure(seg, "Instance segmentation (Fig. 5)",
                        os.path.join(out_dir, "pr_segmentation.png"), names)
    images, batch_gts, out = first
    for i in range(min(num_sheets, len(images))):
        if "instance_maps" not in out:
            sheet = plots.boxes_sheet(images[i], out["detection_boxes"][i],
                                      out["detection_classes"][i], out["detection_scores"][i],
                                      batch_gts[i]["boxes"], batch_gts[i]["classes"], names)
            viz.save_png(os.path.join(out_dir, f"sheet_detection_{i}.png"), sheet)
            continue
        for seg_sheet, name in ((False, "detection"), (True, "segmentation")):
            sheet = plots.qualitative_sheet(
                images[i], out["instance_maps"][i], out["boxes"][i], out["emitted"][i],
                batch_gts[i]["boxes"], batch_gts[i]["classes"], names,
                segmentation=seg_sheet, mask_threshold=mask_threshold)
            viz.save_png(os.path.join(out_dir, f"sheet_{name}_{i}.png"), sheet)
    return m


def write_results(out_dir: str, m: dict, files: CocoFiles) -> None:
    """metrics.json and the COCO files (through tf.io.gfile: out_dir may be on gs://)."""
    import tensorflow as tf

    tf.io.gfile.makedirs(out_dir)
    for payload, name in ((files.groundtruth, "groundtruth_coco.json"),
                          (files.detections, "detections_coco.json"),
                          (files.segmentation, "segmentation_results_coco.json")):
        if payload is not None:
            with tf.io.gfile.GFile(os.path.join(out_dir, name), "w") as f:
                json.dump(payload, f)
    with tf.io.gfile.GFile(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(m, f, indent=1, default=float)
