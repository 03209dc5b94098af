"""The paper's figures: qualitative sheets (Figs. 3 and 6) and precision-recall curves (4, 5)."""

from __future__ import annotations

import numpy as np

from decompnet_tf import viz


def _tile(gray, size):
    import cv2

    rgb = viz.to_rgb(np.clip(gray, 0.0, 1.0))
    return cv2.resize(rgb, (size, size), interpolation=cv2.INTER_NEAREST)


def qualitative_sheet(image: np.ndarray, instance_maps: np.ndarray, boxes: np.ndarray,
                      emitted: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray,
                      class_names, tile: int = 100, segmentation: bool = False,
                      mask_threshold: float = 0.1) -> np.ndarray:
    """One image as in Figure 3, or Figure 6 (emitted maps above `mask_threshold`) with
    `segmentation`: a uint8 RGB sheet, one row per category, predicted boxes red, true green.

    Args:
      image: [H, W, 1] or [H, W, 3] in [0, 1].
      instance_maps: [C, T, h, w].
      boxes: [C, T, 4] (ymin, xmin, ymax, xmax) normalised; `gt_boxes` [n, 4] likewise.
      emitted: bool [C, T], the steps that are detections (`postprocess.emitted`).
    """
    c, t = instance_maps.shape[:2]
    emitted = np.asarray(emitted, bool)
    picture = image[..., 0] if image.shape[-1] == 1 else image
    rows = []
    for k in range(c):
        n = int(emitted[k].sum())
        true = gt_boxes[gt_labels == k]
        tiles = [viz.draw_boxes(_tile(picture, tile), true, color=viz.TRUE_COLOR)]
        maps = instance_maps[k]
        if segmentation:
            maps = (maps > mask_threshold).astype(np.float32)
            steps = np.flatnonzero(emitted[k])
        else:
            tiles.append(_tile(np.clip(maps[emitted[k]].sum(axis=0), 0, 1), tile))
            last = np.flatnonzero(emitted[k]).max() + 1 if n else 0
            steps = range(min(t, last + 1))
        for step in steps:
            cell = viz.draw_boxes(_tile(maps[step], tile), true, color=viz.TRUE_COLOR)
            if emitted[k, step]:
                cell = viz.draw_boxes(cell, boxes[k, step], color=viz.PRED_COLOR)
            tiles.append(cell)
        label = viz.to_rgb(np.zeros((tile, tile), np.uint8))
        import cv2

        cv2.putText(label, f"'{class_names[k]}': {n}", (4, tile // 2), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, (255, 255, 255), 1, cv2.LINE_AA)
        rows.append([label, *tiles])
    # Rows as wide as the longest one (blank tiles fill the others).
    width = max(len(r) for r in rows)
    blank = np.full((tile, tile, 3), 255, np.uint8)
    rows = [viz.grid(r + [blank] * (width - len(r)), width, pad=2) for r in rows]
    return np.concatenate(rows, axis=0)


def boxes_sheet(image: np.ndarray, det_boxes: np.ndarray, det_classes: np.ndarray,
                det_scores: np.ndarray, gt_boxes: np.ndarray, gt_labels: np.ndarray,
                class_names, min_score: float = 0.5, tile: int = 200) -> np.ndarray:
    """For detectors without instance maps: one tile per category, detections scoring >=
    `min_score` red, true boxes green."""
    tiles = []
    for k in range(len(class_names)):
        rgb = viz.draw_boxes(_tile(image[..., 0], tile), gt_boxes[gt_labels == k],
                             color=viz.TRUE_COLOR)
        keep = (det_classes == k) & (det_scores >= min_score)
        tiles.append(viz.draw_boxes(rgb, det_boxes[keep], color=viz.PRED_COLOR))
    return viz.grid(tiles, len(tiles), pad=2)


def pr_figure(curves: dict, title: str, path: str, class_names) -> None:
    """Writes precision-recall curves to the PNG `path`, one panel per category (Figs. 4, 5).

    Args:
      curves: {legend label: {class id: (recall [K], precision [K], ap)}}.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(class_names), figsize=(4 * len(class_names), 3.8),
                             squeeze=False)
    for k, name in enumerate(class_names):
        ax = axes[0, k]
        for label, per_class in curves.items():
            if k not in per_class:
                continue
            recall, precision, ap = per_class[k]
            ax.plot(recall, precision, label=f"{label} (AP {ap:.3f})")
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall", ylabel="precision",
               title=f"digit {name}")
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left", fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    import io

    import tensorflow as tf

    png = io.BytesIO()  # matplotlib writes local files only: through tf.io.gfile (gs://).
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(png.getvalue())
