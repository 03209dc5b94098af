"""The stop rule and the detection outputs (no NMS)."""

import numpy as np
import tensorflow as tf

from decompnet_tf.config import BOX_SOURCES
from decompnet_tf.postprocess import (
    count_instances,
    detection_score,
    detections,
    emitted,
    label_blobs,
    main_component,
    mask_boxes,
    refined_boxes,
    segmentation_score,
    with_scores,
)


def test_count_stops_at_first_peak_below_threshold():
    peaks = tf.constant([[[0.9, 0.8, 0.2, 0.9], [0.1, 0.9, 0.9, 0.9], [0.6, 0.6, 0.6, 0.6]]])
    np.testing.assert_array_equal(count_instances(peaks, 0.5).numpy(), [[2, 0, 4]])


def test_detections_keep_emitted_maps_ranked_by_score():
    b, c, t, h, w = 1, 2, 3, 4, 4
    maps = np.zeros((b, c, t, h, w), np.float32)
    maps[0, 0, 0, 0, 0] = maps[0, 0, 1, 1, 1] = maps[0, 1, 0, 2, 2] = 1.0
    peaks = maps.max(axis=(-2, -1))
    scores = np.array([[[0.3, 0.7, 0.0], [0.5, 0.0, 0.0]]], np.float32)
    boxes = np.random.default_rng(0).random((b, c, t, 4)).astype(np.float32)
    seg = np.array([[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]]], np.float32)
    out = detections({"instance_maps": maps, "boxes": boxes, "peaks": peaks,
                      "detection_scores": scores, "segmentation_scores": seg},
                     stop_threshold=0.5, image_size=(8, 8))
    assert int(out["num_detections"][0]) == 3
    np.testing.assert_allclose(out["detection_scores"][0, :3], [0.7, 0.5, 0.3])
    np.testing.assert_array_equal(out["detection_classes"][0, :3], [0, 1, 0])
    np.testing.assert_array_equal(out["detection_steps"][0, :3], [1, 0, 0])
    # Each detection's eq. 6 score travels with it; padding scores 0.
    np.testing.assert_allclose(out["detection_segmentation_scores"][0], [0.2, 0.4, 0.1, 0, 0, 0])
    np.testing.assert_allclose(out["detection_boxes"][0, 0], boxes[0, 0, 1])
    assert out["detection_masks"].shape == (1, 6, 8, 8)
    assert float(tf.reduce_sum(out["detection_scores"][0, 3:])) == 0.0
    assert float(tf.reduce_max(out["detection_masks"][0, 3:])) == 0.0
    padded = detections({"instance_maps": maps, "boxes": boxes, "peaks": peaks,
                         "detection_scores": scores}, max_detections=10)
    assert padded["detection_boxes"].shape == (1, 10, 4)


def _np_mask_box(m, rel=0.5):
    """Reference: the extent of the pixels above rel * peak, by loops."""
    peak = m.max()
    if peak <= 0:
        return [0.0, 0.0, 0.0, 0.0]
    rows = [r for r in range(m.shape[0]) if (m[r] > rel * peak).any()]
    cols = [c for c in range(m.shape[1]) if (m[:, c] > rel * peak).any()]
    h, w = m.shape
    return [rows[0] / h, cols[0] / w, (rows[-1] + 1) / h, (cols[-1] + 1) / w]


def test_mask_boxes_match_a_loop_reference_eagerly_and_in_tf_function():
    rng = np.random.default_rng(0)
    maps = np.zeros((3, 2, 6, 9), np.float32)
    maps[0, 0, 1:4, 2:7] = rng.uniform(0.6, 1.0, (3, 5))
    maps[0, 0, 5, 8] = 0.2  # Below half the peak: outside the box.
    maps[1, 1] = rng.uniform(-1, 1, (6, 9))  # Linear maps may be negative.
    maps[2, 0] = -0.5  # No positive pixel: the all-zero box.
    ref = np.array([[_np_mask_box(m) for m in per] for per in maps])
    np.testing.assert_allclose(mask_boxes(maps).numpy(), ref, atol=1e-6)
    np.testing.assert_allclose(tf.function(mask_boxes)(tf.constant(maps)).numpy(), ref,
                               atol=1e-6)


