"""decomp_kitti: KITTI object detection (cars) for decompNet (paper Appendix A).

KITTI's licence requires each user to download it, so the builder reads the user's copy from the
manual dir; parsing lives in `decompnet_tf.data.kitti_labels` (shared with the evaluation,
which applies the same difficulty rules), this file only wires it to TFDS.
"""

from __future__ import annotations

import dataclasses
import os
import zipfile

import cv2
import numpy as np
import tensorflow_datasets as tfds

from decompnet_tf.data import kitti_labels as kp

IMAGESETS = os.path.join(os.path.dirname(__file__), "imagesets")
IMAGE_ZIP, LABEL_ZIP = "data_object_image_2.zip", "data_object_label_2.zip"


@dataclasses.dataclass
class DecompKittiConfig(tfds.core.BuilderConfig):
    """A decomp_kitti variant.

    classes: KITTI types kept as objects (class ids in this order).
    neighbours: types neither rewarded nor penalised by the evaluation (the devkit's
      "neighbouring classes": Van for Car); stored with DontCare regions as ignore regions.
    image_size: (height, width) every image is brought to: scaled down if larger, then padded
      at the bottom and right with zeros (boxes are normalised to this canvas).
    imagesets: folder with train.txt and val.txt id lists (None: the standard split that ships
      beside this file).
    """

    classes: tuple[str, ...] = ("Car",)
    neighbours: tuple[str, ...] = ("Van",)
    image_size: tuple[int, int] = (384, 1248)
    imagesets: str | None = None


