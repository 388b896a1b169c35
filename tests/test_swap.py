"""Reclaim for anonymous faults, swap (slots, swap-out, swap-in, fork, memcg swap accounting),
MADV_PAGEOUT and MADV_COLD."""
from __future__ import annotations

import errno
import os

import pytest

from mmcore import Config, ConfigError, Machine
from mmcore import oom
from mmcore.check import check_files, check_invariants
from mmcore.machine import OOMKilled, SegmentationFault

MiB = 1 << 20
MADV_COLD, MADV_PAGEOUT = 20, 21
PFN = ((1 << 52) - 1) & ~4095                         # a PTE's frame address bits


def machine(**kw) -> Machine:
    """A small machine whose pid 1 (init, never an OOM victim) is running."""
    kw.setdefault("memory", "64MiB")
    kw.setdefault("thp_enabled", "never")
    m = Machine(Config(**kw))
    m.spawn("init")
    return m


def checked(m: Machine) -> None:
    check_invariants(m)
    check_files(m)


def test_anonymous_faults_reclaim_page_cache_before_any_oom():
    """A write fault that finds memory full of clean page cache reclaims it (direct reclaim
    and kswapd), as GFP_HIGHUSER_MOVABLE allocations do, instead of killing."""
    m = machine()
    w = m.spawn("writer")
    m.mount("/d", "ext4", size="256MiB")
    fd = w.open("/d/f", os.O_CREAT | os.O_RDWR)
    w.pwrite(fd, 0, 40 * MiB)
    m.sync()
    cached = m.meminfo()["Cached"]
    assert cached >= 40 * 1024
    t = m.spawn("anon")
    a = t.mmap(40 * MiB)
    t.touch(a, 40 * MiB)
    v = m.vmstat()
    assert v["oom_kill"] == 0
    assert t.status()["RssAnon"] == 40 * 1024
    assert m.meminfo()["Cached"] < cached - 16 * 1024
    assert v["pgsteal_direct"] + v["pgsteal_kswapd"] > 4096
    assert v["pgsteal_file"] == v["pgsteal_direct"] + v["pgsteal_kswapd"]   # no swap: file only
    checked(m)


def test_without_swap_anonymous_memory_beyond_ram_is_an_oom():
    m = machine()
    t = m.spawn("hog")
    a, b = t.mmap(48 * MiB), t.mmap(48 * MiB)    # one 96 MiB request is more than RAM + swap
    t.touch(a, 48 * MiB)
    with pytest.raises(OOMKilled):
        t.touch(b, 48 * MiB)
    assert m.vmstat()["oom_kill"] == 1
    assert m.vmstat()["pswpout"] == 0


def test_swap_size_and_meminfo():
    m = machine(swap="64MiB")
    mi = m.meminfo()
    assert mi["SwapTotal"] == 64 * 1024 - 4          # page 0 is the swap header
    assert mi["SwapFree"] == mi["SwapTotal"]
    assert mi["SwapCached"] == 0
    assert m.totalpages == (64 * MiB) // 4096 + (64 * MiB) // 4096 - 1


@pytest.mark.parametrize("bad", ["20KiB", "-1"])
def test_bad_swap_size_is_rejected(bad):
    with pytest.raises(ConfigError, match="swap"):
        Config(swap=bad)


def test_bad_swappiness_is_rejected():
    with pytest.raises(ConfigError, match="swappiness"):
        Config(swappiness=201)
    with pytest.raises(ConfigError, match="swappiness"):
        Config(swappiness=150, kernel="4.13")             # 0..100 before 5.8


def test_swappiness_sysctl():
    m = machine(swap="64MiB")
    t = m.spawn("p")
    t.write_sysctl("vm.swappiness", 200)
    assert m.config.swappiness == 200
    with pytest.raises(OSError) as e:
        t.write_sysctl("vm.swappiness", 201)
    assert e.value.errno == errno.EINVAL


