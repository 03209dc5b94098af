"""decomp_mnist preprocessing: per-category targets, eagerly and inside tf.data."""

import numpy as np
import pytest
import tensorflow as tf

from decompnet_tf.data.pipeline import prepare_example


def _example():
    masks = np.zeros((3, 8, 8, 1), np.uint8)
    masks[0, 0:4, 0:4] = 1
    masks[1, 2:6, 2:6] = 1  # overlaps object 0 on [2:4, 2:4]
    masks[2, 6:8, 6:8] = 1
    return {"image": np.full((8, 8, 1), 255, np.uint8),
            "objects": {"mask": masks, "label": np.array([0, 0, 2]),
                        "bbox": np.array([[0, 0, .5, .5], [.25, .25, .75, .75], [.75, .75, 1, 1]],
                                         np.float32)}}


def _check(image, targets):
    assert image.shape == (8, 8, 1) and float(np.max(image)) == 1.0
    assert targets["masks"].shape == (3, 4, 4, 4)
    np.testing.assert_array_equal(targets["num_objects"], [2, 0, 1])
    np.testing.assert_array_equal(targets["valid"][0], [True, True, False, False])
    cat = np.asarray(targets["category_target"])  # [h, w, C], area-averaged to 4x4
    # The overlap cell [1, 1] (pixels 2:4) holds both objects of class 0: the sum counts it twice.
    assert cat[1, 1, 0] == pytest.approx(2.0) and cat[0, 0, 0] == pytest.approx(1.0)
    assert cat[3, 3, 2] == pytest.approx(1.0) and cat[..., 1].sum() == 0
    np.testing.assert_allclose(targets["boxes"][2, 0], [.75, .75, 1, 1])


def test_prepare_example_eager():
    _check(*prepare_example(_example(), 3, (4, 4), 4))


def test_prepare_example_in_tf_data():
    ex = _example()
    ds = tf.data.Dataset.from_tensors(ex).map(lambda e: prepare_example(e, 3, (4, 4), 4))
    image, targets = next(iter(ds))
    _check(image.numpy(), {k: v.numpy() for k, v in targets.items()})


def test_label_out_of_range_is_a_clear_error():
    ex = _example()
    ex["objects"]["label"] = np.array([0, 3, 1])
    with pytest.raises(tf.errors.InvalidArgumentError, match="label out of range"):
        prepare_example(ex, 3, (4, 4), 4)


def _tiny_split(tmp_path, monkeypatch):
    """decomp_mnist/tiny (48 training images in two shards) built under tmp_path, the one
    `pipeline.open_builder` returns."""
    import tensorflow_datasets as tfds

    from decompnet_tf.data import pipeline
    from tfds_builders.decomp_mnist import DecompMnist, DecompMnistConfig

    builder = DecompMnist(config=DecompMnistConfig(name="tiny", num_train=48, num_test=2,
                                                   num_validation=0,
                                                   num_workers=1),
                          data_dir=str(tmp_path))
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(num_shards=2))
    assert len(builder.info.splits["train"].shard_lengths) == 2
    monkeypatch.setattr(pipeline, "open_builder", lambda *a, **k: builder)
    return builder


def _key(image):
    return np.round(np.asarray(image) * 255).astype(np.uint8).tobytes()


def test_train_examples_are_the_same_first_images_every_epoch_and_run(tmp_path, monkeypatch):
    """--train_examples=N on a two-shard split read with shuffle_files: every epoch, and every
    run, trains on the same N images, the first N of the split."""
    import tensorflow_datasets as tfds

    from decompnet_tf.config import DataConfig
    from decompnet_tf.data import pipeline

    builder = _tiny_split(tmp_path, monkeypatch)
    n = 12
    config = DataConfig(dataset="decomp_mnist/tiny", train_examples=n, validation_examples=8,
                        batch_size=n, shuffle_buffer=64)
    key = _key

    # The split's fixed read order (its two shards interleaved in order); validation_examples
    # come off the end of the split.
    first = {key(ex["image"] / 255) for ex in tfds.as_numpy(builder.as_dataset(
        split="train[:-8]", shuffle_files=False).take(n))}
    assert len(first) == n
    assert pipeline.num_examples(config, "train") == n
    for _ in range(2):  # Two runs.
        ds = pipeline.make_dataset(config, "train", 3, (50, 50), training=True, repeat=True)
        epochs = [{key(image) for image in images} for images, _ in ds.take(4)]
        assert all(epoch == first for epoch in epochs)  # One batch of n is one epoch.


