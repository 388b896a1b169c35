"""Memory cgroups: charging, limits, reclaim, memcg OOM, the control files (v2 and v1)."""
from __future__ import annotations

import errno
import os

import pytest

from mmcore import Config, Machine
from mmcore.check import check_files, check_invariants
from mmcore.machine import MemcgOOMWait, OOMKilled
from mmcore.memcg import V1_UNLIMITED

MiB = 1 << 20


def machine(**kw) -> Machine:
    """A machine whose pid 1 (init, which the OOM killer never picks) is already running."""
    kw.setdefault("memory", "256MiB")
    kw.setdefault("thp_enabled", "never")
    m = Machine(Config(**kw))
    m.spawn("init")
    return m


def checked(m: Machine) -> None:
    check_invariants(m)
    check_files(m)


def others(m: Machine) -> list[int]:
    """The pids of the tasks left besides init."""
    return [t.pid for t in m.tasks() if t.pid != 1]


def anon(t, size, write=True):
    a = t.mmap(size)
    t.touch(a, size, write=write)
    return a


def test_anon_pages_are_charged_to_the_cgroup_of_the_mm_and_uncharged_on_exit():
    m = machine()
    cg = m.cgroup("/a", create=True)
    t = m.spawn("a")
    cg.attach(t)
    assert cg.procs == [t.pid] and t.cgroup is cg and m.cgroup("/").procs == [1]
    anon(t, 8 * MiB)
    assert cg.current == 8 * MiB
    assert cg.stat()["anon"] == 8 * MiB and cg.stat()["file"] == 0
    assert m.cgroup("/").current >= 8 * MiB          # hierarchical: the root counts it too
    t.exit()
    assert cg.current == 0 and cg.stat()["anon"] == 0
    assert cg.peak == 8 * MiB


def test_reads_of_the_zero_page_charge_nothing_and_cow_copies_do():
    m = machine()
    cg = m.cgroup("/a", create=True)
    t = m.spawn("a")
    cg.attach(t)
    a = anon(t, 4 * MiB, write=False)
    assert cg.current == 0
    child = t.fork()
    assert child.cgroup is cg
    t.touch(a, 4 * MiB)                   # the zero page replaced by charged copies
    assert cg.current == 4 * MiB
    child.touch(a, 1 * MiB)
    assert cg.current == 5 * MiB
    checked(m)


def test_charges_stay_where_they_were_when_a_task_moves():
    m = machine()
    a, b = m.cgroup("/a", create=True), m.cgroup("/b", create=True)
    t = m.spawn("t")
    a.attach(t)
    x = anon(t, 2 * MiB)
    b.attach(t)
    anon(t, 3 * MiB)
    assert (a.current, b.current) == (2 * MiB, 3 * MiB)
    t.munmap(x, 2 * MiB)
    assert (a.current, b.current) == (0, 3 * MiB)
    checked(m)


def test_hierarchical_limit_triggers_a_memcg_oom_that_kills_inside_the_subtree_only():
    m = machine()
    parent = m.cgroup("/p", create=True)
    parent.write("memory.max", "16M")
    kid = parent.mkdir("k")
    outside = m.spawn("outside")
    anon(outside, 32 * MiB)                   # bigger, but not in the OOMing memcg
    hog = m.spawn("hog")
    kid.attach(hog)
    small = m.spawn("small")
    parent.attach(small)
    anon(small, 2 * MiB)
    anon(hog, 10 * MiB)
    with pytest.raises(OOMKilled):
        anon(hog, 8 * MiB)                    # past the parent's limit: hog is the biggest
    assert outside.pid in others(m) and small.pid in others(m)
    ev = parent.events()
    assert ev["oom"] == 1 and ev["oom_kill"] == 1 and ev["max"] >= 1
    assert kid.events(local=True)["oom_kill"] == 1 and parent.events(local=True)["oom_kill"] == 0
    assert m.vmstat()["oom_kill"] == 1
    d = "\n".join(m.dmesg())
    assert "oom-kill:constraint=CONSTRAINT_MEMCG" in d and "oom_memcg=/p,task_memcg=/p/k" in d
    assert f"Memory cgroup out of memory: Killed process {hog.pid} (hog)" in d
    assert parent.current == 2 * MiB
    checked(m)


