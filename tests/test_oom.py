"""The OOM killer's arithmetic (mmcore.oom) against the plain-Python model written from the
kernel sources, on the machine, and against this host's live /proc/PID/oom_score."""
import errno
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mmcore
from mmcore import oom, procfs

from .reference import oom_model as R

KERNELS = ("3.10", "3.12", "3.15", "4.13", "4.16", "4.17", "5.8", "5.9", "6.18")


@settings(max_examples=400, deadline=None)
@given(rss=st.integers(0, 1 << 36), swap=st.integers(0, 1 << 34),
       pgt=st.integers(0, 1 << 30).map(lambda x: x * 4096),
       adj=st.integers(-1000, 1000), total=st.integers(1, 1 << 40),
       kernel=st.sampled_from(KERNELS), cap=st.booleans(), eligible=st.booleans())
def test_scalar_formulas_match_the_model(rss, swap, pgt, adj, total, kernel, cap, eligible):
    kw = dict(kernel=kernel, cap_sys_admin=cap, eligible=eligible)
    assert oom.oom_badness(rss, swap, pgt, adj, total, **kw) == R.oom_badness(
        rss, swap, pgt, adj, total, kernel, cap, eligible)
    assert oom.proc_oom_score(rss, swap, pgt, adj, total, **kw) == R.proc_oom_score(
        rss, swap, pgt, adj, total, kernel, cap, eligible)


@pytest.mark.parametrize("kernel", KERNELS)
def test_arrays_match_scalars(kernel):
    rng = np.random.default_rng(7)
    n = 20_000
    rss = rng.integers(0, 1 << 24, n)
    swap = rng.integers(0, 1 << 20, n)
    pgt = rng.integers(0, 1 << 14, n) * 4096
    adj = rng.integers(-1000, 1001, n)
    adj[::97] = -1000
    cap = rng.integers(0, 2, n).astype(bool)
    total = 1 << 22
    b = oom.oom_badness(rss, swap, pgt, adj, total, kernel=kernel, cap_sys_admin=cap)
    s = oom.proc_oom_score(rss, swap, pgt, adj, total, kernel=kernel, cap_sys_admin=cap)
    for i in range(0, n, 331):
        assert b[i] == R.oom_badness(int(rss[i]), int(swap[i]), int(pgt[i]), int(adj[i]), total,
                                     kernel, bool(cap[i]))
        assert s[i] == R.proc_oom_score(int(rss[i]), int(swap[i]), int(pgt[i]), int(adj[i]),
                                        total, kernel, bool(cap[i]))


def test_known_values_and_the_kernel_quirks():
    T = 4_194_304                                    # 16 GiB of RAM, no swap
    # the division comes first: adj * (totalpages / 1000), not adj * totalpages / 1000
    assert oom.oom_badness(0, 0, 0, 1, 1999) == 1
    assert oom.oom_badness(0, 0, 0, 1, 999) == 0
    # 6.18: negative badness, no clamp; oom_score truncates toward zero
    assert oom.oom_badness(100, 0, 0, -500, T) == 100 - 500 * 4194
    assert oom.proc_oom_score(100, 0, 0, -500, T) == 334        # (1000 - 499) * 2 / 3
    # badness -6291: * 1000 / T is -1.4999; C truncates to -1 (floor would give -2 and 665)
    assert oom.oom_badness(2097, 0, 0, -2, T) == -6291
    assert oom.proc_oom_score(2097, 0, 0, -2, T) == 666
    # 3.10: clamped to 1; the score truncates to 0 below 0.1% of memory
    assert oom.oom_badness(100, 0, 0, -500, T, kernel="3.10") == 1
    assert oom.proc_oom_score(100, 0, 0, -500, T, kernel="3.10") == 0
    # ineligible: 0 before 5.9, LONG_MIN since (printed as 0)
    assert oom.oom_badness(100, 0, 0, -1000, T, kernel="4.13") == 0
    assert oom.oom_badness(100, 0, 0, -1000, T) == oom.LONG_MIN
    assert oom.proc_oom_score(100, 0, 0, -1000, T) == 0
    # the root bonus: -30 adj units (3.10), -3% of points (3.14-4.16), none (4.17+)
    assert oom.oom_badness(200_000, 0, 0, 0, T, kernel="3.10", cap_sys_admin=True) == 200_000 - 30 * 4194
    assert oom.oom_badness(10_000, 0, 0, 0, T, kernel="3.10", cap_sys_admin=True) == 1   # clamped
    assert oom.oom_badness(10_000, 0, 0, 0, T, kernel="4.13", cap_sys_admin=True) == 9_700
    assert oom.oom_badness(10_000, 0, 0, 0, T, kernel="4.17", cap_sys_admin=True) == 10_000


