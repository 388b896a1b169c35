"""Workingset detection: shadow entries of evicted page-cache pages, refault distances, and the
memory stalls of thrashing (mm/workingset.c, kernels/workingset.py)."""
from __future__ import annotations

import os

import pytest

from mmcore import Config, Machine
from mmcore import psi as PSI
from mmcore.kernels import consts as K

MiB = 1 << 20
WS = ("workingset_refault_file", "workingset_activate_file", "workingset_restore_file")
# a sequential 1 MiB read (6.18) brings in its 256 pages as one window (a read larger than the
# 128 KiB window may read up to io_pages, 320 here) and, from its mark, the next 256 pages
AHEAD = 256 + 256
# before 4.10 the window stays at 32 pages: the read's pages and one 32-page window ahead
AHEAD_BY_KERNEL = {"3.15": 256 + 32, "4.13": 512, "6.18": AHEAD}


def machine(**kw) -> Machine:
    kw.setdefault("memory", "32MiB")
    m = Machine(Config(thp_enabled="never", **kw))
    m.mount("/d", "ext4", size="1GiB")
    return m


def read(t, fd: int, start: int, size: int) -> None:
    for off in range(start, start + size, MiB):
        t.pread(fd, off, MiB)


def written(t, path: str, size: int) -> int:
    fd = t.open(path, os.O_RDWR | os.O_CREAT)
    t.pwrite(fd, 0, size)
    t.fsync(fd)
    return fd


def ws(m: Machine) -> tuple[int, int, int]:
    v = m.vmstat()
    return tuple(v.get(k, 0) for k in WS)


parse = PSI.parse_pressure


def test_refault_of_a_long_evicted_page_is_counted_not_activated():
    m = machine()
    t = m.spawn("reader")
    fd = written(t, "/d/big", 48 * MiB)            # more than memory: the first pages go
    assert ws(m) == (0, 0, 0)                        # evictions alone refault nothing
    assert m.vmstat()["nr_active_file"] == 0
    t.pread(fd, 0, MiB)
    # the read's 256 pages come back from disk, and the asynchronous window after them (AHEAD
    # pages in all), each with its shadow; with no active list the workingset size is 0 and no
    # refault distance is within it
    assert ws(m) == (AHEAD, 0, 0)
    # a file read for the first time has no shadows
    fresh = written(t, "/d/fresh", MiB)
    t.ftruncate(fresh, 0)
    t.ftruncate(fresh, MiB)
    before = ws(m)
    t.pread(fresh, 0, MiB)
    assert ws(m) == before


def hot_and_streams(m: Machine, rounds: int):
    """A hot file (read three times: on the active list) and short streams of another file that
    push the active list's tail out, each followed by another pass over the hot file."""
    t = m.spawn("reader")
    hot = written(t, "/d/hot", 20 * MiB)
    cold = written(t, "/d/cold", 96 * MiB)
    for _ in range(3):
        read(t, hot, 0, 20 * MiB)
    out = [ws(m)]
    for i in range(rounds):
        read(t, cold, i * 12 * MiB, 12 * MiB)
        read(t, hot, 0, 20 * MiB)
        out.append(ws(m))
    return m, t, out


def test_hot_pages_pushed_out_briefly_come_back_active():
    m, _, out = hot_and_streams(machine(), 4)
    # the hot file's first reads refault pages the cold file's writes evicted long before:
    # far beyond any workingset size, so none is activated
    assert out[0][0] > 0 and out[0][1:] == (0, 0)
    refault, activate, restore = (b - a for a, b in zip(out[0], out[-1]))
    # the hot file's deactivated pages (PG_workingset) were evicted by the stream and read
    # again soon: within the active list's size, so they refault straight onto the active list
    assert activate > 0 and restore > 0
    assert restore <= activate <= refault
    # every step counts only what it must: activations and restores grow each round
    assert all(b[1] > a[1] and b[2] > a[2] for a, b in zip(out[1:], out[2:]))
    # the hot file is resident on the active list again at the end
    s = m.state
    head = int(s.lru[K.LV_HEAD + K.LRU_ACTIVE_FILE, 0])
    assert head >= 0 and s.fr_flags[head] & K.PG_active
    v = m.vmstat()
    assert v["nr_active_file"] >= 4 * 1024


