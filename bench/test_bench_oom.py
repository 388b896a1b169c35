"""OOM benchmarks: oom_badness over NumPy arrays of tasks (the specialised loop beside the generic
broadcasting kernel it replaced for full-length arrays), victim selection over badness values, and
select_bad_process over a machine's task arrays."""
from __future__ import annotations

import numpy as np
import pytest

from mmcore import oom
from mmcore.kernels import consts as K
from mmcore.kernels import oom as KO

N = 10_000_000
N_SELECT = 1_000_000
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


def _generic_badness(rss, swap, pgt, adj, totalpages, rule):
    """What oom_badness did for these arrays before the specialised loop: the same coercion, then
    badness_array, which broadcasts and range-checks every element."""
    one = np.ascontiguousarray(np.zeros(1), dtype=np.int64)
    flat = [np.ascontiguousarray(a, dtype=np.int64) for a in (rss, swap, pgt, adj)]
    out = np.empty(rss.shape[0], np.int64)
    bad = KO.badness_array(*flat, one, one + 1, np.array([totalpages], np.int64), rule, out,
                           np.empty(0, np.int64))
    assert bad == -1
    return out


@pytest.mark.benchmark(group="oom")
@pytest.mark.parametrize("kernel", ["3.10", "6.18"])
def test_oom_badness_array_generic(benchmark, rates, tasks, kernel):
    """The same 10^7 tasks through the generic kernel, side by side with test_oom_badness_array:
    ``oom_badness_fast_over_generic`` is the speed-up of the specialised loop."""
    rss, swap, pgt, adj = tasks
    rule = oom.rule_for(kernel)
    _generic_badness(rss[:10], swap[:10], pgt[:10], adj[:10], 1 << 22, rule)      # warm-up
    out = benchmark.pedantic(_generic_badness, args=(rss, swap, pgt, adj, 1 << 22, rule),
                             rounds=ROUNDS, iterations=1)
    assert np.array_equal(out[:100_000], oom.oom_badness(rss[:100_000], swap[:100_000],
                                                          pgt[:100_000], adj[:100_000], 1 << 22,
                                                          kernel=kernel))
    rates.record(benchmark, f"oom-badness-generic-{kernel}", N, "tasks_per_s")
    rates.ratio("oom_badness_fast_over_generic", f"oom-badness-{kernel}",
                f"oom-badness-generic-{kernel}")


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


@pytest.fixture(scope="module")
def machine_arrays():
    """task and mm arrays of 10^6 tasks as a machine holds them: processes in pid order with
    their own mm, one task in 16 a second thread of the process before it, a few kernel threads,
    init first; random RSS, swap and page tables, oom_score_adj and CAP_SYS_ADMIN."""
    rng = np.random.default_rng(7)
    n = N_SELECT
    task = np.zeros((K.NR_T_FIELDS, n), np.int64)
    mm = np.zeros((K.NR_MM_FIELDS, n), np.int64)
    pid = np.arange(1, n + 1)
    kthread = rng.random(n) < 0.001
    thread = (rng.random(n) < 1 / 16) & (pid > 2) & ~kthread & ~np.roll(kthread, 1)
    task[K.T_PID] = pid
    task[K.T_TGID] = np.where(thread, pid - 1, pid)
    task[K.T_MM] = np.where(thread, np.arange(n) - 1, np.arange(n))
    task[K.T_ALIVE] = 1
    task[K.T_ADJ] = rng.choice([-1000, -500, 0, 0, 0, 200, 1000], n)
    task[K.T_FLAGS] = np.where(rng.random(n) < 0.01, K.TF_CAP_SYS_ADMIN, 0)
    task[K.T_FLAGS, kthread] |= K.TF_KTHREAD
    task[K.T_MM, kthread] = -1
    mm[K.MM_ANONPAGES] = rng.integers(0, 1 << 18, n)
    mm[K.MM_FILEPAGES] = rng.integers(0, 1 << 14, n)
    mm[K.MM_SHMEMPAGES] = rng.integers(0, 1 << 10, n)
    mm[K.MM_SWAPENTS] = rng.integers(0, 1 << 12, n)
    mm[K.MM_PGTABLES] = rng.integers(1, 1 << 8, n)
    return task, mm, np.arange(n)


