"""Self-checks of the reference model against expectations computed by hand from SEMANTICS.md.

Pfn arithmetic used below (fresh machine): the first page table (the PGD) comes from the implicit
order-10 block at pfn 0 through the MOVABLE fallback; its order-10 size claims pageblocks 0 and 1
as UNMOVABLE and leaves 512(o9) 256(o8) ... 2(o1) 1(o0) on UNMOVABLE lists. Later tables take
1, 2 (leaving 3), 3, 4 (leaving 6(o1), 5), 5, 6 (leaving 7), ... The first MOVABLE page takes the
next implicit block at 1024 and leaves 1536(o9) 1280(o8) ... 1025(o0) on MOVABLE lists.
"""

import errno
import random

import pytest

from tests.reference.model import (
    MADV_DONTNEED, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_POPULATE_READ,
    MADV_POPULATE_WRITE, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_POPULATE, MAP_PRIVATE,
    MAP_SHARED, MCL_CURRENT, MCL_FUTURE, MCL_ONFAULT, MIGRATE_MOVABLE, MIGRATE_UNMOVABLE,
    PR_GET_THP_DISABLE, PR_SET_THP_DISABLE, PROT_EXEC, PROT_READ, PROT_WRITE, TASK_SIZE,
    VM_HUGEPAGE, VM_LOCKED, VM_LOCKONFAULT, VM_MAYEXEC, VM_MAYREAD, VM_MAYWRITE, VM_NOHUGEPAGE,
    VM_READ, VM_WRITE, VM_ACCOUNT, VDSO_VMAS, OutOfMemory, RefMachine, SegmentationFault,
)

MiB = 1 << 20
RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS
NX = 1 << 63
P, W, U, A, D, PS, SPECIAL = 0x1, 0x2, 0x4, 0x20, 0x40, 0x80, 0x200
PROTNONE = 0x100
MAY = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC
AC = VM_ACCOUNT  # private writable mappings are charged (overcommit accounting)
INITIAL_64MIB = [0] * 10 + [16]  # buddyinfo of a fresh 64 MiB machine (all implicit blocks)


VDSO = [(s, e, f) for s, e, f, _ in VDSO_VMAS]  # [vvar], [vvar_vclock], [vdso] (SEMANTICS 10)
VDSO_START = VDSO[0][0]


def uvmas(m, pid):
    """The task's VMAs without the three vDSO ones every new address space starts with."""
    return [v for v in m.vmas(pid) if v not in VDSO]


def signed(entry):
    return entry - (1 << 64) if entry & (1 << 63) else entry


def errno_of(fn, *args):
    with pytest.raises(OSError) as exc:
        fn(*args)
    return exc.value.errno


def test_first_mmap_address_and_flags():
    m = RefMachine(64 * MiB)
    pid = m.spawn()
    assert pid == 1 and m.spawn() == 2
    # mmap_base = TASK_SIZE - 128 MiB = 0x7ffff7fff000; the vDSO VMAs take the 32 KiB below it
    assert m.vmas(pid) == [(0x7FFFF7FF7000, 0x7FFFF7FFB000, VM_READ | VM_MAYREAD),
                           (0x7FFFF7FFB000, 0x7FFFF7FFD000, VM_READ | VM_MAYREAD),
                           (0x7FFFF7FFD000, 0x7FFFF7FFF000, VM_READ | 0x4 | VM_MAYREAD | VM_MAYEXEC)]
    addr = m.mmap(pid, 4096, RW, ANON)
    assert addr == 0x7FFFF7FF6000  # as on the 6.18 host (SEMANTICS 10)
    assert m.vmas(pid) == [(addr, addr + 4096, VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | AC)] + VDSO
    # a second mapping with the same flags lands just below and merges
    b = m.mmap(pid, 8192, RW, ANON)
    assert b == addr - 8192 and len(uvmas(m, pid)) == 1
    # 6.18: a 2 MiB multiple searches len + 2 MiB and rounds the start up to 2 MiB
    c = m.mmap(pid, 2 * MiB, RW, ANON)
    assert c == 0x7FFFF7C00000  # s = 0x7ffff7ff4000 - 4 MiB = 0x7ffff7bf4000 -> up to 2 MiB
    m.check_invariants()


def test_thp_alignment_only_on_6_18():
    m = RefMachine(64 * MiB, kernel="4.13")
    pid = m.spawn()
    assert m.mmap(pid, 2 * MiB, RW, ANON) == 0x7FFFF7FFF000 - 0x8000 - 2 * MiB  # below the vDSO


def test_write_touch_one_page_tables_pfns_and_time():
    m = RefMachine(64 * MiB)
    pid = m.spawn()
    addr = m.mmap(pid, 4096, RW, ANON)
    m.touch(pid, addr, 4096)
    st = m.status(pid)
    assert (st["VmPTE"], st["RssAnon"], st["VmRSS"]) == (12, 4, 4)
    assert m.page_table_frames() == {0: 4, 1: 3, 2: 2, 3: 1}  # PGD, PUD, PMD, PTE
    assert m.frame_state() == {1024: (0, 1)}
    assert m.page_table(pid) == {addr: signed(P | W | U | A | D | NX | (1024 << 12))}
    c = m.tlb_counters(pid)
    # walk without a PGD (1 load), fault, walk again (4 loads)
    assert (c["accesses"], c["dtlb_misses"], c["stlb_misses"], c["walk_loads"]) == (1, 1, 2, 5)
    expected = (100000  # mmap syscall
                + 333 + 2333  # access, first walk
                + 400000 + 4 * 150000 + 100000  # fault, 4 tables, clear one page
                + 4 * 2333)  # second walk
    assert c["time_ps"] == expected
    m.touch(pid, addr, 4096, write=False)  # L1 hit
    c = m.tlb_counters(pid)
    assert (c["dtlb_misses"], c["stlb_misses"], c["time_ps"]) == (1, 2, expected + 333)
    vs = m.vmstat()
    assert vs["pgfault"] == 1 and vs["nr_page_table_pages"] == 4 and vs["nr_anon_pages"] == 1
    assert vs["nr_free_pages"] == 16384 - 5
    m.check_invariants()


def test_buddyinfo_4mib_machine():
    m = RefMachine(4 * MiB)
    assert m.buddyinfo() == [0] * 10 + [1]
    assert m.buddy.alloc(0, MIGRATE_MOVABLE) == 0
    assert m.buddyinfo() == [1] * 10 + [0]
    lists, high_water = m.free_lists()
    assert high_water == 1024
    assert lists[(9, MIGRATE_MOVABLE)] == [512] and lists[(0, MIGRATE_MOVABLE)] == [1]
    m.buddy.free(0, 0)
    assert m.buddyinfo() == [0] * 10 + [1] and m.free_lists()[0][(10, MIGRATE_MOVABLE)] == [0]


def test_buddyinfo_after_touch_on_4mib_machine():
    # PGD 0 claims both pageblocks UNMOVABLE; PUD 1, PMD 2, PTE 3. The data page falls back to
    # (9, UNMOVABLE) 512, claims pageblock 1 as MOVABLE and expands it.
    m = RefMachine(4 * MiB)
    pid = m.spawn()
    addr = m.mmap(pid, 4096, RW, ANON)
    m.touch(pid, addr, 4096)
    assert m.frame_state() == {512: (0, 1)}
    assert m.buddyinfo() == [1, 1, 2, 2, 2, 2, 2, 2, 2, 0, 0]
    assert m.pageblock_migratetypes() == [MIGRATE_UNMOVABLE, MIGRATE_MOVABLE]
    lists, _ = m.free_lists()
    assert lists[(2, MIGRATE_UNMOVABLE)] == [4] and lists[(2, MIGRATE_MOVABLE)] == [516]
    m.check_invariants()


def test_thp_write_fault():
    m = RefMachine(64 * MiB)
    pid = m.spawn()
    addr = m.mmap(pid, 2 * MiB, RW, ANON)
    assert addr % (2 * MiB) == 0
    m.touch(pid, addr, 4096)
    smaps = m.smaps(pid)[0]
    assert (smaps["AnonHugePages"], smaps["Rss"], smaps["Referenced"]) == (2048, 2048, 2048)
    assert m.status(pid)["VmPTE"] == 12  # PUD + PMD + deposited PTE table
    # PGD 0, PUD 1, PMD 2; THP = implicit block 1024; then the deposit takes 3
    assert m.frame_state() == {1024: (9, 1)}
    assert m.page_table_frames() == {0: 4, 1: 3, 2: 2, 3: 1}
    assert m.page_table(pid) == {addr: signed(P | W | U | A | D | PS | NX | (1024 << 12))}
    vs = m.vmstat()
    assert (vs["thp_fault_alloc"], vs["nr_anon_transparent_hugepages"], vs["nr_anon_pages"]) == (1, 1, 512)
    m.touch(pid, addr, 2 * MiB)  # the rest is TLB hits on the 2 MiB entry
    assert m.vmstat()["pgfault"] == 1 and m.tlb_counters(pid)["dtlb_misses"] == 1
    m.check_invariants()


def test_huge_zero_page_then_write_6_18_and_4_13():
    for kernel in ("6.18", "4.13"):
        m = RefMachine(64 * MiB, kernel=kernel)
        pid = m.spawn()
        addr = m.mmap(pid, 4 * MiB, RW, ANON)  # contains an aligned 2 MiB range in both profiles
        haddr = (addr + 2 * MiB - 1) & ~(2 * MiB - 1)
        m.touch(pid, haddr, 4096, write=False)
        hzp = m.huge_zero_pfn
        assert m.vmstat()["thp_zero_page_alloc"] == 1 and m.status(pid)["RssAnon"] == 0
        assert m.page_table(pid) == {haddr: signed(P | U | A | PS | SPECIAL | NX | (hzp << 12))}
        assert m.status(pid)["VmPTE"] == 12  # the zero PMD deposits a table too
        m.touch(pid, haddr + 8192, 4096, write=True)
        vs = m.vmstat()
        if kernel == "6.18":  # do_huge_zero_wp_pmd: a THP replaces the zero PMD
            assert (vs["thp_fault_alloc"], vs["thp_split_pmd"]) == (1, 0)
            assert m.status(pid)["RssAnon"] == 2048 and m.status(pid)["VmPTE"] == 12
        else:  # 4.13: split into zero PTEs and COW one page
            assert (vs["thp_fault_alloc"], vs["thp_split_pmd"]) == (0, 1)
            pt = m.page_table(pid)
            assert len(pt) == 512 and m.status(pid)["RssAnon"] == 4
            zero = signed(P | U | A | SPECIAL | NX | (m.zero_pfn << 12))
            assert sum(1 for e in pt.values() if e == zero) == 511
        m.check_invariants()


