"""oom_badness, /proc/PID/oom_score and select_bad_process over arrays of tasks (mm/oom_kill.c,
fs/proc/base.c).

All arithmetic is the kernel's: signed 64-bit ``long``, C division truncating toward zero, and the
kernel's order of operations (``adj *= totalpages / 1000`` divides first). The rule set is chosen
by ``rule``:

RULE_310      3.10-3.13: ineligible -> 0; points = rss + page tables + swap; CAP_SYS_ADMIN takes 30
              from adj; points += adj * (totalpages / 1000); at least 1.
RULE_314      3.14-4.16: the root bonus is 3% of points instead.
RULE_417      4.17-5.8: no root bonus.
RULE_509      5.9+: ineligible -> LONG_MIN; no clamp (negative scores possible).

oom_score: before 5.9 ``badness * 1000 / totalpages`` in unsigned long; from 5.9
``(1000 + badness * 1000 / (long)totalpages) * 2 / 3`` in long (0 for LONG_MIN).

Victim selection changed on other releases than the score, so it has its own constants (``scan``):

SCAN_310      3.0-3.13 select_bad_process + oom_scan_process_thread over every thread
              (do_each_thread): the badness is held in an ``unsigned int``; a task is chosen only if
              ``points > chosen_points``, so the first of equal scores wins.
SCAN_314      3.14-4.7: the same scan; "mm, oom: prefer thread group leaders for display purposes"
              (David Rientjes, Jan 2014): ``points < chosen`` skips, and on a tie a chosen
              thread-group leader is kept (otherwise the later thread replaces it).
SCAN_408      4.8-5.2 oom_evaluate_task ("mm: oom: deduplicate victim selection code for memcg and
              global oom", 7c5f64f84483): for_each_process (thread-group leaders) for a global OOM,
              every thread of the memcg for a memcg OOM; an OOM victim aborts the scan unless its mm
              has MMF_OOM_SKIP; no PF_EXITING abort; the leader tie rule stays.
SCAN_503      5.3-5.8: mem_cgroup_scan_tasks iterates processes (CSS_TASK_ITER_PROCS) and the
              leader tie rule is gone ("mm: oom: Remove thread group leader check in
              oom_evaluate_task()", Tetsuo Handa, Jun 2019): the last of equal scores wins.
SCAN_509      5.9+: badness LONG_MIN means ineligible, chosen_points starts at LONG_MIN, so
              negative scores can be chosen; the last of equal scores wins.
"""
from .consts import (
    MM_ANONPAGES,
    MM_FILEPAGES,
    MM_FLAGS,
    MM_PGTABLES,
    MM_SHMEMPAGES,
    MM_SWAPENTS,
    MMF_OOM_SKIP,
    T_ADJ,
    T_ALIVE,
    T_FLAGS,
    T_MM,
    T_PID,
    T_TGID,
    TF_CAP_SYS_ADMIN,
    TF_EXITING,
    TF_KTHREAD,
    TF_MEMDIE,
    TF_OOM_ORIGIN,
)
from .jit import kernel

RULE_310 = 0
RULE_314 = 1
RULE_417 = 2
RULE_509 = 3
SCAN_310 = 0
SCAN_314 = 1
SCAN_408 = 2
SCAN_503 = 3
SCAN_509 = 4
LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1
PAGE_SIZE = 4096
UINT_MASK = (1 << 32) - 1