def test_the_same_run_without_shadows_activates_nothing():
    """3.12 had no workingset detection: the same run refaults nothing and the hot file only
    comes back to the active list by being read twice."""
    m, _, out = hot_and_streams(machine(kernel="3.12"), 2)
    assert not any(k.startswith("workingset") for k in m.vmstat())
    assert not m.state.shadow.any()
    assert int(m.state.lru[K.LV_AGE].sum()) > 0      # activations age the lruvec all the same


def test_truncation_drops_the_files_shadows():
    m = machine()
    t = m.spawn("reader")
    fd = written(t, "/d/big", 48 * MiB)
    assert m.state.shadow[K.SH_KEY].any()
    t.ftruncate(fd, 0)
    t.ftruncate(fd, 48 * MiB)                       # the same indexes, now a hole
    t.pread(fd, 0, MiB)
    assert ws(m) == (0, 0, 0)


def test_a_write_replaces_a_shadow_without_a_refault():
    m = machine()
    t = m.spawn("reader")
    fd = written(t, "/d/big", 48 * MiB)
    t.pwrite(fd, 0, MiB)                             # __GFP_WRITE: the shadow goes, no refault
    assert ws(m) == (0, 0, 0)
    t.fsync(fd)
    t.pread(fd, 0, MiB)                              # cached: no read, no refault
    assert ws(m) == (0, 0, 0)
    t.pread(fd, MiB, MiB)                            # the next MiB still has its shadows
    assert ws(m)[0] == AHEAD


@pytest.mark.parametrize("kernel, names", [
    ("3.12", ()),
    ("3.15", ("workingset_refault", "workingset_activate")),
    ("4.13", ("workingset_refault", "workingset_activate")),
    ("6.18", WS + ("workingset_refault_anon", "workingset_activate_anon",
                   "workingset_restore_anon")),
])
def test_counter_names_follow_the_kernel_version(kernel, names):
    m = machine(kernel=kernel)
    t = m.spawn("reader")
    fd = written(t, "/d/big", 48 * MiB)
    t.pread(fd, 0, MiB)
    got = {k: v for k, v in m.vmstat().items() if k.startswith("workingset")}
    assert tuple(got) == names
    if names:
        assert got[names[0]] == AHEAD_BY_KERNEL[kernel]   # the same refaults under each name


def test_memory_stat_counts_refaults_in_the_readers_cgroup():
    m = machine(memory="64MiB", cgroup_version=2)
    box = m.cgroup("/box", create=True)
    other = m.cgroup("/other", create=True)
    box.write("memory.max", "16M")
    t = m.spawn("reader")
    box.attach(t)
    fd = written(t, "/d/big", 24 * MiB)             # memcg reclaim evicts the first pages
    t.pread(fd, 0, MiB)
    st = box.stat()
    assert st["workingset_refault_file"] == AHEAD
    assert m.cgroup("/").stat()["workingset_refault_file"] == AHEAD   # hierarchical
    assert other.stat()["workingset_refault_file"] == 0
    assert m.vmstat()["workingset_refault_file"] == AHEAD


def test_refault_thrashing_is_a_memory_stall():
    m, t, out = hot_and_streams(machine(), 0)
    calm = parse(m.pressure())["some"]["total"]
    stall0 = int(m.state.task[K.T_STALL_PS, t._ti])
    m2, t2, out2 = hot_and_streams(machine(), 3)
    assert out2[-1][2] > 0                           # restores happened
    # the reads that restored workingset pages waited on the disk as memory stalls
    assert int(m2.state.task[K.T_STALL_PS, t2._ti]) > stall0
    assert parse(m2.pressure())["some"]["total"] > calm


