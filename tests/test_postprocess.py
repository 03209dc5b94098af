"""The stop rule and the detection outputs (no NMS)."""

import numpy as np
import tensorflow as tf

from decompnet_tf.postprocess import (
    count_instances,
    detections,
    emitted,
    mask_boxes,
    stop_signal,
)


def test_count_stops_at_first_peak_below_threshold():
    peaks = tf.constant([[[0.9, 0.8, 0.2, 0.9], [0.1, 0.9, 0.9, 0.9], [0.6, 0.6, 0.6, 0.6]]])
    np.testing.assert_array_equal(count_instances(peaks, 0.5).numpy(), [[2, 0, 4]])


def test_detections_keep_emitted_maps_ranked_by_score():
    b, c, t, h, w = 1, 2, 3, 4, 4
    maps = np.zeros((b, c, t, h, w), np.float32)
    maps[0, 0, 0, 0, 0] = maps[0, 0, 1, 1, 1] = maps[0, 1, 0, 2, 2] = 1.0
    peaks = maps.max(axis=(-2, -1))
    scores = np.array([[[0.3, 0.7, 0.0], [0.5, 0.0, 0.0]]], np.float32)
    boxes = np.random.default_rng(0).random((b, c, t, 4)).astype(np.float32)
    out = detections({"instance_maps": maps, "boxes": boxes, "peaks": peaks,
                      "detection_scores": scores}, stop_threshold=0.5, image_size=(8, 8))
    assert int(out["num_detections"][0]) == 3
    np.testing.assert_allclose(out["detection_scores"][0, :3], [0.7, 0.5, 0.3])
    np.testing.assert_array_equal(out["detection_classes"][0, :3], [0, 1, 0])
    np.testing.assert_array_equal(out["detection_steps"][0, :3], [1, 0, 0])
    np.testing.assert_allclose(out["detection_boxes"][0, 0], boxes[0, 0, 1])
    assert out["detection_masks"].shape == (1, 6, 8, 8)
    assert float(tf.reduce_sum(out["detection_scores"][0, 3:])) == 0.0
    assert float(tf.reduce_max(out["detection_masks"][0, 3:])) == 0.0
    padded = detections({"instance_maps": maps, "boxes": boxes, "peaks": peaks,
                         "detection_scores": scores}, max_detections=10)
    assert padded["detection_boxes"].shape == (1, 10, 4)


def _np_mask_box(m, rel=0.5):
    """Reference: the extent of the pixels above rel * peak, by loops."""
    peak = m.max()
    if peak <= 0:
        return [0.0, 0.0, 0.0, 0.0]
    rows = [r for r in range(m.shape[0]) if (m[r] > rel * peak).any()]
    cols = [c for c in range(m.shape[1]) if (m[:, c] > rel * peak).any()]
    h, w = m.shape
    return [rows[0] / h, cols[0] / w, (rows[-1] + 1) / h, (cols[-1] + 1) / w]


def test_mask_boxes_match_a_loop_reference_eagerly_and_in_tf_function():
    rng = np.random.default_rng(0)
    maps = np.zeros((3, 2, 6, 9), np.float32)
    maps[0, 0, 1:4, 2:7] = rng.uniform(0.6, 1.0, (3, 5))
    maps[0, 0, 5, 8] = 0.2  # Below half the peak: outside the box.
    maps[1, 1] = rng.uniform(-1, 1, (6, 9))  # Linear maps may be negative.
    maps[2, 0] = -0.5  # No positive pixel: the all-zero box.
    ref = np.array([[_np_mask_box(m) for m in per] for per in maps])
    np.testing.assert_allclose(mask_boxes(maps).numpy(), ref, atol=1e-6)
    np.testing.assert_allclose(tf.function(mask_boxes)(tf.constant(maps)).numpy(), ref,
                               atol=1e-6)


def test_stop_signal_prefers_the_stop_head():
    peaks, obj = tf.ones((1, 1, 2)), tf.constant([[[0.9, 0.1]]])
    assert stop_signal({"peaks": peaks}) is peaks
    assert stop_signal({"peaks": peaks, "objectness": obj}) is obj
    np.testing.assert_array_equal(count_instances(stop_signal({"peaks": peaks,
                                                               "objectness": obj}), 0.5), [[1]])


def test_stop_head_emits_every_marked_step_not_just_a_prefix():
    # The matching may give the empty target to step 0; the head then marks steps 1 and 2.
    obj = tf.constant([[[0.1, 0.9, 0.8], [0.7, 0.2, 0.6]]])
    peaks = tf.ones((1, 2, 3))
    np.testing.assert_array_equal(emitted({"peaks": peaks, "objectness": obj}, 0.5).numpy(),
                                  [[[False, True, True], [True, False, True]]])
    # Without a head the paper's rule holds: the first dim map ends the category.
    np.testing.assert_array_equal(emitted({"peaks": obj}, 0.5).numpy(),
                                  [[[False, False, False], [True, False, False]]])
    maps = np.ones((1, 2, 3, 2, 2), np.float32)
    out = detections({"instance_maps": maps, "boxes": np.zeros((1, 2, 3, 4), np.float32),
                      "peaks": peaks, "objectness": obj, "detection_scores": obj},
                     stop_threshold=0.5)
    assert int(out["num_detections"][0]) == 4
    np.testing.assert_array_equal(out["detection_steps"][0, :4], [1, 2, 0, 2])  # by score
