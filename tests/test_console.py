"""The entry scripts' quiet TensorFlow start-up (decompnet_tf/console.py)."""

import os
import subprocess
import sys

from decompnet_tf.console import startup_noise

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Lines TF 2.21 printed on this project's CPU machine at `import tensorflow`.
NOISE = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1795689914.167358    4627 port.cc:153] oneDNN custom operations are on.",
    "I0000 00:00:1795689914.167690    4627 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used.",
    "W0000 00:00:1795689914.2 4627 some.cc:1] a warning",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild "
    "TensorFlow with the appropriate compiler flags.",
]
KEPT = [
    "E0000 00:00:1795689918.389782    4627 cuda_platform.cc:52] failed call to cuInit",
    "F0000 00:00:1.0 1 x.cc:1] fatal",
    "Epoch 1/3",
    "stage 1: 3 epoch(s) of 625 steps",
    "I0000 is not a log line without its time",
    "UserWarning: BackboneWeightsWarning ...",
]

SCRIPT = ("import os, sys\nsys.path.insert(0, {root!r})\n"
          "from decompnet_tf.console import import_tensorflow\n"
          "print('before', file=sys.stderr, flush=True)\n"
          "import_tensorflow()\nimport tensorflow as tf\n"
          "print('level', os.environ['TF_CPP_MIN_LOG_LEVEL'], float(tf.constant(2.0) * 2))\n")


def test_startup_noise_drops_info_and_warning_lines_only():
    assert all(startup_noise(line) for line in NOISE)
    assert not any(startup_noise(line) for line in KEPT)


def _run(env):
    return subprocess.run([sys.executable, "-c", SCRIPT.format(root=ROOT)], capture_output=True,
                          text=True, env=env, timeout=300)


def test_import_is_quiet_by_default_and_the_users_level_wins():
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = _run(env)
    assert quiet.returncode == 0, quiet.stderr
    assert "level 3 4.0" in quiet.stdout
    # What the script itself wrote to stderr survives the capture.
    assert quiet.stderr.splitlines()[0] == "before"
    noisy = [line for line in quiet.stderr.splitlines() if startup_noise(line)]
    assert not noisy and "cuInit" not in quiet.stderr, quiet.stderr
    loud = _run({**env, "TF_CPP_MIN_LOG_LEVEL": "0"})
    assert loud.returncode == 0 and "level 0 4.0" in loud.stdout, loud.stderr
