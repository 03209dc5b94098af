"""Tests for decompnet_tf.losses on small hand-computed cases."""

import numpy as np
import pytest
import tensorflow as tf

from decompnet_tf.losses import (
    BOX,
    INSTANCE_MATCHED,
    STOP,
    box_loss,
    category_loss,
    dice_loss,
    instance_losses,
    object_size_scale,
    size_weights,
    stop_loss,
    weighted_bce,
    weighted_sq_distance,
    weighted_total,
)


def test_weighted_sq_distance_hand_case():
    x = tf.constant([[1.0, 0.0], [0.0, 0.0]])
    y = tf.constant([[1.0, 1.0], [0.0, 0.0]])
    # p = 0.5: only pixel (0,1) differs, weight 1 + 0.5 = 1.5, error^2 = 1 -> 1.5 / 4.
    assert weighted_sq_distance(x, y, 0.5).numpy() == pytest.approx(0.375)
    # Background-only error gets weight p: x = 1 at a y = 0 pixel of a 1x1 map -> 0.5.
    assert weighted_sq_distance(tf.ones([1, 1]) * 0.0 + 1.0, tf.zeros([1, 1]), 0.5).numpy() == (
        pytest.approx(0.5)
    )
    assert weighted_sq_distance(tf.zeros([3, 2, 2]), tf.zeros([3, 2, 2]), 0.5).shape == (3,)


def test_category_loss_counts_overlap_twice():
    m1 = np.array([[1.0, 1.0], [0.0, 0.0]])
    m2 = np.array([[0.0, 1.0], [0.0, 0.0]])
    target = np.zeros((1, 2, 2, 2), np.float32)  # [B, h, w, C]
    target[0, :, :, 0] = m1 + m2  # overlap pixel (0, 1) has value 2
    pred = np.zeros_like(target)
    pred[0, :, :, 0] = [[1.0, 1.0], [0.0, 0.0]]  # predicts the union with value 1
    # Channel 0: pixel (0,1): weight 2 + 0.5 = 2.5, error (1 - 2)^2 = 1 -> 2.5 / 4 pixels.
    # Channel 1: all zero -> 0. Mean over B*C = 2 maps.
    out = category_loss(tf.constant(pred), tf.constant(target), 0.5)
    assert set(out) == {"category"}
    assert out["category"].numpy() == pytest.approx(2.5 / 4 / 2)


def _instance_case():
    # B = 2, T = 3, N = 2, h = 1, w = 2; image 1 has no objects (padded all-zero masks).
    gt = np.zeros((2, 2, 1, 2), np.float32)
    gt[0, 0] = [[1.0, 0.0]]
    gt[0, 1] = [[0.0, 1.0]]
    pred = np.zeros((2, 3, 1, 2), np.float32)
    pred[0, 0] = [[0.0, 1.0]]  # matched to gt 1 exactly
    pred[0, 1] = [[0.5, 0.0]]  # stop map
    pred[0, 2] = [[1.0, 0.5]]  # matched to gt 0
    assignment = np.array([[1, -1, 0], [-1, -1, -1]], np.int32)
    return pred, gt, assignment


def test_instance_losses_hand_case():
    pred, gt, assignment = _instance_case()
    out = instance_losses(tf.constant(pred), tf.constant(gt), tf.constant(assignment), 0.5)
    # Image 0, p = 0.5 (weight 0.5 on zero pixels), 2 pixels per map:
    #   t0: 0; t1 vs zeros: 0.5 * 0.5^2 / 2 = 0.0625; t2 vs [1, 0]: 0.5 * 0.5^2 / 2 = 0.0625
    #   sum: pred sum [1.5, 1.5] vs gt sum [1, 1]: weight 1.5, error 0.25 on both pixels
    #   -> 1.5 * 0.25 * 2 / 2 = 0.375.
    # Image 1: everything zero -> 0. Mean over the batch of 2.
    assert out["instance_matched"].numpy() == pytest.approx(0.125 / 2)
    assert out["instance_sum"].numpy() == pytest.approx(0.375 / 2)


