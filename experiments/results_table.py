"""Markdown rows for RESULTS.md from evaluate.py's metrics.json files.

    python experiments/results_table.py runs/abl_stop/eval_test runs/abl_stop_pool2/eval_test

Each argument is an evaluate.py output dir (or NAME=DIR to label the row). Columns: AP50 and
recall at precision 0.84 per digit, segmentation AP50 (mask IoU 0.5) and AP at mask IoU 0.6-0.9
(mean over digits), counting accuracy, milliseconds per image.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np


def row(name: str, out_dir: str) -> str:
    with open(os.path.join(out_dir, "metrics.json")) as f:
        m = json.load(f)
    det = m["detection"]["iou_0.5"]
    ap = " / ".join(f"{det[k]['ap_voc']:.3f}" for k in det)
    rec = " / ".join(f"{det[k]['recall_at_precision_0.84']:.3f}" for k in det)
    seg = m.get("segmentation")
    if seg:
        s50 = " / ".join(f"{r['ap_voc']:.3f}" for r in seg["iou_0.5"].values())
        higher = " / ".join(f"{np.nanmean([r['ap_voc'] for r in seg[f'iou_{t}'].values()]):.3f}"
                            for t in ("0.6", "0.7", "0.8", "0.9"))
    else:
        s50 = higher = "-"
    count = m["counting"]["accuracy"]
    count = "-" if m["model"].get("windows_per_image") else f"{count:.3f}"
    return (f"| {name} | {ap} | {rec} | {s50} | {higher} | {count} | "
            f"{m['speed']['ms_per_image']:.1f} |")


def main(args: list[str]) -> None:
    print("| model | AP50 '3' / '6' / '9' | recall at P=0.84 | segm AP50 | segm AP at mask "
          "IoU .6 / .7 / .8 / .9 (mean) | counting | ms / image |")
    print("|---|---|---|---|---|---|---|")
    for arg in args:
        name, _, out_dir = arg.rpartition("=")
        print(row(name or out_dir, out_dir))


if __name__ == "__main__":
    main(sys.argv[1:])
