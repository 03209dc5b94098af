"""tf.distribute strategies by name; the project never builds its own distribution layer."""

from __future__ import annotations

import tensorflow as tf

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


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
