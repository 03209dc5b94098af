"""decomp_mnist's example encoding and its worker processes (numpy and OpenCV only).

The workers are spawned, not forked: a process forked from one whose OpenCV thread pool (or
TensorFlow's threads) already ran can deadlock in its first OpenCV call. Everything a spawned
worker unpickles lives here, under this module's package name, so it imports the same way
whether the builder was loaded from the installed package or by `tfds build` from its folder.
"""

from __future__ import annotations

import ast
import sys
import threading

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


def _guarded(tree: ast.Module, line: int) -> bool:
    """True when `line` of the module lies inside an `if __name__ == "__main__":` block."""
    for node in ast.walk(tree):
        if (isinstance(node, ast.If) and node.lineno <= line <= (node.end_lineno or 0)
                and "__name__" in ast.unparse(node.test)
                and "__main__" in ast.unparse(node.test)):
            return True
    return False


def main_module_reruns_this_build() -> bool:
    """True when a spawned worker would run this build again: the main script's top level is
    executing (the build was started from it) outside `if __name__ == "__main__":`.

    A spawned process imports the main script before it unpickles its task; unguarded, the
    script's tfds.load runs again there and multiprocessing stops it with its "bootstrapping
    phase" RuntimeError. Scripts run with `python -c` or an interactive session are never
    imported again; a script whose source cannot be read counts as unguarded."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    frame = sys._current_frames().get(threading.main_thread().ident)
    if main is None or not path:
        return False
    while frame is not None:
        if frame.f_globals is vars(main) and frame.f_code.co_name == "<module>":
            break
        frame = frame.f_back
    if frame is None:
        return False  # The main script has finished its top level (a callback, a REPL).
    try:
        with open(path, encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return True
    return not _guarded(tree, frame.f_lineno)


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
