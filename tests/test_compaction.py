"""Compaction: direct, kcompactd (woken and proactive), vm.compact_memory, deferral and the
fragmentation index, checked against mm/compaction.c's rules."""
import errno

import pytest

import mmcore
from mmcore import MADV_DONTNEED, MADV_NOHUGEPAGE
from mmcore.check import check_invariants
from mmcore.kernels import compaction as C

MiB = 1 << 20
SEC = 1_000_000_000


def errno_of(fn, *a):
    with pytest.raises(OSError) as e:
        fn(*a)
    return e.value.errno


def fragmented(memory="128MiB", keep_every=16, shared=False, **kw):
    """A machine whose free memory is all in small blocks: a cache faulted nearly everything
    with 4 KiB pages and kept one page in ``keep_every`` (mapped twice if ``shared``)."""
    kw.setdefault("min_free_kbytes", 128)
    kw.setdefault("overcommit_memory", 1)    # 3.x/4.x's heuristic refuses a map of nearly all free
    m = mmcore.Machine(mmcore.Config(memory=memory, thp_enabled="always", **kw))
    cache = m.spawn("cache")
    n = (m.meminfo()["MemFree"] * 1024 - (1 << 20)) & ~4095   # < 2 MiB left over
    a = cache.mmap(n)
    cache.madvise(a, n, MADV_NOHUGEPAGE)
    cache.touch(a, n)
    step = keep_every * 4096
    for off in range(0, n, step):
        cache.madvise(a + off + 4096, step - 4096, MADV_DONTNEED)
    if shared:
        cache.fork()
    return m, cache


def thp_fault(t):
    """One anonymous fault at a 2 MiB-aligned address (3.x and 4.x do not align mmap)."""
    b = t.mmap(4 * MiB)
    t.touch((b + 2 * MiB - 1) & ~(2 * MiB - 1), 4096)


