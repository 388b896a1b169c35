"""/proc/PID/pagemap, /proc/kpageflags and /proc/kpagecount (mmcore.pageflags).

The expected bits of the anonymous cases are what this 6.18 host printed for the same mappings
(pagemap as root, kpageflags, kpagecount), with one stated difference: the kernel holds a freshly
faulted 4 KiB anonymous page in a per-CPU batch before it reaches the LRU, so the host showed it
without LRU; the engine puts it on the LRU at once.
"""
from __future__ import annotations

import os

import numpy as np
import pytest

import mmcore
from mmcore import MADV_HUGEPAGE, MADV_NOHUGEPAGE
from mmcore.check import check_invariants
from mmcore.kernels import consts as K
from mmcore.pageflags import (KPF, PM_FILE, PM_MMAP_EXCLUSIVE, PM_PFN_MASK, PM_PRESENT, PM_SWAP,
                              SWP_TYPE_BITS, folio_runs, folio_runs_from, kpf_names)

MiB = 1 << 20
PAGE = 4096
MADV_PAGEOUT = 21


def pm_bits(e: int) -> list[int]:
    return [b for b in (63, 62, 61, 56, 55) if e >> b & 1]


def page(m, t, va):
    """(pagemap bits, kpageflags names, kpagecount) of one virtual page."""
    e = int(t.pagemap(va, PAGE)[0])
    if not e >> 63 & 1:
        return pm_bits(e), None, None
    pfn = e & PM_PFN_MASK
    return pm_bits(e), kpf_names(int(m.kpageflags([pfn])[0])), int(m.kpagecount([pfn])[0])


def aligned(t, size):
    a = t.mmap(size + 2 * MiB)
    return (a + 2 * MiB - 1) & ~(2 * MiB - 1)


@pytest.fixture
def anon_world(machine):
    m = machine(memory="256MiB", thp_enabled="madvise")
    t = m.spawn()
    a = aligned(t, 6 * MiB)
    t.madvise(a, 2 * MiB, MADV_HUGEPAGE)
    t.touch(a, 1, write=True)                                   # a THP
    t.madvise(a + 2 * MiB, 2 * MiB, MADV_NOHUGEPAGE)
    t.touch(a + 2 * MiB, PAGE, write=True)                      # a 4 KiB page
    t.touch(a + 2 * MiB + PAGE, PAGE, write=False)              # the zero page
    t.madvise(a + 4 * MiB, 2 * MiB, MADV_HUGEPAGE)
    t.touch(a + 4 * MiB, PAGE, write=False)                     # the huge zero page
    return m, t, a


def test_anonymous_pages_read_as_on_the_host(anon_world):
    m, t, a = anon_world
    thp = ["UPTODATE", "LRU", "MMAP", "ANON", "SWAPBACKED"]
    assert page(m, t, a) == ([63, 56], thp[:4] + ["SWAPBACKED", "COMPOUND_HEAD", "THP"], 1)
    assert page(m, t, a + 3 * PAGE) == ([63, 56], thp + ["COMPOUND_TAIL", "THP"], 1)
    assert page(m, t, a + 2 * MiB) == ([63, 56], thp, 1)
    assert page(m, t, a + 2 * MiB + PAGE) == ([63], ["ZERO_PAGE", "RESERVED"], 0)
    assert page(m, t, a + 4 * MiB) == ([63, 61], ["COMPOUND_HEAD", "THP", "ZERO_PAGE"], 0)
    assert page(m, t, a + 4 * MiB + 5 * PAGE) == ([63, 61], ["COMPOUND_TAIL", "THP", "ZERO_PAGE"], 0)
    assert page(m, t, a + 2 * MiB + 2 * PAGE) == ([], None, None)          # never touched