def test_munmap_partial_thp_then_all():
    m = RefMachine(64 * MiB)
    pid = m.spawn()
    addr = m.mmap(pid, 2 * MiB, RW, ANON)
    m.touch(pid, addr, 2 * MiB, stride=2 * MiB)
    m.munmap(pid, addr, 4096)
    vs = m.vmstat()
    assert vs["thp_split_pmd"] == 1 and vs["nr_anon_transparent_hugepages"] == 0
    assert vs["nr_anon_pages"] == 511
    assert m.frame_state() == {1024: (9, 511)}
    assert m.status(pid)["RssAnon"] == 2044 and m.status(pid)["VmPTE"] == 12
    assert m.smaps(pid)[0]["AnonHugePages"] == 0
    m.check_invariants()
    m.munmap(pid, addr + 4096, 2 * MiB - 4096)
    # the PTE table goes; the PUD and PMD tables also cover the vDSO VMAs, so they stay
    assert m.frame_state() == {} and m.status(pid)["VmPTE"] == 8
    assert m.vmstat()["nr_free_pages"] == 16384 - 3  # PGD, PUD, PMD
    assert uvmas(m, pid) == []
    m.check_invariants()
    # unmapping nothing is fine; bad arguments are EINVAL
    assert m.munmap(pid, addr, 4096) == 0
    assert errno_of(m.munmap, pid, addr + 1, 4096) == errno.EINVAL
    assert errno_of(m.munmap, pid, addr, 0) == errno.EINVAL


def test_mmap_errors_and_fixed():
    m = RefMachine(64 * MiB)
    pid = m.spawn()
    assert errno_of(m.mmap, pid, 0, RW, ANON) == errno.EINVAL
    assert errno_of(m.mmap, pid, TASK_SIZE + 4096, RW, ANON) == errno.ENOMEM
    assert errno_of(m.mmap, pid, 4096, RW, ANON | MAP_FIXED, 0x10001000 + 1) == errno.EINVAL
    assert errno_of(m.mmap, pid, 4096, RW, MAP_ANONYMOUS) == errno.EINVAL
    assert errno_of(m.mmap, pid, 4096, RW, MAP_ANONYMOUS | MAP_SHARED | MAP_PRIVATE) == errno.EINVAL
    a = m.mmap(pid, 3 * 4096, RW, ANON)
    assert errno_of(m.mmap, pid, 4096, RW, ANON | MAP_FIXED_NOREPLACE, a + 4096) == errno.EEXIST
    m.touch(pid, a, 3 * 4096)
    assert m.mmap(pid, 4096, PROT_READ, ANON | MAP_FIXED, a + 4096) == a + 4096
    assert [v[:2] for v in uvmas(m, pid)] == [(a, a + 4096), (a + 4096, a + 8192), (a + 8192, a + 3 * 4096)]
    assert m.status(pid)["RssAnon"] == 8  # the middle page was unmapped
    assert m.mmap(pid, 4096, RW, ANON | MAP_FIXED, a + 4096) == a + 4096
    assert len(uvmas(m, pid)) == 1  # merged back
    # a free hint is used as is
    assert m.mmap(pid, 4096, RW, ANON, 0x10000000) == 0x10000000
    # each call cost syscall_ps; 11 calls, errors included
    assert m.tlb_counters(pid)["time_ps"] >= 11 * 100000
    m.check_invariants()


def test_map_populate():
    m = RefMachine(64 * MiB)
    pid = m.spawn()
    a = m.mmap(pid, 4 * 4096, RW, ANON | MAP_POPULATE)
    assert m.status(pid)["RssAnon"] == 16 and m.vmstat()["pgfault"] == 4
    b = m.mmap(pid, 4 * 4096, PROT_READ, ANON | MAP_POPULATE)
    assert m.status(pid)["RssAnon"] == 16 and len(m.page_table(pid)) == 8  # zero pages
    assert m.tlb_counters(pid)["accesses"] == 0 and a != b
    m.check_invariants()


def test_prctl_profiles():
    m = RefMachine(64 * MiB, kernel="3.10")
    pid = m.spawn()
    assert errno_of(m.prctl, pid, PR_SET_THP_DISABLE, 1) == errno.EINVAL

    m = RefMachine(64 * MiB, kernel="3.15")
    pid = m.spawn()
    old = m.mmap(pid, 4096, RW, ANON)
    assert m.prctl(pid, PR_SET_THP_DISABLE, 1) == 0 and m.prctl(pid, PR_GET_THP_DISABLE) == 1
    assert errno_of(m.prctl, pid, PR_SET_THP_DISABLE, 1, 1) == errno.EINVAL
    new = m.mmap(pid, 4096, RW, ANON)
    flags = {v[0]: v[2] for v in uvmas(m, pid)}
    assert not flags[old] & VM_NOHUGEPAGE and flags[new] & VM_NOHUGEPAGE  # template for new VMAs
    assert m.status(pid)["THP_enabled"] == 1

    m = RefMachine(64 * MiB, kernel="4.13")
    pid = m.spawn()
    a = m.mmap(pid, 4 * MiB, RW, ANON)
    m.madvise(pid, a, 4 * MiB, MADV_HUGEPAGE)
    assert m.prctl(pid, PR_SET_THP_DISABLE, 1) == 0 and m.prctl(pid, PR_GET_THP_DISABLE) == 1
    assert m.status(pid)["THP_enabled"] == 0
    m.touch(pid, a, 4 * MiB, stride=2 * MiB)
    assert m.vmstat()["thp_fault_alloc"] == 0  # master override beats MADV_HUGEPAGE

    m = RefMachine(64 * MiB, kernel="6.18")
    pid = m.spawn()
    assert m.prctl(pid, PR_SET_THP_DISABLE, 1, 0) == 0
    assert m.prctl(pid, PR_GET_THP_DISABLE) == 1 and m.status(pid)["THP_enabled"] == 0
    assert m.mm_flags(pid) == 1 << 24
    assert m.prctl(pid, PR_SET_THP_DISABLE, 1, 2) == 0
    assert m.prctl(pid, PR_GET_THP_DISABLE) == 3 and m.status(pid)["THP_enabled"] == 1
    assert m.mm_flags(pid) == 1 << 23
    for args in ((0, 2), (1, 4), (1, 0, 1), (1, 0, 0, 1)):
        assert errno_of(m.prctl, pid, PR_SET_THP_DISABLE, *args) == errno.EINVAL
    assert errno_of(m.prctl, pid, PR_GET_THP_DISABLE, 1) == errno.EINVAL
    plain = m.mmap(pid, 2 * MiB, RW, ANON)
    advised = m.mmap(pid, 2 * MiB, RW, ANON)
    m.madvise(pid, advised, 2 * MiB, MADV_HUGEPAGE)
    m.touch(pid, plain, 4096)
    m.touch(pid, advised, 4096)
    assert m.vmstat()["thp_fault_alloc"] == 1  # only the VM_HUGEPAGE VMA
    assert m.prctl(pid, PR_SET_THP_DISABLE, 0) == 0 and m.prctl(pid, PR_GET_THP_DISABLE) == 0
    m.check_invariants()


def test_madvise_split_merge_dontneed_and_errors():
    m = RefMachine(64 * MiB)
    pid = m.spawn()
    a = m.mmap(pid, 4 * MiB, RW, ANON)
    m.touch(pid, a, 4 * MiB, stride=2 * MiB)  # two THPs
    # MADV_NOHUGEPAGE on the middle 4 KiB of the first THP: 3 VMAs, that PMD split
    assert m.madvise(pid, a + 4096, 4096, MADV_NOHUGEPAGE) == 0
    vmas = uvmas(m, pid)
    assert [v[:2] for v in vmas] == [(a, a + 4096), (a + 4096, a + 8192), (a + 8192, a + 4 * MiB)]
    assert vmas[1][2] & VM_NOHUGEPAGE and m.vmstat()["thp_split_pmd"] == 1
    assert m.madvise(pid, a + 4096, 4096, MADV_HUGEPAGE) == 0
    assert len(uvmas(m, pid)) == 3 and uvmas(m, pid)[1][2] & VM_HUGEPAGE
    m.madvise(pid, a, 4 * MiB, MADV_HUGEPAGE)
    assert len(uvmas(m, pid)) == 1  # identical flags merge again
    # DONTNEED of the whole second THP frees it and its deposited table, keeps the VMA
    pte_before = m.status(pid)["VmPTE"]
    assert m.madvise(pid, a + 2 * MiB, 2 * MiB, MADV_DONTNEED) == 0
    assert m.status(pid)["RssAnon"] == 2048 and m.status(pid)["VmPTE"] == pte_before - 4
    assert m.vmstat()["nr_anon_transparent_hugepages"] == 0
    # errors
    assert errno_of(m.madvise, pid, a + 1, 4096, MADV_DONTNEED) == errno.EINVAL
    assert errno_of(m.madvise, pid, a, 4096, 99) == errno.EINVAL
    assert m.madvise(pid, a, 0, MADV_DONTNEED) == 0
    assert errno_of(m.madvise, pid, a - 4096, 8192, MADV_DONTNEED) == errno.ENOMEM
    assert m.status(pid)["RssAnon"] == 2044  # the mapped part was still handled
    m.check_invariants()


def test_madvise_populate():
    m = RefMachine(64 * MiB)
    pid = m.spawn()
    ro = m.mmap(pid, 8192, PROT_READ, ANON)
    assert errno_of(m.madvise, pid, ro, 8192, MADV_POPULATE_WRITE) == errno.EINVAL
    assert m.madvise(pid, ro, 8192, MADV_POPULATE_READ) == 0 and len(m.page_table(pid)) == 2
    rw = m.mmap(pid, 8192, RW, ANON)
    assert rw == ro - 8192
    # rw..ro+8K is contiguous and [vvar] starts at ro + 8 KiB: the vDSO is not memory (EFAULT)
    assert ro + 8192 == VDSO_START
    assert errno_of(m.madvise, pid, rw, 5 * 4096, MADV_POPULATE_READ) == errno.EFAULT
    assert len(m.page_table(pid)) == 4  # the part before [vvar] was populated
    # a hole at the start: ENOMEM
    assert errno_of(m.madvise, pid, rw - 4096, 2 * 4096, MADV_POPULATE_READ) == errno.ENOMEM
    assert m.madvise(pid, rw, 8192, MADV_POPULATE_WRITE) == 0
    assert m.status(pid)["RssAnon"] == 8
    m.check_invariants()


def test_segfault_keeps_earlier_state():
    m = RefMachine(64 * MiB)
    pid = m.spawn()
    a = m.mmap(pid, 8192, RW, ANON)
    with pytest.raises(SegmentationFault) as exc:
        m.touch(pid, a, 3 * 4096)
    assert exc.value.address == a + 8192
    assert m.status(pid)["RssAnon"] == 8 and m.vmstat()["pgfault"] == 3
    r = m.mmap(pid, 4096, PROT_READ, ANON)
    with pytest.raises(SegmentationFault):
        m.touch(pid, r, 4096, write=True)
    m.check_invariants()


