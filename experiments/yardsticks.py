"""The yardsticks for one trained model, as one table: decompNet end to end, its
instance network fed the TRUE category maps (stage 2 alone), and connected components of the
predicted and of the true category maps (no instance network), all scored alike.

    python experiments/yardsticks.py --model_dir=runs/mnist_quick --split=validation

Writes each row's evaluate.py outputs to <output_dir>/<row>/ and prints a Markdown table.
The inference settings (--stop_threshold, --mask_threshold, --box_source, ...) are, as in
evaluate.py, the model dir's stored ones, each given flag overriding its stored value.
"""

from __future__ import annotations

import os

from absl import app, flags

from decompnet_tf import config_flags
from decompnet_tf.config import InferenceConfig
from decompnet_tf.config_flags import define_flags, describe_settings, resolve_settings

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A train.py --model_dir.", required=True)
flags.DEFINE_enum("split", "validation", ["train", "validation", "test"], "Logical split.")
flags.DEFINE_integer("max_images", 500, "The first N images of the split.", lower_bound=1)
flags.DEFINE_integer("batch_size", 32, "Images per model call.", lower_bound=1)
flags.DEFINE_string("output_dir", None, "Default: <model_dir>/yardsticks_<split>.")
flags.DEFINE_list("rows", ["decompnet", "decompnet_truth", "components", "components_truth"],
                  "Which rows: detector[_truth].")
flags.DEFINE_integer("stage", 0, "The network as this stage left it (0: the last).",
                     lower_bound=0, upper_bound=3)
define_flags(InferenceConfig)
flags.adopt_module_key_flags(config_flags)

ROW_NAMES = {
    "decompnet": "decompNet end to end",
    "decompnet_truth": "its instance network fed the TRUE category maps",
    "components": "connected components of the PREDICTED category maps",
    "components_truth": "connected components of the TRUE category maps",
}


def _cell(per_class: dict, key: str) -> str:
    """'a / b / c': `key` of each class's result, by class id."""
    return " / ".join(f"{per_class[k][key]:.3f}" for k in sorted(per_class))


def main(argv):
    del argv
    from decompnet_tf.console import quiet_start

    quiet_start()
    from decompnet_tf.detectors import DetectorSpec, load_detector
    from decompnet_tf.eval import runner
    from decompnet_tf.model_io import Run

    run = Run.open(FLAGS.model_dir)
    config = run.config
    settings, sources = resolve_settings(config.inference)
    print(describe_settings(settings, sources), flush=True)
    out_root = FLAGS.output_dir or os.path.join(FLAGS.model_dir, f"yardsticks_{FLAGS.split}")
    lines = ["| detector | AP50 '3' / '6' / '9' | recall at P=0.84 | segm AP50 | counting |",
             "|---|---|---|---|---|"]
    for row in FLAGS.rows:
        kind, _, truth = row.partition("_")
        spec = DetectorSpec(settings, kind, "truth" if truth else "network", stage=FLAGS.stage)
        detector, builder = load_detector(run, spec)
        m = runner.evaluate_split(detector, builder, FLAGS.split, os.path.join(out_root, row),
                                  FLAGS.batch_size, FLAGS.max_images, settings.mask_threshold,
                                  num_sheets=2 if kind == "decompnet" else 0,
                                  validation_examples=config.data.validation_examples,
                                  model_info={"model_dir": FLAGS.model_dir})
        det = m["detection"]["iou_0.5"]
        seg = m["segmentation"]["iou_0.5"]
        lines.append(f"| {ROW_NAMES.get(row, row)} | {_cell(det, 'ap_voc')} | "
                     f"{_cell(det, 'recall_at_precision_0.84')} | {_cell(seg, 'ap_voc')} | "
                     f"{m['counting']['accuracy']:.3f} |")
        print(lines[-1], flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    app.run(main)
