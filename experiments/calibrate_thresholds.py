"""Picks evaluate.py's --stop_threshold and --mask_threshold on the VALIDATION split (never
trained on; decompnet_tf.data.builders), so that the test split is only read once, for the
reported figures.

    python experiments/calibrate_thresholds.py --model_dir=runs/mnist_quick --box_source=mask
    python experiments/calibrate_thresholds.py --model_dir=runs/mnist_quick --write

Prints detection AP50, segmentation AP50 (means over the digits) and counting accuracy for each
pair of thresholds on the first --max_images validation images, best first by the mean of the
three. The other settings (--box_source, --segmentation_delta) are the model dir's stored ones
unless given. --write stores the best pair, with those other settings, as the model dir's
inference settings (config.json), which evaluate.py, export.py and predict.py then use.
"""

from __future__ import annotations

import dataclasses
import itertools

from absl import app, flags

from decompnet_tf import config_flags
from decompnet_tf.config import InferenceConfig
from decompnet_tf.config_flags import define_flags, describe_settings, resolve_settings

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A train.py --model_dir.", required=True)
flags.DEFINE_integer("max_images", 500, "Validation images to calibrate on.", lower_bound=1)
flags.DEFINE_list("stop_thresholds", ["0.3", "0.4", "0.5", "0.6", "0.7"], "Stop thresholds.")
flags.DEFINE_list("mask_thresholds", ["0.1", "0.2", "0.3", "0.5"], "Mask thresholds.")
flags.DEFINE_boolean("write", False, "Store the best pair (first in the table) in the model "
                     "dir's config.json as its inference settings.")
define_flags(InferenceConfig, exclude=("stop_threshold", "mask_threshold"))
flags.adopt_module_key_flags(config_flags)


def main(argv):
    del argv
    from decompnet_tf.console import quiet_start

    quiet_start()
    import numpy as np
    import tensorflow_datasets as tfds

    from decompnet_tf.data.builders import open_builder, split_of
    from decompnet_tf.detectors.decompnet import DecompDetector
    from decompnet_tf.eval import runner
    from decompnet_tf.model_io import Run

    try:
        run = Run.open(FLAGS.model_dir)
        net, config = run.load_net(), run.config
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None
    builder = open_builder(config.data.dataset, config.data.data_dir)
    names = builder.info.features["objects"]["label"].names
    split = split_of(builder, "validation", config.data.validation_examples)
    examples = list(tfds.as_numpy(builder.as_dataset(split=split).take(FLAGS.max_images)))
    base, sources = resolve_settings(config.inference)
    print(describe_settings(base, sources, exclude=("stop_threshold", "mask_threshold")),
          flush=True)
    rows = []
    for stop, mask in itertools.product(FLAGS.stop_thresholds, FLAGS.mask_thresholds):
        settings = dataclasses.replace(base, stop_threshold=float(stop),
                                       mask_threshold=float(mask))
        dets, gts, *_ = runner.run_detector(DecompDetector(net, settings),
                                            runner.iterate_examples(examples, 50), float(mask))
        m, _ = runner.compute_metrics(dets, gts, names, net.image_size)
        seg = np.nanmean([r["ap_voc"] for r in m["segmentation"]["iou_0.5"].values()])
        row = (float(stop), float(mask), m["detection"]["ap50_voc_mean"], seg,
               m["counting"]["accuracy"])
        rows.append(row)
        print(f"{row[0]:5.2f} {row[1]:5.2f}  {row[2]:8.3f}  {row[3]:9.3f}  {row[4]:8.3f}",
              flush=True)
    print(f"\n{'stop':>5} {'mask':>5}  det AP50  segm AP50  counting   (validation, "
          f"{len(examples)} images, best first)")
    rows.sort(key=lambda r: -(r[2] + r[3] + r[4]))
    for row in rows:
        print(f"{row[0]:5.2f} {row[1]:5.2f}  {row[2]:8.3f}  {row[3]:9.3f}  {row[4]:8.3f}")
    if FLAGS.write:
        best = dataclasses.replace(base, stop_threshold=rows[0][0], mask_threshold=rows[0][1])
        run.with_inference(best)
        print(f"\nwrote to {FLAGS.model_dir}'s config.json: "
              + ", ".join(f"{k}={v}" for k, v in dataclasses.asdict(best).items()))


if __name__ == "__main__":
    app.run(main)