def test_l1_lru_eviction_and_stlb_hit():
    m = RefMachine(64 * MiB, thp_enabled="never")
    pid = m.spawn()
    base = m.mmap(pid, 5 * 16 * 4096, RW, ANON)
    pages = [base + k * 16 * 4096 for k in range(5)]  # same L1 set (16 sets), distinct STLB sets
    m.access(pid, pages, True)
    c0 = m.tlb_counters(pid)
    m.access(pid, [pages[0]], False)  # evicted from L1 by the 5th page, still in the STLB
    c1 = m.tlb_counters(pid)
    assert c1["dtlb_misses"] == c0["dtlb_misses"] + 1 and c1["stlb_misses"] == c0["stlb_misses"]
    assert c1["time_ps"] == c0["time_ps"] + 333 + 3000
    m.access(pid, [pages[4]], False)  # L1 hit
    assert m.tlb_counters(pid)["time_ps"] == c1["time_ps"] + 333
    m.check_invariants()


def test_direct_compaction_hand_computed():
    """8 MiB, enabled=never then always, defrag=always.

    A (6 MiB) gets 1280 written pages: PTE tables 3, 4, 5; data 1024-2047 (pageblocks 2, 3), then
    the fallback steals (9, UNMOVABLE) 512 and claims pageblock 1: data 512-767. DONTNEED of the
    odd pages of A's second 2 MiB frees pfns 1537, 1539, ..., 2047. A THP fault then finds no
    order-9 block: the migrate scanner skips pageblock 0 (page tables) and migrates the 256 pages
    of pageblock 1 into the odd pfns of pageblock 3 (free scanner), after which 512 is an
    order-9 MOVABLE block.
    """
    m = RefMachine(8 * MiB, thp_enabled="never", thp_defrag="always")
    pid = m.spawn()
    a = m.mmap(pid, 6 * MiB, RW, ANON)
    m.touch(pid, a, 1280 * 4096)
    assert m.page_table_frames() == {0: 4, 1: 3, 2: 2, 3: 1, 4: 1, 5: 1}
    assert m.page_table(pid)[a + 1024 * 4096] == signed(P | W | U | A | D | NX | (512 << 12))
    for k in range(512 + 1, 1024, 2):
        m.madvise(pid, a + k * 4096, 4096, MADV_DONTNEED)
    m.sysfs_write("kernel/mm/transparent_hugepage/enabled", "always")
    b = m.mmap(pid, 2 * MiB, RW, ANON)
    m.touch(pid, b, 4096)
    vs = m.vmstat()
    assert (vs["compact_stall"], vs["compact_success"], vs["compact_fail"]) == (1, 1, 0)
    assert vs["pgmigrate_success"] == 256
    assert (vs["compact_migrate_scanned"], vs["compact_free_scanned"]) == (1024, 512)
    pt = m.page_table(pid)
    assert pt[b] == signed(P | W | U | A | D | PS | NX | (512 << 12))
    assert pt[a + 1024 * 4096] == signed(P | W | U | A | D | NX | (1537 << 12))
    assert pt[a + 1279 * 4096] == signed(P | W | U | A | D | NX | (2047 << 12))
    assert 6 in m.page_table_frames()  # the deposit took the next UNMOVABLE frame
    m.check_invariants()


def test_direct_compaction_fails_when_scanners_meet():
    """As above, but only 100 odd pfns of pageblock 3 are freed: after 100 migrations the free
    scanner moves to pageblock 2 (full) and then meets the migrate scanner at pageblock 1."""
    m = RefMachine(8 * MiB, thp_enabled="never", thp_defrag="always")
    pid = m.spawn()
    a = m.mmap(pid, 6 * MiB, RW, ANON)
    m.touch(pid, a, 1280 * 4096)
    for k in range(513, 513 + 200, 2):
        m.madvise(pid, a + k * 4096, 4096, MADV_DONTNEED)
    m.sysfs_write("kernel/mm/transparent_hugepage/enabled", "always")
    b = m.mmap(pid, 2 * MiB, RW, ANON)
    m.touch(pid, b, 4096)
    vs = m.vmstat()
    assert (vs["compact_stall"], vs["compact_success"], vs["compact_fail"]) == (1, 0, 1)
    assert (vs["pgmigrate_success"], vs["thp_fault_fallback"], vs["thp_fault_alloc"]) == (100, 1, 0)
    assert (vs["compact_migrate_scanned"], vs["compact_free_scanned"]) == (1024, 1024)
    pt = m.page_table(pid)
    assert pt[a + 1024 * 4096] == signed(P | W | U | A | D | NX | (1537 << 12))
    assert pt[a + 1124 * 4096] == signed(P | W | U | A | D | NX | (612 << 12))  # not migrated
    m.check_invariants()


def test_mmap_hint_rounding_and_no_bottom_up_fallback():
    m = RefMachine(64 * MiB)
    pid = m.spawn()
    assert m.mmap(pid, 4096, RW, ANON, 0x1234) == 65536  # round_hint_to_min
    assert m.mmap(pid, 4096, RW, ANON, 0x20000123) == 0x20000000  # aligned down
    big = 0x7FFFF7FFF000 - 0x100000000
    m.mmap(pid, big, RW, ANON | MAP_FIXED, 0x100000000)  # fills [4 GiB, mmap_base)
    c = m.mmap(pid, 4096, RW, ANON)
    assert c == 0x100000000 - 4096
    m.munmap(pid, 65536, 0x100000000 - 65536)
    m.mmap(pid, 0x100000000 - 65536, RW, ANON | MAP_FIXED, 65536)
    # nothing free below mmap_base; space above it is not searched
    assert errno_of(m.mmap, pid, 4096, RW, ANON) == errno.ENOMEM
    m.check_invariants()


def test_access_accepts_numpy():
    np = pytest.importorskip("numpy")
    m = RefMachine(64 * MiB)
    pid = m.spawn()
    a = m.mmap(pid, 4 * 4096, RW, ANON)
    m.access(pid, np.arange(a, a + 4 * 4096, 4096, dtype=np.int64), np.array([1, 0, 1, 0], dtype=bool))
    assert m.status(pid)["RssAnon"] == 8 and len(m.page_table(pid)) == 4
    m.access(pid, np.array([a]), np.bool_(True))
    m.check_invariants()


def test_thp_fallback_without_compaction():
    m = RefMachine(8 * MiB, thp_enabled="never", thp_defrag="madvise")
    pid = m.spawn()
    a = m.mmap(pid, 6 * MiB, RW, ANON)
    m.touch(pid, a, 1280 * 4096)
    for k in range(513, 1024, 2):
        m.madvise(pid, a + k * 4096, 4096, MADV_DONTNEED)
    m.sysfs_write("/sys/kernel/mm/transparent_hugepage/enabled", "always")
    b = m.mmap(pid, 2 * MiB, RW, ANON)
    m.touch(pid, b, 4096)  # no VM_HUGEPAGE: no direct compaction under defrag=madvise
    vs = m.vmstat()
    assert (vs["compact_stall"], vs["thp_fault_fallback"], vs["thp_fault_alloc"]) == (0, 1, 0)
    assert m.status(pid)["RssAnon"] == (1280 - 256 + 1) * 4
    m.check_invariants()


def test_sysfs_values():
    m = RefMachine(64 * MiB, kernel="3.10", thp_defrag="always")
    assert errno_of(m.sysfs_write, "kernel/mm/transparent_hugepage/defrag", "defer") == errno.EINVAL
    assert errno_of(m.sysfs_write, "kernel/mm/transparent_hugepage/enabled", "sometimes") == errno.EINVAL
    assert errno_of(m.sysfs_write, "kernel/mm/transparent_hugepage/use_zero_page", "2") == errno.EINVAL
    m.sysfs_write("kernel/mm/transparent_hugepage/use_zero_page", "0")
    pid = m.spawn()
    a = m.mmap(pid, 4 * MiB, RW, ANON)
    m.touch(pid, (a + 2 * MiB - 1) & ~(2 * MiB - 1), 4096, write=False)
    assert m.vmstat()["thp_fault_alloc"] == 1 and m.huge_zero_pfn is None  # no zero page
    m6 = RefMachine(64 * MiB)
    m6.sysfs_write("kernel/mm/transparent_hugepage/defrag", "defer+madvise")
    with pytest.raises(ValueError):
        RefMachine(64 * MiB, kernel="3.10", thp_defrag="defer")


def test_out_of_memory_is_reported():
    m = RefMachine(4 * MiB, thp_enabled="never")
    pid = m.spawn()
    a = m.mmap(pid, 8 * MiB, RW, ANON)
    with pytest.raises(OutOfMemory):
        m.touch(pid, a, 8 * MiB)
    assert m.vmstat()["nr_free_pages"] == 0
    m.check_invariants()
    m.exit(pid)
    assert m.vmstat()["nr_free_pages"] == 1024
    m.check_invariants()


