"""Evaluates trained models on decomp_mnist the way the paper does (section 3.1, Figs. 3-6),
and on decomp_kitti with KITTI's official protocol for cars.

    python evaluate.py --model_dir=runs/mnist_quick
    python evaluate.py --model_dir=runs/mnist_quick --split=validation   # choose settings here
    python evaluate.py --compare=runs/mnist_quick,runs/baseline --output_dir=runs/compare
    python evaluate.py --model_dir=runs/mnist_quick --detector=components  # a yardstick
    python evaluate.py --model_dir=runs/kitti          # the val split (3,769 images)

Writes to --output_dir (default <model_dir>/eval_<split>): metrics.json (per-category AP50 with
its PR curve, recall at precision 0.84, COCO AP from pycocotools, segmentation AP at mask IoU
0.5-0.9, counting accuracy, speed), the COCO json files, PR plots and qualitative sheets. For
decomp_kitti: metrics.json with AP (R40 and R11) for easy / moderate / hard at IoU 0.7,
pr_kitti.png with one PR curve per difficulty, and kitti_results/ (one %06d.txt per image in
the devkit's result format).

Choose thresholds and settings on --split=validation (never trained on; decompnet_tf.data.builders);
read --split=test once per reported model.

The inference settings (--stop_threshold, --mask_threshold, --box_source, --segmentation_delta)
are the ones stored in each model dir's config.json (train.py's flags, or
experiments/calibrate_thresholds.py --write's); each one given on the command line overrides
them. The settings used, and where each came from, are printed first.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

from absl import app, flags

from decompnet_tf import config_flags
from decompnet_tf.config import CATEGORY_SOURCES, InferenceConfig
from decompnet_tf.config_flags import aliased, define_flags, describe_settings, resolve_settings
from decompnet_tf.console import entry_point

if TYPE_CHECKING:  # model_io imports TensorFlow, which loads after the quiet start.
    from decompnet_tf.model_io import Run

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A train.py --model_dir to evaluate.")
flags.DEFINE_list("compare", [], "Several model dirs: each is evaluated, then plotted together "
                  "(trained on one dataset, or pass --dataset).")
flags.DEFINE_string("output_dir", None, "Where results go (default <model_dir>/eval_<split>).")
flags.DEFINE_enum("split", "test", ["train", "validation", "test"],
                  "train, validation (never trained on; decomp_mnist's is made of digits no "
                  "training image uses: choose settings there) or test (once per reported model).")
flags.DEFINE_string("dataset", None, "TFDS dataset/config (default: the one trained on; with "
                    "--compare, every model is evaluated on it).")
flags.DEFINE_string("data_dir", None, "TFDS data dir.")
flags.DEFINE_integer("batch_size", 32, "Images per model call.", lower_bound=1)
flags.DEFINE_integer("max_images", 0, "Evaluate only the first N images (0: all).",
                     lower_bound=0)
flags.DEFINE_enum("detector", "decompnet", ["decompnet", "components", "peaks"],
                  "decompnet, or a yardstick without an instance network: the connected "
                  "components of the category maps, or (a model trained with --center_head) "
                  "those components cut at the centre maps' peaks.")
flags.DEFINE_enum("category_source", "network", list(CATEGORY_SOURCES),
                  "What the instance network (or the components) decomposes: the category "
                  "network's maps, or the TRUE category maps (stage 2 measured alone).")
flags.DEFINE_enum("category_maps", None, list(CATEGORY_SOURCES),
                  "Deprecated: use --category_source (this name goes in the next version).")
flags.DEFINE_list("window_steps", ["0"], "Baseline only: window strides in px (0: as "
                  "trained); several (--window_steps=3,5) evaluate each baseline once per stride, "
                  "as rows of one table and curves of one PR figure.")
flags.DEFINE_list("window_step", None,
                  "Deprecated: use --window_steps (this name goes in the next version).")
flags.DEFINE_integer("stage", 0, "Evaluate the network as this training stage left it (e.g. "
                     "2: the instance network before stage 3's fine-tuning; 0: the last).",
                     lower_bound=0, upper_bound=3)
flags.DEFINE_string("tflite", None, "Evaluate this exported .tflite file of --model_dir's "
                    "model instead of the Keras model (export.py writes it).")
flags.DEFINE_string("saved_model", None, "Evaluate this exported SavedModel version folder "
                    "(export_dir/<version>) of --model_dir's model instead of the Keras model: "
                    "its serving_default signature, what TF Serving serves.")
flags.DEFINE_integer("num_sheets", 4, "Qualitative sheets (Figures 3 and 6) to draw.",
                     lower_bound=0)
define_flags(InferenceConfig)
flags.adopt_module_key_flags(config_flags)  # --help lists them as this script's own.


def window_steps() -> list[int]:
    """--window_steps as integers; a one-line error for anything else."""
    given = aliased("window_steps", "window_step")
    try:
        steps = [int(s) for s in given]
    except ValueError:
        raise ValueError(f"--window_steps={','.join(given)}: give strides in px as "
                         "integers, e.g. --window_steps=3,5") from None
    if not steps or min(steps) < 0:
        raise ValueError("--window_steps takes strides >= 0 (0: the one it was trained with)")
    return steps


def category_source() -> str:
    return aliased("category_source", "category_maps")


@dataclasses.dataclass(frozen=True)
class Row:
    """One row of the results table: a model dir, at one window stride for a baseline
    evaluated at several (named "<dir>@<stride>", results in "..._step<stride>")."""

    name: str
    run: Run
    window_step: int
    out_dir: str


def short_names(dirs: list[str]) -> list[str]:
    """Each dir's shortest trailing path that no other dir shares ("a/seed0", "b/seed0"); a dir
    given twice gets "_2" on its second name."""
    parts = [d.rstrip("/").split("/") for d in dirs]
    for depth in range(1, max(map(len, parts)) + 1):
        names = ["/".join(p[-depth:]) for p in parts]
        if len(set(names)) == len(set(map(tuple, parts))):
            break
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        seen[name] = seen.get(name, 0) + 1
        names[i] = name if seen[name] == 1 else f"{name}_{seen[name]}"
    return names


def rows_of(runs: list[Run]) -> list[Row]:
    """The rows to evaluate: one per model, or per stride for a baseline when several strides
    are given; results go to --output_dir (a folder per row when there are several) or to
    <model_dir>/eval_<split>."""
    steps = window_steps()
    plan = []
    for run, base in zip(runs, short_names([r.model_dir for r in runs])):
        several = len(steps) > 1 and run.config.kind == "baseline"
        for step in steps if several else steps[:1]:
            plan.append((f"{base}@{step}" if several else base, run, step,
                         (f"{base}_step{step}" if several else base).replace("/", "_"),
                         f"_step{step}" if several else ""))
    return [Row(name, run, step, os.path.join(FLAGS.output_dir, folder)
                if FLAGS.output_dir and len(plan) > 1
                else FLAGS.output_dir or run.eval_dir(FLAGS.split, suffix))
            for name, run, step, folder, suffix in plan]


def evaluate_row(row: Row, source: str):
    """Evaluates one row, decomposing the `source` category maps; returns (metrics, class
    names), or (None, None) for KITTI."""
    from decompnet_tf.data.builders import is_kitti, split_of
    from decompnet_tf.detectors import DetectorSpec, load_detector
    from decompnet_tf.eval import kitti_runner, runner

    config = row.run.config
    settings, sources = resolve_settings(config.inference)
    if config.kind != "baseline":  # The baseline has settings of its own (its config's).
        print(describe_settings(settings, sources), flush=True)
    spec = DetectorSpec(settings, FLAGS.detector, source, FLAGS.tflite,
                        row.window_step, FLAGS.stage, saved_model=FLAGS.saved_model)
    detector, builder = load_detector(row.run, spec, FLAGS.dataset, FLAGS.data_dir)
    model_info = {"model_dir": row.run.model_dir}
    validation = config.data.validation_examples
    if is_kitti(builder.info.full_name):
        name = split_of(builder, FLAGS.split, validation)
        m = kitti_runner.evaluate_kitti_split(detector, builder, name, config.model.image_size,
                                              row.out_dir, FLAGS.batch_size, FLAGS.max_images,
                                              model_info)
        for level, r in m["kitti_car_iou_0.7"].items():
            print(f"{level:<9} AP R40 {r['ap_r40']:.4f}  R11 {r['ap_r11']:.4f}  "
                  f"({r['num_gt']} cars)")
        return None, None
    m = runner.evaluate_split(detector, builder, FLAGS.split, row.out_dir, FLAGS.batch_size,
                              FLAGS.max_images, settings.mask_threshold, FLAGS.num_sheets,
                              validation, model_info)
    return m, builder.info.features["objects"]["label"].names


def main():
    # TensorFlow loads here, after the quiet start (console.entry_point).
    import tensorflow as tf

    from decompnet_tf.console import device_report
    from decompnet_tf.detectors import check_same_dataset
    from decompnet_tf.eval import plots, runner
    from decompnet_tf.model_io import Run

    for line in device_report():
        print(line)
    dirs = FLAGS.compare or ([FLAGS.model_dir] if FLAGS.model_dir else [])
    if not dirs:
        raise app.UsageError("pass --model_dir=DIR or --compare=DIR1,DIR2")
    runs = [Run.open(d) for d in dirs]  # Each config.json read once.
    check_same_dataset(runs, FLAGS.dataset)
    results, names = {}, None
    rows, source = rows_of(runs), category_source()
    for row in rows:
        m, names = evaluate_row(row, source)
        if m is not None:
            results[row.name] = m
        print(f"{row.name}: results in {row.out_dir}")
    if not results:
        return
    if len(rows) > 1:
        out = FLAGS.output_dir or "runs/compare"
        tf.io.gfile.makedirs(out)
        curves = {n: {k: (r["recall"], r["precision"], r["ap_voc"])
                      for k, r in m["detection"]["iou_0.5"].items()} for n, m in results.items()}
        plots.pr_figure(curves, "Detection, IoU 0.5 (Fig. 4)",
                        os.path.join(out, "pr_detection.png"), names)
    compare = len(results) > 1
    print(runner.table_header(names, compare))
    # Speed ratios are only fair between models timed in one process, on one machine state.
    first_ms = next(iter(results.values()))["speed"]["ms_per_image"] if compare else None
    for n, m in results.items():
        print(runner.summary_row(n, m, names, first_ms))
    for n, m in results.items():
        print("\n".join(runner.breakdown_lines(n, m, names)))


if __name__ == "__main__":
    app.run(entry_point(main))
