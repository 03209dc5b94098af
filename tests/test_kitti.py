"""decomp_kitti: label parsing, difficulty, the builder on a KITTI-format fixture tree, and the
devkit result files written for its images."""

import os
import zipfile

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from decompnet_tf.data import kitti_labels as kp
from tfds_builders.decomp_kitti import DecompKitti, DecompKittiConfig

# Image 000000: a car that is easy, a truncated one (moderate), an occluded one (hard), a car
# smaller than 25 px (no difficulty), a Van, a Truck and a DontCare region.
LABELS = {
    "000000": """Car 0.00 0 -1.58 10.00 20.00 59.00 69.00 1.5 1.6 3.9 1.0 1.7 20.0 -1.6
Car 0.20 1 0.50 70.00 10.00 109.00 39.00 1.4 1.6 3.7 -2.0 1.7 30.0 0.2
Car 0.40 2 0.10 120.00 5.00 159.00 34.00 1.4 1.6 3.7 -2.0 1.7 30.0 0.2
Car 0.00 0 0.10 160.00 5.00 179.00 19.00 1.4 1.6 3.7 -2.0 1.7 60.0 0.2
Van 0.00 0 1.20 180.00 30.00 219.00 69.00 2.0 1.8 4.5 3.0 1.8 25.0 1.3
Truck 0.00 0 1.20 5.00 60.00 25.00 79.00 3.0 2.5 8.0 9.0 1.8 40.0 1.3
DontCare -1 -1 -10 200.00 0.00 239.00 20.00 -1 -1 -1 -1000 -1000 -1000 -10
""",
    "000001": "Car 0.00 0 -1.58 0.00 0.00 99.00 49.00 1.5 1.6 3.9 1.0 1.7 20.0 -1.6\n",
    "000002": "",
}
SIZES = {"000000": (80, 240), "000001": (78, 236), "000002": (80, 240)}


def write_tree(root, zipped=False, ids=("000000", "000001", "000002"), labels=None, sizes=None,
               train=("000000", "000002"), val=("000001",)):
    """A KITTI-format training tree (or the two official zips) with the labels above (or
    `labels` / `sizes` keyed by id); returns the folder of the train / val id lists."""
    labels, sizes = labels or LABELS, sizes or SIZES
    rng = np.random.default_rng(0)
    files = {}
    for i in ids:
        image = rng.integers(0, 256, (*sizes[i], 3)).astype(np.uint8)
        files[f"training/image_2/{i}.png"] = cv2.imencode(".png", image)[1].tobytes()
        files[f"training/label_2/{i}.txt"] = labels[i].encode()
    if zipped:
        for name, kind in (("data_object_image_2.zip", "image_2"),
                           ("data_object_label_2.zip", "label_2")):
            with zipfile.ZipFile(os.path.join(root, name), "w") as z:
                for member, data in files.items():
                    if f"/{kind}/" in member:
                        z.writestr(member, data)
    else:
        for member, data in files.items():
            os.makedirs(os.path.dirname(os.path.join(root, member)), exist_ok=True)
            with open(os.path.join(root, member), "wb") as f:
                f.write(data)
    sets = os.path.join(root, "sets")
    os.makedirs(sets)
    with open(os.path.join(sets, "train.txt"), "w") as f:
        f.write("".join(i + "\n" for i in train))
    with open(os.path.join(sets, "val.txt"), "w") as f:
        f.write("".join(i + "\n" for i in val))
    return sets


def _build(tmp_path, manual, sets, image_size=(80, 240)):
    config = DecompKittiConfig(name="fixture", image_size=image_size, imagesets=sets)
    builder = DecompKitti(config=config, data_dir=str(tmp_path / "data"))
    builder.download_and_prepare(
        download_config=tfds.download.DownloadConfig(manual_dir=str(manual)))
    return builder


def test_parse_line_and_difficulty():
    objs = kp.parse_label_file(LABELS["000000"], "label.txt")
    assert [o.type for o in objs] == ["Car", "Car", "Car", "Car", "Van", "Truck", "DontCare"]
    car = objs[0]
    assert car.box == (10.0, 20.0, 59.0, 69.0) and car.height == 49.0
    assert car.truncated == 0.0 and car.occluded == 0 and car.rotation_y == pytest.approx(-1.6)
    assert [kp.difficulty(o) for o in objs[:4]] == [0, 1, 2, -1]


