"""Exports a trained decompNet for TF Serving (SavedModel) and for phones (TFLite).

    python export.py --model_dir=runs/mnist_quick --export_dir=exported/decompnet

writes exported/decompnet/<version>/ (signatures serving_default, serve_encoded and
serving_boxes; the class names as assets/labels.txt), exported/decompnet/model.tflite
(float32) and model_dynamic_range.tflite (int8 weights) with labels.txt beside them. The
inference settings (--stop_threshold, --box_source, --segmentation_delta) are evaluate.py's.
"""

from __future__ import annotations

import os

from absl import app, flags

from decompnet_tf import config_flags
from decompnet_tf.config import InferenceConfig
from decompnet_tf.config_flags import define_flags, from_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A train.py --model_dir.", required=True)
flags.DEFINE_string("export_dir", None, "Where the versioned SavedModel goes.", required=True)
flags.DEFINE_integer("version", None, "SavedModel version (default: next free integer).",
                     lower_bound=1)
flags.DEFINE_boolean("tflite", True, "Also write the TFLite models (same boxes and settings "
                     "as the SavedModel).")
# The exported masks are the soft instance maps: a client thresholds them itself.
define_flags(InferenceConfig, exclude=("mask_threshold",))
flags.adopt_module_key_flags(config_flags)  # --help lists them as this script's own.


def class_names(config) -> list[str] | None:
    """The dataset's class names (its TFDS builder's info, which needs no prepared data);
    None (the class ids as names) when the dataset's builder cannot be opened."""
    from decompnet_tf.data.builders import open_builder

    try:
        builder = open_builder(config.data.dataset, config.data.data_dir, prepare=False)
        return list(builder.info.features["objects"]["label"].names)
    except Exception as e:  # An unknown or unregistered dataset: the ids still name classes.
        print(f"warning: class names of {config.data.dataset!r} unavailable ({e}); labels.txt "
              "lists the class ids")
        return None


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from decompnet_tf.console import quiet_start

    quiet_start()  # Before anything imports TensorFlow: a console without start-up noise.
    from decompnet_tf.export.saved_model import DetectorModule, export_saved_model, export_tflite
    from decompnet_tf.model_io import load_trained

    settings = from_flags(InferenceConfig)
    try:
        net, config = load_trained(FLAGS.model_dir)
        module = DetectorModule(net, settings, class_names(config))
        print(f"SavedModel: {export_saved_model(module, FLAGS.export_dir, FLAGS.version)}")
        tflite = (("model.tflite", False), ("model_dynamic_range.tflite", True))
        for name, quantize in tflite if FLAGS.tflite else ():
            out = os.path.join(FLAGS.export_dir, name)
            print(f"TFLite: {out} ({export_tflite(module, out, quantize) / 1e6:.1f} MB)")
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        raise SystemExit(f"error: {e}") from None  # The message, not the flags' usage.


if __name__ == "__main__":
    app.run(main)
