"""Detects objects in your own images with a trained decompNet.

    python predict.py --model_dir=runs/mnist_quick --images=a.png,b.png
    python predict.py --model_dir=runs/mnist_quick --images=a.png --output_dir=out --box_source=mask

Each image (PNG or JPEG, any size, 8-bit grayscale or RGB) goes through exactly the graph
export.py exports (its serving_default signature: converted to the model's channels and
resized in the graph, boxes normalised to the original image, masks at its size). Writes to
--output_dir (default <model_dir>/predictions): <stem>_detections.png per image (the image with
its boxes, class names, scores and masks) and detections.json (per image: path, size, and each
detection's class id and name, score and box, normalised and in pixels).

The inference settings (--stop_threshold, --mask_threshold, --box_source, --segmentation_delta)
are the ones stored in the model dir's config.json, as evaluate.py uses them; each one given on
the command line overrides them.
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
flags.DEFINE_list("images", None, "Image files (PNG or JPEG), comma-separated.", required=True)
flags.DEFINE_string("output_dir", None, "Where the pictures and detections.json go (default "
                    "<model_dir>/predictions).")
define_flags(InferenceConfig)
flags.adopt_module_key_flags(config_flags)  # --help lists them as this script's own.


def main():
    # TensorFlow loads here, after the quiet start (console.entry_point).
    from decompnet_tf import predict_io
    from decompnet_tf.export.saved_model import DetectorModule
    from decompnet_tf.model_io import Run

    if not FLAGS.images:
        raise app.UsageError("pass --images=FILE[,FILE...]")
    run = Run.open(FLAGS.model_dir)  # No model: said before the images are read.
    out_dir = FLAGS.output_dir or run.predictions_dir()
    images = [predict_io.read_image(p) for p in FLAGS.images]  # Before the model loads.
    net = run.load_net()
    settings, sources = resolve_settings(run.config.inference)
    print(describe_settings(settings, sources), flush=True)
    module = DetectorModule(net, settings, run.class_names())
    result = predict_io.predict_files(module, FLAGS.images, images, out_dir, FLAGS.model_dir)
    for record in result["images"]:
        print(f"{record['path']}: {len(record['detections'])} detections -> "
              f"{record['picture']}")
    print(f"detections: {os.path.join(out_dir, predict_io.DETECTIONS_FILE)}")


if __name__ == "__main__":
    app.run(entry_point(main))