def test_fragmentation_index_and_score_follow_the_kernel_formulas():
    m, _ = fragmented()
    counts = m.buddyinfo()
    pages = sum(c << o for o, c in enumerate(counts))
    blocks = sum(counts)
    suitable = sum(c << (o - 9) for o, c in enumerate(counts) if o >= 9)
    s = m.state
    assert C.fragmentation_score(s.cfg, s.gs) == (pages - (suitable << 9)) * 100 // pages
    want = -1000 if suitable else 1000 - (1000 + pages * 1000 // 512) // blocks
    assert C.fragmentation_index(s.cfg, s.gs, 9) == want
    assert C.fragmentation_index(s.cfg, s.gs, 0) == -1000


def test_fragmentation_scenario_rows():
    from mmcore.scenarios import thp_fragmentation
    rows = {r["variant"]: r for r in thp_fragmentation(memory="256MiB", app="64MiB")}
    none, direct = rows["no compaction"], rows["defrag=always (direct)"]
    kcd, full = rows["kcompactd, proactive"], rows["compact_memory"]
    assert none["free_MiB"] > 128                       # plenty of free memory ...
    assert none["thp_fault_fallback"] > 16 and none["pgmigrate_success"] == 0   # ... no THPs
    assert direct["AnonHugePages_MiB"] == 64 and direct["compact_stall"] > 0
    assert full["AnonHugePages_MiB"] == 64 and full["compact_stall"] == 0
    assert kcd["AnonHugePages_MiB"] > none["AnonHugePages_MiB"] and kcd["pgmigrate_success"] > 0


def test_direct_compaction_is_deferred_after_failures():
    """Pages mapped twice cannot be migrated here: each compaction fails, and compaction_deferred
    skips the next 1, 2, 4 ... attempts (compact_defer_shift). 3.10 has no kcompactd, and
    max_ptes_none 0 keeps khugepaged's allocations (which share the deferral state) out."""
    m, cache = fragmented(shared=True, thp_defrag="always", kernel="3.10",
                          khugepaged={"max_ptes_none": 0})
    t = m.spawn("app")
    stalls = []
    for _ in range(7):
        thp_fault(t)
        stalls.append(m.vmstat()["compact_stall"])
    assert stalls == [1, 1, 2, 2, 2, 2, 3]
    assert m.vmstat()["compact_fail"] == 3 and m.vmstat()["thp_fault_fallback"] == 7
    check_invariants(m)


@pytest.mark.parametrize("threshold, stalls", [(500, 1), (1000, 0)])
def test_extfrag_threshold_decides_whether_to_compact(threshold, stalls):
    """A fragmentation index at or below vm.extfrag_threshold means the allocation fails for
    lack of memory: no compaction. This machine's index is 993 (fragmentation)."""
    m, cache = fragmented(thp_defrag="always", kernel="3.10")
    s = m.state
    assert C.fragmentation_index(s.cfg, s.gs, 9) > 900
    cache.write_sysctl("vm.extfrag_threshold", threshold)
    thp_fault(m.spawn("app"))
    assert m.vmstat()["compact_stall"] == stalls
    check_invariants(m)


def test_kcompactd_woken_by_a_failed_thp_fault():
    """4.13 with defrag=defer: the fault falls back at once and wakes kcompactd, which compacts
    in the background; the next THP fault then succeeds."""
    m, cache = fragmented(kernel="4.13", thp_defrag="defer")
    t = m.spawn("app")
    b = t.mmap(8 * MiB)
    b = (b + 2 * MiB - 1) & ~(2 * MiB - 1)            # 4.13 does not align mmap
    t.touch(b, 4096)
    v = m.vmstat()
    assert v["thp_fault_fallback"] == 1 and v["compact_stall"] == 0
    m.advance(1000)
    v = m.vmstat()
    assert v["compact_daemon_wake"] == 1 and v["compact_daemon_migrate_scanned"] > 0
    assert sum(m.buddyinfo()[9:]) >= 1
    t.touch(b + 2 * MiB, 4096)
    assert m.vmstat()["thp_fault_alloc"] == 1
    check_invariants(m)


def test_proactive_compaction_only_above_the_high_mark():
    m, _ = fragmented(compaction_proactiveness=20)
    s = m.state
    assert C.fragmentation_score(s.cfg, s.gs) > 90
    m.advance(SEC)
    assert m.vmstat()["compact_daemon_migrate_scanned"] > 0
    assert C.fragmentation_score(s.cfg, s.gs) <= 80       # compacted down to the low mark
    assert m.vmstat()["compact_daemon_wake"] == 0          # proactive work is not a wake
    check_invariants(m)
    off, _ = fragmented(compaction_proactiveness=0)
    off.advance(SEC)
    assert off.vmstat()["compact_daemon_migrate_scanned"] == 0


def test_compact_memory_sysctl():
    m, cache = fragmented()
    before = sum(m.buddyinfo()[9:])
    t0 = cache.time_ns
    cache.write_sysctl("vm.compact_memory", 1)
    assert sum(m.buddyinfo()[9:]) > before
    assert m.vmstat()["pgmigrate_success"] > 0 and m.vmstat()["compact_stall"] == 0
    assert cache.time_ns > t0                               # the writer paid for it
    check_invariants(m)
    assert errno_of(cache.write_sysctl, "vm.compact_memory", 2) == errno.EINVAL


def test_compaction_sysctls():
    m = mmcore.Machine(mmcore.Config(memory="64MiB"))
    t = m.spawn()
    t.write_sysctl("vm.compaction_proactiveness", 0)
    t.write_sysctl("vm.extfrag_threshold", 1000)
    assert m.config.compaction_proactiveness == 0 and m.config.extfrag_threshold == 1000
    assert errno_of(t.write_sysctl, "vm.compaction_proactiveness", 101) == errno.EINVAL
    assert errno_of(t.write_sysctl, "vm.extfrag_threshold", -1) == errno.EINVAL
    old = mmcore.Machine(mmcore.Config(memory="64MiB", kernel="4.13")).spawn()
    assert errno_of(old.write_sysctl, "vm.compaction_proactiveness", 20) == errno.ENOENT
    with pytest.raises(mmcore.ConfigError, match="compaction_proactiveness"):
        mmcore.Config(compaction_proactiveness=200)
