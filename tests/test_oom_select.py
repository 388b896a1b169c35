"""select_bad_process over task arrays against a plain-Python transcription of each kernel version's
scan (mm/oom_kill.c), the fast oom_badness path against the generic one, and the kernel's OOM
dmesg lines against the format strings of 3.10, 4.19 and 6.x (and lines from real logs)."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mmcore
from mmcore import oom
from mmcore.kernels import consts as K
from mmcore.kernels import oom as KO

from .reference import oom_model as R

ULONG_MAX = (1 << 64) - 1
VERSIONS = ("3.10", "3.13", "3.14", "4.7", "4.8", "4.19", "5.2", "5.3", "5.8", "5.9", "6.18")


# ---- a machine's task arrays, built from plain descriptions ---------------------------------------

def build(tasks, mms, base=None):
    """task/mm arrays from dicts: task {pid, tgid, mm, adj, flags, alive}, mm {anon, file, shmem,
    swap, pgt, skip}."""
    task = np.zeros((K.NR_T_FIELDS, len(tasks)), np.int64)
    for i, t in enumerate(tasks):
        task[K.T_PID, i] = t["pid"]
        task[K.T_TGID, i] = t["tgid"]
        task[K.T_MM, i] = t["mm"]
        task[K.T_ADJ, i] = t["adj"]
        task[K.T_FLAGS, i] = t["flags"]
        task[K.T_ALIVE, i] = t["alive"]
    mm = np.zeros((K.NR_MM_FIELDS, max(1, len(mms))), np.int64)
    for j, m in enumerate(mms):
        mm[K.MM_ANONPAGES, j] = m["anon"]
        mm[K.MM_FILEPAGES, j] = m["file"]
        mm[K.MM_SHMEMPAGES, j] = m["shmem"]
        mm[K.MM_SWAPENTS, j] = m["swap"]
        mm[K.MM_PGTABLES, j] = m["pgt"]
        mm[K.MM_FLAGS, j] = (1 << K.MMF_OOM_SKIP) if m["skip"] else 0
    return task, mm


def T(pid, mm, adj=0, flags=0, tgid=None, alive=1):
    return dict(pid=pid, tgid=pid if tgid is None else tgid, mm=mm, adj=adj, flags=flags, alive=alive)


def M(anon=0, file=0, shmem=0, swap=0, pgt=0, skip=False):
    return dict(anon=anon, file=file, shmem=shmem, swap=swap, pgt=pgt, skip=skip)


def select(tasks, mms, kernel="6.18", order=None, totalpages=1_000_000, memcg_oom=False, base=None):
    task, mm = build(tasks, mms)
    if order is None:
        order = np.arange(len(tasks))
    return oom.select_bad_process(order, task, mm, base, totalpages=totalpages, kernel=kernel,
                                  memcg_oom=memcg_oom)


# ---- the reference: each era's scan written out as the C reads ------------------------------------

def _era(kernel):
    v = tuple(int(x) for x in kernel.split("."))
    return ("3.10" if v < (3, 14) else "3.14" if v < (4, 8) else "4.8" if v < (5, 3)
            else "5.3" if v < (5, 9) else "5.9")


def ref_select(tasks, mms, order, kernel, totalpages, memcg_oom, base=None):
    """(index, points, abort) with the kernel's own points (ULONG_MAX for an origin task)."""
    era = _era(kernel)

    def unkillable(t):                                  # oom_unkillable_task
        return t["tgid"] == 1 or t["flags"] & K.TF_KTHREAD

    def badness(i, t, skip_check):                      # oom_badness on the task's mm
        if t["mm"] < 0:
            return 0 if era != "5.9" else R.LONG_MIN
        m = mms[t["mm"]]
        b = [0] * 5 if base is None else [int(base[r][i]) for r in range(5)]
        rss = m["anon"] + m["file"] + m["shmem"] + b[0] + b[1] + b[2]
        ok = not (skip_check and m["skip"])
        return R.oom_badness(rss, m["swap"] + b[3], (m["pgt"] + b[4]) * 4096, t["adj"],
                             totalpages, kernel, bool(t["flags"] & K.TF_CAP_SYS_ADMIN), ok)

    chosen, chosen_points = None, (R.LONG_MIN if era == "5.9" else 0)
    leader = lambda i: tasks[i]["pid"] == tasks[i]["tgid"]   # noqa: E731
    for i in order:
        t = tasks[i]
        if not t["alive"]:
            continue
        if era in ("3.10", "3.14"):                     # do_each_thread, oom_scan_process_thread
            if unkillable(t):
                continue
            if t["flags"] & K.TF_MEMDIE:
                return -1, 0, True
            if t["mm"] < 0:
                continue
            if t["flags"] & K.TF_OOM_ORIGIN:
                chosen, chosen_points = i, ULONG_MAX
                continue
            if t["flags"] & K.TF_EXITING:
                return -1, 0, True
            points = badness(i, t, False) & 0xFFFFFFFF  # unsigned int points
            if era == "3.10":
                if points > chosen_points:
                    chosen, chosen_points = i, points
                continue
            if not points or points < chosen_points:
                continue
            if points == chosen_points and leader(chosen):
                continue
            chosen, chosen_points = i, points
            continue
        # oom_evaluate_task; for_each_process (or, 4.8-5.2 memcg, every thread)
        if not leader(i) and not (era == "4.8" and memcg_oom):
            continue
        if unkillable(t):
            continue
        if t["flags"] & K.TF_MEMDIE:
            if t["mm"] < 0 or mms[t["mm"]]["skip"]:
                continue
            return -1, 0, True
        if t["flags"] & K.TF_OOM_ORIGIN:
            chosen, chosen_points = i, (R.LONG_MIN * -1 - 1 if era == "5.9" else ULONG_MAX)
            continue
        points = badness(i, t, True)
        if era == "5.9":
            if points == R.LONG_MIN or points < chosen_points:
                continue
        else:
            if not points or points < chosen_points:
                continue
            if era == "4.8" and points == chosen_points and leader(chosen):
                continue
        chosen, chosen_points = i, points
    if chosen is None:
        return -1, 0, False
    return chosen, min(chosen_points, oom.LONG_MAX), False


