"""Hard-negative mining for the baseline (data/hard_negatives.py), against independent
references: pycocotools' IoU, a fake scorer with known scores, a count of each batch."""

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from decompnet_tf.data.hard_negatives import (
    balanced_order,
    eligible_windows,
    mine_hard_negatives,
    select_hard_negatives,
)
from decompnet_tf.ops.windows import window_boxes

C = 3  # digit classes; background is class 3


def coco_iou(a, b):
    """IoU [len(a), len(b)] of (ymin, xmin, ymax, xmax) boxes by pycocotools."""
    to_xywh = lambda x: np.stack([x[:, 1], x[:, 0], x[:, 3] - x[:, 1], x[:, 2] - x[:, 0]],  # noqa: E731
                                 axis=1).astype(np.float64)
    return np.asarray(mask_utils.iou(to_xywh(a), to_xywh(b), [0] * len(b))).reshape(len(a),
                                                                                   len(b))


def _scene(rng, n=4):
    """Digits of random classes and sizes in a 100x100 image; normalised boxes."""
    yx = rng.uniform(0, 0.7, (n, 2))
    side = rng.uniform(0.12, 0.3, (n, 1))
    return (np.concatenate([yx, yx + side], axis=1), rng.integers(0, C, n))


def _probs(rng, k):
    logits = rng.normal(size=(k, C + 1)) * 3
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


def test_mined_windows_are_under_the_bound_with_every_digit_of_their_class():
    rng = np.random.default_rng(0)
    windows = window_boxes((100, 100), 10, 56, 5)
    chosen_any = 0
    for _ in range(20):
        boxes, labels = _scene(rng)
        probs = _probs(rng, len(windows))
        chosen = select_hard_negatives(probs, windows, boxes, labels, C, num=50,
                                       iou_bound=0.3, background_iou=0.5)
        iou = coco_iou(windows[chosen], boxes)
        cls = probs[chosen, :C].argmax(axis=1)
        for j, c in zip(range(len(chosen)), cls):
            assert (iou[j, labels == c] < 0.3).all()  # its class: under the bound
            assert (iou[j] < 0.5).all()  # every digit: not a positive of another class
        chosen_any += len(chosen)
        # And no window under those bounds was left out for any other reason than its score.
        all_iou = coco_iou(windows, boxes)
        all_cls = probs[:, :C].argmax(axis=1)
        ok = np.array([(all_iou[i, labels == all_cls[i]] < 0.3).all() and
                       (all_iou[i] < 0.5).all() for i in range(len(windows))])
        np.testing.assert_array_equal(
            eligible_windows(probs, windows, boxes, labels, C, 0.3, 0.5)[0], ok)
    assert chosen_any > 0


def test_a_window_on_a_digit_of_another_class_is_not_background():
    windows = np.array([[0.1, 0.1, 0.4, 0.4], [0.6, 0.6, 0.9, 0.9]])
    boxes, labels = np.array([[0.1, 0.1, 0.4, 0.4]]), np.array([2])
    probs = np.array([[0.9, 0.0, 0.05, 0.05], [0.8, 0.1, 0.05, 0.05]])  # both called '0'
    ok, score = eligible_windows(probs, windows, boxes, labels, C)
    # The first covers a class-2 digit exactly: it is no background even though its class
    # (0) has no digit there; the second covers nothing.
    assert ok.tolist() == [False, True]
    np.testing.assert_allclose(score, [0.9, 0.8])


def test_mined_windows_are_the_top_scoring_eligible_ones():
    rng = np.random.default_rng(1)
    windows = window_boxes((100, 100), 10, 56, 5)
    images = rng.integers(0, 255, (6, 100, 100), dtype=np.uint8)
    scenes = [_scene(rng, int(rng.integers(0, 5))) for _ in images]
    boxes, labels = [s[0] for s in scenes], [s[1] for s in scenes]
    # A fake classifier: known probabilities per (image, window), distinct digit scores.
    known = np.stack([_probs(rng, len(windows)) for _ in images])
    calls = []

    def scorer(batch):
        calls.append(len(batch))
        i = [int(np.flatnonzero((images == im).all(axis=(1, 2)))[0]) for im in batch]
        return known[i]

    ids = np.array([0, 2, 3, 5])
    pairs = mine_hard_negatives(images, boxes, labels, ids, windows, scorer, C, per_image=7,
                                min_score=0.4, images_per_call=3)
    assert calls == [3, 1]
    for i in ids:
        got = pairs[pairs[:, 0] == i, 1]
        # Reference: brute force over every window with pycocotools' IoU.
        iou = coco_iou(windows, boxes[i]) if len(boxes[i]) else np.zeros((len(windows), 0))
        cls = known[i][:, :C].argmax(axis=1)
        score = known[i][np.arange(len(windows)), cls]
        eligible = [k for k in range(len(windows))
                    if score[k] >= 0.4 and (iou[k] < 0.5).all()]
        expected = sorted(eligible, key=lambda k: -score[k])[:7]
        assert got.tolist() == expected
    assert set(pairs[:, 0]) <= set(ids.tolist())


@pytest.mark.parametrize("share, batch", [(0.5, 16), (0.75, 16), (0.25, 10)])
def test_every_batch_holds_the_background_share(share, batch):
    rng = np.random.default_rng(2)
    labels = np.concatenate([rng.integers(0, C, 103), np.full(41, C)])
    order = balanced_order(labels, batch, share, C, rng)
    assert len(order) % batch == 0
    per_batch = (labels[order].reshape(-1, batch) == C).sum(axis=1)
    assert (per_batch == round(batch * share)).all()
    # Every positive appears in the epoch.
    assert set(np.flatnonzero(labels != C)) <= set(order.tolist())


def test_share_zero_is_the_sampled_mix_shuffled():
    rng = np.random.default_rng(3)
    labels = np.array([0, 1, 3, 3, 2, 3])
    order = balanced_order(labels, 4, 0.0, C, rng)
    assert sorted(order.tolist()) == list(range(6))


def test_a_share_with_no_background_to_draw_is_refused():
    with pytest.raises(ValueError, match="background"):
        balanced_order(np.array([0, 1, 2]), 4, 0.5, C, np.random.default_rng(0))


def test_near_misses_between_the_background_and_positive_iou_teach_neither_class():
    """By default a mined window must overlap every digit by IoU < 0.3, as the random background
    squares do: a near miss of IoU 0.3-0.5 is neither a digit nor background."""
    digit = np.array([[0.2, 0.2, 0.4, 0.4]])
    windows = np.array([[0.2, 0.25, 0.4, 0.45],  # IoU 0.6: a positive
                        [0.2, 0.28, 0.4, 0.48],  # IoU 0.43: a near miss
                        [0.2, 0.33, 0.4, 0.53],  # IoU 0.21: background
                        [0.7, 0.7, 0.9, 0.9]])  # nothing
    iou = coco_iou(windows, digit)[:, 0]
    assert iou[0] >= 0.5 and 0.3 <= iou[1] < 0.5 and iou[2] < 0.3 and iou[3] == 0
    probs = np.tile([[0.1, 0.8, 0.05, 0.05]], (4, 1))  # All called '1'; the digit is a '0'.
    ok, _ = eligible_windows(probs, windows, digit, np.array([0]), C)
    assert ok.tolist() == [False, False, True, True]
