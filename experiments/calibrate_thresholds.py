"""Picks evaluate.py's --stop_threshold and --mask_threshold on TRAINING images, so that the
test split is only used once, for the reported figures.

    python experiments/calibrate_thresholds.py --model_dir=runs/mnist_quick

Prints detection AP50, segmentation AP50 (mean over the digits) and counting accuracy for each
pair of thresholds on the first --max_images training images.
"""

from __future__ import annotations

import itertools

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A train.py --model_dir.", required=True)
flags.DEFINE_integer("max_images", 300, "Training images to calibrate on.")
flags.DEFINE_list("stop_thresholds", ["0.3", "0.4", "0.5", "0.6"], "Stop thresholds to try.")
flags.DEFINE_list("mask_thresholds", ["0.1", "0.3", "0.5"], "Mask thresholds to try.")
flags.DEFINE_enum("box_source", "regressor", ["regressor", "mask"], "As in evaluate.py.")


def main(argv):
    import numpy as np
    import tensorflow_datasets as tfds

    import tfds_builders  # noqa: F401
    from decompnet_tf.eval import runner
    from decompnet_tf.inference import DecompDetector
    from decompnet_tf.model_io import load_trained

    net, config = load_trained(FLAGS.model_dir)
    builder = tfds.builder(config.data.dataset, data_dir=config.data.data_dir)
    names = builder.info.features["objects"]["label"].names
    examples = list(tfds.as_numpy(builder.as_dataset(split="train").take(FLAGS.max_images)))
    print(f"{'stop':>5} {'mask':>5}  det AP50  segm AP50  counting")
    for stop, mask in itertools.product(FLAGS.stop_thresholds, FLAGS.mask_thresholds):
        detector = DecompDetector(net, float(stop), FLAGS.box_source)
        batches = runner.iterate_examples(examples, 50)
        dets, gts, *_ = runner.run_detector(detector, batches, float(mask))
        m = runner.compute_metrics(dets, gts, names, net.image_size)
        seg = np.nanmean([r["ap_voc"] for r in m["segmentation"]["iou_0.5"].values()])
        print(f"{float(stop):5.2f} {float(mask):5.2f}  {m['detection']['ap50_voc_mean']:8.3f}  "
              f"{seg:9.3f}  {m['counting']['accuracy']:8.3f}", flush=True)


if __name__ == "__main__":
    app.run(main)
