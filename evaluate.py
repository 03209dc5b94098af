"""Evaluates trained models on decomp_mnist the way the paper does (section 3.1, Figs. 3-6),
and on decomp_kitti with KITTI's official protocol for cars.

    python evaluate.py --model_dir=runs/mnist_quick
    python evaluate.py --compare=runs/mnist_quick,runs/baseline --output_dir=runs/compare
    python evaluate.py --model_dir=runs/kitti          # the val split (3,769 images)

Writes to --output_dir (default <model_dir>/eval_<split>): metrics.json (per-category AP50 with
its PR curve, recall at precision 0.84, COCO AP from pycocotools, segmentation AP at mask IoU
0.5-0.9, counting accuracy, speed), the COCO json files, PR plots and qualitative sheets. For
decomp_kitti: metrics.json with AP (R40 and R11) for easy / moderate / hard at IoU 0.7, and
pr_kitti.png with one PR curve per difficulty.
"""

from __future__ import annotations

import os
import time

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A train.py --model_dir to evaluate.")
flags.DEFINE_list("compare", [], "Several model dirs: each is evaluated, then plotted together.")
flags.DEFINE_string("output_dir", None, "Where results go (default <model_dir>/eval_<split>).")
flags.DEFINE_enum("split", "test", ["train", "test"], "Dataset split.")
flags.DEFINE_string("dataset", None, "TFDS dataset/config (default: the one trained on).")
flags.DEFINE_string("data_dir", None, "TFDS data dir.")
flags.DEFINE_integer("batch_size", 32, "Images per model call.")
flags.DEFINE_integer("max_images", 0, "Evaluate only the first N images (0: all).")
flags.DEFINE_float("stop_threshold", 0.5, "Peak activation below which a category stops.")
flags.DEFINE_float("mask_threshold", 0.1, "Instance-map value above which a pixel is in the "
                   "mask (the paper's Figure 6 uses 0.1).")
flags.DEFINE_enum("box_source", "regressor", ["regressor", "mask"],
                  "decompNet boxes: the box regressor's (section 2.3) or the extent of each "
                  "instance map above half its peak.")
flags.DEFINE_integer("window_step", 0, "Baseline only: window stride in px (0: as trained).")
flags.DEFINE_string("tflite", None, "Evaluate this exported .tflite file of --model_dir's "
                    "model instead of the Keras model (export.py writes it).")
flags.DEFINE_integer("num_sheets", 4, "Qualitative sheets (Figures 3 and 6) to draw.")


def check_compatible(model, names, image_size, dataset):
    """A clear error when the model's classes or input size do not fit the dataset (KITTI
    images are resized to the model's size, so only the classes must fit there)."""
    from decompnet_tf.data.decomp_kitti import is_kitti

    size_ok = is_kitti(dataset) or tuple(model.image_size) == tuple(image_size)
    if model.num_classes != len(names) or not size_ok:
        raise ValueError(
            f"the model ({model.num_classes} classes, input {tuple(model.image_size)}) does not "
            f"match the dataset {dataset} ({len(names)} classes {names}, images "
            f"{tuple(image_size)}); pass the --dataset the model was trained for")


def load_detector(model_dir: str, dataset_override, data_dir_override):
    """The detector saved in model_dir, checked against the dataset it will see."""
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401
    from decompnet_tf.inference import DecompDetector
    from decompnet_tf.model_io import load_trained, read_config

    config = read_config(model_dir)
    builder = tfds.builder(dataset_override or config.data.dataset,
                           data_dir=data_dir_override or config.data.data_dir)
    builder.download_and_prepare()
    names = builder.info.features["objects"]["label"].names
    check_compatible(config.model, names, builder.info.features["image"].shape[:2],
                     builder.info.full_name)
    if config.kind == "baseline":
        from decompnet_tf.engine.baseline import build_classifier, classifier_weights
        from decompnet_tf.models.baseline import SlidingWindowDetector

        if not os.path.isfile(classifier_weights(model_dir)):
            raise FileNotFoundError(f"{model_dir}: the baseline classifier is not trained yet")
        net = build_classifier(config)
        net.load_weights(classifier_weights(model_dir))
        b = config.baseline
        return SlidingWindowDetector(net, config.model.image_size, b.min_size, b.max_size,
                                     FLAGS.window_step or b.step, b.nms_iou), builder
    if FLAGS.tflite:
        from decompnet_tf.inference import TFLiteDetector

        if not os.path.isfile(FLAGS.tflite):
            raise FileNotFoundError(f"--tflite={FLAGS.tflite}: no such file; run export.py")
        return TFLiteDetector(FLAGS.tflite), builder
    net, _ = load_trained(model_dir)
    return DecompDetector(net, FLAGS.stop_threshold, FLAGS.box_source), builder