class DecompKitti(tfds.core.GeneratorBasedBuilder):
    """KITTI 2D object detection, Chen et al. 2015's train/val split (3,712 / 3,769 images)."""

    VERSION = tfds.core.Version("2.0.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release.",
        "2.0.0": "Boxes as the devkit reads them: the label's (left, top, right, bottom) over the "
                 "canvas, no +1 on right and bottom. A car's difficulty needs a height above "
                 "(not at) the minimum, as the devkit's `height<=MIN_HEIGHT` ignore rule.",
    }
    BUILDER_CONFIGS = [
        DecompKittiConfig(name="cars", description="Car objects; Van and DontCare ignored."),
        DecompKittiConfig(name="cars_vans", classes=("Car", "Van"), neighbours=(),
                          description="Car and Van objects; DontCare ignored."),
    ]
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""
    Download KITTI's 2D object detection data (https://www.cvlibs.net/datasets/kitti/eval_object.php;
    registration required): "left color images of object data set" ({IMAGE_ZIP}) and "training
    labels of object data set" ({LABEL_ZIP}). Put both zips in the manual dir
    (~/tensorflow_datasets/downloads/manual/ or --manual_dir), or their extracted
    training/image_2/*.png and training/label_2/*.txt.
    """

    def _info(self) -> tfds.core.DatasetInfo:
        h, w = self.builder_config.image_size
        return self.dataset_info_from_configs(
            description="KITTI cars with truncation, occlusion, box height and ignore regions. "
                        "KITTI has no instance masks: models use the box masks.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(h, w, 3), encoding_format="png"),
                "image_id": tfds.features.Text(),
                "original_size": tfds.features.Tensor(shape=(2,), dtype=np.int32),
                "objects": tfds.features.Sequence({
                    "bbox": tfds.features.BBoxFeature(),
                    "label": tfds.features.ClassLabel(names=list(self.builder_config.classes)),
                    "truncated": np.float32,
                    "occluded": np.int32,
                    "height": np.float32,  # bottom - top in original pixels (no +1).
                    # 0 easy, 1 moderate, 2 hard, -1 none: decided on the label file's doubles
                    # (as the devkit), which float32 height / truncation cannot always repeat.
                    "difficulty": np.int32,
                }),
                "ignore": tfds.features.Sequence({
                    "bbox": tfds.features.BBoxFeature(),
                    "type": tfds.features.ClassLabel(names=["DontCare", *kp.TYPES[:-1]]),
                }),
            }),
            homepage="https://www.cvlibs.net/datasets/kitti/eval_object.php",
        )

    def _split_generators(self, dl_manager):
        manual = os.fspath(dl_manager.manual_dir)  # TFDS prints the instructions if missing.
        source = KittiSource(manual)
        splits = {}
        for name, split in (("train", "train"), ("val", "validation")):
            folder = self.builder_config.imagesets or IMAGESETS
            with open(os.path.join(folder, f"{name}.txt")) as f:
                splits[split] = self._generate_examples(source, kp.read_id_list(f.read()))
        return splits

    def _generate_examples(self, source, ids):
        for image_id in ids:
            yield image_id, make_example(image_id, source.image(image_id),
                                         source.labels(image_id), self.builder_config)


class KittiSource:
    """Reads images and label files from the zips or the extracted tree in `root`."""

    def __init__(self, root: str):
        self.root = root
        self.zips = {}
        for name in (IMAGE_ZIP, LABEL_ZIP):
            if os.path.isfile(os.path.join(root, name)):
                self.zips[name] = zipfile.ZipFile(os.path.join(root, name))
        if IMAGE_ZIP not in self.zips and not os.path.isdir(
                os.path.join(root, "training", "image_2")):
            raise FileNotFoundError(
                f"no KITTI images in {root}: expected {IMAGE_ZIP} or training/image_2/. "
                + DecompKitti.MANUAL_DOWNLOAD_INSTRUCTIONS)

    def _read(self, zip_name, member):
        if zip_name in self.zips:
            try:
                return self.zips[zip_name].read(member)
            except KeyError:
                return None
        path = os.path.join(self.root, member)
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            return f.read()

    def image(self, image_id: str) -> np.ndarray:
        member = f"training/image_2/{image_id}.png"
        data = self._read(IMAGE_ZIP, member)
        if data is None:
            raise FileNotFoundError(f"{member} not found in {self.root}")
        image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError(f"{member}: not a readable image")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def labels(self, image_id: str) -> list[kp.KittiObject]:
        member = f"training/label_2/{image_id}.txt"
        data = self._read(LABEL_ZIP, member)
        if data is None:
            raise FileNotFoundError(
                f"image {image_id} has no label file {member} in {self.root}; both "
                f"{LABEL_ZIP} and {IMAGE_ZIP} (or training/label_2 and training/image_2) are "
                "needed")
        return kp.parse_label_file(data.decode("ascii"), member)


def fit_image(image: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, float]:
    """Scales `image` down to fit `size` (never up), pads bottom/right; returns (canvas, scale)."""
    h, w = image.shape[:2]
    scale = min(1.0, size[0] / h, size[1] / w)
    if scale < 1.0:
        image = cv2.resize(image, (round(w * scale), round(h * scale)),
                           interpolation=cv2.INTER_AREA)
    canvas = np.zeros((*size, 3), np.uint8)
    canvas[: image.shape[0], : image.shape[1]] = image
    return canvas, scale


def make_example(image_id, image, objects, config: DecompKittiConfig) -> dict:
    """The feature dict of one image; boxes normalised to the padded canvas.

    A box is the label's (left, top, right, bottom) times the image's scale over the canvas size,
    with no +1: KITTI's boxes are sub-pixel floats and the devkit (evaluate_object.cpp,
    imageBoxOverlap) takes their area as (x2 - x1) * (y2 - y1), as they are.
    """
    canvas, scale = fit_image(image, config.image_size)
    h, w = config.image_size

    def bbox(o):
        left, top, right, bottom = (v * scale for v in o.box)
        return tfds.features.BBox(ymin=min(top / h, 1.0), xmin=min(left / w, 1.0),
                                  ymax=min(bottom / h, 1.0), xmax=min(right / w, 1.0))

    kept = [o for o in objects if o.type in config.classes]
    ignored = [o for o in objects if o.type == "DontCare" or o.type in config.neighbours]
    ignore_names = ["DontCare", *kp.TYPES[:-1]]
    return {
        "image": canvas,
        "image_id": image_id,
        "original_size": np.array(image.shape[:2], np.int32),
        "objects": {
            "bbox": [bbox(o) for o in kept],
            "label": [config.classes.index(o.type) for o in kept],
            "truncated": np.array([o.truncated for o in kept], np.float32),
            "occluded": np.array([o.occluded for o in kept], np.int32),
            "height": np.array([o.height for o in kept], np.float32),
            "difficulty": np.array([kp.difficulty(o) for o in kept], np.int32),
        },
        "ignore": {"bbox": [bbox(o) for o in ignored],
                   "type": [ignore_names.index(o.type) for o in ignored]},
    }
