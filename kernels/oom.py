"""oom_badness and /proc/PID/oom_score over arrays of tasks (mm/oom_kill.c, fs/proc/base.c).

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
"""
from .jit import kernel

RULE_310 = 0
RULE_314 = 1
RULE_417 = 2
RULE_509 = 3
LONG_MIN = -(1 << 63)
PAGE_SIZE = 4096


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


@kernel
def select_victim(badness, rule):
    """select_bad_process over thread-group leaders in scan order: the highest badness. Ties go
    to the last task scanned from 5.9 (oom_evaluate_task skips only points < chosen_points);
    before, a chosen thread-group leader is kept on a tie, so the first wins. -1 if no task is
    eligible."""
    best = -1
    bp = 0
    for i in range(badness.shape[0]):
        b = badness[i]
        if rule == RULE_509:
            if b == LONG_MIN:
                continue
            if best < 0 or b >= bp:
                best = i
                bp = b
        else:
            if b == 0:
                continue
            if best < 0 or b > bp:
                best = i
                bp = b
    return best

