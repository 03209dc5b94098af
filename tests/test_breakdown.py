"""decompnet_tf.eval.breakdown: AP50 by object size (the buckets as COCO area ranges, checked
against one pycocotools run per range), counting by true count and the category maps' recall
by size on hand-computed cases."""

import contextlib
import copy
import io

import numpy as np
import pytest

from decompnet_tf.eval import breakdown, coco

pytest.importorskip("pycocotools")

SIZE = (100, 100)
NUM_CLASSES = 3


def _sized_dataset(rng, n_images=40):
    """Integer-pixel boxes of sides 8-50 px; detections = jittered ground truth (so some cross
    a bucket edge), a duplicate, relabelled ones and false positives of every size."""
    gts, dets = [], []
    for _ in range(n_images):
        g = int(rng.integers(1, 5))
        side = rng.integers(8, 51, (g, 2))
        y0, x0 = rng.integers(0, 100 - side[:, 0] + 1), rng.integers(0, 100 - side[:, 1] + 1)
        gt_px = np.stack([y0, x0, y0 + side[:, 0], x0 + side[:, 1]], axis=1)
        gt_cls = rng.integers(0, NUM_CLASSES, g)
        gts.append({"boxes": gt_px / 100.0, "classes": gt_cls})
        src = np.concatenate([np.arange(g), rng.integers(0, g, 1)])
        d_px = gt_px[src] + rng.integers(-3, 4, (len(src), 4))
        d_cls = gt_cls[src].copy()
        flip = rng.random(len(src)) < 0.15
        d_cls[flip] = rng.integers(0, NUM_CLASSES, int(flip.sum()))
        n_fp = int(rng.integers(0, 3))
        fs = rng.integers(6, 50, n_fp)
        fy, fx = rng.integers(0, 100 - fs + 1), rng.integers(0, 100 - fs + 1)
        d_px = np.concatenate([d_px, np.stack([fy, fx, fy + fs, fx + fs], 1).reshape(-1, 4)])
        d_px = np.clip(d_px, 0, 100)
        d_px[:, 2:] = np.maximum(d_px[:, 2:], d_px[:, :2] + 1)
        dets.append({"boxes": d_px / 100.0, "scores": rng.random(len(d_px)),
                     "classes": np.concatenate([d_cls, rng.integers(0, NUM_CLASSES, n_fp)])})
    return gts, dets


