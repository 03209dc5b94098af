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
