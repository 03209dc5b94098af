"""Arms of a comparison against a base, each a seeds.py experiment: per metric the difference of
the means, the spread it must beat (the larger of the two arms' max - min over their seeds) and
whether it does. Markdown, for RESULTS.md.

    python experiments/arms.py runs/seeds/s1_quick runs/seeds/s1_no_size_weighting \\
        --eval=s1 --metrics="AP50 mean,AP50 <14 px,counting"

The first dir is the base; each other is an arm. A difference is "beyond" the spread when its
size exceeds the larger of the two ranges; "disjoint" when it does not, but every seed of one arm
beats every seed of the other and the difference exceeds the base's own range (the measured
run-to-run noise: an arm whose seeds scatter, e.g. one that collapses, can still be told
apart); else "within" (not decisive).
"""

from __future__ import annotations

import argparse
import json
import os


def load(exp_dir: str, eval_name: str) -> dict:
    path = os.path.join(exp_dir, f"summary_{eval_name}.json")
    if not os.path.exists(path):
        raise SystemExit(f"arms.py: {path} does not exist; run experiments/seeds.py first")
    with open(path) as f:
        return json.load(f)["summary"]


def compare(base: dict, arm: dict, metric: str) -> tuple[float, float, str]:
    """(arm mean - base mean, the spread: the larger max - min of the two, the verdict:
    "beyond", "disjoint" or "within", as the module says)."""
    b, a = base[metric], arm[metric]
    diff = a["mean"] - b["mean"]
    spread = max(a["max"] - a["min"], b["max"] - b["min"])
    if abs(diff) > spread:
        return diff, spread, "beyond"
    disjoint = a["min"] > b["max"] or a["max"] < b["min"]
    return diff, spread, "disjoint" if disjoint and abs(diff) > b["max"] - b["min"] else "within"


def table(dirs: list[str], eval_name: str, metrics: list[str]) -> str:
    summaries = {d: load(d, eval_name) for d in dirs}
    base = summaries[dirs[0]]
    missing = [m for m in metrics if m not in base]
    if missing:
        raise SystemExit(f"arms.py: {dirs[0]} has no {', '.join(missing)}; its metrics: "
                         + ", ".join(base))
    head = "| arm | " + " | ".join(metrics) + " |"
    lines = [head, "|" + "---|" * (len(metrics) + 1)]
    cells = [f"{base[m]['mean']:.3f} ({base[m]['min']:.3f}-{base[m]['max']:.3f})"
             for m in metrics]
    lines.append(f"| {os.path.basename(dirs[0])} (base) | " + " | ".join(cells) + " |")
    for d in dirs[1:]:
        arm, cells = summaries[d], []
        for m in metrics:
            diff, spread, verdict = compare(base, arm, m)
            cells.append(f"{arm[m]['mean']:.3f} ({arm[m]['min']:.3f}-{arm[m]['max']:.3f}); "
                         f"{diff:+.3f} {verdict} {spread:.3f}")
        lines.append(f"| {os.path.basename(d)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dirs", nargs="+", help="seeds.py experiment dirs; the first is the base")
    p.add_argument("--eval", required=True, help="the evaluation's name (seeds.py --eval)")
    p.add_argument("--metrics", default="AP50 mean,counting",
                   help="comma-separated metric names of the summaries")
    args = p.parse_args()
    print(table(args.dirs, args.eval, [m for m in args.metrics.split(",") if m]))


if __name__ == "__main__":
    main()