def test_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="oom_score_adj"):
        oom.oom_badness(1, 0, 0, 1001, 1000)
    with pytest.raises(ValueError, match="totalpages"):
        oom.oom_badness(1, 0, 0, 0, 0)
    with pytest.raises(TypeError, match="rss_pages"):
        oom.oom_badness(1.5, 0, 0, 0, 1000)
    with pytest.raises(ValueError, match="kernel"):
        oom.oom_badness(1, 0, 0, 0, 1000, kernel="six")


def test_victim_selection_ties():
    b = np.array([5, 9, 9, 3])
    assert oom.select_victim(b) == 2                  # 5.9+: the last of equal scores
    assert oom.select_victim(b, kernel="4.13") == 1   # before: the first leader keeps it
    assert oom.select_victim(np.array([oom.LONG_MIN] * 3)) == -1
    assert oom.select_victim(np.array([0, 0]), kernel="3.10") == -1


def test_machine_scores_from_its_own_accounting(machine):
    m = machine(memory="1GiB", thp_enabled="never")
    init = m.spawn("init")
    small, big = m.spawn("small"), m.spawn("big")
    for t, mib in ((small, 8), (big, 64)):
        a = t.mmap(mib << 20)
        t.touch(a, mib << 20)
    total = m.totalpages
    for t in (small, big):
        st = t.status()
        want = R.proc_oom_score((st["VmRSS"]) // 4, 0, st["VmPTE"] * 1024, 0, total)
        assert t.oom_score == want
    assert init.oom_score == 0                       # global init is never a victim
    assert m.oom_victim() is big
    big.oom_score_adj = -1000
    assert big.oom_score == 0 and m.oom_victim() is small
    with pytest.raises(OSError) as e:
        big.oom_score_adj = 1001
    assert e.value.errno == errno.EINVAL
    thread = small.clone_thread()
    thread.oom_score_adj = 500                       # one value per thread group
    assert small.oom_score_adj == 500


# ---- against the live kernel ----------------------------------------------------------------------

CHILD = """
import os, sys, mmap
n = int(sys.argv[1]) << 20
m = mmap.mmap(-1, n)
for i in range(0, n, 4096):
    m[i] = 1
open(f"/proc/{os.getpid()}/oom_score_adj", "w").write(sys.argv[2])
sys.stdout.write("ready\\n"); sys.stdout.flush()
sys.stdin.read()
"""


@pytest.fixture
def stopped_children():
    if sys.platform != "linux" or not os.path.exists("/proc/self/oom_score"):
        pytest.skip("needs a Linux /proc")
    procs = []
    for mib, adj in ((8, 0), (64, 0), (32, 300), (16, -200), (4, -1000)):
        if adj < 0 and os.geteuid() != 0:
            adj = 0                                  # lowering needs CAP_SYS_RESOURCE
        p = subprocess.Popen([sys.executable, "-c", CHILD, str(mib), str(adj)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready"
        os.kill(p.pid, signal.SIGSTOP)
        procs.append(p)
    time.sleep(0.05)
    yield [p.pid for p in procs]
    for p in procs:
        os.kill(p.pid, signal.SIGCONT)
        p.kill()
        p.wait()


def test_snapshot_scores_equal_the_live_kernels(stopped_children):
    snap = procfs.snapshot(pids=stopped_children)
    assert [t.pid for t in snap.tasks] == stopped_children
    assert snap.changed == []                        # stopped: nothing moves
    live = [t.oom_score for t in snap.tasks]
    assert list(snap.expected_oom_scores()) == live
    m = mmcore.Machine.from_proc(snap)
    assert sorted(t.pid for t in m.tasks()) == sorted(stopped_children)
    for pt in snap.tasks:
        assert m._tasks[pt.pid].oom_score == pt.oom_score
    # the biggest unprotected child is the victim, as the kernel would choose among them
    want = max((t for t in snap.tasks if t.oom_score_adj > -1000),
               key=lambda t: (oom.oom_badness(t.rss_pages, t.swap_kb // 4, t.pte_kb * 1024,
                                              t.oom_score_adj, snap.totalpages, kernel=snap.kernel)))
    assert m.oom_victim().pid == want.pid
    # and after a workload: a new process (oom_score_adj 500, above every child's) takes the lead
    t = m.spawn("workload", oom_score_adj=500)
    a = t.mmap(256 << 20)
    t.touch(a, 256 << 20)
    assert m.oom_victim() is t


def test_whole_system_snapshot_reports_movers_instead_of_failing():
    if sys.platform != "linux":
        pytest.skip("needs a Linux /proc")
    snap = procfs.snapshot()
    assert snap.tasks and snap.totalpages > 0
    exp = snap.expected_oom_scores()
    moved = set(snap.changed)
    mismatched = [t.pid for t, e in zip(snap.tasks, exp) if t.oom_score != e and t.pid not in moved]
    # a process can change between its score and its counters being read; those are the only
    # mismatches allowed, and they are few
    assert len(mismatched) <= max(2, len(snap.tasks) // 20)


# ---- the OOM killer on the machine ------------------------------------------------------------

def _hog_machine(**kw):
    kw.setdefault("min_free_kbytes", 128)
    kw.setdefault("overcommit_memory", 1)    # the hogs map more than the heuristic would allow
    return mmcore.Machine(mmcore.Config(memory="64MiB", thp_enabled="never", **kw))


def test_a_fault_that_finds_no_memory_kills_the_biggest_and_restarts():
    m = _hog_machine()
    m.spawn("init")                                    # pid 1: never a victim
    big = m.spawn("big")
    a = big.mmap(40 << 20)
    big.touch(a, 40 << 20)
    small = m.spawn("small")
    b = small.mmap(40 << 20)
    small.touch(b, 40 << 20)                           # runs out half way: big dies, it goes on
    assert small.smaps(b)["Rss"] == 40 << 10
    assert big.pid not in {t.pid for t in m.tasks()}
    assert m.vmstat()["oom_kill"] == 1
    log = m.dmesg()
    assert log[0] == ("small invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP"
                      "|__GFP_ZERO), order=0, oom_score_adj=0")
    assert "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes " \
           "swapents oom_score_adj name" in log
    assert any(line.startswith("oom-kill:constraint=CONSTRAINT_NONE,") and
               line.endswith(f",task=big,pid={big.pid},uid=0") for line in log)
    killed = [line for line in log if line.startswith("Out of memory: Killed process")]
    assert len(killed) == 1 and killed[0].startswith(f"Out of memory: Killed process {big.pid} (big) "
                                                     "total-vm:")
    assert "anon-rss:40960kB" in killed[0] and killed[0].endswith("oom_score_adj:0")
    assert log[-1].startswith(f"oom_reaper: reaped process {big.pid} (big)")
    from mmcore.check import check_invariants
    check_invariants(m)


@pytest.mark.parametrize("kernel", ["3.10", "4.13", "6.18"])
def test_before_5_1_a_child_is_sacrificed_for_its_parent(kernel):
    """oom_kill_process before 5.1: the chosen process's child with its own mm and the highest
    badness dies instead ("Kill process ... or sacrifice child"), however small it is."""
    m = mmcore.Machine(mmcore.Config(memory="64MiB", kernel=kernel, thp_enabled="never",
                                     overcommit_memory=1))
    m.spawn("init")
    parent = m.spawn("parent")
    kids = [parent.fork(), parent.fork()]
    for kid, size in zip(kids, (2 << 20, 6 << 20)):
        x = kid.mmap(size)
        kid.touch(x, size)
    a = parent.mmap(36 << 20)
    parent.touch(a, 36 << 20)
    hog = m.spawn("hog")
    b = hog.mmap(24 << 20)
    hog.touch(b, 24 << 20)                  # 68 MiB in all: one OOM kill or more
    log = m.dmesg()
    killed = [int(re.search(r"Killed process (\d+)", line)[1]) for line in log
              if "Killed process" in line]
    alive = {t.pid for t in m.tasks()}
    assert hog.pid in alive and killed
    if kernel == "6.18":
        assert killed == [parent.pid]       # the biggest, whatever its children
        return
    chosen = [line for line in log if "or sacrifice child" in line]
    assert len(chosen) == len(killed)
    assert all(c.startswith(f"Out of memory: Kill process {parent.pid} (parent) score ")
               for c in chosen)             # the parent is chosen every time ...
    assert killed[0] == kids[1].pid         # ... and its biggest child dies first
    assert killed[:2] == [kids[1].pid, kids[0].pid][:len(killed[:2])]
    if parent.pid in killed:                # only once it has no child left
        assert killed.index(parent.pid) == 2


def test_the_allocating_task_itself_can_be_the_victim():
    m = _hog_machine()
    m.spawn("init")
    hog = m.spawn("hog")
    a = hog.mmap(128 << 20)
    with pytest.raises(mmcore.OOMKilled) as e:
        hog.touch(a, 128 << 20)
    assert e.value.pid == hog.pid and m.vmstat()["oom_kill"] == 1
    assert m.meminfo()["MemFree"] > 40 << 10           # its memory came back


def test_oom_score_adj_steers_the_victim_and_minus_1000_protects():
    m = _hog_machine()
    m.spawn("init")
    keep = m.spawn("keep", oom_score_adj=-1000)
    a = keep.mmap(40 << 20)
    keep.touch(a, 40 << 20)
    bait = m.spawn("bait", oom_score_adj=1000)
    c = bait.mmap(8 << 20)
    bait.touch(c, 8 << 20)
    new = m.spawn("new")
    b = new.mmap(24 << 20)
    new.touch(b, 16 << 20)                              # bait dies first (adj 1000)
    assert [t.comm for t in m.tasks()] == ["init", "keep", "new"]
    with pytest.raises(mmcore.OOMKilled):
        new.touch(b, 24 << 20)                          # nothing left but keep (protected) and new
    assert keep.smaps(a)["Rss"] == 40 << 10


def test_no_victim_panics():
    m = _hog_machine()
    init = m.spawn("init")
    a = init.mmap(128 << 20)
    with pytest.raises(mmcore.OutOfMemoryPanic, match="deadlocked on memory"):
        init.touch(a, 128 << 20)


def test_without_the_oom_killer_the_fault_fails_with_enomem():
    m = _hog_machine(oom_killer=False)
    m.spawn("init")
    hog = m.spawn("hog")
    a = hog.mmap(128 << 20)
    with pytest.raises(OSError) as e:
        hog.touch(a, 128 << 20)
    assert e.value.errno == errno.ENOMEM and m.vmstat()["oom_kill"] == 0


def test_the_batch_runner_runs_the_oom_killer_too():
    m = _hog_machine()
    m.spawn("init")
    big, small = m.spawn("big"), m.spawn("small")
    A, B = 0x7F0000000000, 0x7E0000000000
    F = mmcore.MAP_PRIVATE | mmcore.MAP_ANONYMOUS | mmcore.MAP_FIXED
    RW = mmcore.PROT_READ | mmcore.PROT_WRITE
    res = m.run([(big, "mmap", A, 40 << 20, RW, F), (big, "touch", A, 40 << 20, 4096, 1),
                 (small, "mmap", B, 40 << 20, RW, F), (small, "touch", B, 40 << 20, 4096, 1),
                 (big, "touch", A, 40 << 20, 4096, 0)])
    # big's 40 MiB came first; small's touch ran out, the OOM killer took big, small finished
    assert res[0].tolist() == [0, 0, 0, 0, 1007]
    assert small.smaps(B)["Rss"] == 40 << 10
    assert m.vmstat()["oom_kill"] == 1 and big.pid not in {t.pid for t in m.tasks()}
    from mmcore.check import check_invariants
    check_invariants(m)
    m2 = _hog_machine()
    m2.spawn("init")
    hog = m2.spawn("hog")
    res = m2.run([(hog, "mmap", A, 128 << 20, RW, F), (hog, "touch", A, 128 << 20, 4096, 1),
                  (hog, "munmap", A, 4096)])
    assert res[0].tolist() == [0, 1007, 1007]          # killed in its own touch
