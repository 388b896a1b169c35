"""The transparent huge page cache: PMD-mapped file faults, khugepaged coalescing page-cache
pages, and the huge page cache benchmark scenario as a whole.

- ``file_pmd_fault``: a 16 GiB tmpfs (huge=always) file, cached; each round maps it shared,
  touches every 2 MiB (8,192 faults, each mapping a cached huge folio with one PMD) and unmaps.
- ``file_pmd_fault_alloc``: the same faults on a hole each time (truncated between rounds): each
  fault also allocates, clears and adds the folio to the page cache.
- ``khugepaged_file_collapse``: 1 GiB of 4 KiB tmpfs pages, mapped; khugepaged coalesces all 512
  ranges in one wakeup (unmapping, page-cache replacement, retraction of the PTE tables); THP
  stays ``never`` until the timed part turns it on, so nothing collapses while it is set up.
- ``hpc_scenario``: ``scenarios.huge_page_cache`` at a small size (15 machines, three workloads
  under five cases): the wall time of the whole comparison.
"""
from __future__ import annotations

import os

import pytest

import mmcore
from mmcore import MAP_SHARED, PROT_READ

GiB, MiB = 1 << 30, 1 << 20
SEED = 20240601
FILE = 16 * GiB
ROUNDS = 5
COLLAPSE_FILE = 1 * GiB
SHMEM = "kernel/mm/transparent_hugepage/shmem_enabled"
KH = "kernel/mm/transparent_hugepage/khugepaged/"


def _tmpfs(memory: str, huge: str, enabled: str = "always"):
    m = mmcore.Machine(mmcore.Config(memory=memory, thp_enabled=enabled, thp_defrag="never"),
                       seed=SEED)
    m.mount("/shm", "tmpfs", size=memory, huge=huge)
    return m, m.spawn("bench")


def _pmd_fault_rounds(benchmark, t, setup):
    """Time ``ROUNDS`` touches of every 2 MiB of the mapping ``setup`` makes (after one untimed
    warm-up); unmap between rounds. Returns vmstat before and after the timed rounds."""
    def touch(a):
        t.touch(a, FILE, stride=2 * MiB, write=False)

    def teardown(a):
        t.munmap(a, FILE)

    args, _ = setup()                                        # warm-up, untimed
    touch(*args)
    teardown(*args)
    v0 = t.machine.vmstat()
    benchmark.pedantic(touch, setup=setup, teardown=teardown, rounds=ROUNDS, iterations=1)
    return v0, t.machine.vmstat()


@pytest.mark.benchmark(group="file-thp")
def test_file_pmd_fault(benchmark, rates):
    """PMD faults on a cached tmpfs huge folio: map, touch every 2 MiB, unmap."""
    m, t = _tmpfs("18GiB", "always")
    fd = t.open("/shm/f", os.O_CREAT | os.O_RDWR)
    t.pwrite(fd, 0, FILE)
    nfaults = FILE // (2 * MiB)

    def setup():
        return (t.mmap(FILE, PROT_READ, MAP_SHARED, fd=fd),), {}

    v0, v1 = _pmd_fault_rounds(benchmark, t, setup)
    assert v1["thp_file_mapped"] - v0["thp_file_mapped"] == ROUNDS * nfaults
    assert v1["thp_file_alloc"] == v0["thp_file_alloc"] == nfaults     # cached: no allocation
    rates.record(benchmark, "file-pmd-fault", nfaults, "faults_per_s")
    rates.ratio("file_pmd_over_anon_thp_fault", "file-pmd-fault", "fault-thp")
    benchmark.extra_info["faults_per_round"] = nfaults


@pytest.mark.benchmark(group="file-thp")
def test_file_pmd_fault_alloc(benchmark, rates):
    """PMD faults on holes: each allocates a huge folio, adds it to the page cache and maps it."""
    m, t = _tmpfs("18GiB", "always")
    fd = t.open("/shm/f", os.O_CREAT | os.O_RDWR)
    nfaults = FILE // (2 * MiB)

    def setup():
        t.ftruncate(fd, 0)                                   # every folio goes
        t.ftruncate(fd, FILE)
        return (t.mmap(FILE, PROT_READ, MAP_SHARED, fd=fd),), {}

    v0, v1 = _pmd_fault_rounds(benchmark, t, setup)
    assert v1["thp_file_alloc"] - v0["thp_file_alloc"] == ROUNDS * nfaults
    assert v1["thp_file_fallback"] == v0["thp_file_fallback"] == 0
    rates.record(benchmark, "file-pmd-fault-alloc", nfaults, "faults_per_s")
    benchmark.extra_info["faults_per_round"] = nfaults


@pytest.mark.benchmark(group="file-thp")
def test_khugepaged_file_collapse(benchmark, rates):
    """Page-cache ranges coalesced per second: 1 GiB of mapped 4 KiB tmpfs pages, one wakeup."""
    made = []
    nranges = COLLAPSE_FILE // (2 * MiB)

    def setup():
        # THP and shmem THP off while the pages are faulted, so khugepaged sleeps;
        # shmem_enabled=force then starts it (6.12+) and MADV_HUGEPAGE enrols the mm
        # (khugepaged_enter_vma), but no time passes before the timed part
        m, t = _tmpfs("2GiB", "never", enabled="never")
        m.sysfs_write(KH + "pages_to_scan", 2 ** 32 - 1)
        m.sysfs_write(KH + "scan_sleep_millisecs", 1)
        fd = t.open("/shm/f", os.O_CREAT | os.O_RDWR)
        t.pwrite(fd, 0, COLLAPSE_FILE)                       # 4 KiB pages (huge=never)
        a = t.mmap(COLLAPSE_FILE, PROT_READ, MAP_SHARED, fd=fd)
        t.touch(a, COLLAPSE_FILE, stride=64 * 1024, write=False)   # PTE-mapped
        m.sysfs_write(SHMEM, "force")
        t.madvise(a, COLLAPSE_FILE, mmcore.MADV_HUGEPAGE)   # the mm enrols
        made.append(m)
        return (m,), {}

    def collapse(m):
        m.sysfs_write("kernel/mm/transparent_hugepage/enabled", "always")   # wakes khugepaged
        m.advance(2_000_000)                                 # 2 ms: the first wakeup does it all

    args, _ = setup()                                        # warm-up, untimed
    assert args[0].vmstat()["thp_collapse_alloc"] == 0
    collapse(*args)
    made.clear()
    benchmark.pedantic(collapse, setup=setup, rounds=3, iterations=1)
    for m in made:
        assert m.vmstat()["thp_collapse_alloc"] == nranges
        assert m.meminfo()["ShmemHugePages"] == COLLAPSE_FILE >> 10
    rates.record(benchmark, "khugepaged-file-collapse", nranges, "collapses_per_s")
    benchmark.extra_info["collapses_per_round"] = nranges


@pytest.mark.benchmark(group="file-thp")
def test_hpc_scenario(benchmark):
    """The huge page cache comparison (scenarios.huge_page_cache), small: wall time per run."""
    from mmcore.scenarios import HPC_CASES, huge_page_cache
    kw = dict(memory="1GiB", file="64MiB", reads=200_000, files=400)
    huge_page_cache(**kw)                                    # warm-up, untimed
    rows = benchmark.pedantic(huge_page_cache, kwargs=kw, rounds=3, iterations=1)
    assert len(rows) == 3 * len(HPC_CASES)
    benchmark.extra_info["machines_per_run"] = len(rows)
