"""One 3x3 max over many small maps, three ways, on this machine's CPU kind: a max-pool with one
channel per map ([n, h, w, 1], the layout post-processing once used), a max-pool with the maps
on the channel axis ([1, h, w, n]) and shifted elementwise maxima (no pool op). The three give
the same numbers; their times show how much a CPU kind's pooling kernel depends on the
channel count.

    python benchmarks/pool_layout.py
    ONEDNN_MAX_CPU_ISA=AVX2 python benchmarks/pool_layout.py   # oneDNN as on an AVX2-only CPU

The default n = 768 is one evaluation batch of the quick model (32 images x 3 classes x 8
steps); each way runs --rounds chained maxima per call, as a labelling loop would.
"""

from __future__ import annotations

from absl import app, flags
from timing import timed  # benchmarks/timing.py: the script's folder is on sys.path

FLAGS = flags.FLAGS
flags.DEFINE_integer("maps", 768, "Maps per call.", lower_bound=1)
flags.DEFINE_integer("size", 50, "Map side in pixels.", lower_bound=3)
flags.DEFINE_integer("rounds", 50, "Chained 3x3 maxima per call.", lower_bound=1)
flags.DEFINE_integer("iters", 5, "Timed calls per way.", lower_bound=1)


def main(argv):
    del argv
    from decompnet_tf.console import cpu_kind, quiet_start

    quiet_start()
    import numpy as np
    import tensorflow as tf

    def one_channel(x):  # [n, h, w]
        for _ in range(FLAGS.rounds):
            x = tf.nn.max_pool2d(x[..., None], 3, 1, "SAME")[..., 0]
        return x

    def channels(x):
        y = tf.transpose(x, (1, 2, 0))[None]
        for _ in range(FLAGS.rounds):
            y = tf.nn.max_pool2d(y, 3, 1, "SAME")
        return tf.transpose(y[0], (2, 0, 1))

    def shifted(x):  # Zero padding equals SAME pooling here: the maps are >= 0.
        for _ in range(FLAGS.rounds):
            p = tf.pad(x, [[0, 0], [1, 1], [0, 0]])
            x = tf.maximum(tf.maximum(p[:, :-2], p[:, 1:-1]), p[:, 2:])
            p = tf.pad(x, [[0, 0], [0, 0], [1, 1]])
            x = tf.maximum(tf.maximum(p[:, :, :-2], p[:, :, 1:-1]), p[:, :, 2:])
        return x

    x = tf.constant(np.random.default_rng(0).random(
        (FLAGS.maps, FLAGS.size, FLAGS.size), dtype=np.float32))
    ways = {"max-pool, one channel per map": one_channel,
            "max-pool, maps on the channel axis": channels, "shifted maxima": shifted}
    results = {}
    for name, fn in ways.items():
        fn = tf.function(fn)
        results[name] = fn(x).numpy()
        results[name + " ms"] = timed(lambda f=fn: f(x).numpy(), FLAGS.iters) * 1000
    first = next(iter(ways))
    print(f"CPU: {cpu_kind()}; TF {tf.__version__}")
    print(f"{FLAGS.rounds} rounds of a 3x3 max over {FLAGS.maps} maps of "
          f"{FLAGS.size}x{FLAGS.size}")
    for name in ways:
        same = np.array_equal(results[name], results[first])
        print(f"{name:<38} {results[name + ' ms']:9.1f} ms  "
              f"{results[first + ' ms'] / results[name + ' ms']:6.1f}x  "
              f"{'same output' if same else 'DIFFERENT OUTPUT'}")


if __name__ == "__main__":
    app.run(main)
