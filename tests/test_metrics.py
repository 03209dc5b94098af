"""Tests for decompnet_tf.eval.metrics (tiny, NumPy only)."""

import warnings

import numpy as np
import pytest

from decompnet_tf.eval import metrics

# Three well-separated ground-truth boxes of class 0 in one image (normalised yxyx).
GT_BOXES = np.array([[0.0, 0.0, 0.2, 0.2], [0.4, 0.4, 0.6, 0.6], [0.8, 0.8, 1.0, 1.0]])
FAR_BOX = np.array([0.0, 0.7, 0.1, 0.8])  # overlaps no ground truth


def _mask_iou_loop(a, b):
    out = np.zeros((len(a), len(b)))
    for i in range(len(a)):
        for j in range(len(b)):
            union = np.logical_or(a[i], b[j]).sum()
            out[i, j] = np.logical_and(a[i], b[j]).sum() / union if union else 0.0
    return out


def _iou_lookup(table):
    """An iou_fn reading a fixed [D, G] table through integer 'boxes' (avoids TensorFlow)."""

    def fn(d, g):
        return table[np.ix_(d[:, 0].astype(int), g[:, 0].astype(int))]

    return fn


def _ids(n):
    return np.repeat(np.arange(n, dtype=np.float64)[:, None], 4, axis=1)


def test_mask_iou_matches_loop(rng):
    a = rng.random((4, 9, 7)) < 0.4
    b = rng.random((5, 9, 7)) < 0.3
    b[0] = False  # an empty mask
    a[1] = b[2]  # an exact copy -> IoU 1
    got = metrics.mask_iou(a, b)
    np.testing.assert_allclose(got, _mask_iou_loop(a, b), atol=1e-12)
    assert got[1, 2] == 1.0
    assert metrics.mask_iou(a[:0], b).shape == (0, 5)
    assert metrics.mask_iou(np.zeros((1, 3, 3), bool), np.zeros((1, 3, 3), bool))[0, 0] == 0.0


def test_match_detections_duplicates_and_greedy():
    # One gt, three detections: only the highest-scored one (iou .6 >= .5) is a TP.
    tp = metrics.match_detections(np.array([0.5, 0.9, 0.7]), np.array([[0.9], [0.6], [0.8]]), 0.5)
    np.testing.assert_array_equal(tp, [True, False, False])
    # The 0.9 detection takes gt1 (its best); the 0.8 one falls back to unmatched gt0 (.55).
    tp = metrics.match_detections(np.array([0.9, 0.8]), np.array([[0.6, 0.7], [0.55, 0.9]]), 0.5)
    np.testing.assert_array_equal(tp, [True, True])
    # The threshold is inclusive; no ground truth -> all false positives.
    assert metrics.match_detections(np.array([1.0]), np.array([[0.5]]), 0.5).tolist() == [True]
    assert metrics.match_detections(np.array([1.0, 0.5]), np.zeros((2, 0)), 0.5).tolist() == [
        False,
        False,
    ]


