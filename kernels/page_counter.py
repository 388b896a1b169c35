"""Memory-cgroup page counters and folio charges (mm/page_counter.c, mm/memcontrol.c).

The memcg table lives at the end of ``gs`` (``gs[G_MCG + id * NR_MC + MC_*]``), so every kernel
that frees a folio, and already holds ``gs``, can uncharge it; each frame's memcg id is the
low 16 bits of ``fr32``'s ``FR_MEMCG`` word (``State.fr_memcg`` is a view of them;
``frame_memcg``/``set_frame_memcg`` reach them through ``fr32``). Id 0 is the root, which has
no limit; every other memcg has a parent with a smaller id.

The memory counter is hierarchical as in the kernel: a charge adds to the memcg and every
ancestor, and fails at the first counter (from the memcg upwards) that would pass its limit.
The statistics (MC_ANON ... MC_PGSTEAL) and events are local: memory.stat and memory.events sum
them over the subtree when read.

Nothing here reclaims: ``memcontrol.try_charge`` does, around ``memcg_try_charge``.
"""
from .consts import (
    FR_MEMCG,
    FR_MEMCG_MASK,
    G_MCG,
    HPAGE_PMD_NR,
    MC_ANON,
    MC_ANON_THP,
    MC_EV_MAX,
    MC_FAILCNT,
    MC_FILE,
    MC_MAX,
    MC_MEMSW_MAX,
    MC_PARENT,
    MC_SHMEM,
    MC_SWAP_USAGE,
    MC_USAGE,
    MC_WATERMARK,
    NR_MC,
)
from .jit import kernel

CHARGE_ANON = 0
CHARGE_FILE = 1
CHARGE_SHMEM = 2


@kernel(inline="always")
def frame_memcg(fr32, pfn):
    """The memcg frame ``pfn``'s folio is charged to (the low bits of its packed word)."""
    return fr32[FR_MEMCG, pfn] & FR_MEMCG_MASK


@kernel(inline="always")
def set_frame_memcg(fr32, pfn, cg):
    """Charge frame ``pfn`` to memcg ``cg``, leaving the rest of its packed word (the order, a
    pageblock's migratetype) as it is."""
    fr32[FR_MEMCG, pfn] = (fr32[FR_MEMCG, pfn] & ~FR_MEMCG_MASK) | cg


@kernel(inline="always")
def mc(cg, field):
    """Index of memcg ``cg``'s ``field`` in ``gs``."""
    return G_MCG + cg * NR_MC + field


@kernel
def memcg_over_limit(gs, cg, nr):
    """The first counter from ``cg`` up to the root that ``nr`` more pages would take past its
    limit (page_counter_try_charge's failing counter), or -1."""
    c = cg
    while c >= 0:
        b = G_MCG + c * NR_MC
        u = gs[b + MC_USAGE] + nr
        if u > gs[b + MC_MAX] or u + gs[b + MC_SWAP_USAGE] > gs[b + MC_MEMSW_MAX]:
            return c                  # v1's memsw counter: memory plus swap
        c = gs[b + MC_PARENT]
    return -1


@kernel
def page_counter_charge(gs, cg, nr):
    """Add ``nr`` pages to ``cg`` and its ancestors, unconditionally (page_counter_charge)."""
    c = cg
    while c >= 0:
        b = G_MCG + c * NR_MC
        u = gs[b + MC_USAGE] + nr
        gs[b + MC_USAGE] = u
        if u > gs[b + MC_WATERMARK]:
            gs[b + MC_WATERMARK] = u
        c = gs[b + MC_PARENT]


@kernel
def page_counter_uncharge(gs, cg, nr):
    c = cg
    while c >= 0:
        b = G_MCG + c * NR_MC
        gs[b + MC_USAGE] -= nr
        c = gs[b + MC_PARENT]


@kernel
def memcg_try_charge(gs, cg, nr):
    """Charge ``nr`` pages to ``cg`` if no counter on the way up passes its limit. Returns -1
    (charged), or the memcg over its limit (mem_over_limit: its failcnt and its ``max`` event
    are counted)."""
    over = memcg_over_limit(gs, cg, nr)
    if over >= 0:
        gs[mc(over, MC_FAILCNT)] += 1
        gs[mc(over, MC_EV_MAX)] += 1
        return over
    page_counter_charge(gs, cg, nr)
    return -1


@kernel(inline="always")
def _stat_items(kind):
    """The statistic a charge of ``kind`` counts in, and its THP statistic (-1: none kept; the
    page-cache THP statistics are counted from the frames when memory.stat is read)."""
    if kind == CHARGE_ANON:
        return MC_ANON, MC_ANON_THP
    if kind == CHARGE_SHMEM:
        return MC_SHMEM, -1
    return MC_FILE, -1


@kernel
def memcg_commit(gs, fr32, cg, head, nr, kind):
    """A charged folio of ``nr`` frames at ``head`` now belongs to ``cg`` (commit_charge): every
    frame records the memcg (a split keeps it), and the memcg's statistics count it. Shmem
    counts in both ``file`` and ``shmem``, as memory.stat does."""
    for p in range(head, head + nr):
        set_frame_memcg(fr32, p, cg)
    item, thp = _stat_items(kind)
    gs[mc(cg, item)] += nr
    if kind == CHARGE_SHMEM:
        gs[mc(cg, MC_FILE)] += nr
    if nr == HPAGE_PMD_NR and thp >= 0:
        gs[mc(cg, thp)] += 1


@kernel
def memcg_uncharge_folio(gs, fr32, head, nr, kind):
    """Uncharge a folio being freed (mem_cgroup_uncharge): its memcg's counters and statistics."""
    cg = frame_memcg(fr32, head)
    page_counter_uncharge(gs, cg, nr)
    item, thp = _stat_items(kind)
    gs[mc(cg, item)] -= nr
    if kind == CHARGE_SHMEM:
        gs[mc(cg, MC_FILE)] -= nr
    if nr == HPAGE_PMD_NR and thp >= 0:
        gs[mc(cg, thp)] -= 1


@kernel
def memcg_split_stat(gs, fr32, head, kind):
    """A charged PMD-sized folio was split into base pages: the THP statistic drops by one."""
    _, thp = _stat_items(kind)
    if thp >= 0:
        gs[mc(frame_memcg(fr32, head), thp)] -= 1


@kernel
def memcg_is_descendant(gs, cg, root):
    """mem_cgroup_is_descendant: ``cg`` is ``root`` or below it."""
    c = cg
    while c >= 0:
        if c == root:
            return True
        c = gs[G_MCG + c * NR_MC + MC_PARENT]
    return False