def test_difficulty_needs_a_height_above_the_minimum_as_the_devkit():
    # evaluate_object.cpp ignores a ground truth with height<=MIN_HEIGHT (40 easy, 25 others).
    def car(top, bottom, occluded=0, truncated="0.00"):
        return kp.parse_label_line(f"Car {truncated} {occluded} 0 10.00 {top} 50.00 {bottom} "
                                   "1 1 1 0 0 0 0")

    assert car("100.00", "140.00").height == 40.0 and kp.difficulty(car("100.00", "140.00")) == 1
    assert kp.difficulty(car("100.00", "140.01")) == 0
    assert kp.difficulty(car("100.00", "125.00")) == -1  # exactly 25.00 px: ignored everywhere
    assert kp.difficulty(car("100.00", "125.01")) == 1
    # Heights are the doubles the devkit subtracts: 32.02 - 7.02 is 25.000000000000004 (counted
    # there and here), 32.05 - 7.05 is 24.999999999999996 (ignored).
    assert kp.difficulty(car("7.02", "32.02")) == 1 and kp.difficulty(car("7.05", "32.05")) == -1
    # Truncation exactly at the limit counts (the devkit ignores truncation > MAX_TRUNCATION).
    assert kp.difficulty(car("100.00", "150.00", truncated="0.15")) == 0
    assert kp.difficulty(car("100.00", "150.00", truncated="0.30")) == 1


def test_result_line_parses_with_its_score():
    obj = kp.parse_label_line("Car -1 -1 -10 587.0100 173.3300 614.1200 200.1200 "
                              "-1 -1 -1 -1000 -1000 -1000 -10 0.912345")
    assert obj.box == (587.01, 173.33, 614.12, 200.12) and obj.score == 0.912345
    assert kp.parse_label_line(LABELS["000001"]).score is None
    with pytest.raises(kp.KittiLabelError, match="17 fields"):
        kp.parse_label_line(LABELS["000001"].strip() + " 0.5 0.5")


@pytest.mark.parametrize("zipped", [False, True])
def test_builder_parses_fixture_exactly(tmp_path, zipped):
    manual = tmp_path / "manual"
    manual.mkdir()
    sets = write_tree(str(manual), zipped=zipped)
    builder = _build(tmp_path, manual, sets)
    assert builder.info.splits["train"].num_examples == 2
    assert builder.info.splits["validation"].num_examples == 1
    examples = {ex["image_id"].decode(): ex
                for ex in tfds.as_numpy(builder.as_dataset(split="train"))}
    ex = examples["000000"]
    assert ex["image"].shape == (80, 240, 3)
    objs = ex["objects"]
    np.testing.assert_array_equal(objs["label"], [0, 0, 0, 0])  # the four cars only
    # The label's numbers over the canvas, no +1 (label: 10.00 20.00 59.00 69.00).
    np.testing.assert_allclose(objs["bbox"][0], [20 / 80, 10 / 240, 69 / 80, 59 / 240], atol=1e-6)
    np.testing.assert_array_equal(objs["difficulty"], [0, 1, 2, -1])
    np.testing.assert_array_equal(objs["occluded"], [0, 1, 2, 0])
    np.testing.assert_allclose(objs["truncated"], [0.0, 0.2, 0.4, 0.0], atol=1e-6)
    np.testing.assert_array_equal(objs["height"], [49, 29, 29, 14])
    # Van (neighbouring class) and DontCare are ignore regions; the Truck is neither.
    names = builder.info.features["ignore"]["type"].names
    assert sorted(names[t] for t in ex["ignore"]["type"]) == ["DontCare", "Van"]
    assert len(examples["000002"]["objects"]["label"]) == 0
    val = next(iter(tfds.as_numpy(builder.as_dataset(split="validation"))))
    np.testing.assert_array_equal(val["original_size"], [78, 236])  # padded to 80 x 240
    assert val["image"][78:].max() == 0 and val["image"][:, 236:].max() == 0


# One full-size KITTI image (375 x 1242 on the 384 x 1248 canvas): a car with a fractional bottom
# edge, cars exactly at and just above the height limits, truncation at the easy limit, a Van and
# a DontCare region.
FULL = """Car 0.00 0 -1.58 587.01 173.33 614.12 200.12 1.5 1.6 3.9 1.0 1.7 20.0 -1.6
Car 0.00 0 0.10 100.00 100.00 150.00 125.00 1.4 1.6 3.7 -2.0 1.7 30.0 0.2
Car 0.00 0 0.10 200.00 100.00 250.00 125.01 1.4 1.6 3.7 -2.0 1.7 30.0 0.2
Car 0.00 0 0.10 300.00 100.00 350.00 140.00 1.4 1.6 3.7 -2.0 1.7 30.0 0.2
Car 0.15 0 0.10 400.00 100.00 450.00 150.00 1.4 1.6 3.7 -2.0 1.7 30.0 0.2
Car 0.30 1 0.10 500.00 7.02 550.00 32.02 1.4 1.6 3.7 -2.0 1.7 30.0 0.2
Van 0.00 0 1.20 700.00 150.00 760.00 210.50 2.0 1.8 4.5 3.0 1.8 25.0 1.3
DontCare -1 -1 -10 1000.25 150.00 1241.00 374.00 -1 -1 -1 -1000 -1000 -1000 -10
"""


def test_builder_boxes_and_heights_are_the_label_files_numbers(tmp_path):
    from decompnet_tf.eval.kitti import groundtruth_from_example, kitti_ap

    manual = tmp_path / "manual"
    manual.mkdir()
    sets = write_tree(str(manual), ids=("000007",), labels={"000007": FULL},
                      sizes={"000007": (375, 1242)}, train=("000007",), val=("000007",))
    builder = _build(tmp_path, manual, sets, image_size=(384, 1248))
    ex = next(iter(tfds.as_numpy(builder.as_dataset(split="train"))))
    assert ex["image_id"] == b"000007"
    np.testing.assert_array_equal(ex["original_size"], [375, 1242])
    objs = kp.parse_label_file(FULL)
    cars = [o for o in objs if o.type == "Car"]
    expected = [[o.box[1] / 384, o.box[0] / 1248, o.box[3] / 384, o.box[2] / 1248] for o in cars]
    np.testing.assert_allclose(ex["objects"]["bbox"], expected, rtol=0, atol=1e-7)
    # Its bottom 200.12 px is 0.5211 of the canvas: the max edge gets no +1 (0.5237 with one).
    assert abs(ex["objects"]["bbox"][0, 2] - 200.12 / 384) < 1e-7
    np.testing.assert_array_equal(ex["objects"]["height"],
                                  np.float32([o.box[3] - o.box[1] for o in cars]))
    # 26.79 px; exactly 25.00 (ignored); 25.01; exactly 40.00 (not easy); truncation 0.15
    # (easy); 32.02 - 7.02 = 25.000000000000004 with truncation 0.30: moderate in doubles, as
    # the devkit decides, though the stored float32 height is 25.0.
    np.testing.assert_array_equal(ex["objects"]["difficulty"], [1, -1, 1, 1, 0, 1])
    names = builder.info.features["ignore"]["type"].names
    ignore = {names[t]: b for t, b in zip(ex["ignore"]["type"], ex["ignore"]["bbox"])}
    np.testing.assert_allclose(ignore["Van"], [150 / 384, 700 / 1248, 210.5 / 384, 760 / 1248],
                               atol=1e-7)
    np.testing.assert_allclose(ignore["DontCare"],
                               [150 / 384, 1000.25 / 1248, 374 / 384, 1241 / 1248], atol=1e-7)
    # The evaluation counts the cars the devkit counts: 1 easy, 5 moderate and hard.
    g = groundtruth_from_example(ex, names)
    assert [kitti_ap([{"boxes": np.zeros((0, 4)), "scores": np.zeros(0),
                       "heights": np.zeros(0)}], [g], level)["num_gt"]
            for level in range(3)] == [1, 5, 5]


def score_result_files(results_dir, labels):
    """Scores devkit result files against label texts {id: text} the devkit's way, everything
    in original pixels from the files themselves: {level: kitti_ap result}."""
    from decompnet_tf.eval.kitti import evaluate_kitti

    def yxyx(objs):
        return np.array([[o.box[1], o.box[0], o.box[3], o.box[2]] for o in objs]).reshape(-1, 4)

    dets, gts = [], []
    for image_id, text in sorted(labels.items()):
        path = os.path.join(results_dir, f"{image_id}.txt")
        found = [o for o in kp.parse_label_file(open(path).read(), path) if o.type == "Car"]
        dets.append({"boxes": yxyx(found), "scores": np.array([o.score for o in found]),
                     "heights": np.array([o.height for o in found])})
        objs = kp.parse_label_file(text)
        cars = [o for o in objs if o.type == "Car"] + [o for o in objs if o.type == "Van"]
        van = np.array([o.type == "Van" for o in cars], bool)
        gts.append({"boxes": yxyx(cars), "heights": np.array([o.height for o in cars]),
                    "occluded": np.array([o.occluded for o in cars]),
                    "truncated": np.array([o.truncated for o in cars]), "neighbour": van,
                    "difficulty": np.where(van, -1, [kp.difficulty(o) for o in cars]),
                    "dontcare": yxyx([o for o in objs if o.type == "DontCare"])})
    return evaluate_kitti(dets, gts)