def _is_kitti_run(model_dir: str) -> bool:
    from decompnet_tf.data.decomp_kitti import is_kitti
    from decompnet_tf.model_io import read_config

    return is_kitti(FLAGS.dataset or read_config(model_dir).data.dataset)


def evaluate_one(model_dir: str, out_dir: str):
    import numpy as np
    import tensorflow_datasets as tfds
    from tqdm import tqdm

    from decompnet_tf import viz
    from decompnet_tf.eval import plots, runner

    detector, builder = load_detector(model_dir, FLAGS.dataset, FLAGS.data_dir)
    names = builder.info.features["objects"]["label"].names
    total = builder.info.splits[FLAGS.split].num_examples
    total = min(total, FLAGS.max_images) if FLAGS.max_images else total
    image_size = builder.info.features["image"].shape[:2]
    # Warm-up call: tracing is not part of the measured time.
    detector.predict(np.zeros((FLAGS.batch_size, *image_size, 1), np.float32))
    batches = runner.iterate_examples(tfds.as_numpy(builder.as_dataset(split=FLAGS.split)),
                                      FLAGS.batch_size, FLAGS.max_images)
    with tqdm(total=total, desc=f"evaluating {os.path.basename(model_dir.rstrip('/'))}",
              unit="img") as bar:
        dets, gts, seconds, n, first = runner.run_detector(detector, batches,
                                                           FLAGS.mask_threshold, bar.update)
    if n == 0:
        raise app.UsageError(f"split {FLAGS.split!r} of {builder.info.full_name} is empty")
    m = runner.compute_metrics(dets, gts, names, image_size)
    m["speed"] = {"images_per_second": n / seconds, "ms_per_image": 1000 * seconds / n,
                  "batch_size": FLAGS.batch_size, "images": n, "cpu_cores": os.cpu_count()}
    m["model"] = {**detector.describe(), "model_dir": model_dir,
                  "dataset": builder.info.full_name,
                  "digit_source": builder.info.metadata.get("digit_source"),
                  "split": FLAGS.split, "mask_threshold": FLAGS.mask_threshold}
    runner.write_results(out_dir, m)
    det = m["detection"]["iou_0.5"]
    plots.pr_figure({"model": {k: (det[k]["recall"], det[k]["precision"], det[k]["ap_voc"])
                               for k in det}},
                    "Detection, IoU 0.5 (Fig. 4)", os.path.join(out_dir, "pr_detection.png"),
                    names)
    if "segmentation" in m:
        seg = {f"IoU {t}": {k: (r["recall"], r["precision"], r["ap_voc"]) for k, r in
                            m["segmentation"][f"iou_{t}"].items()} for t in runner.SEGM_THRESHOLDS}
        plots.pr_figure(seg, "Instance segmentation (Fig. 5)",
                        os.path.join(out_dir, "pr_segmentation.png"), names)
    images, batch_gts, out = first
    for i in range(min(FLAGS.num_sheets, len(images))):
        if "instance_maps" not in out:
            sheet = plots.boxes_sheet(images[i], out["detection_boxes"][i],
                                      out["detection_classes"][i], out["detection_scores"][i],
                                      batch_gts[i]["boxes"], batch_gts[i]["classes"], names)
            viz.save_png(os.path.join(out_dir, f"sheet_detection_{i}.png"), sheet)
        else:
            for seg_sheet, name in ((False, "detection"), (True, "segmentation")):
                sheet = plots.qualitative_sheet(
                    images[i], out["instance_maps"][i], out["boxes"][i], out["emitted"][i],
                    batch_gts[i]["boxes"], batch_gts[i]["classes"], names,
                    segmentation=seg_sheet, mask_threshold=FLAGS.mask_threshold)
                viz.save_png(os.path.join(out_dir, f"sheet_{name}_{i}.png"), sheet)
    return m, names


