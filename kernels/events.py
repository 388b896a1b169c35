"""Event records and timed background work (the vmstat sampler, khugepaged and kcompactd),
kept in simulated time."""
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
    G_KC_WAKE,
    G_KH_WAKE,
    G_NEXT_EVENT,
    G_NEXT_SAMPLE,
    G_NR_FREE,
    G_SMP_N,
    G_TIMER_UNTIL,
    NR_HIST,
    NR_VMSTAT,
    OK,
    SMP_TIME,
    TIMER,
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
def hist_add(gs, base, lat_ps):
    """Count a latency in the log2-bucketed histogram at ``gs[base:base + NR_HIST]``."""
    ns = lat_ps // 1000
    k = 0
    while ns > 0 and k < NR_HIST - 1:
        ns >>= 1
        k += 1
    gs[base + k] += 1


@kernel(inline="always")
def rearm(gs):
    """The next timed event is the earliest of the sampler's, khugepaged's and kcompactd's."""
    gs[G_NEXT_EVENT] = min(gs[G_NEXT_SAMPLE], min(gs[G_KH_WAKE], gs[G_KC_WAKE]))


@kernel
def take_samples(cfg, gs, vmstat, smp, until):
    """Take every vmstat sample due at or before ``until`` and before the next kernel thread's
    wakeup (that runs first); FLUSH if the sample buffer is full, else OK."""
    while gs[G_NEXT_SAMPLE] <= until and gs[G_NEXT_SAMPLE] < min(gs[G_KH_WAKE], gs[G_KC_WAKE]):
        t = gs[G_NEXT_SAMPLE]
        k = gs[G_SMP_N]
        if k >= smp.shape[1]:
            return FLUSH
        smp[SMP_TIME, k] = t
        for j in range(NR_VMSTAT):
            smp[1 + j, k] = vmstat[j]
        smp[1 + VS_NR_FREE_PAGES, k] = gs[G_NR_FREE]
        gs[G_SMP_N] = k + 1
        iv = cfg[C_SAMPLE_PS]
        gs[G_NEXT_SAMPLE] = t + iv if iv > 0 else NEVER
    rearm(gs)
    return OK


@kernel
def run_timers(cfg, gs, vmstat, smp, until):
    """Run the timed events due at or before ``until``, in time order. Samples are taken here;
    when khugepaged or kcompactd is due, TIMER (with ``gs[G_TIMER_UNTIL] = until``) sends the
    caller out to run them in their own kernel (``kthreads.background_run``) and re-enter. FLUSH
    if a buffer is full, else OK."""
    if gs[G_NEXT_EVENT] > until:
        return OK
    st = take_samples(cfg, gs, vmstat, smp, until)
    if st != OK:
        return st
    if min(gs[G_KH_WAKE], gs[G_KC_WAKE]) <= until:
        gs[G_TIMER_UNTIL] = until
        return TIMER
    return OK
