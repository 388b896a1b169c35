"""The transparent huge page cache: tmpfs huge= (mainline), the 2013 ramfs series and its mmap
extension; PMD-mapped file faults, splits, truncation, counters and invariants."""
import errno
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mmcore
from mmcore.check import check_files, check_invariants

MiB = 1 << 20
RW_ = os.O_CREAT | os.O_RDWR
SHARED = mmcore.MAP_SHARED
PRIVATE = mmcore.MAP_PRIVATE
RDWR = mmcore.PROT_READ | mmcore.PROT_WRITE
FALLOC_FL_KEEP_SIZE, FALLOC_FL_PUNCH_HOLE = 1, 2


def checked(m):
    check_invariants(m)
    check_files(m)


def tmpfs(huge="always", memory="256MiB", **kw):
    m = mmcore.Machine({"memory": memory, **kw})
    m.mount("/shm", "tmpfs", size="64MiB", huge=huge)
    return m, m.spawn("app")


def ramfs(model, memory="256MiB", **kw):
    m = mmcore.Machine({"memory": memory, "huge_page_cache": model, **kw})
    m.mount("/ram", "ramfs")
    return m, m.spawn("app")


def hpc(m):
    """The huge page cache's observables."""
    v, mi = m.vmstat(), m.meminfo()
    keys = ("thp_file_alloc", "thp_file_fallback", "thp_file_mapped", "thp_split_pmd",
            "thp_split_page", "thp_write_alloc", "thp_read_alloc", "thp_write_alloc_failed",
            "thp_read_alloc_failed")
    out = {k: v[k] for k in keys}
    out.update({k: mi[k] for k in ("ShmemHugePages", "ShmemPmdMapped", "FileHugePages",
                                   "FilePmdMapped", "Shmem", "Mapped")})
    return out


# ---- tmpfs huge= -------------------------------------------------------------------------------

def test_huge_always_write_allocates_pmd_sized_folios():
    m, t = tmpfs("always")
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 4 * MiB + 4096)                  # two whole ranges and one page of a third
    h = hpc(m)
    # huge=always: even the range holding one page of data gets a whole folio (the bloat)
    assert h["thp_file_alloc"] == 3 and h["ShmemHugePages"] == 3 * 2048
    assert h["Shmem"] == 3 * 2048 and m.vfs.fs_stats("/shm")["free_blocks"] == (64 - 6) * 256
    checked(m)


def test_huge_never_and_within_size():
    m, t = tmpfs("never")
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 4 * MiB)
    assert hpc(m)["thp_file_alloc"] == 0 and m.meminfo()["Shmem"] == 4096
    m, t = tmpfs("within_size")
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, MiB)                             # the file does not reach 2 MiB: small pages
    assert hpc(m)["thp_file_alloc"] == 0
    t.pwrite(fd, 2 * MiB, 2 * MiB)                   # this write's end covers [2, 4) MiB
    assert hpc(m)["thp_file_alloc"] == 1 and hpc(m)["ShmemHugePages"] == 2048
    # [0, 2) MiB holds small pages already: a later miss there stays small (-EEXIST)
    t.pwrite(fd, MiB, 4096)
    assert hpc(m)["thp_file_alloc"] == 1
    checked(m)


def test_huge_advise_only_for_madv_hugepage_faults():
    m, t = tmpfs("advise")
    fd = t.open("/shm/f", RW_)
    t.ftruncate(fd, 8 * MiB)
    t.pwrite(fd, 0, 2 * MiB)                         # write(): never huge under advise
    assert hpc(m)["thp_file_alloc"] == 0
    a = t.mmap(8 * MiB, RDWR, SHARED, fd=fd)
    t.touch(a + 2 * MiB, 4096, write=False)          # no MADV_HUGEPAGE: small
    assert hpc(m)["thp_file_alloc"] == 0
    t.madvise(a, 8 * MiB, mmcore.MADV_HUGEPAGE)
    t.touch(a + 4 * MiB, 4096, write=False)
    h = hpc(m)
    assert h["thp_file_alloc"] == 1 and h["thp_file_mapped"] == 1
    assert t.smaps(a)["ShmemPmdMapped"] == 2048
    checked(m)


