"""6.12's underused-THP shrinker and the zero-page remap on split (mm/huge_memory.c
``thp_underused``, ``deferred_split_scan``; mm/migrate.c ``try_to_map_unused_to_zeropage``).

The figures are this 6.18 host's: four THPs with one write every 8 pages and
``khugepaged/max_ptes_none`` at 409, then ``echo 2 > /proc/sys/vm/drop_caches``: Rss 8192 kB
before, 1024 kB after, ``thp_underused_split_page`` 4, ``thp_split_page`` 4, ``thp_split_pmd``
4, ``thp_deferred_split_page`` 0. With every page written, with max_ptes_none 511 or with
drop_caches 1, nothing changes.
"""
import errno
import os

import pytest

import mmcore
from mmcore import MADV_NOHUGEPAGE, MADV_HUGEPAGE
from mmcore.check import check_invariants
from mmcore.kernels import consts as K

MiB = 1 << 20
UNDERUSED = "kernel/mm/transparent_hugepage/shrink_underused"
MAX_NONE = "kernel/mm/transparent_hugepage/khugepaged/max_ptes_none"
COUNTERS = ("thp_underused_split_page", "thp_split_page", "thp_split_pmd",
            "thp_deferred_split_page")


def aligned_mmap(t, size):
    a = t.mmap(size + 2 * MiB)
    return (a + 2 * MiB - 1) & ~(2 * MiB - 1)


def sparse_thps(m, n=4, stride=8, max_none=409):
    """``n`` PMD-mapped THPs of which one page in ``stride`` is written."""
    if max_none is not None:
        m.sysfs_write(MAX_NONE, max_none)
    t = m.spawn()
    a = aligned_mmap(t, n * 2 * MiB)
    t.touch(a, n * 2 * MiB, stride=stride * 4096)
    s = t.smaps(a)
    assert s["Rss"] == s["AnonHugePages"] == n * 2048
    return t, a


def deltas(m, before):
    v = m.vmstat()
    return {k: v[k] - before[k] for k in COUNTERS}


def test_drop_slab_splits_underused_thps_as_the_host_does(machine):
    m = machine(thp_enabled="always")
    t, a = sparse_thps(m)
    before = m.vmstat()
    free0 = m.meminfo()["MemFree"]
    t.write_sysctl("vm.drop_caches", 2)
    s = t.smaps(a)
    assert s["Rss"] == 1024 and s["AnonHugePages"] == 0
    assert deltas(m, before) == {"thp_underused_split_page": 4, "thp_split_page": 4,
                                 "thp_split_pmd": 4, "thp_deferred_split_page": 0}
    assert m.meminfo()["MemFree"] - free0 == 8192 - 1024
    assert t.status()["RssAnon"] == 1024
    check_invariants(m)
    # the zero-filled pages now map the zero page: reads fault nothing in, writes copy
    t.touch(a, 8 * MiB, stride=8 * 4096, write=True)
    t.touch(a + 4096, 4096, write=False)
    assert t.smaps(a)["Rss"] == 1024
    t.touch(a + 4096, 4096, write=True)
    assert t.smaps(a)["Rss"] == 1028
    check_invariants(m)


@pytest.mark.parametrize("case", ["dense", "max_ptes_none_511", "drop_caches_1", "knob_off",
                                  "kernel_4.13"])
def test_thps_the_shrinker_leaves_alone(machine, case):
    m = machine(thp_enabled="always", kernel="4.13" if case == "kernel_4.13" else "6.18")
    if case == "knob_off":
        m.sysfs_write(UNDERUSED, 0)
    t, a = sparse_thps(m, stride=1 if case == "dense" else 8,
                       max_none=511 if case == "max_ptes_none_511" else 409)
    before = m.vmstat()
    t.write_sysctl("vm.drop_caches", 1 if case == "drop_caches_1" else 2)
    assert t.smaps(a)["AnonHugePages"] == 8192
    assert deltas(m, before) == dict.fromkeys(COUNTERS, 0)
    check_invariants(m)


