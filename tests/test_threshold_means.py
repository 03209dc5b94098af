"""experiments/threshold_means.py: the best threshold pair across models' calibration grids."""

import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

sys.path.insert(0, os.path.join(ROOT, "experiments"))
import threshold_means  # noqa: E402

GRID = """inference settings: segmentation_delta=0.1 (stored), box_source=component (stored)
 0.40  0.30     {a}      0.600     0.500
 0.50  0.30     0.700      0.600     0.600

 stop  mask  det AP50  segm AP50  counting   (validation, 500 images, best first)
 0.50  0.30     0.700      0.600     0.600
"""


def _model(tmp_path, name, a):
    d = tmp_path / name
    d.mkdir()
    (d / "calibration.txt").write_text(GRID.format(a=a))
    return str(d)


def test_the_pair_best_on_average_wins_over_the_best_on_one_model(tmp_path):
    # Model one prefers stop 0.4 by 0.05, model two 0.5 by 0.25: 0.5 wins on average.
    one, two = _model(tmp_path, "one", "0.850"), _model(tmp_path, "two", "0.550")
    rows = threshold_means.means([threshold_means.read_grid(os.path.join(d, "calibration.txt"))
                                  for d in (one, two)])
    assert [r[0] for r in rows] == [(0.5, 0.3), (0.4, 0.3)]
    assert rows[0][1:] == pytest.approx((1.9, 1.9, 1.9))
    assert rows[1][1:] == pytest.approx((1.8, 1.65, 1.95))


def test_a_missing_grid_is_one_line_with_the_fix(tmp_path):
    done = subprocess.run([sys.executable, os.path.join(ROOT, "experiments", "threshold_means.py"),
                           str(tmp_path)], capture_output=True, text=True)
    assert done.returncode != 0 and "calibrate_thresholds.py" in done.stderr
    assert "Traceback" not in done.stderr
