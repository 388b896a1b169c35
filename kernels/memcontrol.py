"""Charging with reclaim (mm/memcontrol.c try_charge) and memory.high.

``try_charge`` charges ``nr`` pages to a memcg. When a counter on the way up would pass its
limit it reclaims from that memcg's subtree (``try_to_free_mem_cgroup_pages``) and tries again,
as the kernel's retry loop does: again at once while reclaim made room or made progress on a
small charge, once more after draining the per-CPU stocks, then up to MAX_RECLAIM_RETRIES
times. A charge that still fails records the memcg over its limit in ``G_OOM_MEMCG`` and returns
it; what happens next (the memcg OOM killer, a wait, or -ENOMEM) is the OOM model's decision,
taken by the caller. Charges above PAGE_ALLOC_COSTLY_ORDER (THPs) never lead to an OOM kill
(mem_cgroup_oom skips costly orders): the caller falls back to base pages.

After a charge that succeeds, a memcg above its memory.high counts a ``high`` event and is
reclaimed back under it at once, on the charging task's clock (the kernel does this on the way
back to user space, mem_cgroup_handle_over_high, and may also throttle; the penalty sleep is not
modelled).
"""
from .consts import (
    C_COST_RECLAIM_PAGE,
    FG_WMARK_LOW,
    G_CUR_MEMCG,
    G_NR_FREE,
    G_OOM_MEMCG,
    G_STALL_PS,
    MAX_RECLAIM_RETRIES,
    MC_EV_HIGH,
    MC_HIGH,
    MC_MAX,
    MC_PARENT,
    MC_MEMSW_MAX,
    MC_SWAP_USAGE,
    MC_USAGE,
    MIGRATE_MOVABLE,
    PAGE_COUNTER_MAX,
    VS_PGALLOC,
    SWAP_CLUSTER_MAX,
)
from .jit import kernel
from .filemap import charge_kind
from .page_alloc import rmqueue
from .page_counter import (
    mc,
    memcg_commit,
    memcg_try_charge,
    page_counter_charge,
    page_counter_uncharge,
)
from .vmscan import alloc_page_reclaim, take_swap_io, try_to_free_mem_cgroup_pages

PAGE_ALLOC_COSTLY_ORDER = 3


@kernel
def memcg_margin(gs, cg):
    """mem_cgroup_margin: pages ``cg`` can still charge before any counter above it is full."""
    m = PAGE_COUNTER_MAX
    c = cg
    while c >= 0:
        u = gs[mc(c, MC_USAGE)]
        m = min(m, gs[mc(c, MC_MAX)] - u, gs[mc(c, MC_MEMSW_MAX)] - u - gs[mc(c, MC_SWAP_USAGE)])
        c = gs[mc(c, MC_PARENT)]
    return max(m, 0)


@kernel
def handle_over_high(S, cg):
    """Reclaim every memcg from ``cg`` up that is above memory.high back under it; returns the
    cost in ps. Each counts a ``high`` event."""
    gs = S.gs
    cost = 0
    c = cg
    while c > 0:
        over = gs[mc(c, MC_USAGE)] - gs[mc(c, MC_HIGH)]
        if over > 0:
            gs[mc(c, MC_EV_HIGH)] += 1
            got = try_to_free_mem_cgroup_pages(S, c, over)
            cost += got * S.cfg[C_COST_RECLAIM_PAGE] + take_swap_io(gs)
        c = gs[mc(c, MC_PARENT)]
    return cost