def test_a_user_fault_restarts_after_the_victim_dies():
    m = machine()
    cg = m.cgroup("/a", create=True)
    cg.write("memory.max", 12 * MiB)
    big, t = m.spawn("big"), m.spawn("t")
    cg.attach(big)
    cg.attach(t)
    anon(big, 10 * MiB)
    anon(t, 4 * MiB)                          # big dies, t's fault restarts and completes
    assert others(m) == [t.pid]
    assert cg.current == 4 * MiB


def test_page_cache_is_charged_and_reclaimed_before_any_oom():
    m = machine()
    m.mount("/mnt", "ext4", "64MiB")
    cg = m.cgroup("/a", create=True)
    cg.write("memory.max", "8M")
    t = m.spawn("w")
    cg.attach(t)
    fd = t.open("/mnt/f", os.O_RDWR | os.O_CREAT)
    t.pwrite(fd, 0, 4 * MiB)
    t.fsync(fd)
    assert cg.stat()["file"] == 4 * MiB
    t.pread(fd, 0, 4 * MiB)
    fd2 = t.open("/mnt/g", os.O_RDWR | os.O_CREAT)
    t.pwrite(fd2, 0, 6 * MiB)                # clean pages of f go to make room
    assert cg.current <= 8 * MiB
    st = cg.stat()
    assert st["pgsteal"] > 0 and st["pgscan"] >= st["pgsteal"]
    assert cg.events()["oom"] == 0
    checked(m)


@pytest.mark.parametrize("model, killed", [("reliable", False), ("current", True),
                                           ("legacy", True)])
def test_a_write_at_the_limit_fails_or_kills_as_the_oom_model_says(model, killed):
    m = machine(kernel="3.12" if model == "reliable" else "6.18" if model == "current" else "3.10",
                cgroup_version=1 if model != "current" else 2)
    m.mount("/mnt", "tmpfs", "64MiB")
    cg = m.cgroup("/a", create=True)
    cg.write("memory.limit_in_bytes" if model != "current" else "memory.max", 8 * MiB)
    big, w = m.spawn("big"), m.spawn("w")
    cg.attach(big)
    cg.attach(w)
    anon(big, 6 * MiB)
    fd = w.open("/mnt/f", os.O_RDWR | os.O_CREAT)
    if killed:
        assert w.pwrite(fd, 0, 4 * MiB) == 4 * MiB
        assert big.pid not in others(m)
    else:
        n = w.pwrite(fd, 0, 4 * MiB)          # tmpfs pages cannot be reclaimed: a short write
        assert 0 < n < 4 * MiB
        with pytest.raises(OSError) as e:
            w.pwrite(fd, n, 4096)
        assert e.value.errno == errno.ENOMEM
        assert big.pid in others(m)
    checked(m)


def test_oom_kill_disable_makes_a_faulting_task_wait():
    m = machine(kernel="3.12", cgroup_version=1)
    cg = m.cgroup("/a", create=True)
    cg.write("memory.limit_in_bytes", "4M")
    cg.write("memory.oom_control", "1")
    t = m.spawn("t")
    cg.attach(t)
    with pytest.raises(MemcgOOMWait):
        anon(t, 8 * MiB)
    assert cg.read("memory.oom_control").startswith("oom_kill_disable 1\nunder_oom 1\n")


