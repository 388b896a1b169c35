"""The access loop's two paths give the same machine.

``Task.access`` runs a read-only stream on the default TLB geometry through a loop specialised for
loads that hit a TLB or walk to a present 4 KiB PTE, and everything else through the general path.
A per-access ``write`` array of zeros asks for the same loads but takes the general path only. So
two machines built alike, given the same stream once each way, must end bit for bit the same: every
state array (page tables, TLBs, paging-structure caches, clocks, counters, vmstat, events) and the
SIGSEGV record. The streams mix TLB hits, walks (some starting from the paging-structure caches,
some full walks over two gigabytes of address space), faults on untouched pages, bad addresses
and khugepaged's timed wake-ups, on several paging-structure-cache sizes and both paging depths.
"""
import numpy as np
import pytest

import mmcore
from mmcore import MADV_HUGEPAGE
from mmcore.check import check_invariants

MiB, GiB = 1 << 20, 1 << 30
WINDOW = 64 * MiB
SPAN = GiB + WINDOW          # one VMA; the stream reads its first and last 64 MiB, a GiB apart


def build(levels: int, pde: int, pdpte: int, seed: int) -> tuple[mmcore.Machine, mmcore.Task, int]:
    cfg = mmcore.Config(memory="2GiB", thp_enabled="madvise", page_table_levels=levels,
                        tlb={"pde_cache_entries": pde, "pdpte_cache_entries": pdpte},
                        khugepaged={"scan_sleep_millisecs": 1})
    m = mmcore.Machine(cfg, seed=seed)
    t = m.spawn("app")
    a = t.mmap(SPAN)
    # every third page of both windows faulted in, the rest faults during the stream
    for base in (a, a + GiB):
        for off in range(0, WINDOW, 3 * 4096):
            t.touch(base + off, 4096)
    # a THP-eligible VMA never touched: the mm is enrolled and khugepaged wakes every
    # millisecond of simulated time, finding nothing to collapse (and no PMD is ever mapped)
    b = t.mmap(4 * MiB)
    t.madvise(b, 4 * MiB, MADV_HUGEPAGE)
    return m, t, a


def stream(a: int, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    addrs = a + rng.integers(0, WINDOW, n, dtype=np.int64) + rng.integers(0, 2, n) * GiB
    # runs of the same page, revisits and a few addresses outside any VMA
    addrs[1::7] = addrs[0:-1:7] + 64
    addrs[5::11] = addrs[2:-3:11]
    addrs[::997] = 0x1000
    return addrs


@pytest.mark.parametrize("levels,pde,pdpte", [(4, 32, 4), (4, 0, 0), (4, 3, 1), (5, 32, 4)])
def test_read_streams_end_the_same_through_either_path(levels, pde, pdpte):
    n = 200_000
    ends = []
    for general in (False, True):
        m, t, a = build(levels, pde, pdpte, seed=7)
        addrs = stream(a, n, seed=11)
        v0, c0 = m.vmstat(), t.counters()
        res = t.access(addrs, np.zeros(n, bool) if general else False, record_faults=True)
        v1 = m.vmstat()
        check_invariants(m)
        ends.append((m, t, res, v0, v1, c0))
    (m1, t1, r1, v0, v1, c0), (m2, t2, r2, _, _, _) = ends
    c = {k: v - c0[k] for k, v in t1.counters().items() if isinstance(v, int)}
    # the stream did what it is meant to: faults, walks, TLB hits, SIGSEGVs and timed scans
    assert c["min_flt"] > 1000 and c["stlb_misses"] > 1000
    assert c["dtlb_misses"] < c["accesses"] == n
    assert 0 < int(r1.sum()) < n
    assert v1["thp_collapse_alloc"] == v0["thp_collapse_alloc"]
    assert m1.khugepaged()["full_scans"] > 0
    assert t1.counters() == t2.counters()
    assert t1.time_ns == t2.time_ns
    assert np.array_equal(r1, r2)
    for name in m1.state._fields:
        x, y = getattr(m1.state, name), getattr(m2.state, name)
        assert np.array_equal(x, y), f"state.{name} differs between the two paths"