def test_stop_head_emits_every_marked_step_not_just_a_prefix():
    # The matching may give the empty target to step 0; the head then marks steps 1 and 2.
    obj = tf.constant([[[0.1, 0.9, 0.8], [0.7, 0.2, 0.6]]])
    peaks = tf.ones((1, 2, 3))
    np.testing.assert_array_equal(emitted({"peaks": peaks, "objectness": obj}, 0.5).numpy(),
                                  [[[False, True, True], [True, False, True]]])
    # Without a head the paper's rule holds: the first dim map ends the category.
    np.testing.assert_array_equal(emitted({"peaks": obj}, 0.5).numpy(),
                                  [[[False, False, False], [True, False, False]]])
    maps = np.ones((1, 2, 3, 2, 2), np.float32)
    out = detections({"instance_maps": maps, "boxes": np.zeros((1, 2, 3, 4), np.float32),
                      "peaks": peaks, "objectness": obj, "detection_scores": obj},
                     stop_threshold=0.5)
    assert int(out["num_detections"][0]) == 4
    np.testing.assert_array_equal(out["detection_steps"][0, :4], [1, 2, 0, 2])  # by score


def test_detection_score_hand_case():
    maps = np.zeros((2, 4, 4), np.float32)
    maps[0, :2, :2] = [[1.0, 0.5], [0.0, 1.0]]
    maps[0, 3, 3] = 9.0  # outside the box
    # Box covering the top-left 2x2 pixels (pixel centres 0.125 and 0.375 are inside).
    boxes = np.array([[0.0, 0.0, 0.5, 0.5], [0.2, 0.2, 0.2, 0.2]], np.float32)
    out = detection_score(tf.constant(maps), tf.constant(boxes)).numpy()
    # (1 + 0.5 + 0 + 1) / 4 pixels; the second box has zero area -> 0.
    np.testing.assert_allclose(out, [0.625, 0.0])


def test_segmentation_score_hand_case():
    maps = tf.constant([[[0.9, 0.05], [0.5, 0.0]], [[0.1, 0.05], [0.0, 0.0]]])
    out = segmentation_score(maps, 0.1).numpy()
    # Image 0: pixels above 0.1 are 0.9 and 0.5 -> 0.7. Image 1: none strictly above -> 0.
    np.testing.assert_allclose(out, [0.7, 0.0], atol=1e-7)


def test_with_scores_scores_the_reported_boxes_times_objectness():
    rng = np.random.default_rng(0)
    maps = rng.random((1, 2, 3, 8, 8)).astype(np.float32) * 0.2
    maps[0, 0, 0, 1:4, 2:6] = 1.0  # one bright blob: its mask box is [1/8, 2/8, 4/8, 6/8]
    regressed = np.tile(np.array([0.0, 0.0, 1.0, 1.0], np.float32), (1, 2, 3, 1))
    obj = rng.random((1, 2, 3)).astype(np.float32)
    outputs = {"instance_maps": tf.constant(maps), "boxes": tf.constant(regressed),
               "peaks": tf.reduce_max(maps, axis=(-2, -1))}
    plain = with_scores(outputs, "regressor", 0.1)
    np.testing.assert_allclose(plain["detection_scores"], maps.mean(axis=(-2, -1)), rtol=1e-5)
    masked = with_scores(outputs, "mask", 0.1)
    np.testing.assert_allclose(masked["boxes"][0, 0, 0], [1 / 8, 2 / 8, 4 / 8, 6 / 8])
    # Eq. 5 of the box that is evaluated: the blob's mean, 1.0, not the whole map's.
    assert float(masked["detection_scores"][0, 0, 0]) == 1.0
    np.testing.assert_allclose(masked["segmentation_scores"],
                               segmentation_score(maps, 0.1), rtol=1e-6)
    headed = with_scores({**outputs, "objectness": tf.constant(obj)}, "mask", 0.1)
    np.testing.assert_allclose(headed["detection_scores"],
                               masked["detection_scores"].numpy() * obj, rtol=1e-6)
    np.testing.assert_allclose(headed["segmentation_scores"],
                               masked["segmentation_scores"].numpy() * obj, rtol=1e-6)


