"""Training under tf.distribute: two CPU replicas, each matching its own half of the batch."""

import os
import subprocess
import sys

SCRIPT = r"""
import numpy as np, tensorflow as tf, keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys_path = __import__("sys").path.insert(0, ROOT)
from tests.test_trainer import TINY, tiny_dataset
from decompnet_tf.config import LossConfig
from decompnet_tf.engine.trainer import DecompTrainer
from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf import matching

calls = []
original = matching.hungarian_assign
def spy(cost, stop_cost, num_gt):
    calls.append(cost.shape)
    return original(cost, stop_cost, num_gt)
matching.hungarian_assign = spy

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
images, targets = tiny_dataset(8)
with strategy.scope():
    net = DecompNet(**TINY)
    net.build()
    trainer = DecompTrainer(net, 2, LossConfig(category_p=1.0, instance_p=1.0))
    trainer.compile(optimizer=keras.optimizers.SGD(0.01))
before = [w.numpy().copy() for w in net.cell.weights]
ds = tf.data.Dataset.from_tensor_slices((images, targets)).batch(8).repeat()
hist = trainer.fit(ds, epochs=1, steps_per_epoch=3, verbose=0).history
assert np.isfinite(hist["loss"][-1]), hist
assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before, net.cell.weights))
# Each replica matches its 4 images x 2 categories against T = 3 maps.
assert calls and all(shape[:2] == (8, 3) for shape in calls), calls
print("OK", hist["loss"][-1], len(calls))
"""


def test_mirrored_strategy_two_replicas():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", f"ROOT = {root!r}\n" + SCRIPT],
                          capture_output=True, text=True, timeout=600, cwd=root,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
