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


def in_multi_worker_mode(strategy: tf.distribute.Strategy) -> bool:
    """True under MultiWorkerMirroredStrategy with more than one worker: Keras 3 then averages
    each logged value across workers along its axis 0, which a scalar has not
    (tensorflow/tensorflow#72388), so the trainer logs 1-element vectors there."""
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())
