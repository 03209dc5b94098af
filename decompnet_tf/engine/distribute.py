"""tf.distribute strategies by name, and which worker writes the run's model_dir."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator

import tensorflow as tf

from decompnet_tf.config import STRATEGIES


def get_strategy(name: str, tpu: str = "") -> tf.distribute.Strategy:
    """The strategy called `name` (one of STRATEGIES); `tpu` names the TPU (empty: local)."""
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
    """Whether this process writes model_dir: only the chief under MultiWorkerMirroredStrategy."""
    return bool(strategy.extended.should_checkpoint)


@contextlib.contextmanager
def write_dir(model_dir: str, strategy: tf.distribute.Strategy) -> Iterator[str]:
    """Where this process writes: model_dir on the chief, else a temporary folder removed on
    exit. Every worker runs the same saves (collective ops hang unless all take part)."""
    if is_chief(strategy):
        yield model_dir
        return
    folder = tempfile.mkdtemp(prefix="decompnet_worker_")
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)