def test_shmem_enabled_deny_and_force_override_mounts():
    m, t = tmpfs("always")
    assert "[never]" in m.sysfs_read("kernel/mm/transparent_hugepage/shmem_enabled")
    m.sysfs_write("kernel/mm/transparent_hugepage/shmem_enabled", "deny")
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 2 * MiB)
    assert hpc(m)["thp_file_alloc"] == 0
    m2, t2 = tmpfs("never")
    m2.sysfs_write("kernel/mm/transparent_hugepage/shmem_enabled", "force")
    fd = t2.open("/shm/f", RW_)
    t2.pwrite(fd, 0, 2 * MiB)
    assert hpc(m2)["thp_file_alloc"] == 1
    with pytest.raises(OSError) as e:
        m2.sysfs_write("kernel/mm/transparent_hugepage/shmem_enabled", "sometimes")
    assert e.value.errno == errno.EINVAL


# ---- PMD-mapped faults -------------------------------------------------------------------------

def test_aligned_shared_mapping_faults_once_per_2mib():
    m, t = tmpfs("always")
    fd = t.open("/shm/f", RW_)
    t.ftruncate(fd, 8 * MiB)
    a = t.mmap(8 * MiB, RDWR, SHARED, fd=fd)
    assert a % (2 * MiB) == 0
    before = t.counters()["min_flt"] + t.counters()["maj_flt"]
    t.touch(a, 8 * MiB, write=True)
    faults = t.counters()["min_flt"] + t.counters()["maj_flt"] - before
    h = hpc(m)
    assert faults == 4 and h["thp_file_alloc"] == 4 and h["thp_file_mapped"] == 4
    sm = t.smaps(a)
    assert sm["Rss"] == sm["ShmemPmdMapped"] == 8 * 1024 and sm["AnonHugePages"] == 0
    assert t.status()["RssShmem"] == 8 * 1024 and h["ShmemPmdMapped"] == 8 * 1024
    assert h["Mapped"] == 8 * 1024
    checked(m)


def test_misaligned_offset_maps_the_huge_folio_with_ptes():
    m, t = tmpfs("always")
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 4 * MiB)
    a = t.mmap(2 * MiB, mmcore.PROT_READ, SHARED, fd=fd, offset=4096)
    t.touch(a, 2 * MiB, write=False)
    sm = t.smaps(a)
    assert sm["ShmemPmdMapped"] == 0 and sm["Rss"] == 2048
    assert hpc(m)["thp_file_mapped"] == 0 and hpc(m)["ShmemHugePages"] == 4096
    checked(m)


def test_prctl_and_nohugepage_keep_faults_small():
    m, t = tmpfs("always")
    fd = t.open("/shm/f", RW_)
    t.ftruncate(fd, 4 * MiB)
    a = t.mmap(4 * MiB, RDWR, SHARED, fd=fd)
    t.madvise(a, 2 * MiB, mmcore.MADV_NOHUGEPAGE)
    t.touch(a, 4096, write=False)
    assert hpc(m)["thp_file_alloc"] == 0                  # the fault asked for no THP
    t.prctl(mmcore.PR_SET_THP_DISABLE, 1)
    t.touch(a + 2 * MiB, 4096, write=False)
    assert hpc(m)["thp_file_alloc"] == 0 and t.smaps(a + 2 * MiB)["ShmemPmdMapped"] == 0
    checked(m)


def test_private_write_splits_the_pmd_and_copies_4k():
    m, t = tmpfs("always")
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 2 * MiB)
    a = t.mmap(2 * MiB, RDWR, PRIVATE, fd=fd)
    t.touch(a, 2 * MiB, write=False)
    assert t.smaps(a)["ShmemPmdMapped"] == 2048
    t.touch(a + 8192, 1, write=True)                 # wp_huge_pmd: split, then COW at PTE level
    sm = t.smaps(a)
    h = hpc(m)
    assert h["thp_split_pmd"] == 1 and sm["ShmemPmdMapped"] == 0 and sm["Anonymous"] == 4
    assert h["ShmemHugePages"] == 2048                # the folio itself stays whole
    checked(m)


