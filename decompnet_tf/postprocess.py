"""From DecompNet outputs to detections: boxes, scores, the stop rule and the OD API's format.

No NMS and no proposals: a category's detections are its maps before the stop signal (Fig. 3).
Box sources: "regressor" (section 2.3's network), "mask" (the extent of each map above half its
peak), "component" (the extent of that map's main 8-connected blob: a stray pixel does not
stretch the box) and "refined" (the image's ink inside that blob, upsampled to the image's
size: boxes at the image's resolution, not the maps' half of it).
"""

from __future__ import annotations

import tensorflow as tf

from decompnet_tf.config import BOX_SOURCES
from decompnet_tf.ops.boxes import box_mask

# The detector's outputs, in the TF Object Detection API's names (and the TFLite output order).
OUTPUT_KEYS = ("detection_boxes", "detection_classes", "detection_scores", "detection_masks",
               "num_detections", "detection_segmentation_scores")


def check_box_source(box_source: str) -> None:
    """Raise a ValueError unless `box_source` is one of `BOX_SOURCES`."""
    if box_source not in BOX_SOURCES:
        raise ValueError(f"box_source must be one of {BOX_SOURCES}, got {box_source!r}")


def with_box_source(outputs: dict, box_source: str, images: tf.Tensor | None = None) -> dict:
    """Return `outputs` with "boxes" from "regressor", "mask" (`mask_boxes`), "component" or
    "refined" (`refined_boxes`, which needs the network's input `images` [B, H, W, ch])."""
    if box_source == "regressor":
        return outputs
    maps = outputs["instance_maps"]
    if box_source == "refined":
        if images is None:
            raise ValueError("box_source='refined' reads the image: pass images")
        return {**outputs, "boxes": refined_boxes(maps, main_component(maps), images)}
    if box_source == "component":
        return {**outputs, "boxes": mask_boxes(maps, on=main_component(maps))}
    return {**outputs, "boxes": mask_boxes(maps)}


def detection_score(maps: tf.Tensor, boxes: tf.Tensor) -> tf.Tensor:
    """Eq. 5 (section 2.3): float [...] mean of `maps` [..., h, w] in normalised yxyx `boxes`."""
    maps = tf.cast(maps, tf.float32)
    boxes = tf.cast(boxes, maps.dtype)
    mask = box_mask(boxes, tf.shape(maps)[-2], tf.shape(maps)[-1])  # [..., h, w] M(b)
    inside = tf.reduce_sum(maps * mask, axis=[-2, -1])  # g^T M(b)
    area = tf.reduce_sum(mask, axis=[-2, -1])  # A(b) in pixels
    return tf.math.divide_no_nan(inside, area)


def segmentation_score(maps: tf.Tensor, delta: float | tf.Tensor) -> tf.Tensor:
    """Eq. 6 (section 2.4): float [...] mean of `maps` [..., h, w] over its pixels above `delta`."""
    maps = tf.cast(maps, tf.float32)
    above = maps > tf.cast(delta, maps.dtype)
    num = tf.reduce_sum(tf.where(above, maps, tf.zeros_like(maps)), axis=[-2, -1])
    den = tf.reduce_sum(tf.cast(above, maps.dtype), axis=[-2, -1])
    return tf.math.divide_no_nan(num, den)


def with_scores(outputs: dict, box_source: str = "regressor", segmentation_delta: float = 0.1,
                images: tf.Tensor | None = None) -> dict:
    """Add eq. 5 "detection_scores" and eq. 6 "segmentation_scores" [B, C, T] to `outputs`."""
    out = with_box_source(outputs, box_source, images)
    maps = out["instance_maps"]
    det = detection_score(maps, out["boxes"])
    seg = segmentation_score(maps, segmentation_delta)
    if "objectness" in out:
        det, seg = det * out["objectness"], seg * out["objectness"]
    return {**out, "detection_scores": det, "segmentation_scores": seg}


def above_half_peak(maps: tf.Tensor, relative_threshold: float = 0.5) -> tf.Tensor:
    """bool [..., h, w]: the pixels above `relative_threshold` times their map's positive peak."""
    peak = tf.reduce_max(maps, axis=[-2, -1], keepdims=True)
    # A float select instead of a broadcast logical_and: TFLite's LOGICAL_AND aborts the
    # interpreter on 5-D broadcasts ([B, C, T, h, w] & [B, C, T, 1, 1]).
    threshold = tf.where(peak > 0, relative_threshold * peak, float("inf"))
    return maps > threshold


