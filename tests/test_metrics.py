"""decompnet_tf.eval.metrics: the curves, VOC AP, the paper's recall point and counting, on
hand-computed cases (the matching is pycocotools', tests/test_coco.py)."""

import warnings

import numpy as np
import pytest

from decompnet_tf.eval import metrics


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


def test_envelope_monotone(rng):
    tp = rng.random(200) < 0.4
    precision, recall = metrics.pr_curve(tp, 100)
    env = metrics.precision_envelope(precision)
    assert np.all(np.diff(env) <= 0)
    assert np.all(env >= precision)
    assert np.all(np.diff(recall) >= 0)
    assert metrics.precision_envelope(np.zeros(0)).shape == (0,)


def test_empty_cases_never_raise():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning (mean of empty slice, 0/0)
        assert metrics.recall_at_precision(np.zeros(0), np.zeros(0)) == 0.0
        assert metrics.ap_voc(np.zeros(0), np.zeros(0)) == 0.0
        p, r = metrics.pr_curve(np.zeros(3, bool), 0)  # no ground truth: NaN, not 0/0
        assert np.isnan(r).all() and np.isnan(metrics.ap_voc(p, r))
        assert np.isnan(metrics.recall_at_precision(p, r))
        assert np.isnan(metrics.mean_ap({0: {"ap_voc": float("nan")}}))
        assert metrics.mean_ap({0: {"ap_voc": float("nan")}, 1: {"ap_voc": 0.5}}) == 0.5
        c = metrics.counting_metrics(np.zeros((0, 3)), np.zeros((0, 3)))
        assert np.isnan(c["accuracy"]) and np.isnan(c["mae_per_class"]).all()


def test_voc_ap_and_recall_point_by_hand():
    # TP, FP, TP, FP of 3 objects: envelope 1, 2/3, 2/3, 1/2 -> AP 1/3 * 1 + 1/3 * 2/3.
    p, r = metrics.pr_curve(np.array([True, False, True, False]), 3)
    assert metrics.ap_voc(p, r) == pytest.approx(5 / 9)
    assert metrics.recall_at_precision(p, r, 0.84) == pytest.approx(1 / 3)
    assert metrics.recall_at_precision(p, r, 0.6) == pytest.approx(2 / 3)
    assert metrics.recall_at_precision(p, r, 1.01) == 0.0


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
