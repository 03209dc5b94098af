"""Evaluating a detector on decomp_kitti with KITTI's official car protocol (`eval.kitti`).

Writes metrics.json (AP R40 and R11, easy / moderate / hard, IoU 0.7), pr_kitti.png and
kitti_results/ (one %06d.txt per image in the devkit's format, for the official tools).
"""

from __future__ import annotations

import json
import os

import numpy as np

from decompnet_tf.eval import kitti, plots
from decompnet_tf.eval.runner import PredictionLoop, speed


def unpad(example: dict) -> dict:
    """Batched TFDS sequences are padded: keep the real objects (non-empty boxes) only."""
    objs, ign = example["objects"], example["ignore"]
    real = (objs["bbox"][:, 2] > objs["bbox"][:, 0])
    keep = (ign["bbox"][:, 2] > ign["bbox"][:, 0])
    return {"objects": {k: v[real] for k, v in objs.items()},
            "ignore": {k: v[keep] for k, v in ign.items()}}


def kitti_batches(builder, tfds_name: str, image_size, batch_size: int, max_images: int = 0):
    """Yields (images float32 [B, H, W, 3] at the model's size in [0, 1], per-image examples
    with "objects", "ignore", "original_size" and "image_id")."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    ds = builder.as_dataset(split=tfds_name)
    if max_images:
        ds = ds.take(max_images)
    ds = ds.map(lambda ex: {**ex, "model_image": tf.image.resize(
        tf.cast(ex["image"], tf.float32), image_size, "area") / 255.0}).batch(batch_size)
    for batch in tfds.as_numpy(ds):
        examples = [{"objects": {k: v[b] for k, v in batch["objects"].items()},
                     "ignore": {k: v[b] for k, v in batch["ignore"].items()},
                     "original_size": batch["original_size"][b],
                     "image_id": batch["image_id"][b]}
                    for b in range(len(batch["model_image"]))]
        yield batch["model_image"], examples


def evaluate_kitti_split(detector, builder, tfds_name: str, image_size, out_dir: str,
                         batch_size: int = 8, max_images: int = 0,
                         model_info: dict | None = None) -> dict:
    """Runs `detector` over a TFDS split of decomp_kitti and writes the protocol's results to
    `out_dir`; returns the metrics."""
    import tensorflow as tf
    from tqdm import tqdm

    canvas = builder.info.features["image"].shape[:2]
    ignore_names = builder.info.features["ignore"]["type"].names
    total = builder.info.splits[tfds_name].num_examples
    total = min(total, max_images) if max_images else total
    dets, gts = [], []
    with tqdm(total=total, desc="evaluating on KITTI", unit="img") as bar:
        loop = PredictionLoop(detector, bar.update)
        for _, examples, out in loop(kitti_batches(builder, tfds_name, image_size, batch_size,
                                                   max_images)):
            for b, example in enumerate(examples):
                k = int(out["num_detections"][b])
                dets.append(kitti.detections_for_class(
                    out["detection_boxes"][b, :k], out["detection_scores"][b, :k],
                    out["detection_classes"][b, :k], canvas, example["original_size"],
                    image_id=example["image_id"]))
                gts.append(kitti.groundtruth_from_example(unpad(example), ignore_names))
    if not loop.images:
        raise ValueError(f"split {tfds_name!r} of {builder.info.full_name} is empty")
    results = kitti.evaluate_kitti(dets, gts)
    tf.io.gfile.makedirs(out_dir)
    kitti.write_results(os.path.join(out_dir, "kitti_results"), dets)
    m = {"kitti_car_iou_0.7": {name: {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                      for k, v in r.items()} for name, r in results.items()},
         "speed": speed(loop.seconds, loop.timed_images, batch_size),
         "model": {**detector.describe(), **(model_info or {}), "split": tfds_name}}
    with tf.io.gfile.GFile(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(m, f, indent=1, default=float)
    curves = {"decompNet": {i: (r["recall"], r["precision"], r["ap_r40"])
                            for i, r in enumerate(results.values())}}
    plots.pr_figure(curves, "KITTI cars, IoU 0.7 (AP R40)", os.path.join(out_dir, "pr_kitti.png"),
                    [name.capitalize() for name in results])
    return m