def _neighbours(on: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
    """int32 [K, 8]: each "on" pixel's neighbours, as 1 + their place in `positions` (0: none)."""
    n, h, w = tf.shape(on)[0], on.shape[1], on.shape[2]
    # Each map framed by a border of off pixels, so that every neighbour index is valid.
    framed = (positions // (h * w)) * ((h + 2) * (w + 2)) \
        + (positions % (h * w) // w + 1) * (w + 2) + positions % w + 1
    place = tf.scatter_nd(framed[:, None], tf.range(1, tf.shape(positions)[0] + 1),
                          [n * (h + 2) * (w + 2)])
    steps = tf.constant([dy * (w + 2) + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)
                         if dy or dx])
    return tf.gather(place, framed[:, None] + steps)


def label_blobs(on: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Label the 8-connected blobs of bool [n, h, w] `on`: int32 [K] flat positions and [K] labels.

    Label equivalence (Kalentev et al., 2011) over the K "on" pixels alone; a blob's label is the
    place of its last pixel. Each round takes the neighbours' largest label, hooks each root to
    the largest label among the pixels naming it (a segment max) and jumps pointers twice, so the
    rounds grow with the log of a blob's longest path. TFLite builtins, and no pool (slow on one
    channel without AVX-512).
    """
    positions = tf.cast(tf.where(tf.reshape(on, [-1]))[:, 0], tf.int32)
    neighbours = _neighbours(on, positions)
    k = tf.shape(positions)[0]

    def round_(labels, _):
        padded = tf.concat([[-1], labels], axis=0)  # Place 0: no neighbour.
        near = tf.maximum(labels, tf.reduce_max(tf.gather(padded, neighbours), axis=-1))
        table = tf.maximum(labels, tf.math.unsorted_segment_max(near, labels, k))
        new = tf.maximum(table, near)
        for _ in range(2):
            new = tf.gather(new, new)
        return new, tf.reduce_any(tf.not_equal(new, labels))

    labels, _ = tf.while_loop(lambda _, changed: changed, round_, (tf.range(k), tf.constant(True)),
                              maximum_iterations=on.shape[1] * on.shape[2])
    return positions, labels


def main_component(maps: tf.Tensor, relative_threshold: float = 0.5) -> tf.Tensor:
    """bool [..., h, w]: each map's 8-connected `above_half_peak` blob holding the most mass."""
    maps = tf.convert_to_tensor(maps)
    h, w = maps.shape[-2], maps.shape[-1]
    flat = tf.reshape(maps, (-1, h, w))  # [n, h, w]
    n = tf.shape(flat)[0]
    positions, labels = label_blobs(above_half_peak(flat, relative_threshold))
    k = tf.shape(positions)[0]
    mass = tf.math.unsorted_segment_sum(tf.gather(tf.reshape(flat, [-1]), positions), labels, k)
    image = positions // (h * w)  # [K] which map each pixel is in.
    # Per map, the blob of the largest mass, the first listed (argmax's first index) on a tie.
    top = tf.gather(tf.math.unsorted_segment_max(mass, image, n), image)
    best = tf.math.unsorted_segment_min(tf.where(mass >= top, tf.range(k), k), image, n)
    keep = tf.cast(tf.equal(labels, tf.gather(best, image)), tf.int32)
    grid = tf.scatter_nd(positions[:, None], keep, [n * h * w]) > 0
    return tf.reshape(grid, tf.shape(maps))


def mask_boxes(maps: tf.Tensor, relative_threshold: float = 0.5,
               on: tf.Tensor | None = None) -> tf.Tensor:
    """Boxes spanning each map's pixels above `relative_threshold` times its peak, or `on`.

    float [..., h, w] `maps` -> float [..., 4] (ymin, xmin, ymax, xmax) normalised, max exclusive.
    """
    maps = tf.convert_to_tensor(maps)
    h, w = maps.shape[-2], maps.shape[-1]
    if on is None:
        on = above_half_peak(maps, relative_threshold)

    def extent(any_on, n):  # [..., n] bool -> (first index, one past the last) / n
        # min / max over the "on" indices (TFLite-friendly: no argmax or reverse of bools).
        idx = tf.range(n, dtype=tf.float32)
        first = tf.reduce_min(tf.where(any_on, idx, float(n)), axis=-1)
        last = tf.reduce_max(tf.where(any_on, idx + 1.0, 0.0), axis=-1)
        valid = first < last
        return tf.where(valid, first / n, 0.0), tf.where(valid, last / n, 0.0)

    ymin, ymax = extent(tf.reduce_any(on, axis=-1), h)
    xmin, xmax = extent(tf.reduce_any(on, axis=-2), w)
    return tf.stack([ymin, xmin, ymax, xmax], axis=-1)


def refined_boxes(maps: tf.Tensor, on: tf.Tensor, images: tf.Tensor) -> tf.Tensor:
    """Boxes at the image's resolution: the extent of the ink (pixels above 0 in any channel)
    under each map's `on` blob, the blob scaled up to the image's size by nearest neighbour; the
    blob's own box where no ink lies under it.

    A digit's true box is the tight box of its ink, and one map pixel is two image pixels: a
    10-px digit boxed on the map loses IoU to rounding alone. The blob is scaled as a 0/1 mask,
    not as map values, so the Keras model and its exports select the same pixels: float noise
    in the maps moves no pixel across a level.

    Args:
        maps: float [B, C, T, h, w]; on: bool, the same shape (`main_component`);
        images: float [B, H, W, ch], the network's input.

    Returns:
        float [B, C, T, 4], normalised yxyx, max exclusive.
    """
    maps = tf.convert_to_tensor(maps)
    c, t, h, w = maps.shape[1:]
    size = images.shape[1:3]
    blob = tf.reshape(tf.cast(on, tf.float32), (-1, h, w, 1))
    region = tf.reshape(tf.image.resize(blob, size, "nearest"), (-1, c * t, *size))
    # Float products instead of broadcast logical ops (TFLite's abort on 4-D+ broadcasts).
    ink = tf.cast(tf.reduce_max(images, axis=-1) > 0, tf.float32)[:, None]  # [B, 1, H, W]
    sel = region * ink > 0
    fine = mask_boxes(tf.cast(sel, tf.float32), on=sel)
    coarse = tf.reshape(mask_boxes(maps, on=on), (-1, c * t, 4))
    found = tf.reduce_any(sel, axis=[-2, -1])[..., None]
    return tf.reshape(tf.where(found, fine, coarse), (-1, c, t, 4))


def emitted(outputs: dict, stop_threshold: float) -> tf.Tensor:
    """bool [B, C, T]: which steps are detections, for training's counts and evaluation alike.

    Without a stop head, the steps before the first peak below `stop_threshold`; with one, every
    step whose objectness reaches it, not only a prefix: "hungarian" matching may empty any step.
    """
    if "objectness" in outputs:
        return outputs["objectness"] >= stop_threshold
    t = outputs["peaks"].shape[-1]
    return tf.sequence_mask(count_instances(outputs["peaks"], stop_threshold), t)


def count_instances(peaks: tf.Tensor, stop_threshold: float) -> tf.Tensor:
    """int32 [B, C]: the steps before the first of float [B, C, T] `peaks` below the threshold."""
    # "No step so far was below the threshold", with cumsum (a TFLite builtin; cumprod is not).
    below = tf.cast(peaks < stop_threshold, tf.int32)
    alive = tf.cast(tf.equal(tf.cumsum(below, axis=-1), 0), tf.int32)
    return tf.reduce_sum(alive, axis=-1)


def detections(outputs: dict, stop_threshold: float = 0.5, max_detections: int | None = None,
               image_size: tuple[int, int] | None = None, score: str = "detection_scores"):
    """Padded detections in the TF Object Detection API's names.

    Args:
        outputs: "instance_maps" [B, C, T, h, w], "boxes" [B, C, T, 4] and [B, C, T] scores.
        max_detections: N, the padded size (default C * T).
        image_size: (H, W) for the masks, ints or a dynamic int32 [2] (default the maps' size).

    Returns:
        "detection_boxes" [B, N, 4] (ymin, xmin, ymax, xmax normalised), "detection_masks"
        [B, N, H, W] in [0, 1], "num_detections" [B], and [B, N] classes, scores, steps (and
        segmentation scores if given); real detections first, by `score`, padding zero.
    """
    maps, boxes = outputs["instance_maps"], outputs["boxes"]
    c, t = maps.shape[1], maps.shape[2]
    n_max = max_detections or c * t
    alive = emitted(outputs, stop_threshold)  # [B, C, T]
    flat_alive = tf.reshape(alive, (-1, c * t))
    flat_score = tf.reshape(outputs[score], (-1, c * t))
    # Real detections rank above padding whatever their score (scores lie in [0, 1]).
    key = tf.where(flat_alive, flat_score + 2.0, tf.zeros_like(flat_score))
    _, order = tf.math.top_k(key, k=min(n_max, c * t))
    keep = tf.gather(flat_alive, order, batch_dims=1)
    num = tf.reduce_sum(tf.cast(keep, tf.int32), axis=-1)
    keep_f = tf.cast(keep, tf.float32)
    h, w = maps.shape[-2], maps.shape[-1]
    flat_maps = tf.gather(tf.reshape(maps, (-1, c * t, h, w)), order, batch_dims=1)
    if image_size is not None and (tf.is_tensor(image_size) or tuple(image_size) != (h, w)):
        n = flat_maps.shape[1]
        resized = tf.image.resize(tf.reshape(flat_maps, (-1, h, w, 1)), image_size, "bilinear")
        size = tf.shape(resized)[1:3]
        flat_maps = tf.reshape(resized, tf.concat([[-1, n], size], axis=0))
    out = {
        "detection_boxes": tf.gather(tf.reshape(boxes, (-1, c * t, 4)), order, batch_dims=1)
        * keep_f[..., None],
        "detection_classes": tf.where(keep, order // t, 0),
        "detection_scores": tf.gather(flat_score, order, batch_dims=1) * keep_f,
        "detection_masks": tf.clip_by_value(flat_maps, 0.0, 1.0) * keep_f[..., None, None],
        "num_detections": num,
        "detection_steps": tf.where(keep, order % t, 0),
    }
    if "segmentation_scores" in outputs:
        out["detection_segmentation_scores"] = tf.gather(
            tf.reshape(outputs["segmentation_scores"], (-1, c * t)), order, batch_dims=1) * keep_f
    if n_max > c * t:  # Pad to the requested size.
        pad = n_max - c * t
        out = {k: v if k == "num_detections" else tf.pad(
            v, [[0, 0], [0, pad]] + [[0, 0]] * (len(v.shape) - 2)) for k, v in out.items()}
    return out
