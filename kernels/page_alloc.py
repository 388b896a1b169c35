"""The buddy allocator (mm/page_alloc.c): free lists per order and migratetype, lazily initialised.

Frames at and above ``gs[G_HIGH_WATER]`` are free without being on any list: they behave as the
order-10 MOVABLE blocks at the tail of that list (deferred struct-page init), so a huge machine is
built in constant time and only the frames it touches cost host memory.
"""
from .consts import (
    C_NR_FRAMES,
    FR_NEXT,
    FR_PREV,
    G_FREE_COUNT,
    G_FREE_HEAD,
    G_HIGH_WATER,
    G_NR_FREE,
    MAX_ORDER_NR_PAGES,
    MAX_PAGE_ORDER,
    MIGRATE_MOVABLE,
    MIGRATE_PCPTYPES,
    MIGRATE_RECLAIMABLE,
    MIGRATE_UNMOVABLE,
    PAGEBLOCK_ORDER,
    PG_buddy,
)
from .jit import kernel


@kernel(inline="always")
def _list_add(gs, links, pfn, order, mt):
    """Add a free block at the head of the (order, mt) list."""
    li = order * MIGRATE_PCPTYPES + mt
    head = gs[G_FREE_HEAD + li]
    links[FR_NEXT, pfn] = head
    links[FR_PREV, pfn] = -1
    if head >= 0:
        links[FR_PREV, head] = pfn
    gs[G_FREE_HEAD + li] = pfn
    gs[G_FREE_COUNT + li] += 1


@kernel(inline="always")
def _list_del(gs, links, pfn, order, mt):
    li = order * MIGRATE_PCPTYPES + mt
    nxt = links[FR_NEXT, pfn]
    prv = links[FR_PREV, pfn]
    if prv >= 0:
        links[FR_NEXT, prv] = nxt
    else:
        gs[G_FREE_HEAD + li] = nxt
    if nxt >= 0:
        links[FR_PREV, nxt] = prv
    gs[G_FREE_COUNT + li] -= 1


@kernel(inline="always")
def _take_implicit(gs, cfg, fr_flags, fr_order, pb_mt):
    """Carve the order-10 block at the high-water mark (the tail of the (10, MOVABLE) list)."""
    hw = gs[G_HIGH_WATER]
    if hw >= cfg[C_NR_FRAMES]:
        return -1
    gs[G_HIGH_WATER] = hw + MAX_ORDER_NR_PAGES
    return hw


@kernel(inline="always")
def _remove_head(gs, cfg, links, fr_flags, fr_order, pb_mt, order, mt):
    """Pop the head block of (order, mt), or -1. The implicit blocks extend (10, MOVABLE)."""
    li = order * MIGRATE_PCPTYPES + mt
    pfn = gs[G_FREE_HEAD + li]
    if pfn >= 0:
        _list_del(gs, links, pfn, order, mt)
        fr_flags[pfn] &= ~PG_buddy
        return pfn
    if order == MAX_PAGE_ORDER and mt == MIGRATE_MOVABLE:
        return _take_implicit(gs, cfg, fr_flags, fr_order, pb_mt)
    return -1


@kernel(inline="always")
def _expand(gs, links, fr_flags, fr_order, pb_mt, pfn, low, high):
    """Split a block of order ``high`` down to ``low``, freeing the upper halves (expand())."""
    while high > low:
        high -= 1
        half = pfn + (1 << high)
        fr_flags[half] |= PG_buddy
        fr_order[half] = high
        _list_add(gs, links, half, high, pb_mt[half >> PAGEBLOCK_ORDER])


