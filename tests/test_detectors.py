"""DecompDetector: the evaluation wrapper's box sources and outputs."""

import numpy as np
import pytest

from decompnet_tf.config import InferenceConfig, ModelConfig
from decompnet_tf.detectors.decompnet import DecompDetector
from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf.postprocess import mask_boxes

TINY = dict(num_classes=2, steps=3, image_size=(32, 32), instance_units=8, instance_filters=4,
            box_hidden=8)


def test_box_source_mask_reads_boxes_off_the_emitted_maps():
    net = DecompNet(ModelConfig(**TINY))
    net.build()
    images = np.random.default_rng(0).random((2, 32, 32, 1)).astype(np.float32)
    regressed = DecompDetector(net, InferenceConfig(stop_threshold=0.0)).predict(images)
    masked = DecompDetector(net, InferenceConfig(stop_threshold=0.0, box_source="mask")).predict(
        images)
    ref = mask_boxes(masked["instance_maps"]).numpy()  # [B, C, T, 4]
    for b in range(2):
        for i in range(int(masked["num_detections"][b])):
            c, t = masked["detection_classes"][b, i], masked["detection_steps"][b, i]
            np.testing.assert_allclose(masked["detection_boxes"][b, i], ref[b, c, t], atol=1e-6)
    # Same maps, same stop rule: only the boxes differ.
    np.testing.assert_array_equal(regressed["num_detections"], masked["num_detections"])
    assert not np.allclose(regressed["detection_boxes"], masked["detection_boxes"])
    with pytest.raises(ValueError, match="box_source"):
        DecompDetector(net, InferenceConfig(box_source="anchors"))


def test_every_detector_satisfies_the_detector_protocol():
    from decompnet_tf.detectors import (
        ComponentsDetector,
        DecompDetector,
        Detector,
        SavedModelDetector,
        SlidingWindowDetector,
        TFLiteDetector,
    )

    for cls in (DecompDetector, ComponentsDetector, TFLiteDetector, SavedModelDetector,
                SlidingWindowDetector):
        assert issubclass(cls, Detector), cls
    assert not issubclass(dict, Detector)
