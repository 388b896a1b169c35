"""The MADV_WILLWRITE case as a benchmark: ``mmcore.scenarios.willwrite_story`` on a 512 MiB
fallocated, shared, mlocked file (4 GiB machine), every preparation side by side in one run.

The figures that matter are simulated ones (per-write latency p50/p99/max in the time-sensitive
phase, the phase's and the preparation's simulated time, extra bytes written to disk); they go
into each benchmark's ``extra_info``. The timing pytest-benchmark reports is the host's.
"""
from __future__ import annotations

import pytest

from mmcore.scenarios import WILLWRITE_VARIANTS, willwrite_story

FILE = "512MiB"
MEMORY = "4GiB"


@pytest.mark.benchmark(group="willwrite")
@pytest.mark.parametrize("variant", WILLWRITE_VARIANTS)
def test_willwrite_story(benchmark, variant):
    willwrite_story(memory="64MiB", file_size="1MiB", variants=(variant,))      # kernels loaded
    rows = benchmark.pedantic(willwrite_story, kwargs={"memory": MEMORY, "file_size": FILE,
                                                       "variants": (variant,)},
                              rounds=1, iterations=1)
    row = rows[0]
    for k, v in row.items():
        if k != "variant":
            benchmark.extra_info[k] = v
    assert row["phase_faults"] >= 0 and row["disk_written_MiB"] >= 512
