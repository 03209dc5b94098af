"""tf.distribute beyond one process: MultiWorkerMirroredStrategy with two local worker processes
on loopback (TF_CONFIG), through train.py's own training loop on decomp_mnist/small. Both
workers finish, agree on the weights, read different shards of the input, and a killed run
resumes from its checkpoints."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import ROOT

WORKER = r"""
import json, os, sys
sys.path.insert(0, ROOT)
from decompnet_tf.console import import_tensorflow
import_tensorflow()
import numpy as np
import tensorflow as tf
from decompnet_tf.config import Config, DataConfig, LossConfig, ModelConfig, TrainConfig
from decompnet_tf.data.pipeline import make_dataset
from decompnet_tf.engine.loop import run_training

config = Config(
    model=ModelConfig(steps=3, instance_units=16, instance_filters=4, box_hidden=16,
                      box_dropout=0.0, stop_head=True),
    loss=LossConfig(matching="first_n"),
    data=DataConfig(dataset="decomp_mnist/small", data_dir=DATA_DIR, batch_size=8,
                    train_examples=64, validation_examples=100),
    train=TrainConfig(model_dir=MODEL_DIR, stages=(2,), epochs=(3,), optimizer="adam",
                      learning_rates=(1e-3,), strategy="multi_worker", instance_input="truth",
                      checkpoint_steps=2, verbose=2))
# The input pipeline under this strategy: each worker's first local batch.
strategy = tf.distribute.MultiWorkerMirroredStrategy()
ds = make_dataset(config.data, "train", 3, (50, 50), training=True, repeat=True)
images, _ = next(iter(strategy.experimental_distribute_dataset(ds)))
local = images.numpy() if hasattr(images, "numpy") else images.values[0].numpy()
print("SHARD", local.shape[0], float(np.abs(local).sum()), flush=True)
# The same strategy: a second MultiWorkerMirroredStrategy in one process re-enables collective
# ops, and its rendezvous sometimes hung both workers for minutes.
run_training(config, strategy=strategy)
print("DONE", flush=True)
"""


def _free_ports(n):
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("localhost", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start(tmp_path, data_dir, ports):
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                     "task": {"type": "worker", "index": index}}
        model_dir = str(tmp_path / f"worker{index}")
        script = f"ROOT = {ROOT!r}\nDATA_DIR = {data_dir!r}\nMODEL_DIR = {model_dir!r}\n" + WORKER
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "CUDA_VISIBLE_DEVICES": ""}
        log = open(tmp_path / f"worker{index}.log", "a")
        procs.append((subprocess.Popen([sys.executable, "-c", script], stdout=log,
                                       stderr=subprocess.STDOUT, env=env, cwd=ROOT), log))
    return procs


def _wait(procs, timeout=300):
    deadline = time.time() + timeout
    for proc, log in procs:
        proc.wait(timeout=max(1, deadline - time.time()))
        log.close()
    return [p.returncode for p, _ in procs]


def _log(tmp_path, index):
    return (tmp_path / f"worker{index}.log").read_text()


@pytest.mark.slow(60)  # seconds with -n 2 on 2 cores
def test_two_workers_shard_agree_and_a_killed_run_resumes(small_data_dir, tmp_path):
    meta = [tmp_path / f"worker{i}" / "stage2" / "backup" / "training_metadata.json"
            for i in range(2)]
    procs = _start(tmp_path, small_data_dir, _free_ports(2))
    deadline = time.time() + 240
    while time.time() < deadline and all(p.poll() is None for p, _ in procs):
        try:
            if all(json.loads(m.read_text())["epoch"] >= 1 for m in meta):
                break
        except (OSError, ValueError, KeyError):  # Not written yet, or being written.
            pass
        time.sleep(0.1)
    for proc, _ in procs:
        proc.send_signal(signal.SIGKILL)
    _wait(procs)
    assert not (tmp_path / "worker0" / "stage2" / "final.weights.h5").exists(), \
        "the run ended before it could be interrupted"
    codes = _wait(_start(tmp_path, small_data_dir, _free_ports(2)))
    logs = [_log(tmp_path, i) for i in range(2)]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    shards = [next(line.split()[1:] for line in log.splitlines() if line.startswith("SHARD"))
              for log in logs]
    assert [int(s[0]) for s in shards] == [4, 4]  # Each worker: half the global batch of 8,
    assert shards[0][1] != shards[1][1]  # of other images.
    for log in logs:
        resumed = log.split("stage 2: 3 epoch(s)")[-1]  # What the second start printed.
        assert "Epoch 1/3" not in resumed and "Epoch 3/3" in resumed, resumed[-2000:]
    import keras

    from decompnet_tf.model_io import build_net, load_trained, read_config

    nets = [load_trained(str(tmp_path / f"worker{i}"))[0] for i in range(2)]
    trained = [w.numpy() for w in nets[0].trainable_weights]
    assert len(trained) > 20
    # Gradients are all-reduced, so the trainable weights agree; batch norm's moving
    # statistics are each worker's own (as without sync batch norm on one machine).
    for a, b, w in zip(trained, nets[1].trainable_weights, nets[0].trainable_weights):
        np.testing.assert_allclose(a, b.numpy(), rtol=1e-5, atol=1e-6, err_msg=w.path)
    # And training moved them: the workers did not merely agree on their initial values.
    keras.utils.set_random_seed(0)  # As run_training does before building the network.
    fresh = build_net(read_config(str(tmp_path / "worker0")))
    assert any(not np.allclose(a, b.numpy()) for a, b in zip(trained, fresh.trainable_weights))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
