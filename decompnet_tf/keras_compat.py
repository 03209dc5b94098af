"""Every private Keras and TensorFlow internal the project uses, checked against Keras 3.15.1
and TensorFlow 2.21.0 by tests/test_keras_compat.py (update KERAS_CHECKED, TF_CHECKED with it)."""

from __future__ import annotations

import keras
import tensorflow as tf

KERAS_CHECKED = "3.15.1"
TF_CHECKED = "2.21.0"


class BuildWithoutBatch:
    """Mixin (before keras.Model) for models built when made, without compiled loss or metrics:
    `fit` builds the optimizer without a data batch (a batch fails under multi-worker)."""

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        with self.distribute_strategy.scope():
            self._symbolic_build(data_batch=data_batch)


def save_backup(callback: keras.callbacks.BackupAndRestore) -> None:
    """Writes the callback's checkpoint now (what it does at the end of an epoch)."""
    callback._save_model()


def in_multi_worker_mode(strategy: tf.distribute.Strategy) -> bool:
    """True under MultiWorkerMirroredStrategy with more than one worker."""
    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def freeze_variables(concrete_function, lower_control_flow: bool = False):
    """A new concrete function with the variables folded into constants; While/If ops stay
    functional unless `lower_control_flow`."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    return convert_variables_to_constants_v2(concrete_function,
                                             lower_control_flow=lower_control_flow)
