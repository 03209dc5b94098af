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