@pytest.mark.parametrize("seed", range(6))
def test_random_ops_keep_invariants(seed):
    rng = random.Random(seed)
    kernel = ["3.10", "3.15", "4.13", "6.18"][seed % 4]
    m = RefMachine(16 * MiB, ncpus=2, kernel=kernel, thp_defrag="always" if seed % 2 else "madvise",
                   tlb=dict(stlb_entries=48, stlb_ways=4))
    pids = [m.spawn() for _ in range(3)]
    maps = {p: [] for p in pids}
    for _ in range(150):
        pid = rng.choice(pids)
        op = rng.random()
        try:
            if op < 0.2 or not maps[pid]:
                length = rng.choice([4096, 3 * 4096, 2 * MiB, 4 * MiB, 5 * MiB // 2])
                flags = ANON | (MAP_POPULATE if rng.random() < 0.2 else 0)
                prot = rng.choice([RW, RW, PROT_READ])
                maps[pid].append((m.mmap(pid, length, prot, flags), length))
            else:
                addr, length = rng.choice(maps[pid])
                off = rng.randrange(0, length, 4096)
                sub = min(length - off, rng.choice([4096, 64 * 1024, 2 * MiB]))
                if op < 0.55:
                    m.touch(pid, addr + off, sub, stride=rng.choice([4096, 12288]),
                            write=rng.random() < 0.7)
                elif op < 0.65:
                    m.munmap(pid, addr + off, sub)
                elif op < 0.8:
                    m.madvise(pid, addr + off, sub, rng.choice(
                        [MADV_DONTNEED, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_POPULATE_READ,
                         MADV_POPULATE_WRITE]))
                elif op < 0.85:
                    m.prctl(pid, PR_SET_THP_DISABLE, rng.randrange(2))
                else:
                    m.access(pid, [addr + rng.randrange(0, length) for _ in range(20)],
                             [rng.random() < 0.5 for _ in range(20)])
        except (OSError, SegmentationFault, OutOfMemory):
            pass
        m.check_invariants()
    for pid in pids:
        m.exit(pid)
    m.check_invariants()
    assert m.vmstat()["nr_free_pages"] == 4096 - (512 if m.huge_zero_pfn is not None else 0)


# ----------------------------------------------------------------------------- SEMANTICS 9
def pte(pfn, *bits):
    e = pfn << 12
    for b in bits:
        e |= b
    return signed(e)


def test_fork_cow_4k_pages_hand_computed():
    m = RefMachine(64 * MiB)
    p = m.spawn("sh")
    a = m.mmap(p, 8192, RW, ANON)
    m.touch(p, a, 8192)  # tables 0-3, data 1024 (a) and 1025 (a + 4 KiB)
    t0 = m.tlb_counters(p)["time_ps"]
    c = m.fork(p)
    assert c == 2 and m.task_info(c)["comm"] == "sh" and m.task_info(c)["mm"] != m.task_info(p)["mm"]
    # parent loses RW; child = parent's new entry with A cleared; mapcount 2
    assert m.page_table(p) == {a: pte(1024, P, U, A, D, NX), a + 4096: pte(1025, P, U, A, D, NX)}
    assert m.page_table(c) == {a: pte(1024, P, U, D, NX), a + 4096: pte(1025, P, U, D, NX)}
    assert m.frame_state() == {1024: (0, 2), 1025: (0, 2)}
    # child PGD, PUD, PMD, PTE come next from the UNMOVABLE lists
    assert m.page_table_frames() == {0: 4, 1: 3, 2: 2, 3: 1, 4: 4, 5: 3, 6: 2, 7: 1}
    assert m.status(c)["RssAnon"] == 8 and m.status(c)["VmPTE"] == 12
    assert m.vmstat()["nr_anon_pages"] == 2  # first/last mapping only
    assert uvmas(m, c) == uvmas(m, p)
    # syscall + flush_tlb_mm + 4 child tables + 2 copied leaves
    t1 = t0 + 100000 + 100000 + 4 * 150000 + 2 * 2000
    assert m.tlb_counters(p)["time_ps"] == t1 and m.tlb_counters(c)["time_ps"] == t1
    m.check_invariants()

    # a write in the child copies: new pfn 1026 (the order-1 MOVABLE block 1026 splits)
    m.touch(c, a, 4096)
    assert m.page_table(c)[a] == pte(1026, P, W, U, A, D, NX)
    assert m.frame_state() == {1024: (0, 1), 1025: (0, 2), 1026: (0, 1)}
    assert m.vmstat()["nr_anon_pages"] == 3
    # walk 4 loads, fault + copy + COW flush, walk again: 4 loads (the flush took the PSC entries)
    t2 = t1 + 333 + 4 * 2333 + 400000 + 200000 + 100000 + 4 * 2333
    assert m.tlb_counters(c)["time_ps"] == t2
    # the parent's page now has mapcount 1: a write reuses it (no copy, RW back)
    faults = m.vmstat()["pgfault"]
    m.touch(p, a, 4096)
    assert m.page_table(p)[a] == pte(1024, P, W, U, A, D, NX)
    assert m.frame_state() == {1024: (0, 1), 1025: (0, 2), 1026: (0, 1)}
    assert m.vmstat()["pgfault"] == faults + 1
    # one CPU: the parent starts when the child's access ended (SEMANTICS 8). Its PSC entries
    # were flushed by fork (4 loads); reuse costs no flush; the second walk hits the PDE cache
    assert m.tlb_counters(p)["time_ps"] == t2 + 333 + 4 * 2333 + 400000 + 2333
    m.check_invariants()
    # exit frees every frame: buddyinfo returns to its initial state
    m.exit(p)
    assert m.frame_state() == {1025: (0, 1), 1026: (0, 1)}
    m.check_invariants()
    m.exit(c)
    assert m.frame_state() == {} and m.page_table_frames() == {}
    assert m.buddyinfo() == INITIAL_64MIB and m.vmstat()["nr_free_pages"] == 16384
    m.check_invariants()


def test_fork_thp_then_cow_splits():
    m = RefMachine(64 * MiB)
    p = m.spawn()
    a = m.mmap(p, 2 * MiB, RW, ANON)
    m.touch(p, a, 4096)  # THP 1024; PGD 0, PUD 1, PMD 2, deposit 3
    t0 = m.tlb_counters(p)["time_ps"]
    c = m.fork(p)
    assert m.page_table(p) == {a: pte(1024, P, U, A, D, PS, NX)}
    assert m.page_table(c) == {a: pte(1024, P, U, D, PS, NX)}
    assert m.frame_state() == {1024: (9, 2)}
    assert m.page_table_frames() == {0: 4, 1: 3, 2: 2, 3: 1, 4: 4, 5: 3, 6: 2, 7: 1}  # 7: deposit
    assert m.status(c)["RssAnon"] == 2048 and m.status(c)["VmPTE"] == 12
    vs = m.vmstat()
    assert (vs["nr_anon_pages"], vs["nr_anon_transparent_hugepages"]) == (512, 1)
    assert m.tlb_counters(c)["time_ps"] == t0 + 200000 + 4 * 150000 + 2000  # one leaf copied
    m.check_invariants()
    # child write: folio mapped twice -> split the child's PMD, COW the 4 KiB page (pfn 1536:
    # head of the (9, MOVABLE) list, expanded)
    m.touch(c, a + 8192, 4096)
    pt = m.page_table(c)
    assert len(pt) == 512 and pt[a + 8192] == pte(1536, P, W, U, A, D, NX)
    assert pt[a] == pte(1024, P, U, A, D, NX)  # the walk had set A on the PMD before the split
    assert m.frame_state() == {1024: (9, 1 + 511), 1536: (0, 1)}
    vs = m.vmstat()
    assert (vs["thp_split_pmd"], vs["nr_anon_pages"], vs["nr_anon_transparent_hugepages"]) == (1, 513, 1)
    assert m.status(c)["RssAnon"] == 2048 and m.status(p)["RssAnon"] == 2048
    m.check_invariants()
    # parent write: PTE maps exist -> split + COW too (next page 1537)
    m.touch(p, a, 4096)
    assert m.page_table(p)[a] == pte(1537, P, W, U, A, D, NX)
    assert m.frame_state() == {1024: (9, 1022), 1536: (0, 1), 1537: (0, 1)}
    vs = m.vmstat()
    assert (vs["thp_split_pmd"], vs["nr_anon_pages"], vs["nr_anon_transparent_hugepages"]) == (2, 514, 0)
    m.check_invariants()
    m.exit(c)
    m.exit(p)
    assert m.buddyinfo() == INITIAL_64MIB
    m.check_invariants()


def test_fork_thp_reuse_after_child_exits_and_zero_pages():
    m = RefMachine(64 * MiB)
    p = m.spawn()
    a = m.mmap(p, 4 * MiB, RW, ANON)
    m.touch(p, a, 4096)  # THP
    m.touch(p, a + 2 * MiB, 4096, write=False)  # huge zero page
    z = m.mmap(p, 4096, RW, ANON)
    m.touch(p, z, 4096, write=False)  # 4 KiB zero page
    c = m.fork(p)
    hz = m.huge_zero_pfn
    assert m.page_table(c)[a + 2 * MiB] == pte(hz, P, U, PS, SPECIAL, NX)
    assert m.page_table(c)[z] == pte(m.zero_pfn, P, U, SPECIAL, NX)
    assert m.status(c)["VmPTE"] == 4 * (1 + 1 + 2 + 1)  # PUD, PMD, 2 deposits, PTE table
    m.check_invariants()
    m.exit(c)
    f = m.vmstat()["thp_split_pmd"]
    m.touch(p, a, 4096)  # entire mapcount 1, no PTE maps: reuse the PMD
    assert m.page_table(p)[a] == pte(1024, P, W, U, A, D, PS, NX)
    assert m.vmstat()["thp_split_pmd"] == f and m.frame_state()[1024] == (9, 1)
    m.check_invariants()


def test_clone_thread_shares_mm_until_last_exit():
    m = RefMachine(64 * MiB, ncpus=2)
    p = m.spawn("app")
    a = m.mmap(p, 4096, RW, ANON)
    m.touch(p, a, 4096)
    t = m.clone_thread(p)
    info = m.task_info(t)
    assert (info["tgid"], info["comm"], info["mm"], info["mm_users"], info["cpu"]) == \
        (p, "app", m.task_info(p)["mm"], 2, 1)
    m.touch(t, a, 4096, write=False)
    assert m.page_table(t) == m.page_table(p)
    m.exit(p)  # the mm keeps its other user
    assert m.frame_state() == {1024: (0, 1)} and m.task_info(t)["mm_users"] == 1
    m.check_invariants()
    m.exit(t)
    assert m.frame_state() == {} and m.buddyinfo() == INITIAL_64MIB
    m.check_invariants()


def test_execve_keeps_thp_disable_and_frees_old_mm():
    m = RefMachine(64 * MiB, kernel="6.18")
    p = m.spawn()
    a = m.mmap(p, 2 * MiB, RW, ANON)
    m.madvise(p, a, 2 * MiB, MADV_HUGEPAGE)  # MMF_VM_HUGEPAGE
    m.touch(p, a, 4096)
    m.prctl(p, PR_SET_THP_DISABLE, 1, 0)
    assert m.mm_flags(p) == (1 << 24) | (1 << 17)
    t = m.clone_thread(p)
    m.execve(p, "new")
    assert t not in m.tasks and m.task_info(p)["comm"] == "new" and m.task_info(p)["mm_users"] == 1
    assert m.prctl(p, PR_GET_THP_DISABLE) == 1 and m.mm_flags(p) == 1 << 24  # MMF_VM_HUGEPAGE gone
    assert uvmas(m, p) == [] and m.status(p)["RssAnon"] == 0 and m.frame_state() == {}
    assert m.buddyinfo() == INITIAL_64MIB
    assert m.brk(p, 0) == 0x555555559000
    m.check_invariants()
    m3 = RefMachine(64 * MiB, kernel="3.15")  # def_flags & VM_NOHUGEPAGE survives exec
    p3 = m3.spawn()
    m3.prctl(p3, PR_SET_THP_DISABLE, 1)
    m3.mlockall(p3, MCL_FUTURE)
    m3.execve(p3, "x")
    assert m3.prctl(p3, PR_GET_THP_DISABLE) == 1
    b = m3.mmap(p3, 4096, RW, ANON)
    assert uvmas(m3, p3) == [(b, b + 4096, VM_READ | VM_WRITE | MAY | AC | VM_NOHUGEPAGE)]  # not locked


def test_fork_drops_locks_and_keeps_thp_disable():
    m = RefMachine(64 * MiB, kernel="4.13")
    p = m.spawn()
    m.prctl(p, PR_SET_THP_DISABLE, 1)
    a = m.mmap(p, 3 * 4096, RW, ANON)
    m.mlock(p, a, 4096)
    assert m.status(p)["VmLck"] == 4 and m.vmstat()["nr_mlock"] == 1
    c = m.fork(p)
    assert m.mm_flags(c) == 1 << 24 and m.status(c)["VmLck"] == 0
    # the child's VMAs are copied one for one, VM_LOCKED cleared (no merge)
    assert uvmas(m, c) == [(a, a + 4096, VM_READ | VM_WRITE | MAY | AC),
                           (a + 4096, a + 3 * 4096, VM_READ | VM_WRITE | MAY | AC)]
    assert m.vmstat()["nr_mlock"] == 1  # still mapped in the parent's locked VMA
    # Locked is the locked VMA's Pss (Linux pss_locked): the page is shared with the child
    assert m.smaps(c)[0]["Locked"] == 0 and m.smaps(p)[0]["Locked"] == 2
    m.check_invariants()


def test_mprotect_read_only_and_back():
    m = RefMachine(64 * MiB)
    p = m.spawn()
    a = m.mmap(p, 3 * 4096, RW, ANON)
    m.touch(p, a, 3 * 4096)
    t0 = m.tlb_counters(p)["time_ps"]
    assert m.mprotect(p, a, 3 * 4096, PROT_READ) == 0
    assert m.tlb_counters(p)["time_ps"] == t0 + 100000 + 100000  # syscall + one flush
    assert m.page_table(p) == {a + k * 4096: pte(1024 + k, P, U, A, D, NX) for k in range(3)}
    assert uvmas(m, p) == [(a, a + 3 * 4096, VM_READ | MAY | AC)]  # mprotect keeps VM_ACCOUNT
    with pytest.raises(SegmentationFault):
        m.touch(p, a, 4096)
    m.check_invariants()
    # the middle page back to RW: 3 VMAs, RW set again (exclusive page)
    m.mprotect(p, a + 4096, 4096, RW)
    assert [v[2] & (VM_READ | VM_WRITE) for v in uvmas(m, p)] == [VM_READ, VM_READ | VM_WRITE, VM_READ]
    assert m.page_table(p)[a + 4096] == pte(1025, P, W, U, A, D, NX)
    # PROT_EXEC clears NX; all RW again and merged
    m.mprotect(p, a, 3 * 4096, RW | PROT_EXEC)
    assert uvmas(m, p) == [(a, a + 3 * 4096, VM_READ | VM_WRITE | 0x4 | MAY | AC)]
    assert m.page_table(p) == {a + k * 4096: pte(1024 + k, P, W, U, A, D) for k in range(3)}
    # no change -> no flush
    t1 = m.tlb_counters(p)["time_ps"]
    m.mprotect(p, a, 3 * 4096, RW | PROT_EXEC)
    assert m.tlb_counters(p)["time_ps"] == t1 + 100000
    m.check_invariants()


def test_mprotect_does_not_make_shared_pages_writable():
    m = RefMachine(64 * MiB)
    p = m.spawn()
    a = m.mmap(p, 8192, RW, ANON)
    m.touch(p, a, 8192)
    c = m.fork(p)
    m.mprotect(p, a, 8192, PROT_READ)
    m.mprotect(p, a, 8192, RW)
    assert m.page_table(p)[a] == pte(1024, P, U, A, D, NX)  # not exclusive: stays read-only
    m.touch(c, a, 4096)  # the child copies; the parent's page is mapped once but not exclusive
    m.mprotect(p, a, 8192, PROT_READ)
    m.mprotect(p, a, 8192, RW)
    assert m.page_table(p)[a] == pte(1024, P, U, A, D, NX)  # PageAnonExclusive decides (SEMANTICS 10)
    m.touch(p, a, 4096)  # do_wp_page: order 0, mapcount 1 -> reused and marked exclusive
    assert m.page_table(p)[a] == pte(1024, P, W, U, A, D, NX)
    assert m.vmstat()["nr_anon_pages"] == 3  # no copy: 1024, 1025 and the child's copy
    m.mprotect(p, a, 8192, PROT_READ)
    m.mprotect(p, a, 8192, RW)
    assert m.page_table(p)[a] == pte(1024, P, W, U, A, D, NX)  # exclusive now: upgraded
    assert m.page_table(p)[a + 4096] == pte(1025, P, U, A, D, NX)
    m.check_invariants()


def test_mprotect_prot_none():
    m = RefMachine(64 * MiB)
    p = m.spawn()
    a = m.mmap(p, 2 * 4096, RW, ANON)
    m.touch(p, a, 2 * 4096)
    m.mprotect(p, a, 2 * 4096, 0)
    assert m.page_table(p) == {a + k * 4096: pte(1024 + k, PROTNONE, U, A, D, NX) for k in range(2)}
    faults = m.vmstat()["pgfault"]
    with pytest.raises(SegmentationFault):
        m.touch(p, a, 4096, write=False)
    assert m.vmstat()["pgfault"] == faults + 1
    assert m.status(p)["RssAnon"] == 8 and m.smaps(p)[0]["Rss"] == 8  # still mapped
    assert m.frame_state() == {1024: (0, 1), 1025: (0, 1)}
    m.check_invariants()
    m.mprotect(p, a, 2 * 4096, RW)
    assert m.page_table(p) == {a + k * 4096: pte(1024 + k, P, W, U, A, D, NX) for k in range(2)}
    m.touch(p, a, 2 * 4096)
    assert m.vmstat()["pgfault"] == faults + 1
    # a PROT_NONE THP keeps its PMD; munmap still frees it
    b = m.mmap(p, 2 * MiB, RW, ANON)
    m.touch(p, b, 4096)
    thp = m.page_table(p)[b]
    m.mprotect(p, b, 2 * MiB, 0)
    assert m.page_table(p)[b] == signed(((thp & ((1 << 64) - 1)) & ~(P | W)) | PROTNONE)
    assert m.vmstat()["thp_split_pmd"] == 0
    m.check_invariants()
    m.munmap(p, b, 2 * MiB)
    assert m.status(p)["RssAnon"] == 8
    m.check_invariants()


def test_mprotect_inside_thp_splits_pmd_and_errors():
    m = RefMachine(64 * MiB)
    p = m.spawn()
    a = m.mmap(p, 4 * MiB, RW, ANON)
    m.touch(p, a, 4 * MiB, stride=2 * MiB)
    m.mprotect(p, a + 4096, 4096, PROT_READ)  # vma_adjust_trans_huge at a + 4 KiB
    assert m.vmstat()["thp_split_pmd"] == 1
    assert [v[:2] for v in uvmas(m, p)] == [(a, a + 4096), (a + 4096, a + 8192), (a + 8192, a + 4 * MiB)]
    pt = m.page_table(p)
    assert pt[a + 4096] == pte(1025, P, U, A, D, NX) and pt[a + 8192] == pte(1026, P, W, U, A, D, NX)
    # the second THP lies wholly inside: changed in place
    m.mprotect(p, a + 2 * MiB, 2 * MiB, PROT_READ)
    assert m.vmstat()["thp_split_pmd"] == 1
    assert m.page_table(p)[a + 2 * MiB] & W == 0 and m.page_table(p)[a + 2 * MiB] & PS
    m.check_invariants()
    # errors
    assert errno_of(m.mprotect, p, a + 1, 4096, PROT_READ) == errno.EINVAL
    assert errno_of(m.mprotect, p, a, 4096, 8) == errno.EINVAL
    assert m.mprotect(p, a, 0, 8) == 0  # len 0 first (do_mprotect_pkey order)
    assert errno_of(m.mprotect, p, a - 4096, 8192, PROT_READ) == errno.ENOMEM
    assert errno_of(m.mprotect, p, (1 << 64) - 4096, 8192, PROT_READ) == errno.ENOMEM
    # a hole after a changed VMA: ENOMEM, the earlier VMAs stay changed
    assert errno_of(m.mprotect, p, a, 4 * MiB + 4096, PROT_READ) == errno.ENOMEM
    assert uvmas(m, p) == [(a, a + 4 * MiB, VM_READ | MAY | AC)]  # mprotect keeps VM_ACCOUNT
    m.check_invariants()


def test_mlock_populates_with_write_faults():
    m = RefMachine(64 * MiB)
    p = m.spawn()
    a = m.mmap(p, 4 * 4096, RW, ANON)
    assert m.mlock(p, a + 5, 2 * 4096) == 0  # start rounded down, length grown: 3 pages
    assert uvmas(m, p) == [(a, a + 3 * 4096, VM_READ | VM_WRITE | MAY | AC | VM_LOCKED),
                         (a + 3 * 4096, a + 4 * 4096, VM_READ | VM_WRITE | MAY | AC)]
    assert m.page_table(p) == {a + k * 4096: pte(1024 + k, P, W, U, A, D, NX) for k in range(3)}
    assert m.status(p)["VmLck"] == 12 and m.status(p)["RssAnon"] == 12
    vs = m.vmstat()
    assert (vs["nr_mlock"], vs["pgfault"]) == (3, 3)
    assert [s["Locked"] for s in m.smaps(p)] == [12, 0, 0, 0, 0]  # then the three vDSO VMAs
    m.touch(p, a + 3 * 4096, 4096)
    assert m.vmstat()["nr_mlock"] == 3
    m.check_invariants()
    # munlock the second page: locked / unlocked / locked / unlocked tail
    m.munlock(p, a + 4096, 4096)
    assert [bool(v[2] & VM_LOCKED) for v in uvmas(m, p)] == [True, False, True, False]
    assert m.status(p)["VmLck"] == 8 and m.vmstat()["nr_mlock"] == 2
    # MADV_DONTNEED on a locked VMA: EINVAL
    assert errno_of(m.madvise, p, a, 4096, MADV_DONTNEED) == errno.EINVAL
    m.munlock(p, a, 4 * 4096)
    assert len(uvmas(m, p)) == 1 and m.status(p)["VmLck"] == 0 and m.vmstat()["nr_mlock"] == 0
    # read-only VMA: read faults (zero pages), nothing counted in Rss or nr_mlock
    r = m.mmap(p, 2 * 4096, PROT_READ, ANON)
    m.mlock(p, r, 2 * 4096)
    assert m.page_table(p)[r] == pte(m.zero_pfn, P, U, A, SPECIAL, NX)
    assert m.status(p)["VmLck"] == 8 and m.vmstat()["nr_mlock"] == 0
    # munmap of a locked VMA gives back VmLck
    m.munmap(p, r, 4096)
    assert m.status(p)["VmLck"] == 4
    # a hole: ENOMEM, earlier VMAs changed, nothing populated
    h = m.mmap(p, 4096, RW, ANON, 0x10000000)
    rss = m.status(p)["RssAnon"]
    assert errno_of(m.mlock, p, h, 2 * 4096) == errno.ENOMEM
    assert uvmas(m, p)[0] == (h, h + 4096, VM_READ | VM_WRITE | MAY | AC | VM_LOCKED)
    assert m.status(p)["RssAnon"] == rss and m.status(p)["VmLck"] == 8
    assert m.mlock(p, h, 0) == 0
    m.check_invariants()


def test_mlock_inside_thp_splits_and_after_fork_breaks_cow():
    m = RefMachine(64 * MiB)
    p = m.spawn()
    a = m.mmap(p, 2 * MiB, RW, ANON)
    m.touch(p, a, 4096)
    m.mlock(p, a + 4096, 4096)
    assert m.vmstat()["thp_split_pmd"] == 1 and len(uvmas(m, p)) == 3
    # the THP crosses the locked range's edges: not mlocked (allow_mlock_munlock, L1)
    assert m.vmstat()["nr_mlock"] == 0 and m.status(p)["VmLck"] == 4
    m.check_invariants()
    b = m.mmap(p, 8192, RW, ANON)
    m.touch(p, b, 8192)
    c = m.fork(p)
    m.mlock(p, b, 8192)  # write faults on read-only shared pages: COW in the parent
    assert m.frame_state()[_pfn(m.page_table(c)[b])] == (0, 1)
    assert m.page_table(p)[b] & W and _pfn(m.page_table(p)[b]) != _pfn(m.page_table(c)[b])
    m.check_invariants()


def _pfn(e):
    return ((e & ((1 << 64) - 1)) >> 12) & ((1 << 40) - 1)


def test_mlock_count_and_whole_thps():
    """SEMANTICS 10 "Mlocked": a page stays mlocked while any process has it locked; a THP is
    mlocked only whole and is munlocked when a boundary first cuts it in a locked VMA."""
    m = RefMachine(64 * MiB)
    p = m.spawn()
    a = m.mmap(p, 8192, RW, ANON)
    m.touch(p, a, 8192)
    m.mprotect(p, a, 8192, PROT_READ)  # read-only: mlock's population does not copy on write
    m.mlock(p, a, 8192)
    c = m.fork(p)
    m.mlock(c, a, 8192)  # the child locks the same two pages: mlock_count 2
    m.munlock(p, a, 8192)
    assert m.vmstat()["nr_mlock"] == 2
    m.exit(c)
    assert m.vmstat()["nr_mlock"] == 0
    b = m.mmap(p, 4 * MiB, RW, ANON)  # 2 MiB aligned (6.18): two THPs
    m.touch(p, b, 4 * MiB, 2 * MiB)
    m.mlock(p, b + MiB, 2 * MiB)  # cuts both: neither is mlocked
    assert m.vmstat()["thp_split_pmd"] == 2 and m.vmstat()["nr_mlock"] == 0
    m.munlock(p, b, 4 * MiB)
    d = m.mmap(p, 4 * MiB, RW, ANON)
    m.touch(p, d, 4 * MiB, 2 * MiB)
    m.mlock(p, d, 4 * MiB)
    assert m.vmstat()["nr_mlock"] == 1024
    m.mprotect(p, d + 3 * MiB, MiB, PROT_READ)  # splits the second THP in its locked VMA
    assert m.vmstat()["nr_mlock"] == 512
    m.munlock(p, d, 4 * MiB)
    m.mlock(p, d, 4 * MiB)  # the second THP crosses the VMA boundary mprotect left
    assert m.vmstat()["nr_mlock"] == 512
    m.mprotect(p, d + 3 * MiB, MiB, RW)  # one VMA again; mprotect mlocks nothing
    assert m.vmstat()["nr_mlock"] == 512
    m.munlock(p, d, 4 * MiB)
    m.mlock(p, d, 4 * MiB)  # now one run of PTEs maps all of the second one inside the range
    assert m.vmstat()["nr_mlock"] == 1024
    m.check_invariants()


def test_mlockall_current_future_onfault():
    m = RefMachine(64 * MiB, thp_enabled="never")
    p = m.spawn()
    for bad in (0, MCL_ONFAULT, 8, MCL_CURRENT | 8):
        assert errno_of(m.mlockall, p, bad) == errno.EINVAL
    a = m.mmap(p, 2 * 4096, RW, ANON)
    m.mlockall(p, MCL_CURRENT | MCL_FUTURE)
    assert m.status(p)["RssAnon"] == 8 and m.status(p)["VmLck"] == 8
    b = m.mmap(p, 4096, RW, ANON)  # locked, populated and merged
    assert b == a - 4096 and uvmas(m, p) == [(b, a + 8192, VM_READ | VM_WRITE | MAY | AC | VM_LOCKED)]
    assert m.status(p)["RssAnon"] == 12 and m.vmstat()["nr_mlock"] == 3
    assert m.status(p)["VmLck"] == 12
    m.munlockall(p)
    assert m.status(p)["VmLck"] == 0 and m.vmstat()["nr_mlock"] == 0
    c = m.mmap(p, 4096, RW, ANON, 0x20000000)
    assert uvmas(m, p)[0] == (c, c + 4096, VM_READ | VM_WRITE | MAY | AC)  # MCL_FUTURE cleared
    m.mlockall(p, MCL_CURRENT | MCL_ONFAULT)  # locked, not populated
    assert all(v[2] & VM_LOCKONFAULT for v in uvmas(m, p))
    assert m.status(p)["RssAnon"] == 12 and m.status(p)["VmLck"] == 16
    assert m.vmstat()["nr_mlock"] == 3  # the pages already mapped in now-locked VMAs
    m.touch(p, c, 4096)
    assert m.vmstat()["nr_mlock"] == 4
    m.mlockall(p, MCL_FUTURE | MCL_ONFAULT)  # VMAs untouched, new ones locked on fault
    d = m.mmap(p, 4096, RW, ANON, 0x30000000)
    assert uvmas(m, p)[1] == (d, d + 4096, VM_READ | VM_WRITE | MAY | AC | VM_LOCKED | VM_LOCKONFAULT)
    assert m.status(p)["RssAnon"] == 16 and m.status(p)["VmLck"] == 20
    m.check_invariants()


def test_brk_grow_shrink():
    m = RefMachine(64 * MiB)
    p = m.spawn()
    base = 0x555555559000
    assert m.brk(p, 0) == base
    assert m.brk(p, base + 100) == base + 100
    assert uvmas(m, p) == [(base, base + 4096, VM_READ | VM_WRITE | MAY | AC)]
    assert m.brk(p, base + 3 * 4096) == base + 3 * 4096
    assert uvmas(m, p) == [(base, base + 3 * 4096, VM_READ | VM_WRITE | MAY | AC)]  # merged
    m.touch(p, base, 3 * 4096)
    assert m.status(p)["RssAnon"] == 12
    assert m.brk(p, base + 4096 + 1) == base + 4097  # unmaps [base + 8 KiB, base + 12 KiB)
    assert uvmas(m, p) == [(base, base + 2 * 4096, VM_READ | VM_WRITE | MAY | AC)]
    assert m.status(p)["RssAnon"] == 8
    assert m.brk(p, base - 1) == base + 4097  # below start_brk: the current break
    assert m.brk(p, base + 8000) == base + 8000  # same page-aligned end: only brk moves
    assert uvmas(m, p) == [(base, base + 2 * 4096, VM_READ | VM_WRITE | MAY | AC)]
    # growing into a mapping fails: the old break comes back
    m.mmap(p, 4096, RW, ANON | MAP_FIXED, base + 5 * 4096)
    assert m.brk(p, base + 6 * 4096) == base + 8000
    assert m.brk(p, base + 5 * 4096) == base + 5 * 4096  # up to it is fine (and merges)
    assert uvmas(m, p) == [(base, base + 6 * 4096, VM_READ | VM_WRITE | MAY | AC)]
    t0 = m.tlb_counters(p)["time_ps"]
    m.brk(p, base + 5 * 4096)
    assert m.tlb_counters(p)["time_ps"] == t0 + 100000
    # under MCL_FUTURE a grown heap is locked and populated (its own VMA: flags differ)
    m.munmap(p, base + 5 * 4096, 4096)
    m.mlockall(p, MCL_FUTURE)
    assert m.brk(p, base + 8 * 4096) == base + 8 * 4096
    assert uvmas(m, p)[-1] == (base + 5 * 4096, base + 8 * 4096, VM_READ | VM_WRITE | MAY | AC | VM_LOCKED)
    assert m.status(p)["VmLck"] == 12 and m.status(p)["RssAnon"] == 8 + 12
    c = m.fork(p)
    assert m.brk(c, 0) == base + 8 * 4096
    m.check_invariants()
    m.exit(p)
    m.exit(c)
    assert m.buddyinfo() == INITIAL_64MIB


def test_madv_free():
    m = RefMachine(64 * MiB)
    p = m.spawn()
    a = m.mmap(p, 3 * 4096, RW, ANON)
    m.touch(p, a, 3 * 4096)
    assert m.madvise(p, a, 2 * 4096, MADV_FREE) == 0
    pt = m.page_table(p)
    assert pt[a] == pte(1024, P, W, U, NX) and pt[a + 4096] == pte(1025, P, W, U, NX)
    assert pt[a + 8192] == pte(1026, P, W, U, A, D, NX)
    assert m.smaps(p)[0]["LazyFree"] == 8 and m.status(p)["RssAnon"] == 12
    assert m.vmstat()["nr_anon_pages"] == 3
    m.touch(p, a, 4096)  # written again: the PTE is dirty, no longer counted
    assert m.page_table(p)[a] == pte(1024, P, W, U, A, D, NX)
    assert m.smaps(p)[0]["LazyFree"] == 4
    m.check_invariants()
    # shared pages are left alone
    c = m.fork(p)
    m.madvise(p, a + 8192, 4096, MADV_FREE)
    assert m.page_table(p)[a + 8192] == pte(1026, P, U, A, D, NX)
    m.exit(c)
    # a THP wholly inside: all 512 pages; partly covered: split first
    b = m.mmap(p, 4 * MiB, RW, ANON)
    m.touch(p, b, 4 * MiB, stride=2 * MiB)
    m.madvise(p, b, 2 * MiB + 8192, MADV_FREE)
    pt = m.page_table(p)
    assert pt[b] & (A | D) == 0 and pt[b] & PS
    assert pt[b + 2 * MiB] & (A | D) == 0 and pt[b + 2 * MiB + 8192] & D
    assert m.vmstat()["thp_split_pmd"] == 1
    sm = [s for s in m.smaps(p) if s["start"] == b][0]
    assert sm["LazyFree"] == 2048 + 8
    assert m.vmstat()["nr_anon_transparent_hugepages"] == 1
    m.check_invariants()
    assert errno_of(m.madvise, p, a + 1, 4096, MADV_FREE) == errno.EINVAL
    m.mlock(p, a, 4096)
    assert errno_of(m.madvise, p, a, 4096, MADV_FREE) == errno.EINVAL


def test_exit_frees_every_frame_after_mixed_use():
    m = RefMachine(64 * MiB, thp_defrag="always")
    p = m.spawn()
    a = m.mmap(p, 6 * MiB, RW, ANON)
    m.touch(p, a, 6 * MiB, stride=64 * 1024)
    m.mprotect(p, a + 4096, 3 * MiB, PROT_READ)
    m.mlock(p, a + 5 * MiB, 8192)
    m.brk(p, 0x555555559000 + MiB)
    m.touch(p, 0x555555559000, MiB, stride=8192)
    c = m.fork(p)
    t = m.clone_thread(c)
    m.touch(t, a + 5 * MiB, MiB)
    m.madvise(c, a, MiB, MADV_FREE)
    m.check_invariants()
    for pid in (p, c, t):
        m.exit(pid)
    assert m.frame_state() == {} and m.page_table_frames() == {}
    assert m.vmstat()["nr_free_pages"] == 16384 and m.buddyinfo() == INITIAL_64MIB
    m.check_invariants()


@pytest.mark.parametrize("seed", range(8))
def test_random_life_cycle_ops_keep_invariants(seed):
    """fork / clone_thread / execve / exit / mprotect / mlock* / brk / MADV_FREE mixed with the
    older calls; check_invariants after every op; every frame comes back at the end."""
    rng = random.Random(1000 + seed)
    kernel = ["3.10", "3.15", "4.13", "6.18"][seed % 4]
    m = RefMachine(16 * MiB, ncpus=2, kernel=kernel, thp_defrag="always" if seed % 2 else "madvise",
                   tlb=dict(stlb_entries=48, stlb_ways=4))
    m.spawn()
    m.spawn()
    maps = {}  # mm id -> [(addr, length)]
    for _ in range(150):
        if not m.tasks:
            m.spawn()
        pid = rng.choice(list(m.tasks))
        mine = maps.setdefault(m.task_info(pid)["mm"], [])
        op = rng.random()
        try:
            if op < 0.12 or not mine:
                length = rng.choice([4096, 3 * 4096, 2 * MiB, 4 * MiB, 5 * MiB // 2])
                flags = ANON | (MAP_POPULATE if rng.random() < 0.2 else 0)
                mine.append((m.mmap(pid, length, rng.choice([RW, RW, PROT_READ]), flags), length))
            elif op < 0.16:
                if len(m.tasks) < 6:
                    child = m.fork(pid)
                    maps[m.task_info(child)["mm"]] = list(mine)
            elif op < 0.18:
                if len(m.tasks) < 6:
                    m.clone_thread(pid)
            elif op < 0.20:
                m.exit(pid)
            elif op < 0.21:
                m.execve(pid, "x")
            elif op < 0.24:
                cur = m.brk(pid, 0)
                m.brk(pid, cur + rng.choice([-3 * 4096, -5000, 100, 3 * 4096, 2 * MiB + 77, 3 * MiB]))
            elif op < 0.26:
                m.mlockall(pid, rng.choice([1, 2, 3, 5, 6, 7, 0, 4]))
            elif op < 0.27:
                m.munlockall(pid)
            else:
                addr, length = rng.choice(mine)
                off = rng.randrange(0, length, 4096)
                sub = min(length - off, rng.choice([4096, 64 * 1024, 2 * MiB]))
                if op < 0.50:
                    m.touch(pid, addr + off, sub, stride=rng.choice([4096, 12288]),
                            write=rng.random() < 0.7)
                elif op < 0.56:
                    m.munmap(pid, addr + off, sub)
                elif op < 0.68:
                    m.madvise(pid, addr + off, sub, rng.choice(
                        [MADV_DONTNEED, MADV_FREE, MADV_FREE, MADV_HUGEPAGE, MADV_NOHUGEPAGE,
                         MADV_POPULATE_READ, MADV_POPULATE_WRITE]))
                elif op < 0.78:
                    m.mprotect(pid, addr + off, sub,
                               rng.choice([0, PROT_READ, RW, RW | PROT_EXEC, PROT_EXEC]))
                elif op < 0.84:
                    m.mlock(pid, addr + off + 7, sub)
                elif op < 0.88:
                    m.munlock(pid, addr + off, sub)
                elif op < 0.90:
                    m.prctl(pid, PR_SET_THP_DISABLE, rng.randrange(2))
                else:
                    m.access(pid, [addr + rng.randrange(0, length) for _ in range(20)],
                             [rng.random() < 0.5 for _ in range(20)])
        except (OSError, SegmentationFault, OutOfMemory):
            pass
        m.check_invariants()
    for pid in list(m.tasks):
        m.exit(pid)
    m.check_invariants()
    assert m.frame_state() == ({} if m.huge_zero_pfn is None else {m.huge_zero_pfn: (9, 0)})
    assert m.vmstat()["nr_free_pages"] == 4096 - (512 if m.huge_zero_pfn is not None else 0)


# ---------------------------------------------------------------- SEMANTICS 10 (amendments)
def test_anon_exclusive_thp_pmd_reuse_and_mprotect():
    m = RefMachine(64 * MiB)
    p = m.spawn()
    a = m.mmap(p, 2 * MiB, RW, ANON)
    m.touch(p, a, 4096)  # THP at 1024, all 512 pages exclusive
    assert all(m.folios[1024].exclusive)
    m.mprotect(p, a, 2 * MiB, PROT_READ)
    m.mprotect(p, a, 2 * MiB, RW)  # exclusive head: the PMD gets RW back
    assert m.page_table(p)[a] == pte(1024, P, W, U, A, D, PS, NX)
    c = m.fork(p)
    assert not any(m.folios[1024].exclusive)  # fork cleared every page
    m.exit(c)
    m.mprotect(p, a, 2 * MiB, PROT_READ)
    m.mprotect(p, a, 2 * MiB, RW)  # mapped once, but not exclusive: stays read-only
    assert m.page_table(p)[a] == pte(1024, P, U, A, D, PS, NX)
    f = m.vmstat()["thp_split_pmd"]
    m.touch(p, a + 8192, 4096)  # one PMD mapping, no PTE mapping: reused, all 512 exclusive
    assert m.page_table(p)[a] == pte(1024, P, W, U, A, D, PS, NX)
    assert m.vmstat()["thp_split_pmd"] == f and all(m.folios[1024].exclusive)
    m.check_invariants()


def test_anon_exclusive_pte_mapped_thp_subpage_copies():
    m = RefMachine(64 * MiB)
    p = m.spawn()
    a = m.mmap(p, 2 * MiB, RW, ANON)
    m.touch(p, a, 4096)  # THP at 1024
    m.munmap(p, a + 2 * MiB - 4096, 4096)  # split: 511 PTE mappings
    c = m.fork(p)
    m.exit(c)
    assert not any(m.folios[1024].exclusive[:511])
    # a subpage of a folio with 511 PTE mappings: not reusable, copied
    m.touch(p, a, 4096)
    e = m.page_table(p)[a]
    assert (e >> 12) & 0xFFFFFFFFF != 1024 and e & W
    assert m.frame_state()[1024] == (9, 510)
    # after the copy the next page is still not exclusive and the folio still has 510 maps
    m.touch(p, a + 4096, 4096)
    assert (m.page_table(p)[a + 4096] >> 12) & 0xFFFFFFFFF != 1025
    m.check_invariants()


def test_anon_exclusive_kept_by_migration():
    # a page reused (and made exclusive) after fork keeps the flag when compaction moves it
    m = RefMachine(8 * MiB, thp_defrag="always")
    p = m.spawn()
    a = m.mmap(p, 4096, RW, ANON)
    m.touch(p, a, 4096)
    c = m.fork(p)
    m.exit(c)
    m.touch(p, a, 4096)  # reuse: exclusive again
    pfn = (m.page_table(p)[a] >> 12) & 0xFFFFFFFFF
    assert m.folios[pfn].exclusive == [True]
    folio = m.folios[pfn]
    m._migrate_page(pfn, m.buddy.alloc(0, MIGRATE_MOVABLE))
    assert folio.exclusive == [True] and m.folios[folio.pfn] is folio
    m.check_invariants()


def test_vdso_vmas_segfault_not_locked_copied_and_renewed():
    m = RefMachine(64 * MiB)
    p = m.spawn()
    assert m.vmas(p) == VDSO and m.status(p)["VmPTE"] == 0
    for va, write in ((VDSO_START, False), (VDSO[2][0], False), (VDSO_START, True)):
        with pytest.raises(SegmentationFault):
            m.touch(p, va, 4096, write=write)
    assert m.page_table(p) == {} and m.vmstat()["pgfault"] == 3
    a = m.mmap(p, 4096, RW, ANON)
    m.mlockall(p, MCL_CURRENT)
    assert m.vmas(p) == [(a, a + 4096, VM_READ | VM_WRITE | MAY | AC | VM_LOCKED)] + VDSO
    assert m.status(p)["VmLck"] == 4
    m.munlockall(p)
    assert m.mlock(p, VDSO_START, 8 * 4096) == 0 and m.status(p)["VmLck"] == 0  # skipped
    # mprotect does not merge [vvar] and [vvar_vclock] although their flags are equal
    m.mprotect(p, VDSO_START, 6 * 4096, PROT_READ)
    assert m.vmas(p)[1:] == VDSO
    c = m.fork(p)
    assert m.vmas(c) == m.vmas(p)
    m.execve(c, "new")
    assert m.vmas(c) == VDSO
    # munmap of the vDSO is allowed; then the space is free for mmap
    m.munmap(p, VDSO_START, 8 * 4096)
    assert m.mmap(p, 4096, RW, ANON) == 0x7FFFF7FFE000
    m.check_invariants()


def test_rejected_calls_cost_nothing_failed_calls_cost_a_syscall():
    m = RefMachine(64 * MiB, kernel="6.18")
    p = m.spawn()
    a = m.mmap(p, 3 * 4096, RW, ANON | MAP_FIXED, 0x10000000)  # holes on both sides
    t = m.tlb_counters(p)["time_ps"]
    assert t == 100000 and m.now_ps == t
    rejected = [
        (m.mmap, p, 0, RW, ANON),  # length 0
        (m.mmap, p, 4096, RW, ANON | MAP_FIXED, a + 1),  # unaligned MAP_FIXED
        (m.mmap, p, 4096, RW, ANON | MAP_FIXED_NOREPLACE, a),  # EEXIST
        (m.mmap, p, 4096, RW, MAP_ANONYMOUS),  # no map type
        (m.munmap, p, a + 1, 4096),
        (m.madvise, p, a + 1, 4096, MADV_DONTNEED),
        (m.madvise, p, a, 4096, 12345),
        (m.mprotect, p, a + 1, 4096, PROT_READ),
        (m.mprotect, p, a, 4096, 0x40),  # unknown prot bit
        (m.mprotect, p, a - 4096, 4096, PROT_READ),  # no VMA at addr
        (m.mlockall, p, 0),
        (m.mlockall, p, MCL_ONFAULT),
        (m.prctl, p, PR_SET_THP_DISABLE, 0, 1),
        (m.prctl, p, 12345),
    ]
    for fn, *args in rejected:
        with pytest.raises(OSError):
            fn(*args)
        assert m.tlb_counters(p)["time_ps"] == t and m.now_ps == t, (fn.__name__, args)
    # failing part-way costs the syscall (and what it did)
    assert errno_of(m.mprotect, p, a, 4 * 4096, PROT_READ) == errno.ENOMEM  # hole after a
    assert m.tlb_counters(p)["time_ps"] == t + 100000
    assert uvmas(m, p) == [(a, a + 3 * 4096, VM_READ | MAY | AC)]  # mprotect keeps VM_ACCOUNT
    assert errno_of(m.madvise, p, a, 3 * 4096, MADV_POPULATE_WRITE) == errno.EINVAL
    assert m.tlb_counters(p)["time_ps"] == t + 200000
    assert errno_of(m.madvise, p, a - 4096, 4096, MADV_DONTNEED) == errno.ENOMEM  # costs
    assert m.tlb_counters(p)["time_ps"] == t + 300000
    m.check_invariants()


# ---- khugepaged and MADV_COLLAPSE (SEMANTICS 11) -------------------------------------------------
KB = 0x7F0000000000


def _four_k_pages(kernel="6.18", enabled="madvise", **knobs):
    """2 MiB of written 4 KiB pages in the madvise mode, then MADV_HUGEPAGE (enrols the mm)."""
    m = RefMachine(64 * MiB, kernel=kernel, thp_enabled=enabled, khugepaged=knobs)
    p = m.spawn()
    m.mmap(p, 4 * MiB, RW, ANON | MAP_FIXED, KB)
    m.touch(p, KB, 2 * MiB, 4096, True)
    return m, p


def test_madv_collapse_hand_computed():
    m, p = _four_k_pages()
    assert m.page_table(p)[KB] & PS == 0
    c0, free0, pte0 = m.task_info(p) and m.tasks[p].clock_ps, m.vmstat()["nr_free_pages"], \
        m.status(p)["VmPTE"]
    m.madvise(p, KB, 2 * MiB, 25)
    leaf = m.page_table(p)[KB]
    assert leaf & (P | W | U | A | D | PS) == P | W | U | A | D | PS
    assert m.vmstat()["thp_collapse_alloc"] == 1
    assert m.vmstat()["nr_anon_transparent_hugepages"] == 1
    assert m.status(p)["RssAnon"] == 2048 and m.status(p)["VmPTE"] == pte0  # table deposited
    assert m.vmstat()["nr_free_pages"] == free0          # 512 pages in, 512 out
    c = m.costs
    assert m.tasks[p].clock_ps - c0 == (c["syscall_ps"] + 512 * c["scan_pte_ps"]
                                        + 512 * c["copy_page_ps"] + c["tlb_flush_ps"])
    assert m.khugepaged()["pages_collapsed"] == 0      # MADV_COLLAPSE is not khugepaged
    m.check_invariants()


def test_madv_collapse_errors():
    m, p = _four_k_pages()
    assert errno_of(m.madvise, p, KB + 1, 4096, 25) == errno.EINVAL
    m.mmap(p, MiB, RW, ANON | MAP_FIXED, KB + 8 * MiB)
    assert errno_of(m.madvise, p, KB + 8 * MiB, MiB, 25) == errno.EINVAL  # no whole block
    m.munmap(p, KB + 2 * MiB, 2 * MiB)
    assert errno_of(m.madvise, p, KB, 3 * MiB, 25) == errno.ENOMEM       # a hole after
    assert m.page_table(p)[KB] & PS                                     # ... the part done
    m4 = RefMachine(64 * MiB, kernel="4.13")
    q = m4.spawn()
    assert errno_of(m4.madvise, q, KB, 2 * MiB, 25) == errno.EINVAL     # not in 4.13


def test_khugepaged_wakes_at_enrolment_and_collapses():
    m, p = _four_k_pages(pages_to_scan=4096, scan_sleep_millisecs=10)
    assert m.kh_wake_ps is None                         # no fault was THP-eligible
    m.madvise(p, KB, 4 * MiB, MADV_HUGEPAGE)
    t = m.tasks[p].clock_ps
    assert m.kh_wake_ps == t - m.costs["syscall_ps"] + m.costs["syscall_ps"]
    m.advance(1)
    k = m.khugepaged()
    # one mm visit + vDSO VMAs skipped (3) + 2 blocks of the 4 MiB VMA (1024)
    assert k["pages_collapsed"] == 1 and k["full_scans"] == 1 and k["pages_scanned"] == 1028
    assert m.page_table(p)[KB] & PS
    assert m.kh_wake_ps == t + k["busy_ns"] * 1000 + 10 * 10**9
    m.check_invariants()


def test_khugepaged_limits_and_referenced():
    # max_ptes_none 0: one hole stops the collapse (and counts)
    m, p = _four_k_pages(max_ptes_none=0)
    m.madvise(p, KB, 4096, MADV_DONTNEED)
    m.madvise(p, KB, 4 * MiB, MADV_HUGEPAGE)
    m.advance(1)
    assert m.vmstat()["thp_scan_exceed_none_pte"] >= 1 and m.khugepaged()["pages_collapsed"] == 0
    # clear_refs: nothing referenced, khugepaged leaves it; MADV_COLLAPSE does not care
    m, p = _four_k_pages()
    m.clear_refs(p, 1)
    assert not any(e & A for e in m.page_table(p).values())
    m.madvise(p, KB, 4 * MiB, MADV_HUGEPAGE)
    m.advance(1)
    assert m.khugepaged()["pages_collapsed"] == 0
    m.madvise(p, KB, 2 * MiB, 25)
    assert m.page_table(p)[KB] & PS


def test_khugepaged_writable_rule_per_profile():
    """Read-only PTEs (write-protected by a fork whose child has gone) stop a 3.x collapse only."""
    for kernel, collapses in (("3.10", False), ("4.13", False), ("6.18", True)):
        m = RefMachine(64 * MiB, kernel=kernel, thp_enabled="always")
        p = m.spawn()
        m.mmap(p, 4 * MiB, RW, ANON | MAP_FIXED, KB)
        m.madvise(p, KB, 4 * MiB, MADV_NOHUGEPAGE)
        m.touch(p, KB, 2 * MiB, 4096, True)
        m.exit(m.fork(p))
        assert not any(e & W for e in m.page_table(p).values())
        m.madvise(p, KB, 4 * MiB, MADV_HUGEPAGE)
        m.advance(1)
        assert bool(m.page_table(p)[KB] & PS) == collapses, kernel   # 4.13: none writable
        m.check_invariants()


# ---- THP splits (SEMANTICS 12), Linux's rules -----------------------------------------------
def _thp(kernel="6.18", fork=False):
    m = RefMachine(64 * MiB, kernel=kernel, thp_enabled="always")
    p = m.spawn()
    a = 0x7F0000000000
    m.mmap(p, 2 * MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, a)
    m.touch(p, a, 2 * MiB, 2 * MiB, True)
    c = m.fork(p) if fork else None
    return m, p, c, a


def test_underused_thps_are_split_by_the_shrinker():
    """6.18: every new THP is queued; with max_ptes_none 409 one written page in 8 leaves it
    underused (448 zero-filled pages), and drop_slab splits it down to the written pages; a
    dense THP leaves the queue untouched."""
    m = RefMachine(64 * MiB, kernel="6.18", thp_enabled="always",
                   khugepaged={"max_ptes_none": 409})
    p = m.spawn()
    a = 0x7F0000000000
    m.mmap(p, 4 * MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, a)
    m.touch(p, a, 2 * MiB, 8 * 4096, True)
    m.touch(p, a + 2 * MiB, 2 * MiB, 4096, True)
    assert len(m.deferred) == 2 and m.vmstat()["thp_deferred_split_page"] == 0
    m.write_sysctl(p, "vm.drop_caches", 2)
    v = m.vmstat()
    assert v["thp_underused_split_page"] == 1 and v["thp_split_page"] == 1 and not m.deferred
    assert m.status(p)["RssAnon"] == 64 * 4 + 2048
    m.check_invariants()
    m.sysfs_write("/sys/kernel/mm/transparent_hugepage/shrink_underused", "0")
    m.munmap(p, a, 4 * MiB)
    m.mmap(p, 2 * MiB, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, a)
    m.touch(p, a, 2 * MiB, 8 * 4096, True)       # the knob off: new THPs are not queued
    assert not m.deferred
    m.check_invariants()


def test_deferred_split_queue_linux_rules():
    m, p, _, a = _thp()
    m.munmap(p, a + 4096, 4096)                   # PMD split, one page unmapped: queued
    assert m.vmstat()["thp_deferred_split_page"] == 1 and len(m.deferred) == 1
    free = m.vmstat()["nr_free_pages"]
    m.write_sysctl(p, "vm.drop_caches", 2)        # drop_slab: split, the hole's page freed
    v = m.vmstat()
    # and (6.12+) the 510 mapped pages never written go to the zero page: one page stays
    assert v["thp_split_page"] == 1 and not m.deferred and v["nr_free_pages"] == free + 511
    assert m.status(p)["RssAnon"] == 4
    m.check_invariants()
    m, p, _, a = _thp(kernel="4.13")
    m.munmap(p, a + 4096, 4096)
    free = m.vmstat()["nr_free_pages"]
    m.write_sysctl(p, "vm.drop_caches", 2)        # before 6.12 only the hole's page is freed
    assert m.vmstat()["nr_free_pages"] == free + 1 and m.status(p)["RssAnon"] == 511 * 4
    m.check_invariants()
    # a whole PTE-mapped THP unmapped in one zap is one folio_pte_batch run: never queued
    m, p, _, a = _thp()
    m.mprotect(p, a + 4096, 4096, PROT_READ)
    m.mprotect(p, a + 4096, 4096, RW)
    m.munmap(p, a, 2 * MiB)
    assert m.vmstat()["thp_deferred_split_page"] == 0
    # a PTE unmap while the parent's PMD still maps the folio: queued only when the PMD goes
    m, p, c, a = _thp(fork=True)
    m.munmap(c, a + 4096, 4096)
    assert m.vmstat()["thp_deferred_split_page"] == 0
    m.munmap(p, a, 2 * MiB)
    assert m.vmstat()["thp_deferred_split_page"] == 1 and len(m.deferred) == 1
    m.check_invariants()


def test_310_split_huge_page_splits_every_pmd():
    m, p, c, a = _thp("3.10", fork=True)
    m.mprotect(p, a + 4096, 4096, PROT_READ)      # split_huge_page: both PMDs and the page
    v = m.vmstat()
    assert v["thp_split_page"] == 1 and v["thp_split_pmd"] == 2
    assert not any(f.order for f in m.folios.values())
    m.munmap(p, a + 8192, 4096)
    assert m.vmstat()["thp_deferred_split_page"] == 0
    m.check_invariants()