def test_partial_munmap_splits_pmd_and_refault_uses_ptes():
    m, t = tmpfs("always")
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 4 * MiB)
    a = t.mmap(4 * MiB, RDWR, SHARED, fd=fd)
    t.touch(a, 4 * MiB, write=False)
    t.munmap(a + MiB, 4096)
    h = hpc(m)
    assert h["thp_split_pmd"] == 1 and h["ShmemPmdMapped"] == 2048 and h["Mapped"] == 2048
    t.touch(a, MiB, write=False)
    assert t.smaps(a)["Rss"] == 1024 and t.smaps(a)["ShmemPmdMapped"] == 0
    checked(m)


def test_fork_does_not_copy_file_pmds():
    m, t = tmpfs("always")
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 2 * MiB)
    a = t.mmap(2 * MiB, mmcore.PROT_READ, PRIVATE, fd=fd)
    t.touch(a, 2 * MiB, write=False)
    c = t.fork()
    assert c.smaps(a)["Rss"] == 0                    # copy_huge_pmd: faulted in again
    c.touch(a, 4096, write=False)
    assert c.smaps(a)["ShmemPmdMapped"] == 2048 and hpc(m)["thp_file_mapped"] == 2
    checked(m)


# ---- truncation, holes, release ----------------------------------------------------------------

def test_truncate_drops_whole_folios_and_splits_partial_ones():
    m, t = tmpfs("always")
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 6 * MiB)
    a = t.mmap(6 * MiB, RDWR, SHARED, fd=fd)
    t.touch(a, 6 * MiB, write=False)
    t.ftruncate(fd, 3 * MiB)                          # [4, 6) goes whole; [2, 4) is split
    h = hpc(m)
    assert h["ShmemHugePages"] == 2048 and h["Shmem"] == 3 * 1024
    assert h["thp_split_page"] == 1 and h["ShmemPmdMapped"] == 2048
    checked(m)


def test_truncate_on_4_13_zeroes_the_partial_folio():
    m = mmcore.Machine({"memory": "256MiB", "kernel": "4.13"})
    m.mount("/shm", "tmpfs", size="64MiB", huge="always")
    t = m.spawn("app")
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 4 * MiB)
    t.ftruncate(fd, 3 * MiB)
    h = hpc(m)
    assert h["ShmemHugePages"] == 4096 and h["thp_split_page"] == 0
    checked(m)


def test_punch_hole_and_fallocate():
    m, t = tmpfs("always")
    fd = t.open("/shm/f", RW_)
    t.fallocate(fd, 0, 0, 4 * MiB)
    assert hpc(m)["thp_file_alloc"] == 2
    t.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 2 * MiB, 2 * MiB)
    assert hpc(m)["ShmemHugePages"] == 2048 and m.meminfo()["Shmem"] == 2048
    t.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, MiB)
    assert hpc(m)["ShmemHugePages"] == 0 and m.meminfo()["Shmem"] == 1024
    checked(m)


def test_unlink_and_close_free_everything():
    m, t = tmpfs("always")
    free0 = m.meminfo()["MemFree"]
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 4 * MiB)
    a = t.mmap(4 * MiB, RDWR, SHARED, fd=fd)
    t.touch(a, 4 * MiB, write=True)
    t.close(fd)
    t.unlink("/shm/f")
    assert m.meminfo()["Shmem"] == 4096               # still mapped
    t.munmap(a, 4 * MiB)
    mi = m.meminfo()
    assert mi["Shmem"] == 0 and mi["ShmemHugePages"] == 0
    assert abs(mi["MemFree"] - free0) <= 64           # page tables aside, all came back
    checked(m)


def test_fragmented_memory_falls_back_to_small_pages():
    m = mmcore.Machine(mmcore.Config(memory="64MiB", thp_enabled="always", thp_defrag="never",
                                     min_free_kbytes=128, compaction_proactiveness=0))
    m.mount("/shm", "tmpfs", size="8MiB", huge="always")
    cache = m.spawn("cache")
    n = (m.meminfo()["MemFree"] * 1024 - (1 << 20)) & ~4095
    a = cache.mmap(n)
    cache.madvise(a, n, mmcore.MADV_NOHUGEPAGE)
    cache.touch(a, n)
    for off in range(0, n, 16 * 4096):
        cache.madvise(a + off + 4096, 15 * 4096, mmcore.MADV_DONTNEED)
    assert sum(m.buddyinfo()[9:]) == 0
    t = m.spawn("app")
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 2 * MiB)
    h = hpc(m)
    assert h["thp_file_fallback"] == 1 and h["thp_file_alloc"] == 0 and h["Shmem"] == 2048
    checked(m)


