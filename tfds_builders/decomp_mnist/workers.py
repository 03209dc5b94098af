"""decomp_mnist's example encoding and its worker processes (numpy and OpenCV only).

The workers are spawned, not forked: a process forked from one whose OpenCV thread pool (or
TensorFlow's threads) already ran can deadlock in its first OpenCV call. Everything a spawned
worker unpickles lives here, under this module's package name, so it imports the same way
whether the builder was loaded from the installed package or by `tfds build` from its folder.
"""

from __future__ import annotations

import cv2
import numpy as np
import tensorflow_datasets as tfds

from tfds_builders.decomp_mnist import synth


class Worker:
    """Generates and PNG-encodes example `index` of a split from the split's digit pool."""

    def __init__(self, seed: int, split: str, images: np.ndarray, labels: np.ndarray,
                 params: synth.SynthParams):
        self.seed, self.split, self.images, self.labels = seed, split, images, labels
        self.params = params

    def __call__(self, index: int) -> tuple[int, dict]:
        ex = synth.generate_example(self.seed, self.split, index, self.images, self.labels,
                                    self.params)
        return index, example_to_features(ex, index)


def set_worker(worker: Worker) -> None:
    """Pool initializer: this process's one worker (state local to the pool process)."""
    cv2.setNumThreads(1)  # The pool's processes already use the cores.
    run_worker.worker = worker


def run_worker(index: int) -> tuple[int, dict]:
    """The task of a pool process: one example from the worker `set_worker` installed."""
    return run_worker.worker(index)


def png(array: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", array)
    if not ok:
        raise RuntimeError(f"PNG encoding failed for an array of shape {array.shape}")
    return buf.tobytes()


def example_to_features(ex: synth.Example, index: int) -> dict:
    """Converts a synthesized example to the feature dict (images already PNG-encoded)."""
    return {
        "image": png(ex.image[..., None]),
        "image_id": index,
        "objects": {
            "bbox": [tfds.features.BBox(*map(float, b)) for b in ex.boxes],
            "label": ex.labels,
            "mask": [png(m[..., None]) for m in ex.masks],
        },
    }
