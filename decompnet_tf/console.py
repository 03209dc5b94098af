"""A clean console for the entry scripts: TensorFlow's C++ start-up chatter is not a failure.

On a CPU machine `import tensorflow` prints "failed call to cuInit" and the like, which new users
read as errors. Messages logged after TensorFlow reads `TF_CPP_MIN_LOG_LEVEL` are cut by setting
it to 3; those written while its libraries load (abseil's INFO / WARNING lines) are filtered from
stderr by `import_tensorflow`. A user who sets the variable gets TensorFlow's own behaviour.
`device_report` replaces the hidden device lines with one line of its own.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import re
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from absl import app, flags, logging

if TYPE_CHECKING:  # Imported in the functions: this module loads before TensorFlow.
    import tensorflow as tf

# abseil's log-line prefix: severity letter (Info, Warning), MMDD, then the time.
_STARTUP_NOISE = re.compile(
    r"^(?:[IW]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl::InitializeLog"
    r"|To enable the following instructions:)")


def startup_noise(line: str) -> bool:
    """True for a stderr line of abseil's INFO / WARNING start-up noise (or its notes)."""
    return bool(_STARTUP_NOISE.match(line))


def import_tensorflow(environ=None) -> None:
    """Import TensorFlow once, quietly unless the user set `TF_CPP_MIN_LOG_LEVEL`.

    Call it before anything else imports TensorFlow; `environ` defaults to `os.environ`.
    """
    environ = os.environ if environ is None else environ
    if "tensorflow" in sys.modules:
        return
    if "TF_CPP_MIN_LOG_LEVEL" in environ:
        import tensorflow  # noqa: F401  (the user chose the level: TensorFlow as it is)

        return
    environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            text = captured.read().decode("utf-8", errors="replace")
            kept = [line for line in text.splitlines(keepends=True) if not startup_noise(line)]
            sys.stderr.write("".join(kept))
            sys.stderr.flush()


def quiet_start(environ=None) -> None:
    """`import_tensorflow`, then absl logging at ERROR unless `--verbosity` was given.

    absl logging carries TFDS's "Reusing dataset ..." notes; this project prints its own messages.
    """
    import_tensorflow(environ)
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.ERROR)


# tensorflow[and-cuda] (the project's gpu extra) installs TensorFlow's CUDA libraries as these.
CUDA_PACKAGES = ("nvidia-cudnn-cu12", "nvidia-cuda-runtime-cu12", "nvidia-cublas-cu12")


def cuda_packages_installed() -> list[str]:
    """The CUDA_PACKAGES installed in this environment."""
    found = []
    for name in CUDA_PACKAGES:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append(name)
    return found


_STRATEGY_NAMES = ("MultiWorkerMirroredStrategy", "MirroredStrategy", "TPUStrategy",
                   "OneDeviceStrategy")


def _local_devices() -> list:
    """This process's physical devices (logical ones include other workers') and its TPU cores."""
    import tensorflow as tf

    return tf.config.list_physical_devices() + tf.config.list_logical_devices("TPU")


# What a user's input can raise that an entry script reports as one line, not a traceback: a
# missing model dir or file, an export version that exists, a value out of its range.
USER_ERRORS = (FileNotFoundError, FileExistsError, ValueError)


def entry_point(main: Callable[[], None]) -> Callable[[list[str]], None]:
    """Wrap an entry script's `main()` for absl's `app.run`.

    Refuses positional arguments, calls `quiet_start` first, and reports `USER_ERRORS` in one line.
    """

    def run(argv: list[str]) -> None:
        if len(argv) > 1:
            raise app.UsageError(f"unexpected arguments: {argv[1:]}")
        quiet_start()  # Before anything imports TensorFlow: no start-up noise.
        try:
            main()
        except USER_ERRORS as e:
            raise SystemExit(f"error: {e}") from None

    return run


