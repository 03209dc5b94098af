"""Training under tf.distribute: two CPU replicas, each matching its own half of the batch, give
the weights of one device that computes each half's gradient and averages them."""

import os
import subprocess
import sys

SCRIPT = r"""
import numpy as np, tensorflow as tf, keras
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys_path = __import__("sys").path.insert(0, ROOT)
from tests.test_trainer import TINY, tiny_dataset
from decompnet_tf.config import LossConfig, ModelConfig
from decompnet_tf.engine.trainer import DecompTrainer
from decompnet_tf.models.decompnet import DecompNet
from decompnet_tf import matching

calls = []
original = matching.hungarian_assign
def spy(cost, stop_cost, num_gt, **kwargs):
    calls.append(cost.shape)
    return original(cost, stop_cost, num_gt, **kwargs)
matching.hungarian_assign = spy

LOSS = LossConfig(category_p=1.0, instance_p=1.0, warmup_weight=1.0)
CONFIG = ModelConfig(**{**TINY, "box_dropout": 0.0})
LR, STEPS = 0.05, 3
images, targets = tiny_dataset(8)

def fresh_net():
    keras.utils.set_random_seed(0)
    net = DecompNet(CONFIG)
    net.build()
    return net

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
with strategy.scope():
    net = fresh_net()
    trainer = DecompTrainer(net, 2, LOSS)
    trainer.compile(optimizer=keras.optimizers.SGD(LR))
before = [w.numpy().copy() for w in net.trainable_weights]
ds = tf.data.Dataset.from_tensor_slices((images, targets)).batch(8).repeat()
hist = trainer.fit(ds, epochs=1, steps_per_epoch=STEPS, verbose=0).history
assert np.isfinite(hist["loss"][-1]), hist
assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before, net.trainable_weights))
# Each replica matches its 4 images x 2 categories against T = 3 maps.
assert calls and all(shape[:2] == (8, 3) for shape in calls), calls

# One device, the same global batch: each replica's half with its own batch statistics, the
# two gradients averaged (what the replicas' summed, halved losses give), plain SGD.
ref = fresh_net()
single = DecompTrainer(ref, 2, LOSS)
variables = single.trainable_variables
half = lambda x, i: tf.nest.map_structure(lambda v: v[4 * i:4 * i + 4], x)
for _ in range(STEPS):
    grads = []
    for i in range(2):
        with tf.GradientTape() as tape:
            terms, _ = single.compute_terms(half(images, i), half(targets, i), training=True)
            loss = single.total_loss(terms)
        grads.append(tape.gradient(loss, variables))
    for v, g0, g1 in zip(variables, *grads):
        if g0 is not None:
            v.assign_sub(LR * (g0 + g1) / 2.0)
worst = max(float(np.abs(a.numpy() - b.numpy()).max())
            for a, b in zip(net.trainable_weights, ref.trainable_weights))
assert worst < 1e-4, worst
print("OK", hist["loss"][-1], len(calls), worst)
"""


def test_mirrored_strategy_two_replicas_equal_one_device():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", f"ROOT = {root!r}\n" + SCRIPT],
                          capture_output=True, text=True, timeout=600, cwd=root,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stdout[-2000:] + proc.stderr[-3000:]