@st.composite
def machines(draw):
    """Thread groups (1-3 threads sharing the leader's mm), small counters so scores tie often,
    and now and then init, kernel threads, victims, origins, exiting tasks and reaped mms."""
    tasks, mms = [], []
    pid = draw(st.sampled_from([1, 2, 100]))
    for _ in range(draw(st.integers(1, 7))):
        kthread = draw(st.integers(0, 9)) == 0
        if kthread:
            mmi = -1
        else:
            mmi = len(mms)
            mms.append(M(draw(st.integers(0, 6)), draw(st.integers(0, 3)), draw(st.integers(0, 2)),
                         draw(st.integers(0, 3)), draw(st.integers(0, 2)),
                         draw(st.integers(0, 7)) == 0))
        adj = draw(st.sampled_from([-1000, -2, 0, 0, 0, 1, 3, 1000]))
        tgid = pid
        for j in range(draw(st.integers(1, 3))):
            flags = K.TF_KTHREAD if kthread else 0
            flags |= draw(st.sampled_from([0] * 12 + [K.TF_MEMDIE, K.TF_OOM_ORIGIN, K.TF_EXITING,
                                                     K.TF_CAP_SYS_ADMIN]))
            own_mm = mmi if not (j == 0 and draw(st.integers(0, 11)) == 0) else -1
            tasks.append(T(pid, own_mm, adj, flags, tgid=tgid,
                           alive=int(draw(st.integers(0, 11)) != 0)))
            pid += 1
    order = list(range(len(tasks)))
    if draw(st.booleans()):
        order = draw(st.permutations(order))
    return tasks, mms, order


@settings(max_examples=300, deadline=None)
@given(m=machines(), kernel=st.sampled_from(VERSIONS), memcg_oom=st.booleans(),
       totalpages=st.sampled_from([999, 1000, 4000, 1_000_000]), with_base=st.booleans(),
       seed=st.integers(0, 2**32 - 1))
def test_selection_matches_each_versions_scan(m, kernel, memcg_oom, totalpages, with_base, seed):
    tasks, mms, order = m
    base = None
    if with_base:
        base = np.random.default_rng(seed).integers(0, 4, (5, len(tasks)))
    got = select(tasks, mms, kernel, np.array(order), totalpages, memcg_oom, base)
    assert got == ref_select(tasks, mms, order, kernel, totalpages, memcg_oom, base)