def evaluate_kitti(model_dir: str, out_dir: str):
    """KITTI's official protocol for cars (decompnet_tf.eval.kitti) on the val split; the
    detections also go to kitti_results/ (one %06d.txt per image, the devkit's result format)."""
    import json

    import numpy as np
    import tensorflow as tf
    import tensorflow_datasets as tfds
    from tqdm import tqdm

    from decompnet_tf.data.decomp_mnist import dataset_split
    from decompnet_tf.eval import kitti, plots

    detector, builder = load_detector(model_dir, FLAGS.dataset, FLAGS.data_dir)
    size = tuple(detector.net.image_size)
    canvas = builder.info.features["image"].shape[:2]
    ignore_names = builder.info.features["ignore"]["type"].names
    split = dataset_split(builder.name, FLAGS.split)
    ds = builder.as_dataset(split=split)
    if FLAGS.max_images:
        ds = ds.take(FLAGS.max_images)
    ds = ds.map(lambda ex: {**ex, "model_image": tf.image.resize(
        tf.cast(ex["image"], tf.float32), size, "area") / 255.0}).batch(FLAGS.batch_size)
    total = builder.info.splits[split].num_examples
    dets, gts, seconds, n = [], [], 0.0, 0
    for batch in tqdm(tfds.as_numpy(ds), desc="evaluating on KITTI", unit="batch",
                      total=-(-min(total, FLAGS.max_images or total) // FLAGS.batch_size)):
        start = time.perf_counter()
        out = detector.predict(batch["model_image"])
        seconds += time.perf_counter() - start
        for b in range(len(batch["model_image"])):
            example = {"objects": {k: v[b] for k, v in batch["objects"].items()},
                       "ignore": {k: v[b] for k, v in batch["ignore"].items()}}
            k = int(out["num_detections"][b])
            dets.append(kitti.detections_for_class(
                out["detection_boxes"][b, :k], out["detection_scores"][b, :k],
                out["detection_classes"][b, :k], canvas, batch["original_size"][b],
                image_id=batch["image_id"][b]))
            gts.append(kitti.groundtruth_from_example(_unpad(example), ignore_names))
        n += len(batch["model_image"])
    results = kitti.evaluate_kitti(dets, gts)
    os.makedirs(out_dir, exist_ok=True)
    kitti.write_results(os.path.join(out_dir, "kitti_results"), dets)
    m = {"kitti_car_iou_0.7": {name: {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                                      for k, v in r.items()} for name, r in results.items()},
         "speed": {"ms_per_image": 1000 * seconds / max(n, 1), "images": n},
         "model": {**detector.describe(), "model_dir": model_dir, "split": split}}
    with open(os.path.join(out_dir, "metrics.json"), "w") as f:
        json.dump(m, f, indent=1, default=float)
    curves = {"decompNet": {i: (r["recall"], r["precision"], r["ap_r40"])
                            for i, r in enumerate(results.values())}}
    plots.pr_figure(curves, "KITTI cars, IoU 0.7 (AP R40)", os.path.join(out_dir, "pr_kitti.png"),
                    [name.capitalize() for name in results])
    for name, r in results.items():
        print(f"{name:<9} AP R40 {r['ap_r40']:.4f}  R11 {r['ap_r11']:.4f}  ({r['num_gt']} cars)")
    return m


def _unpad(example):
    """Batched TFDS sequences are padded: keep the real objects (non-empty boxes) only."""
    objs, ign = example["objects"], example["ignore"]
    real = (objs["bbox"][:, 2] > objs["bbox"][:, 0])
    keep = (ign["bbox"][:, 2] > ign["bbox"][:, 0])
    return {"objects": {k: v[real] for k, v in objs.items()},
            "ignore": {k: v[keep] for k, v in ign.items()}}


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    dirs = FLAGS.compare or ([FLAGS.model_dir] if FLAGS.model_dir else [])
    if not dirs:
        raise app.UsageError("pass --model_dir=DIR or --compare=DIR1,DIR2")
    from decompnet_tf.eval import plots, runner

    results = {}
    for d in dirs:
        name = os.path.basename(d.rstrip("/"))
        out = (os.path.join(FLAGS.output_dir, name) if FLAGS.output_dir and len(dirs) > 1
               else FLAGS.output_dir or os.path.join(d, f"eval_{FLAGS.split}"))
        try:
            if _is_kitti_run(d):
                evaluate_kitti(d, out)
                print(f"{name}: results in {out}")
                continue
            results[name], names = evaluate_one(d, out)
        except (FileNotFoundError, ValueError) as e:
            raise app.UsageError(str(e)) from None
        print(f"{name}: results in {out}")
    if len(dirs) > 1:
        out = FLAGS.output_dir or "runs/compare"
        os.makedirs(out, exist_ok=True)
        curves = {n: {k: (r["recall"], r["precision"], r["ap_voc"])
                      for k, r in m["detection"]["iou_0.5"].items()} for n, m in results.items()}
        plots.pr_figure(curves, "Detection, IoU 0.5 (Fig. 4)",
                        os.path.join(out, "pr_detection.png"), names)
    if not results:
        return
    print(runner.table_header(names))
    for n, m in results.items():
        print(runner.summary_row(n, m, names))


if __name__ == "__main__":
    app.run(main)
