"""The stop / mask threshold pair for a config, across its seeds' models: each pair's sum of
detection AP50, segmentation AP50 and counting (the objective of calibrate_thresholds.py),
averaged over the models, with the range over them. Reads the grid each
`calibrate_thresholds.py --model_dir=DIR > DIR/calibration.txt` printed (spread.sh e2e parts).

    python experiments/threshold_means.py runs/seeds/quick_s1lr002/seed{0,1,2}
"""

from __future__ import annotations

import os
import sys


def read_grid(path: str) -> dict[tuple[float, float], tuple[float, float, float]]:
    """{(stop, mask): (detection AP50, segmentation AP50, counting)} of one calibration.txt:
    the rows before its first blank line, after the settings line."""
    with open(path) as f:
        block = f.read().split("\n\n")[0].splitlines()
    grid = {}
    for line in block:
        fields = line.split()
        if len(fields) == 5 and not line.startswith("inference"):
            stop, mask, det, seg, count = map(float, fields)
            grid[(stop, mask)] = (det, seg, count)
    return grid


def means(grids: list[dict]) -> list[tuple[tuple[float, float], float, float, float]]:
    """[((stop, mask), mean sum, min sum, max sum)] over the pairs every grid has, best first."""
    pairs = set.intersection(*(set(g) for g in grids))
    rows = []
    for pair in pairs:
        sums = [sum(g[pair]) for g in grids]
        rows.append((pair, sum(sums) / len(sums), min(sums), max(sums)))
    return sorted(rows, key=lambda r: (-r[1], r[0]))


def main(dirs: list[str]) -> None:
    if not dirs:
        raise SystemExit("usage: threshold_means.py MODEL_DIR [MODEL_DIR ...]")
    paths = [os.path.join(d, "calibration.txt") for d in dirs]
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        raise SystemExit(f"threshold_means.py: {missing[0]} does not exist; run experiments/"
                         "calibrate_thresholds.py --model_dir=DIR > DIR/calibration.txt")
    print(f"{'stop':>5} {'mask':>5}  mean of det + segm + counting (range over {len(dirs)} models)")
    for (stop, mask), mean, lo, hi in means([read_grid(p) for p in paths]):
        print(f"{stop:5.2f} {mask:5.2f}  {mean:.4f} ({lo:.3f}-{hi:.3f})")


if __name__ == "__main__":
    main(sys.argv[1:])
