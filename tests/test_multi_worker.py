"""tf.distribute beyond one process: MultiWorkerMirroredStrategy with two local worker processes
on loopback (TF_CONFIG) sharing one model_dir, through train.py's own training loop on
decomp_mnist/small. Both workers finish, agree on the weights, read different shards of the
input, only the chief writes model_dir, and a killed run resumes from the chief's
checkpoints on both workers."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.helpers import ROOT

WORKER = r"""
import faulthandler, json, os, sys
faulthandler.dump_traceback_later(270, exit=True)  # A hung worker says where, and ends.
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
                      learning_rates=(1e-3,), strategy="multi_worker", category_source="truth",
                      checkpoint_steps=2, verbose=2))
# The input pipeline under this strategy: each worker's first local batch.
strategy = tf.distribute.MultiWorkerMirroredStrategy()
ds = make_dataset(config.data, "train", 3, (50, 50), training=True, repeat=True)
images, _ = next(iter(strategy.experimental_distribute_dataset(ds)))
local = images.numpy() if hasattr(images, "numpy") else images.values[0].numpy()
print("SHARD", local.shape[0], float(np.abs(local).sum()), flush=True)
# The same strategy: a second MultiWorkerMirroredStrategy in one process re-enables collective
# ops, and its rendezvous sometimes hung both workers for minutes.
net = run_training(config, strategy=strategy)
trainable = {id(v) for v in net.trainable_weights}  # Stage 2's: not the category network.
np.savez(WEIGHTS, trainable=[id(w) in trainable for w in net.weights],
         *[w.numpy() for w in net.weights])
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


def _start(tmp_path, data_dir, ports, attempt):
    """Both workers, on one shared model_dir; each with its own TMPDIR (tmp{attempt}_{index}),
    where a worker that is not the chief keeps its temporary model_dir."""
    procs = []
    for index in range(2):
        tf_config = {"cluster": {"worker": [f"localhost:{p}" for p in ports]},
                     "task": {"type": "worker", "index": index}}
        tmp = tmp_path / f"tmp{attempt}_{index}"
        tmp.mkdir()
        script = (f"ROOT = {ROOT!r}\nDATA_DIR = {data_dir!r}\n"
                  f"MODEL_DIR = {str(tmp_path / 'run')!r}\n"
                  f"WEIGHTS = {str(tmp_path / f'weights{index}.npz')!r}\n" + WORKER)
        env = {**os.environ, "TF_CONFIG": json.dumps(tf_config), "CUDA_VISIBLE_DEVICES": "",
               "TMPDIR": str(tmp)}
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


def test_write_dir_is_model_dir_on_the_chief_and_a_removed_temp_folder_elsewhere(tmp_path):
    import types

    from decompnet_tf.engine.distribute import write_dir

    def strategy(chief):  # What MultiWorkerMirroredStrategy reports for a chief or not.
        return types.SimpleNamespace(extended=types.SimpleNamespace(should_checkpoint=chief))

    with write_dir(str(tmp_path / "run"), strategy(True)) as out:
        assert out == str(tmp_path / "run")
    with write_dir(str(tmp_path / "run"), strategy(False)) as out:
        assert out != str(tmp_path / "run") and os.path.isdir(out)
        open(os.path.join(out, "x"), "w").close()
    assert not os.path.exists(out) and not (tmp_path / "run").exists()


def _files(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder)
                  for d, _, files in os.walk(folder) for f in files)


@pytest.mark.slow(60)  # seconds on 2 cores (47 measured; 113 beside other jobs)
def test_two_workers_share_a_model_dir_agree_and_a_killed_run_resumes(small_data_dir,
                                                                       tmp_path):
    model_dir = tmp_path / "run"
    meta = model_dir / "stage2" / "backup" / "training_metadata.json"
    procs = _start(tmp_path, small_data_dir, _free_ports(2), attempt=0)
    chief_pids = {procs[0][0].pid}
    deadline = time.time() + 240
    while time.time() < deadline and all(p.poll() is None for p, _ in procs):
        try:
            if json.loads(meta.read_text())["epoch"] >= 1:
                break
        except (OSError, ValueError, KeyError):  # Not written yet, or being written.
            pass
        time.sleep(0.1)
    for proc, _ in procs:
        proc.send_signal(signal.SIGKILL)
    _wait(procs)
    assert not (model_dir / "stage2" / "final.weights.h5").exists(), \
        "the run ended before it could be interrupted"
    procs = _start(tmp_path, small_data_dir, _free_ports(2), attempt=1)
    chief_pids.add(procs[0][0].pid)
    codes = _wait(procs)
    logs = [_log(tmp_path, i) for i in range(2)]
    assert codes == [0, 0], logs[0][-3000:] + logs[1][-3000:]
    shards = [next(line.split()[1:] for line in log.splitlines() if line.startswith("SHARD"))
              for log in logs]
    assert [int(s[0]) for s in shards] == [4, 4]  # Each worker: half the global batch of 8,
    assert shards[0][1] != shards[1][1]  # of other images.
    for log in logs:  # Both resumed from the chief's checkpoint after epoch 1.
        resumed = log.split("stage 2: 3 epoch(s)")[-1]  # What the second start printed.
        assert "Epoch 1/3" not in resumed and "Epoch 3/3" in resumed, resumed[-2000:]
        assert re.search(r"devices: 1 CPU \(.+\), no GPU visible; 2 replicas "
                         r"\(MultiWorkerMirroredStrategy, 2 workers\)", log), log[-2000:]

    # One set of files, all the chief's: no second worker's copies, no temporary folders.
    files = _files(model_dir)
    events = [f for f in files if "events.out.tfevents" in f]
    assert sorted(set(files) - set(events)) == [
        "config.json", "model.keras", "stage2/backup/latest.weights.h5",
        "stage2/backup/training_metadata.json", "stage2/final.weights.h5",
        "stage2/history.json"], files
    # TensorBoard event files end in <host>.<pid>.<n>.v2: the chief's processes wrote them all.
    assert events and {int(f.split(".")[-3]) for f in events} <= chief_pids, (events,
                                                                               chief_pids)
    assert _files(tmp_path / "tmp1_0") == [] and _files(tmp_path / "tmp1_1") == []

    import keras

    from decompnet_tf.model_io import Run, build_net

    weights = [np.load(tmp_path / f"weights{i}.npz") for i in range(2)]
    values = [[w[f"arr_{j}"] for j in range(len(w.files) - 1)] for w in weights]
    trainable = weights[0]["trainable"]
    assert trainable.sum() > 20
    # Gradients are all-reduced, so the trained weights agree; batch norm's moving
    # statistics are each worker's own (as without sync batch norm on one machine).
    for j in np.flatnonzero(trainable):
        np.testing.assert_allclose(values[0][j], values[1][j], rtol=1e-5, atol=1e-6,
                                   err_msg=str(j))
    # model_dir holds the chief's network,
    saved = Run.open(str(model_dir)).load_net().weights
    assert len(saved) == len(values[0])
    for a, b in zip(values[0], saved):
        np.testing.assert_array_equal(a, b.numpy(), err_msg=b.path)
    # and training moved it: the workers did not merely agree on their initial values.
    keras.utils.set_random_seed(0)  # As run_training does before building the network.
    fresh = build_net(Run.open(str(model_dir)).config).weights
    assert any(not np.allclose(values[0][j], fresh[j].numpy())
               for j in np.flatnonzero(trainable))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