# ---- the 2013 series ---------------------------------------------------------------------------

def test_2013_ramfs_write_and_read_allocate_huge_pages():
    m, t = ramfs("2013")
    fd = t.open("/ram/f", RW_)
    t.pwrite(fd, 0, 2 * MiB)
    t.ftruncate(fd, 6 * MiB)
    t.pread(fd, 4 * MiB, 4096)                       # a hole of a sparse file
    h = hpc(m)
    assert h["thp_write_alloc"] == 1 and h["thp_read_alloc"] == 1 and h["thp_file_alloc"] == 0
    assert h["FileHugePages"] == 4096 and h["ShmemHugePages"] == 0
    checked(m)


def test_2013_last_writers_close_splits_the_last_huge_page():
    m, t = ramfs("2013")
    fd = t.open("/ram/f", RW_)
    t.pwrite(fd, 0, 2 * MiB + 8192)                   # a whole huge page, and one for 8 KiB
    r = t.open("/ram/f", os.O_RDONLY)
    assert hpc(m)["FileHugePages"] == 4096
    t.close(fd)                                       # the last writer: the tail's page splits
    h = hpc(m)
    assert h["FileHugePages"] == 2048 and h["thp_split_page"] == 1
    assert m.meminfo()["Unevictable"] == 2048 + 8     # the pages past EOF were freed
    t.close(r)
    assert hpc(m)["thp_split_page"] == 1              # a reader's close changes nothing
    checked(m)


def test_2013_fault_on_a_huge_page_splits_it():
    m, t = ramfs("2013")
    fd = t.open("/ram/f", RW_)
    t.pwrite(fd, 0, 2 * MiB)
    a = t.mmap(2 * MiB, RDWR, SHARED, fd=fd)
    t.touch(a, 4096, write=False)
    h = hpc(m)
    assert h["thp_split_page"] == 1 and h["FileHugePages"] == 0 and h["FilePmdMapped"] == 0
    assert m.meminfo()["Unevictable"] == 2048          # the pages stay, as 4 KiB pages
    checked(m)


def test_2013_mmap_model_maps_huge_pages_with_pmds():
    m, t = ramfs("2013+mmap")
    fd = t.open("/ram/f", RW_)
    t.ftruncate(fd, 4 * MiB)
    a = t.mmap(4 * MiB, RDWR, SHARED, fd=fd)
    t.touch(a, 4 * MiB, write=True)
    h = hpc(m)
    assert h["thp_read_alloc"] == 2 and h["FilePmdMapped"] == 4096 and h["thp_file_mapped"] == 2
    assert t.smaps(a)["FilePmdMapped"] == 4096
    checked(m)


def test_tlb_misses_fall_with_pmd_mapped_file_pages():
    res = {}
    for huge in ("never", "always"):
        m, t = tmpfs(huge)
        fd = t.open("/shm/f", RW_)
        t.pwrite(fd, 0, 32 * MiB)
        a = t.mmap(32 * MiB, mmcore.PROT_READ, SHARED, fd=fd)
        t.touch(a, 32 * MiB, write=False)
        c0 = t.counters()
        for _ in range(3):
            t.touch(a, 32 * MiB, write=False)
        c1 = t.counters()
        res[huge] = c1["stlb_misses"] - c0["stlb_misses"]
    assert res["always"] * 10 < res["never"]


# ---- bad input ---------------------------------------------------------------------------------