def _plain_tasks(rng, n, ties):
    tasks = [T(100 + i, i, int(rng.integers(-1000, 1001))) for i in range(n)]
    hi = 3 if ties else 1 << 20
    mms = [M(int(rng.integers(0, hi)), int(rng.integers(0, hi)), 0, int(rng.integers(0, hi)),
             int(rng.integers(0, 3))) for _ in range(n)]
    if ties:
        for t in tasks:
            t["adj"] = int(rng.choice([-1000, 0, 0, 1]))
    return tasks, mms


@pytest.mark.parametrize("kernel", ["3.10", "4.19", "6.18"])
@pytest.mark.parametrize("ties", [False, True])
def test_the_victim_has_the_highest_badness_and_ties_go_as_the_version_says(kernel, ties):
    rng = np.random.default_rng(11)
    total = 8000 if ties else 1 << 22
    for _ in range(40):
        tasks, mms = _plain_tasks(rng, int(rng.integers(1, 60)), ties)
        i, points, abort = select(tasks, mms, kernel, totalpages=total)
        b = oom.oom_badness([m["anon"] + m["file"] for m in mms], [m["swap"] for m in mms],
                            [m["pgt"] * 4096 for m in mms], [t["adj"] for t in tasks], total,
                            kernel=kernel)
        eligible = b != (oom.LONG_MIN if kernel == "6.18" else 0)
        assert not abort
        if not eligible.any():
            assert i == -1
            continue
        best = np.flatnonzero(eligible & (b == b[eligible].max()))
        # 5.3+: points < chosen skips, so the last of equal scores; before, the first leader
        assert i == (best[-1] if kernel == "6.18" else best[0])
        assert points == b[i] and tasks[i]["adj"] != -1000


def test_ties_in_detail():
    mms = [M(anon=10) for _ in range(3)]
    leaders = [T(100, 0), T(101, 1), T(102, 2)]
    assert select(leaders, mms, "6.18")[0] == 2          # last
    assert select(leaders, mms, "5.3")[0] == 2           # tie rule dropped in 5.3
    assert select(leaders, mms, "5.2")[0] == 0           # chosen leader kept
    assert select(leaders, mms, "3.10")[0] == 0          # points > chosen_points
    # threads of one group (same mm, same score), the leader last in scan order
    group = [T(201, 0, tgid=200), T(202, 0, tgid=200), T(200, 0)]
    mm1 = [M(anon=10)]
    assert select(group, mm1, "3.10")[0] == 0            # first thread
    assert select(group, mm1, "3.14")[0] == 2            # no leader chosen yet: the later one
    group = [T(200, 0), T(201, 0, tgid=200)]
    assert select(group, mm1, "3.14")[0] == 0            # the leader is kept
    # a memcg OOM scans threads from 4.8 to 5.2, processes from 5.3; global ones leaders only
    threads = [T(301, 0, tgid=300), T(300, 1)]
    mm2 = [M(anon=50), M(anon=10)]
    assert select(threads, mm2, "4.19", memcg_oom=True)[0] == 0
    assert select(threads, mm2, "4.19")[0] == 1
    assert select(threads, mm2, "5.3", memcg_oom=True)[0] == 1


def test_select_victim_over_badness_values_agrees_with_the_scan():
    rng = np.random.default_rng(5)
    for kernel in ("3.10", "4.19", "5.3", "5.8", "6.18"):
        for _ in range(30):
            tasks, mms = _plain_tasks(rng, int(rng.integers(1, 25)), ties=True)
            b = oom.oom_badness([m["anon"] + m["file"] for m in mms], [m["swap"] for m in mms],
                                [m["pgt"] * 4096 for m in mms], [t["adj"] for t in tasks], 8000,
                                kernel=kernel)
            assert oom.select_victim(b, kernel=kernel) == select(tasks, mms, kernel, totalpages=8000)[0]
    assert oom.select_victim(np.array([4, 9, 9]), kernel="5.8") == 2
    assert oom.select_victim(np.array([4, 9, 9]), kernel="5.2") == 1


def test_unkillable_tasks_are_never_chosen():
    mms = [M(anon=1 << 20), M(anon=1 << 20), M(anon=5), M(anon=1 << 21)]
    tasks = [T(1, 0), T(2, 1, flags=K.TF_KTHREAD), T(3, 2), T(4, 3, adj=-1000),
             T(5, 0, tgid=1)]                             # a thread of init
    for kernel in VERSIONS:
        assert select(tasks, mms, kernel)[0] == 2, kernel
    assert select(tasks[:2] + tasks[3:], mms, "6.18") == (-1, 0, False)
    assert select(tasks[:2] + tasks[3:], mms, "3.10") == (-1, 0, False)