def test_anonymous_memory_beyond_ram_goes_to_swap():
    m = machine(swap="64MiB")
    t = m.spawn("hog")
    a = t.mmap(96 * MiB)
    t.touch(a, 96 * MiB)
    st, mi, v = t.status(), m.meminfo(), m.vmstat()
    assert v["oom_kill"] == 0
    # every page written is either resident or in swap
    assert st["RssAnon"] + st["VmSwap"] == 96 * 1024
    assert st["VmSwap"] >= 32 * 1024
    assert mi["SwapFree"] == mi["SwapTotal"] - st["VmSwap"]
    assert v["pswpout"] == st["VmSwap"] // 4
    assert v["pgsteal_anon"] == v["pswpout"]
    assert v["pgscan_anon"] >= v["pgsteal_anon"]
    assert t.smaps_rollup()["Swap"] == st["VmSwap"]
    checked(m)


def test_swap_in_is_a_major_fault_and_frees_the_slot():
    m = machine(swap="64MiB")
    t = m.spawn("hog")
    a = t.mmap(96 * MiB)
    t.touch(a, 96 * MiB)
    before = m.vmstat()
    swapped = t.status()["VmSwap"]
    majflt = t.counters()["maj_flt"]
    t.touch(a, 8 * MiB, write=False)          # the first pages written were the first swapped
    v = m.vmstat()
    n = v["pswpin"] - before["pswpin"]
    assert n == 2048
    assert v["pgmajfault"] - before["pgmajfault"] == n
    assert t.counters()["maj_flt"] - majflt == n
    st = t.status()
    assert st["RssAnon"] + st["VmSwap"] == 96 * 1024
    assert st["VmSwap"] == swapped - 4 * n + 4 * (v["pswpout"] - before["pswpout"])
    checked(m)


def test_swapped_in_page_is_writable_without_another_fault():
    """An entry only one PTE holds comes back writable (do_swap_page's exclusive case)."""
    m = machine(swap="64MiB")
    t = m.spawn("hog")
    a = t.mmap(96 * MiB)
    t.touch(a, 96 * MiB)
    assert t.page_table()[a] & 1 == 0                 # swapped out: not present
    t.touch(a, 4096, write=False)
    e = t.page_table()[a]
    assert e & 1 and e & 2                            # present and writable
    assert not e & 0x40                               # a read fault: not dirty


def test_munmap_and_exit_free_swap_slots():
    m = machine(swap="64MiB")
    t = m.spawn("hog")
    a = t.mmap(96 * MiB)
    t.touch(a, 96 * MiB)
    assert m.meminfo()["SwapFree"] < m.meminfo()["SwapTotal"]
    t.munmap(a, 48 * MiB)
    checked(m)
    t.exit()
    assert m.meminfo()["SwapFree"] == m.meminfo()["SwapTotal"]
    checked(m)


