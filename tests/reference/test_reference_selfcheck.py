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
    MADV_DONTNEED, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_POPULATE_READ, MADV_POPULATE_WRITE,
    MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE, MAP_POPULATE, MAP_PRIVATE, MAP_SHARED,
    MIGRATE_MOVABLE, MIGRATE_UNMOVABLE, PR_GET_THP_DISABLE, PR_SET_THP_DISABLE, PROT_READ,
    PROT_WRITE, TASK_SIZE, VM_HUGEPAGE, VM_MAYEXEC, VM_MAYREAD, VM_MAYWRITE, VM_NOHUGEPAGE, VM_READ,
    VM_WRITE, OutOfMemory, RefMachine, SegmentationFault,
)

MiB = 1 << 20
RW = PROT_READ | PROT_WRITE
ANON = MAP_PRIVATE | MAP_ANONYMOUS
NX = 1 << 63
P, W, U, A, D, PS, SPECIAL = 0x1, 0x2, 0x4, 0x20, 0x40, 0x80, 0x200


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
    addr = m.mmap(pid, 4096, RW, ANON)
    assert addr == 0x7FFFF7FFE000  # mmap_base - 4 KiB, mmap_base = TASK_SIZE - 128 MiB
    assert m.vmas(pid) == [(addr, addr + 4096, VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC)]
    # a second mapping with the same flags lands just below and merges
    b = m.mmap(pid, 8192, RW, ANON)
    assert b == addr - 8192 and len(m.vmas(pid)) == 1
    # 6.18: a 2 MiB multiple searches len + 2 MiB and rounds the start up to 2 MiB
    c = m.mmap(pid, 2 * MiB, RW, ANON)
    assert c == 0x7FFFF7C00000  # s = 0x7ffff7ffc000 - 4 MiB = 0x7ffff7bfc000 -> up to 2 MiB
    m.check_invariants()


def test_thp_alignment_only_on_6_18():
    m = RefMachine(64 * MiB, kernel="4.13")
    pid = m.spawn()
    assert m.mmap(pid, 2 * MiB, RW, ANON) == 0x7FFFF7FFF000 - 2 * MiB


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
    assert m.frame_state() == {} and m.status(pid)["VmPTE"] == 0
    assert m.vmstat()["nr_free_pages"] == 16384 - 1  # only the PGD is left
    assert m.vmas(pid) == []
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
    assert [v[:2] for v in m.vmas(pid)] == [(a, a + 4096), (a + 4096, a + 8192), (a + 8192, a + 3 * 4096)]
    assert m.status(pid)["RssAnon"] == 8  # the middle page was unmapped
    assert m.mmap(pid, 4096, RW, ANON | MAP_FIXED, a + 4096) == a + 4096
    assert len(m.vmas(pid)) == 1  # merged back
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
    flags = {v[0]: v[2] for v in m.vmas(pid)}
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
    vmas = m.vmas(pid)
    assert [v[:2] for v in vmas] == [(a, a + 4096), (a + 4096, a + 8192), (a + 8192, a + 4 * MiB)]
    assert vmas[1][2] & VM_NOHUGEPAGE and m.vmstat()["thp_split_pmd"] == 1
    assert m.madvise(pid, a + 4096, 4096, MADV_HUGEPAGE) == 0
    assert len(m.vmas(pid)) == 3 and m.vmas(pid)[1][2] & VM_HUGEPAGE
    m.madvise(pid, a, 4 * MiB, MADV_HUGEPAGE)
    assert len(m.vmas(pid)) == 1  # identical flags merge again
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
    # [rw, rw + 8 KiB) then a hole below ro? no: rw..ro+8K is contiguous; hole after ro + 8 KiB
    assert errno_of(m.madvise, pid, rw, 5 * 4096, MADV_POPULATE_READ) == errno.ENOMEM
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