def test_a_thp_found_in_use_leaves_the_queue(machine):
    """deferred_split_scan drops a THP that is not underused; lowering max_ptes_none later does
    not bring it back."""
    m = machine(thp_enabled="always")
    t, a = sparse_thps(m, max_none=511)
    t.write_sysctl("vm.drop_caches", 2)
    m.sysfs_write(MAX_NONE, 409)
    before = m.vmstat()
    t.write_sysctl("vm.drop_caches", 2)
    assert t.smaps(a)["AnonHugePages"] == 8192
    assert deltas(m, before)["thp_underused_split_page"] == 0
    check_invariants(m)


def test_threshold_is_more_than_max_ptes_none_zero_pages(machine):
    """64 written pages leave 448 zero-filled: underused below max_ptes_none 448, not at it."""
    for max_none, split in ((447, 1), (448, 0)):
        m = machine(thp_enabled="always")
        t, a = sparse_thps(m, n=1, max_none=max_none)
        t.write_sysctl("vm.drop_caches", 2)
        assert m.vmstat()["thp_underused_split_page"] == split
        check_invariants(m)


def test_split_of_a_partially_mapped_thp_maps_its_zero_pages_to_the_zero_page(machine):
    """6.12+: every anonymous split remaps zero-filled pages (not only the underused ones);
    4.13 keeps them."""
    for kernel, rss in (("6.18", 8), ("4.13", 511 * 4)):
        m = machine(thp_enabled="always", kernel=kernel)
        t = m.spawn()
        a = aligned_mmap(t, 2 * MiB)
        t.touch(a, 2 * 4096)                        # two pages written, the THP faulted
        t.munmap(a + 2 * MiB - 4096, 4096)          # partially mapped: queued
        assert m.vmstat()["thp_deferred_split_page"] == 1
        t.write_sysctl("vm.drop_caches", 2)
        assert m.vmstat()["thp_split_page"] == 1
        assert t.smaps(a)["Rss"] == rss
        assert m.vmstat()["thp_underused_split_page"] == 0
        check_invariants(m)


def test_written_state_follows_copy_on_write(machine):
    """A child's copy of a written page holds data; a page neither wrote stays zero-filled."""
    m = machine(thp_enabled="always")
    m.sysfs_write(MAX_NONE, 409)
    t = m.spawn()
    a = aligned_mmap(t, 2 * MiB)
    t.madvise(a, 2 * MiB, MADV_NOHUGEPAGE)
    t.touch(a, 2 * MiB, stride=8 * 4096)            # 64 small pages written
    c = t.fork()
    c.touch(a, 2 * MiB, stride=8 * 4096)            # the child copies them: still written
    c.madvise(a, 2 * MiB, MADV_HUGEPAGE)
    c.touch(a + 4096, 4096, write=False)            # zero page reads
    c.madvise(a, 2 * MiB, mmcore.MADV_COLLAPSE)
    assert c.smaps(a)["AnonHugePages"] == 2048
    c.write_sysctl("vm.drop_caches", 2)
    assert m.vmstat()["thp_underused_split_page"] == 1
    assert c.smaps(a)["Rss"] == 64 * 4
    check_invariants(m)


def test_collapse_of_dense_pages_is_not_underused(machine):
    m = machine(thp_enabled="always")
    m.sysfs_write(MAX_NONE, 409)
    t = m.spawn()
    a = aligned_mmap(t, 2 * MiB)
    t.madvise(a, 2 * MiB, MADV_NOHUGEPAGE)
    t.touch(a, 2 * MiB)
    t.madvise(a, 2 * MiB, MADV_HUGEPAGE)
    t.madvise(a, 2 * MiB, mmcore.MADV_COLLAPSE)
    t.write_sysctl("vm.drop_caches", 2)
    assert t.smaps(a)["AnonHugePages"] == 2048
    assert m.vmstat()["thp_underused_split_page"] == 0
    check_invariants(m)