def test_bad_input_names_the_field():
    m = mmcore.Machine({"memory": "64MiB"})
    with pytest.raises(ValueError, match="huge"):
        m.mount("/x", "tmpfs", huge="sometimes")
    with pytest.raises(ValueError, match="only tmpfs"):
        m.mount("/y", "ramfs", huge="always")
    m3 = mmcore.Machine({"memory": "64MiB", "kernel": "3.10"})
    with pytest.raises(ValueError, match="4.8"):
        m3.mount("/z", "tmpfs", huge="always")
    with pytest.raises(mmcore.ConfigError, match="huge_page_cache"):
        mmcore.Config(huge_page_cache="2014")
    with pytest.raises(mmcore.ConfigError, match="shmem_enabled"):
        mmcore.Config(shmem_enabled="force", kernel="3.10")
    m4 = mmcore.Machine({"memory": "64MiB", "huge_page_cache": "2013"})
    with pytest.raises(ValueError, match="mainline"):
        m4.mount("/w", "tmpfs", huge="always")


# ---- invariants under random operation sequences ---------------------------------------------

OPS = st.lists(st.tuples(st.sampled_from(["write", "trunc", "punch", "map", "touch", "unmap",
                                          "fork", "read"]),
                         st.integers(0, 7), st.integers(1, 4), st.booleans()),
               min_size=1, max_size=12)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=OPS, huge=st.sampled_from(["always", "within_size", "advise"]))
def test_random_sequences_keep_invariants(ops, huge):
    m, t = tmpfs(huge, memory="128MiB")
    fd = t.open("/shm/f", RW_)
    maps = []
    tasks = [t]
    for op, where, n, flag in ops:
        off, ln = where * MiB, n * MiB
        if op == "write":
            t.pwrite(fd, off, ln)
        elif op == "read":
            t.pread(fd, off, ln)
        elif op == "trunc":
            t.ftruncate(fd, off + (4096 if flag else 0))
        elif op == "punch":
            t.fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off + 4096, ln)
        elif op == "map":
            a = t.mmap(8 * MiB, RDWR, SHARED if flag else PRIVATE, fd=fd)
            if huge == "advise":
                t.madvise(a, 8 * MiB, mmcore.MADV_HUGEPAGE)
            maps.append(a)
        elif op == "touch" and maps:
            a = maps[where % len(maps)]
            length = min(ln, 8 * MiB - off % (8 * MiB))
            try:
                tasks[-1].touch(a + off % (8 * MiB), length, write=flag)
            except (mmcore.BusError, mmcore.SegmentationFault):
                pass                                 # beyond EOF, or an unmapped hole
        elif op == "unmap" and maps:
            a = maps[where % len(maps)]
            t.munmap(a + (off % (8 * MiB)), 4096 * n)
        elif op == "fork" and len(tasks) < 3:
            tasks.append(t.fork())
        checked(m)


# ---- khugepaged and MADV_COLLAPSE over the page cache ------------------------------------------

def test_khugepaged_coalesces_small_tmpfs_pages():
    m, t = tmpfs("within_size", khugepaged={"scan_sleep_millisecs": 100})
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, MiB)
    assert hpc(m)["Shmem"] == 1024 and hpc(m)["ShmemHugePages"] == 0   # too small: 4 KiB pages
    t.ftruncate(fd, 4 * MiB)
    a = t.mmap(4 * MiB, RDWR, SHARED, fd=fd)        # the mm enrols (khugepaged_enter_vma) and
    assert m.khugepaged()["full_scans"] == 0        # khugepaged, idle for want of work, wakes
    # [0, 2) MiB holds 256 pages and 256 holes: khugepaged collapses it (holes zero-filled) before
    # the first access, so that access's fault maps the new folio by a PMD
    t.touch(a, 4096, write=False)
    assert t.smaps(a)["ShmemPmdMapped"] == 2048 and t.smaps(a)["Rss"] == 2048
    assert m.vmstat()["thp_collapse_alloc"] == 1
    m.advance(2_000_000_000)
    h = hpc(m)
    # Each later pass finds the range huge and counts it again in pages_collapsed, as the kernel
    # does (collapse_pte_mapped_thp's SCAN_SUCCEED): one per pass, 20 passes 100 ms apart.
    kh = m.khugepaged()
    assert 10 <= kh["pages_collapsed"] <= kh["full_scans"]
    assert h["ShmemHugePages"] == 2048
    assert m.vmstat()["thp_collapse_alloc"] == 1 and h["Shmem"] == 2048
    checked(m)


