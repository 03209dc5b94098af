"""KITTI object-detection labels: pure parsing and the official difficulty rules.

Pure Python, importing nothing of the project: the TFDS builder (tfds_builders/decomp_kitti)
parses the user's label files with it and stores each object's difficulty, and the evaluation
(decompnet_tf/eval/kitti.py) applies the same DIFFICULTIES, so neither reaches into the other.

A label line (KITTI object devkit, readme.txt) has 15 space-separated fields:

    type truncated occluded alpha left top right bottom height width length x y z rotation_y

type: Car, Van, Truck, Pedestrian, Person_sitting, Cyclist, Tram, Misc or DontCare;
truncated: float 0 (not) .. 1 (fully truncated); occluded: int 0 fully visible, 1 partly,
2 largely occluded, 3 unknown; alpha: observation angle; left/top/right/bottom: the 2D box in
pixels (0-based, sub-pixel floats; the devkit uses them as they are: width right - left, height
bottom - top, no +1); then the 3D dimensions (m), location (m) and rotation_y.

A result file (what the devkit scores, one ``%06d.txt`` per image) has the same 15 fields and a
16th, the detection's score; `parse_label_line` reads both.
"""

from __future__ import annotations

import dataclasses

TYPES = ("Car", "Van", "Truck", "Pedestrian", "Person_sitting", "Cyclist", "Tram", "Misc",
         "DontCare")

# Official difficulty definitions (devkit cpp/evaluate_object.cpp: MIN_HEIGHT, MAX_OCCLUSION,
# MAX_TRUNCATION): minimum box height in px (a ground-truth box must be taller than it), maximum
# occlusion level, maximum truncation.
DIFFICULTIES = (("easy", 40, 0, 0.15), ("moderate", 25, 1, 0.30), ("hard", 25, 2, 0.50))


class KittiLabelError(ValueError):
    """A malformed label line; the message names the file and the line."""


@dataclasses.dataclass(frozen=True)
class KittiObject:
    """One labelled object (or detection); box in pixels (left, top, right, bottom).

    score is the 16th field of a result file (the detection's confidence); None for labels.
    """

    type: str
    truncated: float
    occluded: int
    alpha: float
    box: tuple[float, float, float, float]
    dimensions: tuple[float, float, float]
    location: tuple[float, float, float]
    rotation_y: float
    score: float | None = None

    @property
    def height(self) -> float:
        """Box height in pixels, bottom - top in float64 (no +1): the devkit's size criterion
        (evaluate_object.cpp, cleanData: `gt[i].box.y2 - gt[i].box.y1`, doubles read with %lf)."""
        return self.box[3] - self.box[1]


def parse_label_line(line: str, path: str = "<label>", lineno: int = 1) -> KittiObject:
    """Parses one label line (15 fields) or result line (16: the score last).

    Raises KittiLabelError naming path:lineno and the problem.
    """
    fields = line.split()
    where = f"{path}:{lineno}"
    if len(fields) < 15:
        raise KittiLabelError(f"{where}: {len(fields)} fields, a KITTI label line has 15 "
                              f"(type truncated occluded alpha 2D-box[4] dims[3] location[3] "
                              f"rotation_y): {line.strip()!r}")
    if fields[0] not in TYPES:
        raise KittiLabelError(f"{where}: unknown object type {fields[0]!r}; expected one of "
                              f"{', '.join(TYPES)}")
    if len(fields) > 16:
        raise KittiLabelError(f"{where}: {len(fields)} fields, a KITTI label line has 15 and a "
                              f"result line 16 (the score last): {line.strip()!r}")
    try:
        values = [float(x) for x in fields[1:16]]
    except ValueError as e:
        raise KittiLabelError(f"{where}: non-numeric field ({e}): {line.strip()!r}") from None
    left, top, right, bottom = values[3:7]
    if right < left or bottom < top:
        raise KittiLabelError(f"{where}: box ({left}, {top}, {right}, {bottom}) has right < left "
                              "or bottom < top")
    return KittiObject(fields[0], values[0], int(values[1]), values[2], (left, top, right, bottom),
                       tuple(values[7:10]), tuple(values[10:13]), values[13],
                       values[14] if len(values) > 14 else None)


def parse_label_file(text: str, path: str = "<label>") -> list[KittiObject]:
    """All objects of a label file (blank lines ignored)."""
    return [parse_label_line(line, path, i + 1) for i, line in enumerate(text.splitlines())
            if line.strip()]


def difficulty(obj: KittiObject) -> int:
    """0 easy, 1 moderate, 2 hard (the easiest level whose limits the object meets), or -1 when
    it meets none (too small, too occluded or too truncated: ignored by the evaluation).

    As the devkit (evaluate_object.cpp, cleanData), a ground-truth box must be strictly taller
    than the minimum: it ignores `height<=MIN_HEIGHT[difficulty]`, so a car exactly 25.00 px tall
    is ignored at moderate and hard.
    """
    for level, (_, min_height, max_occ, max_trunc) in enumerate(DIFFICULTIES):
        if obj.height > min_height and obj.occluded <= max_occ and obj.truncated <= max_trunc:
            return level
    return -1


def read_id_list(text: str) -> list[str]:
    """Six-digit image ids, one a line (ImageSets/train.txt)."""
    ids = [line.strip() for line in text.splitlines() if line.strip()]
    bad = [i for i in ids if not (len(i) == 6 and i.isdigit())]
    if bad:
        raise ValueError(f"image id list holds non-KITTI ids, e.g. {bad[:3]}")
    return ids