def test_written_state_survives_swap(machine):
    """A page swapped out and in keeps its data: collapsed again, the THP is not underused."""
    m = machine(thp_enabled="always", swap="64MiB")
    m.sysfs_write(MAX_NONE, 409)
    t = m.spawn()
    a = aligned_mmap(t, 2 * MiB)
    t.madvise(a, 2 * MiB, MADV_NOHUGEPAGE)
    t.touch(a, 2 * MiB, stride=2 * 4096)            # 256 written, 256 zero-filled
    t.madvise(a, 2 * MiB, K.MADV_PAGEOUT)
    assert t.status()["VmSwap"] == 1024
    t.touch(a, 2 * MiB, write=False)                # swapped in; the rest read as zero page
    t.madvise(a, 2 * MiB, MADV_HUGEPAGE)
    t.madvise(a, 2 * MiB, mmcore.MADV_COLLAPSE)
    assert t.smaps(a)["AnonHugePages"] == 2048
    t.write_sysctl("vm.drop_caches", 2)
    assert m.vmstat()["thp_underused_split_page"] == 0   # 256 zero pages: not above 409
    check_invariants(m)


def test_memory_pressure_runs_the_underused_shrinker(machine):
    """Reclaim (kswapd and direct) runs the deferred-split shrinker after the LRUs, at each
    priority the pass reaches: under this pressure sparse THPs give back zero-filled pages."""
    m = machine(memory="64MiB", thp_enabled="always", swap="64MiB", min_free_kbytes=1024)
    t, a = sparse_thps(m, n=12)
    u = m.spawn()
    b = u.mmap(40 * MiB)
    u.madvise(b, 40 * MiB, MADV_NOHUGEPAGE)
    u.touch(b, 40 * MiB)
    v = m.vmstat()
    assert v["thp_underused_split_page"] > 0
    assert t.smaps(a)["Rss"] < 12 * 2048
    check_invariants(m)


def test_shrink_underused_knob(machine):
    m = machine()
    assert m.sysfs_read(UNDERUSED) == "1"
    m.sysfs_write(UNDERUSED, "0")
    assert m.sysfs_read(UNDERUSED) == "0"
    with pytest.raises(OSError) as e:
        m.sysfs_write(UNDERUSED, "2")
    assert e.value.errno == errno.EINVAL
    old = machine(kernel="4.13")
    with pytest.raises(OSError) as e:
        old.sysfs_read(UNDERUSED)
    assert e.value.errno == errno.ENOENT
    assert not mmcore.Machine(mmcore.Config(memory="64MiB", thp_shrink_underused=False)) \
        .sysfs_read(UNDERUSED) == "1"
    with pytest.raises(mmcore.ConfigError, match="thp_shrink_underused: expected true or false"):
        mmcore.Config(thp_shrink_underused="yes")


def test_memcg_reclaim_shrinks_the_cgroups_own_thps(machine):
    """The deferred split queues are per memcg: a cgroup at its memory.max splits its own
    underused THPs (and so needs neither swap nor the OOM killer), not another cgroup's."""
    m = machine(memory="256MiB", thp_enabled="always")
    m.sysfs_write(MAX_NONE, 409)
    other = m.cgroup("/other", create=True)
    o = m.spawn("other")
    other.attach(o)
    oa = aligned_mmap(o, 8 * MiB)
    o.touch(oa, 8 * MiB, stride=8 * 4096)            # four sparse THPs elsewhere
    cg = m.cgroup("/a", create=True)
    cg.write("memory.max", 24 * MiB)
    t = m.spawn("sparse")
    cg.attach(t)
    a = aligned_mmap(t, 64 * MiB)
    t.touch(a, 64 * MiB, stride=8 * 4096)            # 32 THPs' worth: only splitting fits it
    assert cg.events()["oom"] == 0 and t.pid in [x.pid for x in m.tasks()]
    assert cg.current <= 24 * MiB
    assert t.smaps(a)["Rss"] < 64 * 1024
    assert m.vmstat()["thp_underused_split_page"] > 0
    assert o.smaps(oa)["AnonHugePages"] == 8 * 1024    # the other cgroup's THPs stay whole
    check_invariants(m)


