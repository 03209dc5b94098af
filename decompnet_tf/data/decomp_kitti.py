"""decomp_kitti examples -> the decomp_mnist example format that `prepare_example` packs.

KITTI has no instance masks, so each car's target mask is its box mask M(b) (the pixels whose
centres lie in the box, as in eq. 5's detection score), drawn at the category-map size; the
padded 384x1248 canvas of the builder is resized to the model's input size (boxes are
normalised to the canvas, so they stay consistent). Pure functions: eager or inside tf.data.
"""

from __future__ import annotations

import tensorflow as tf

from decompnet_tf.ops.boxes import box_mask


def kitti_example(example: dict, image_size: tuple[int, int], map_size: tuple[int, int]):
    """One decomp_kitti example -> {"image", "objects": {"mask", "bbox", "label"}}.

    Args:
      example: the builder's features: "image" uint8 [384, 1248, 3], "objects": {"bbox"
        float32 [n, 4] (ymin, xmin, ymax, xmax normalised to the canvas), "label" int64 [n]}.
      image_size: (H, W) the model's input size.
      map_size: (h, w) of the category maps (where the box masks are drawn).

    Returns:
      {"image": float32 [H, W, 3] in [0, 255], "objects": {"mask": float32 [n, h, w, 1],
       "bbox": float32 [n, 4], "label": int64 [n]}}.
    """
    image = tf.cast(example["image"], tf.float32)
    if tuple(image.shape[:2]) != tuple(image_size):
        image = tf.image.resize(image, image_size, method="area")
    boxes = tf.cast(example["objects"]["bbox"], tf.float32)
    masks = box_mask(boxes, map_size[0], map_size[1])[..., None]
    return {"image": image,
            "objects": {"mask": masks, "bbox": boxes, "label": example["objects"]["label"]}}
