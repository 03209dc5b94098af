"""The stop rule and the detection outputs (no NMS)."""

import numpy as np
import tensorflow as tf

from decompnet_tf.postprocess import count_instances, detections


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