def test_fork_shares_swap_entries():
    m = machine(swap="64MiB")
    t = m.spawn("parent")
    a = t.mmap(96 * MiB)
    t.touch(a, 96 * MiB)
    swapped = t.status()["VmSwap"]
    free = m.meminfo()["SwapFree"]
    c = t.fork()
    assert c.status()["VmSwap"] == swapped
    assert m.meminfo()["SwapFree"] == free            # one slot, two references
    r = c.smaps_rollup()
    assert r["Swap"] == swapped and abs(r["SwapPss"] - swapped // 2) <= 4
    checked(m)
    # the child reads a shared entry: one page, mapped read-only in both
    assert t.page_table()[a] & 1 == 0 and c.page_table()[a] & 1 == 0
    c.touch(a, 4096, write=False)
    pe, ce = t.page_table()[a], c.page_table()[a]
    assert pe & 3 == 1 and ce & 3 == 1                # present, read-only
    assert pe & PFN == ce & PFN
    checked(m)
    c.touch(a, 4096)                                  # a write copies on write
    pe, ce = t.page_table()[a], c.page_table()[a]
    assert pe & 3 == 1 and ce & 3 == 3 and pe & PFN != ce & PFN
    c.exit()
    checked(m)


def test_thp_is_split_before_swap_out():
    m = machine(swap="64MiB", thp_enabled="always")
    t = m.spawn("hog")
    a = t.mmap(96 * MiB)
    t.touch(a, 96 * MiB)
    v = m.vmstat()
    assert v["oom_kill"] == 0
    assert v["thp_swpout_fallback"] > 0
    assert v["thp_split_page"] >= v["thp_swpout_fallback"]
    st = t.status()
    assert st["RssAnon"] + st["VmSwap"] == 96 * 1024
    checked(m)


def test_mlocked_pages_are_never_swapped():
    m = machine(swap="64MiB")
    t = m.spawn("locker")
    locked = t.mmap(16 * MiB)
    t.mlock(locked, 16 * MiB)
    hog = m.spawn("hog")
    a = hog.mmap(64 * MiB)
    hog.touch(a, 64 * MiB)
    assert t.status()["VmSwap"] == 0
    assert t.status()["RssAnon"] == 16 * 1024
    assert hog.status()["VmSwap"] > 0
    checked(m)


def test_swap_full_ends_in_oom():
    m = machine(swap="16MiB")
    t = m.spawn("hog")
    a, b = t.mmap(64 * MiB), t.mmap(64 * MiB)
    t.touch(a, 64 * MiB)
    with pytest.raises(OOMKilled):
        t.touch(b, 64 * MiB)
    v = m.vmstat()
    assert v["oom_kill"] == 1
    assert v["pswpout"] >= 4000


def test_oom_score_counts_swap_entries():
    m = machine(swap="64MiB")
    t = m.spawn("hog")
    a = t.mmap(96 * MiB)
    t.touch(a, 96 * MiB)
    st = t.status()
    assert st["VmSwap"] > 0
    want = oom.proc_oom_score(st["RssAnon"] // 4, st["VmSwap"] // 4, st["VmPTE"] * 1024, 0,
                              m.totalpages, kernel="6.18")
    assert t.oom_score == want


def test_commit_limit_includes_swap():
    m = machine(swap="64MiB", overcommit_memory=2)
    assert m.meminfo()["CommitLimit"] == 32 * 1024 + 64 * 1024 - 4


def test_memcg_v2_swap_max_limits_swap_then_oom():
    m = machine(swap="64MiB", memory="128MiB", cgroup_version=2)
    cg = m.cgroup("/box", create=True)
    cg.write("memory.max", "16M")
    cg.write("memory.swap.max", "8M")
    t = m.spawn("boxed")
    cg.attach(t)
    a = t.mmap(20 * MiB)
    t.touch(a, 20 * MiB)                          # 16 MiB in memory, 4 MiB in swap
    assert int(cg.read("memory.current")) <= 16 * MiB
    assert int(cg.read("memory.swap.current")) == t.status()["VmSwap"] * 1024 >= 4 * MiB
    checked(m)
    b = t.mmap(16 * MiB)
    with pytest.raises(OOMKilled):
        t.touch(b, 16 * MiB)                      # 32 MiB would need 16 MiB of swap
    ev = dict(line.split() for line in cg.read("memory.swap.events").splitlines())
    assert int(ev["max"]) > 0 and ev["max"] == ev["fail"] and ev["high"] == "0"
    assert int(cg.read("memory.swap.current")) == 0      # the victim's slots were freed
    checked(m)


def test_memcg_swap_charge_moves_with_the_page():
    m = machine(swap="64MiB", memory="128MiB", cgroup_version=2)
    cg = m.cgroup("/box", create=True)
    cg.write("memory.max", "16M")
    t = m.spawn("boxed")
    cg.attach(t)
    a = t.mmap(24 * MiB)
    t.touch(a, 24 * MiB)
    cur, sw = int(cg.read("memory.current")), int(cg.read("memory.swap.current"))
    assert cur <= 16 * MiB and sw >= 8 * MiB
    t.touch(a, 24 * MiB, write=False)            # everything read back once
    assert int(cg.read("memory.current")) <= 16 * MiB
    assert int(cg.read("memory.swap.current")) == t.status()["VmSwap"] * 1024
    assert m.vmstat()["pswpin"] > 0
    checked(m)


def test_memcg_v1_memsw_limit_counts_memory_and_swap():
    m = machine(swap="64MiB", memory="128MiB", kernel="3.10", cgroup_version=1)
    cg = m.cgroup("/box", create=True)
    cg.write("memory.limit_in_bytes", "16M")
    cg.write("memory.memsw.limit_in_bytes", "24M")
    t = m.spawn("boxed")
    cg.attach(t)
    a = t.mmap(20 * MiB)
    t.touch(a, 20 * MiB)
    memsw = int(cg.read("memory.memsw.usage_in_bytes"))
    assert memsw == 20 * MiB                  # every page, in memory or in swap
    assert int(cg.read("memory.usage_in_bytes")) <= 16 * MiB
    b = t.mmap(8 * MiB)
    with pytest.raises(OOMKilled):
        t.touch(b, 8 * MiB)                       # 28 MiB > memory+swap limit of 24 MiB
    checked(m)


def test_madv_pageout_swaps_out_the_range():
    m = machine(swap="64MiB")
    t = m.spawn("p")
    a = t.mmap(16 * MiB)
    t.touch(a, 16 * MiB)
    t.madvise(a, 8 * MiB, MADV_PAGEOUT)
    st = t.status()
    assert st["VmSwap"] == 8 * 1024 and st["RssAnon"] == 8 * 1024
    assert m.vmstat()["pswpout"] == 2048
    assert m.vmstat()["pgsteal_anon"] == 0            # not reclaim: madvise's own work
    checked(m)


def test_madv_pageout_without_swap_does_nothing():
    m = machine()
    t = m.spawn("p")
    a = t.mmap(16 * MiB)
    t.touch(a, 16 * MiB)
    t.madvise(a, 16 * MiB, MADV_PAGEOUT)
    assert t.status()["RssAnon"] == 16 * 1024


def test_madv_pageout_splits_a_thp():
    m = machine(swap="64MiB", thp_enabled="always")
    t = m.spawn("p")
    a = t.mmap(8 * MiB)
    t.touch(a, 8 * MiB)
    thp = t.smaps_rollup()["AnonHugePages"]
    assert thp > 0
    t.madvise(a, 8 * MiB, MADV_PAGEOUT)
    st = t.status()
    assert st["RssAnon"] == 0 and st["VmSwap"] == 8 * 1024
    assert m.vmstat()["thp_swpout_fallback"] == thp // 2048
    checked(m)


@pytest.mark.parametrize("advice", [MADV_COLD, MADV_PAGEOUT])
def test_madv_cold_and_pageout_are_5_4_and_later(advice):
    m = machine(kernel="4.13")
    t = m.spawn("p")
    a = t.mmap(MiB)
    with pytest.raises(OSError) as e:
        t.madvise(a, MiB, advice)
    assert e.value.errno == errno.EINVAL


def test_madv_pageout_on_locked_vma_is_einval():
    m = machine(swap="64MiB")
    t = m.spawn("p")
    a = t.mmap(MiB)
    t.mlock(a, MiB)
    with pytest.raises(OSError) as e:
        t.madvise(a, MiB, MADV_PAGEOUT)
    assert e.value.errno == errno.EINVAL


def test_madv_cold_pages_are_reclaimed_first():
    m = machine(swap="64MiB")
    t = m.spawn("p")
    hot = t.mmap(20 * MiB)
    cold = t.mmap(20 * MiB)
    t.touch(hot, 20 * MiB)
    t.touch(cold, 20 * MiB)
    t.madvise(cold, 20 * MiB, MADV_COLD)
    extra = t.mmap(24 * MiB)
    t.touch(extra, 24 * MiB)
    pt = t.page_table()

    def swapped(start):                          # swap entries in [start, start + 20 MiB)
        return sum(1 for va, e in pt.items() if start <= va < start + 20 * MiB and not e & 1)
    assert swapped(cold) > 0
    assert swapped(hot) == 0
    checked(m)


def test_khugepaged_collapse_swaps_pages_in():
    m = machine(swap="64MiB", thp_enabled="madvise")
    t = m.spawn("p")
    a = t.mmap(4 * MiB)
    base = (a + (2 * MiB - 1)) & ~(2 * MiB - 1)
    t.touch(base, 2 * MiB)
    t.madvise(base, 64 * 4096, MADV_PAGEOUT)          # 64 = max_ptes_swap
    assert t.status()["VmSwap"] == 256
    before = m.vmstat()["pswpin"]
    t.madvise(base, 2 * MiB, 25)                      # MADV_COLLAPSE
    assert t.status()["VmSwap"] == 0
    assert t.smaps_rollup()["AnonHugePages"] == 2048
    assert m.vmstat()["pswpin"] - before == 64
    checked(m)


def test_swap_runs_are_deterministic():
    def run():
        m = machine(swap="64MiB", thp_enabled="always")
        t = m.spawn("hog")
        a = t.mmap(96 * MiB)
        t.touch(a, 96 * MiB)
        t.touch(a, 32 * MiB, write=False)
        return m.vmstat(), t.page_table(), t.counters()["time_ns"]
    assert run() == run()


# ---- random streams: the invariants hold after every operation ------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_OPS = st.lists(st.tuples(
    st.sampled_from(["touch", "read", "fork", "exit", "munmap", "pageout", "cold", "mprotect",
                     "collapse"]),
    st.integers(0, 1), st.integers(0, 47), st.integers(1, 24)), min_size=4, max_size=14)


