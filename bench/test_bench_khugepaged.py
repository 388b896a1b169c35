"""khugepaged benchmarks: how fast it examines PTEs, and how fast it collapses.

The scan: 64 GiB of faulted anonymous 4 KiB pages, made idle with ``clear_refs`` so that every
2 MiB range is examined in full (all 512 PTEs) and then turned down for want of a referenced page;
one wakeup with ``pages_to_scan`` covering everything is one round. The collapse: 4 GiB of
referenced 4 KiB pages, all collapsed by one wakeup (allocation, 512 copies, the PMD, freeing).
"""
from __future__ import annotations

import pytest

import mmcore
from mmcore import MADV_HUGEPAGE, MADV_NOHUGEPAGE

GiB, MiB = 1 << 30, 1 << 20
SEC = 1_000_000_000
SEED = 20240601
SCAN_REGION = 64 * GiB
SCAN_ROUNDS = 5
COLLAPSE_REGION = 4 * GiB
COLLAPSE_ROUNDS = 3
KH = "kernel/mm/transparent_hugepage/khugepaged/"


def _faulted(memory: str, size: int):
    m = mmcore.Machine(mmcore.Config(memory=memory, thp_enabled="madvise"), seed=SEED)
    m.sysfs_write(KH + "pages_to_scan", 2 ** 32 - 1)
    t = m.spawn("bench")
    a = t.mmap(size)
    t.madvise(a, size, MADV_NOHUGEPAGE)
    t.touch(a, size)
    return m, t, a


@pytest.mark.benchmark(group="khugepaged")
def test_khugepaged_scan(benchmark, rates):
    """PTEs examined per second by khugepaged over 64 GiB of idle 4 KiB pages."""
    m, t, a = _faulted("66GiB", SCAN_REGION)
    t.clear_refs(1)
    t.madvise(a, SCAN_REGION, MADV_HUGEPAGE)       # enrols the mm; khugepaged wakes now
    m.advance(1)                                   # warm-up, untimed: the first full scan
    before = m.khugepaged()
    assert before["pages_scanned"] >= SCAN_REGION >> 12

    def one_wakeup():
        m.advance(11 * SEC)                        # one wakeup per round (10 s sleep + busy)

    benchmark.pedantic(one_wakeup, rounds=SCAN_ROUNDS, iterations=1)
    after = m.khugepaged()
    per_round = (after["pages_scanned"] - before["pages_scanned"]) // SCAN_ROUNDS
    assert per_round >= SCAN_REGION >> 12
    assert after["pages_collapsed"] == 0           # nothing referenced: nothing collapsed
    assert m.vmstat()["thp_collapse_alloc"] == 0
    rates.record(benchmark, "khugepaged-scan", per_round, "ptes_per_s")
    benchmark.extra_info["ptes_per_round"] = per_round


@pytest.mark.benchmark(group="khugepaged")
def test_khugepaged_collapse(benchmark, rates):
    """2 MiB ranges collapsed per second: 4 GiB of referenced 4 KiB pages, one wakeup."""
    made = []

    def setup():
        m, t, a = _faulted("6GiB", COLLAPSE_REGION)
        t.madvise(a, COLLAPSE_REGION, MADV_HUGEPAGE)
        made.append((m, t, a))
        return (m,), {}

    def collapse(m):
        m.advance(1)

    args, _ = setup()
    collapse(*args)                                 # warm-up, untimed
    benchmark.pedantic(collapse, setup=setup, rounds=COLLAPSE_ROUNDS, iterations=1)
    ranges = COLLAPSE_REGION // (2 * MiB)
    for m, t, a in made:
        assert m.khugepaged()["pages_collapsed"] == ranges
        assert t.smaps(a)["AnonHugePages"] == COLLAPSE_REGION >> 10
    rates.record(benchmark, "khugepaged-collapse", ranges, "collapses_per_s")
    benchmark.extra_info["ptes_per_s"] = benchmark.extra_info["collapses_per_s"] * 512
