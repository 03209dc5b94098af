"""KITTI's evaluation protocol on hand-constructed cases (decompnet_tf/eval/kitti.py)."""

import numpy as np
import pytest

from decompnet_tf.eval.kitti import _thresholds, kitti_ap

CAR = np.array([100.0, 100.0, 150.0, 200.0])  # pixels (ymin, xmin, ymax, xmax): 50 px high


def gt(boxes=(CAR,), heights=(50,), occluded=(0,), truncated=(0.0,), neighbour=(False,),
       dontcare=()):
    return {"boxes": np.array(boxes, float).reshape(-1, 4), "heights": np.array(heights, float),
            "occluded": np.array(occluded), "truncated": np.array(truncated, float),
            "neighbour": np.array(neighbour, bool),
            "dontcare": np.array(dontcare, float).reshape(-1, 4)}


def det(boxes=(CAR,), scores=(0.9,), heights=None):
    boxes = np.array(boxes, float).reshape(-1, 4)
    h = boxes[:, 2] - boxes[:, 0] if heights is None else np.array(heights, float)
    return {"boxes": boxes, "scores": np.array(scores, float), "heights": h}


def forty_perfect():
    """40 images, one easy car each, found exactly with scores 1.0, 0.99, ..., 0.61."""
    return [det(scores=(1.0 - i / 100,)) for i in range(40)], [gt() for _ in range(40)]


def test_devkit_threshold_sampling():
    # n_gt = 40: every true positive moves recall by exactly one sample step: 40 thresholds.
    assert len(_thresholds(np.linspace(1, 0.61, 40), 40)) == 40
    # n_gt = 400 with 40 true positives (scores 40/40 ... 1/40): the k-th threshold (current
    # recall k/40) is taken at the first index i with (i+1)/400 + (i+2)/400 >= 2k/40, i.e.
    # i >= 10k - 1.5: i = 0, 9, 19, 29, then 39, the last, which is always taken.
    assert _thresholds(np.arange(40, 0, -1) / 40, 400) == [1.0, 0.775, 0.525, 0.275, 0.025]


def test_perfect_detections():
    dets, gts = forty_perfect()
    r = kitti_ap(dets, gts, level=0)
    # Thresholds 0..39 all have precision 1; slot 40 (never reached with 40 cars) is 0.
    assert r["ap_r40"] == pytest.approx(39 / 40)
    assert r["ap_r11"] == pytest.approx(10 / 11)  # slots 0, 4, ..., 36 are 1; slot 40 is 0
    assert r["num_gt"] == 40


def test_false_positive_above_all_scores():
    dets, gts = forty_perfect()
    far = np.array([300.0, 300.0, 350.0, 400.0])
    dets[0] = det(boxes=(CAR, far), scores=(1.0, 1.5))
    r = kitti_ap(dets, gts, level=0)
    # At threshold k (k + 1 true positives) the FP always counts: precision (k+1)/(k+2),
    # already non-increasing from the right once the envelope is taken.
    precision = np.array([(k + 1) / (k + 2) for k in range(40)] + [0.0])
    envelope = np.maximum.accumulate(precision[::-1])[::-1]
    assert r["ap_r40"] == pytest.approx(envelope[1:].sum() / 40)
    assert r["ap_r11"] == pytest.approx(envelope[::4].sum() / 11)


def test_dontcare_vans_and_small_detections_are_neither_rewarded_nor_penalised():
    dets, gts = forty_perfect()
    van = np.array([300.0, 300.0, 350.0, 400.0])
    region = np.array([0.0, 500.0, 100.0, 700.0])
    inside = np.array([10.0, 520.0, 60.0, 600.0])  # fully inside the DontCare region
    tiny = np.array([400.0, 0.0, 420.0, 30.0])  # 20 px high: below every difficulty's minimum
    gts[0] = gt(boxes=(CAR, van), heights=(50, 50), occluded=(0, 0), truncated=(0, 0),
                neighbour=(False, True), dontcare=(region,))
    dets[0] = det(boxes=(CAR, van, inside, tiny), scores=(1.0, 1.5, 1.4, 1.3))
    assert kitti_ap(dets, gts, level=0)["ap_r40"] == pytest.approx(39 / 40)