@pytest.mark.parametrize("kernel, runs", [("6.18", True), ("4.13", False)])
def test_khugepaged_runs_for_shmem_with_thp_never(kernel, runs):
    """THP enabled=never, shmem_enabled=advise: 6.12+ (hugepage_pmd_enabled counts shmem) runs
    khugepaged for an advised tmpfs range and collapses it; 4.13 leaves it asleep. Writes of
    shmem_enabled start and stop it (start_stop_khugepaged)."""
    m, t = tmpfs("advise", kernel=kernel, thp_enabled="never", shmem_enabled="advise",
                 khugepaged={"scan_sleep_millisecs": 100})
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 64 * 4096)
    t.ftruncate(fd, 2 * MiB)
    a = t.mmap(2 * MiB, RDWR, SHARED, fd=fd)
    t.madvise(a, 2 * MiB, mmcore.MADV_HUGEPAGE)
    m.advance(150_000_000)
    assert (hpc(m)["ShmemHugePages"] == 2048) is runs
    assert (m.khugepaged()["full_scans"] > 0) is runs
    if not runs:
        return
    m.sysfs_write("kernel/mm/transparent_hugepage/shmem_enabled", "never")   # stopped
    scans = m.khugepaged()["full_scans"]
    m.advance(1_000_000_000)
    assert m.khugepaged()["full_scans"] == scans
    m.sysfs_write("kernel/mm/transparent_hugepage/shmem_enabled", "advise")  # started: scans now
    m.advance(1_000_000)
    assert m.khugepaged()["full_scans"] == scans + 1
    m.sysfs_write("kernel/mm/transparent_hugepage/enabled", "never")         # shmem keeps it on
    m.advance(1_000_000_000)
    assert m.khugepaged()["full_scans"] > scans + 1
    checked(m)


def test_khugepaged_respects_max_ptes_none_for_files():
    m, t = tmpfs("within_size", khugepaged={"scan_sleep_millisecs": 100, "max_ptes_none": 0})
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, MiB)
    t.ftruncate(fd, 4 * MiB)
    a = t.mmap(4 * MiB, RDWR, SHARED, fd=fd)
    t.touch(a, 4096, write=False)
    m.advance(2_000_000_000)
    assert hpc(m)["ShmemHugePages"] == 0 and m.vmstat()["thp_scan_exceed_none_pte"] >= 1
    checked(m)


def _anon_vma_flags(m, t):
    """(start, V_ANON_VMA) of each VMA of ``t``'s address space."""
    from mmcore.kernels import consts as K
    s = m.state
    b, n = int(s.mm[K.MM_VBASE, t._mmi]), int(s.mm[K.MM_VCOUNT, t._mmi])
    return {int(s.vma[K.V_START, b + i]): int(s.vma[K.V_ANON_VMA, b + i]) for i in range(n)}


def test_a_write_fault_in_a_private_vma_attaches_an_anon_vma():
    """anon_vma_prepare: a write fault in a private VMA (even one that then fails); split halves
    keep it, fork copies it; shared VMAs and read faults never get one."""
    m, t = tmpfs("never")
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 4 * MiB)
    priv = t.mmap(4 * MiB, RDWR, PRIVATE, fd=fd)
    shared = t.mmap(2 * MiB, RDWR, SHARED, fd=fd)
    t.touch(priv, 4 * MiB, write=False)
    t.touch(shared, 2 * MiB, write=True)
    assert _anon_vma_flags(m, t)[priv] == 0 and _anon_vma_flags(m, t)[shared] == 0
    t.touch(priv + 2 * MiB, 1, write=True)                       # a private copy
    assert _anon_vma_flags(m, t)[priv] == 1
    t.mprotect(priv + MiB, MiB, mmcore.PROT_READ)                # three VMAs now
    assert [_anon_vma_flags(m, t)[priv + k * MiB] for k in (0, 1, 2)] == [1, 1, 1]
    c = t.fork()
    assert _anon_vma_flags(m, c)[priv + 2 * MiB] == 1 and _anon_vma_flags(m, c)[shared] == 0
    fresh = t.mmap(4096, RDWR, PRIVATE, fd=fd, offset=8 * MiB)  # past EOF: SIGBUS
    with pytest.raises(mmcore.BusError):
        t.touch(fresh, 1, write=True)
    assert _anon_vma_flags(m, t)[fresh] == 1                     # prepared before the fault failed
    checked(m)


