"""Behaviour of the engine foundation, checked against the kernel's rules (and this host's 6.18)."""
import errno
import os

import numpy as np
import pytest

import mmcore
from mmcore.check import check_invariants
from mmcore.kernels import consts as K
from mmcore import (MADV_DONTNEED, MADV_HUGEPAGE, MADV_NOHUGEPAGE, MADV_POPULATE_READ,
                    MADV_POPULATE_WRITE, MAP_ANONYMOUS, MAP_FIXED, MAP_FIXED_NOREPLACE,
                    MAP_PRIVATE, PR_GET_THP_DISABLE, PR_SET_THP_DISABLE,
                    PR_THP_DISABLE_EXCEPT_ADVISED, PROT_READ, PROT_WRITE)

MiB = 1 << 20
GiB = 1 << 30


def errno_of(fn, *a):
    with pytest.raises(OSError) as e:
        fn(*a)
    return e.value.errno


@pytest.mark.boundscheck
def test_mmap_placement_matches_linux_6_18(machine, checked):
    # the sequence observed on a 6.18 host with ASLR off (static binary, 8 MiB stack)
    m = machine(memory="64MiB", overcommit_memory=1)    # 1 GiB > RAM: the heuristic refuses it
    t = m.spawn()
    got = [t.mmap(4096), t.mmap(2 * MiB), t.mmap(4 * MiB), t.mmap(3 * MiB), t.mmap(GiB),
           t.mmap(6 * MiB)]
    assert got == [0x7FFFF7FF6000, 0x7FFFF7C00000, 0x7FFFF7800000, 0x7FFFF7500000,
                   0x7FFFB7400000, 0x7FFFB6E00000]
    t.munmap(0x7FFFF7C00000, 2 * MiB)
    got = [t.mmap(8192), t.mmap(4096), t.mmap(2 * MiB), t.mmap(4096), t.mmap(2 * MiB + 4096),
           t.mmap(MiB)]
    assert got == [0x7FFFF7FF4000, 0x7FFFF7FF3000, 0x7FFFB6C00000, 0x7FFFF7FF2000,
                   0x7FFFF7DF1000, 0x7FFFF7CF1000]
    checked(m)


def test_adjacent_anonymous_mappings_merge(machine):
    t = machine().spawn()
    a = t.mmap(4096)
    b = t.mmap(4096)
    assert b == a - 4096
    anon = [v for v in t.vmas() if v[0] == b]
    assert anon and anon[0][1] == a + 4096


def test_read_fault_maps_zero_pages_without_rss(machine, checked):
    m = machine()
    t = m.spawn()
    a = t.mmap(4 * MiB)                       # 2 MiB-aligned: THP-eligible
    t.touch(a, 4 * MiB, write=False)
    sm = t.smaps(a)
    assert sm["Rss"] == 0 and sm["AnonHugePages"] == 0
    assert m.vmstat()["thp_zero_page_alloc"] == 1
    # each huge zero PMD deposits a PTE table: PUD + PMD + 2 deposits
    assert t.status()["VmPTE"] == 16
    # 4 KiB zero page when THP is off for this process
    u = m.spawn()
    u.prctl(PR_SET_THP_DISABLE, 1)
    b = u.mmap(4 * MiB)
    u.touch(b, 4 * MiB, write=False)
    assert u.smaps(b)["Rss"] == 0 and u.status()["VmPTE"] == 16  # PUD + PMD + 2 PTE tables
    checked(m)


def test_write_after_huge_zero_page_allocates_a_thp_on_6_18(machine, checked):
    m = machine()
    t = m.spawn()
    a = t.mmap(2 * MiB)
    t.touch(a, 4096, write=False)
    t.touch(a + 8192, 1)
    v = m.vmstat()
    assert v["thp_fault_alloc"] == 1 and v["thp_split_pmd"] == 0
    assert t.smaps(a)["AnonHugePages"] == 2048
    checked(m)