def test_kswapd_stalls_count_in_the_root_group_only():
    # windows of 32 pages (max_sectors_kb 128): kswapd keeps ahead of the stream's allocations
    # (1 MiB windows come in bursts that catch it up and reclaim directly)
    m = machine(memory="64MiB", cgroup_version=2, max_sectors_kb=128)
    box = m.cgroup("/box", create=True)
    t = m.spawn("streamer")
    box.attach(t)
    fd = written(t, "/d/big", 128 * MiB)
    read(t, fd, 0, 128 * MiB)
    v = m.vmstat()
    assert v["pgsteal_kswapd"] > 0 and v["pgsteal_direct"] == 0
    assert int(m.state.task[K.T_STALL_PS, t._ti]) == 0      # the task itself never stalled
    assert int(m.state.fgs[K.FG_KSWAPD_BUSY_PS]) > 0
    root = parse(m.pressure())
    assert root["some"]["total"] > 0                 # kswapd's work
    assert parse(box.read("memory.pressure"))["some"]["total"] == 0
    # kswapd's stall is at most its work, in microseconds
    assert root["some"]["total"] <= int(m.state.fgs[K.FG_KSWAPD_BUSY_PS]) // 10**6 + 1


# ---- anonymous pages: shadows in the swap slots (5.9+) ---------------------------------------------

def swapper(kernel: str = "6.18", **kw):
    m = Machine(Config(memory="64MiB", swap="128MiB", thp_enabled="never", kernel=kernel, **kw))
    m.spawn("init")
    return m, m.spawn("app")


def anon(m: Machine) -> tuple[int, int, int]:
    v = m.vmstat()
    return tuple(v.get(f"workingset_{k}_anon", 0) for k in ("refault", "activate", "restore"))


def test_every_swap_in_is_an_anon_refault():
    m, t = swapper()
    a = t.mmap(96 * MiB)
    t.touch(a, 96 * MiB)                             # 32 MiB more than RAM: pages swap out
    before = m.vmstat()["pswpin"]
    t.touch(a, 96 * MiB, write=False)
    v = m.vmstat()
    assert v["pswpin"] > before
    refault, activate, restore = anon(m)
    assert refault == v["pswpin"]                    # each swap-in found its slot's shadow
    assert restore <= activate <= refault


def test_a_cyclic_working_set_larger_than_memory_is_not_activated():
    """Pages read in a loop over more than memory come back after more evictions than the
    workingset holds: refaults, none recent (Linux's answer to a scan it cannot cache)."""
    m, t = swapper()
    a = t.mmap(160 * MiB)
    t.touch(a, 160 * MiB)
    for _ in range(2):
        t.touch(a, 160 * MiB, write=False)
    refault, activate, _ = anon(m)
    assert refault > 2 * 16384
    assert activate < refault // 4


def test_a_hot_set_pushed_out_briefly_is_restored_and_stalls():
    m, t = swapper()
    hot = t.mmap(24 * MiB)
    cold = t.mmap(96 * MiB)
    t.touch(hot, 24 * MiB)
    t.touch(cold, 48 * MiB)
    for i in range(4):
        t.touch(hot, 24 * MiB, write=False)          # referenced: workingset pages
        t.touch(cold, 48 * MiB, write=False)         # pressure that swaps part of hot out
    refault, activate, restore = anon(m)
    assert activate > 0 and restore > 0
    assert parse(m.pressure())["some"]["total"] > 0


def test_no_anon_workingset_before_5_9():
    m, t = swapper(kernel="4.13")
    a = t.mmap(96 * MiB)
    t.touch(a, 96 * MiB)
    t.touch(a, 96 * MiB, write=False)
    assert m.vmstat()["pswpin"] > 0
    assert not any(k.endswith("_anon") and k.startswith("workingset") for k in m.vmstat())
    assert not m.state.swp[K.SWP_AGE].any()
