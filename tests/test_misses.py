"""experiments/misses.py: each true object's outcome, from evaluate.py's COCO files."""

import json
import os
import sys

from tests.helpers import ROOT, run_script

sys.path.insert(0, os.path.join(ROOT, "experiments"))
import misses  # noqa: E402


def _folder(path, dets, scores=None):
    gts = [[0, 0, 30, 30], [40, 0, 30, 30], [0, 40, 30, 30], [40, 40, 30, 30], [80, 80, 10, 10]]
    gt = {"images": [{"id": 1}], "categories": [{"id": 1}, {"id": 2}],
          "annotations": [{"id": i + 1, "image_id": 1, "category_id": 1, "bbox": b}
                          for i, b in enumerate(gts)]}
    path.mkdir()
    (path / "groundtruth_coco.json").write_text(json.dumps(gt))
    (path / "detections_coco.json").write_text(json.dumps(
        [{"image_id": 1, "category_id": c, "bbox": b, "score": s}
         for (c, b), s in zip(dets, scores or [0.5] * len(dets))]))
    return str(path)


def test_each_large_object_is_found_misplaced_taken_for_another_class_or_not_detected(tmp_path):
    first = _folder(tmp_path / "a", [(1, [1, 1, 30, 30]),  # IoU 0.88: found
                                     (1, [55, 0, 30, 30]),  # IoU 0.33: misplaced
                                     (2, [0, 40, 30, 30])])  # other class; the 4th: nothing
    assert misses.outcomes(first, 28, float("inf")) == {
        1: "found", 2: "misplaced", 3: "other class", 4: "not detected"}
    assert list(misses.outcomes(first, 0, 14)) == [5]  # the 10 px object only
    # Scores 0.9, 0.8, ...: with one guess per object (5 objects) the best 5 remain; with 0.4
    # per object the best 2, so the other-class detection no longer counts.
    ranked = _folder(tmp_path / "r", [(1, [1, 1, 30, 30]), (1, [55, 0, 30, 30]),
                                      (2, [0, 40, 30, 30])], scores=[0.9, 0.8, 0.1])
    assert misses.outcomes(ranked, 28, float("inf"), budget=0.4)[3] == "not detected"
    assert misses.outcomes(ranked, 28, float("inf"), budget=1.0)[3] == "other class"
    second = _folder(tmp_path / "b", [(1, [40, 40, 30, 30]), (1, [40, 0, 30, 30])])
    done = run_script("experiments/misses.py", first, second)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "4 true objects of 28-inf px" in done.stdout
    assert "found by the second only: 2 (the first's outcome: misplaced 1, other class 0, " \
           "not detected 1)" in done.stdout
    assert "found by the first only: 1" in done.stdout