def test_oom_group_kills_the_whole_cgroup():
    m = machine()
    cg = m.cgroup("/job", create=True)
    cg.write("memory.max", "16M")
    cg.write("memory.oom.group", "1")
    tasks = [m.spawn(f"w{i}") for i in range(3)]
    for t in tasks:
        cg.attach(t)
    anon(tasks[0], 4 * MiB)
    anon(tasks[1], 2 * MiB)
    with pytest.raises(OOMKilled):
        anon(tasks[2], 12 * MiB)
    assert others(m) == []
    ev = cg.events()
    # the victim is killed (and counted) twice: by the OOM killer, then by the group scan,
    # which still finds its mm (mem_cgroup_scan_tasks -> __oom_kill_process)
    assert ev["oom_kill"] == 4 and ev["oom_group_kill"] == 1
    assert cg.current == 0
    checked(m)


def test_memory_high_reclaims_back_under_it_and_counts_high_events():
    m = machine()
    m.mount("/mnt", "ext4", "64MiB")
    cg = m.cgroup("/a", create=True)
    cg.write("memory.high", "4M")
    t = m.spawn("t")
    cg.attach(t)
    fd = t.open("/mnt/f", os.O_RDWR | os.O_CREAT)
    t.pwrite(fd, 0, 8 * MiB)
    t.fsync(fd)
    t.write_sysctl("vm.drop_caches", 1)
    assert cg.current == 0
    t.pread(fd, 0, 8 * MiB)                   # each page read in is charged; high is kept
    assert cg.current <= 4 * MiB + 4096
    assert cg.events()["high"] > 0 and cg.events()["max"] == 0
    checked(m)


def test_lowering_memory_max_reclaims_then_kills():
    m = machine()
    cg = m.cgroup("/a", create=True)
    t = m.spawn("t")
    cg.attach(t)
    anon(t, 8 * MiB)
    cg.write("memory.max", "4M")              # anon cannot be reclaimed without swap: OOM
    assert others(m) == [] and cg.current == 0
    assert cg.events()["oom_kill"] == 1


def test_v1_limit_write_below_usage_is_ebusy_and_changes_nothing():
    m = machine(kernel="3.10")
    cg = m.cgroup("/a", create=True)
    t = m.spawn("t")
    cg.attach(t)
    anon(t, 8 * MiB)
    with pytest.raises(OSError) as e:
        cg.write("memory.limit_in_bytes", "4M")
    assert e.value.errno == errno.EBUSY
    assert cg.read("memory.limit_in_bytes") == f"{V1_UNLIMITED}\n"


def test_control_file_text_v2():
    m = machine()
    cg = m.cgroup("/a", create=True)
    assert cg.read("memory.max") == "max\n"
    cg.write("memory.max", "10M")
    assert cg.read("memory.max") == f"{10 * MiB}\n"
    cg.write("memory.max", "10001")           # rounded down to pages
    assert cg.read("memory.max") == "8192\n"
    cg.write("memory.max", "max")
    assert cg.read("memory.events") == ("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"
                                        "oom_group_kill 0\n")
    t = m.spawn("t")
    cg.write("cgroup.procs", str(t.pid))
    assert cg.read("cgroup.procs") == f"{t.pid}\n"
    assert "anon 0\nfile 0\n" in cg.read("memory.stat")


def test_control_file_text_v1():
    m = machine(kernel="3.10")
    cg = m.cgroup("/a", create=True)
    assert cg.read("memory.oom_control") == "oom_kill_disable 0\nunder_oom 0\n"
    cg.write("memory.limit_in_bytes", "8M")
    assert cg.read("memory.limit_in_bytes") == f"{8 * MiB}\n"
    cg.write("memory.limit_in_bytes", "-1")
    assert cg.read("memory.limit_in_bytes") == f"{V1_UNLIMITED}\n"
    t = m.spawn("t")
    cg.attach(t)
    anon(t, 1 * MiB)
    st = cg.read("memory.stat")
    assert f"rss {MiB}\n" in st and f"total_rss {MiB}\n" in st
    assert cg.read("memory.usage_in_bytes") == f"{MiB}\n"


