"""The one console line naming the devices and replicas a run uses, and the warning when the
gpu extra is installed but TensorFlow sees no GPU (decompnet_tf/console.py)."""

import importlib.metadata
import re
import types

import tensorflow as tf

from decompnet_tf import console
from tests.helpers import run_script


def _devices(*kinds):
    return [types.SimpleNamespace(device_type=k) for k in kinds]


class MirroredStrategy:  # Named as tf.distribute's, with two replicas (no GPU here).
    num_replicas_in_sync = 2
    extended = types.SimpleNamespace()


def test_devices_line_for_mocked_device_lists():
    default = tf.distribute.get_strategy()
    assert console.devices_line(default, _devices("CPU"), cpu="AMD EPYC, AVX2, 2 cores") == \
        "devices: 1 CPU (AMD EPYC, AVX2, 2 cores), no GPU visible; 1 replica"
    assert console.devices_line(MirroredStrategy(), _devices("CPU", "GPU", "GPU")) == \
        "devices: 2 GPUs; 2 replicas (MirroredStrategy)"
    one_gpu = tf.distribute.MirroredStrategy(["/cpu:0"])
    assert console.devices_line(one_gpu, _devices("CPU", "GPU")) == \
        "devices: 1 GPU; 1 replica (MirroredStrategy)"


def test_gpu_extra_without_a_visible_gpu_warns_once(monkeypatch):
    real = importlib.metadata.version

    def version(name):  # tensorflow[and-cuda]'s cuDNN wheel, as if installed.
        return "9.3.0.75" if name == "nvidia-cudnn-cu12" else real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    monkeypatch.setattr(console, "_local_devices", lambda: _devices("CPU"))
    assert console.cuda_packages_installed() == ["nvidia-cudnn-cu12"]
    lines = console.device_report()
    assert len(lines) == 2 and lines[0].startswith("devices: 1 CPU (")
    assert lines[1].startswith("warning: the gpu extra is installed (nvidia-cudnn-cu12) but "
                               "TensorFlow")
    assert "runs on the CPU" in lines[1] and "nvidia-smi" in lines[1]
    assert "\n" not in lines[1]
    # A visible GPU, or no CUDA package: no warning.
    assert console.gpu_warning(_devices("CPU", "GPU"), ["nvidia-cudnn-cu12"]) is None
    assert console.gpu_warning(_devices("CPU"), []) is None


def test_evaluate_prints_the_devices_line_once(tmp_path):
    done = run_script("evaluate.py", f"--model_dir={tmp_path / 'none'}")
    assert done.returncode != 0 and "holds no trained model" in done.stderr
    devices = [line for line in done.stdout.splitlines() if line.startswith("devices: ")]
    assert len(devices) == 1 and devices[0].endswith("; 1 replica"), done.stdout


AVX2_EPYC = """processor\t: 0
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx fma avx2 bmi2

processor\t: 1
model name\t: AMD EPYC 7B13
flags\t\t: fpu sse sse2 avx fma avx2 bmi2
"""


def test_cpu_kind_names_the_widest_vector_extension():
    kind = console.cpu_kind(AVX2_EPYC, environ={})
    assert re.fullmatch(r"AMD EPYC 7B13, AVX2, \d+ cores?", kind), kind
    xeon = AVX2_EPYC.replace("AMD EPYC 7B13", "Intel Xeon").replace(
        "bmi2", "bmi2 avx512f avx512_bf16 amx_bf16 amx_tile")
    assert console.cpu_kind(xeon, environ={}).startswith("Intel Xeon, AMX (bf16), ")
    assert console.cpu_kind(AVX2_EPYC.replace("avx2", "avx512f"), environ={}).startswith(
        "AMD EPYC 7B13, AVX-512, ")
    capped = console.cpu_kind(xeon, environ={"ONEDNN_MAX_CPU_ISA": "AVX2"})
    assert capped.endswith(", oneDNN capped at AVX2"), capped
    assert console.cpu_kind(xeon, environ={"TF_ENABLE_ONEDNN_OPTS": "0"}).endswith(
        ", oneDNN off")
    assert "no AVX" in console.cpu_kind("model name: Old\nflags: sse sse2", environ={})
