"""Tests for decompnet_tf.eval.coco: COCO export, and our metrics against pycocotools."""

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


@pytest.mark.parametrize("iou_type", ["bbox", "segm"])
def test_ap_101_matches_pycocotools(iou_type):
    rng = np.random.default_rng(7)
    with_masks = iou_type == "segm"
    gts, dets = _random_dataset(rng, with_masks=with_masks)
    gt_dict = coco.to_coco_groundtruth(gts, SIZE)
    det_list = coco.to_coco_detections(dets, SIZE, with_masks=with_masks)
    snapshot = json.dumps([gt_dict, det_list])
    ref = coco.coco_evaluate(gt_dict, det_list, iou_type)
    assert json.dumps([gt_dict, det_list]) == snapshot  # inputs untouched

    ours = metrics.evaluate_detections(dets, gts, NUM_CLASSES, 0.5, iou_type)
    tp_total = sum(int(r["tp"].sum()) for r in ours.values())
    assert 0 < tp_total < sum(r["num_det"] for r in ours.values())  # a non-trivial mix
    assert metrics.mean_ap(ours, "ap_101") == pytest.approx(ref["AP50"], abs=1e-3)
    for c, name in enumerate(coco.DEFAULT_CLASS_NAMES):
        assert ours[c]["ap_101"] == pytest.approx(ref["per_category"][name]["AP50"], abs=1e-3)
    ap75 = metrics.mean_ap(metrics.evaluate_detections(dets, gts, 3, 0.75, iou_type), "ap_101")
    assert ap75 == pytest.approx(ref["AP75"], abs=1e-3)
    if iou_type == "bbox":  # AP@[.5:.95] as the mean over the 10 thresholds
        thresholds = np.linspace(0.5, 0.95, 10)
        aps = [
            metrics.mean_ap(metrics.evaluate_detections(dets, gts, 3, t, iou_type), "ap_101")
            for t in thresholds
        ]
        assert np.mean(aps) == pytest.approx(ref["AP"], abs=1e-3)


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
