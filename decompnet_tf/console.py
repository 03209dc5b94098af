"""A clean console for the entry scripts: TensorFlow's C++ start-up chatter is not a failure.

On a CPU machine `import tensorflow` prints lines such as "failed call to cuInit: INTERNAL: CUDA
error", "Could not find cuda drivers on your machine" and "rebuild TensorFlow with the
appropriate compiler flags", which a new user reads as an error. Two sources, two remedies:

- Messages logged after TensorFlow reads `TF_CPP_MIN_LOG_LEVEL` (the cuInit error, the CPU
  feature guard): the level defaults to 3 here, so only fatal C++ messages remain.
- Messages written while the shared libraries load, before that variable is read (abseil's
  "All log messages before absl::InitializeLog() is called are written to STDERR" and the
  INFO / WARNING lines after it): `import_tensorflow` captures the process's stderr (file
  descriptor 2) during the import and replays everything but those INFO / WARNING lines.

A user who sets `TF_CPP_MIN_LOG_LEVEL` themselves gets TensorFlow's own behaviour, unfiltered.
Python warnings, progress bars and results are untouched (they come after the import).

`quiet_start` also lowers absl's Python logging to errors (TFDS logs "Reusing dataset ..." and
its own deprecation notes through it), unless the user passed `--verbosity`; this project's
messages are printed, and its warnings are Python warnings, so they stay.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile

# abseil's log-line prefix: severity letter (Info, Warning), MMDD, then the time.
_STARTUP_NOISE = re.compile(
    r"^(?:[IW]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages before absl::InitializeLog"
    r"|To enable the following instructions:)")


def startup_noise(line: str) -> bool:
    """True for a stderr line of TensorFlow's C++ start-up that is information, not error:
    abseil INFO / WARNING lines (not E or F ones) and the notes that come with them."""
    return bool(_STARTUP_NOISE.match(line))


def import_tensorflow(environ=None) -> None:
    """Imports TensorFlow once, quietly unless the user set `TF_CPP_MIN_LOG_LEVEL` (see the
    module docstring). Call it at the top of an entry script's `main`, before anything else
    imports TensorFlow; later calls, or a TensorFlow already imported, change nothing.

    Args:
      environ: the environment to read and update (default `os.environ`).
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
    """The entry scripts' start: `import_tensorflow`, and absl logging at ERROR unless the
    command line set `--verbosity`. Call it first in `main`, after the flags are parsed."""
    from absl import flags, logging

    import_tensorflow(environ)
    if not flags.FLAGS["verbosity"].present:
        logging.set_verbosity(logging.ERROR)
