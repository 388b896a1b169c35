"""The batch runner: several tasks' operation streams interleaved in simulated time.

Each task's ops run in its stream's order; across tasks, the op that can start earliest runs next
(start = max(task clock, its CPU's free time); ties go to the lower task index, i.e. the lower pid).
Every op goes through the same kernels as the call-by-call API. The runner returns when all
streams are done, or with NEED_GROW or FLUSH and a resume point (``rs``) to re-enter at.
"""
import numpy as np

from .consts import (
    C_KERNEL,
    C_OOM_KILLER,
    ENOMEM,
    OOM,
    C_RECORD,
    CPU_FREE_AT,
    EINVAL,
    FLUSH,
    MADV_COLLAPSE,
    MADV_POPULATE_WRITE,
    MAP_POPULATE,
    MM_BRK,
    MM_DEF_FLAGS,
    NEED_GROW,
    OK,
    OP_ACCESS,
    OP_BRK,
    OP_MADVISE,
    OP_MLOCK,
    OP_MMAP,
    OP_MPROTECT,
    OP_MUNLOCK,
    OP_MUNMAP,
    OP_PRCTL,
    OP_TOUCH,
    OPR_A0,
    OPR_CODE,
    OPR_TASK,
    PROT_WRITE,
    REC_SYSCALL,
    T_ALIVE,
    T_CLOCK,
    T_CPU,
    T_MM,
    T_PID,
    TIMER,
    VM_LOCKED,
    VM_LOCKONFAULT,
)
from .events import ev_room, record, run_timers
from .jit import kernel
from .khugepaged import sys_madvise_collapse
from .memory import access_loop
from .syscalls import (
    madvise_populate_extent,
    op_begin,
    op_end,
    populate_range,
    sys_brk,
    sys_madvise,
    sys_mlock,
    sys_mmap,
    sys_mprotect,
    sys_munmap,
    sys_prctl_thp,
)

RS_OP = 0        # op being resumed (-1: none)
RS_PHASE = 1     # 1: populating, 2: inside an access stream
RS_POS = 2       # resume address (populate) or index (touch)
RS_END = 3       # populate end
RS_WRITE = 4     # populate mode
RS_VAL = 5       # where the populated range starts (an mmap's result)
RS_SEQ = 6       # ops completed so far
NR_RS = 7


@kernel
def _start_time(task, cpus, t):
    c = task[T_CPU, t]
    return max(task[T_CLOCK, t], cpus[c, CPU_FREE_AT])


@kernel
def run_ops(S, ops, order, tstart, tend, cursor, res, rs):
    """Run the op streams. ``order[tstart[j]:tend[j]]`` are the op indices of the j-th stream,
    ``cursor[j]`` how far it got; ``res[0, k]``/``res[1, k]`` get op k's status and value and
    ``res[2, k]`` its position in the order the ops ran.

    Returns (status, op index): OK when all streams are done, else NEED_GROW, FLUSH, TIMER or
    OOM (a touch or access found no memory: Python runs the OOM killer, then re-enters).
    """
    cfg = S.cfg
    gs = S.gs
    task = S.task
    cpus = S.cpus
    ev = S.ev
    nstreams = tstart.shape[0]
    rec_sys = (cfg[C_RECORD] & REC_SYSCALL) != 0
    while True:
        best = -1
        bt = 0
        for j in range(nstreams):
            if cursor[j] < tend[j]:
                t = ops[OPR_TASK, order[cursor[j]]]
                if task[T_ALIVE, t] == 0:
                    continue
                st = _start_time(task, cpus, t)
                if best < 0 or st < bt:
                    best = j
                    bt = st
        if best < 0:
            return OK, -1
        k = order[cursor[best]]
        ti = ops[OPR_TASK, k]
        st = run_timers(cfg, gs, S.vmstat, S.smp, bt)
        if st != OK:
            return st, k                # FLUSH, or TIMER: khugepaged runs first
        if rec_sys and not ev_room(gs, ev, 1):
            return FLUSH, k
        st, val = _run_one(S, ops, k, ti, rs)
        if st == NEED_GROW or st == FLUSH or st == TIMER or st == OOM:
            return st, k
        res[0, k] = st
        res[1, k] = val
        res[2, k] = rs[RS_SEQ]
        rs[RS_SEQ] += 1
        if rec_sys and ops[OPR_CODE, k] != OP_TOUCH and ops[OPR_CODE, k] != OP_ACCESS:
            record(gs, ev, bt, task[T_PID, ti], ops[OPR_CODE, k], ops[OPR_A0, k], min(st, 0),
                   task[T_CLOCK, ti] - bt, 0)
        cursor[best] += 1


@kernel
def _populate(S, k, ti, rs, start, end, mode):
    """The populate phase of an op, resumable from ``rs``."""
    if rs[RS_OP] != k or rs[RS_PHASE] != 1:
        rs[RS_OP] = k
        rs[RS_PHASE] = 1
        rs[RS_POS] = start
        rs[RS_END] = end
        rs[RS_WRITE] = mode
        rs[RS_VAL] = start
    st, va = populate_range(S, ti, rs[RS_POS], rs[RS_END], rs[RS_WRITE])
    rs[RS_POS] = va
    if st == NEED_GROW:
        return st
    rs[RS_OP] = -1
    return st