@kernel
def _claim_pageblocks(gs, links, fr_flags, fr_order, pb_mt, pfn, order, mt):
    """Change the migratetype of the pageblocks a stolen block touches and move their other free
    blocks to ``mt``'s lists (try_to_claim_block / move_freepages_block, simplified).

    Invariant kept everywhere: a free block sits on the list of its first pageblock's migratetype.
    """
    if order >= PAGEBLOCK_ORDER:
        pb_first = pfn >> PAGEBLOCK_ORDER
        for b in range(1 << (order - PAGEBLOCK_ORDER)):
            pb_mt[pb_first + b] = mt
        return
    start = (pfn >> PAGEBLOCK_ORDER) << PAGEBLOCK_ORDER
    old = pb_mt[start >> PAGEBLOCK_ORDER]
    pb_mt[start >> PAGEBLOCK_ORDER] = mt
    if old == mt:
        return
    p = start
    end = start + (1 << PAGEBLOCK_ORDER)
    while p < end:
        if p != pfn and (fr_flags[p] & PG_buddy) != 0:
            o = fr_order[p]
            _list_del(gs, links, p, o, old)
            _list_add(gs, links, p, o, mt)
            p += 1 << o
        elif p == pfn:
            p += 1 << order
        else:
            p += 1


@kernel(inline="always")
def rmqueue(gs, cfg, links, fr_flags, fr_order, pb_mt, order, mt):
    """Allocate 2**order frames of migratetype ``mt``; return the first pfn or -1.

    __rmqueue_smallest inline (the common case, so the fault path pays no call for it), then the
    fallback that steals from other migratetypes.
    """
    for o in range(order, MAX_PAGE_ORDER + 1):
        pfn = _remove_head(gs, cfg, links, fr_flags, fr_order, pb_mt, o, mt)
        if pfn >= 0:
            _expand(gs, links, fr_flags, fr_order, pb_mt, pfn, order, o)
            gs[G_NR_FREE] -= 1 << order
            fr_order[pfn] = order
            return pfn
    return _rmqueue_fallback(gs, cfg, links, fr_flags, fr_order, pb_mt, order, mt)


@kernel
def _rmqueue_fallback(gs, cfg, links, fr_flags, fr_order, pb_mt, order, mt):
    """__rmqueue_fallback: steal from other migratetypes, largest block first, claiming the
    pageblock when the stolen block is at least half a pageblock."""
    for o in range(MAX_PAGE_ORDER, order - 1, -1):
        for k in range(2):
            if mt == MIGRATE_UNMOVABLE:
                f = MIGRATE_RECLAIMABLE if k == 0 else MIGRATE_MOVABLE
            elif mt == MIGRATE_MOVABLE:
                f = MIGRATE_RECLAIMABLE if k == 0 else MIGRATE_UNMOVABLE
            else:
                f = MIGRATE_UNMOVABLE if k == 0 else MIGRATE_MOVABLE
            pfn = _remove_head(gs, cfg, links, fr_flags, fr_order, pb_mt, o, f)
            if pfn >= 0:
                if o >= PAGEBLOCK_ORDER // 2:
                    _claim_pageblocks(gs, links, fr_flags, fr_order, pb_mt, pfn, o, mt)
                _expand(gs, links, fr_flags, fr_order, pb_mt, pfn, order, o)
                gs[G_NR_FREE] -= 1 << order
                fr_order[pfn] = order
                return pfn
    return -1


@kernel
def free_pages(gs, links, fr_flags, fr_order, pb_mt, pfn, order):
    """__free_one_page: merge with free buddies of the same order, then list at the head."""
    gs[G_NR_FREE] += 1 << order
    hw = gs[G_HIGH_WATER]
    while order < MAX_PAGE_ORDER:
        buddy = pfn ^ (1 << order)
        if buddy >= hw or (fr_flags[buddy] & PG_buddy) == 0 or fr_order[buddy] != order:
            break
        _list_del(gs, links, buddy, order, pb_mt[buddy >> PAGEBLOCK_ORDER])
        fr_flags[buddy] &= ~PG_buddy
        pfn = min(pfn, buddy)
        order += 1
    fr_flags[pfn] |= PG_buddy
    fr_order[pfn] = order
    _list_add(gs, links, pfn, order, pb_mt[pfn >> PAGEBLOCK_ORDER])