@pytest.mark.benchmark(group="oom")
@pytest.mark.parametrize("kernel", ["3.10", "6.18"])
def test_oom_select_bad_process(benchmark, rates, machine_arrays, kernel):
    """select_bad_process over the task and mm arrays of 10^6 tasks (mmcore.oom's checks
    included); ``ms_per_select`` is the median call."""
    task, mm, order = machine_arrays
    total = 1 << 24
    oom.select_bad_process(order[:10], task, mm, totalpages=total, kernel=kernel)   # warm-up
    i, points, abort = benchmark.pedantic(
        oom.select_bad_process, args=(order, task, mm),
        kwargs={"totalpages": total, "kernel": kernel}, rounds=ROUNDS, iterations=1)
    # the same choice from oom_badness over the processes (3.10 scans threads too, but a thread
    # scores as its leader and the first of equal scores wins there)
    mi = task[K.T_MM]
    ok = (task[K.T_PID] == task[K.T_TGID]) & (mi >= 0) & (task[K.T_TGID] != 1)
    m = mm[:, mi[ok]]
    b = oom.oom_badness(m[K.MM_ANONPAGES] + m[K.MM_FILEPAGES] + m[K.MM_SHMEMPAGES],
                        m[K.MM_SWAPENTS], m[K.MM_PGTABLES] * 4096, task[K.T_ADJ, ok], total,
                        kernel=kernel, cap_sys_admin=(task[K.T_FLAGS, ok] & K.TF_CAP_SYS_ADMIN) > 0)
    best = np.flatnonzero(ok)[np.flatnonzero(b == b.max())]
    assert not abort and points == b.max()
    assert i == (best[-1] if kernel == "6.18" else best[0])
    rates.record(benchmark, f"oom-select-bad-process-{kernel}", N_SELECT, "tasks_per_s")
    benchmark.extra_info["ms_per_select"] = benchmark.stats.stats.median * 1e3


def _vmrss_kb() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


@pytest.mark.benchmark(group="oom")
def test_machine_spawn_many(benchmark, rates):
    """Machine.spawn_many of 10^6 processes (with snapshot-style RSS baselines), then the
    machine's own victim selection over them (Machine.oom_victim: scan order, badness, ties)."""
    import gc

    from mmcore import Config, Machine
    n = 1_000_000
    rng = np.random.default_rng(7)
    rss = rng.integers(0, 1 << 16, n)
    adj = rng.integers(-1000, 1001, n)
    small = Machine(Config(memory="64MiB"))
    small.spawn("init")
    small.spawn_many(10, "warm", rss_pages=rss[:10], oom_score_adj=adj[:10])
    small.oom_victim()
    made = []

    def spawn():
        gc.collect()
        before = _vmrss_kb()
        m = Machine(Config(memory="4GiB"))
        m.spawn("init")
        m.spawn_many(n, "worker", rss_pages=rss, oom_score_adj=adj)
        made.append((m, _vmrss_kb() - before))
    benchmark.pedantic(spawn, rounds=2, iterations=1)
    rates.record(benchmark, "spawn-many", n, "tasks_per_s")
    m, grown_kb = made[-1]
    benchmark.extra_info["host_mib"] = grown_kb / 1024
    import time
    m.oom_victim()
    times = []
    for _ in range(7):
        t0 = time.perf_counter()
        v = m.oom_victim()
        times.append(time.perf_counter() - t0)
    benchmark.extra_info["ms_per_machine_victim"] = float(np.median(times)) * 1e3
    b = oom.oom_badness(rss, np.zeros(n, np.int64), np.zeros(n, np.int64), adj, m.totalpages)
    assert v.oom_badness() == b.max() and v.pid == 2 + int(np.flatnonzero(b == b.max())[-1])
