"""Differential tests: the JIT engine against the plain-Python reference model, op by op.

Both run the same seeded op streams; after every op the page tables (every leaf entry, bit for bit),
the buddy allocator's free-block counts, vmstat counters, each task's status fields and its TLB
miss counters must agree.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mmcore
from mmcore import (MADV_DONTNEED, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_POPULATE_READ,
                    MADV_POPULATE_WRITE, MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE,
                    PR_SET_THP_DISABLE, PROT_READ, PROT_WRITE)
from mmcore.check import check_invariants

from .reference.model import RefMachine

MiB = 1 << 20
VMSTAT_KEYS = ("pgfault", "thp_fault_alloc", "thp_fault_fallback", "thp_zero_page_alloc",
               "thp_split_pmd", "nr_anon_pages", "nr_anon_transparent_hugepages",
               "nr_page_table_pages", "nr_free_pages")
STATUS_KEYS = ("VmRSS", "RssAnon", "VmPTE")
BASE = 0x7F0000000000           # MAP_FIXED arena: placement is tested separately


class Pair:
    def __init__(self, memory="64MiB", **kw):
        self.m = mmcore.Machine(mmcore.Config(memory=memory, ncpus=1, **kw))
        self.r = RefMachine(self.m.config.memory_bytes, ncpus=1, kernel=self.m.config.kernel,
                            thp_enabled=self.m.config.thp_enabled, thp_defrag=self.m.config.defrag)
        self.t = self.m.spawn("t")
        self.pid = self.r.spawn("t")

    def both(self, name, *args, **kw):
        outs = []
        for fn in (lambda: getattr(self.t, name)(*args, **kw),
                   lambda: getattr(self.r, name)(self.pid, *args, **kw)):
            try:
                r = fn()
                outs.append(("ok", r if name in ("mmap", "prctl") else None))
            except OSError as e:
                outs.append(("errno", e.errno))
            except Exception as e:  # SegmentationFault in either model
                outs.append(("exc", type(e).__name__))
        assert outs[0] == outs[1], f"{name}{args}: engine {outs[0]} vs reference {outs[1]}"

    def compare(self):
        pt = {va: e for va, e in self.t.page_table().items() if e != 0}
        rpt = self.r.page_table(self.pid)
        assert pt == rpt, _first_diff(pt, rpt)
        v, rv = self.m.vmstat(), self.r.vmstat()
        assert {k: v[k] for k in VMSTAT_KEYS} == {k: rv[k] for k in VMSTAT_KEYS}
        st, rst = self.t.status(), self.r.status(self.pid)
        assert {k: st[k] for k in STATUS_KEYS} == {k: rst[k] for k in STATUS_KEYS}
        assert self.m.buddyinfo() == self.r.buddyinfo()
        # Open: walk loads and the clock agree on about 99% of random streams; the rest differ
        # by a paging-structure-cache load or by the syscall cost of a call that failed, so
        # they are not compared yet.
        c, rc = self.t.counters(), self.r.tlb_counters(self.pid)
        keys = ("accesses", "dtlb_misses", "stlb_misses")
        assert [c[k] for k in keys] == [rc[k] for k in keys]
        check_invariants(self.m)


def _first_diff(a, b):
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            return f"first difference at {k:#x}: engine {a.get(k)} reference {b.get(k)}"
    return "equal"


def _random_ops(rng, n):
    ops = []
    for _ in range(n):
        k = rng.integers(0, 8)
        off = int(rng.integers(0, 16)) * (MiB // 2)
        ln = int(rng.choice([4096, 8192, MiB, 2 * MiB, 3 * MiB]))
        if k == 0:
            ops.append(("mmap", ln, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                        BASE + off))
        elif k == 1:
            ops.append(("munmap", BASE + off, ln))
        elif k in (2, 3):
            ops.append(("touch", BASE + off, ln, int(rng.choice([4096, 65536])), bool(k == 2)))
        elif k == 4:
            adv = int(rng.choice([MADV_DONTNEED, MADV_HUGEPAGE, MADV_NOHUGEPAGE,
                                  MADV_POPULATE_READ, MADV_POPULATE_WRITE]))
            if adv in (MADV_HUGEPAGE, MADV_NOHUGEPAGE):
                # Open: a VMA split inside a PMD-mapped THP must split the PMD
                # (vma_adjust_trans_huge); neither model does yet, so flag changes stay on
                # 2 MiB boundaries here until both do.
                off &= ~(2 * MiB - 1)
                ln = (ln + 2 * MiB - 1) & ~(2 * MiB - 1)
            ops.append(("madvise", BASE + off, ln, adv))
        elif k == 5:
            ops.append(("prctl", PR_SET_THP_DISABLE, int(rng.integers(0, 2))))
        else:
            ops.append(("mmap", ln, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                        BASE + off))
    return ops


def _run(pair, ops):
    for op in ops:
        name, *args = op
        if name == "mmap":
            ln, prot, flags, addr = args
            pair.both("mmap", ln, prot, flags, addr)
        else:
            pair.both(name, *args)
        pair.compare()


@pytest.mark.boundscheck
@pytest.mark.parametrize("seed", range(6))
def test_seeded_streams_agree(seed):
    rng = np.random.default_rng(seed)
    _run(Pair(), _random_ops(rng, 40))


@pytest.mark.parametrize("kernel", ["3.10", "4.13", "6.18"])
def test_profiles_agree(kernel):
    rng = np.random.default_rng(100)
    _run(Pair(kernel=kernel), _random_ops(rng, 30))


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 2**32 - 1), st.sampled_from(["always", "madvise", "never"]))
def test_hypothesis_streams_agree(seed, enabled):
    rng = np.random.default_rng(seed)
    _run(Pair(memory="16MiB", thp_enabled=enabled), _random_ops(rng, 25))
