"""Where a detection's time goes, per image, on this machine's CPU kind: the network, each box
source's post-processing (boxes, scores, stop rule, padded detections) and the whole detector
as evaluate.py times it, at batch 32 and batch 1, on a trained model's own test images.

    python benchmarks/inference_parts.py --model_dir=runs/mnist_quick

Every part runs over the same --images test images, each batch size once untimed (tracing)
and then --repeats times; the median pass is reported. The last lines give the ratios the
README quotes: post-processing over the network, and the stored detector over the
regressor-box one (--box_source: another than the stored one). --json writes the figures too.
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time

from absl import app, flags

from decompnet_tf.config import BOX_SOURCES

FLAGS = flags.FLAGS
flags.DEFINE_string("model_dir", None, "A trained decompNet's train.py --model_dir.",
                    required=True)
flags.DEFINE_integer("images", 256, "Test images per pass.", lower_bound=1)
flags.DEFINE_list("batches", ["32", "1"], "Images per call.")
flags.DEFINE_integer("repeats", 3, "Timed passes per part; the median is reported.",
                     lower_bound=1)
flags.DEFINE_string("json", None, "Also write the figures to this file.")
flags.DEFINE_enum("box_source", None, list(BOX_SOURCES), "The detector's box source (default: "
                  "the one stored in the model dir).")


def ms_per_image(fn, batches, images: int, repeats: int) -> float:
    """Median over `repeats` passes of the ms per image of fn(batch) over `batches` (holding
    `images` images in all), after one untimed pass."""
    for b in batches:
        fn(b)
    passes = []
    for _ in range(repeats):
        start = time.perf_counter()
        for b in batches:
            fn(b)
        passes.append((time.perf_counter() - start) * 1000 / images)
    return statistics.median(passes)


def test_images(config, n: int):
    """float32 [n, H, W, C]: the first n test images of the model's dataset, as evaluate.py
    reads them."""
    import numpy as np
    import tensorflow_datasets as tfds

    from decompnet_tf.data.builders import open_builder

    builder = open_builder(config.data.dataset, config.data.data_dir)
    ds = builder.as_dataset(split="test").take(n)
    return np.stack([ex["image"] for ex in tfds.as_numpy(ds)]).astype(np.float32) / 255.0


def measure(net, settings, images, batch: int, repeats: int) -> dict:
    """{part: ms per image} at `batch` images per call."""
    import numpy as np
    import tensorflow as tf

    from decompnet_tf.detectors.decompnet import DecompDetector
    from decompnet_tf.postprocess import detections, with_scores

    batches = [images[i:i + batch] for i in range(0, len(images) - batch + 1, batch)]
    n = batch * len(batches)
    network = tf.function(lambda x: net(x, training=False))
    out = {"network": ms_per_image(lambda x: network(tf.constant(x))["boxes"].numpy(),
                                   batches, n, repeats)}
    raw = [(network(tf.constant(x)), tf.constant(x)) for x in batches]
    for source in BOX_SOURCES:
        post = tf.function(lambda r, x, s=source: detections(
            with_scores(r, s, settings.segmentation_delta, x), settings.stop_threshold,
            image_size=net.image_size))
        out[f"post-processing, {source} boxes"] = ms_per_image(
            lambda rx: post(*rx)["num_detections"].numpy(), raw, n, repeats)  # noqa: B023
    for source in dict.fromkeys([settings.box_source, "regressor"]):
        detector = DecompDetector(net, dataclasses.replace(settings, box_source=source))
        out[f"detector, {source} boxes"] = ms_per_image(
            lambda x: detector.predict(np.asarray(x)), batches, n, repeats)  # noqa: B023
    return out


def main(argv):
    del argv
    from decompnet_tf.console import cpu_kind, quiet_start

    quiet_start()
    import tensorflow as tf

    from decompnet_tf.model_io import Run

    run = Run.open(FLAGS.model_dir)
    net, config = run.load_net(), run.config
    settings = config.inference
    if FLAGS.box_source:
        settings = dataclasses.replace(settings, box_source=FLAGS.box_source)
    images = test_images(config, FLAGS.images)
    sizes = [int(b) for b in FLAGS.batches]
    results = {b: measure(net, settings, images, b, FLAGS.repeats) for b in sizes}
    stored = f"detector, {settings.box_source} boxes"
    post = f"post-processing, {settings.box_source} boxes"
    print(f"CPU: {cpu_kind()}; TF {tf.__version__}")
    print(f"{FLAGS.model_dir}: {len(images)} test images, box source "
          f"{settings.box_source!r}; ms per image (median of {FLAGS.repeats} passes)")
    print(f"{'part':<40}" + "".join(f"{f'batch {b}':>10}" for b in sizes))
    for part in results[sizes[0]]:
        print(f"{part:<40}" + "".join(f"{results[b][part]:10.2f}" for b in sizes))
    ratios = {b: {"post_over_network": results[b][post] / results[b]["network"],
                  "stored_over_regressor": results[b][stored]
                  / results[b]["detector, regressor boxes"]} for b in sizes}
    print(f"{f'{post} / network':<40}" + "".join(
        f"{ratios[b]['post_over_network']:9.2f}x" for b in sizes))
    print(f"{f'{stored} / regressor':<40}" + "".join(
        f"{ratios[b]['stored_over_regressor']:9.2f}x" for b in sizes))
    if FLAGS.json:
        with tf.io.gfile.GFile(FLAGS.json, "w") as f:
            json.dump({"cpu": cpu_kind(), "model_dir": FLAGS.model_dir,
                       "images": len(images), "box_source": settings.box_source,
                       "ms_per_image": {str(b): results[b] for b in sizes},
                       "ratios": {str(b): ratios[b] for b in sizes}}, f, indent=2)


if __name__ == "__main__":
    app.run(main)