def test_negative_badness_is_chosen_only_from_5_9():
    mms = [M(anon=10)]
    tasks = [T(100, 0, adj=-999)]
    assert select(tasks, mms, "6.18", totalpages=1 << 22) == (0, 10 - 999 * 4194, False)
    assert select(tasks, mms, "4.19", totalpages=1 << 22) == (0, 1, False)   # clamped to 1


def test_an_exiting_victim_makes_the_scan_wait():
    mms = [M(anon=100), M(anon=1), M(anon=5)]
    victim = T(101, 1, flags=K.TF_MEMDIE)
    tasks = [T(100, 0), victim, T(102, 2)]
    for kernel in VERSIONS:
        assert select(tasks, mms, kernel) == (-1, 0, True), kernel
    # from 4.8 a victim whose mm the oom_reaper finished (MMF_OOM_SKIP) is passed over
    mms[1]["skip"] = True
    assert select(tasks, mms, "6.18") == (0, 100, False)
    assert select(tasks, mms, "4.8") == (0, 100, False)
    assert select(tasks, mms, "4.7") == (-1, 0, True)
    # and an MMF_OOM_SKIP mm scores nothing from 4.8 on
    tasks = [T(100, 0), T(101, 1)]
    mms = [M(anon=1), M(anon=100, skip=True)]
    assert select(tasks, mms, "6.18")[0] == 0 and select(tasks, mms, "4.7")[0] == 1
    # PF_EXITING aborted the scan before 4.8 only
    tasks = [T(100, 0), T(101, 1, flags=K.TF_EXITING)]
    mms = [M(anon=100), M(anon=1)]
    assert select(tasks, mms, "3.10") == (-1, 0, True)
    assert select(tasks, mms, "6.18") == (0, 100, False)


def test_oom_task_origin_is_selected_first():
    mms = [M(anon=1 << 20), M(anon=1), M(anon=1 << 21)]
    tasks = [T(100, 0), T(101, 1, flags=K.TF_OOM_ORIGIN), T(102, 2)]
    for kernel in VERSIONS:
        assert select(tasks, mms, kernel) == (1, oom.LONG_MAX, False), kernel
    tasks[2]["flags"] = K.TF_OOM_ORIGIN                   # the last origin wins
    assert select(tasks, mms, "6.18")[0] == 2 and select(tasks, mms, "3.10")[0] == 2
    tasks[0]["flags"] = K.TF_MEMDIE                       # a victim still aborts, origin or not
    assert select(tasks, mms, "6.18") == (-1, 0, True)


def test_baselines_and_dead_tasks():
    tasks = [T(100, 0), T(101, 1), T(102, 2, alive=0)]
    mms = [M(anon=10), M(anon=20), M(anon=1000)]
    base = np.zeros((5, 3), np.int64)
    base[2, 0] = 15                                       # shmem pages from a /proc snapshot
    assert select(tasks, mms, "6.18")[0] == 1
    assert select(tasks, mms, "6.18", base=base) == (0, 25, False)
    base[4, 1] = 6                                        # page-table pages
    assert select(tasks, mms, "6.18", base=base) == (1, 26, False)


def test_the_scan_on_a_machines_own_arrays():
    m = mmcore.Machine(mmcore.Config(memory="256MiB", thp_enabled="never"))
    m.spawn("init")
    small, big = m.spawn("small"), m.spawn("big")
    for t, mib in ((small, 4), (big, 16)):
        a = t.mmap(mib << 20)
        t.touch(a, mib << 20)
    s = m.state
    order = np.array([t._ti for t in sorted(m._tasks.values(), key=lambda t: t.pid)])
    i, points, abort = oom.select_bad_process(order, s.task, s.mm, totalpages=m.totalpages,
                                              kernel=m.config.kernel)
    assert not abort and i == big._ti and points == big.oom_badness()
    assert m.oom_victim() is big


