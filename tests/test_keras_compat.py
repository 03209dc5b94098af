"""The private Keras and TensorFlow internals of decompnet_tf/keras_compat.py still exist, take
the parameters used there and still do what the project relies on. A failure after upgrading
Keras or TensorFlow names the internal and says what to update."""

import inspect
import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from decompnet_tf import keras_compat
from decompnet_tf.engine.callbacks import Backup
from decompnet_tf.keras_compat import (
    KERAS_CHECKED,
    TF_CHECKED,
    BuildWithoutBatch,
    freeze_variables,
    in_multi_worker_mode,
)

FIX = (f"decompnet_tf/keras_compat.py was checked against Keras {KERAS_CHECKED} and TensorFlow "
       f"{TF_CHECKED}; installed: Keras {keras.__version__}, TensorFlow {tf.__version__}. Adapt "
       "keras_compat.py to the new release's internal (then update KERAS_CHECKED / TF_CHECKED), "
       "or pin the checked release in pyproject.toml.")


def _require(owner, name: str, params: tuple[str, ...], where: str):
    fn = getattr(owner, name, None)
    assert callable(fn), f"{where}.{name} no longer exists. {FIX}"
    missing = [p for p in params if p not in inspect.signature(fn).parameters]
    assert not missing, (f"{where}.{name} no longer takes {missing} (now "
                         f"{inspect.signature(fn)}). {FIX}")


class TinyModel(BuildWithoutBatch, keras.Model):
    """Built when made, no compiled loss: the shape of DecompTrainer."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)
        self.dense.build((None, 2))
        self.hook_calls = 0
        self.built = True

    def call(self, x):
        return self.dense(x)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        self.hook_calls += 1
        super()._maybe_symbolic_build(iterator, data_batch)

    def train_step(self, data):
        x, y = data
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(self(x) - y))
        self.optimizer.apply(tape.gradient(loss, self.trainable_variables),
                             self.trainable_variables)
        return {"loss": loss}


def _data():
    x = np.random.default_rng(0).normal(size=(8, 2)).astype(np.float32)
    return x, x.sum(axis=1, keepdims=True)


def test_the_checked_versions_are_named():
    assert KERAS_CHECKED.count(".") == 2 and TF_CHECKED.count(".") == 2
    assert KERAS_CHECKED in keras_compat.__doc__ and TF_CHECKED in keras_compat.__doc__


def test_model_build_hooks_exist_with_the_parameters_used():
    _require(keras.Model, "_maybe_symbolic_build", ("iterator", "data_batch"), "keras.Model")
    _require(keras.Model, "_symbolic_build", ("data_batch",), "keras.Model")


def test_fit_builds_through_the_hook_without_a_batch():
    model = TinyModel()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    before = model.dense.kernel.numpy().copy()
    x, y = _data()
    model.fit(x, y, epochs=1, batch_size=4, verbose=0)
    assert model.hook_calls >= 1, (
        "keras.Model.fit no longer calls _maybe_symbolic_build, so BuildWithoutBatch is dead "
        f"code and multi-worker training averages a first batch again. {FIX}")
    assert model.optimizer.built, f"_symbolic_build no longer builds the optimizer. {FIX}"
    assert not np.allclose(model.dense.kernel.numpy(), before)


def test_backup_saves_through_the_private_writer(tmp_path):
    _require(keras.callbacks.BackupAndRestore, "_save_model", (),
             "keras.callbacks.BackupAndRestore")
    params = list(inspect.signature(keras.callbacks.BackupAndRestore._save_model).parameters)
    assert params == ["self"], (f"BackupAndRestore._save_model now takes {params[1:]}. {FIX}")
    model = TinyModel()
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    x, y = _data()
    # Every 1,000 steps: within one 2-step epoch only the epoch-end save (save_backup) writes.
    backup = Backup(str(tmp_path), save_freq=1000, delete_checkpoint=False)
    model.fit(x, y, epochs=1, batch_size=4, verbose=0, callbacks=[backup])
    files = os.listdir(tmp_path)
    assert any(f.endswith(".weights.h5") for f in files), (
        f"BackupAndRestore._save_model wrote no weights (files: {files}). {FIX}")
    metadata = [f for f in files if f.endswith(".json")]
    assert metadata, f"BackupAndRestore._save_model wrote no training metadata. {FIX}"
    with open(tmp_path / metadata[0]) as f:
        assert json.load(f)["epoch"] == 1  # The epoch a resumed run starts at.


def test_multi_worker_mode_query_exists():
    try:
        from tensorflow.python.distribute import collective_all_reduce_strategy as collective
    except ImportError as e:
        pytest.fail(f"TensorFlow moved MultiWorkerMirroredStrategy's implementation ({e}). {FIX}")
    _require(collective.CollectiveAllReduceExtended, "_in_multi_worker_mode", (),
             "MultiWorkerMirroredStrategy.extended")
    assert issubclass(tf.distribute.MultiWorkerMirroredStrategy,
                      collective.CollectiveAllReduceStrategy), FIX
    assert in_multi_worker_mode(tf.distribute.get_strategy()) is False


def test_freeze_variables_folds_variables_into_constants():
    v = tf.Variable([2.0, 3.0])
    fn = tf.function(lambda x: x * v).get_concrete_function(tf.TensorSpec([2], tf.float32))
    frozen = freeze_variables(fn, lower_control_flow=False)
    ops = {op.type for op in frozen.graph.get_operations()}
    assert not ops & {"ReadVariableOp", "VarHandleOp", "ResourceGather"}, (
        f"convert_variables_to_constants_v2 left variables in the graph ({sorted(ops)}). {FIX}")
    out = frozen(tf.constant([1.0, 1.0]))
    np.testing.assert_allclose(out[0] if isinstance(out, (list, tuple)) else out, [2.0, 3.0])
