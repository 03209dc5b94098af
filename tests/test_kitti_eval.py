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
                           "truncated": np.array([0.1]), "difficulty": np.array([1])},
               "ignore": {"bbox": np.array([van, region]), "type": np.array([1, 0])}}
    g = groundtruth_from_example(example, ["DontCare", "Car", "Van"][:1] + ["Van"])
    np.testing.assert_allclose(g["boxes"], [car, van])
    assert g["neighbour"].tolist() == [False, True] and g["occluded"].tolist() == [1, 0]
    assert g["difficulty"].tolist() == [1, -1]
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


def test_ground_truth_at_the_minimum_height_is_ignored_as_in_the_devkit():
    """evaluate_object.cpp ignores a ground truth with height<=MIN_HEIGHT: a car exactly 25.00
    px tall is ignored at moderate and hard, one 25.01 px tall counts; 40.00 is not easy."""
    def num_gt(height, level, **extra):
        g = {**gt(boxes=([100.0, 100.0, 100.0 + height, 200.0],), heights=(height,)), **extra}
        return kitti_ap([det(scores=())], [g], level)["num_gt"]

    assert [num_gt(25.0, level) for level in (1, 2)] == [0, 0]
    assert [num_gt(25.01, level) for level in (1, 2)] == [1, 1]
    assert (num_gt(40.0, 0), num_gt(40.0, 1), num_gt(40.01, 0)) == (0, 1, 1)
    # A detection exactly 25 px tall is not ignored (the devkit: height<MIN_HEIGHT).
    dets, gts = forty_perfect()
    dets[0] = det(boxes=(CAR, [300.0, 300.0, 325.0, 400.0]), scores=(1.0, 1.5))
    assert kitti_ap(dets, gts, level=1)["ap_r40"] < 39 / 40  # a counted false positive
    # The builder's difficulty, when given, decides instead (nested levels: counted from it up).
    assert [num_gt(25.0, level, difficulty=np.array([1])) for level in (0, 1, 2)] == [0, 1, 1]
    assert [num_gt(50.0, level, difficulty=np.array([-1])) for level in (0, 1, 2)] == [0, 0, 0]


def test_result_lines_in_the_devkit_format():
    from decompnet_tf.eval.kitti import result_lines

    lines = result_lines([[173.33, 587.01, 200.12, 614.12], [0.0, 0.5, 10.0, 20.25]],
                         [0.912345678, 0.05])
    assert lines == [
        "Car -1 -1 -10 587.0100 173.3300 614.1200 200.1200 -1 -1 -1 -1000 -1000 -1000 -10 "
        "0.912346",
        "Car -1 -1 -10 0.5000 0.0000 20.2500 10.0000 -1 -1 -1 -1000 -1000 -1000 -10 0.050000"]
    assert result_lines(np.zeros((0, 4)), []) == []
    with pytest.raises(ValueError, match="2 boxes but 1 scores"):
        result_lines(np.zeros((2, 4)), [0.5])


def test_write_results_in_original_pixels(tmp_path):
    from decompnet_tf.data.kitti_labels import parse_label_file
    from decompnet_tf.eval.kitti import detections_for_class, write_results

    folder = tmp_path / "kitti_results"
    folder.mkdir()
    (folder / "000099.txt").write_text("stale\n")  # an earlier run's image: removed
    (folder / "notes.md").write_text("kept\n")
    # A 768 x 2496 original was scaled by 0.5 onto the 384 x 1248 canvas.
    big = detections_for_class([[0.25, 0.5, 0.5, 0.75], [0.1, 0.1, 0.2, 0.2]], [0.9, 0.4],
                               [0, 1], (384, 1248), (768, 2496), image_id=b"000042")
    np.testing.assert_allclose(big["pixel_boxes"], [[192.0, 1248.0, 384.0, 1872.0]])
    np.testing.assert_allclose(big["heights"], [192.0])
    empty = detections_for_class(np.zeros((0, 4)), [], [], (384, 1248), (375, 1242),
                                 image_id="7")
    paths = write_results(str(folder), [big, empty])
    assert [p.rsplit("/", 1)[1] for p in paths] == ["000042.txt", "000007.txt"]
    assert sorted(p.name for p in folder.iterdir()) == ["000007.txt", "000042.txt", "notes.md"]
    (obj,) = parse_label_file(open(paths[0]).read())
    assert obj.type == "Car" and obj.box == (1248.0, 192.0, 1872.0, 384.0) and obj.score == 0.9
    assert open(paths[1]).read() == ""
    with pytest.raises(ValueError, match="not a KITTI image id"):
        write_results(str(folder), [detections_for_class([], [], [], (384, 1248), (375, 1242))])
    with pytest.raises(ValueError, match="appears twice"):
        write_results(str(folder), [empty, empty])