def component_reference(maps: np.ndarray) -> np.ndarray:
    """main_component by scipy: label the above-half-peak pixels (8-connected), keep the blob
    of largest summed map value; ties go to the blob whose last pixel (row-major) comes first.
    maps: float [n, h, w] -> bool [n, h, w]."""
    from scipy import ndimage

    out = np.zeros(maps.shape, bool)
    for i, m in enumerate(maps):
        on = (m > 0.5 * m.max()) & (m.max() > 0)
        labels, n = ndimage.label(on, structure=np.ones((3, 3)))
        if n == 0:
            continue
        index = range(1, n + 1)
        mass = np.asarray(ndimage.sum(m.astype(np.float64), labels, index=index))
        last = np.asarray(ndimage.maximum(np.arange(m.size).reshape(m.shape), labels, index))
        tied = np.flatnonzero(mass == mass.max())
        out[i] = labels == 1 + tied[np.argmin(last[tied])]
    return out


def component_test_maps() -> np.ndarray:
    """float32 [48, 16, 15]: sparse random maps of eighths (sums are exact in float32, so
    equal masses tie exactly, and single pixels of the peak value tie often), an empty map,
    a negative map, a tie that row-major first pixels would break the other way, and a
    one-pixel-wide snake whose path (111 pixels) is longer than
    any small iteration bound, beside a blob of smaller mass."""
    rng = np.random.default_rng(3)
    density = np.where(np.arange(48) % 2, 0.1, 0.35)[:, None, None]  # Points and big blobs.
    maps = rng.integers(0, 9, (48, 16, 15)) * (rng.random((48, 16, 15)) < density) / 8.0
    maps[0] = 0.0
    maps[1] = -maps[1]
    snake = np.zeros((16, 15))
    snake[0:13:2] = 1.0  # Rows 0, 2, ..., 12, joined at alternating ends.
    for r in range(1, 12, 2):
        snake[r, 14 if r % 4 == 1 else 0] = 1.0
    snake[14:16, :] = 0.75  # A second blob: 30 pixels, mass 22.5 < 111.
    maps[2] = snake
    maps[3] = snake[::-1, ::-1]
    # Two blobs of equal mass: the one that starts first (a column) ends last (a row).
    maps[4] = 0.0
    maps[4, 0:4, 0] = 1.0
    maps[4, 1, 5:9] = 1.0
    return maps.astype(np.float32)


def test_component_reference_sees_ties_snakes_and_empty_maps():
    maps = component_test_maps()
    ref = component_reference(maps)
    assert not ref[0].any() and not ref[1].any()
    assert ref[2].sum() == 111 and ref[3].sum() == 111  # The whole snake.
    from scipy import ndimage

    ties = 0
    for m in maps:
        on = (m > 0.5 * m.max()) & (m.max() > 0)
        labels, n = ndimage.label(on, structure=np.ones((3, 3)))
        mass = ndimage.sum(m, labels, index=range(1, n + 1)) if n else np.zeros(1)
        ties += int(n > 1 and np.sum(mass == np.max(mass)) > 1)
    assert ties >= 4, ties  # The tie rule is exercised, not only stated.
    assert ref[4].sum() == 4 and ref[4][1, 5:9].all()


def test_main_component_matches_scipy_labelling():
    maps = component_test_maps()
    ref = component_reference(maps)
    np.testing.assert_array_equal(main_component(tf.constant(maps)).numpy(), ref)
    np.testing.assert_array_equal(tf.function(main_component)(tf.constant(maps)).numpy(), ref)
    boxes = mask_boxes(tf.constant(maps), on=tf.constant(ref)).numpy()
    np.testing.assert_array_equal(boxes[0], 0.0)
    for i in (2, 5):
        ys, xs = np.nonzero(ref[i])
        np.testing.assert_allclose(boxes[i], [ys.min() / 16, xs.min() / 15,
                                              (ys.max() + 1) / 16, (xs.max() + 1) / 15],
                                   rtol=1e-6)
    # Batch axes are kept: [2, 24, h, w] in, [2, 24, h, w] out.
    np.testing.assert_array_equal(main_component(tf.constant(maps.reshape(2, 24, 16, 15))),
                                  ref.reshape(2, 24, 16, 15))


