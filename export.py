"""Exports a trained decompNet for TF Serving (SavedModel) and for phones (TFLite).

    python export.py --model_dir=runs/mnist_quick --export_dir=exported/decompnet

writes exported/decompnet/<version>/ (signatures serving_default and serve_encoded),
exported/decompnet/model.tflite (float32) and model_dynamic_range.tflite (int8 weights).
"""

from __future__ import annotations

import os

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A train.py --model_dir.", required=True)
flags.DEFINE_string("export_dir", None, "Where the versioned SavedModel goes.", required=True)
flags.DEFINE_integer("version", None, "SavedModel version (default: next free integer).")
flags.DEFINE_float("stop_threshold", 0.5, "Stop signal (peak, or the stop head's objectness) "
                   "below which a step is not a detection.")
flags.DEFINE_boolean("tflite", True, "Also write the TFLite models.")
flags.DEFINE_enum("box_source", "regressor", ["regressor", "mask"],
                  "Boxes from the box regressor, or the extent of each instance map (as "
                  "evaluate.py --box_source). TFLite supports 'regressor' only: use --notflite "
                  "with 'mask'.")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    from decompnet_tf.export.saved_model import DetectorModule, export_saved_model, export_tflite
    from decompnet_tf.model_io import load_trained

    if FLAGS.tflite and FLAGS.box_source != "regressor":
        raise app.UsageError("TFLite export supports --box_source=regressor only; pass "
                             "--notflite to export the SavedModel with --box_source=mask")
    try:
        net, _ = load_trained(FLAGS.model_dir)
        module = DetectorModule(net, FLAGS.stop_threshold, FLAGS.box_source)
        path = export_saved_model(module, FLAGS.export_dir, FLAGS.version)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        raise app.UsageError(str(e)) from None
    print(f"SavedModel: {path}")
    if FLAGS.tflite:
        for name, quantize in (("model.tflite", False), ("model_dynamic_range.tflite", True)):
            out = os.path.join(FLAGS.export_dir, name)
            size = export_tflite(module, out, quantize)
            print(f"TFLite: {out} ({size / 1e6:.1f} MB)")


if __name__ == "__main__":
    app.run(main)