def test_bad_input_names_the_argument_and_the_value():
    tasks, mms = [T(100, 0), T(101, 1)], [M(anon=1), M(anon=2)]
    task, mm = build(tasks, mms)
    with pytest.raises(ValueError, match=r"order: expected task indices in 0\.\.1, got 7 at position 1"):
        oom.select_bad_process(np.array([0, 7]), task, mm, totalpages=1000)
    with pytest.raises(ValueError, match=r"got -1 at position 0"):
        oom.select_bad_process(np.array([-1]), task, mm, totalpages=1000)
    # checked past an abort too
    task[K.T_FLAGS, 0] = K.TF_MEMDIE
    with pytest.raises(ValueError, match="order"):
        oom.select_bad_process(np.array([0, 9]), task, mm, totalpages=1000)
    task[K.T_FLAGS, 0] = 0
    task[K.T_MM, 1] = 5
    with pytest.raises(ValueError, match=r"T_MM of task 1 \(order position 1\) is 5"):
        oom.select_bad_process(np.array([0, 1]), task, mm, totalpages=1000)
    task[K.T_MM, 1] = 1
    with pytest.raises(ValueError, match=r"order: expected a 1-D integer"):
        oom.select_bad_process(np.array([0.5]), task, mm, totalpages=1000)
    with pytest.raises(ValueError, match=r"base: expected an integer array of shape \(5, 2\)"):
        oom.select_bad_process(np.array([0]), task, mm, np.zeros((5, 3)), totalpages=1000)
    with pytest.raises(ValueError, match=r"totalpages: expected an integer >= 1, got 0"):
        oom.select_bad_process(np.array([0]), task, mm, totalpages=0)
    with pytest.raises(ValueError, match=r"task: expected an integer array of shape"):
        oom.select_bad_process(np.array([0]), task[:3], mm, totalpages=1000)
    with pytest.raises(ValueError, match="kernel"):
        oom.select_bad_process(np.array([0]), task, mm, totalpages=1000, kernel="2.6")


def test_one_specialisation_per_kernel():
    select([T(100, 0)], [M(anon=1)])
    oom.select_bad_process(np.array([0], np.int32), *build([T(100, 0)], [M(anon=1)]),
                           totalpages=1000)
    assert len(KO.select_bad_process.signatures) == 1


# ---- the fast oom_badness path -------------------------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(n=st.integers(2, 40), rule=st.sampled_from([0, 1, 2, 3]), seed=st.integers(0, 2**32 - 1),
       total=st.integers(1, 1 << 40), per_task_flags=st.booleans(), extreme=st.booleans())
def test_fast_path_equals_the_generic_kernel(n, rule, seed, total, per_task_flags, extreme):
    rng = np.random.default_rng(seed)
    hi = 1 << 40 if extreme else 1 << 22
    rss, swap = rng.integers(0, hi, n), rng.integers(0, hi, n)
    pgt = rng.integers(0, hi, n) * (1 if extreme else 4096)
    adj = rng.integers(-1000, 1001, n)
    adj[rng.random(n) < 0.2] = -1000
    cap = rng.integers(0, 2, n if per_task_flags else 1)
    elig = rng.integers(0, 2, n if per_task_flags else 1)
    a, b = np.empty(n, np.int64), np.empty(n, np.int64)
    sa, sb = np.empty(n, np.int64), np.empty(n, np.int64)
    assert KO.badness_fast(rss, swap, pgt, adj, cap, elig, total, rule, a, sa) == -1
    assert KO.badness_array(rss, swap, pgt, adj, cap, elig, np.array([total]), rule, b, sb) == -1
    assert (a == b).all() and (sa == sb).all()


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 30), seed=st.integers(0, 2**32 - 1), nbad=st.integers(1, 3))
def test_fast_path_reports_the_first_bad_argument_and_index(n, seed, nbad):
    rng = np.random.default_rng(seed)
    arrs = [rng.integers(0, 100, n), rng.integers(0, 100, n), rng.integers(0, 100, n) * 4096,
            rng.integers(-1000, 1001, n)]
    for _ in range(nbad):
        j, i = int(rng.integers(0, 4)), int(rng.integers(0, n))
        arrs[j][i] = rng.choice([-1, -(1 << 40)]) if j < 3 else rng.choice([-1001, 1001, 5000])
    one, out, sc = np.ones(1, np.int64), np.empty(n, np.int64), np.empty(0, np.int64)
    fast = KO.badness_fast(*arrs, one, one, 1 << 20, 3, out, sc)
    slow = KO.badness_array(*arrs, one, one, np.array([1 << 20]), 3, out, sc)
    assert fast == slow >= 0
    with pytest.raises(ValueError) as e:
        oom.oom_badness(*arrs, 1 << 20)
    name = ("rss_pages", "swap_pages", "pgtables_bytes", "oom_score_adj")[fast >> 32]
    assert str(e.value).startswith(f"{name}: expected values")
    assert str(e.value).endswith(f"got {arrs[fast >> 32][fast & 0xFFFFFFFF]} (task {fast & 0xFFFFFFFF})")