def _snake(h: int, w: int) -> np.ndarray:
    """bool [h, w]: one-pixel-wide rows joined at alternating ends, one blob whose path runs
    through every pixel of it (about h * w / 2 pixels long)."""
    snake = np.zeros((h, w), bool)
    snake[0:h:2] = True
    for r in range(1, h, 2):
        snake[r, w - 1 if r % 4 == 1 else 0] = True
    return snake


def _spiral(n: int) -> np.ndarray:
    """bool [n, n]: a square spiral, walls one pixel apart, read from outside in."""
    spiral = np.zeros((n, n), bool)
    for k in range(0, n // 2, 2):
        a, b = k, n - 1 - k
        spiral[a, a:b + 1] = spiral[a:b + 1, b] = spiral[b, a:b + 1] = True
        spiral[a + 2:b + 1, a] = True
        if k + 2 < n // 2:
            spiral[a + 2, a:a + 3] = True
    return spiral


def test_blob_labelling_rounds_grow_with_the_log_of_the_path_not_the_path(monkeypatch):
    """The labelling loop's rounds on 50x50 maps whose one blob is a path of ~1,250 pixels,
    counted by running the loop eagerly (a Python loop) through a counting tf.while_loop:
    a labelling that spreads labels one pixel per round needs over 1,000; ours needs about
    log2 of the path. No time is measured, so it holds on every machine."""
    rounds = []
    real = tf.while_loop

    def counting(cond, body, loop_vars, **kwargs):
        def counted(*args):
            rounds[-1] += 1
            return body(*args)

        rounds.append(0)
        return real(cond, counted, loop_vars, **kwargs)

    monkeypatch.setattr(tf, "while_loop", counting)
    snake = _snake(50, 50)
    shapes = np.stack([snake, snake.T, snake[::-1, ::-1], _spiral(50), _spiral(50)[::-1]])
    maps = shapes.astype(np.float32)
    for m, shape in zip(maps, shapes):
        rounds.clear()
        found = main_component(tf.constant(m[None])).numpy()[0]
        np.testing.assert_array_equal(found, shape)  # The whole path is one blob.
        assert shape.sum() >= 1200 and 0 < sum(rounds) <= 12, (shape.sum(), rounds)
    np.testing.assert_array_equal(main_component(tf.constant(maps)).numpy(),
                                  component_reference(maps))


def test_post_processing_runs_no_pooling_op():
    """The detection graph of every box source (loop bodies included) holds no pooling op: a
    one-channel max-pool, the layout post-processing would give it, runs up to ~20x slower on
    CPUs without AVX-512 than elementwise ops do."""
    b, c, t, h, w = 2, 3, 4, 50, 50
    rng = np.random.default_rng(0)
    outputs = {"instance_maps": tf.constant(rng.random((b, c, t, h, w)), tf.float32),
               "boxes": tf.constant(rng.random((b, c, t, 4)), tf.float32),
               "peaks": tf.constant(rng.random((b, c, t)), tf.float32)}
    images = tf.constant(rng.random((b, 2 * h, 2 * w, 1)), tf.float32)
    for source in BOX_SOURCES:
        fn = tf.function(lambda o, x, s=source: detections(with_scores(o, s, 0.1, x), 0.5))
        graph = fn.get_concrete_function(outputs, images).graph.as_graph_def()
        ops = {n.op for n in graph.node} | {
            n.op for f in graph.library.function for n in f.node_def}
        assert not {o for o in ops if "Pool" in o}, (source, ops)
        if source in ("component", "refined"):
            assert "While" in ops or "StatelessWhile" in ops  # The library was searched.


def test_label_blobs_gives_each_blob_its_last_pixel_as_scipy_labels_them():
    from scipy import ndimage

    on = component_test_maps() > 0.3
    positions, labels = label_blobs(tf.constant(on))
    positions, labels = positions.numpy(), labels.numpy()
    np.testing.assert_array_equal(positions, np.flatnonzero(on))
    flat_ref = np.zeros(on.size, np.int64)
    for i, m in enumerate(on):  # scipy's labels, made distinct across maps.
        ref, _ = ndimage.label(m, structure=np.ones((3, 3)))
        flat_ref[i * m.size:(i + 1) * m.size] = np.where(ref > 0, ref + 1000 * i, 0).ravel()
    ref = flat_ref[positions]
    # One label per scipy blob and one blob per label, each the blob's last listed pixel.
    for blob in np.unique(ref):
        members = np.flatnonzero(ref == blob)
        assert (labels[members] == members.max()).all()


def _refined_reference(maps, on, images):
    """refined_boxes with numpy, map by map: each blob pixel covers a block of image pixels."""
    b, c, t, h, w = maps.shape
    big_h, big_w = images.shape[1:3]
    out = np.zeros((b, c, t, 4), np.float32)
    for i in range(b):
        ink = images[i].max(axis=-1) > 0
        for k in range(c):
            for s in range(t):
                up = np.repeat(np.repeat(on[i, k, s], big_h // h, 0), big_w // w, 1)
                sel = up & ink
                if not sel.any():
                    sel, (big, wide) = on[i, k, s], (h, w)
                else:
                    big, wide = big_h, big_w
                ys, xs = np.nonzero(sel)
                if len(ys):
                    out[i, k, s] = [ys.min() / big, xs.min() / wide, (ys.max() + 1) / big,
                                    (xs.max() + 1) / wide]
    return out


def test_refined_boxes_are_the_ink_in_the_upsampled_blob():
    # A 12 x 10 px digit whose blob on the half-size map spans 14 x 12 px: the refined box is the
    # digit's own (its true box), the blob's is a map pixel wider on each side.
    images = np.zeros((1, 40, 40, 1), np.float32)
    images[0, 11:23, 21:31] = 0.8
    images[0, 0:3, 0:3] = 0.9  # clutter far from the blob: not in the box
    maps = np.zeros((1, 1, 2, 20, 20), np.float32)
    maps[0, 0, 0, 5:12, 10:16] = 1.0
    maps[0, 0, 1, 15:18, 15:18] = 1.0  # a blob over no ink: the blob's own box
    on = maps > 0.5
    got = refined_boxes(maps, on, images).numpy()
    np.testing.assert_allclose(got[0, 0, 0], [11 / 40, 21 / 40, 23 / 40, 31 / 40])
    np.testing.assert_allclose(got[0, 0, 1], [15 / 20, 15 / 20, 18 / 20, 18 / 20])
    np.testing.assert_allclose(mask_boxes(maps, on=on).numpy()[0, 0, 0],
                               [5 / 20, 10 / 20, 12 / 20, 16 / 20])


def test_refined_boxes_match_a_numpy_reference_on_random_maps():
    rng = np.random.default_rng(2)
    import cv2

    maps = np.stack([cv2.GaussianBlur(rng.random((16, 16)).astype(np.float32), (5, 5), 2)
                     for _ in range(2 * 2 * 3)]).reshape(2, 2, 3, 16, 16) ** 4
    maps[1, 1, 2] = 0.0  # an empty map: zero box
    images = (rng.random((2, 32, 32, 1)) > 0.6).astype(np.float32) * rng.random((2, 32, 32, 1))
    on = main_component(maps).numpy()
    got = refined_boxes(maps, on, images).numpy()
    np.testing.assert_allclose(got, _refined_reference(maps, on, images), atol=1e-6)
    assert (got[1, 1, 2] == 0).all()
    assert not np.allclose(got, mask_boxes(maps, on=on).numpy())