def test_zero_filled_pages_go_to_the_swap_zeromap(machine):
    """6.12+: a zero-filled page swapped out is only marked in the zeromap (no pswpout, no I/O)
    and comes back without a read (a major fault, no pswpin, no read latency)."""
    m = machine(thp_enabled="never", swap="64MiB")
    t = m.spawn()
    a = t.mmap(2 * MiB)
    t.madvise(a, 2 * MiB, K.MADV_POPULATE_WRITE)     # faulted writable, nothing stored
    t.touch(a, 2 * MiB, stride=2 * 4096)              # half the pages hold data
    t.madvise(a, 2 * MiB, K.MADV_PAGEOUT)
    v = m.vmstat()
    assert t.status()["VmSwap"] == 2048 and t.status()["RssAnon"] == 0
    assert v["pswpout"] == 256
    t0 = t.counters()["time_ns"]
    t.touch(a + 4096, 4096, write=False)               # a zero-filled page
    zero_ns = t.counters()["time_ns"] - t0
    assert m.vmstat()["pswpin"] == 0
    assert m.vmstat()["pgmajfault"] == v["pgmajfault"] + 1
    t0 = t.counters()["time_ns"]
    t.touch(a, 4096, write=False)                      # a page with data: read from swap
    data_ns = t.counters()["time_ns"] - t0
    assert m.vmstat()["pswpin"] == 1
    assert zero_ns < 10_000 < 80_000 < data_ns         # no read latency against the SSD's 81 us
    # swapped in, it is still zero-filled: out again, no write either
    t.madvise(a, 2 * 4096, K.MADV_PAGEOUT)
    assert m.vmstat()["pswpout"] == 257
    check_invariants(m)


def test_one_reclaim_batch_splits_a_short_queue_whole(machine):
    """This 6.18 host, a memcg v1 limit of 300 MiB, no swap: 100 THPs with one page each
    unmapped (queued, partially mapped), then 4 KiB pages written until the limit:
    thp_split_page went up by 100 between two looks 64 pages apart, at the first charges over
    the limit. The reclaim pass found nothing on its LRUs, so it ran down to priority 0, and
    shrink_slab's share of the queue (freeable >> priority, plus what earlier priorities
    deferred) reached all of it."""
    m = machine(memory="1GiB", thp_enabled="madvise", cgroup_version=1)
    cg = m.cgroup("/ds", create=True)
    cg.write("memory.limit_in_bytes", 300 * MiB)
    t = m.spawn()
    cg.attach(t)
    a = aligned_mmap(t, 100 * 2 * MiB)
    t.madvise(a, 100 * 2 * MiB, MADV_HUGEPAGE)
    t.touch(a, 100 * 2 * MiB, write=True)
    for k in range(100):
        t.madvise(a + k * 2 * MiB + 7 * 4096, 4096, mmcore.MADV_DONTNEED)
    assert m.vmstat()["thp_deferred_split_page"] == 100
    b = t.mmap(120 * MiB)
    t.madvise(b, 120 * MiB, MADV_NOHUGEPAGE)
    steps = []
    for off in range(0, 120 * MiB, 64 * 4096):
        t.touch(b + off, 64 * 4096, write=True)
        steps.append(m.vmstat()["thp_split_page"])
        if steps[-1]:
            break
    assert steps[-1] == 100 and steps[:-1] == [0] * (len(steps) - 1)
    assert cg.read("memory.failcnt") != "0"
    check_invariants(m)


def test_page_cache_goes_before_a_short_queue(machine):
    """From 4.16 the shrinkers run after the LRUs at each priority, with a share of
    ``freeable >> priority``: while clean page cache gives the reclaim batch at the first
    priorities, four queued THPs are left alone."""
    m = machine(memory="256MiB", thp_enabled="always")
    m.mount("/d", "ext4", size=512 * MiB)
    w = m.spawn("writer")
    fd = w.open("/d/f", os.O_CREAT | os.O_RDWR)
    w.pwrite(fd, 0, 160 * MiB)
    w.fsync(fd)                                           # clean page cache
    t, a = sparse_thps(m, n=4, stride=1, max_none=None)
    for k in range(4):
        t.madvise(a + k * 2 * MiB, 4096, mmcore.MADV_DONTNEED)
    before = m.vmstat()
    u = m.spawn()
    b = u.mmap(96 * MiB)
    u.madvise(b, 96 * MiB, MADV_NOHUGEPAGE)
    u.touch(b, 96 * MiB, write=True)
    v = m.vmstat()
    assert v["pgsteal_file"] - before["pgsteal_file"] > 0
    assert v["thp_split_page"] == before["thp_split_page"] == 0
    assert v["thp_deferred_split_page"] == 4
    check_invariants(m)
