"""Shared pieces of the benchmark suite (run: ``python -m pytest bench --benchmark-only -q``).

``bench`` is not in the default testpaths, so ``python -m pytest`` never runs it by accident.
"""
from __future__ import annotations

import llvmlite
import numba
import numpy as np
import pytest

import mmcore

from .bare_loop import BARE_LOOP_VERSION


def pytest_benchmark_update_machine_info(config, machine_info):
    """Record the versions every result depends on (STYLE.md: pin and record numba/llvmlite)."""
    machine_info["mmcore"] = mmcore.__version__
    machine_info["numba"] = numba.__version__
    machine_info["llvmlite"] = llvmlite.__version__
    machine_info["numpy"] = np.__version__
    machine_info["bare_loop"] = BARE_LOOP_VERSION


class Rates:
    """Rates measured in this run, so a later benchmark can report a ratio to an earlier one.

    Both sides of a ratio are measured in the same session, side by side; the ratio is written into
    both benchmarks' ``extra_info`` (the dict pytest-benchmark serialises at the end of the run).
    """

    def __init__(self) -> None:
        self._seen: dict[str, tuple[float, dict]] = {}

    def record(self, benchmark, key: str, count: int, unit: str) -> float:
        """``count`` events per median round as ``extra_info[unit]``; remembered under ``key``."""
        rate = count / benchmark.stats.stats.median
        benchmark.extra_info[unit] = rate
        self._seen[key] = (rate, benchmark.extra_info)
        return rate

    def record_rate(self, benchmark, key: str, rate: float, unit: str) -> float:
        """A rate computed by the benchmark itself (not from its median round), as ``record``."""
        benchmark.extra_info[unit] = rate
        self._seen[key] = (rate, benchmark.extra_info)
        return rate

    def info(self, key: str) -> dict:
        """The ``extra_info`` of the benchmark recorded under ``key``."""
        return self._seen[key][1]

    def ratio(self, name: str, numerator: str, denominator: str) -> float | None:
        """``rate[numerator] / rate[denominator]`` into both extra_infos, if both were measured."""
        if numerator not in self._seen or denominator not in self._seen:
            return None
        (num, info_n), (den, info_d) = self._seen[numerator], self._seen[denominator]
        r = num / den
        info_n[name] = r
        info_d[name] = r
        return r


@pytest.fixture(scope="session")
def rates() -> Rates:
    return Rates()
