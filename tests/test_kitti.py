"""decomp_kitti: label parsing, difficulty, and the builder on a KITTI-format fixture tree."""

import os
import zipfile

import cv2
import numpy as np
import pytest
import tensorflow_datasets as tfds

from tfds_builders.decomp_kitti import DecompKitti, DecompKittiConfig
from tfds_builders.decomp_kitti import kitti_parsing as kp

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


def write_tree(root, zipped=False, ids=("000000", "000001", "000002")):
    """A KITTI-format training tree (or the two official zips) with the labels above."""
    rng = np.random.default_rng(0)
    files = {}
    for i in ids:
        image = rng.integers(0, 256, (*SIZES[i], 3)).astype(np.uint8)
        files[f"training/image_2/{i}.png"] = cv2.imencode(".png", image)[1].tobytes()
        files[f"training/label_2/{i}.txt"] = LABELS[i].encode()
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
        f.write("000000\n000002\n")
    with open(os.path.join(sets, "val.txt"), "w") as f:
        f.write("000001\n")
    return sets


def _build(tmp_path, manual, sets):
    config = DecompKittiConfig(name="fixture", image_size=(80, 240), imagesets=sets)
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
    np.testing.assert_allclose(objs["bbox"][0], [20 / 80, 10 / 240, 70 / 80, 60 / 240], atol=1e-6)
    np.testing.assert_array_equal(objs["difficulty"], [0, 1, 2, -1])
    np.testing.assert_array_equal(objs["occluded"], [0, 1, 2, 0])
    np.testing.assert_allclose(objs["truncated"], [0.0, 0.2, 0.4, 0.0], atol=1e-6)
    np.testing.assert_allclose(objs["height"], [49, 29, 29, 14])
    # Van (neighbouring class) and DontCare are ignore regions; the Truck is neither.
    names = builder.info.features["ignore"]["type"].names
    assert sorted(names[t] for t in ex["ignore"]["type"]) == ["DontCare", "Van"]
    assert len(examples["000002"]["objects"]["label"]) == 0
    val = next(iter(tfds.as_numpy(builder.as_dataset(split="validation"))))
    np.testing.assert_array_equal(val["original_size"], [78, 236])  # padded to 80 x 240
    assert val["image"][78:].max() == 0 and val["image"][:, 236:].max() == 0


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
