"""Event records and timed background work (the sampler now; khugepaged, writeback, kswapd and
the oom_reaper later), kept in simulated time."""
from .consts import (
    C_SAMPLE_PS,
    EV_ADDR,
    EV_KIND,
    EV_LAT,
    EV_OP,
    EV_PID,
    EV_RESULT,
    EV_TIME,
    FLUSH,
    G_EV_N,
    G_NEXT_EVENT,
    G_NR_FREE,
    G_SMP_N,
    NR_VMSTAT,
    OK,
    SMP_TIME,
    VS_NR_FREE_PAGES,
)
from .jit import kernel

NEVER = (1 << 62)


@kernel
def ev_room(gs, ev, n):
    return gs[G_EV_N] + n <= ev.shape[1]


@kernel
def record(gs, ev, t, pid, op, addr, result, lat, kind):
    """Append one event (the caller checked ``ev_room``)."""
    k = gs[G_EV_N]
    ev[EV_TIME, k] = t
    ev[EV_PID, k] = pid
    ev[EV_OP, k] = op
    ev[EV_ADDR, k] = addr
    ev[EV_RESULT, k] = result
    ev[EV_LAT, k] = lat
    ev[EV_KIND, k] = kind
    gs[G_EV_N] = k + 1


@kernel
def run_timers(cfg, gs, vmstat, smp, until):
    """Run every timed event due at or before ``until``; FLUSH if a buffer is full (nothing of
    that event done yet), else OK."""
    while gs[G_NEXT_EVENT] <= until:
        t = gs[G_NEXT_EVENT]
        k = gs[G_SMP_N]
        if k >= smp.shape[1]:
            return FLUSH
        smp[SMP_TIME, k] = t
        for j in range(NR_VMSTAT):
            smp[1 + j, k] = vmstat[j]
        smp[1 + VS_NR_FREE_PAGES, k] = gs[G_NR_FREE]
        gs[G_SMP_N] = k + 1
        iv = cfg[C_SAMPLE_PS]
        gs[G_NEXT_EVENT] = t + iv if iv > 0 else NEVER
    return OK