def test_difficulty_decides_which_cars_count():
    dets, gts = forty_perfect()
    occluded_car = np.array([300.0, 300.0, 340.0, 400.0])  # 40 px high, largely occluded
    for i in range(20):  # 20 missed, largely occluded cars: they count only for "hard".
        gts[i] = gt(boxes=(CAR, occluded_car), heights=(50, 40), occluded=(0, 2),
                    truncated=(0, 0), neighbour=(False, False))
    easy, hard = kitti_ap(dets, gts, level=0), kitti_ap(dets, gts, level=2)
    assert easy["num_gt"] == 40 and easy["ap_r40"] == pytest.approx(39 / 40)
    assert hard["num_gt"] == 60 and hard["recall"].max() == pytest.approx(40 / 60)
    # Precision stays 1 at every sampled threshold, so AP_R40 = (thresholds - 1) / 40. With 60
    # cars, the k-th threshold (current recall k/40) is taken at the first TP index i with
    # (i+1)/60 + (i+2)/60 >= 2k/40, i.e. i >= 1.5k - 1.5: k = 0..26 fit below the last index
    # 39 (k = 26 at i = 38), and the last TP is always taken: 28 thresholds.
    n = len(_thresholds(np.array([1.0 - i / 100 for i in range(40)]), 60))
    assert n == 28
    assert hard["ap_r40"] == pytest.approx((n - 1) / 40)


def test_overlap_must_exceed_0_7_and_no_ground_truth_gives_nan():
    shifted = CAR + np.array([0, 25, 0, 25])  # IoU = 75 / 125 = 0.6 < 0.7
    r = kitti_ap([det(boxes=(shifted,))], [gt()], level=0)
    assert r["ap_r11"] == 0.0 and r["ap_r40"] == 0.0
    assert np.isnan(kitti_ap([det()], [gt(boxes=(), heights=(), occluded=(), truncated=(),
                                          neighbour=())], level=0)["ap_r40"])


def test_adapters_from_builder_example():
    from decompnet_tf.eval.kitti import detections_for_class, groundtruth_from_example

    car, van, region = [0.2, 0.1, 0.4, 0.3], [0.5, 0.5, 0.6, 0.7], [0.0, 0.0, 0.1, 0.1]
    example = {"objects": {"bbox": np.array([car]), "label": np.array([0]),
                           "height": np.array([76.8]), "occluded": np.array([1]),
                           "truncated": np.array([0.1])},
               "ignore": {"bbox": np.array([van, region]), "type": np.array([1, 0])}}
    g = groundtruth_from_example(example, ["DontCare", "Car", "Van"][:1] + ["Van"])
    np.testing.assert_allclose(g["boxes"], [car, van])
    assert g["neighbour"].tolist() == [False, True] and g["occluded"].tolist() == [1, 0]
    np.testing.assert_allclose(g["dontcare"], [region])
    # Canvas 384 high, the image 375 high: scale 1, so a box 0.2 high is 76.8 px.
    d = detections_for_class([car, van], [0.9, 0.8], [0, 1], (384, 1248), (375, 1242))
    np.testing.assert_allclose(d["heights"], [76.8])
    assert d["scores"].tolist() == [0.9]
    # Half-size original scale: a 768-px-high original was scaled by 0.5 into the canvas.
    d = detections_for_class([car], [0.9], [0], (384, 1248), (768, 2484))
    np.testing.assert_allclose(d["heights"], [153.6])
    # The example's car found exactly in 40 images (as test_perfect_detections): AP 39/40
    # at moderate (occlusion 1, 76.8 px), NaN at easy (occlusion 0 only).
    found = [detections_for_class([car], [1.0 - i / 100], [0], (384, 1248), (375, 1242))
             for i in range(40)]
    assert kitti_ap(found, [g] * 40, 1)["ap_r40"] == pytest.approx(39 / 40)  # as above
    assert np.isnan(kitti_ap(found, [g] * 40, 0)["ap_r40"])
