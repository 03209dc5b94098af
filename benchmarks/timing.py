"""The benchmarks' one timer."""

from __future__ import annotations

import time
from collections.abc import Callable


def timed(fn: Callable[[], object], iters: int) -> float:
    """Mean seconds per call of `fn` over `iters` calls, after one untimed warm-up call."""
    fn()
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - start) / iters