def _pycocotools_ap50(gt_dict, det_list, area_rng, iou=0.5):
    """Per-category AP (101-point) of pycocotools at one IoU threshold (default 0.5) with one
    area range, NaN without gt."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt_dict)
        coco_gt.createIndex()
        ev = COCOeval(coco_gt, coco_gt.loadRes(copy.deepcopy(det_list)), "bbox")
        ev.params.iouThrs = np.array([iou])
        ev.params.areaRng, ev.params.areaRngLbl = [list(area_rng)], ["bucket"]
        ev.params.maxDets = [100]
        ev.evaluate()
        ev.accumulate()
    p = ev.eval["precision"][0, :, :, 0, 0]  # [R, K]
    return [float(p[:, k].mean()) if (p[:, k] > -1).all() else float("nan")
            for k in range(p.shape[1])]


def _sized(dets, gts, iou=0.5):
    """`ap_by_size` of the dataset at `iou`, as runner.compute_metrics runs it."""
    ev = coco.cocoeval(coco.to_coco_groundtruth(gts, SIZE), coco.to_coco_detections(dets, SIZE),
                       "bbox", breakdown.area_ranges(), breakdown.entry_areas(gts, SIZE),
                       breakdown.entry_areas(dets, SIZE), breakdown.SIZED_IOUS)
    return breakdown.ap_by_size(ev, NUM_CLASSES, iou)


def _own_size_ap(dets, gts, lo, hi):
    """The naive alternative: keep the ground truth and detections whose own size is in
    [lo, hi), then plain AP (101-point) per category."""
    def keep(e):
        s = breakdown.box_sizes(e["boxes"], SIZE)
        sel = (s >= lo) & (s < hi)
        return {k: np.asarray(v)[sel] for k, v in e.items()}

    kept_gts, kept_dets = [keep(g) for g in gts], [keep(d) for d in dets]
    ev = coco.cocoeval(coco.to_coco_groundtruth(kept_gts, SIZE),
                       coco.to_coco_detections(kept_dets, SIZE))
    r = coco.pr_curves(ev, 0.5)
    return [r[c]["ap_101"] for c in range(NUM_CLASSES)]


def test_ap_by_size_matches_pycocotools_area_ranges():
    gts, dets = _sized_dataset(np.random.default_rng(3))
    gt_dict = coco.to_coco_groundtruth(gts, SIZE)  # no masks: "area" is the box's
    det_list = coco.to_coco_detections(dets, SIZE)
    ours = _sized(dets, gts)
    assert list(ours) == ["<14", "14-20", "20-28", "28-40", ">=40"]
    checked = 0
    for (lo, hi), (label, bucket) in zip(breakdown.size_buckets(), ours.items()):
        # Integer px areas: [lo**2, hi**2 - 0.5] is the half-open [lo**2, hi**2).
        ref = _pycocotools_ap50(gt_dict, det_list, (lo**2, min(hi**2, 1e10) - 0.5))
        for c in range(NUM_CLASSES):
            r = bucket["per_category"][c]
            if np.isnan(ref[c]):
                assert np.isnan(r["ap_101"]) and r["num_gt"] == 0, (label, c)
                continue
            assert r["ap_101"] == pytest.approx(ref[c], abs=1e-12), (label, c)
            assert 0.0 <= r["ap_voc"] <= 1.0
            checked += 1
        assert bucket["ap_101_mean"] == pytest.approx(np.nanmean(ref), abs=1e-12)
    assert checked >= 12  # most (bucket, category) cells have ground truth
    assert 0.0 < ours["<14"]["ap_101_mean"] < 1.0
    # Filtering detections by their own size instead (a detection just across an edge from
    # its object becomes a false positive) gives other values, which the reference rejects.
    assert any(_own_size_ap(dets, gts, lo, hi)[c] != pytest.approx(
        ours[breakdown.bucket_label(lo, hi)]["per_category"][c]["ap_101"], abs=1e-6)
        for lo, hi in breakdown.size_buckets() for c in range(NUM_CLASSES)
        if ours[breakdown.bucket_label(lo, hi)]["per_category"][c]["num_gt"])
    assert sum(b["num_gt"] for b in ours.values()) == len(gt_dict["annotations"])

@pytest.mark.parametrize("iou", [0.1, 0.3])
def test_ap_by_size_at_a_looser_iou_matches_pycocotools(iou):
    gts, dets = _sized_dataset(np.random.default_rng(4))
    gt_dict, det_list = coco.to_coco_groundtruth(gts, SIZE), coco.to_coco_detections(dets, SIZE)
    ours, strict = _sized(dets, gts, iou), _sized(dets, gts)
    for (lo, hi), bucket in zip(breakdown.size_buckets(), ours.values()):
        ref = _pycocotools_ap50(gt_dict, det_list, (lo**2, min(hi**2, 1e10) - 0.5), iou)
        got = [bucket["per_category"][c]["ap_101"] for c in range(NUM_CLASSES)]
        np.testing.assert_allclose(got, ref, atol=1e-12)
    # Jittered boxes of small digits pass a looser threshold more often.
    assert ours["<14"]["ap_voc_mean"] > strict["<14"]["ap_voc_mean"]


def test_a_misplaced_box_counts_at_a_loose_iou_only():
    # One 10 px digit, its box shifted by 4 px on each axis: IoU 36/164 = 0.22.
    gts = [{"boxes": np.array([[0.2, 0.2, 0.3, 0.3]]), "classes": np.array([0])}]
    dets = [{"boxes": np.array([[0.24, 0.24, 0.34, 0.34]]), "scores": np.array([0.9]),
             "classes": np.array([0])}]
    ev = coco.cocoeval(coco.to_coco_groundtruth(gts, SIZE), coco.to_coco_detections(dets, SIZE),
                       "bbox", breakdown.area_ranges(), breakdown.entry_areas(gts, SIZE),
                       breakdown.entry_areas(dets, SIZE), breakdown.SIZED_IOUS)
    b = breakdown.breakdown(ev, dets, gts, ["3", "6", "9"], SIZE)
    assert b["ap50_by_size"]["<14"]["ap_voc_mean"] == 0.0
    assert b["ap_voc_mean_by_size_at_iou"]["0.1"]["<14"] == 1.0
    assert b["ap_voc_mean_by_size_at_iou"]["0.3"]["<14"] == 0.0
    lines = breakdown.breakdown_lines(b, ["3", "6", "9"])
    assert any(line.strip().startswith("all, IoU 0.1") for line in lines)


def test_ap_by_size_ignores_as_coco_does():
    # One 10 px object (bucket <14) and one 30 px object (bucket 28-40), both of category 0.
    gts = [{"boxes": np.array([[0, 0, 10, 10], [50, 50, 80, 80]]) / 100, "classes": [0, 0]}]
    dets = [{"boxes": np.array([[0, 0, 10, 10], [50, 50, 80, 80], [0, 60, 12, 72]]) / 100,
             "classes": [0, 0, 0], "scores": [0.5, 0.9, 0.95]}]
    out = _sized(dets, gts)
    small, large = out["<14"]["per_category"][0], out["28-40"]["per_category"][0]
    # <14: the 12 px false positive (0.95) ranks first -> precision 1/2 at recall 1.
    assert small["num_gt"] == 1 and small["num_det"] == 2 and small["ap_voc"] == 0.5
    # 28-40: the other two detections lie outside and match nothing in-bucket: ignored.
    assert large["num_gt"] == 1 and large["num_det"] == 1 and large["ap_voc"] == 1.0
    assert np.isnan(out["14-20"]["per_category"][0]["ap_voc"])
    assert np.isnan(out["14-20"]["ap_voc_mean"])


def test_counting_by_true_count_hand_case():
    true = np.array([[0, 1], [0, 3], [1, 1], [3, 0]])
    pred = np.array([[1, 1], [0, 2], [1, 0], [1, 0]])
    out = breakdown.counting_by_true_count(pred, true)
    assert out["true_count"] == [0, 1, 2, 3]
    assert out["pairs"] == [3, 3, 0, 2]
    # n=0: preds 1, 0, 0; n=1: preds 1, 1, 0; n=3: preds 2, 1.
    assert out["exact"][0] == pytest.approx(2 / 3)
    assert out["mean_signed_error"][0] == pytest.approx(1 / 3)
    assert out["exact"][1] == pytest.approx(2 / 3)
    assert out["mean_signed_error"][1] == pytest.approx(-1 / 3)
    assert np.isnan(out["exact"][2]) and np.isnan(out["mean_signed_error"][2])
    assert out["exact"][3] == 0.0 and out["mean_signed_error"][3] == -1.5


def test_category_map_recall_by_size_hand_case():
    # Maps at half the image size (4x4 for 8x8 images): each map pixel covers 2x2 image pixels.
    maps = np.zeros((4, 4, 2))
    maps[0, 0:2, 0] = 0.9   # image rows 0-1, cols 0-3 of category 0
    maps[2:4, 2:4, 1] = 0.5  # category 1: exactly at the threshold, so off
    masks = np.zeros((3, 8, 8), bool)
    masks[0, 0:2, 0:6] = True  # 12 px, 8 on in map 0: found
    masks[1, 0:2, 0:8] = True  # 16 px, 8 on (exactly half, not more): not found
    masks[2, 4:8, 4:8] = True  # category 1, map at the threshold: not found
    found = breakdown.found_in_category_maps(maps, masks, np.array([0, 0, 1]))
    np.testing.assert_array_equal(found, [True, False, False])
    # The same first mask in the wrong category's map is not found.
    assert not breakdown.found_in_category_maps(maps, masks[:1], np.array([1]))[0]
    assert breakdown.found_in_category_maps(maps, masks[:0], np.zeros(0)).shape == (0,)

    gts = [{"boxes": np.array([[0, 0, 0.1, 0.1], [0, 0, 0.15, 0.15]])},
           {"boxes": np.array([[0, 0, 0.12, 0.12], [0, 0, 0.5, 0.5]])}]
    rec = breakdown.recall_by_size([np.array([True, False]), np.array([False, True])], gts,
                                   SIZE)
    assert rec["<14"] == {"recall": 0.5, "num_gt": 2}  # 10 px found, 12 px not
    assert rec["14-20"] == {"recall": 0.0, "num_gt": 1}
    assert rec[">=40"] == {"recall": 1.0, "num_gt": 1}
    assert np.isnan(rec["20-28"]["recall"]) and rec["20-28"]["num_gt"] == 0


def test_breakdown_lines_print_every_bucket_and_count():
    gts, dets = _sized_dataset(np.random.default_rng(1), n_images=6)
    found = [np.ones(len(g["classes"]), bool) for g in gts]
    ev = coco.cocoeval(coco.to_coco_groundtruth(gts, SIZE), coco.to_coco_detections(dets, SIZE),
                       "bbox", breakdown.area_ranges(), breakdown.entry_areas(gts, SIZE),
                       breakdown.entry_areas(dets, SIZE))
    b = breakdown.breakdown(ev, dets, gts, ["3", "6", "9"], SIZE, found)
    lines = breakdown.breakdown_lines(b, ["3", "6", "9"])
    assert "<14" in lines[0] and ">=40" in lines[0]
    assert lines[1].split()[0] == "all" and lines[2].split()[0] == "'3'"
    assert any(line.strip().startswith("category-map recall") for line in lines)
    assert lines[-4].startswith("counting by true count n") and lines[-4].split()[-1] == str(
        b["counting_by_true_count"]["true_count"][-1])
    assert lines[-1].strip().startswith("mean error (emitted - true)")
    assert b["size_edges_px"] == list(breakdown.SIZE_EDGES)


def test_box_sizes_of_float32_boxes_on_an_edge_are_exact():
    # The datasets store float32 coordinates: a 14 px side is 13.99999... or 14.00000... px.
    starts = np.arange(0, 60)
    for side in breakdown.SIZE_EDGES:
        boxes = np.stack([starts, starts, starts + side, starts + side], 1) / 100
        raw = (boxes.astype(np.float32)[:, 2].astype(np.float64)
               - boxes.astype(np.float32)[:, 0]) * 100
        assert (raw < side).any()  # the noise the rounding absorbs
        np.testing.assert_array_equal(breakdown.box_sizes(boxes.astype(np.float32), SIZE), side)