def test_train_examples_are_read_from_disk_once_and_still_reshuffled(tmp_path, monkeypatch):
    """With --train_examples the pipeline decodes the N images once: later epochs come from
    memory (they survive the dataset's files being deleted), with the same examples and targets
    as a pipeline that reads the files every epoch, and each epoch in a new order."""
    import shutil

    from decompnet_tf.config import DataConfig
    from decompnet_tf.data import pipeline

    builder = _tiny_split(tmp_path, monkeypatch)
    n, batch, count = 12, 4, 4
    config = DataConfig(dataset="decomp_mnist/tiny", train_examples=n, validation_examples=8,
                        batch_size=batch, shuffle_buffer=64)

    def epochs(batches):
        """Per epoch: the images' keys in order, and {image key: its targets as bytes}."""
        out = []
        for e in range(count):
            order, targets = [], {}
            for images, t in batches[e * n // batch:(e + 1) * n // batch]:
                for i, image in enumerate(images):
                    order.append(_key(image))
                    targets[order[-1]] = b"".join(np.asarray(v[i]).tobytes()
                                                  for _, v in sorted(t.items()))
            out.append((order, targets))
        return out

    def batches(it, epochs):
        return [next(it) for _ in range(epochs * n // batch)]

    with monkeypatch.context() as m:  # The reference reads the files every epoch.
        m.setattr(tf.data.Dataset, "cache", lambda self, *a, **k: self)
        reference = epochs(batches(iter(pipeline.make_dataset(
            config, "train", 3, (50, 50), training=True, repeat=True)), count))
    it = iter(pipeline.make_dataset(config, "train", 3, (50, 50), training=True, repeat=True))
    first = batches(it, 1)
    shutil.rmtree(builder.data_dir)  # Nothing is read from disk after the first epoch.
    got = epochs(first + batches(it, count - 1))
    for (order, targets), (ref_order, ref_targets) in zip(got, reference):
        assert sorted(order) == sorted(ref_order) and targets == ref_targets
    assert len({tuple(order) for order, _ in got}) == count  # Reshuffled every epoch.


def test_yardstick_true_maps_are_the_training_targets_with_the_cap():
    """The evaluation's true category maps (`inference.true_category_maps`) are training's
    "category_target": the first `max_per_class` objects of each category, summed at the maps'
    size, also when a category has more objects than that."""
    from decompnet_tf.detectors.decompnet import true_category_maps

    rng = np.random.default_rng(0)
    masks = (rng.random((5, 8, 8, 1)) < 0.4).astype(np.uint8)
    labels = np.array([0, 0, 0, 2, 0])  # Class 0: 4 objects, over a cap of 2.
    example = {"image": np.zeros((8, 8, 1), np.uint8), "objects": {
        "mask": masks, "label": labels, "bbox": np.zeros((5, 4), np.float32)}}
    _, targets = prepare_example(example, 3, (4, 4), 2)
    gts = [{"masks": masks[..., 0].astype(bool), "classes": labels},
           {"masks": np.zeros((0, 8, 8), bool), "classes": np.zeros(0, np.int64)}]
    maps = true_category_maps(gts, 3, (4, 4), 2)
    assert maps.shape == (2, 4, 4, 3)
    np.testing.assert_array_equal(maps[0], targets["category_target"])
    np.testing.assert_array_equal(maps[1], 0.0)
    # Independent reference: 2x2 block means of the summed first two masks of class 0.
    first_two = masks[:2, ..., 0].sum(0).astype(np.float32)
    np.testing.assert_allclose(maps[0, ..., 0], first_two.reshape(4, 2, 4, 2).mean((1, 3)),
                               atol=1e-6)
    np.testing.assert_allclose(maps[0, ..., 2], masks[3, ..., 0].reshape(4, 2, 4, 2).mean((1, 3)),
                               atol=1e-6)
