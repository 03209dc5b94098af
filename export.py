"""Exports a trained decompNet for TF Serving (SavedModel) and for phones (TFLite).

    python export.py --model_dir=runs/mnist_quick --export_dir=exported/decompnet

writes exported/decompnet/<version>/ (signatures serving_default, serve_encoded and
serving_boxes; the class names as assets/labels.txt), exported/decompnet/model.tflite
(float32) and model_dynamic_range.tflite (int8 weights) with labels.txt beside them. The
inference settings (--stop_threshold, --box_source, --segmentation_delta) are the ones stored
in the model dir's config.json, as evaluate.py uses them; each one given on the command line
overrides them.
"""

from __future__ import annotations

import os

from absl import app, flags

from decompnet_tf import config_flags
from decompnet_tf.config import InferenceConfig
from decompnet_tf.config_flags import define_flags, describe_settings, resolve_settings
from decompnet_tf.console import entry_point

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


def main():
    # TensorFlow loads here, after the quiet start (console.entry_point).
    from decompnet_tf.export.saved_model import DetectorModule, export_saved_model, export_tflite
    from decompnet_tf.model_io import Run

    run = Run.open(FLAGS.model_dir)
    net, config = run.load_net(), run.config
    settings, sources = resolve_settings(config.inference)
    # The exported masks are the soft maps: mask_threshold is the client's.
    print(describe_settings(settings, sources, exclude=("mask_threshold",)), flush=True)
    names = run.class_names()
    if names is None:
        print(f"warning: the class names of {config.data.dataset!r} are unavailable here; "
              "labels.txt lists the class ids")
    module = DetectorModule(net, settings, names)
    print(f"SavedModel: {export_saved_model(module, FLAGS.export_dir, FLAGS.version)}")
    tflite = (("model.tflite", False), ("model_dynamic_range.tflite", True))
    for name, quantize in tflite if FLAGS.tflite else ():
        out = os.path.join(FLAGS.export_dir, name)
        print(f"TFLite: {out} ({export_tflite(module, out, quantize) / 1e6:.1f} MB)")


if __name__ == "__main__":
    app.run(entry_point(main))
