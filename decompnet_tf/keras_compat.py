"""Every private Keras and TensorFlow internal the project uses, in one place.

Checked against Keras 3.15.1 and TensorFlow 2.21.0 (KERAS_CHECKED, TF_CHECKED). A newer release
may rename, remove or change any of them without notice; tests/test_keras_compat.py checks each
one (that it exists, takes the parameters used here, and still does what we rely on) and names
this file in its failure message. After checking a newer release, update the two versions.

- `keras.Model._maybe_symbolic_build` / `_symbolic_build` (`BuildWithoutBatch`);
- `keras.callbacks.BackupAndRestore._save_model` (`save_backup`);
- `tf.distribute` strategies' `extended._in_multi_worker_mode` (`in_multi_worker_mode`);
- `tensorflow.python.framework.convert_to_constants.convert_variables_to_constants_v2`
  (`freeze_variables`).
"""

from __future__ import annotations

import keras
import tensorflow as tf

KERAS_CHECKED = "3.15.1"
TF_CHECKED = "2.21.0"


class BuildWithoutBatch:
    """Mixin (before keras.Model in the bases) for a model that is built when made and has no
    compiled loss or metrics: `fit` builds its optimizer without a data batch.

    Keras averages the first distributed batch as one nest before fit builds the model, which
    MultiWorkerMirroredStrategy's collective reduce cannot do ("Attempt to convert a value
    (PerReplica ...) to a Tensor"). Such a model needs no batch for that step: what it comes
    down to here is building the optimizer, which `_symbolic_build` does without one.
    """

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
    """The concrete function with its variables folded into constants (a new concrete
    function); lower_control_flow=False keeps functional While/If ops."""
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2,
    )

    return convert_variables_to_constants_v2(concrete_function,
                                             lower_control_flow=lower_control_flow)
