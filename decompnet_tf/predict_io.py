"""predict.py's input and output: image files in, through the exported serving graph, pictures
and detections.json out.

detections.json: {"model_dir", "inference": {InferenceConfig's fields}, "images": [{"path",
"picture", "height", "width", "channels", "detections": [{"class_id", "class_name", "score",
"box", "box_pixels"}]}]}; detections by score; boxes [ymin, xmin, ymax, xmax], "box"
normalised, "box_pixels" in the original image's pixels (max exclusive).
"""

from __future__ import annotations

import dataclasses
import json
import os

import numpy as np
import tensorflow as tf

from decompnet_tf import viz

DETECTIONS_FILE = "detections.json"


def read_image(path: str) -> np.ndarray:
    """An image file (PNG, JPEG, GIF's first frame or BMP) as uint8 [H, W, 1 or 3], no alpha;
    FileNotFoundError or ValueError (not such an image) otherwise."""
    if not tf.io.gfile.exists(path) or tf.io.gfile.isdir(path):
        raise FileNotFoundError(f"{path}: no such image file; pass existing files in --images")
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    try:
        image = tf.io.decode_image(data, expand_animations=False, dtype=tf.uint8).numpy()
    except (tf.errors.InvalidArgumentError, ValueError):
        raise ValueError(f"{path} is not a readable image (PNG or JPEG, 8-bit gray or RGB)") \
            from None
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"{path} is an empty image ({image.shape[0]}x{image.shape[1]})")
    return image[..., :1] if image.shape[-1] == 2 else image[..., :3]


def detect(module, image: np.ndarray) -> dict:
    """A DetectorModule's n real detections on one uint8 [H, W, C] image, as numpy:
    "detection_boxes" [n, 4], "detection_classes" and "detection_scores" [n],
    "detection_masks" [n, H, W]."""
    out = module.serve(tf.constant(image[None]))
    n = int(out["num_detections"][0])
    return {k: out[k][0, :n].numpy() for k in ("detection_boxes", "detection_classes",
                                               "detection_scores", "detection_masks")}


def image_record(path: str, image: np.ndarray, dets: dict, names: list[str]) -> dict:
    """One image's entry of detections.json (see the module docstring)."""
    h, w = image.shape[:2]
    scale = np.array([h, w, h, w], np.float64)
    return {"path": path, "height": int(h), "width": int(w), "channels": int(image.shape[2]),
            "detections": [
                {"class_id": int(c), "class_name": names[int(c)], "score": float(s),
                 "box": [float(v) for v in box], "box_pixels": [float(v) for v in box * scale]}
                for box, c, s in zip(dets["detection_boxes"], dets["detection_classes"],
                                     dets["detection_scores"])]}


def picture_names(paths: list[str]) -> list[str]:
    """"<stem>_detections.png" per path, numbered where two stems are the same."""
    out, seen = [], {}
    for path in paths:
        stem = os.path.splitext(os.path.basename(path))[0]
        seen[stem] = seen.get(stem, 0) + 1
        out.append(f"{stem}_detections.png" if seen[stem] == 1 else
                   f"{stem}_{seen[stem]}_detections.png")
    return out


def predict_files(module, paths: list[str], images: list[np.ndarray], out_dir: str,
                  model_dir: str = "") -> dict:
    """Writes out_dir/<stem>_detections.png per image (`read_image`'s arrays of `paths`) and
    out_dir/detections.json; returns the latter's content."""
    settings, names = module.settings, list(module.class_names)
    tf.io.gfile.makedirs(out_dir)
    records = []
    for path, image, picture in zip(paths, images, picture_names(paths)):
        dets = detect(module, image)
        drawn = viz.draw_detections(image, dets["detection_boxes"], dets["detection_classes"],
                                    dets["detection_scores"], dets["detection_masks"], names,
                                    settings.mask_threshold)
        picture = os.path.join(out_dir, picture)
        viz.save_png(picture, drawn)
        records.append({**image_record(path, image, dets, names), "picture": picture})
    result = {"model_dir": model_dir, "inference": dataclasses.asdict(settings),
              "images": records}
    with tf.io.gfile.GFile(os.path.join(out_dir, DETECTIONS_FILE), "w") as f:
        f.write(json.dumps(result, indent=2))
    return result
