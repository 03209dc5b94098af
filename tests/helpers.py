"""Helpers shared by the tests (the fixtures are in conftest.py)."""

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# A tiny decompNet, as train.py flags, on decomp_mnist/small: seconds per stage on 2 cores.
TINY_FLAGS = ("--dataset=decomp_mnist/small", "--train_examples=32", "--validation_examples=100",
              "--batch_size=8", "--instance_units=16", "--instance_filters=4",
              "--box_hidden=16", "--steps=3", "--verbose=2")


def run_script(script, *args, timeout=600, env=None):
    """Runs one of the entry scripts in a fresh process (quiet TensorFlow)."""
    import subprocess
    import sys

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run([sys.executable, os.path.join(ROOT, script), *args],
                          capture_output=True, text=True, env=env, timeout=timeout)


def kill_after_first_epoch(cmd, state_file, timeout=240):
    """Starts `cmd` and SIGKILLs it once the JSON file `state_file` says {"epoch": >= 1}
    (a checkpoint's metadata); asserts it was still running then."""
    import json
    import signal
    import subprocess
    import time

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if os.path.isfile(state_file):
            try:
                with open(state_file) as f:
                    epoch = json.load(f)["epoch"]
            except ValueError:  # Being written.
                epoch = 0
            if epoch >= 1:
                proc.send_signal(signal.SIGKILL)
                break
        time.sleep(0.05)
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be interrupted"