@kernel
def cdiv(a, b):
    """C's signed division: the quotient truncated toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


@kernel
def badness_one(rss, swap, pgtables_bytes, adj, cap, eligible, totalpages, rule):
    if not eligible or adj == -1000:
        return LONG_MIN if rule == RULE_509 else 0
    points = rss + swap + pgtables_bytes // PAGE_SIZE
    if rule == RULE_310:
        if cap:
            adj -= 30
    elif rule == RULE_314:
        if cap:
            points -= cdiv(points * 3, 100)
    adj *= totalpages // 1000
    points += adj
    if rule == RULE_509:
        return points
    return points if points > 0 else 1


@kernel
def score_one(badness, totalpages, rule):
    if rule == RULE_509:
        if badness == LONG_MIN:
            return 0
        return cdiv((1000 + cdiv(badness * 1000, totalpages)) * 2, 3)
    # unsigned long: badness is >= 0 here (0 or a clamped positive value)
    return (badness * 1000) // totalpages


@kernel(inline="always")
def _at(a, i):
    """Element i of an argument given per task (length n) or once for all (length 1)."""
    return a[i] if a.shape[0] > 1 else a[0]


@kernel
def badness_array(rss, swap, pgtables_bytes, adj, cap, eligible, totalpages, rule, out, score):
    """oom_badness (and, when ``score`` has the same length, oom_score) for every task. Each
    input has one value per task or one for all. Returns -1, or (argument number << 32 | index)
    of the first value out of range (rss, swap, page tables < 0; adj outside -1000..1000;
    totalpages < 1), in which case ``out`` is incomplete."""
    n = out.shape[0]
    want_score = score.shape[0] == n
    for i in range(n):
        r = _at(rss, i)
        sw = _at(swap, i)
        pg = _at(pgtables_bytes, i)
        a = _at(adj, i)
        t = _at(totalpages, i)
        if r < 0:
            return i
        if sw < 0:
            return (1 << 32) | i
        if pg < 0:
            return (2 << 32) | i
        if a < -1000 or a > 1000:
            return (3 << 32) | i
        if t < 1:
            return (4 << 32) | i
        b = badness_one(r, sw, pg, a, _at(cap, i) != 0, _at(eligible, i) != 0, t, rule)
        out[i] = b
        if want_score:
            score[i] = score_one(b, t, rule)
    return -1


# ---- oom_badness over full-length arrays: the fast path ------------------------------------------

@kernel(inline="always")
def _badness_fast(r, sw, pg, a, cap, elig, tpk, rule):
    """badness_one for valid inputs (r, sw, pg >= 0, |a| <= 1000) with ``tpk = totalpages / 1000``
    computed once. Called with ``rule`` a literal so that, inlined, every rule branch folds away.
    Equal to badness_one for every valid input: pg >> 12 is pg / PAGE_SIZE for pg >= 0."""
    points = r + sw + (pg >> 12)
    if rule == RULE_310:
        a2 = a - 30 if cap else a
        p = points + a2 * tpk
        p = p if p > 0 else 1
        return p if (elig and a != -1000) else 0
    if rule == RULE_314:
        p = points - cdiv(points * 3, 100) if cap else points
        p = p + a * tpk
        p = p if p > 0 else 1
        return p if (elig and a != -1000) else 0
    if rule == RULE_417:
        p = points + a * tpk
        p = p if p > 0 else 1
        return p if (elig and a != -1000) else 0
    p = points + a * tpk
    return p if (elig and a != -1000) else LONG_MIN


@kernel
def _badness_range(rss, swap, pgt, adj, cap, elig, tpk, rule, out, lo, hi):
    """out[lo:hi] for full-length rss, swap, pgt and adj; ``cap`` and ``elig`` are full-length or
    hold one value for all. Returns True if every input in the range was valid (otherwise some of
    out[lo:hi] is meaningless and the caller reports the first bad value). Validation is an OR of
    the values that must be >= 0, so the loops have no branch but the rule's selects."""
    acc = 0
    if cap.shape[0] == 1 and elig.shape[0] == 1:
        c = cap[0] != 0
        e = elig[0] != 0
        if rule == RULE_310:
            for i in range(lo, hi):
                r, sw, pg, a = rss[i], swap[i], pgt[i], adj[i]
                acc |= r | sw | pg | (a + 1000) | (1000 - a)
                out[i] = _badness_fast(r, sw, pg, a, c, e, tpk, RULE_310)
        elif rule == RULE_314:
            for i in range(lo, hi):
                r, sw, pg, a = rss[i], swap[i], pgt[i], adj[i]
                acc |= r | sw | pg | (a + 1000) | (1000 - a)
                out[i] = _badness_fast(r, sw, pg, a, c, e, tpk, RULE_314)
        elif rule == RULE_417:
            for i in range(lo, hi):
                r, sw, pg, a = rss[i], swap[i], pgt[i], adj[i]
                acc |= r | sw | pg | (a + 1000) | (1000 - a)
                out[i] = _badness_fast(r, sw, pg, a, c, e, tpk, RULE_417)
        else:
            for i in range(lo, hi):
                r, sw, pg, a = rss[i], swap[i], pgt[i], adj[i]
                acc |= r | sw | pg | (a + 1000) | (1000 - a)
                out[i] = _badness_fast(r, sw, pg, a, c, e, tpk, RULE_509)
    else:
        cs = 1 if cap.shape[0] > 1 else 0          # stride 0: one value for all
        es = 1 if elig.shape[0] > 1 else 0
        if rule == RULE_310:
            for i in range(lo, hi):
                r, sw, pg, a = rss[i], swap[i], pgt[i], adj[i]
                acc |= r | sw | pg | (a + 1000) | (1000 - a)
                out[i] = _badness_fast(r, sw, pg, a, cap[i * cs] != 0, elig[i * es] != 0, tpk,
                                       RULE_310)
        elif rule == RULE_314:
            for i in range(lo, hi):
                r, sw, pg, a = rss[i], swap[i], pgt[i], adj[i]
                acc |= r | sw | pg | (a + 1000) | (1000 - a)
                out[i] = _badness_fast(r, sw, pg, a, cap[i * cs] != 0, elig[i * es] != 0, tpk,
                                       RULE_314)
        elif rule == RULE_417:
            for i in range(lo, hi):
                r, sw, pg, a = rss[i], swap[i], pgt[i], adj[i]
                acc |= r | sw | pg | (a + 1000) | (1000 - a)
                out[i] = _badness_fast(r, sw, pg, a, cap[i * cs] != 0, elig[i * es] != 0, tpk,
                                       RULE_417)
        else:
            for i in range(lo, hi):
                r, sw, pg, a = rss[i], swap[i], pgt[i], adj[i]
                acc |= r | sw | pg | (a + 1000) | (1000 - a)
                out[i] = _badness_fast(r, sw, pg, a, cap[i * cs] != 0, elig[i * es] != 0, tpk,
                                       RULE_509)
    return acc >= 0


