"""KITTI object-detection labels: pure parsing and the official difficulty rules.

Imports nothing of the project, so the TFDS builder and the evaluation share DIFFICULTIES. A label
line (object devkit, readme.txt) has 15 fields; a result line adds a 16th, the score:

    type truncated occluded alpha left top right bottom height width length x y z rotation_y

truncated: 0..1; occluded: 0 visible, 1 partly, 2 largely, 3 unknown; the 2D box is in pixels,
0-based sub-pixel floats that the devkit uses as they are (height = bottom - top, no +1).
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
    """One labelled object, or a detection with its `score`; box (left, top, right, bottom), px."""

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
        """Box height in pixels, bottom - top (no +1): the devkit's size criterion (cleanData)."""
        return self.box[3] - self.box[1]


def parse_label_line(line: str, path: str = "<label>", lineno: int = 1) -> KittiObject:
    """Parse one label line (15 fields) or result line (16, the score last)."""
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
    """0 easy, 1 moderate, 2 hard: the easiest level whose limits `obj` meets; -1 for none."""
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
