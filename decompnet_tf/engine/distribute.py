"""tf.distribute strategies by name; the project never builds its own distribution layer.

Also: which worker writes the run's model_dir (`is_chief`, `write_dir`).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator

import tensorflow as tf

from decompnet_tf.config import STRATEGIES


def get_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    """Returns the strategy called `name` (one of STRATEGIES).

    default: no distribution (tf.distribute's default strategy); mirrored: all local GPUs
    (or the CPU); multi_worker: MultiWorkerMirroredStrategy configured by TF_CONFIG; tpu:
    TPUStrategy on the TPU named by `tpu` (empty: the local one).
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    if name == "tpu":
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        return tf.distribute.TPUStrategy(resolver)
    raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's model_dir: always, except under
    MultiWorkerMirroredStrategy, where only the chief does (the cluster's "chief" task, or
    worker 0 when it has none)."""
    return bool(strategy.extended.should_checkpoint)


@contextlib.contextmanager
def write_dir(model_dir: str, strategy: tf.distribute.Strategy) -> Iterator[str]:
    """The folder this process writes the run's files into: model_dir on the chief; on any
    other worker a fresh local temporary folder, removed on exit.

    tf.distribute's multi-worker pattern: every worker runs the same saves (saving can read
    variables through collective ops, which hang unless all workers take part), but only the
    chief's land in model_dir, so workers never overwrite each other's files there.
    """
    if is_chief(strategy):
        yield model_dir
        return
    folder = tempfile.mkdtemp(prefix="decompnet_worker_")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