@pytest.mark.boundscheck
def test_write_after_huge_zero_page_splits_on_4_13(machine, checked):
    m = machine(kernel="4.13")
    t = m.spawn()
    a = t.mmap(4 * MiB, addr=0x7F0000000000, flags=MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
    t.touch(a, 4096, write=False)
    t.touch(a, 1)
    v = m.vmstat()
    assert v["thp_split_pmd"] == 1 and v["thp_fault_alloc"] == 0
    assert t.smaps(a)["Rss"] == 4 and t.smaps(a)["AnonHugePages"] == 0
    checked(m)


@pytest.mark.boundscheck
def test_thp_write_fault_and_fallback_accounting(machine, checked):
    m = machine(memory="16MiB")
    t = m.spawn()
    a = t.mmap(16 * MiB)
    t.touch(a, 16 * MiB, stride=2 * MiB)      # a THP per touch until order-9 blocks run out
    v = m.vmstat()
    assert v["thp_fault_alloc"] >= 1 and v["thp_fault_fallback"] >= 1
    assert v["thp_fault_alloc"] + v["thp_fault_fallback"] == 8
    st = t.status()
    assert st["RssAnon"] == 4 * (512 * v["thp_fault_alloc"] + v["thp_fault_fallback"])
    checked(m)


def test_vmpte_counts_pud_pmd_and_pte_tables(machine, checked):
    # touching one page per 2 MiB over 1 GiB with THP off: 512 PTE + 1 PMD + 1 PUD = 2056 kB
    m = machine(memory="1GiB")
    t = m.spawn()
    t.prctl(PR_SET_THP_DISABLE, 1)
    a = t.mmap(GiB, addr=0x7F0000000000, flags=MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
    t.touch(a, GiB, stride=2 * MiB)
    assert t.status()["VmPTE"] == 2056
    t.munmap(a, GiB)
    assert t.status()["VmPTE"] == 0 and t.status()["VmRSS"] == 0
    checked(m)


@pytest.mark.boundscheck
def test_munmap_partial_thp_splits_pmd(machine, checked):
    m = machine()
    t = m.spawn()
    a = t.mmap(2 * MiB)
    t.touch(a, 2 * MiB)
    t.munmap(a + MiB, MiB)
    assert m.vmstat()["thp_split_pmd"] == 1
    assert t.smaps(a)["Rss"] == 1024 and t.smaps(a)["AnonHugePages"] == 0
    t.munmap(a, MiB)
    assert m.vmstat()["nr_anon_pages"] == 0
    checked(m)


def test_prctl_6_18_values_and_errors(machine):
    t = machine().spawn()
    assert t.prctl(PR_GET_THP_DISABLE) == 0
    assert t.prctl(PR_SET_THP_DISABLE, 1, 0) == 0
    assert t.prctl(PR_GET_THP_DISABLE) == 1
    assert t.status()["THP_enabled"] == 0
    t.prctl(PR_SET_THP_DISABLE, 1, PR_THP_DISABLE_EXCEPT_ADVISED)
    assert t.prctl(PR_GET_THP_DISABLE) == 3
    assert t.status()["THP_enabled"] == 1
    t.prctl(PR_SET_THP_DISABLE, 0, 0)
    assert t.prctl(PR_GET_THP_DISABLE) == 0
    for args in ((0, 2), (1, 1), (1, 3), (1, 4), (1, 0, 1), (1, 0, 0, 1)):
        assert errno_of(t.prctl, PR_SET_THP_DISABLE, *args) == errno.EINVAL
    assert errno_of(t.prctl, PR_GET_THP_DISABLE, 1) == errno.EINVAL


@pytest.mark.parametrize("mode,advised_thp", [(0, False), (PR_THP_DISABLE_EXCEPT_ADVISED, True)])
def test_prctl_6_18_precedence(machine, mode, advised_thp, checked):
    m = machine()
    t = m.spawn()
    t.prctl(PR_SET_THP_DISABLE, 1, mode)
    a = t.mmap(4 * MiB)
    t.madvise(a, 2 * MiB, MADV_HUGEPAGE)
    t.touch(a, 4 * MiB)
    huge = t.smaps(a)["AnonHugePages"]
    assert huge == (2048 if advised_thp else 0)
    assert t.smaps(a + 2 * MiB)["AnonHugePages"] == 0
    checked(m)


def test_prctl_4_13_is_a_master_override(machine):
    m = machine(kernel="4.13")
    t = m.spawn()
    t.prctl(PR_SET_THP_DISABLE, 1)
    assert errno_of(t.prctl, PR_SET_THP_DISABLE, 1, PR_THP_DISABLE_EXCEPT_ADVISED) == errno.EINVAL
    a = t.mmap(2 * MiB, addr=0x7F0000000000, flags=MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
    t.madvise(a, 2 * MiB, MADV_HUGEPAGE)
    t.touch(a, 2 * MiB)
    assert t.smaps(a)["AnonHugePages"] == 0


def test_prctl_3_15_affects_only_new_vmas(machine):
    m = machine(kernel="3.15")
    t = m.spawn()
    old = t.mmap(2 * MiB, addr=0x7F0000000000, flags=MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
    t.prctl(PR_SET_THP_DISABLE, 1)
    assert t.prctl(PR_GET_THP_DISABLE) == 1
    new = t.mmap(2 * MiB, addr=0x7F0000400000, flags=MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
    t.touch(old, 2 * MiB)
    t.touch(new, 2 * MiB)
    assert t.smaps(old)["AnonHugePages"] == 2048
    assert t.smaps(new)["AnonHugePages"] == 0
    # MADV_HUGEPAGE overrides the def_flags template on that VMA
    adv = t.mmap(2 * MiB, addr=0x7F0000800000, flags=MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
    t.madvise(adv, 2 * MiB, MADV_HUGEPAGE)
    t.touch(adv, 2 * MiB)
    assert t.smaps(adv)["AnonHugePages"] == 2048


def test_prctl_absent_on_3_10(machine):
    t = machine(kernel="3.10").spawn()
    assert errno_of(t.prctl, PR_SET_THP_DISABLE, 1) == errno.EINVAL


def test_enabled_madvise_needs_madv_hugepage(machine, checked):
    m = machine(thp_enabled="madvise")
    t = m.spawn()
    a = t.mmap(4 * MiB)
    t.madvise(a, 2 * MiB, MADV_HUGEPAGE)
    t.touch(a, 4 * MiB)
    assert t.smaps(a)["AnonHugePages"] == 2048
    assert t.smaps(a + 2 * MiB)["AnonHugePages"] == 0
    assert len([v for v in t.vmas() if a <= v[0] < a + 4 * MiB]) == 2
    t.madvise(a, 2 * MiB, MADV_NOHUGEPAGE)
    checked(m)


@pytest.mark.boundscheck
def test_madvise_errors_and_holes(machine, checked):
    m = machine()
    t = m.spawn()
    a = t.mmap(3 * 4096)
    t.munmap(a + 4096, 4096)
    t.touch(a, 4096)
    t.touch(a + 8192, 4096)
    # a hole: ENOMEM, but the mapped parts were handled
    assert errno_of(t.madvise, a, 3 * 4096, MADV_DONTNEED) == errno.ENOMEM
    assert t.status()["RssAnon"] == 0
    assert errno_of(t.madvise, a + 1, 4096, MADV_DONTNEED) == errno.EINVAL
    assert errno_of(t.madvise, a, 4096, 12345) == errno.EINVAL
    t.madvise(a, 0, MADV_DONTNEED)                       # length 0: success
    b = t.mmap(4096, prot=PROT_READ)
    assert errno_of(t.madvise, b, 4096, MADV_POPULATE_WRITE) == errno.EINVAL  # as on 6.18
    t.madvise(b, 4096, MADV_POPULATE_READ)
    assert t.smaps(b)["Rss"] == 0
    checked(m)


def test_mmap_munmap_errors_leave_state_unchanged(machine):
    m = machine()
    t = m.spawn()
    before = [arr.copy() for arr in m.state]
    assert errno_of(t.mmap, 0) == errno.EINVAL
    assert errno_of(t.mmap, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, 0x1001) == errno.EINVAL
    assert errno_of(t.munmap, 0x1001, 4096) == errno.EINVAL
    assert errno_of(t.munmap, 0x10000, 0) == errno.EINVAL
    assert errno_of(t.mmap, 1 << 50) == errno.ENOMEM
    with pytest.raises(TypeError):
        t.mmap("4096")
    with pytest.raises(ValueError):
        t.mmap(-1)
    with pytest.raises(ValueError):
        t.touch(-5, 10)
    for a, b in zip(before, m.state):
        assert np.array_equal(a, b)


def test_map_fixed_noreplace_and_populate(machine, checked):
    m = machine()
    t = m.spawn()
    a = t.mmap(8192, flags=MAP_PRIVATE | MAP_ANONYMOUS | mmcore.MAP_POPULATE)
    assert t.smaps(a)["Rss"] == 8
    assert errno_of(t.mmap, 4096, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, a) == errno.EEXIST
    b = t.mmap(4096, flags=MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, addr=a)
    assert b == a and t.smaps(a)["Rss"] == 4
    checked(m)


def test_segfault_outside_vmas_and_on_read_only(machine):
    m = machine()
    t = m.spawn()
    with pytest.raises(mmcore.SegmentationFault) as e:
        t.touch(0x10000, 4096)
    assert e.value.address == 0x10000
    r = t.mmap(4096, prot=PROT_READ)
    with pytest.raises(mmcore.SegmentationFault):
        t.touch(r, 1, write=True)
    res = t.access(np.array([r, 0x20000, r], np.int64), record_faults=True)
    assert res.tolist() == [0, 1, 0]


def test_tlb_counts_follow_page_size(machine):
    m = machine(memory="1GiB")
    t = m.spawn()
    a = t.mmap(64 * MiB)
    t.touch(a, 64 * MiB)
    rng = np.random.default_rng(1)
    before = t.counters()
    t.access(a + rng.integers(0, 64 * MiB, 100_000))
    after = t.counters()
    # 32 THPs fit the 2 MiB L1 dTLB: after warm-up no walks at all
    assert after["stlb_misses"] - before["stlb_misses"] <= 32
    u = m.spawn()
    u.prctl(PR_SET_THP_DISABLE, 1)
    b = u.mmap(64 * MiB)
    u.touch(b, 64 * MiB)
    before = u.counters()
    u.access(b + rng.integers(0, 64 * MiB, 100_000))
    after = u.counters()
    # 16384 small pages vs 1536 STLB entries: most accesses walk
    assert after["stlb_misses"] - before["stlb_misses"] > 80_000
    assert u.time_ns > t.time_ns


def test_sysfs_knobs(machine):
    m = machine()
    assert m.sysfs_read("kernel/mm/transparent_hugepage/enabled") == "[always] madvise never"
    m.sysfs_write("/sys/kernel/mm/transparent_hugepage/defrag", "always")
    assert "[always]" in m.sysfs_read("kernel/mm/transparent_hugepage/defrag")
    with pytest.raises(OSError) as e:
        m.sysfs_write("kernel/mm/transparent_hugepage/enabled", "sometimes")
    assert e.value.errno == errno.EINVAL
    m3 = machine(kernel="3.10")
    with pytest.raises(OSError):
        m3.sysfs_write("kernel/mm/transparent_hugepage/defrag", "defer")


def test_config_validation_names_the_field():
    with pytest.raises(mmcore.ConfigError, match="thp_enabled"):
        mmcore.Config(thp_enabled="sometimes")
    with pytest.raises(mmcore.ConfigError, match="memory"):
        mmcore.Config(memory="lots")
    with pytest.raises(mmcore.ConfigError, match=r"unknown key\(s\) \['memroy'\]"):
        mmcore.Config.from_dict({"memroy": "1GiB"})
    with pytest.raises(mmcore.ConfigError, match="thp_defrag"):
        mmcore.Config(kernel="3.10", thp_defrag="defer")
    with pytest.raises(mmcore.ConfigError, match="tlb.stlb_entries"):
        mmcore.Config(tlb={"stlb_entries": 100, "stlb_ways": 12})
    assert mmcore.Config(memory="1GiB").memory_bytes == 1 << 30


def test_buddy_allocation_is_lazy_and_conserved(machine, checked):
    m = machine(memory="1TiB")
    assert m.buddyinfo()[10] == (1 << 40) // (4 << 20)
    t = m.spawn()
    a = t.mmap(GiB)
    t.touch(a, GiB)
    # everything but the 1 GiB of THPs, the tables VmPTE counts and the PGD is free
    assert m.meminfo()["MemFree"] == (1 << 30) - 1024 * 1024 - t.status()["VmPTE"] - 4
    checked(m)


def _fragment(m, unmovable_every_block):
    """Fill memory with 4 KiB anonymous pages, then free every other page of each pageblock."""
    from mmcore.kernels import consts as K
    from mmcore.kernels.page_alloc import rmqueue
    filler = m.spawn("filler")
    filler.prctl(PR_SET_THP_DISABLE, 1)
    total = m.meminfo()["MemTotal"] * 1024
    size = total - 512 * 1024
    a = filler.mmap(size, addr=0x7F0000000000, flags=MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED)
    filler.touch(a, size)
    for off in range(0, size, 8192):
        filler.madvise(a + off, 4096, MADV_DONTNEED)
    s = m.state
    if unmovable_every_block:
        # one unmovable (kernel) page in every pageblock that has free pages
        nblocks = s.pb_mt.shape[0]
        hit = set()
        for _ in range(20000):
            p = rmqueue(s.gs, s.cfg, s.fr32, s.fr_flags, s.fr_order, s.pb_mt, 0, K.MIGRATE_UNMOVABLE)
            if p < 0:
                break
            s.fr_flags[p] = K.PG_head        # a kernel page: in use, not movable
            hit.add(p >> 9)
            if len(hit) == nblocks:
                break
    return filler


@pytest.mark.boundscheck
def test_defrag_always_compacts_movable_pageblocks(machine, checked):
    m = machine(memory="64MiB", thp_defrag="always")
    _fragment(m, unmovable_every_block=False)
    assert m.buddyinfo()[9] == 0 and m.buddyinfo()[10] == 0
    t = m.spawn("thp")
    a = t.mmap(2 * MiB)
    t.touch(a, 4096)
    v = m.vmstat()
    assert v["compact_stall"] == 1 and v["compact_success"] == 1
    assert 0 < v["pgmigrate_success"] <= 512
    assert v["thp_fault_alloc"] == 1 and t.smaps(a)["AnonHugePages"] == 2048


def test_defrag_fails_with_an_unmovable_page_in_every_pageblock(machine):
    m = machine(memory="64MiB", thp_defrag="always")
    _fragment(m, unmovable_every_block=True)
    t = m.spawn("thp")
    a = t.mmap(2 * MiB)
    t.touch(a, 4096)
    v = m.vmstat()
    assert v["compact_stall"] == 1 and v["compact_fail"] == 1 and v["compact_success"] == 0
    assert v["thp_fault_fallback"] == 1 and t.smaps(a)["AnonHugePages"] == 0
    assert t.smaps(a)["Rss"] == 4


def test_defrag_madvise_does_not_compact_without_madv_hugepage(machine):
    m = machine(memory="64MiB")
    _fragment(m, unmovable_every_block=False)
    t = m.spawn("thp")
    a = t.mmap(2 * MiB)
    t.touch(a, 4096)
    v = m.vmstat()
    assert v["compact_stall"] == 0 and v["thp_fault_fallback"] == 1


@pytest.mark.boundscheck
def test_planted_out_of_bounds_access_raises():
    """With NUMBA_BOUNDSCHECK=1 and an empty cache, a kernel indexing past an array must raise."""
    if os.environ.get("NUMBA_BOUNDSCHECK") != "1":
        pytest.skip("only meaningful with NUMBA_BOUNDSCHECK=1")
    from mmcore.kernels.mmap import find_vma_index
    mm = np.zeros((19, 1), np.int64)
    mm[6, 0] = 5                      # claims 5 VMAs in a pool with room for 1
    vma = np.zeros((5, 1), np.int64)
    with pytest.raises(IndexError):
        find_vma_index(mm, vma, 0, 1 << 40)


def test_cli_info_and_bad_input():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-m", "mmcore", "info"], capture_output=True, text=True)
    assert out.returncode == 0 and "kernel cache:" in out.stdout and "6.18" in out.stdout
    bad = subprocess.run([sys.executable, "-m", "mmcore", "run", "--size", "lots"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "size" in bad.stderr


def test_five_level_paging_walks_one_level_more(machine, checked):
    loads = {}
    for levels in (4, 5):
        m = machine(page_table_levels=levels, tlb={"pde_cache_entries": 0,
                                                   "pdpte_cache_entries": 0})
        t = m.spawn()
        t.prctl(PR_SET_THP_DISABLE, 1)
        a = t.mmap(8192)
        t.touch(a, 4096)
        before = t.counters()["walk_loads"]
        t.access([a + 4096])                 # a miss on a present table: a full walk, a fault,
        loads[levels] = t.counters()["walk_loads"] - before   # and a second full walk
        assert t.page_table()[a] & 1
        checked(m)
    assert loads == {4: 8, 5: 10}


def test_order_memcg_and_migratetype_share_one_word_per_frame(tmp_path):
    """fr_order, fr_memcg and pb_mt are views of fr32's packed row: a THP charged to a cgroup
    carries all three in its head's word, none clobbering another, and copies and saved
    machines keep them as views of their own fr32."""
    m = mmcore.Machine(mmcore.Config(memory="64MiB", thp_enabled="always"))
    cg = m.cgroup("/a", create=True)
    t = m.spawn("a")
    cg.attach(t)
    a = t.mmap(4 << 20)
    t.touch(a, 4 << 20)
    s = m.state
    heads = np.flatnonzero(((s.fr_flags & K.PG_head) != 0) & ((s.fr_flags & K.PG_anon) != 0)
                           & (s.fr_order == K.HPAGE_PMD_ORDER))
    assert len(heads) >= 1
    cg_id = int(s.fr_memcg[heads[0]])
    assert cg_id > 0 and all(int(s.fr_memcg[h]) == cg_id for h in heads)
    for h in heads:
        mt = int(s.pb_mt[h >> K.PAGEBLOCK_ORDER])          # a THP's head starts its pageblock
        assert int(s.fr_order[h]) == K.HPAGE_PMD_ORDER and mt == K.MIGRATE_MOVABLE
        assert int(s.fr32[K.FR_MEMCG, h]) == (mt << 24) | (K.HPAGE_PMD_ORDER << 16) | cg_id
    t.munmap(a, 4 << 20)                                     # freed: the charge is gone
    assert cg.current == 0
    check_invariants(m)
    m.save(tmp_path / "m.h5")
    for other in (mmcore.Machine.load(tmp_path / "m.h5"), mmcore.Machine.restore(m.snapshot())):
        for name in ("fr_order", "fr_memcg", "pb_mt"):
            assert np.shares_memory(getattr(other.state, name), other.state.fr32)
            assert np.array_equal(getattr(other.state, name), getattr(s, name))
        check_invariants(other)