@kernel
def _run_one(S, ops, k, ti, rs):
    code = ops[OPR_CODE, k]
    a0 = ops[OPR_A0, k]
    a1 = ops[OPR_A0 + 1, k]
    a2 = ops[OPR_A0 + 2, k]
    a3 = ops[OPR_A0 + 3, k]
    mm = S.mm
    if rs[RS_OP] == k and rs[RS_PHASE] == 1:          # resume a populate phase
        st = _populate(S, k, ti, rs, 0, 0, 0)
        return st, (rs[RS_VAL] if code == OP_MMAP else 0)
    if code == OP_TOUCH or code == OP_ACCESS:
        i0 = rs[RS_POS] if (rs[RS_OP] == k and rs[RS_PHASE] == 2) else 0
        if code == OP_TOUCH:
            start, length, stride, write = a0, a1, a2, a3
        else:
            start, length, stride, write = a0, 1, 1, a1
        if stride <= 0 or length < 0:
            return -EINVAL, 0
        n = (length + stride - 1) // stride
        w = np.full(1, 1 if write else 0, np.int8)
        op_begin(S.task, S.cpus, ti)
        st, i = access_loop(S.cfg, S.gs, S.vmstat, S.fr32, S.fr_idx, S.fr_flags, S.fr_order,
                            S.pb_mt, S.pt, S.pt_aux, mm, S.vma, S.tlb, S.pwc, S.task, S.cpus, S.ev,
                            S.smp, ti, np.empty(0, np.int64), w, start, stride, n, i0,
                            np.empty(0, np.int8), S)
        op_end(S.gs, S.task, S.cpus, ti)
        if st == -ENOMEM and S.cfg[C_OOM_KILLER] != 0:
            st = OOM                    # pagefault_out_of_memory: the OOM killer, then a restart
        if st == NEED_GROW or st == FLUSH or st == TIMER or st == OOM:
            rs[RS_OP] = k
            rs[RS_PHASE] = 2
            rs[RS_POS] = i
            return st, i
        rs[RS_OP] = -1
        return st, i
    if code == OP_MMAP:
        st, addr = sys_mmap(S, ti, a0, a1, a2, a3, -1, 0)
        if st != OK:
            return st, addr
        ln = (a1 + 4095) & ~4095
        deff = mm[MM_DEF_FLAGS, S.task[T_MM, ti]]
        if (deff & VM_LOCKED) != 0 and (deff & VM_LOCKONFAULT) == 0:
            st = _populate(S, k, ti, rs, addr, addr + ln, 2)
        elif a3 & MAP_POPULATE:
            st = _populate(S, k, ti, rs, addr, addr + ln, 1 if a2 & PROT_WRITE else 0)
        return st, addr
    if code == OP_MUNMAP:
        return sys_munmap(S, ti, a0, a1)
    if code == OP_MPROTECT:
        return sys_mprotect(S, ti, a0, a1, a2)
    if code == OP_MADVISE and a2 == MADV_COLLAPSE and S.cfg[C_KERNEL] >= 601:
        return sys_madvise_collapse(S, ti, a0, a1)
    if code == OP_MADVISE:
        st, pop = sys_madvise(S, ti, a0, a1, a2)
        if st != OK or pop == 0:
            return st, 0
        end = a0 + ((a1 + 4095) & ~4095)
        write = a2 == MADV_POPULATE_WRITE
        err, limit = madvise_populate_extent(S, ti, a0, end, write)
        if limit > a0:
            st = _populate(S, k, ti, rs, a0, limit, 1 if write else 0)
            if st == NEED_GROW:
                return st, 0
        return (err if err < 0 else st), 0
    if code == OP_PRCTL:
        return sys_prctl_thp(S, ti, a0, a1, a2, 0, 0)
    if code == OP_BRK:
        mmi = S.task[T_MM, ti]
        old = (mm[MM_BRK, mmi] + 4095) & ~4095
        st, nb = sys_brk(S, ti, a0)
        deff = mm[MM_DEF_FLAGS, mmi]
        new = (nb + 4095) & ~4095
        if st == OK and new > old and (deff & VM_LOCKED) != 0 and (deff & VM_LOCKONFAULT) == 0:
            st = _populate(S, k, ti, rs, old, new, 2)
            if st == OK:
                return st, nb
        return st, nb
    if code == OP_MLOCK or code == OP_MUNLOCK:
        lock = code == OP_MLOCK
        st, pop = sys_mlock(S, ti, a0, a1, lock, False)
        if st == OK and pop:
            start = a0 & ~4095
            st = _populate(S, k, ti, rs, start,
                           start + ((a1 + (a0 & 4095) + 4095) & ~4095), 2)
        return st, 0
    return -EINVAL, 0


@kernel
def tick(S, ti):
    """Run the timed events due before task ``ti``'s next operation can start (as ``run_ops``
    does before each op). Returns (status, 0): OK, FLUSH or TIMER."""
    return run_timers(S.cfg, S.gs, S.vmstat, S.smp, _start_time(S.task, S.cpus, ti)), 0