@kernel
def _first_bad(rss, swap, pgt, adj):
    """(argument number << 32 | index) of the first out-of-range value, as badness_array reports
    it (arguments in its order: rss, swap, page tables, adj), or -1."""
    for i in range(rss.shape[0]):
        if rss[i] < 0:
            return i
        if swap[i] < 0:
            return (1 << 32) | i
        if pgt[i] < 0:
            return (2 << 32) | i
        if adj[i] < -1000 or adj[i] > 1000:
            return (3 << 32) | i
    return -1


@kernel
def _score_range(out, totalpages, rule, score):
    for i in range(out.shape[0]):
        score[i] = score_one(out[i], totalpages, rule)


@kernel
def badness_fast(rss, swap, pgt, adj, cap, elig, totalpages, rule, out, score):
    """badness_array for full-length int64 rss, swap, pgt (bytes) and adj, one totalpages (>= 1)
    for all, and ``cap``/``elig`` full-length or of length 1: the same values and the same error
    code. A prange version over two threads measured slower on the 2-core test machine (the
    loop is bound by memory bandwidth and the first touch of ``out``), so it stays serial."""
    if not _badness_range(rss, swap, pgt, adj, cap, elig, totalpages // 1000, rule, out,
                          0, out.shape[0]):
        return _first_bad(rss, swap, pgt, adj)
    if score.shape[0] == out.shape[0]:
        _score_range(out, totalpages, rule, score)
    return -1


@kernel
def select_victim(badness, rule, ties_last):
    """The highest badness among thread-group leaders in scan order, or -1 if none is eligible
    (0, or LONG_MIN from 5.9). ``ties_last``: from 5.3 oom_evaluate_task skips only
    ``points < chosen_points``, so the last of equal scores wins; before, a chosen leader is kept
    (3.14-5.2) or only a higher score replaces it (3.10), so the first wins."""
    best = -1
    bp = 0
    for i in range(badness.shape[0]):
        b = badness[i]
        if b == (LONG_MIN if rule == RULE_509 else 0):
            continue
        if best < 0 or b > bp or (ties_last and b == bp):
            best = i
            bp = b
    return best


# ---- select_bad_process over the machine's task arrays -------------------------------------------

