"""From DecompNet outputs to detections: the stop rule and the OD API's output format.

No NMS and no proposals (the paper's point): per category, the instance maps are read in
emission order and the first map whose peak activation falls below `stop_threshold` ends that
category (the paper's "stop sign", Fig. 3); every map before it is one detection. A model with a
stop head emits every step whose objectness reaches the threshold instead (see `emitted`).
"""

from __future__ import annotations

import tensorflow as tf

BOX_SOURCES = ("regressor", "mask")


def check_box_source(box_source: str) -> None:
    """A clear error for a box source other than "regressor" and "mask"."""
    if box_source not in BOX_SOURCES:
        raise ValueError(f"box_source must be 'regressor' or 'mask', got {box_source!r}")


def with_box_source(outputs: dict, box_source: str) -> dict:
    """DecompNet outputs with their "boxes" taken from `box_source`: the regressor's (as they
    are) or read off the instance maps (`mask_boxes`)."""
    if box_source == "regressor":
        return outputs
    return {**outputs, "boxes": mask_boxes(outputs["instance_maps"])}


def stop_signal(outputs: dict) -> tf.Tensor:
    """[B, C, T] what the stop rule reads: the stop head's "objectness" when the model has one,
    else the "peaks" (maximum) of the instance maps."""
    return outputs["objectness"] if "objectness" in outputs else outputs["peaks"]


def mask_boxes(maps: tf.Tensor, relative_threshold: float = 0.5) -> tf.Tensor:
    """Boxes read off the instance maps instead of the box regressor (section 2.3's network).

    A box spans the pixels above `relative_threshold` times the map's own peak; an all-zero
    (or negative) map gives the all-zero box.

    Args:
      maps: float [..., h, w] instance maps.
    Returns:
      float [..., 4] (ymin, xmin, ymax, xmax) normalised, max exclusive.
    """
    maps = tf.convert_to_tensor(maps)
    h, w = maps.shape[-2], maps.shape[-1]
    peak = tf.reduce_max(maps, axis=[-2, -1], keepdims=True)
    on = (maps > relative_threshold * peak) & (peak > 0)

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


def emitted(outputs: dict, stop_threshold: float) -> tf.Tensor:
    """bool [B, C, T]: which steps are detections.

    Peaks (the paper): the steps before the first map whose peak falls below the threshold
    (`count_instances`). Stop head: every step whose objectness reaches the threshold. The
    matching may assign the empty target to ANY step (whichever fits it best, section 2.2), so
    a trained stop head marks the matched steps wherever they are, not only a prefix; reading
    it like the peaks would drop every object after the first step it marks empty.
    """
    if "objectness" in outputs:
        return outputs["objectness"] >= stop_threshold
    t = outputs["peaks"].shape[-1]
    return tf.sequence_mask(count_instances(outputs["peaks"], stop_threshold), t)


def count_instances(peaks: tf.Tensor, stop_threshold: float) -> tf.Tensor:
    """Instances emitted per category: the steps before the first peak below the threshold.

    Args:
      peaks: float [batch, C, T] maximum of each instance map.
    Returns:
      int32 [batch, C].
    """
    # "No step so far was below the threshold", with cumsum (a TFLite builtin; cumprod is not).
    below = tf.cast(peaks < stop_threshold, tf.int32)
    alive = tf.cast(tf.equal(tf.cumsum(below, axis=-1), 0), tf.int32)
    return tf.reduce_sum(alive, axis=-1)


def detections(outputs: dict, stop_threshold: float = 0.5, max_detections: int | None = None,
               image_size: tuple[int, int] | None = None, score: str = "detection_scores"):
    """Padded detections in the TF Object Detection API's names.

    Args:
      outputs: DecompNet outputs: "instance_maps" [B, C, T, h, w], "boxes" [B, C, T, 4],
        "peaks" (or "objectness") and `score` [B, C, T].
      stop_threshold: stop signal (`stop_signal`) below which a category stops.
      max_detections: N, the padded size (default C * T: nothing is ever cut).
      image_size: (H, W) to resize the masks to (default: the maps' size); ints or a dynamic
        int32 [2] tensor (the serving signature's input size).
      score: which score ranks the detections: "detection_scores" (eq. 5) or
        "segmentation_scores" (eq. 6).

    Returns:
      {"detection_boxes": float32 [B, N, 4] (ymin, xmin, ymax, xmax normalised),
       "detection_classes": int32 [B, N] (0-based class ids), "detection_scores": float32 [B, N]
       (0 for padding), "detection_masks": float32 [B, N, H, W] instance maps in [0, 1],
       "num_detections": int32 [B], "detection_steps": int32 [B, N] (emission step)}; real
      detections come first, ordered by score.
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
    if n_max > c * t:  # Pad to the requested size.
        pad = n_max - c * t
        out = {k: v if k == "num_detections" else tf.pad(
            v, [[0, 0], [0, pad]] + [[0, 0]] * (len(v.shape) - 2)) for k, v in out.items()}
    return out
