"""Synthesis of decomp_mnist images (paper section 3.1): pure numpy, no TensorFlow.

One image:
- the number of objects is uniform in [min_objects, max_objects] (paper: 5..10);
- each object is a random digit of one of the target classes (paper: 3, 6, 9; the class first,
  uniformly, then a digit of that class), scaled by a factor uniform in [0.5, 2] with bilinear
  interpolation, cropped to the tight bounds of its nonzero pixels and placed uniformly at
  random fully inside the image;
- the boxes of any two objects overlap by IoU <= max_iou (paper: 0.2), by rejection sampling
  with a bounded number of tries: each try redraws digit, scale and position; an object that
  fails `tries_per_object` times restarts the image, and `max_restarts` failed restarts raise
  `GenerationError` (an impossible request is an error, never a hang);
- 30 clutter strokes as in Mnih et al. 2014 ("cluttered MNIST"): 8x8 crops of random digits of
  ANY class (from the same split's pool), each crop chosen to hold ink (up to 10 redraws),
  pasted at a uniform random place fully inside the image; the clutter is part of the image
  but of no mask;
- objects and clutter combine by pixel-wise max.

Ground truth per object: `mask` = the scaled digit's pixels > 0 (after rounding to uint8) placed
in the 100x100 frame; `bbox` = the tight bounds of that mask, (ymin, xmin, ymax, xmax)
normalised by the image size with max exclusive (a box covering pixel rows 10..19 has
ymin = 0.10, ymax = 0.20), so the box of a mask is exactly recoverable from it.

Every image is generated from its own generator seeded by (seed, split, index), so the result
does not depend on how the work is split between processes.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np

SPLIT_IDS = {"train": 0, "test": 1, "validation": 2}


class GenerationError(RuntimeError):
    """The requested layout could not be sampled within the bounded number of tries."""


@dataclasses.dataclass(frozen=True)
class SynthParams:
    """Parameters of the generator (defaults: paper section 3.1)."""

    image_size: int = 100
    min_objects: int = 5
    max_objects: int = 10
    digit_classes: tuple[int, ...] = (3, 6, 9)
    min_scale: float = 0.5
    max_scale: float = 2.0
    max_iou: float = 0.2
    num_clutter: int = 30
    clutter_size: int = 8
    tries_per_object: int = 200
    max_restarts: int = 20

    def __post_init__(self):
        if not 0 < self.min_objects <= self.max_objects:
            raise ValueError(
                f"need 0 < min_objects <= max_objects, got {self.min_objects}, {self.max_objects}"
            )
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(f"need 0 < min_scale <= max_scale, got {self.min_scale}, "
                             f"{self.max_scale}")
        if int(np.ceil(28 * self.max_scale)) > self.image_size:
            raise ValueError(
                f"max_scale {self.max_scale} makes digits of {28 * self.max_scale:.0f} px, larger "
                f"than the {self.image_size} px image; lower max_scale or raise image_size"
            )
        if not 0 <= self.max_iou <= 1:
            raise ValueError(f"max_iou must be in [0, 1], got {self.max_iou}")


@dataclasses.dataclass(frozen=True)
class Example:
    """One synthesized image.

    Attributes:
      image: uint8 [size, size].
      masks: uint8 [n, size, size], values 0/1.
      boxes: float32 [n, 4] ymin, xmin, ymax, xmax normalised (tight bounds of the masks).
      labels: int64 [n] class ids, the index into `digit_classes` (0 = "3", 1 = "6", 2 = "9").
      digit_ids: int64 [n] indices of the source digits in their pool (for disjointness tests).
    """

    image: np.ndarray
    masks: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    digit_ids: np.ndarray


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of boxes a [4] against boxes b [m, 4], both (ymin, xmin, ymax, xmax). Returns [m]."""
    iy = np.clip(np.minimum(a[2], b[:, 2]) - np.maximum(a[0], b[:, 0]), 0, None)
    ix = np.clip(np.minimum(a[3], b[:, 3]) - np.maximum(a[1], b[:, 1]), 0, None)
    inter = iy * ix
    area = lambda x: (x[..., 2] - x[..., 0]) * (x[..., 3] - x[..., 1])  # noqa: E731
    return inter / np.maximum(area(a) + area(b) - inter, 1e-12)