def test_result_files_round_trip_through_the_label_parser(tmp_path):
    """Detections at the fixture's car boxes -> devkit result files -> `parse_label_file`: the
    label file's own numbers (original pixels) with the scores given."""
    from decompnet_tf.eval.kitti import (
        detections_for_class,
        evaluate_kitti,
        groundtruth_from_example,
        write_results,
    )

    manual = tmp_path / "manual"
    manual.mkdir()
    builder = _build(tmp_path, manual, write_tree(str(manual)))
    canvas = builder.info.features["image"].shape[:2]
    names = builder.info.features["ignore"]["type"].names
    dets, gts, expected = [], [], {}
    for split in ("train", "validation"):
        for ex in tfds.as_numpy(builder.as_dataset(split=split)):
            n = len(ex["objects"]["label"])
            scores = 0.9 - 0.1 * np.arange(n)
            gts.append(groundtruth_from_example(ex, names))
            dets.append(detections_for_class(ex["objects"]["bbox"], scores, ex["objects"]["label"],
                                             canvas, ex["original_size"],
                                             image_id=ex["image_id"]))
            cars = [o for o in kp.parse_label_file(LABELS[ex["image_id"].decode()])
                    if o.type == "Car"]
            expected[ex["image_id"].decode()] = ([o.box for o in cars], scores)
    paths = write_results(str(tmp_path / "kitti_results"), dets)
    assert sorted(os.listdir(tmp_path / "kitti_results")) == ["000000.txt", "000001.txt",
                                                             "000002.txt"]
    for path, d in zip(paths, dets):
        image_id = os.path.basename(path)[:6]
        read = kp.parse_label_file(open(path).read(), path)
        boxes, scores = expected[image_id]
        assert [o.type for o in read] == ["Car"] * len(boxes)
        got = np.array([o.box for o in read]).reshape(-1, 4)
        np.testing.assert_allclose(got, np.array(boxes).reshape(-1, 4), atol=1e-3)
        # ... and the detections in original pixels (left, top, right, bottom), to the 4
        # decimals written.
        np.testing.assert_allclose(got, d["pixel_boxes"][:, [1, 0, 3, 2]], atol=5e-5)
        np.testing.assert_allclose([o.score for o in read], scores, atol=5e-7)
        assert all(o.alpha == -10 and o.truncated == -1 and o.occluded == -1 for o in read)
    assert open(tmp_path / "kitti_results" / "000002.txt").read() == ""  # no cars: empty file
    # Scored from the files in original pixels, the detections get the project's AP exactly.
    ours = evaluate_kitti(dets, gts)
    theirs = score_result_files(str(tmp_path / "kitti_results"), LABELS)
    assert [r["num_gt"] for r in ours.values()] == [2, 3, 4]
    for level in ours:
        for key in ("ap_r40", "ap_r11", "num_gt"):
            assert theirs[level][key] == pytest.approx(ours[level][key]), (level, key)


def test_missing_manual_dir_prints_instructions(tmp_path):
    config = DecompKittiConfig(name="fixture", image_size=(80, 240))
    builder = DecompKitti(config=config, data_dir=str(tmp_path / "data"))
    with pytest.raises(AssertionError, match="data_object_image_2.zip"):
        builder.download_and_prepare(download_config=tfds.download.DownloadConfig(
            manual_dir=str(tmp_path / "nowhere")))


def test_label_line_with_too_few_fields_names_file_and_line(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    sets = write_tree(str(manual))
    with open(manual / "training/label_2/000000.txt", "a") as f:
        f.write("Car 0.00 0 1.0 10 20 30\n")
    with pytest.raises(kp.KittiLabelError, match=r"training/label_2/000000.txt:8: 7 fields"):
        _build(tmp_path, manual, sets)


def test_image_without_label_file_is_a_clear_error(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    sets = write_tree(str(manual))
    os.remove(manual / "training/label_2/000002.txt")
    with pytest.raises(FileNotFoundError, match="image 000002 has no label file"):
        _build(tmp_path, manual, sets)


def test_shipped_split_lists():
    from tfds_builders.decomp_kitti.decomp_kitti_dataset_builder import IMAGESETS

    train = kp.read_id_list(open(os.path.join(IMAGESETS, "train.txt")).read())
    val = kp.read_id_list(open(os.path.join(IMAGESETS, "val.txt")).read())
    assert (len(train), len(val)) == (3712, 3769) and not set(train) & set(val)