def test_instance_matched_gradients_reach_only_matched_maps():
    gt = tf.constant([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # [1, 2, 1, 2]
    pred = tf.constant([[[[0.5, 1.0]], [[0.0, 0.0]], [[1.0, 0.5]]]])  # [1, 3, 1, 2]
    assignment = tf.constant([[1, -1, -1]])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([pred, gt])
        loss = instance_losses(pred, gt, assignment, 0.5)["instance_matched"]
    g = tape.gradient(loss, pred).numpy()
    # d/dx (y+p) (x-y)^2 / P = 2 (y+p) (x-y) / P with P = 2:
    # t0 vs [0, 1]: pixel 0: 2 * 0.5 * 0.5 / 2 = 0.25, pixel 1: 0.
    np.testing.assert_allclose(g[0, 0], [[0.25, 0.0]], atol=1e-7)
    np.testing.assert_array_equal(g[0, 1], [[0.0, 0.0]])  # zero map matched to zero target
    # t2 is a stop map with non-zero values: pushed towards 0 (2 * 0.5 * x / 2).
    np.testing.assert_allclose(g[0, 2], [[0.5, 0.25]], atol=1e-7)
    assert tape.gradient(loss, gt) is None


def test_box_loss_hand_case_and_ignores_stop_predictions():
    # gt 0: (ymin, xmin, ymax, xmax) = (0.2, 0.1, 0.6, 0.5) -> (x, y, w, h) = (0.3, 0.4, 0.4, 0.4)
    # gt 1: (0, 0, 1, 1) -> (0.5, 0.5, 1, 1)
    gt_boxes = tf.constant([[[0.2, 0.1, 0.6, 0.5], [0.0, 0.0, 1.0, 1.0]]])
    pred = tf.constant([[[0.8, 0.4, 0.4, 2.4], [100.0, np.nan, -5.0, 7.0], [0.5, 0.5, 1.0, 1.0]]])
    assignment = tf.constant([[0, -1, 1]])
    with tf.GradientTape() as tape:
        tape.watch(pred)
        out = box_loss(pred, gt_boxes, assignment)
    # t0: diffs (0.5, 0, 0, 2.0) -> 0.5 * 0.25 + 0 + 0 + (2.0 - 0.5) = 1.625; t2: 0.
    # Mean over the 2 matched objects; t1 (stop, with a NaN) is ignored.
    assert out["box"].numpy() == pytest.approx(1.625 / 2)
    g = tape.gradient(out["box"], pred).numpy()
    np.testing.assert_array_equal(g[0, 1], [0.0, 0.0, 0.0, 0.0])
    none = box_loss(pred, gt_boxes, tf.constant([[-1, -1, -1]]))
    assert none["box"].numpy() == 0.0


def test_weighted_total_hand_case():
    terms = {
        "category": tf.constant(1.0),
        "instance_matched": tf.constant(2.0),
        "instance_sum": tf.constant(3.0),
        "box": tf.constant(4.0),
    }
    # 1 + 0.5 * 2 + 0.25 * 3 + 2 * 4 = 10.75
    assert weighted_total(terms, lam=0.5, gamma=0.25, eta=2.0).numpy() == pytest.approx(10.75)
    assert weighted_total({"category": tf.constant(1.5)}, 0.3, 0.3, 1.0).numpy() == 1.5
    with pytest.raises(ValueError):
        weighted_total({"catgory": tf.constant(1.0)}, 1.0, 1.0, 1.0)


def _np_bce(x, y):
    x = np.clip(x, 1e-6, 1 - 1e-6)
    return -(y * np.log(x) + (1 - y) * np.log(1 - x))


def test_weighted_bce_matches_numpy():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(2, 3, 4, 5)).astype(np.float32)
    y = (rng.uniform(size=(2, 3, 4, 5)) > 0.5).astype(np.float32)
    ref = ((y + 0.25) * _np_bce(x, y)).mean(axis=(-2, -1))
    np.testing.assert_allclose(weighted_bce(x, y, 0.25).numpy(), ref, rtol=1e-5)
    # A perfect prediction costs ~0, the inverted one a lot.
    assert weighted_bce(y, y, 0.25).numpy().max() < 1e-4
    assert weighted_bce(1 - y, y, 0.25).numpy().min() > 1.0


def test_instance_losses_bce_and_size_weighting():
    pred = np.full((1, 2, 4, 4), 0.5, np.float32)
    gt = np.zeros((1, 2, 4, 4), np.float32)
    gt[0, 0, :1, :1] = 1.0  # area 1
    gt[0, 1, :3, :3] = 1.0  # area 9
    assignment = np.array([[1, 0]], np.int32)
    target = gt[:, ::-1]
    per_step = ((target + 0.1) * _np_bce(pred, target)).mean(axis=(-2, -1))  # [1, 2]
    out = instance_losses(pred, gt, assignment, 0.1, loss="bce")
    assert out[INSTANCE_MATCHED].numpy() == pytest.approx(per_step.sum(), rel=1e-5)
    # mean area 5: weights 5/9 for the big object, 5/1 -> clipped to 4 for the small one.
    w = size_weights(tf.constant(target), tf.constant(assignment)).numpy()
    np.testing.assert_allclose(w, [[5 / 9, 4.0]], rtol=1e-6)
    weighted = instance_losses(pred, gt, assignment, 0.1, loss="bce", size_weighting=True)
    assert weighted[INSTANCE_MATCHED].numpy() == pytest.approx((per_step * w).sum(), rel=1e-5)
    # Stop predictions weigh 1 and do not enter the mean area.
    w = size_weights(tf.constant(target), tf.constant([[1, -1]], np.int32)).numpy()
    np.testing.assert_allclose(w, [[1.0, 1.0]])
    with pytest.raises(ValueError, match="instance loss must be one of"):
        instance_losses(pred, gt, assignment, 0.1, loss="l1")


def test_stop_loss_matches_numpy_and_enters_total_once():
    obj = np.array([[0.9, 0.2, 0.4]], np.float32)
    assignment = np.array([[0, -1, 2]], np.int32)
    ref = _np_bce(obj, np.array([[1.0, 0.0, 1.0]])).mean()
    terms = stop_loss(obj, assignment)
    assert terms[STOP].numpy() == pytest.approx(ref, rel=1e-5)
    total = weighted_total({STOP: terms[STOP], BOX: 1.0}, 1.0, 1.0, 2.0, stop_weight=0.5)
    assert total.numpy() == pytest.approx(2.0 + 0.5 * ref, rel=1e-5)


def test_dice_loss_hand_case_and_hedging():
    gt = np.zeros((1, 2, 4, 4), np.float32)
    gt[0, 0, :2, :2] = 1.0  # object 0: 4 pixels
    gt[0, 1, 2:, 2:] = 1.0  # object 1: 4 pixels
    exact = tf.constant(gt[:, :1])  # step 0 draws object 0 exactly
    half = tf.constant(0.5 * (gt[:, :1] + gt[:, 1:]))  # a hedge: half of each object
    a = tf.constant([[0]])
    assert dice_loss(exact, gt, a)["instance_dice"].numpy() == pytest.approx(0.0, abs=1e-7)
    # Hedge: inter = 0.5 * 4 = 2, sum(x) = 4, sum(y) = 4 -> 1 - 5/9.
    assert dice_loss(half, gt, a)["instance_dice"].numpy() == pytest.approx(4 / 9, rel=1e-6)
    # A step matched to the stop map adds no dice term; none matched gives 0, not NaN.
    two = tf.concat([exact, half], axis=1)
    assert dice_loss(two, gt, tf.constant([[0, -1]]))["instance_dice"].numpy() == (
        pytest.approx(0.0, abs=1e-7))
    assert dice_loss(two, gt, tf.constant([[-1, -1]]))["instance_dice"].numpy() == 0.0
    # Gradients reach the prediction.
    with tf.GradientTape() as tape:
        tape.watch(half)
        value = dice_loss(half, gt, a)["instance_dice"]
    assert np.abs(tape.gradient(value, half).numpy()).max() > 0


def test_weighted_total_applies_the_dice_weight():
    terms = {"instance_dice": tf.constant(0.5), "category": tf.constant(1.0)}
    assert weighted_total(terms, 1.0, 1.0, 1.0, dice_weight=2.0).numpy() == pytest.approx(2.0)
    assert weighted_total(terms, 1.0, 1.0, 1.0).numpy() == pytest.approx(1.0)


def test_box_loss_l1_and_giou_terms():
    gt = tf.constant([[[0.2, 0.2, 0.6, 0.4], [0.0, 0.0, 0.0, 0.0]]])  # yxyx; one real object
    # Prediction (x, y, w, h) off by 0.02 in x: L1 0.02, GIoU 1 - IoU with IoU = 0.18 / 0.22.
    pred = tf.constant([[[0.32, 0.4, 0.2, 0.4], [0.9, 0.9, 0.1, 0.1]]])
    a = tf.constant([[0, -1]])
    l1 = box_loss(pred, gt, a, "l1", giou=True)
    assert l1["box"].numpy() == pytest.approx(0.02, abs=1e-6)
    assert l1["box_giou"].numpy() == pytest.approx(1 - 0.072 / 0.088, abs=1e-5)
    smooth = box_loss(pred, gt, a)
    assert smooth["box"].numpy() == pytest.approx(0.5 * 0.02**2, abs=1e-7)
    assert "box_giou" not in smooth
    with pytest.raises(ValueError, match="box distance must be one of"):
        box_loss(pred, gt, a, "huber")


def _object_size_scale_reference(masks, valid):
    """Loop form of section 5's size weighting of the category loss, pixel by pixel."""
    b_, c_, m_, h_, w_ = masks.shape
    areas = [masks[b, c, m].sum() for b in range(b_) for c in range(c_) for m in range(m_)
             if valid[b, c, m] and masks[b, c, m].sum() > 0]
    mean_area = np.mean(areas)
    out = np.ones((b_, h_, w_, c_))
    for b in range(b_):
        for c in range(c_):
            for y in range(h_):
                for x in range(w_):
                    ws = [np.clip(mean_area / masks[b, c, m].sum(), 0.25, 4.0)
                          for m in range(m_) if valid[b, c, m] and masks[b, c, m, y, x] > 0]
                    if ws:
                        out[b, y, x, c] = np.mean(ws)
    return out


def test_object_size_scale_against_a_loop():
    masks = np.zeros((2, 2, 3, 6, 6), np.float32)
    masks[0, 0, 0, :2, :2] = 1  # area 4
    masks[0, 0, 1, 1:5, 1:5] = 1  # area 16, overlaps the first
    masks[0, 1, 0, :, :] = 1  # area 36: clipped at 0.25
    masks[1, 1, 2, 5, 5] = 1  # area 1: clipped at 4
    masks[1, 0, 1, 2:4, 2:4] = 1  # padding: not valid, must not count
    valid = np.zeros((2, 2, 3), np.int32)
    valid[0, 0, :2] = valid[0, 1, 0] = valid[1, 1, 2] = 1
    got = object_size_scale(masks, valid).numpy()
    np.testing.assert_allclose(got, _object_size_scale_reference(masks, valid), rtol=1e-6)
    assert got[0, 0, 0, 0] > 1 > got[0, 4, 4, 0]  # the small digit weighs more


def test_size_scaled_category_loss_counts_a_missed_small_digit_more():
    target = np.zeros((1, 8, 8, 1), np.float32)
    masks = np.zeros((1, 1, 2, 8, 8), np.float32)
    masks[0, 0, 0, :2, :2] = target[0, :2, :2, 0] = 1  # small: 4 px
    masks[0, 0, 1, 3:8, 3:8] = target[0, 3:8, 3:8, 0] = 1  # large: 25 px
    valid = np.ones((1, 1, 2), np.int32)
    scale = object_size_scale(masks, valid)
    miss_small, miss_large = target.copy(), target.copy()
    miss_small[0, :2, :2] = 0
    miss_large[0, 3:8, 3:8] = 0

    def loss(pred, s):
        return float(category_loss(pred, target, 0.1, s)["category"])

    # Eq. 2 as written: missing the large digit costs 25/4 times missing the small one.
    assert loss(miss_large, None) == pytest.approx(25 / 4 * loss(miss_small, None))
    # Scaled: the two cost about the same (weights 14.5/4 and 14.5/25).
    assert loss(miss_small, scale) == pytest.approx(loss(miss_large, scale), rel=1e-5)
    # A scale of ones is eq. 2 itself.
    ones = np.ones_like(target)
    assert loss(miss_small, ones) == pytest.approx(loss(miss_small, None), rel=1e-6)
