"""Inference speed of the exported detector, all paths measured in one run on this machine.

    python export.py --model_dir=runs/mnist_quick --export_dir=exported/decompnet
    python benchmarks/inference.py --model_dir=runs/mnist_quick --export_dir=exported/decompnet

Reports latency at batch 1 and throughput at batch 64 for the Keras model (tf.function), the
SavedModel's serving_default, and the float and dynamic-range TFLite models (batch 1 only: the
TFLite graph is built for one image), with the model sizes on disk.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from absl import app, flags
from timing import timed  # benchmarks/timing.py: the script's folder is on sys.path  # noqa: E402

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "train.py --model_dir.", required=True)
flags.DEFINE_string("export_dir", None, "export.py --export_dir.", required=True)
flags.DEFINE_integer("iters", 20, "Timed calls per measurement.")


def du(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main(argv):
    del argv
    import numpy as np
    import tensorflow as tf

    from decompnet_tf.console import cpu_kind
    from decompnet_tf.detectors.exported import run_tflite
    from decompnet_tf.export.saved_model import next_version
    from decompnet_tf.model_io import Run
    from decompnet_tf.postprocess import detections, with_scores

    net = Run.open(FLAGS.model_dir).load_net()
    version = str(next_version(FLAGS.export_dir) - 1)
    sm_path = os.path.join(FLAGS.export_dir, version)
    sig = tf.saved_model.load(sm_path).signatures["serving_default"]
    keras_fn = tf.function(lambda x: detections(with_scores(net(x, training=False)), 0.5))
    rng = np.random.default_rng(0)
    rows = []
    for batch in (1, 64):
        u8 = rng.integers(0, 256, (batch, *net.image_size, 1)).astype(np.uint8)
        x = tf.constant(u8.astype(np.float32) / 255.0)
        k = timed(lambda: keras_fn(x)["num_detections"].numpy(), FLAGS.iters)  # noqa: B023
        s = timed(lambda: sig(images=tf.constant(u8))["num_detections"].numpy(),  # noqa: B023
                  FLAGS.iters)
        rows.append((f"Keras, batch {batch}", k, batch, du(os.path.join(FLAGS.model_dir,
                                                                        "model.keras"))))
        rows.append((f"SavedModel, batch {batch}", s, batch, du(sm_path)))
    one = rng.random((1, *net.image_size, 1)).astype(np.float32)
    for name in ("model.tflite", "model_dynamic_range.tflite"):
        path = os.path.join(FLAGS.export_dir, name)
        interpreter = tf.lite.Interpreter(model_path=path)
        interpreter.allocate_tensors()
        t = timed(lambda: run_tflite(interpreter, one), FLAGS.iters)  # noqa: B023
        rows.append((f"TFLite {name}, batch 1", t, 1, du(path)))
    print(f"CPU: {cpu_kind()}; TF {tf.__version__}")
    print(f"{'path':<44} {'ms/call':>9} {'images/s':>9} {'size MB':>8}")
    for name, t, batch, size in rows:
        print(f"{name:<44} {t * 1000:9.1f} {batch / t:9.1f} {size / 1e6:8.1f}")


if __name__ == "__main__":
    app.run(main)
