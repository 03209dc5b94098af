"""Drawing helpers (numpy + OpenCV): uint8 RGB [H, W, 3] pictures; boxes are
(ymin, xmin, ymax, xmax) normalised."""

from __future__ import annotations

import cv2
import numpy as np

# One colour per class id (RGB): digit 3 orange, 6 blue, 9 magenta.
CLASS_COLORS = ((255, 140, 0), (30, 144, 255), (220, 20, 220))
TRUE_COLOR = (0, 200, 0)  # Ground-truth boxes on qualitative sheets (paper Fig. 3: green).
PRED_COLOR = (230, 0, 0)  # Predicted boxes (paper Fig. 3: red).


def to_rgb(image: np.ndarray, scale: int = 1) -> np.ndarray:
    """uint8 (or float in [0, 1]) [H, W], [H, W, 1] or [H, W, 3] -> uint8 RGB [H*s, W*s, 3]."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = (np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if scale != 1:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    return image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=-1)


def overlay_masks(rgb: np.ndarray, masks: np.ndarray, labels, alpha: float = 0.45):
    """Tints each binary mask [n, h, w] (resized to the canvas) in its class colour."""
    out = rgb.astype(np.float32)
    h, w = rgb.shape[:2]
    for mask, label in zip(masks, labels):
        m = cv2.resize(np.asarray(mask, np.uint8).reshape(mask.shape[:2]), (w, h),
                       interpolation=cv2.INTER_NEAREST).astype(bool)
        out[m] = (1 - alpha) * out[m] + alpha * np.array(CLASS_COLORS[int(label) % 3])
    return out.astype(np.uint8)


def draw_boxes(rgb: np.ndarray, boxes, color=None, labels=None, names=None, thickness=1):
    """Draws normalised boxes; colour by class unless `color` is given; optional class names."""
    out = np.ascontiguousarray(rgb.copy())
    h, w = out.shape[:2]
    for i, box in enumerate(np.asarray(boxes).reshape(-1, 4)):
        ymin, xmin, ymax, xmax = box
        c = color or CLASS_COLORS[int(labels[i]) % 3]
        p0 = (int(round(xmin * w)), int(round(ymin * h)))
        p1 = (int(round(xmax * w)) - 1, int(round(ymax * h)) - 1)
        cv2.rectangle(out, p0, p1, c, thickness)
        if names is not None and labels is not None:
            cv2.putText(out, names[int(labels[i])], (p0[0] + 1, p0[1] + 10),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.35, c, 1, cv2.LINE_AA)
    return out


def grid(tiles: list[np.ndarray], cols: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Arranges equally sized RGB tiles in rows of `cols`, separated by `pad` pixels."""
    if not tiles:
        raise ValueError("grid() needs at least one tile")
    th, tw = tiles[0].shape[:2]
    rows = -(-len(tiles) // cols)
    out = np.full((rows * (th + pad) + pad, cols * (tw + pad) + pad, 3), fill, np.uint8)
    for i, tile in enumerate(tiles):
        r, c = divmod(i, cols)
        y, x = pad + r * (th + pad), pad + c * (tw + pad)
        out[y : y + th, x : x + tw] = tile
    return out


def example_tile(image, masks, boxes, labels, names, scale: int = 3) -> np.ndarray:
    """One dataset example: the image with class-tinted masks, class-coloured boxes and names."""
    rgb = overlay_masks(to_rgb(image, scale), masks, labels)
    return draw_boxes(rgb, boxes, labels=labels, names=names)


def save_png(path: str, rgb: np.ndarray) -> None:
    """Writes an RGB uint8 array to PNG through tf.io.gfile, so `path` may be on gs:// too."""
    import tensorflow as tf

    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(png_bytes(rgb))


def draw_detections(image: np.ndarray, boxes, classes, scores, masks, names,
                    mask_threshold: float) -> np.ndarray:
    """`image` (as `to_rgb` takes it) as uint8 RGB with masks, boxes and "name score" labels.

    Args:
      boxes, classes, scores: float [n, 4] normalised, int [n] indexing `names`, float [n].
      masks: float [n, h, w] in [0, 1], drawn above `mask_threshold` at the image's size.
    """
    rgb = to_rgb(image)
    h, w = rgb.shape[:2]
    masks = np.asarray(masks).reshape(-1, *np.shape(masks)[-2:])
    out = overlay_masks(rgb, masks > mask_threshold, classes)
    # Lines and text grow with the picture, so a large photo's boxes stay visible.
    thickness = max(1, round(min(h, w) / 200))
    font = max(0.35, min(h, w) / 500)
    out = draw_boxes(out, boxes, labels=classes, thickness=thickness)
    for box, label, score in zip(np.asarray(boxes).reshape(-1, 4), classes, scores):
        x, y = int(round(box[1] * w)), int(round(box[0] * h))
        text = f"{names[int(label)]} {float(score):.2f}"
        (_, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font, 1)
        y = y - 2 if y - th - 2 >= 0 else min(h - 1, y + th + 2)  # Above the box if it fits.
        cv2.putText(out, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, font,
                    CLASS_COLORS[int(label) % 3], 1, cv2.LINE_AA)
    return out


def png_bytes(rgb: np.ndarray) -> bytes:
    """An RGB uint8 array [H, W, 3] encoded as PNG (to write with tf.io.gfile)."""
    ok, data = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode a {rgb.shape} image as PNG")
    return data.tobytes()