def test_fast_path_scores_and_shapes():
    rng = np.random.default_rng(3)
    rss = rng.integers(0, 1 << 22, (50, 4))
    adj = rng.integers(-1000, 1001, (50, 4))
    swap, pgt = np.zeros((50, 4), np.int32), np.full((50, 4), 4096)
    for kernel in ("3.10", "4.13", "6.18"):
        s = oom.proc_oom_score(rss, swap, pgt, adj, 1 << 22, kernel=kernel, cap_sys_admin=adj > 0)
        assert s.shape == (50, 4)
        for i, j in ((7, 2), (0, 0), (49, 3)):
            assert s[i, j] == R.proc_oom_score(int(rss[i, j]), 0, 4096, int(adj[i, j]), 1 << 22,
                                               kernel, bool(adj[i, j] > 0))
    # totalpages < 1 goes the generic way and is reported as before
    with pytest.raises(ValueError, match="totalpages: expected values >= 1, got 0"):
        oom.oom_badness(rss, swap, pgt, adj, 0)
    with pytest.raises(ValueError, match=r"oom_score_adj: expected values in -1000\.\.1000, got 1001 "
                                         r"\(task \(3, 1\)\)"):
        adj[3, 1] = 1001
        oom.oom_badness(rss, swap, pgt, adj, 1000)


# ---- dmesg lines -------------------------------------------------------------------------------

def test_invoked_line_per_version():
    # 3.10: "%s invoked oom-killer: gfp_mask=0x%x, order=%d, oom_score_adj=%hd\n"
    assert oom.oom_invoked_line("java", 0x201da, 0, -17, "3.10") == \
        "java invoked oom-killer: gfp_mask=0x201da, order=0, oom_score_adj=-17"
    assert oom.oom_invoked_line("java", 0x201da, 3, 0, "3.12") == \
        "java invoked oom-killer: gfp_mask=0x201da, order=3, oom_score_adj=0"
    # 4.19: "%s invoked oom-killer: gfp_mask=%#x(%pGg), nodemask=%*pbl, order=%d, oom_score_adj=%hd\n"
    assert oom.oom_invoked_line("a", 0x6280ca, 0, 0, "4.19", gfp_flags="GFP_HIGHUSER_MOVABLE|__GFP_ZERO") == \
        "a invoked oom-killer: gfp_mask=0x6280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO), nodemask=(null), " \
        "order=0, oom_score_adj=0"
    # 6.x, as a real 6.x log prints it
    assert oom.oom_invoked_line("grep", 0x140dca, 0, 0, "6.18",
                                gfp_flags="GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO") == \
        "grep invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), " \
        "order=0, oom_score_adj=0"
    assert oom.oom_invoked_line("x", 0, 0, 0, "5.10") == \
        "x invoked oom-killer: gfp_mask=0x0(), order=0, oom_score_adj=0"   # the kernel's %#x of 0
    with pytest.raises(ValueError, match="not modelled"):
        oom.oom_invoked_line("x", 0, 0, 0, "4.12")


