"""Drawing helpers and the evaluation figures."""

import numpy as np

from decompnet_tf import viz
from decompnet_tf.eval import plots


def test_to_rgb_scales_and_draw_boxes_marks_the_box_border():
    rgb = viz.to_rgb(np.zeros((10, 10, 1), np.float32), scale=2)
    assert rgb.shape == (20, 20, 3) and rgb.dtype == np.uint8
    out = viz.draw_boxes(rgb, np.array([[0.25, 0.5, 0.75, 1.0]]), color=(255, 0, 0))
    assert tuple(out[5, 10]) == (255, 0, 0)  # top-left corner (y = 0.25 * 20, x = 0.5 * 20)
    assert tuple(out[14, 19]) == (255, 0, 0)  # bottom-right corner (max exclusive)
    assert tuple(out[10, 15]) == (0, 0, 0)  # inside stays untouched
    assert rgb.sum() == 0  # the input is not modified


def test_grid_layout_and_mask_overlay():
    tiles = [np.zeros((4, 5, 3), np.uint8)] * 5
    g = viz.grid(tiles, cols=2, pad=1)
    assert g.shape == (3 * 5 + 1, 2 * 6 + 1, 3)
    mask = np.zeros((1, 4, 4), np.uint8)
    mask[0, :2, :2] = 1
    tinted = viz.overlay_masks(viz.to_rgb(np.zeros((4, 4), np.uint8)), mask, [1])
    assert tinted[0, 0].sum() > 0 and tinted[3, 3].sum() == 0


def test_qualitative_sheet_rows_and_pr_figure(tmp_path):
    maps = np.zeros((3, 4, 10, 10), np.float32)
    maps[0, 0, 2:5, 2:5] = 1.0
    sheet = plots.qualitative_sheet(
        np.zeros((20, 20, 1), np.float32), maps, np.tile([0.1, 0.1, 0.5, 0.5], (3, 4, 1)),
        np.arange(4) < np.array([1, 0, 0])[:, None], np.array([[0.1, 0.1, 0.5, 0.5]]),
        np.array([0]), ["3", "6", "9"], tile=32)
    # Rows: label, input, sum, the emitted map(s), then the stop map: 5 tiles for '3' (one
    # instance), 4 for the others; every row is padded to the longest.
    assert sheet.shape == (3 * (32 + 4), 5 * (32 + 2) + 2, 3)
    seg = plots.qualitative_sheet(
        np.zeros((20, 20, 1), np.float32), maps, np.zeros((3, 4, 4)),
        np.arange(4) < np.array([1, 0, 0])[:, None], np.zeros((0, 4)), np.zeros(0, int),
        ["3", "6", "9"], tile=32, segmentation=True)
    assert seg.shape == (3 * (32 + 4), 3 * (32 + 2) + 2, 3)  # no sum and no stop maps
    # A stop head may skip a step: '3' emits steps 1 and 3, so its row is the label, input, sum
    # and steps 0-3 (the last emitted is also the last step: no stop map after it).
    skip = np.array([[False, True, False, True], [False] * 4, [False] * 4])
    sheet = plots.qualitative_sheet(np.zeros((20, 20, 3), np.float32), maps,
                                    np.zeros((3, 4, 4)), skip, np.zeros((0, 4)),
                                    np.zeros(0, int), ["3", "6", "9"], tile=32)
    assert sheet.shape == (3 * (32 + 4), 7 * (32 + 2) + 2, 3)
    path = tmp_path / "pr.png"
    curves = {"m": {k: (np.linspace(0, 1, 5), np.linspace(1, 0.5, 5), 0.7) for k in range(3)}}
    plots.pr_figure(curves, "t", str(path), ["3", "6", "9"])
    assert path.stat().st_size > 1000


def test_draw_detections_at_the_image_size_masks_above_the_threshold_only():
    image = np.zeros((60, 90), np.uint8)  # Grayscale, not the model's size.
    masks = np.zeros((1, 60, 90), np.float32)
    masks[0, 30:50, 50:80] = 0.4  # Above 0.3: tinted.
    masks[0, 5:10, 5:10] = 0.2  # Below: untouched.
    out = viz.draw_detections(image, np.array([[0.5, 0.5, 0.9, 0.9]]), np.array([1]),
                              np.array([0.8]), masks, ["3", "6", "9"], mask_threshold=0.3)
    assert out.shape == (60, 90, 3) and out.dtype == np.uint8
    assert out[40, 65].sum() > 0 and out[7, 7].sum() == 0
    assert tuple(out[30, 45]) == viz.CLASS_COLORS[1]  # The box's top-left corner.
    png = viz.png_bytes(out)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