def test_hand_computed_mix():
    # 3 gts; detections at scores .9 TP, .8 FP, .7 TP, .6 FP.
    #   precision = 1/1, 1/2, 2/3, 2/4;   recall = 1/3, 1/3, 2/3, 2/3
    #   envelope  = 1,   2/3, 2/3, 1/2
    #   VOC all-point AP = 1/3 * 1 + 1/3 * 2/3 = 5/9
    #   COCO 101-point: thresholds 0..0.33 (34 of them) -> 1, 0.34..0.66 (33) -> 2/3, rest 0
    #     -> (34 + 33 * 2/3) / 101 = 56/101
    #   recall at precision >= .84: only the first point -> 1/3; at >= .6 -> 2/3.
    # Listed out of score order on purpose: .8 FP, .7 TP, .9 TP, .6 FP.
    boxes = np.stack([FAR_BOX, GT_BOXES[1], GT_BOXES[0], FAR_BOX])
    scores = np.array([0.8, 0.7, 0.9, 0.6])
    dets = [{"boxes": boxes, "classes": np.zeros(4, int), "scores": scores}]
    gts = [{"boxes": GT_BOXES, "classes": np.zeros(3, int)}]
    res = metrics.evaluate_detections(dets, gts, 3)[0]  # default box IoU
    np.testing.assert_array_equal(res["tp"], [True, False, True, False])
    np.testing.assert_allclose(res["precision"], [1, 1 / 2, 2 / 3, 1 / 2])
    np.testing.assert_allclose(res["recall"], [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert res["ap_voc"] == pytest.approx(5 / 9)
    assert res["ap_101"] == pytest.approx(56 / 101)
    assert res["num_gt"] == 3 and res["num_det"] == 4
    p, r = res["precision"], res["recall"]
    assert metrics.recall_at_precision(p, r, 0.84) == pytest.approx(1 / 3)
    assert metrics.recall_at_precision(p, r, 0.6) == pytest.approx(2 / 3)
    assert metrics.recall_at_precision(p, r, 1.01) == 0.0


def test_perfect_wrong_class_and_duplicates():
    gts = [{"boxes": _ids(3), "classes": np.array([0, 0, 1])}]
    table = np.eye(3)  # det k overlaps gt k only
    fn = _iou_lookup(table)
    perfect = [
        {"boxes": _ids(3), "classes": np.array([0, 0, 1]), "scores": np.array([0.9, 0.8, 0.7])}
    ]
    res = metrics.evaluate_detections(perfect, gts, 3, iou_fn=fn)
    for c in (0, 1):
        assert res[c]["ap_voc"] == 1.0 and res[c]["ap_101"] == 1.0
    assert np.isnan(res[2]["ap_voc"]) and np.isnan(res[2]["ap_101"])  # class 2 has no gt
    assert metrics.mean_ap(res) == 1.0

    wrong = [
        {"boxes": _ids(3), "classes": np.array([1, 2, 0]), "scores": np.array([0.9, 0.8, 0.7])}
    ]
    res = metrics.evaluate_detections(wrong, gts, 3, iou_fn=fn)
    assert res[0]["ap_voc"] == 0.0 and res[1]["ap_101"] == 0.0
    assert res[2]["num_det"] == 1 and np.isnan(res[2]["ap_voc"])
    assert np.isnan(res[2]["recall"]).all() and res[2]["precision"].tolist() == [0.0]

    # Two duplicates of gt0 (scores .9, .8), then gt1 at .7: TP, FP, TP.
    table = np.array([[1.0, 0.0, 0.0], [0.9, 0.0, 0.0], [0.0, 1.0, 0.0]])
    dup = [{"boxes": _ids(3), "classes": np.zeros(3, int), "scores": np.array([0.9, 0.8, 0.7])}]
    res = metrics.evaluate_detections(dup, gts, 3, iou_fn=_iou_lookup(table))[0]
    np.testing.assert_array_equal(res["tp"], [True, False, True])
    assert res["ap_voc"] == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_sorting_across_images_and_max_dets():
    # Image 0: a TP at .5; image 1: an FP at .9 -> dataset order FP, TP.
    gts = [{"boxes": _ids(1), "classes": [0]}, {"boxes": _ids(0), "classes": []}]
    dets = [
        {"boxes": _ids(1), "classes": [0], "scores": [0.5]},
        {"boxes": _ids(1), "classes": [0], "scores": [0.9]},
    ]
    res = metrics.evaluate_detections(dets, gts, 1, iou_fn=_iou_lookup(np.ones((1, 1))))[0]
    np.testing.assert_array_equal(res["scores"], [0.9, 0.5])
    np.testing.assert_array_equal(res["tp"], [False, True])
    assert res["ap_voc"] == pytest.approx(0.5)
    res = metrics.evaluate_detections(
        dets, gts, 1, iou_fn=_iou_lookup(np.ones((1, 1))), max_dets=0
    )[0]
    assert res["num_det"] == 0 and res["ap_voc"] == 0.0


def test_envelope_monotone(rng):
    tp = rng.random(200) < 0.4
    precision, recall = metrics.pr_curve(tp, 100)
    env = metrics.precision_envelope(precision)
    assert np.all(np.diff(env) <= 0)
    assert np.all(env >= precision)
    assert np.all(np.diff(recall) >= 0)
    assert metrics.precision_envelope(np.zeros(0)).shape == (0,)


def test_segm_on_masks():
    masks = np.zeros((2, 8, 8), bool)
    masks[0, :4, :4] = True
    masks[1, 4:, 4:] = True
    gts = [{"masks": masks, "classes": [0, 1]}]
    half = masks.copy()
    half[0, :2] = False  # IoU .5 with gt0
    dets = [{"masks": half, "classes": [0, 1], "scores": [0.9, 0.8]}]
    res = metrics.evaluate_detections(dets, gts, 2, iou_threshold=0.5, iou_type="segm")
    assert res[0]["ap_voc"] == 1.0 and res[1]["ap_voc"] == 1.0
    res = metrics.evaluate_detections(dets, gts, 2, iou_threshold=0.75, iou_type="segm")
    assert res[0]["ap_voc"] == 0.0 and res[1]["ap_voc"] == 1.0


def test_empty_cases_never_raise():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (mean of empty slice, 0/0)
        masks = np.zeros((0, 5, 5), bool)
        gts = [{"masks": np.ones((1, 5, 5), bool), "classes": [1]}]
        dets = [{"masks": masks, "classes": np.zeros(0, int), "scores": np.zeros(0)}]
        res = metrics.evaluate_detections(dets, gts, 3, iou_type="segm")
        assert res[1]["ap_voc"] == 0.0 and res[1]["ap_101"] == 0.0 and res[1]["num_gt"] == 1
        assert res[1]["precision"].shape == (0,)
        assert np.isnan(res[0]["ap_voc"]) and np.isnan(res[2]["ap_101"])
        assert metrics.mean_ap(res) == 0.0
        empty = metrics.evaluate_detections([], [], 3)
        assert np.isnan(metrics.mean_ap(empty, "ap_101"))
        assert metrics.recall_at_precision(np.zeros(0), np.zeros(0)) == 0.0
        assert metrics.ap_voc(np.zeros(0), np.zeros(0)) == 0.0
        assert metrics.ap_101(np.zeros(0), np.zeros(0)) == 0.0
        assert metrics.match_detections(np.zeros(0), np.zeros((0, 2)), 0.5).shape == (0,)
        c = metrics.counting_metrics(np.zeros((0, 3)), np.zeros((0, 3)))
        assert np.isnan(c["accuracy"]) and np.isnan(c["mae_per_class"]).all()


def test_counting_metrics_hand_case():
    pred = np.array([[1, 2, 0], [3, 0, 1]])
    true = np.array([[1, 1, 0], [1, 0, 1]])
    # exact on 4 of 6 pairs; absolute errors 0,1,0,2,0,0 -> mae 3/6
    c = metrics.counting_metrics(pred, true)
    assert c["accuracy"] == pytest.approx(4 / 6)
    assert c["mae"] == pytest.approx(0.5)
    np.testing.assert_allclose(c["accuracy_per_class"], [0.5, 0.5, 1.0])
    np.testing.assert_allclose(c["mae_per_class"], [1.0, 0.5, 0.0])
    entries = [
        {"classes": [0, 1, 1], "scores": [0.9, 0.2, 0.6]},
        {"classes": [], "scores": []},
    ]
    np.testing.assert_array_equal(metrics.count_per_class(entries, 3), [[1, 2, 0], [0, 0, 0]])
    np.testing.assert_array_equal(
        metrics.count_per_class(entries, 3, score_threshold=0.5), [[1, 1, 0], [0, 0, 0]]
    )
