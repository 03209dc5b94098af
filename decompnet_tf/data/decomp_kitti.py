"""decomp_kitti examples -> the format `prepare_example` packs; a car's mask is its box mask
M(b) (eq. 5), as KITTI has no instance masks."""

from __future__ import annotations

import tensorflow as tf

from decompnet_tf.ops.boxes import box_mask


def kitti_example(example: dict, image_size: tuple[int, int], map_size: tuple[int, int]):
    """Builder features -> {"image": float32 [H, W, 3] in [0, 255], "objects": {"mask": float32
    [n, h, w, 1], "bbox": [n, 4] (ymin, xmin, ymax, xmax) normalised, "label": [n]}}, with
    (H, W) = `image_size` and (h, w) = `map_size`."""
    image = tf.cast(example["image"], tf.float32)
    if tuple(image.shape[:2]) != tuple(image_size):
        image = tf.image.resize(image, image_size, method="area")
    boxes = tf.cast(example["objects"]["bbox"], tf.float32)
    masks = box_mask(boxes, map_size[0], map_size[1])[..., None]
    return {"image": image,
            "objects": {"mask": masks, "bbox": boxes, "label": example["objects"]["label"]}}
