"""decompnet_tf.eval.coco: COCO export, pycocotools' evaluation and the curves drawn from its
matches, against a plain reference and hand-computed cases."""

import json

import numpy as np
import pytest

pytest.importorskip("pycocotools")

from pycocotools import mask as mask_utils  # noqa: E402

from decompnet_tf.eval import coco, metrics  # noqa: E402

SIZE = (40, 48)  # (H, W)
NUM_CLASSES = 3


def _fill(boxes_px, size, rng, dropout):
    """Integer pixel yxyx boxes [N, 4] -> filled masks [N, H, W] with a few holes."""
    masks = np.zeros((len(boxes_px), *size), bool)
    for k, (y0, x0, y1, x1) in enumerate(boxes_px):
        masks[k, y0:y1, x0:x1] = True
    if dropout:
        masks &= rng.random(masks.shape) >= dropout
    return masks


def _random_dataset(rng, n_images=20, with_masks=False):
    """Random gts, and detections = jittered gts (some relabelled/duplicated) + random FPs."""
    h, w = SIZE
    scale = np.array([h, w, h, w], dtype=np.float64)
    gts, dets = [], []
    for _ in range(n_images):
        g = int(rng.integers(0, 6))
        y0, x0 = rng.integers(0, h - 6, g), rng.integers(0, w - 6, g)
        y1 = np.minimum(y0 + rng.integers(5, 16, g), h)
        x1 = np.minimum(x0 + rng.integers(5, 16, g), w)
        gt_px = np.stack([y0, x0, y1, x1], axis=1).reshape(-1, 4)
        gt_cls = rng.integers(0, NUM_CLASSES, g)
        gt = {"boxes": gt_px / scale, "classes": gt_cls}
        if with_masks:
            gt["masks"] = _fill(gt_px, SIZE, rng, 0.1)
        gts.append(gt)

        src = np.concatenate([np.arange(g), rng.integers(0, max(g, 1), int(g > 0))])  # + 1 dup
        d_px = gt_px[src] + rng.integers(-3, 4, (len(src), 4))
        d_cls = gt_cls[src].copy()
        flip = rng.random(len(src)) < 0.15
        d_cls[flip] = rng.integers(0, NUM_CLASSES, int(flip.sum()))
        n_fp = int(rng.integers(0, 4))
        fy, fx = rng.integers(0, h - 6, n_fp), rng.integers(0, w - 6, n_fp)
        fp_px = np.stack([fy, fx, fy + 6, fx + 8], axis=1).reshape(-1, 4)
        d_px = np.concatenate([d_px, fp_px])
        d_px[:, 0::2] = np.clip(d_px[:, 0::2], 0, h)
        d_px[:, 1::2] = np.clip(d_px[:, 1::2], 0, w)
        d_px[:, 2:] = np.maximum(d_px[:, 2:], d_px[:, :2] + 1)
        det = {
            "boxes": d_px / scale,
            "classes": np.concatenate([d_cls, rng.integers(0, NUM_CLASSES, n_fp)]),
            "scores": rng.random(len(d_px)),
        }
        if with_masks:
            det["masks"] = _fill(d_px, SIZE, rng, 0.1)
        dets.append(det)
    return gts, dets


