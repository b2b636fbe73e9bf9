"""What the benchmarks report of repeated measurements: the median, with min and max."""

from __future__ import annotations

import statistics


def summary(values: list[float]) -> dict[str, float]:
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }
