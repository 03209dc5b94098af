"""Renders a grid of decomp_mnist examples (image, instance masks, boxes, class names) to PNG.

    python render_samples.py --config=small --output=docs/decomp_mnist_samples.png

Builds the dataset config first when it is not prepared yet.
"""

from __future__ import annotations

import os

from absl import app, flags

FLAGS = flags.FLAGS
flags.DEFINE_string("config", "small", "decomp_mnist config: small, bundled, full or auto.")
flags.DEFINE_enum("split", "train", ["train", "test"], "Split to draw from.")
flags.DEFINE_integer("num", 12, "Number of examples in the grid.")
flags.DEFINE_integer("cols", 4, "Examples per row.")
flags.DEFINE_string("output", "docs/decomp_mnist_samples.png", "PNG file to write.")
flags.DEFINE_string("data_dir", None, "TFDS data dir (default: ~/tensorflow_datasets).")


def main(argv):
    del argv
    from decompnet_tf.console import quiet_start

    quiet_start()
    import tensorflow_datasets as tfds

    from decompnet_tf import viz
    from decompnet_tf.data.builders import open_builder

    builder = open_builder(f"decomp_mnist/{FLAGS.config}", FLAGS.data_dir)
    names = builder.info.features["objects"]["label"].names
    tiles = []
    for ex in tfds.as_numpy(builder.as_dataset(split=FLAGS.split).take(FLAGS.num)):
        objs = ex["objects"]
        tiles.append(viz.example_tile(ex["image"], objs["mask"][..., 0], objs["bbox"],
                                      objs["label"], names))
    os.makedirs(os.path.dirname(os.path.abspath(FLAGS.output)), exist_ok=True)
    viz.save_png(FLAGS.output, viz.grid(tiles, FLAGS.cols))
    print(f"wrote {FLAGS.output}: {len(tiles)} examples of decomp_mnist/{FLAGS.config} "
          f"{FLAGS.split} (digit source: {builder.info.metadata.get('digit_source')})")


if __name__ == "__main__":
    app.run(main)