def test_collapse_leaves_the_tables_of_a_private_vma_with_an_anon_vma():
    """retract_page_tables skips a private VMA that has an anon_vma: after another process's
    MADV_COLLAPSE its emptied PTE table stays, so its next fault there maps 4 KiB (a VMA
    without one loses the table and maps the folio by its PMD)."""
    m, t = tmpfs("never")
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 4 * MiB)
    written = t.mmap(4 * MiB, RDWR, PRIVATE, fd=fd)
    clean = t.mmap(4 * MiB, RDWR, PRIVATE, fd=fd)
    for a in (written, clean):
        t.touch(a, 16 * 4096, write=False)                       # a PTE table over range 0
    t.touch(written + 2 * MiB, 1, write=True)                    # a private copy in range 1
    other = m.spawn("collapser")
    fd2 = other.open("/shm/f", os.O_RDWR)
    b = other.mmap(2 * MiB, RDWR, SHARED, fd=fd2)
    other.touch(b, 1, write=False)
    assert other.madvise(b, 2 * MiB, mmcore.MADV_COLLAPSE) == 0
    t.touch(written + 32 * 4096, 1, write=False)
    t.touch(clean + 32 * 4096, 1, write=False)
    assert t.smaps(written)["FilePmdMapped"] + t.smaps(written)["ShmemPmdMapped"] == 0
    assert t.smaps(clean)["ShmemPmdMapped"] == 2048
    checked(m)


def test_madvise_collapse_on_tmpfs_maps_a_pmd_at_once():
    m, t = tmpfs("never")                            # MADV_COLLAPSE ignores huge=
    fd = t.open("/shm/f", RW_)
    t.pwrite(fd, 0, 2 * MiB)
    a = t.mmap(2 * MiB, RDWR, SHARED, fd=fd)
    t.touch(a, 2 * MiB, write=False)
    assert t.smaps(a)["ShmemPmdMapped"] == 0
    assert t.madvise(a, 2 * MiB, mmcore.MADV_COLLAPSE) == 0
    assert hpc(m)["thp_file_mapped"] == 1 and hpc(m)["thp_file_alloc"] == 0   # as a 6.18 host
    sm = t.smaps(a)
    assert sm["ShmemPmdMapped"] == 2048 and sm["Rss"] == 2048 and hpc(m)["ShmemHugePages"] == 2048
    assert t.status()["VmPTE"] <= 12                 # the emptied PTE table went
    checked(m)
    m.sysfs_write("kernel/mm/transparent_hugepage/shmem_enabled", "deny")
    fd2 = t.open("/shm/g", RW_)
    t.pwrite(fd2, 0, 2 * MiB)
    b = t.mmap(2 * MiB, RDWR, SHARED, fd=fd2)
    with pytest.raises(OSError) as e:
        t.madvise(b, 2 * MiB, mmcore.MADV_COLLAPSE)
    assert e.value.errno == errno.EINVAL


def test_madvise_collapse_on_ext4_is_einval():
    m = mmcore.Machine({"memory": "256MiB"})
    m.mount("/data", "ext4", size="1GiB")
    t = m.spawn("app")
    fd = t.open("/data/f", RW_)
    t.pwrite(fd, 0, 2 * MiB)
    a = t.mmap(2 * MiB, mmcore.PROT_READ, SHARED, fd=fd)
    t.touch(a, 2 * MiB, write=False)
    with pytest.raises(OSError) as e:
        t.madvise(a, 2 * MiB, mmcore.MADV_COLLAPSE)
    assert e.value.errno == errno.EINVAL