def test_groundtruth_and_detection_export():
    masks = np.zeros((1, 50, 100), bool)
    masks[0, 5:25, 20:60] = True
    gts = [{"boxes": np.array([[0.1, 0.2, 0.5, 0.6]]), "classes": [2], "masks": masks}]
    gt = coco.to_coco_groundtruth(gts, (50, 100))
    (ann,) = gt["annotations"]
    assert ann["bbox"] == pytest.approx([20.0, 5.0, 40.0, 20.0])
    assert ann["category_id"] == 3 and ann["id"] == 1 and ann["image_id"] == 1
    assert ann["area"] == 800.0 and ann["iscrowd"] == 0
    assert isinstance(ann["segmentation"]["counts"], str)
    np.testing.assert_array_equal(mask_utils.decode(ann["segmentation"]), masks[0])
    assert [c["id"] for c in gt["categories"]] == [1, 2, 3]
    assert [c["name"] for c in gt["categories"]] == ["3", "6", "9"]
    json.dumps(gt)

    dets = [{"masks": masks, "classes": [0], "scores": [0.5]}]  # box from the mask
    (res,) = coco.to_coco_detections(dets, (50, 100), with_masks=True)
    assert res["bbox"] == pytest.approx([20.0, 5.0, 40.0, 20.0])
    assert res["category_id"] == 1 and res["score"] == 0.5
    json.dumps(res)
    no_masks = coco.to_coco_groundtruth([{"boxes": gts[0]["boxes"], "classes": [0]}], (50, 100))
    assert "segmentation" not in no_masks["annotations"][0]
    assert no_masks["annotations"][0]["area"] == pytest.approx(800.0)
    with pytest.raises(ValueError):
        coco.coco_evaluate(no_masks, [], "segm")


def _reference_voc_ap(dets, gts, c, iou_threshold, iou_type):
    """VOC all-point AP of class `c`, written out plainly: per image, detections best first
    each take the unmatched ground truth of highest IoU (>= the threshold, ties to the last);
    all detections then sorted by score (stable: image order, then rank in the image)."""
    def iou(a, b):
        if iou_type == "segm":
            inter = np.logical_and(a, b).sum()
            union = np.logical_or(a, b).sum()
            return inter / union if union else 0.0
        ih = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        iw = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - ih * iw
        return ih * iw / union if union else 0.0

    key = "masks" if iou_type == "segm" else "boxes"
    scored, num_gt = [], 0
    for det, gt in zip(dets, gts):
        g = [x for x, k in zip(gt[key], gt["classes"]) if k == c]
        num_gt += len(g)
        d = [(s, x) for s, x, k in zip(det["scores"], det[key], det["classes"]) if k == c]
        d = sorted(d, key=lambda t: -t[0])  # Python's sort is stable.
        taken = set()
        for s, x in d:
            best, j = iou_threshold - 1e-12, None
            for i, y in enumerate(g):
                v = iou(x, y)
                if i not in taken and v >= best:
                    best, j = v, i
            if j is not None:
                taken.add(j)
            scored.append((s, j is not None))
    scored.sort(key=lambda t: -t[0])
    tp = np.cumsum([t for _, t in scored])
    precision = tp / np.arange(1, len(tp) + 1)
    recall = tp / num_gt
    ap, prev = 0.0, 0.0
    for k in range(len(tp)):
        ap += (recall[k] - prev) * precision[k:].max()
        prev = recall[k]
    return ap


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_curves_from_cocoeval_match_a_plain_reference(iou_type):
    """The curves and VOC AP drawn from pycocotools' per-image matches (`pr_curves`) against
    the matching written out plainly, at three IoU thresholds; COCO's own 101-point AP50 is
    what `summary` reports."""
    rng = np.random.default_rng(7)
    with_masks = iou_type == "segm"
    gts, dets = _random_dataset(rng, with_masks=with_masks)
    gt_dict = coco.to_coco_groundtruth(gts, SIZE)
    det_list = coco.to_coco_detections(dets, SIZE, with_masks=with_masks)
    snapshot = json.dumps([gt_dict, det_list])
    ev = coco.cocoeval(gt_dict, det_list, iou_type)
    assert json.dumps([gt_dict, det_list]) == snapshot  # inputs untouched
    ref = coco.summary(ev, gt_dict["categories"])
    mixed = 0
    for t in (0.5, 0.7, 0.9):
        curves = coco.pr_curves(ev, t)
        for c, name in enumerate(coco.DEFAULT_CLASS_NAMES):
            r = curves[c]
            assert r["ap_voc"] == pytest.approx(
                _reference_voc_ap(dets, gts, c, t, iou_type), abs=1e-12), (t, c)
            assert r["num_det"] == sum(int(np.sum(np.asarray(d["classes"]) == c)) for d in dets)
            mixed += 0 < r["precision"][-1] < 1
            if t == 0.5:
                assert r["ap_101"] == pytest.approx(ref["per_category"][name]["AP50"])
    assert mixed >= 3  # true and false positives alike, not a trivial case