@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(_OPS, st.sampled_from(["never", "always"]))
def test_random_streams_keep_swap_consistent(ops, thp):
    """Random touches, forks, exits, unmaps, MADV_PAGEOUT/COLD, mprotect and MADV_COLLAPSE on a
    machine that must swap: every invariant (slot counts against swap PTEs, VmSwap, the memcg
    counters, mapcounts) holds after each operation."""
    m = machine(memory="32MiB", swap="32MiB", thp_enabled=thp)
    root = m.spawn("p")
    base = root.mmap(48 * MiB)
    tasks = [root]
    for name, who, first, n in ops:
        t = tasks[who % len(tasks)]
        a, ln = base + first * MiB, min(n, 48 - first) * MiB
        try:
            if name == "touch":
                t.touch(a, ln)
            elif name == "read":
                t.touch(a, ln, write=False)
            elif name == "fork" and len(tasks) < 3:
                tasks.append(t.fork())
            elif name == "exit" and t is not root:
                t.exit()
                tasks.remove(t)
            elif name == "munmap":
                t.munmap(a, MiB)
            elif name == "pageout":
                t.madvise(a, ln, MADV_PAGEOUT)
            elif name == "cold":
                t.madvise(a, ln, MADV_COLD)
            elif name == "mprotect":
                t.mprotect(a, MiB, 1)
            elif name == "collapse":
                t.madvise(a & ~(2 * MiB - 1), 2 * MiB, 25)
        except OOMKilled:
            tasks = [x for x in tasks if x.pid in {y.pid for y in m.tasks()}]
            if not tasks:
                break
        except (OSError, SegmentationFault):
            pass                               # a hole, a read-only range, EAGAIN/EINVAL
        checked(m)
    for t in tasks:
        t.exit()
    assert m.meminfo()["SwapFree"] == m.meminfo()["SwapTotal"]
    checked(m)