@pytest.mark.parametrize("model, collapses", [("2013", False), ("2013+mmap", True)])
def test_coalescing_is_what_2013_lacked(model, collapses):
    m, t = ramfs(model, khugepaged={"scan_sleep_millisecs": 100})
    fd = t.open("/ram/f", RW_)
    t.ftruncate(fd, 4 * MiB)
    # a mapping whose file offset is not 2 MiB-aligned gets 4 KiB pages under both models
    b = t.mmap(2 * MiB, mmcore.PROT_READ, SHARED, fd=fd, offset=4096)
    t.touch(b, 2 * MiB - 4096, write=False)
    assert hpc(m)["FileHugePages"] == 0
    a = t.mmap(2 * MiB, mmcore.PROT_READ, SHARED, fd=fd)
    t.touch(a, 4096, write=False)
    m.advance(2_000_000_000)
    t.touch(a, 2 * MiB, write=False)
    if collapses:
        assert t.smaps(a)["FilePmdMapped"] == 2048 and m.vmstat()["thp_collapse_alloc"] == 1
        assert t.smaps(b)["Rss"] == 0                # the old pages were unmapped everywhere
    else:
        assert t.smaps(a)["FilePmdMapped"] == 0 and m.khugepaged()["pages_collapsed"] == 0
    checked(m)


# ---- the benchmark the article said was missing -----------------------------------------------

def test_huge_page_cache_benchmark_shows_gain_and_bloat(tmp_path):
    from mmcore.scenarios import HPC_CASES, huge_page_cache, plot_huge_page_cache
    rows = huge_page_cache(memory="512MiB", file="16MiB", reads=20_000, files=64)
    assert len(rows) == 3 * len(HPC_CASES)
    r = {(x["case"], x["workload"]): x for x in rows}
    off, always = "off (tmpfs huge=never)", "tmpfs huge=always"
    for w in ("sequential scan", "random reads"):
        # PMD-mapped: one fault per 2 MiB, a fraction of the TLB misses, a faster run
        assert r[(always, w)]["faults"] == 8 and r[(always, w)]["pmd_mapped"] == 8
        assert r[(always, w)]["stlb_misses"] * 10 < r[(off, w)]["stlb_misses"]
        assert r[(always, w)]["run_ms"] < r[(off, w)]["run_ms"]
        assert r[("2013+mmap (ramfs)", w)]["stlb_misses"] == r[(always, w)]["stlb_misses"]
        # the 2013 series maps no huge page: as off
        assert r[("2013 (ramfs)", w)]["stlb_misses"] == r[(off, w)]["stlb_misses"]
    b = "build mix"
    # small files: huge=always gives each a 2 MiB folio; within_size never; 2013 splits on close
    assert r[(always, b)]["file_MiB"] > 20 * r[(off, b)]["file_MiB"]
    assert r[("tmpfs huge=within_size", b)]["file_MiB"] == r[(off, b)]["file_MiB"]
    assert r[("2013 (ramfs)", b)]["file_MiB"] == r[(off, b)]["file_MiB"]
    assert r[("2013 (ramfs)", b)]["setup_ms"] > r[(off, b)]["setup_ms"]   # clearing 2 MiB each
    out = plot_huge_page_cache(rows, tmp_path / "hpc.png")
    assert (tmp_path / "hpc.png").stat().st_size > 10_000 and out.endswith("hpc.png")
    with pytest.raises(ValueError, match="reads"):
        huge_page_cache(reads=0)


@pytest.mark.parametrize("params, faults", [({}, 1024), ({"huge": "always"}, 32),
                                            ({"model": 2013, "fstype": "ramfs"}, 1024),
                                            ({"model": "2013+mmap", "fstype": "ramfs"}, 32)])
def test_shipped_huge_page_cache_scenario(params, faults):
    from pathlib import Path

    from mmcore.scenario import load_scenario, run_scenario
    s = load_scenario(Path(__file__).parent.parent / "data" / "huge_page_cache.toml")
    out = run_scenario(s, params={"reads": 10_000, **params})
    db = out["tasks"]["db"]
    assert db["counters"]["min_flt"] + db["counters"]["maj_flt"] == faults
    assert db["smaps_rollup"]["Rss"] == 64 << 10
    pmd = db["smaps_rollup"]["ShmemPmdMapped"] + db["smaps_rollup"]["FilePmdMapped"]
    assert pmd == (64 << 10 if faults == 32 else 0)