@kernel
def select_bad_process(order, task, mm, base, totalpages, rule, scan, memcg_oom):
    """The task select_bad_process chooses: (index into ``task``'s columns or -1, its points,
    abort). ``order`` lists task indices in the kernel's scan order; ``base`` is int64[T], the
    pages each task's /proc baseline adds to the mm counters (anon + file + shmem + swap +
    page-table pages: oom_badness only ever sums them), or int64[0] for none. One stream
    instead of five keeps the scan of 10^6 tasks within memory bandwidth.
    ``rule`` is the oom_badness rule, ``scan`` the selection rule (SCAN_*, see the module
    docstring). abort is True when the scan met an OOM victim (or, before 4.8, an exiting task)
    and the kernel would wait instead of killing: then the index is -1.

    The points returned are oom_badness's value (truncated to 32 bits before 4.8, as the kernel's
    ``unsigned int points``), or LONG_MAX for an oom_task_origin task (ULONG_MAX in the kernel
    before 5.9).

    Bad input comes back as an index below -1 instead: (-2, k, False) when order[k] is not a
    column of ``task``, (-3, k, False) when the task at order[k], which the scan needed, has an
    mm index (T_MM) that is neither -1 (no mm) nor a column of ``mm``. Every entry of ``order``
    is checked, also past an abort; totalpages >= 1 and the shape of ``base`` are the caller's
    to check (mmcore.oom.select_bad_process)."""
    n_tasks = task.shape[1]
    n_mm = mm.shape[1]
    has_base = base.shape[0] > 0
    threads = scan <= SCAN_314 or (scan == SCAN_408 and memcg_oom)
    chosen = -1
    cp = LONG_MIN if scan == SCAN_509 else 0
    origin = False                                   # chosen_points is ULONG_MAX (before 5.9)
    chosen_leader = False
    n = order.shape[0]
    aborted = -1
    for k in range(n):
        ti = order[k]
        if ti < 0 or ti >= n_tasks:
            return -2, k, False
        if task[T_ALIVE, ti] == 0:
            continue                                 # exit_state: reaped or zombie
        pid = task[T_PID, ti]
        leader = pid == task[T_TGID, ti]
        if not threads and not leader:
            continue                                 # for_each_process: group leaders only
        fl = task[T_FLAGS, ti]
        # oom_unkillable_task: is_global_init (every thread of tgid 1) or PF_KTHREAD
        if task[T_TGID, ti] == 1 or (fl & TF_KTHREAD) != 0:
            continue
        mi = task[T_MM, ti]
        if mi < -1 or mi >= n_mm:
            return -3, k, False
        if scan <= SCAN_314:
            # oom_scan_process_thread (3.10): TIF_MEMDIE aborts, no mm skips, the origin is
            # selected, PF_EXITING aborts (the ptrace PT_TRACE_EXIT exception is not modelled)
            if (fl & TF_MEMDIE) != 0:
                aborted = k
                break
            if mi < 0:
                continue
            if (fl & TF_OOM_ORIGIN) != 0:
                chosen = ti
                origin = True
                chosen_leader = leader
                continue
            if (fl & TF_EXITING) != 0:
                aborted = k
                break
        else:
            # oom_evaluate_task: an OOM victim whose mm the reaper is done with is passed over,
            # any other aborts the scan; the origin is selected with the highest points
            if (fl & TF_MEMDIE) != 0:
                if mi < 0 or (mm[MM_FLAGS, mi] >> MMF_OOM_SKIP) & 1 != 0:
                    continue
                aborted = k
                break
            if (fl & TF_OOM_ORIGIN) != 0:
                chosen = ti
                chosen_leader = leader
                if scan == SCAN_509:
                    cp = LONG_MAX
                else:
                    origin = True
                continue
            if mi < 0:
                # oom_badness: find_lock_task_mm finds no mm (threads share the leader's mm here)
                continue
        # oom_badness over the mm counters and the /proc baseline
        rss = mm[MM_ANONPAGES, mi] + mm[MM_FILEPAGES, mi] + mm[MM_SHMEMPAGES, mi]
        swap = mm[MM_SWAPENTS, mi]
        pgt = mm[MM_PGTABLES, mi]
        if has_base:
            rss += base[ti]                          # the baseline's sum; see the docstring
        eligible = True
        if scan >= SCAN_408:                         # MMF_OOM_SKIP mms score 0 / LONG_MIN
            eligible = (mm[MM_FLAGS, mi] >> MMF_OOM_SKIP) & 1 == 0
        b = badness_one(rss, swap, pgt * PAGE_SIZE, task[T_ADJ, ti],
                        (fl & TF_CAP_SYS_ADMIN) != 0, eligible, totalpages, rule)
        if scan == SCAN_509:
            if b == LONG_MIN or b < cp:
                continue
        else:
            if scan <= SCAN_314:
                b &= UINT_MASK                       # unsigned int points = oom_badness(...)
            if origin:
                continue                             # nothing is above ULONG_MAX
            if scan == SCAN_310:
                if b <= cp:                          # if (points > chosen_points)
                    continue
            else:
                if b == 0 or b < cp:
                    continue
                if b == cp and chosen >= 0 and chosen_leader and scan <= SCAN_408:
                    continue                         # prefer thread group leaders
        chosen = ti
        cp = b
        chosen_leader = leader
    if aborted >= 0:
        for k in range(aborted + 1, n):              # the rest of order is still checked
            if order[k] < 0 or order[k] >= n_tasks:
                return -2, k, False
        return -1, 0, True
    if chosen < 0:
        return -1, 0, False
    return chosen, LONG_MAX if origin else cp, False