def test_pagemap_pfns_are_the_page_tables(anon_world):
    m, t, a = anon_world
    pm = t.pagemap(a, 6 * MiB)
    assert pm.dtype == np.uint64 and pm.shape == (6 * MiB // PAGE,)
    table = t.page_table()
    for i, e in enumerate(pm.tolist()):
        va = a + i * PAGE
        leaf = table.get(va)
        pmd = table.get(va & ~(2 * MiB - 1))
        if leaf is None and pmd is not None and pmd & K._PAGE_PSE:
            leaf = pmd
        if leaf is None or not leaf & K._PAGE_PRESENT:
            assert e == 0
            continue
        sub = (va >> 12) & 511 if leaf & K._PAGE_PSE else 0
        assert e & PM_PFN_MASK == ((leaf & K.PTE_PFN_MASK) >> 12) + sub
    # unaligned ranges round out to whole pages
    assert t.pagemap(a + 100, 10).tolist() == pm[:1].tolist()
    assert t.pagemap(a + PAGE - 1, 2).tolist() == pm[:2].tolist()
    assert t.pagemap(a, 0).shape == (0,)


def test_fork_shares_pages_and_kpagecount_counts_both(anon_world):
    m, t, a = anon_world
    child = t.fork()
    for va in (a, a + 7 * PAGE, a + 2 * MiB):
        bits, _, count = page(m, t, va)
        assert bits == [63] and count == 2                      # mapped twice: not exclusive
        assert child.pagemap(va, PAGE).tolist() == t.pagemap(va, PAGE).tolist()
    child.touch(a + 2 * MiB, PAGE, write=True)                  # copy-on-write
    assert page(m, t, a + 2 * MiB)[0] == [63, 56] and page(m, t, a + 2 * MiB)[2] == 1
    assert page(m, child, a + 2 * MiB)[2] == 1


def test_file_pages_and_tmpfs_huge_folios(machine):
    m = machine(memory="256MiB")
    m.mount("/data", "ext4", size="64MiB")
    m.mount("/shm", "tmpfs", size="64MiB", huge="always")
    t = m.spawn()
    fd = t.open("/data/f", os.O_CREAT | os.O_RDWR)
    t.pwrite(fd, 0, MiB)
    b = t.mmap(MiB, mmcore.PROT_READ, mmcore.MAP_SHARED, fd=fd)
    t.touch(b, MiB, stride=PAGE, write=False)
    bits, names, count = page(m, t, b)
    assert bits == [63, 61, 56] and count == 1
    assert {"UPTODATE", "DIRTY", "LRU", "MMAP"} <= set(names) and "ANON" not in names
    # 6.18's ext4 caches the 1 MiB write in one order-8 folio: a large, LRU folio reads as THP
    assert "SWAPBACKED" not in names and {"COMPOUND_HEAD", "THP"} <= set(names)
    assert "COMPOUND_TAIL" in page(m, t, b + 5 * PAGE)[1]
    assert folio_runs(m.state, t.pagemap(b, MiB)) == [256]
    m.sync()
    assert "DIRTY" not in page(m, t, b)[1]

    fd2 = t.open("/shm/g", os.O_CREAT | os.O_RDWR)
    t.pwrite(fd2, 0, 4 * MiB)
    c = aligned(t, 4 * MiB)
    c = t.mmap(4 * MiB, mmcore.PROT_READ, mmcore.MAP_SHARED | mmcore.MAP_FIXED, fd=fd2, addr=c)
    assert folio_runs(m.state, t.pagemap(c, 4 * MiB)) == [0] * 1024     # not faulted yet
    t.touch(c, 4 * MiB, stride=PAGE, write=False)
    assert t.smaps(c)["ShmemPmdMapped"] == 4096
    assert folio_runs(m.state, t.pagemap(c, 4 * MiB)) == [512, 512]
    bits, names, count = page(m, t, c + 9 * PAGE)
    assert bits == [63, 61, 56] and count == 1
    assert {"SWAPBACKED", "COMPOUND_TAIL", "THP", "MMAP", "LRU"} <= set(names)
    check_invariants(m)


def test_swapped_pages_carry_their_swap_entry(machine):
    m = machine(memory="64MiB", thp_enabled="never", swap="64MiB")
    t = m.spawn()
    a = t.mmap(MiB)
    t.touch(a, MiB, write=True)
    t.madvise(a, MiB, MADV_PAGEOUT)
    pm = t.pagemap(a, MiB)
    assert all(e & PM_SWAP and not e & PM_PRESENT for e in pm.tolist())
    offsets = sorted(e >> SWP_TYPE_BITS & ((1 << 50) - 1) for e in pm.tolist())
    assert len(set(offsets)) == 256 and all(e & ((1 << SWP_TYPE_BITS) - 1) == 0
                                            for e in pm.tolist())       # type 0, one device
    assert t.status()["VmSwap"] == 1024
    t.touch(a, PAGE, write=False)                                       # swap one back in
    e = int(t.pagemap(a, PAGE)[0])
    assert e & PM_PRESENT and not e & PM_SWAP and not e & PM_FILE


def test_free_frames_page_tables_and_frames_past_the_end(machine):
    m = machine(memory="64MiB")
    t = m.spawn()
    a = t.mmap(MiB)
    t.touch(a, PAGE)
    n = m.state.fr_flags.shape[0]
    flags = m.kpageflags(np.arange(n))
    buddy = (flags >> np.uint64(KPF["BUDDY"])) & np.uint64(1)
    heads = np.flatnonzero(buddy)                    # the head of each free block, and only it
    per_order = [0] * 11
    for h in heads.tolist():
        order = int(m.state.fr_order[h]) if m.state.fr_flags[h] & K.PG_buddy else 10
        assert h % (1 << order) == 0
        per_order[order] += 1
    assert per_order == m.buddyinfo()
    assert sum(c << o for o, c in enumerate(per_order)) == m.meminfo()["MemFree"] // 4
    pgt = np.flatnonzero((flags >> np.uint64(KPF["PGTABLE"])) & np.uint64(1))
    assert len(pgt) == m.meminfo()["PageTables"] // 4
    assert int(m.kpagecount(pgt).sum()) == 0
    past = m.kpageflags([n, n + 5])
    assert [kpf_names(int(f)) for f in past] == [["NOPAGE"], ["NOPAGE"]]
    assert m.kpagecount([n]).tolist() == [0]


def test_kpagecount_sums_to_the_mappings(machine):
    """Every present PTE of a page adds one to its frame's count, every PMD one to each of its
    folio's 512 frames; the zero pages count nothing."""
    m = machine(memory="256MiB", thp_enabled="always")
    t = m.spawn()
    a = aligned(t, 8 * MiB)
    t.touch(a, 8 * MiB, stride=64 * PAGE, write=True)
    c = t.fork()
    c.munmap(a + 2 * MiB + 5 * PAGE, PAGE)                 # the child's PMD splits
    c.touch(a + 4 * MiB, PAGE, write=True)                  # and COWs a THP
    t.madvise(a + 6 * MiB, 2 * MiB, MADV_NOHUGEPAGE)
    expected = 0
    for task in (t, c):
        for va, e in task.page_table().items():
            if not e & K._PAGE_PRESENT or e & K._PAGE_SPECIAL:
                continue
            expected += 512 if e & K._PAGE_PSE else 1
    n = m.state.fr_flags.shape[0]
    assert int(m.kpagecount(np.arange(n)).sum()) == expected


@pytest.mark.parametrize("call, exc, words", [
    (lambda t, m: t.pagemap(-1, PAGE), ValueError, "addr"),
    (lambda t, m: t.pagemap(0, -5), ValueError, "length"),
    (lambda t, m: t.pagemap(0.5, PAGE), TypeError, "addr"),
    (lambda t, m: m.kpageflags([-1]), ValueError, "pfns"),
    (lambda t, m: m.kpageflags(np.array([1.5])), TypeError, "pfns"),
    (lambda t, m: m.kpagecount([3, -2]), ValueError, "pfns"),
])
def test_bad_input_names_the_field(machine, call, exc, words):
    m = machine()
    t = m.spawn()
    with pytest.raises(exc, match=words):
        call(t, m)


def test_folio_runs_from_host_style_values():
    """The run reader works on any pagemap/kpageflags pair (a host's too): a head and its
    contiguous tails make one run, an order-0 page a run of 1, a hole a 0."""
    head, tail = 1 << KPF["COMPOUND_HEAD"], 1 << KPF["COMPOUND_TAIL"]
    P = PM_PRESENT
    ents = np.array([P | 100, P | 101, P | 102, P | 103, 0, P | 7, P | 8, P | 200, P | 201],
                    np.uint64)
    flags = np.array([head, tail, tail, tail, 0, 0, 0, head, tail], np.uint64)
    assert folio_runs_from(ents, flags) == [4, 0, 1, 1, 2]
    assert PM_MMAP_EXCLUSIVE == 1 << 56