@pytest.mark.parametrize("call, code", [
    (lambda cg: cg.read("memory.limit_in_bytes"), errno.ENOENT),      # a v1 file on v2
    (lambda cg: cg.write("memory.max", "lots"), errno.EINVAL),
    (lambda cg: cg.write("memory.max", -5), errno.EINVAL),
    (lambda cg: cg.write("memory.current", "5"), errno.EACCES),
    (lambda cg: cg.write("memory.oom.group", "2"), errno.EINVAL),
    (lambda cg: cg.write("cgroup.procs", "99999"), errno.ESRCH),
    (lambda cg: cg.machine.cgroup("/a", create=True), errno.EEXIST),
    (lambda cg: cg.machine.cgroup("/x/y", create=True), errno.ENOENT),
    (lambda cg: cg.machine.cgroup("/nope"), errno.ENOENT),
])
def test_bad_input_is_the_kernels_errno_and_names_the_file(call, code):
    m = machine()
    cg = m.cgroup("/a", create=True)
    with pytest.raises(OSError) as e:
        call(cg)
    assert e.value.errno == code
    assert "/a" in str(e.value) or "cgroup" in str(e.value)


def test_rmdir_needs_an_empty_cgroup():
    m = machine()
    cg = m.cgroup("/a", create=True)
    t = m.spawn("t")
    cg.attach(t)
    with pytest.raises(OSError) as e:
        cg.rmdir()
    assert e.value.errno == errno.EBUSY
    m.cgroup("/").attach(t)
    cg.rmdir()
    with pytest.raises(OSError):
        m.cgroup("/a")


def test_config_rejects_bad_cgroup_and_oom_settings():
    with pytest.raises(ValueError, match="cgroup_version"):
        Config(cgroup_version=3).validate()
    with pytest.raises(ValueError, match="cgroup_version: kernel 3.10 has no cgroup v2"):
        Config(kernel="3.10", cgroup_version=2).validate()
    with pytest.raises(ValueError, match="oom_model"):
        Config(oom_model="gentle").validate()
    assert Config(kernel="3.10").oom == "legacy" and Config(kernel="3.12").oom == "reliable"
    assert Config(kernel="4.13").oom == "reliable" and Config().oom == "current"
    assert Config(kernel="3.10").cgroups == 1 and Config().cgroups == 2


def test_snapshots_keep_the_memcg_of_every_frame():
    m = machine()
    cg = m.cgroup("/a", create=True)
    t = m.spawn("t")
    cg.attach(t)
    a = anon(t, 2 * MiB)
    m2 = Machine.restore(m.snapshot())
    t2 = m2.tasks()[1]
    t2.munmap(a, 2 * MiB)
    assert m2.cgroup("/a").current == 0 and cg.current == 2 * MiB


@pytest.mark.parametrize("protect", [True, False])
def test_memory_min_keeps_a_cgroups_pages_from_reclaim(protect):
    m = machine()
    m.mount("/mnt", "ext4", "64MiB")
    p = m.cgroup("/p", create=True)
    a, b = p.mkdir("a"), p.mkdir("b")
    if protect:
        a.write("memory.min", "4M")
    ta, tb = m.spawn("ta"), m.spawn("tb")
    a.attach(ta)
    b.attach(tb)
    for t, name in ((ta, "fa"), (tb, "fb")):
        fd = t.open(f"/mnt/{name}", os.O_RDWR | os.O_CREAT)
        t.pwrite(fd, 0, 4 * MiB if name == "fa" else 12 * MiB)
        t.fsync(fd)
    ta.write_sysctl("vm.drop_caches", 1)
    p.write("memory.max", "10M")
    fa = ta.open("/mnt/fa", os.O_RDONLY)
    ta.pread(fa, 0, 4 * MiB)
    fb = tb.open("/mnt/fb", os.O_RDONLY)
    tb.pread(fb, 0, 12 * MiB)                 # past /p's limit: reclaim in /p's subtree
    assert p.current <= 10 * MiB
    if protect:
        assert a.current == 4 * MiB           # below memory.min: never reclaimed
    else:
        assert a.current < 4 * MiB            # the round-robin walk took some of /p/a's pages
    checked(m)
