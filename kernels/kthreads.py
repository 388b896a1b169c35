"""The background kernel threads on their own clocks: khugepaged and kcompactd, run in time order
(with the vmstat samples between them) when a kernel stops with TIMER, and vm.compact_memory.

kcompactd (4.6+) sleeps until an order-9 allocation that may wake kswapd fails
(``wakeup_kcompactd``); it then compacts until an order-9 block is free, with the deferral rules
of direct compaction. From 5.9 it also wakes every 500 ms for proactive compaction: when the
fragmentation score (the percentage of free memory outside free order-9 blocks) is above
``100 - compaction_proactiveness + 10``, it compacts down to ``100 - compaction_proactiveness``;
without progress its next check comes 64 times later (kcompactd's loop in mm/compaction.c).
"""
from .compaction import (
    MODE_FULL,
    MODE_ORDER,
    MODE_PROACTIVE,
    compact_zone,
    compaction_defer_reset,
    compaction_deferred,
    compaction_suitable,
    contig_info,
    defer_compaction,
    fragmentation_score,
    score_wmark,
)
from .consts import (
    C_COMPACT_PROACTIVENESS,
    C_COST_SYSCALL,
    C_KERNEL,
    FG_KSWAPD_CLOCK,
    G_KC_BUSY_PS,
    G_KC_ORDER,
    G_KC_PROACTIVE_SHIFT,
    G_KC_WAKE,
    G_KH_WAKE,
    G_TIMER_UNTIL,
    OK,
    T_CLOCK,
    VS_COMPACT_DAEMON_WAKE,
)
from .events import NEVER, rearm, take_samples
from .jit import kernel
from .khugepaged import khugepaged_wakeup
from .syscalls import op_begin, op_end
from .vmscan import KSWAPD_IDLE

PROACTIVE_PERIOD_PS = 500 * 10 ** 9          # HPAGE_FRAG_CHECK_INTERVAL_MSEC
COMPACT_MAX_DEFER_SHIFT = 6


@kernel
def proactive_enabled(cfg):
    return cfg[C_COMPACT_PROACTIVENESS] > 0 and cfg[C_KERNEL] >= 509


@kernel
def kcompactd_wakeup(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm, tlb, pwc,
                     fgs):
    """One kcompactd wakeup at ``gs[G_KC_WAKE]``: the requested work (kcompactd_do_work) or the
    proactive check, then its next wakeup."""
    t = gs[G_KC_WAKE]
    busy = 0
    order = gs[G_KC_ORDER]
    shift = 0
    if order >= 0:
        gs[G_KC_ORDER] = -1
        vmstat[VS_COMPACT_DAEMON_WAKE] += 1
        if not compaction_deferred(gs, order) and compaction_suitable(cfg, gs, order):
            _, busy, _ = compact_zone(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt,
                                      pt, mm, tlb, pwc, MODE_ORDER, True)
            if contig_info(cfg, gs, order)[2] > 0:
                compaction_defer_reset(gs, order, False)
            else:
                defer_compaction(gs, order)
    elif proactive_enabled(cfg) and fgs[FG_KSWAPD_CLOCK] == KSWAPD_IDLE:
        # should_proactive_compact_node, then compact_node(proactive)
        before = fragmentation_score(cfg, gs)
        if before > score_wmark(cfg, False):
            _, busy, _ = compact_zone(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt,
                                      pt, mm, tlb, pwc, MODE_PROACTIVE, True)
            if fragmentation_score(cfg, gs) >= before:
                shift = COMPACT_MAX_DEFER_SHIFT
    gs[G_KC_PROACTIVE_SHIFT] = shift
    gs[G_KC_BUSY_PS] += busy
    if proactive_enabled(cfg):
        gs[G_KC_WAKE] = t + busy + (PROACTIVE_PERIOD_PS << shift)
    else:
        gs[G_KC_WAKE] = NEVER
    rearm(gs)


@kernel
def background_run(S):
    """The entry kernel for TIMER: run khugepaged's and kcompactd's wakeups (and the vmstat
    samples between them) in time order, up to ``gs[G_TIMER_UNTIL]``. Returns (OK or FLUSH,
    wakeups run)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    until = gs[G_TIMER_UNTIL]
    n = 0
    while True:
        st = take_samples(cfg, gs, vmstat, smp, until)
        if st != OK:
            return st, n
        tk = gs[G_KH_WAKE]
        tc = gs[G_KC_WAKE]
        if min(tk, tc) > until:
            return OK, n
        if tk <= tc:
            khugepaged_wakeup(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux,
                              mm, vma, tlb, pwc, S)
        else:
            kcompactd_wakeup(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm,
                             tlb, pwc, fgs)
        n += 1


@kernel
def sys_compact_memory(S, ti):
    """A write to /proc/sys/vm/compact_memory: compact the whole zone, on the writer's clock.
    Returns (OK, pages migrated)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    op_begin(task, cpus, ti)
    _, cost, migrated = compact_zone(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt,
                                     mm, tlb, pwc, MODE_FULL, False)
    task[T_CLOCK, ti] += cfg[C_COST_SYSCALL] + cost
    op_end(gs, task, cpus, ti)
    return OK, migrated