@kernel
def try_charge(S, cg, nr):
    """Charge ``nr`` pages to ``cg``, reclaiming as the kernel's try_charge does. Returns
    (-1 or the memcg whose limit refused the charge, cost in ps). The root never refuses."""
    gs = S.gs
    cost = 0
    retries = MAX_RECLAIM_RETRIES
    drained = False
    while True:
        over = memcg_try_charge(gs, cg, nr)
        if over < 0:
            if cg > 0:
                cost += handle_over_high(S, cg)
            gs[G_STALL_PS] += cost                # memcg reclaim is a memory stall (PSI)
            return -1, cost
        got = try_to_free_mem_cgroup_pages(S, over, max(nr, SWAP_CLUSTER_MAX))
        cost += got * S.cfg[C_COST_RECLAIM_PAGE] + take_swap_io(gs)
        if memcg_margin(gs, over) >= nr:
            continue
        if not drained:
            drained = True
            continue
        if got > 0 and nr <= (1 << PAGE_ALLOC_COSTLY_ORDER):
            continue
        if retries == 0:
            if nr <= (1 << PAGE_ALLOC_COSTLY_ORDER):
                gs[G_OOM_MEMCG] = over
            gs[G_STALL_PS] += cost
            return over, cost
        retries -= 1


@kernel(inline="always")
def mem_cgroup_charge(S, cg, nr):
    """``try_charge`` for a folio about to be allocated: the root's counter is only counted (no
    limit, no reclaim, no call with the state), any other memcg goes through ``try_charge``."""
    if cg == 0:
        page_counter_charge(S.gs, 0, nr)
        return -1, 0
    return try_charge(S, cg, nr)


@kernel
def pagecache_alloc(S, ii, now):
    """A page for inode ``ii``'s page cache: charged to the current memcg (``G_CUR_MEMCG``),
    allocated with reclaim, committed (so it joins its memcg's LRU). Returns (pfn, or -1 with
    nothing charged, cost in ps); a refused charge leaves ``G_OOM_MEMCG`` set."""
    gs = S.gs
    cg = gs[G_CUR_MEMCG]
    over, cost = mem_cgroup_charge(S, cg, 1)
    if over >= 0:
        return -1, cost
    pfn, c = alloc_page_reclaim(S, now + cost)
    cost += c
    if pfn < 0:
        page_counter_uncharge(gs, cg, 1)
        return -1, cost
    memcg_commit(gs, S.fr32, cg, pfn, 1, charge_kind(S.fs, S.ino, ii))
    return pfn, cost


@kernel
def pagecache_alloc_order(S, ii, order, now):
    """A large folio of ``order`` for inode ``ii``'s page cache, as a page-cache allocation above
    order 0 asks for one (``__GFP_NORETRY``): the buddy allocator hands out the block only above
    the low watermark (no reclaim or compaction for it here), and the memcg takes the charge
    after at most one reclaim pass (no OOM), then reclaims back under memory.high as after any
    charge. Returns (the block's first frame, charged and committed, or -1 with nothing
    charged; cost in ps)."""
    cfg, gs, fgs = S.cfg, S.gs, S.fgs
    nr = 1 << order
    if gs[G_NR_FREE] - nr <= fgs[FG_WMARK_LOW]:
        return -1, 0
    cost = 0
    cg = gs[G_CUR_MEMCG]
    over = memcg_try_charge(gs, cg, nr)
    if over >= 0:
        got = try_to_free_mem_cgroup_pages(S, over, nr)
        cost += got * cfg[C_COST_RECLAIM_PAGE]
        gs[G_STALL_PS] += got * cfg[C_COST_RECLAIM_PAGE]
        over = memcg_try_charge(gs, cg, nr)
        if over >= 0:
            return -1, cost
    if cg > 0:
        high = handle_over_high(S, cg)           # charged: memory.high is kept as for any charge
        cost += high
        gs[G_STALL_PS] += high
    head = rmqueue(gs, cfg, S.fr32, S.fr_flags, S.fr_order, S.pb_mt, order, MIGRATE_MOVABLE)
    if head < 0:
        page_counter_uncharge(gs, cg, nr)
        return -1, cost
    S.vmstat[VS_PGALLOC] += nr
    memcg_commit(gs, S.fr32, cg, head, nr, charge_kind(S.fs, S.ino, ii))
    return head, cost
