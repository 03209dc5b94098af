"""Figure 4 from evaluations already made: every run's precision-recall curves (detection,
IoU 0.5) in one figure, read from evaluate.py's metrics.json files, so that no model runs and
no split is read again (the headline's seeds are each evaluated on test once).

    python experiments/figure4.py --out=runs/fig4_seeds/pr_detection.png \\
        runs/seeds/quick/seed*/eval_test runs/seeds/bl_chosen/seed*_onednn1/eval_test3

Each argument is an evaluation folder (or LABEL=FOLDER); the label defaults to the model dir's
last two path parts and the folder's suffix ("quick/seed0", "bl_chosen/seed0_onednn1 test3").
"""

from __future__ import annotations

import argparse
import json
import os

from decompnet_tf.console import import_tensorflow

import_tensorflow()
from decompnet_tf.eval import plots  # noqa: E402
from decompnet_tf.model_io import Run  # noqa: E402


def label_of(folder: str) -> str:
    """'runs/seeds/quick/seed0/eval_test' -> 'quick/seed0 test'."""
    parent, leaf = os.path.split(folder.rstrip("/"))
    tail = "/".join(parent.split("/")[-2:])
    return f"{tail} {leaf.removeprefix('eval_')}"


def curves_of(folder: str) -> tuple[dict, list[str]]:
    """({class id: (recall, precision, ap)}, class names) from one evaluation folder."""
    with open(os.path.join(folder, "metrics.json")) as f:
        m = json.load(f)
    per_class = {int(k): (r["recall"], r["precision"], r["ap_voc"])
                 for k, r in m["detection"]["iou_0.5"].items()}
    names = Run.open(m["model"]["model_dir"]).class_names()
    return per_class, names or [str(k) for k in sorted(per_class)]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folders", nargs="+", help="evaluate.py output folders (or LABEL=FOLDER).")
    p.add_argument("--out", required=True, help="The PNG to write.")
    p.add_argument("--title", default="Detection, IoU 0.5 (Fig. 4), every seed")
    args = p.parse_args()
    curves, names = {}, None
    for arg in args.folders:
        label, sep, folder = arg.partition("=")
        folder, label = (folder, label) if sep else (arg, label_of(arg))
        curves[label], these = curves_of(folder)
        if names is not None and these != names:
            raise SystemExit(f"figure4.py: {folder} has classes {these}, the others {names}")
        names = these
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    plots.pr_figure(curves, args.title, args.out, names)
    print(f"figure4.py: {len(curves)} runs drawn in {args.out}")


if __name__ == "__main__":
    main()
