"""Compaction (mm/compaction.c, simplified): direct for THP allocations, kcompactd, proactive
compaction and vm.compact_memory.

A migrate scanner walks pageblocks up from pfn 0, a free scanner walks MOVABLE pageblocks down from
the top of the initialised range; movable pages move from the one to the other until an order-9
block can be allocated or the scanners meet. Pages are found in page tables through the reverse
map (anon root + virtual page number), exactly one mapping per movable page.
"""
from .consts import (
    G_STALL_PS,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    C_COST_COMPACT_SCAN,
    C_COST_MIGRATE_PAGE,
    C_COMPACT_PROACTIVENESS,
    C_EXTFRAG_THRESHOLD,
    C_KCOMPACTD,
    C_NR_FRAMES,
    C_THP_DEFRAG,
    DEFRAG_DEFER,
    G_COMPACT_CONSIDERED,
    G_COMPACT_DEFER_SHIFT,
    G_COMPACT_ORDER_FAILED,
    G_FREE_COUNT,
    G_KC_ORDER,
    G_KC_WAKE,
    MAX_PAGE_ORDER,
    MIGRATE_PCPTYPES,
    NR_PAGE_ORDERS,
    VS_COMPACT_DAEMON_FREE_SCANNED,
    VS_COMPACT_DAEMON_MIGRATE_SCANNED,
    DEFRAG_ALWAYS,
    DEFRAG_DEFER_MADVISE,
    DEFRAG_MADVISE,
    FR_MAPCOUNT,
    FR_OWNER,
    G_HIGH_WATER,
    G_NR_FREE,
    G_NR_MM,
    HPAGE_PMD_ORDER,
    MIGRATE_MOVABLE,
    MM_ANON,
    MM_PGD,
    PAGEBLOCK_ORDER,
    PTE_PFN_MASK,
    VM_HUGEPAGE,
    VS_COMPACT_FAIL,
    VS_COMPACT_FREE_SCANNED,
    VS_COMPACT_ISOLATED,
    VS_COMPACT_MIGRATE_SCANNED,
    VS_COMPACT_STALL,
    VS_COMPACT_SUCCESS,
    VS_PGMIGRATE_SUCCESS,
    PG_anon,
    PG_buddy,
    PG_head,
)
from .events import rearm
from .jit import kernel
from .page_alloc import _expand, _list_del, free_pages, rmqueue
from .page_counter import frame_memcg, set_frame_memcg
from .pagetable import entry_pfn, pmd_lookup, pte_lookup
from .tlb import flush_tlb_page

PB_NR = 1 << PAGEBLOCK_ORDER
COMPACT_MAX_DEFER_SHIFT = 6


@kernel
def _movable_source(fr32, fr_flags, fr_order, start):
    """(suitable, in-use frames, frames scanned): every in-use frame a movable order-0 anon page
    mapped at most once (isolate_migratepages_block would give up on anything else)."""
    p = start
    used = 0
    while p < start + PB_NR:
        f = fr_flags[p]
        if f & PG_buddy:
            p += 1 << fr_order[p]
            continue
        if (f & PG_head) and (f & PG_anon) and fr_order[p] == 0 and fr32[FR_MAPCOUNT, p] <= 1:
            used += 1
            p += 1
            continue
        return False, used, p - start + 1
    return True, used, PB_NR


@kernel
def _isolate_free_in_block(gs, fr32, fr_flags, fr_order, pb_mt, start):
    """Take the lowest free page of a pageblock (isolate_freepages_block, one page); -1 if none."""
    p = start
    while p < start + PB_NR:
        if fr_flags[p] & PG_buddy:
            o = fr_order[p]
            _list_del(gs, fr32, p, o, pb_mt[p >> PAGEBLOCK_ORDER])
            fr_flags[p] &= ~PG_buddy
            _expand(gs, fr32, fr_flags, fr_order, pb_mt, p, 0, o)
            fr_order[p] = 0
            gs[G_NR_FREE] -= 1
            return p, p - start + 1
        p += 1
    return -1, PB_NR


