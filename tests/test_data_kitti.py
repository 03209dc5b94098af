"""decomp_kitti -> box-mask examples: eagerly and inside tf.data, then packed into targets."""

import numpy as np
import pytest
import tensorflow as tf

from decompnet_tf.data.builders import is_kitti, tfds_split
from decompnet_tf.data.decomp_kitti import kitti_example
from decompnet_tf.data.pipeline import prepare_example


def _example():
    image = np.random.default_rng(0).integers(0, 256, (64, 192, 3)).astype(np.uint8)
    boxes = np.array([[0.25, 0.125, 0.75, 0.5], [0.0, 0.5, 0.5, 1.0]], np.float32)
    return {"image": image, "objects": {"bbox": boxes, "label": np.array([0, 0], np.int64)}}


def _check(out, targets):
    assert tuple(out["image"].shape) == (32, 96, 3)
    # The image is area-resized by 2: each output pixel is the mean of a 2x2 block.
    image = _example()["image"].astype(np.float32)
    np.testing.assert_allclose(out["image"][3, 5], image[6:8, 10:12].mean(axis=(0, 1)),
                               rtol=1e-5)
    masks = np.asarray(out["objects"]["mask"])[..., 0]  # [2, 8, 16] at the map size
    expected = np.zeros((2, 8, 16))
    expected[0, 2:6, 2:8] = 1  # pixel centres (r + .5) / 8 in [.25, .75], (c + .5) / 16 in ...
    expected[1, 0:4, 8:16] = 1
    np.testing.assert_array_equal(masks, expected)
    # Packed with instance maps pooled by 2: masks 4x8, the category target stays 8x16.
    assert tuple(targets["masks"].shape) == (1, 3, 4, 8)
    assert tuple(targets["category_target"].shape) == (8, 16, 1)
    np.testing.assert_allclose(np.asarray(targets["category_target"])[..., 0],
                               expected.sum(axis=0))
    np.testing.assert_allclose(np.asarray(targets["masks"])[0, 0].sum() * 4, expected[0].sum())
    assert np.asarray(targets["valid"]).tolist() == [[1, 1, 0]]


def _prepare(ex):
    out = kitti_example(ex, (32, 96), (8, 16))
    return out, prepare_example(out, 1, (8, 16), 3, instance_size=(4, 8))[1]


def test_kitti_example_eager():
    _check(*_prepare(_example()))


def test_kitti_example_in_tf_data():
    ds = tf.data.Dataset.from_tensors(_example()).map(_prepare)
    _check(*next(iter(ds)))


def test_split_names():
    assert is_kitti("decomp_kitti/cars") and not is_kitti("decomp_mnist/small")
    assert tfds_split("decomp_kitti/cars", "test", 0) == "validation"
    assert tfds_split("decomp_mnist/small", "test", 0) == "test"


def test_validation_split_is_the_datasets_own_or_held_out_training_images():
    mnist = {"train": 800, "validation": 200, "test": 200}
    kitti = {"train": 3712, "validation": 3769}
    # decomp_mnist's own validation split (unseen digits); training keeps every train image.
    assert tfds_split("decomp_mnist/small", "validation", 100, mnist) == "validation[:100]"
    assert tfds_split("decomp_mnist/small", "validation", 0, mnist) == "validation"
    assert tfds_split("decomp_mnist/small", "train", 100, mnist) == "train"
    # KITTI's TFDS "validation" is its test split: validation images come off the train split.
    assert tfds_split("decomp_kitti/cars", "validation", 50, kitti) == "train[-50:]"
    assert tfds_split("decomp_kitti/cars", "train", 50, kitti) == "train[:-50]"
    # A decomp_mnist prepared without a validation split (num_validation=0) holds images out.
    assert tfds_split("decomp_mnist/x", "validation", 8, {"train": 48, "test": 2}) == "train[-8:]"
    with pytest.raises(ValueError, match="holds out the whole training split"):
        tfds_split("decomp_kitti/cars", "train", 4000, kitti)