def scale_digit(digit: np.ndarray, scale: float) -> np.ndarray:
    """Resizes a 28x28 uint8 digit by `scale` and crops it to its nonzero pixels.

    Returns a uint8 [h, w] glyph whose first/last rows and columns all hold ink.
    """
    side = max(1, int(round(28 * scale)))
    scaled = cv2.resize(digit, (side, side), interpolation=cv2.INTER_LINEAR)
    ys, xs = np.nonzero(scaled)
    if len(ys) == 0:
        raise GenerationError("a source digit has no ink after scaling")
    return scaled[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _add_clutter(canvas, rng, params, pool_images):
    size, c = params.image_size, params.clutter_size
    for _ in range(params.num_clutter):
        for _ in range(10):  # Prefer a crop that holds ink, like Mnih et al.'s strokes.
            digit = pool_images[rng.integers(len(pool_images))]
            y, x = rng.integers(0, 28 - c + 1, size=2)
            crop = digit[y : y + c, x : x + c]
            if crop.any():
                break
        py, px = rng.integers(0, size - c + 1, size=2)
        np.maximum(canvas[py : py + c, px : px + c], crop, out=canvas[py : py + c, px : px + c])


def _sample_layout(rng, params, pool_images, class_pools, n):
    """Places n objects; returns a list of (glyph, y, x, label, digit_id) or None on failure."""
    size = params.image_size
    placed, boxes = [], np.zeros((0, 4))
    for _ in range(n):
        for _ in range(params.tries_per_object):
            label = int(rng.integers(len(class_pools)))
            digit_id = int(class_pools[label][rng.integers(len(class_pools[label]))])
            glyph = scale_digit(pool_images[digit_id], rng.uniform(params.min_scale,
                                                                   params.max_scale))
            h, w = glyph.shape
            y, x = int(rng.integers(0, size - h + 1)), int(rng.integers(0, size - w + 1))
            box = np.array([y, x, y + h, x + w], dtype=np.float64)
            if len(boxes) == 0 or box_iou(box, boxes).max() <= params.max_iou:
                placed.append((glyph, y, x, label, digit_id))
                boxes = np.concatenate([boxes, box[None]])
                break
        else:
            return None
    return placed


def generate_example(
    seed: int,
    split: str,
    index: int,
    pool_images: np.ndarray,
    pool_labels: np.ndarray,
    params: SynthParams = SynthParams(),
) -> Example:
    """Generates image `index` of `split`, deterministically from (seed, split, index).

    Args:
      pool_images: uint8 [n, 28, 28], the split's digit pool (objects AND clutter come from it).
      pool_labels: int [n] MNIST labels of the pool.
    """
    class_pools = [np.flatnonzero(pool_labels == d) for d in params.digit_classes]
    empty = [d for d, p in zip(params.digit_classes, class_pools) if len(p) == 0]
    if empty:
        raise GenerationError(f"the digit pool holds no digit of class(es) {empty}")
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    size = params.image_size
    n = int(rng.integers(params.min_objects, params.max_objects + 1))
    for _ in range(params.max_restarts):
        placed = _sample_layout(rng, params, pool_images, class_pools, n)
        if placed is not None:
            break
    else:
        raise GenerationError(
            f"could not place {n} objects with box IoU <= {params.max_iou} in a {size}x{size} "
            f"image after {params.max_restarts} restarts of {params.tries_per_object} tries per "
            "object; lower max_objects or max_scale, or raise max_iou"
        )
    canvas = np.zeros((size, size), np.uint8)
    _add_clutter(canvas, rng, params, pool_images)
    masks = np.zeros((n, size, size), np.uint8)
    boxes = np.zeros((n, 4), np.float32)
    for i, (glyph, y, x, _, _) in enumerate(placed):
        h, w = glyph.shape
        region = canvas[y : y + h, x : x + w]
        np.maximum(region, glyph, out=region)
        masks[i, y : y + h, x : x + w] = glyph > 0
        boxes[i] = np.array([y, x, y + h, x + w], np.float32) / size
    return Example(
        image=canvas,
        masks=masks,
        boxes=boxes,
        labels=np.array([p[3] for p in placed], np.int64),
        digit_ids=np.array([p[4] for p in placed], np.int64),
    )


def mask_to_box(mask: np.ndarray) -> np.ndarray:
    """Tight (ymin, xmin, ymax, xmax) of a binary [h, w] mask, normalised, max exclusive."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    return np.array([ys.min() / h, xs.min() / w, (ys.max() + 1) / h, (xs.max() + 1) / w],
                    np.float32)