@kernel
def _repoint_pte(cfg, pt, fr_idx, mm, gs, anon, vpn, old, new):
    """rmap walk: find the PTE mapping ``old`` in an mm of the anon tree and point it at ``new``."""
    va = vpn << 12
    for m in range(gs[G_NR_MM]):
        if mm[MM_ANON, m] != anon or mm[MM_PGD, m] < 0:
            continue
        pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, m], va)
        if pos < 0 or pt[pos] == 0 or (pt[pos] & _PAGE_PSE) != 0:
            continue
        q = pte_lookup(pt, fr_idx, pt[pos], va)
        e = pt[q]
        if (e & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0 and entry_pfn(e) == old:
            pt[q] = (e & ~PTE_PFN_MASK) | (new << 12)
            return m
    return -1


MODE_DIRECT = 0         # a THP allocation: stop when an order-9 block can be allocated, take it
MODE_ORDER = 1          # kcompactd for an order: stop once an order-9 block is free
MODE_FULL = 2           # vm.compact_memory: until the scanners meet
MODE_PROACTIVE = 3      # proactive compaction: until the fragmentation score is at the low mark


@kernel
def contig_info(cfg, gs, order):
    """fill_contig_page_info: (free pages, free blocks, free blocks of ``order`` or larger counted
    in ``order``-sized units). Never-touched frames above the high-water mark are free order-10
    blocks."""
    pages = 0
    blocks = 0
    suitable = 0
    for o in range(NR_PAGE_ORDERS):
        n = 0
        for mt in range(MIGRATE_PCPTYPES):
            n += gs[G_FREE_COUNT + o * MIGRATE_PCPTYPES + mt]
        if o == MAX_PAGE_ORDER:
            n += (cfg[C_NR_FRAMES] - gs[G_HIGH_WATER]) >> MAX_PAGE_ORDER
        pages += n << o
        blocks += n
        if o >= order:
            suitable += n << (o - order)
    return pages, blocks, suitable


@kernel
def fragmentation_index(cfg, gs, order):
    """__fragmentation_index: -1000 if a block of ``order`` is free; towards 0 the failure is for
    lack of memory, towards 1000 for fragmentation."""
    pages, blocks, suitable = contig_info(cfg, gs, order)
    if blocks == 0:
        return 0
    if suitable > 0:
        return -1000
    return 1000 - (1000 + (pages * 1000) // (1 << order)) // blocks


@kernel
def fragmentation_score(cfg, gs):
    """fragmentation_score_node for one zone: extfrag_for_order(COMPACTION_HPAGE_ORDER), the
    percentage of free memory not in free blocks of order 9 or more."""
    pages, blocks, suitable = contig_info(cfg, gs, HPAGE_PMD_ORDER)
    if pages == 0:
        return 0
    return (pages - (suitable << HPAGE_PMD_ORDER)) * 100 // pages


@kernel
def score_wmark(cfg, low):
    """fragmentation_score_wmark: low = max(100 - proactiveness, 5), high = min(low + 10, 100)."""
    wl = max(100 - cfg[C_COMPACT_PROACTIVENESS], 5)
    return wl if low else min(wl + 10, 100)


@kernel
def compaction_deferred(gs, order):
    """compaction_deferred: skip this attempt after recent failures (1, 2, 4 .. 64 attempts)."""
    if order < gs[G_COMPACT_ORDER_FAILED]:
        return False
    limit = 1 << gs[G_COMPACT_DEFER_SHIFT]
    gs[G_COMPACT_CONSIDERED] += 1
    if gs[G_COMPACT_CONSIDERED] >= limit:
        gs[G_COMPACT_CONSIDERED] = limit
        return False
    return True


@kernel
def defer_compaction(gs, order):
    gs[G_COMPACT_CONSIDERED] = 0
    gs[G_COMPACT_DEFER_SHIFT] = min(gs[G_COMPACT_DEFER_SHIFT] + 1, COMPACT_MAX_DEFER_SHIFT)
    if order < gs[G_COMPACT_ORDER_FAILED]:
        gs[G_COMPACT_ORDER_FAILED] = order


@kernel
def compaction_defer_reset(gs, order, alloc_success):
    if alloc_success:
        gs[G_COMPACT_CONSIDERED] = 0
        gs[G_COMPACT_DEFER_SHIFT] = 0
    if order >= gs[G_COMPACT_ORDER_FAILED]:
        gs[G_COMPACT_ORDER_FAILED] = order + 1


@kernel
def compaction_suitable(cfg, gs, order):
    """compaction_suitable's fragmentation test for costly orders: an index at or below
    extfrag_threshold means the allocation fails for lack of memory, which compaction cannot
    fix."""
    fi = fragmentation_index(cfg, gs, order)
    return not (0 <= fi <= cfg[C_EXTFRAG_THRESHOLD])


@kernel
def _done(cfg, gs, mode):
    if mode == MODE_ORDER:
        return contig_info(cfg, gs, HPAGE_PMD_ORDER)[2] > 0
    if mode == MODE_PROACTIVE:
        return fragmentation_score(cfg, gs) <= score_wmark(cfg, True)
    return False


@kernel
def compact_zone(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm, tlb, pwc,
                 mode, daemon):
    """Migrate movable pages from low pageblocks into free pages of high ones. Returns
    (pfn of the allocated order-9 block for MODE_DIRECT, else -1; cost in ps; pages migrated).
    ``daemon``: kcompactd's work, counted in compact_daemon_* as well."""
    cost = 0
    migrated = 0
    nblocks = gs[G_HIGH_WATER] >> PAGEBLOCK_ORDER
    mig = 0
    free_pb = nblocks - 1
    if _done(cfg, gs, mode):
        return -1, 0, 0
    while mig < free_pb:
        start = mig << PAGEBLOCK_ORDER
        ok, used, scanned = _movable_source(fr32, fr_flags, fr_order, start)
        vmstat[VS_COMPACT_MIGRATE_SCANNED] += scanned
        if daemon:
            vmstat[VS_COMPACT_DAEMON_MIGRATE_SCANNED] += scanned
        cost += scanned * cfg[C_COST_COMPACT_SCAN]
        if ok and used > 0:
            p = start
            while p < start + PB_NR and mig < free_pb:
                f = fr_flags[p]
                if f & PG_buddy:
                    p += 1 << fr_order[p]
                    continue
                if (f & PG_head) == 0:
                    # inside a free block: a page freed here merged with its free buddy
                    p += 1
                    continue
                # a target page from the free scanner
                new = -1
                while new < 0 and free_pb > mig:
                    if pb_mt[free_pb] == MIGRATE_MOVABLE:
                        new, fs = _isolate_free_in_block(gs, fr32, fr_flags, fr_order, pb_mt,
                                                         free_pb << PAGEBLOCK_ORDER)
                        vmstat[VS_COMPACT_FREE_SCANNED] += fs
                        if daemon:
                            vmstat[VS_COMPACT_DAEMON_FREE_SCANNED] += fs
                        cost += fs * cfg[C_COST_COMPACT_SCAN]
                    if new < 0:
                        free_pb -= 1
                if new < 0:
                    break
                vmstat[VS_COMPACT_ISOLATED] += 2
                anon = fr32[FR_OWNER, p]
                vpn = fr_idx[p]
                fr_flags[new] = fr_flags[p]
                fr_order[new] = 0
                fr32[FR_OWNER, new] = anon
                fr32[FR_MAPCOUNT, new] = fr32[FR_MAPCOUNT, p]
                set_frame_memcg(fr32, new, frame_memcg(fr32, p))     # mem_cgroup_migrate
                fr_idx[new] = vpn
                if fr32[FR_MAPCOUNT, p] > 0:
                    m = _repoint_pte(cfg, pt, fr_idx, mm, gs, anon, vpn, p, new)
                    if m >= 0:
                        flush_tlb_page(cfg, tlb, pwc, m + 1, vpn << 12)
                fr_flags[p] = 0
                fr32[FR_OWNER, p] = 0
                fr32[FR_MAPCOUNT, p] = 0
                fr_idx[p] = 0
                free_pages(gs, fr32, fr_flags, fr_order, pb_mt, p, 0)
                vmstat[VS_PGMIGRATE_SUCCESS] += 1
                cost += cfg[C_COST_MIGRATE_PAGE]
                migrated += 1
                p += 1
            if mode == MODE_DIRECT:
                pfn = rmqueue(gs, cfg, fr32, fr_flags, fr_order, pb_mt, HPAGE_PMD_ORDER,
                              MIGRATE_MOVABLE)
                if pfn >= 0:
                    return pfn, cost, migrated
            elif _done(cfg, gs, mode):
                return -1, cost, migrated
        mig += 1
    return -1, cost, migrated


@kernel
def try_compact_direct(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm, tlb,
                       pwc):
    """__alloc_pages_direct_compact for an order-9 allocation: deferred after failures, skipped
    when the failure is for lack of memory (extfrag_threshold), else a compaction stall.
    Returns (pfn or -1, cost in ps)."""
    if compaction_deferred(gs, HPAGE_PMD_ORDER):
        return -1, 0
    if not compaction_suitable(cfg, gs, HPAGE_PMD_ORDER):
        return -1, 0
    vmstat[VS_COMPACT_STALL] += 1
    pfn, cost, _ = compact_zone(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm,
                                tlb, pwc, MODE_DIRECT, False)
    if pfn >= 0:
        vmstat[VS_COMPACT_SUCCESS] += 1
        compaction_defer_reset(gs, HPAGE_PMD_ORDER, True)
    else:
        vmstat[VS_COMPACT_FAIL] += 1
        defer_compaction(gs, HPAGE_PMD_ORDER)
    return pfn, cost


@kernel
def wakeup_kcompactd(cfg, gs, order, now):
    """wakeup_kcompactd (through kswapd, for a failed high-order allocation): kcompactd runs at
    ``now`` for ``order``. No kcompactd before 4.6."""
    if cfg[C_KCOMPACTD] == 0:
        return
    if order > gs[G_KC_ORDER]:
        gs[G_KC_ORDER] = order
    if now < gs[G_KC_WAKE]:
        gs[G_KC_WAKE] = now
        rearm(gs)


@kernel
def defrag_direct(cfg, vm_flags):
    """Whether a THP fault may stall in direct compaction (the sysfs defrag mode)."""
    d = cfg[C_THP_DEFRAG]
    if d == DEFRAG_ALWAYS:
        return True
    if d == DEFRAG_MADVISE or d == DEFRAG_DEFER_MADVISE:
        return (vm_flags & VM_HUGEPAGE) != 0
    return False


@kernel
def defrag_wakes_kswapd(cfg, vm_flags):
    """Whether the THP allocation's gfp mask has __GFP_KSWAPD_RECLAIM (kswapd, then kcompactd,
    are woken when it fails): always, defer, defer+madvise, and madvise in a VM_HUGEPAGE VMA."""
    d = cfg[C_THP_DEFRAG]
    if d == DEFRAG_ALWAYS or d == DEFRAG_DEFER or d == DEFRAG_DEFER_MADVISE:
        return True
    if d == DEFRAG_MADVISE:
        return (vm_flags & VM_HUGEPAGE) != 0
    return False


@kernel
def alloc_thp(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm, tlb, pwc,
              vm_flags, now):
    """Allocate an order-9 MOVABLE folio with the effort the defrag mode allows: (pfn, cost)."""
    pfn = rmqueue(gs, cfg, fr32, fr_flags, fr_order, pb_mt, HPAGE_PMD_ORDER, MIGRATE_MOVABLE)
    if pfn >= 0:
        return pfn, 0
    if defrag_wakes_kswapd(cfg, vm_flags):
        wakeup_kcompactd(cfg, gs, HPAGE_PMD_ORDER, now)
    if not defrag_direct(cfg, vm_flags):
        return pfn, 0
    pfn, c = try_compact_direct(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm,
                                tlb, pwc)
    gs[G_STALL_PS] += c                     # direct compaction is a memory stall (PSI)
    return pfn, c