def test_hand_computed_curve():
    """3 objects; detections .9 TP, .8 FP, .7 TP, .6 FP (listed out of order): precision 1, 1/2,
    2/3, 1/2; recall 1/3, 1/3, 2/3, 2/3; VOC AP 1/3 + 1/3 * 2/3 = 5/9; COCO's 101-point AP
    (34 + 33 * 2/3) / 101; recall at precision 0.84: 1/3 (the paper's operating point)."""
    objects = np.array([[0.0, 0.0, 0.2, 0.2], [0.4, 0.4, 0.6, 0.6], [0.8, 0.8, 1.0, 1.0]])
    far = np.array([0.0, 0.7, 0.1, 0.8])
    dets = [{"boxes": np.stack([far, objects[1], objects[0], far]), "classes": [0, 0, 0, 0],
             "scores": [0.8, 0.7, 0.9, 0.6]}]
    gts = [{"boxes": objects, "classes": [0, 0, 0]}]
    ev = coco.cocoeval(coco.to_coco_groundtruth(gts, (100, 100)),
                       coco.to_coco_detections(dets, (100, 100)))
    r = coco.pr_curves(ev, 0.5)[0]
    np.testing.assert_allclose(r["precision"], [1, 1 / 2, 2 / 3, 1 / 2])
    np.testing.assert_allclose(r["recall"], [1 / 3, 1 / 3, 2 / 3, 2 / 3])
    assert r["ap_voc"] == pytest.approx(5 / 9)
    assert r["ap_101"] == pytest.approx(56 / 101)
    assert (r["num_gt"], r["num_det"]) == (3, 4)
    assert metrics.recall_at_precision(r["precision"], r["recall"], 0.84) == pytest.approx(1 / 3)
    assert np.isnan(coco.pr_curves(ev, 0.5)[1]["ap_voc"])  # No object of class 1.


def test_an_iou_of_exactly_one_half_in_whole_pixels_matches():
    """Stored coordinates carry float32 noise (a 9 px side reads 8.999997 px); boxes snap to
    1e-4 px, so a whole-pixel IoU of exactly 0.5 counts as a match, as its exact value does."""
    gt = np.array([[23, 30, 39, 39]], np.float32) / np.float32(100)  # 16 x 9 px
    det = np.array([[22, 28, 46, 40]], np.float32) / np.float32(100)  # 24 x 12 px
    ev = coco.cocoeval(coco.to_coco_groundtruth([{"boxes": gt, "classes": [0]}], (100, 100)),
                       coco.to_coco_detections([{"boxes": det, "classes": [0], "scores": [1.0]}],
                                               (100, 100)))
    assert coco.pr_curves(ev, 0.5)[0]["ap_voc"] == 1.0


def test_empty_detections_give_zeros():
    gts = [
        {"boxes": np.array([[0.1, 0.1, 0.4, 0.4]]), "classes": [0], "masks": np.ones((1, 8, 8))},
        {"boxes": np.zeros((0, 4)), "classes": [], "masks": np.zeros((0, 8, 8))},
    ]
    gt_dict = coco.to_coco_groundtruth(gts, (8, 8))
    for iou_type in ("bbox", "segm"):
        out = coco.coco_evaluate(gt_dict, [], iou_type)
        assert out["AP"] == 0.0 and out["AP50"] == 0.0 and out["AP75"] == 0.0
        assert out["per_category"]["3"]["AP50"] == 0.0
        assert np.isnan(out["per_category"]["6"]["AP"])  # no ground truth of class 1
        assert len(out["stats"]) == 12
    empty = [{"boxes": np.zeros((0, 4)), "classes": [], "scores": [], "masks": np.zeros((0, 8, 8))}]
    assert coco.to_coco_detections(empty * 2, (8, 8), with_masks=True) == []
