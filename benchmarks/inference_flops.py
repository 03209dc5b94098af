"""Inference against this machine's limit: the detector's FLOPs per image, counted from its
graph, divided by its time per image, as a share of what a large matrix multiply reaches here,
measured in the same run; and how the time grows with T.

    python benchmarks/inference_flops.py --flagfile=configs/mnist_quick.flags

The detector is the whole inference graph (network, stop rule, boxes, scores, padded
detections: what evaluate.py and the SavedModel run) with random weights (the time and FLOPs
do not depend on them). FLOPs are TensorFlow's profiler count of the graph's floating-point
operations (multiply-adds count as two); the matmul's are 2 n^3.
"""

from __future__ import annotations

import dataclasses

from absl import app, flags
from timing import timed  # benchmarks/timing.py: the script's folder is on sys.path

from decompnet_tf.config import (
    DataConfig,
    InferenceConfig,
    LossConfig,
    ModelConfig,
    TrainConfig,
)
from decompnet_tf.config_flags import define_flags, from_flags

FLAGS = flags.FLAGS
flags.DEFINE_integer("iters", 10, "Timed calls per measurement.", lower_bound=1)
flags.DEFINE_integer("infer_batch", 32, "Images per call (evaluate.py's default).",
                     lower_bound=1)
flags.DEFINE_integer("matmul_size", 2048, "Side of the square matmul that sets the limit.",
                     lower_bound=64)
flags.DEFINE_list("steps_sweep", ["4", "8", "16"], "Values of T for the growth rows.")
define_flags(DataConfig, ModelConfig, LossConfig, TrainConfig, InferenceConfig)


def graph_flops(concrete) -> int:
    """Floating-point operations of one call of a concrete function, by TF's profiler."""
    import tensorflow as tf

    from decompnet_tf.keras_compat import freeze_variables

    graph = freeze_variables(concrete, lower_control_flow=True).graph
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    return tf.compat.v1.profiler.profile(graph, options=opts).total_float_ops


def measure(model_cfg, settings, batch):
    """(FLOPs per image, seconds per image) of the detector at `batch` images per call."""
    import numpy as np
    import tensorflow as tf

    from decompnet_tf.models.decompnet import DecompNet
    from decompnet_tf.postprocess import detections, with_scores

    net = DecompNet(model_cfg)
    net.build()

    @tf.function
    def detect(x):
        out = with_scores(net(x, training=False), settings.box_source,
                          settings.segmentation_delta, x)
        return detections(out, settings.stop_threshold, image_size=net.image_size)

    shape = (*net.image_size, net.channels)
    flops = graph_flops(detect.get_concrete_function(tf.TensorSpec((1, *shape), tf.float32)))
    x = tf.constant(np.random.default_rng(0).random((batch, *shape), dtype=np.float32))
    seconds = timed(lambda: detect(x)["num_detections"].numpy(), FLAGS.iters) / batch
    return flops, seconds


def main(argv):
    del argv
    from decompnet_tf.console import cpu_kind, quiet_start

    quiet_start()
    import tensorflow as tf

    model_cfg, settings = from_flags(ModelConfig), from_flags(InferenceConfig)
    n = FLAGS.matmul_size
    a = tf.random.normal((n, n))
    matmul = tf.function(lambda: tf.reduce_sum(tf.matmul(a, a)))
    peak = 2 * n**3 / timed(lambda: matmul().numpy(), FLAGS.iters)
    print(f"CPU: {cpu_kind()}; TF {tf.__version__}; float32 matmul {n}x{n}: "
          f"{peak / 1e9:.1f} GFLOP/s")
    print(f"{'detector':<28} {'MFLOP/img':>10} {'ms/img':>8} {'GFLOP/s':>8} {'of matmul':>10}")
    rows = [("as configured", model_cfg)] + [
        (f"T = {t}", dataclasses.replace(model_cfg, steps=int(t))) for t in FLAGS.steps_sweep]
    for name, cfg in rows:
        flops, seconds = measure(cfg, settings, FLAGS.infer_batch)
        rate = flops / seconds
        print(f"{name:<28} {flops / 1e6:10.1f} {seconds * 1000:8.2f} {rate / 1e9:8.2f} "
              f"{100 * rate / peak:9.1f}%", flush=True)


if __name__ == "__main__":
    app.run(main)
