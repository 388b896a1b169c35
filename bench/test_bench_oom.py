"""OOM benchmarks: oom_badness over NumPy arrays of tasks, and victim selection."""
from __future__ import annotations

import numpy as np
import pytest

from mmcore import oom

N = 10_000_000
ROUNDS = 5


@pytest.fixture(scope="module")
def tasks():
    rng = np.random.default_rng(20240601)
    return (rng.integers(0, 1 << 22, N), rng.integers(0, 1 << 18, N),
            rng.integers(0, 1 << 10, N) * 4096, rng.integers(-1000, 1001, N))


@pytest.mark.benchmark(group="oom")
@pytest.mark.parametrize("kernel", ["3.10", "6.18"])
def test_oom_badness_array(benchmark, rates, tasks, kernel):
    """oom_badness of 10^7 tasks in one call (the kernel's arithmetic per task)."""
    rss, swap, pgt, adj = tasks
    oom.oom_badness(rss[:10], swap[:10], pgt[:10], adj[:10], 1 << 22, kernel=kernel)   # warm-up
    out = benchmark.pedantic(oom.oom_badness, args=(rss, swap, pgt, adj, 1 << 22),
                             kwargs={"kernel": kernel}, rounds=ROUNDS, iterations=1)
    assert out.shape == (N,)
    rates.record(benchmark, f"oom-badness-{kernel}", N, "tasks_per_s")


@pytest.mark.benchmark(group="oom")
def test_oom_select_victim(benchmark, rates, tasks):
    """The victim among 10^6 tasks' badness values (select_bad_process's scan)."""
    rss, swap, pgt, adj = tasks
    b = oom.oom_badness(rss[:1_000_000], swap[:1_000_000], pgt[:1_000_000], adj[:1_000_000],
                        1 << 22)
    oom.select_victim(b[:10])
    i = benchmark.pedantic(oom.select_victim, args=(b,), rounds=ROUNDS, iterations=1)
    assert b[i] == b.max()
    rates.record(benchmark, "oom-select", 1_000_000, "tasks_per_s")