def test_task_dump_per_version():
    assert oom.oom_dump_tasks_header("3.10") == [
        "[ pid ]   uid  tgid total_vm      rss nr_ptes swapents oom_score_adj name"]
    # "[%5d] %5d %5d %8lu %8lu %7lu %8lu         %5hd %s\n"
    assert oom.oom_dump_task_row(1234, 1000, 1234, 12345, 6000, 789, 0, 25 * 4096, 0, 0, "python",
                                 "3.10") == \
        "[ 1234]  1000  1234    12345     6789      25        0             0 python"
    assert oom.oom_dump_tasks_header("4.4") == [
        "[ pid ]   uid  tgid total_vm      rss nr_ptes nr_pmds swapents oom_score_adj name"]
    # a 4.4 log: "[ 9546]  1000  9546   541716   453473     896       6        0             0 oom-write"
    assert oom.oom_dump_task_row(9546, 1000, 9546, 541716, 453473, 0, 0, 0, 0, 0, "oom-write", "4.4",
                                 nr_ptes=896, nr_pmds=6) == \
        "[ 9546]  1000  9546   541716   453473     896       6        0             0 oom-write"
    assert oom.oom_dump_tasks_header("4.19") == [
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name"]
    # a 5.4 log: "[   1436]  1000  1436   217253   151890  1294336        0             0 python"
    assert oom.oom_dump_task_row(1436, 1000, 1436, 217253, 151890, 0, 0, 1294336, 0, 0, "python",
                                 "5.4") == \
        "[   1436]  1000  1436   217253   151890  1294336        0             0 python"
    assert oom.oom_dump_tasks_header("6.18")[1] == (
        "[  pid  ]   uid  tgid total_vm      rss rss_anon rss_file rss_shmem pgtables_bytes "
        "swapents oom_score_adj name")
    # a 6.x log: "[  43056]  1000 43056  7511161  3403343  3388364    14371       608 32583680   518157
    #             200 colmap"
    assert oom.oom_dump_task_row(43056, 1000, 43056, 7511161, 3388364, 14371, 608, 32583680, 518157,
                                 200, "colmap", "6.18") == \
        "[  43056]  1000 43056  7511161  3403343  3388364    14371       608 32583680   518157" \
        "           200 colmap"
    assert oom.oom_dump_task_row(5, 0, 5, 1, 1, 0, 0, 0, 0, -1000, "a-very-long-command-name",
                                 "6.18").endswith("-1000 a-very-long-com")   # TASK_COMM_LEN
    with pytest.raises(ValueError, match="nr_puds"):
        oom.oom_dump_tasks_header("4.14")


def test_kill_lines_per_version():
    # 3.10 oom_kill_process: "%s: Kill process %d (%s) score %d or sacrifice child\n", then
    # "Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, file-rss:%lukB\n"
    assert oom.oom_kill_process_line(3796, "oom-depleter", 877, "3.10") == \
        "Out of memory: Kill process 3796 (oom-depleter) score 877 or sacrifice child"
    assert oom.oom_kill_process_line(77, "db", 12, "3.10", memcg=True) == \
        "Memory cgroup out of memory: Kill process 77 (db) score 12 or sacrifice child"
    assert oom.oom_killed_process_line(3796, "oom-depleter", 2166860, 1568628, 0, 0, "3.10") == \
        "Killed process 3796 (oom-depleter) total-vm:2166860kB, anon-rss:1568628kB, file-rss:0kB"
    # 4.19: the same pair, shmem-rss added (a 4.11 sysrq log shows the same)
    assert oom.oom_killed_process_line(4468, "(agetty)", 43704, 1760, 0, 0, "4.19") == \
        "Killed process 4468 ((agetty)) total-vm:43704kB, anon-rss:1760kB, file-rss:0kB, shmem-rss:0kB"
    with pytest.raises(ValueError, match="5.0"):
        oom.oom_kill_process_line(1, "x", 0, "5.1")
    # 6.x: "%s: Killed process %d (%s) total-vm:%lukB, anon-rss:%lukB, file-rss:%lukB,
    # shmem-rss:%lukB, UID:%u pgtables:%lukB oom_score_adj:%hd\n" (real log lines)
    assert oom.oom_killed_process_line(43056, "colmap", 30044644, 13553456, 57484, 2432, "6.18",
                                       uid=1000, pgtables_bytes=32583680, oom_score_adj=200) == \
        "Out of memory: Killed process 43056 (colmap) total-vm:30044644kB, anon-rss:13553456kB, " \
        "file-rss:57484kB, shmem-rss:2432kB, UID:1000 pgtables:31820kB oom_score_adj:200"
    assert oom.oom_killed_process_line(10233, "mem_stress", 1225792, 50432, 0, 0, "6.1", memcg=True,
                                       pgtables_bytes=184320) == \
        "Memory cgroup out of memory: Killed process 10233 (mem_stress) total-vm:1225792kB, " \
        "anon-rss:50432kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:180kB oom_score_adj:0"
    # 5.4 printed the page-table bytes in the kB field; 5.1-5.3 had no UID
    assert oom.oom_killed_process_line(1, "p", 4, 4, 0, 0, "5.4", pgtables_bytes=8192).endswith(
        "UID:0 pgtables:8192kB oom_score_adj:0")
    assert oom.oom_killed_process_line(1, "p", 4, 4, 0, 0, "5.2") == \
        "Out of memory: Killed process 1 (p) total-vm:4kB, anon-rss:4kB, file-rss:0kB, shmem-rss:0kB"


def test_summary_and_reaper_lines():
    assert oom.oom_kill_summary_line("CONSTRAINT_MEMCG", "mem_stress", 10233, 0, "6.18",
                                     cpuset="liz", oom_memcg="/liz", task_memcg="/liz") == \
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=liz,mems_allowed=0," \
        "oom_memcg=/liz,task_memcg=/liz,task=mem_stress,pid=10233,uid=0"
    assert oom.oom_kill_summary_line("CONSTRAINT_NONE", "sh", 171, 0, "6.18", mems_allowed="0-1") == \
        "oom-kill:constraint=CONSTRAINT_NONE,nodemask=(null),cpuset=/,mems_allowed=0-1,global_oom," \
        "task_memcg=/,task=sh,pid=171,uid=0"
    with pytest.raises(ValueError, match="5.0"):
        oom.oom_kill_summary_line("CONSTRAINT_NONE", "sh", 1, 0, "4.19")
    with pytest.raises(ValueError, match="constraint"):
        oom.oom_kill_summary_line("NONE", "sh", 1, 0)
    with pytest.raises(ValueError, match="oom_memcg"):
        oom.oom_kill_summary_line("CONSTRAINT_MEMCG", "sh", 1, 0)
    assert oom.oom_reaper_line(43056, "colmap", 0, 0, 0, "6.18") == \
        "oom_reaper: reaped process 43056 (colmap), now anon-rss:0kB, file-rss:0kB, shmem-rss:0kB"
    assert oom.oom_reaper_line(5, "x", 4, 8, 12, "4.19") == \
        "oom_reaper: reaped process 5 (x), now anon-rss:4kB, file-rss:8kB, shmem-rss:12kB"
    with pytest.raises(ValueError, match="4.6"):
        oom.oom_reaper_line(5, "x", 0, 0, 0, "3.10")


def test_the_lines_reproduce_the_machines_6_18_report():
    m = mmcore.Machine(mmcore.Config(memory="64MiB", thp_enabled="never", min_free_kbytes=128,
                                     overcommit_memory=1, kernel="6.18"))
    m.spawn("init")
    big = m.spawn("big")
    a = big.mmap(40 << 20)
    big.touch(a, 40 << 20)
    before = {t.pid: (t.status(), int(m.state.mm[K.MM_TOTAL_VM, t._mmi]), t.oom_score_adj, t._tgid)
              for t in m.tasks()}
    small = m.spawn("small")
    b = small.mmap(40 << 20)
    small.touch(b, 40 << 20)
    log = m.dmesg()
    if not any(line.startswith("Out of memory: Killed process") for line in log):
        pytest.skip("the machine did not run the OOM killer")
    start = next(i for i, line in enumerate(log) if "invoked oom-killer" in line)
    assert log[start] == oom.oom_invoked_line(
        "small", 0x140dca, 0, 0, "6.18", gfp_flags="GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO")
    assert log[start + 1:start + 3] == oom.oom_dump_tasks_header("6.18")
    st_big, total_vm, adj, tgid = before[big.pid]
    assert oom.oom_kill_summary_line("CONSTRAINT_NONE", "big", big.pid, 0) in log
    killed = oom.oom_killed_process_line(big.pid, "big", st_big["VmSize"], st_big["RssAnon"],
                                         st_big["RssFile"], st_big["RssShmem"],
                                         pgtables_bytes=st_big["VmPTE"] * 1024, oom_score_adj=adj)
    assert killed in log
    assert oom.oom_reaper_line(big.pid, "big", 0, 0, 0) == log[-1]
    row = oom.oom_dump_task_row(big.pid, 0, tgid, total_vm, st_big["RssAnon"] // 4,
                                st_big["RssFile"] // 4, st_big["RssShmem"] // 4,
                                st_big["VmPTE"] * 1024, st_big["VmSwap"] // 4, adj, "big")
    assert row in log
