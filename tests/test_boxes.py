"""Tests for decompnet_tf.ops.boxes (format conversion and IoU)."""

import numpy as np
import pytest
import tensorflow as tf

from decompnet_tf.ops.boxes import xywh_to_yxyx, yxyx_to_xywh
from decompnet_tf.ops.np_boxes import box_iou_np


def test_xywh_to_yxyx_hand_case():
    # centre (x=0.5, y=0.5), w=0.2, h=0.4 -> y in [0.3, 0.7], x in [0.4, 0.6]
    out = xywh_to_yxyx(tf.constant([[0.5, 0.5, 0.2, 0.4]]))
    np.testing.assert_allclose(out.numpy(), [[0.3, 0.4, 0.7, 0.6]], atol=1e-6)
    back = yxyx_to_xywh(tf.constant([[0.3, 0.4, 0.7, 0.6]]))
    np.testing.assert_allclose(back.numpy(), [[0.5, 0.5, 0.2, 0.4]], atol=1e-6)


def test_round_trip_batched():
    rng = np.random.default_rng(0)
    xywh = rng.uniform(0.1, 0.9, size=(2, 3, 4)).astype(np.float32)
    out = yxyx_to_xywh(xywh_to_yxyx(tf.constant(xywh)))
    assert out.shape == (2, 3, 4)
    np.testing.assert_allclose(out.numpy(), xywh, atol=1e-6)


def test_iou_hand_cases():
    a = np.array([[0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 5.0, 6.0]], np.float32)  # 2nd: zero area
    b = np.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [4.0, 4.0, 5.0, 5.0]], np.float32)
    # a0 vs b0: intersection 1x1 = 1, union 4 + 4 - 1 = 7; a0 vs b1 identical; a0 vs b2 disjoint.
    # a1 has zero area: IoU 0 everywhere (union with b2 is 1, intersection 0).
    expected = np.array([[1.0 / 7.0, 1.0, 0.0], [0.0, 0.0, 0.0]])
    np.testing.assert_allclose(box_iou_np(a, b), expected, atol=1e-12)


def test_iou_empty_union_is_zero():
    z = np.zeros((1, 4), np.float32)
    assert box_iou_np(z, z)[0, 0] == 0.0


def test_box_ioa_is_intersection_over_the_first_box():
    from decompnet_tf.ops.np_boxes import box_ioa_np

    a = np.array([[0.0, 0.0, 2.0, 2.0]])  # area 4
    b = np.array([[1.0, 1.0, 5.0, 5.0], [0.0, 0.0, 0.0, 0.0]])  # overlap area 1; empty box
    np.testing.assert_allclose(box_ioa_np(a, b), [[0.25, 0.0]])
    np.testing.assert_allclose(box_ioa_np(b[:1], a), [[1 / 16]])
    assert box_ioa_np(b[1:], a)[0, 0] == 0.0  # empty first box: 0, not NaN


def test_generalized_iou_against_a_direct_formula():
    from decompnet_tf.ops.boxes import generalized_iou

    rng = np.random.default_rng(0)
    corners = np.sort(rng.random((2, 200, 2, 2)), axis=2)  # [pair, n, (min, max), (y, x)]
    a, b = (c.transpose(0, 2, 1).reshape(200, 4)[:, [0, 2, 1, 3]] for c in corners)
    got = generalized_iou(tf.constant(a), tf.constant(b)).numpy()
    for x, y, g in zip(a, b, got):
        inter = (max(0, min(x[2], y[2]) - max(x[0], y[0]))
                 * max(0, min(x[3], y[3]) - max(x[1], y[1])))
        union = (x[2] - x[0]) * (x[3] - x[1]) + (y[2] - y[0]) * (y[3] - y[1]) - inter
        hull = (max(x[2], y[2]) - min(x[0], y[0])) * (max(x[3], y[3]) - min(x[1], y[1]))
        assert g == pytest.approx(inter / union - (hull - union) / hull, abs=1e-6)
    assert generalized_iou(tf.constant(a[:1]), tf.constant(a[:1])).numpy()[0] == pytest.approx(1)
    far = generalized_iou(tf.constant([[0.0, 0.0, 0.1, 0.1]]),
                          tf.constant([[0.9, 0.9, 1.0, 1.0]]))
    assert -1.0 < float(far[0]) < -0.9  # Disjoint and far apart: close to -1.
    zero = generalized_iou(tf.zeros((1, 4)), tf.zeros((1, 4)))
    assert float(zero[0]) == 0.0  # No area at all: 0, not NaN.