# Vector extensions by /proc/cpuinfo flag, widest first: per-step costs differ between them,
# and a kernel that lacks a path for one can be far slower there.
_VECTOR_ISAS = (("amx_tile", "AMX"), ("avx512f", "AVX-512"), ("avx2", "AVX2"), ("avx", "AVX"))


def cpu_kind(cpuinfo: str | None = None, environ=None) -> str:
    """The CPU's model, widest vector extension and cores, e.g. "AMD EPYC, AVX-512 (bf16), 2 cores".

    Notes oneDNN off or capped. `cpuinfo` defaults to /proc/cpuinfo's text ("" where there is none).
    """
    environ = os.environ if environ is None else environ
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:  # Not Linux.
            cpuinfo = ""
    fields = {}
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    model = fields.get("model name") or platform.processor() or "unknown CPU"
    flags = set(fields.get("flags", "").split())
    isa = next((name for flag, name in _VECTOR_ISAS if flag in flags), "no AVX")
    if "avx512_bf16" in flags or "amx_bf16" in flags:
        isa += " (bf16)"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    kind = f"{model}, {isa}, {_count(cores or 1, 'core')}"
    if environ.get("TF_ENABLE_ONEDNN_OPTS") == "0":
        return f"{kind}, oneDNN off"
    cap = environ.get("ONEDNN_MAX_CPU_ISA")
    return f"{kind}, oneDNN capped at {cap}" if cap else kind


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def devices_line(strategy: tf.distribute.Strategy, devices: Sequence | None = None,
                 cpu: str | None = None) -> str:
    """One line naming the devices and replicas a run uses.

    E.g. "devices: 1 CPU (AMD EPYC, AVX2, 2 cores), no GPU visible; 1 replica". `devices` (objects
    with a `device_type`) defaults to `_local_devices()`, `cpu` to `cpu_kind()`.
    """
    import tensorflow as tf

    devices = _local_devices() if devices is None else devices
    counts = Counter(d.device_type for d in devices)
    if counts["TPU"]:
        used = _count(counts["TPU"], "TPU core")
    elif counts["GPU"]:
        used = _count(counts["GPU"], "GPU")
    else:
        used = f"{_count(counts['CPU'], 'CPU')} ({cpu or cpu_kind()}), no GPU visible"
    line = f"devices: {used}; {_count(strategy.num_replicas_in_sync, 'replica')}"
    # The public name (MultiWorkerMirroredStrategy's class is CollectiveAllReduceStrategy).
    name = next((n for n in _STRATEGY_NAMES if isinstance(strategy, getattr(tf.distribute, n))),
                type(strategy).__name__)
    if not name.startswith("_Default"):  # tf.distribute's default: no strategy to name.
        workers = getattr(strategy.extended, "_num_workers", 1)
        line += f" ({name}{', ' + _count(workers, 'worker') if workers > 1 else ''})"
    return line


def gpu_warning(devices: Sequence | None = None,
                installed: Sequence[str] | None = None) -> str | None:
    """A one-line warning when the gpu extra is installed but TensorFlow sees no GPU, else None."""
    import tensorflow as tf

    devices = _local_devices() if devices is None else devices
    installed = cuda_packages_installed() if installed is None else installed
    if not installed or any(d.device_type in ("GPU", "TPU") for d in devices):
        return None
    return (f"warning: the gpu extra is installed ({installed[0]}) but TensorFlow "
            f"{tf.__version__} sees no GPU, so this runs on the CPU: check nvidia-smi (the "
            "driver), CUDA_VISIBLE_DEVICES, and that the nvidia-* packages are the ones "
            f"tensorflow[and-cuda]=={tf.__version__} installs (TF_CPP_MIN_LOG_LEVEL=0 shows "
            "TensorFlow's own messages)")


def device_report(strategy: tf.distribute.Strategy | None = None) -> list[str]:
    """The lines an entry script prints at its start: `devices_line`, then any `gpu_warning`."""
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    warning = gpu_warning()
    return [devices_line(strategy)] + ([warning] if warning else [])
