"""Where two detectors' misses differ, object by object: from two evaluate.py output folders of
the same images (their groundtruth_coco.json and detections_coco.json), each true object of a
size range is found (a same-class detection at IoU >= 0.5 among the image's best 100, at any
score: the end of the PR curve) or missed, and each miss is told apart as misplaced (a
same-class detection at IoU >= 0.1), taken for another class (an other-class detection at IoU
>= 0.5) or not detected at all.

    python experiments/misses.py runs/seeds/quick/seed0/eval_validation \\
        runs/seeds/bl_e4/seed0/eval_val3 --min_size=28

Prints, per detector, found / misplaced / other class / not detected, and how many objects one
finds that the other misses. `--budget=1` gives each detector only its best-scoring detections,
as many per image as the image has true objects (a sliding window's 100 guesses per image find
nearly everything at some score; decompNet emits about one per object).
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from decompnet_tf.ops.np_boxes import box_iou_np


def iou_matrix(a, b) -> np.ndarray:
    """IoU of COCO xywh boxes, float64 [len(a), len(b)]."""
    def yxyx(boxes):
        x, y, w, h = np.asarray(boxes, np.float64).reshape(-1, 4).T
        return np.stack([y, x, y + h, x + w], axis=1)

    return box_iou_np(yxyx(a), yxyx(b))


def outcomes(folder: str, min_size: float, max_size: float,
             budget: float = 0.0) -> dict[int, str]:
    """{annotation id: "found" | "misplaced" | "other class" | "not detected"} for the true
    objects whose sqrt(box area) lies in [min_size, max_size), among each image's best 100
    detections, or with `budget` > 0 its best round(budget x its true objects)."""
    with open(os.path.join(folder, "groundtruth_coco.json")) as f:
        gt = json.load(f)
    with open(os.path.join(folder, "detections_coco.json")) as f:
        dets = json.load(f)
    by_image: dict[int, list] = {}
    for d in dets:
        by_image.setdefault(d["image_id"], []).append(d)
    objects: dict[int, int] = {}
    for ann in gt["annotations"]:
        objects[ann["image_id"]] = objects.get(ann["image_id"], 0) + 1
    out = {}
    for ann in gt["annotations"]:
        size = np.sqrt(ann["bbox"][2] * ann["bbox"][3])
        if not min_size <= size < max_size:
            continue
        keep = round(budget * objects[ann["image_id"]]) if budget else 100
        ds = sorted(by_image.get(ann["image_id"], []), key=lambda d: -d["score"])[:keep]
        iou = iou_matrix([ann["bbox"]], [d["bbox"] for d in ds])[0] if ds else np.zeros(0)
        same = np.array([d["category_id"] == ann["category_id"] for d in ds], bool)
        if (iou[same] >= 0.5).any():
            out[ann["id"]] = "found"
        elif (iou[same] >= 0.1).any():
            out[ann["id"]] = "misplaced"
        elif (iou[~same] >= 0.5).any():
            out[ann["id"]] = "other class"
        else:
            out[ann["id"]] = "not detected"
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("first")
    p.add_argument("second")
    p.add_argument("--min_size", type=float, default=28.0, help="px, sqrt of the box area")
    p.add_argument("--max_size", type=float, default=float("inf"))
    p.add_argument("--budget", type=float, default=0.0,
                   help="detections per true object of the image (0: the best 100)")
    args = p.parse_args()
    a = outcomes(args.first, args.min_size, args.max_size, args.budget)
    b = outcomes(args.second, args.min_size, args.max_size, args.budget)
    if set(a) != set(b):
        raise SystemExit("misses.py: the two folders hold different true objects (other images?)")
    kinds = ("found", "misplaced", "other class", "not detected")
    print(f"{len(a)} true objects of {args.min_size:g}-{args.max_size:g} px")
    print("| detector | " + " | ".join(kinds) + " |\n|---|" + "---|" * len(kinds))
    for name, o in ((args.first, a), (args.second, b)):
        counts = [sum(v == k for v in o.values()) for k in kinds]
        print(f"| {name} | " + " | ".join(f"{c} ({c / max(len(o), 1):.1%})" for c in counts)
              + " |")
    only_b = [i for i in a if a[i] != "found" and b[i] == "found"]
    only_a = [i for i in a if a[i] == "found" and b[i] != "found"]
    print(f"found by the second only: {len(only_b)} (the first's outcome: "
          + ", ".join(f"{k} {sum(a[i] == k for i in only_b)}" for k in kinds[1:]) + ")")
    print(f"found by the first only: {len(only_a)}")


if __name__ == "__main__":
    main()
