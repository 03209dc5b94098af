"""The sliding-window CNN baseline of section 3.1: windows, NMS, patches, classifier."""

import numpy as np
import pytest

from decompnet_tf.data.patches import sample_patches
from decompnet_tf.eval.sliding_window import SlidingWindowDetector, nms
from decompnet_tf.models.baseline import PatchClassifier
from decompnet_tf.ops.windows import window_boxes
from tfds_builders.decomp_mnist.synth import box_iou


@pytest.mark.parametrize("step, expected", [(3, 2805), (5, 1038)])
def test_window_counts_match_the_papers_about_3000_and_1000(step, expected):
    boxes = window_boxes((100, 100), 10, 56, step)
    assert len(boxes) == expected
    sides = np.unique(np.round((boxes[:, 2] - boxes[:, 0]) * 100, 3))
    np.testing.assert_allclose(sides, [10, 21.5, 33, 44.5, 56])
    assert (boxes >= 0).all() and (boxes <= 1 + 1e-6).all()
    np.testing.assert_allclose(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1], atol=1e-6)


def brute_force_nms(boxes, scores, threshold):
    """Keep a box iff no higher-scoring KEPT box overlaps it by IoU > threshold."""
    kept = []
    for i in np.argsort(-scores, kind="stable"):
        if all(box_iou(boxes[i], boxes[j][None])[0] <= threshold for j in kept):
            kept.append(i)
    return kept


def test_nms_matches_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(1, 40))
        yx = rng.random((n, 2)) * 0.7
        size = rng.uniform(0.05, 0.3, (n, 1))
        boxes = np.concatenate([yx, yx + size], axis=1).astype(np.float32)
        scores = rng.permutation(n).astype(np.float32) / n  # distinct scores
        got = nms(boxes, scores, 0.3, 100).numpy().tolist()
        assert got == brute_force_nms(boxes, scores, 0.3)


def test_patches_positive_iou_and_background():
    rng = np.random.default_rng(0)
    image = np.zeros((100, 100), np.uint8)
    image[20:40, 30:44] = 255
    boxes = np.array([[0.2, 0.3, 0.4, 0.44]])
    patches, labels = sample_patches(image, boxes, np.array([1]), rng, positives_per_object=5,
                                     negatives=6)
    assert patches.shape[1:] == (32, 32) and patches.dtype == np.uint8
    assert (labels == 1).sum() == 5 and (labels == 3).sum() == 6
    # Positives hold most of the object's ink; background patches hold almost none of it.
    assert patches[labels == 1].mean() > 60
    assert patches[labels == 3].mean() < patches[labels == 1].mean() / 3


def test_classifier_config_and_detector_outputs():
    net = PatchClassifier(num_classes=3, patch_size=16)
    assert {k: net.get_config()[k] for k in ("num_classes", "patch_size")} == {
        "num_classes": 3, "patch_size": 16}
    net.build()
    det = SlidingWindowDetector(net, (32, 32), 8, 16, step=8, max_detections=10)
    out = det.predict(np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32))
    assert out["detection_boxes"].shape == (2, 10, 4)
    assert out["num_detections"].shape == (2,) and (out["num_detections"] <= 10).all()
    assert det.describe()["windows_per_image"] == len(window_boxes((32, 32), 8, 16, 8))


def test_training_scores_the_windows_the_detector_ranks():
    # Hard-negative mining (engine.baseline.window_scorer, uint8 images, chunked) must see the
    # probabilities the detector ranks at test time: the detector's best score per class is
    # the highest window probability of that class (NMS always keeps the top window).
    from decompnet_tf.engine.baseline import window_scorer

    net = PatchClassifier(num_classes=3, patch_size=16)
    net.build()
    images = np.random.default_rng(1).integers(0, 256, (3, 32, 32), dtype=np.uint8)
    windows = window_boxes((32, 32), 8, 16, 4)
    probs = window_scorer(net, windows)(images)
    assert probs.shape == (3, len(windows), 4)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    # One image per call gives the same rows, image by image.
    np.testing.assert_allclose(window_scorer(net, windows, batch=1)(images), probs, atol=1e-6)
    det = SlidingWindowDetector(net, (32, 32), 8, 16, step=4, score_threshold=0.0,
                                max_detections=len(windows))
    out = det.predict(images[..., None].astype(np.float32) / 255.0)
    for i in range(3):
        for c in range(3):
            got = out["detection_scores"][i][out["detection_classes"][i] == c]
            assert got.max() == pytest.approx(probs[i, :, c].max(), abs=1e-5)
