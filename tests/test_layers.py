"""models/layers.py: area_resize equals TensorFlow's area resize (the reference) for integer and
non-integer ratios, and uses only TFLite builtins where the ratio is an integer."""

import numpy as np
import pytest
import tensorflow as tf

from decompnet_tf.models.layers import area_resize


@pytest.mark.parametrize("shape,size", [((2, 100, 100, 3), (50, 50)), ((1, 12, 8, 2), (4, 2)),
                                        ((1, 10, 10, 1), (7, 7)), ((1, 6, 6, 1), (6, 6))])
def test_area_resize_matches_tensorflow(shape, size):
    x = np.random.default_rng(0).random(shape, dtype=np.float32)
    want = tf.image.resize(x, size, method="area").numpy()
    got = np.asarray(area_resize(tf.constant(x), size))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_integer_ratio_converts_to_tflite_builtins():
    fn = tf.function(lambda x: area_resize(x, (50, 50)),
                     input_signature=[tf.TensorSpec((1, 100, 100, 1), tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    assert converter.convert()  # ResizeArea would raise: it is neither builtin nor flex-free.
