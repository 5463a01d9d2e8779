"""Resident memory of the daphne processes over the soak: start, end, max and growth."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024
MIN_SAMPLES = 5  # for a slope


@dataclass
class Memory:
    """One process's RSS in MiB after the warm-up, and its growth in MiB per minute."""

    start: float
    end: float
    max: float
    slope: float | None  # least squares over the second half of the run; None: too few


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y against x (None for fewer than MIN_SAMPLES points)."""
    if len(points) < MIN_SAMPLES:
        return None
    n = len(points)
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    spread = sum((x - mean_x) ** 2 for x, _ in points)
    if not spread:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / spread


def figures(samples: list[tuple[float, list[int]]], warmup: float,
            elapsed: float) -> list[Memory]:
    """Per process: RSS from the first sample after `warmup` seconds on, and the slope over
    the second half of the `elapsed` seconds (warm-up excluded if it lasted longer)."""
    after = [(t, rss) for t, rss in samples if t >= warmup] or samples[-1:]
    second_half = [(t, rss) for t, rss in after if t >= elapsed / 2]
    result = []
    for process in range(len(after[0][1]) if after else 0):
        mib = [(t / 60, rss[process] / MIB) for t, rss in after]
        result.append(Memory(
            start=mib[0][1], end=mib[-1][1], max=max(y for _, y in mib),
            slope=slope([(t / 60, rss[process] / MIB) for t, rss in second_half])))
    return result
