"""The sliding-window CNN baseline of section 3.1: windows, NMS, patches, classifier."""

import numpy as np
import pytest
import tensorflow as tf

from decompnet_tf.data.patches import sample_windows
from decompnet_tf.detectors.sliding_window import SlidingWindowDetector, nms
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


def test_sampled_windows_are_positives_and_background_squares_and_crop_the_object():
    from decompnet_tf.engine.baseline import crop_patches

    rng = np.random.default_rng(0)
    image = np.zeros((100, 100), np.uint8)
    image[20:40, 30:44] = 255
    boxes = np.array([[0.2, 0.3, 0.4, 0.44]])
    windows, labels = sample_windows((100, 100), boxes, np.array([1]), rng,
                                     positives_per_object=5, negatives=6)
    assert windows.shape == (11, 4) and windows.dtype == np.float32
    assert (labels == 1).sum() == 5 and (labels == 3).sum() == 6
    iou = box_iou(boxes[0], windows)
    assert (iou[labels == 1] >= 0.5).all() and (iou[labels == 3] < 0.3).all()
    sides = (windows[:, 2] - windows[:, 0]) * 100
    assert ((sides >= 10 - 1e-4) & (sides <= 56 + 1e-4)).all()
    patches = crop_patches(image[None], windows, np.zeros(len(windows), int), 32)
    assert patches.shape == (11, 32, 32) and patches.dtype == np.uint8
    # Positives hold most of the object's ink; background patches hold almost none of it.
    assert patches[labels == 1].mean() > 60
    assert patches[labels == 3].mean() < patches[labels == 1].mean() / 3


def test_training_patches_are_the_pixels_the_detector_scores():
    """Every training patch (sampled or mined) goes through crop_patches; the detector crops
    its windows in PatchClassifier.window_probs. The same window must give the same pixels
    (up to storing them as uint8) and so the same class probabilities, at every window size:
    a 10-px window resampled one way in training and another at test would teach the
    classifier that a digit's test-time look is background."""
    from decompnet_tf.engine.baseline import crop_patches
    from decompnet_tf.models.baseline import crop_windows

    rng = np.random.default_rng(2)
    images = rng.integers(0, 256, (2, 100, 100), dtype=np.uint8)
    windows = window_boxes((100, 100), 10, 56, 9)
    ids = np.repeat([0, 1], len(windows))
    stored = crop_patches(images, np.concatenate([windows, windows]), ids, 32, chunk=500)
    x = images[..., None].astype(np.float32) / 255.0
    seen = crop_windows(x, windows, 32).numpy()[..., 0]
    np.testing.assert_allclose(stored / 255.0, seen, atol=0.5 / 255 + 1e-6)
    net = PatchClassifier(num_classes=3, patch_size=32)
    net.build()
    trained_on = tf.nn.softmax(net(stored[..., None].astype(np.float32) / 255.0)["logits"])
    scored = net.window_probs(x, windows).numpy().reshape(-1, 4)
    np.testing.assert_allclose(trained_on.numpy(), scored, atol=2e-3)


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


def test_window_deltas_fit_a_square_window_to_a_tall_box_and_back():
    from decompnet_tf.models.baseline import apply_deltas
    from decompnet_tf.ops.windows import window_deltas

    # Worked by hand: the window's centre (0.4, 0.4), sides 0.4; the box's centre (0.4, 0.4),
    # sides 0.2 x 0.3, so no shift and sizes x0.5 and x0.75 (scaled by 10, 10, 5, 5).
    window, box = np.array([[0.2, 0.2, 0.6, 0.6]]), np.array([[0.3, 0.25, 0.5, 0.55]])
    np.testing.assert_allclose(window_deltas(window, box),
                               [[0.0, 0.0, 5 * np.log(0.5), 5 * np.log(0.75)]], atol=1e-6)
    # A shift of a quarter window down: dy = 0.25 x 10.
    np.testing.assert_allclose(window_deltas(window, box + [0.1, 0, 0.1, 0])[0, 0], 2.5,
                               atol=1e-5)
    rng = np.random.default_rng(0)
    yx = rng.uniform(0.1, 0.5, (50, 2))
    windows = np.concatenate([yx, yx + rng.uniform(0.1, 0.4, (50, 1))], 1)
    boxes = np.concatenate([yx + rng.uniform(-0.05, 0.05, (50, 2)),
                            yx + rng.uniform(0.15, 0.45, (50, 2))], 1)
    back = apply_deltas(tf.constant(windows, tf.float32),
                        tf.constant(window_deltas(windows, boxes))).numpy()
    np.testing.assert_allclose(back, np.clip(boxes, 0, 1), atol=1e-5)


def test_regression_targets_point_each_digit_window_at_its_own_box():
    from decompnet_tf.data.patches import regression_targets
    from decompnet_tf.models.baseline import apply_deltas

    rng = np.random.default_rng(3)
    boxes = np.array([[0.1, 0.1, 0.3, 0.25], [0.5, 0.5, 0.8, 0.7], [0.15, 0.6, 0.35, 0.75]])
    labels = np.array([2, 2, 0])
    windows, wl = sample_windows((100, 100), boxes, labels, rng, positives_per_object=4,
                                 negatives=5)
    targets = regression_targets(windows, wl, boxes, labels)
    assert targets.shape == (len(windows), 5)
    np.testing.assert_array_equal(targets[:, 4], (wl != 3).astype(np.float32))
    assert (targets[wl == 3] == 0).all()
    moved = apply_deltas(tf.constant(windows), tf.constant(targets[:, :4])).numpy()
    for window, label, box in zip(windows[wl != 3], wl[wl != 3], moved[wl != 3]):
        own = boxes[labels == label]
        expected = own[np.argmax(box_iou(window, own))]  # the same class's best overlap
        np.testing.assert_allclose(box, expected, atol=1e-5)


def test_box_loss_is_smooth_l1_on_digit_patches_only():
    from decompnet_tf.engine.baseline import window_box_loss

    y_true = np.array([[0.5, -2.0, 0, 0, 1], [3.0, 3.0, 3.0, 3.0, 0]], np.float32)
    y_pred = np.zeros((2, 4), np.float32)
    got = window_box_loss(tf.constant(y_true), tf.constant(y_pred)).numpy()
    np.testing.assert_allclose(got, [0.5 * 0.25 + (2.0 - 0.5), 0.0], atol=1e-6)


def test_the_detector_ranks_the_windows_moved_by_the_box_head():
    net = PatchClassifier(num_classes=3, patch_size=16, box_regression=True)
    net.build()
    assert PatchClassifier.from_config(net.get_config()).box_regression
    # The head's bias halves every window about its centre, whatever the patch.
    net.box.set_weights([np.zeros((64, 4), np.float32),
                         np.array([0, 0, 5 * np.log(0.5), 5 * np.log(0.5)], np.float32)])
    images = np.random.default_rng(2).random((2, 32, 32, 1), dtype=np.float32)
    windows = window_boxes((32, 32), 8, 16, 4)
    centre, half = (windows[:, :2] + windows[:, 2:]) / 2, (windows[:, 2:] - windows[:, :2]) / 4
    halved = np.concatenate([centre - half, centre + half], 1)
    probs, boxes = net.window_outputs(tf.constant(images), tf.constant(windows))
    np.testing.assert_allclose(boxes.numpy(), np.broadcast_to(halved, (2, *halved.shape)),
                               atol=1e-6)
    det = SlidingWindowDetector(net, (32, 32), 8, 16, step=4, score_threshold=0.0,
                                max_detections=len(windows))
    out = det.predict(images)
    for i in range(2):
        top = int(np.argmax(out["detection_scores"][i]))
        c = out["detection_classes"][i][top]
        best = int(np.argmax(probs.numpy()[i, :, c]))
        np.testing.assert_allclose(out["detection_boxes"][i][top], halved[best], atol=1e-6)
