"""LRU lists and replacement policies (mm/swap.c, include/linux/mm_inline.h, mm/vmscan.c's list rules).

Folios sit on the lists of their lruvec (one per memory cgroup on our single node), linked through
``fr32[FR_NEXT]``/``fr32[FR_PREV]`` as ``folio->lru`` links them; the ``lru`` array holds each
list's head, tail and size in pages (``LV_*`` rows, one column per lruvec). The head is the young
end: new folios are added there and reclaim takes from the tail.

The replacement policy is a parameter of every function that depends on it:

- ``POLICY_LINUX``: the kernel's two lists. ``folio_mark_accessed`` sets PG_referenced on the first
  access and activates the folio on the second; reclaim deactivates from the active tail while the
  inactive list is low (``inactive_is_low``: inactive * ratio < active, ratio =
  int_sqrt(10 * lruvec GiB), at least 1) in batches of SWAP_CLUSTER_MAX, and evicts from the
  inactive tail. A PG_referenced bit alone does not save an unmapped folio (folio_check_references
  returns FOLIOREF_RECLAIM_CLEAN for it).
- ``POLICY_LRU``: every access moves the folio to the head; evict the tail.
- ``POLICY_CLOCK``: an access sets PG_referenced; reclaim clears the bit of a referenced tail folio
  and moves it to the head (a second chance), and evicts the first unreferenced one.
- ``POLICY_FIFO``: accesses change nothing; evict the tail.

Folios that cannot be dropped now (dirty or under writeback, mapped, unevictable) are passed over
as the kernel does: under the Linux policy they are activated with PG_reclaim set
(``activate_locked``), under the others rotated to the head.
"""
from .consts import (
    FR_MAPCOUNT,
    FR_NEXT,
    FR_PREV,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE,
    LRU_UNEVICTABLE,
    LV_AGE,
    LV_HEAD,
    LV_PAGES,
    LV_TAIL,
    PG_active,
    PG_dirty,
    PG_lru,
    PG_mlocked,
    PG_ramfs,
    PG_reclaim,
    PG_referenced,
    PG_swapbacked,
    PG_unevictable,
    PG_workingset,
    PG_writeback,
    POLICY_CLOCK,
    POLICY_LINUX,
    POLICY_LRU,
    SWAP_CLUSTER_MAX,
    VS_PGACTIVATE,
    VS_PGDEACTIVATE,
    VS_PGREFILL,
    VS_PGSCAN_FILE,
    VS_NR_MLOCK,
    VS_NR_UNEVICTABLE,
    VS_UNEVICTABLE_PGS_CULLED,
    VS_UNEVICTABLE_PGS_MLOCKED,
    VS_UNEVICTABLE_PGS_MUNLOCKED,
    VS_UNEVICTABLE_PGS_RESCUED,
)
from .jit import kernel


@kernel(inline="always")
def lru_add_head(lru, links, lv, li, pfn, nr):
    head = lru[LV_HEAD + li, lv]
    links[FR_NEXT, pfn] = head
    links[FR_PREV, pfn] = -1
    if head >= 0:
        links[FR_PREV, head] = pfn
    else:
        lru[LV_TAIL + li, lv] = pfn
    lru[LV_HEAD + li, lv] = pfn
    lru[LV_PAGES + li, lv] += nr


@kernel(inline="always")
def lru_del(lru, links, lv, li, pfn, nr):
    nxt = links[FR_NEXT, pfn]
    prv = links[FR_PREV, pfn]
    if prv >= 0:
        links[FR_NEXT, prv] = nxt
    else:
        lru[LV_HEAD + li, lv] = nxt
    if nxt >= 0:
        links[FR_PREV, nxt] = prv
    else:
        lru[LV_TAIL + li, lv] = prv
    lru[LV_PAGES + li, lv] -= nr


@kernel(inline="always")
def lru_move_head(lru, links, lv, li, pfn):
    """Move a folio already on list ``li`` to its head."""
    if lru[LV_HEAD + li, lv] != pfn:
        lru_del(lru, links, lv, li, pfn, 0)
        lru_add_head(lru, links, lv, li, pfn, 0)


@kernel(inline="always")
def file_lru(fr_flags, pfn):
    """The list a folio belongs on (``folio_lru_list``): unevictable; swap-backed (tmpfs) pages on
    the anon lists; the rest on the file lists; active or inactive by PG_active."""
    f = fr_flags[pfn]
    if f & PG_unevictable:
        return LRU_UNEVICTABLE
    base = LRU_INACTIVE_ANON if f & PG_swapbacked else LRU_INACTIVE_FILE
    return base + 1 if f & PG_active else base


@kernel(inline="always")
def folio_add_lru(lru, links, fr_flags, lv, pfn, nr):
    """A new page-cache folio enters the inactive file list (or the active one if it carries
    PG_active, as a refault judged part of the workingset does). An unevictable folio is only
    counted, as ``lruvec_add_folio`` has done since 5.18: nothing walks that list, and its link
    slot holds the folio's ``mlock_count`` instead (0 to start with, as ``lru_add`` sets it)."""
    fr_flags[pfn] |= PG_lru
    li = file_lru(fr_flags, pfn)
    if li == LRU_UNEVICTABLE:
        links[FR_NEXT, pfn] = -1
        links[FR_PREV, pfn] = 0
        lru[LV_PAGES + li, lv] += nr
    else:
        lru_add_head(lru, links, lv, li, pfn, nr)


@kernel(inline="always")
def folio_del_lru(lru, links, fr_flags, lv, pfn, nr):
    if fr_flags[pfn] & PG_lru:
        li = file_lru(fr_flags, pfn)
        if li == LRU_UNEVICTABLE:
            lru[LV_PAGES + li, lv] -= nr
            links[FR_NEXT, pfn] = 0
            links[FR_PREV, pfn] = 0
        else:
            lru_del(lru, links, lv, li, pfn, nr)
        fr_flags[pfn] &= ~PG_lru


# ---- mlocked page-cache folios (mm/mlock.c, 5.18+) -------------------------------------------------
# A page-cache folio of any filesystem is mlocked as Linux mlocks it: PG_mlocked and NR_MLOCK, and
# off its evictable list onto the unevictable one (counted there, its link slot FR_PREV holding
# the folio's mlock_count). Nothing in the simulation keeps a folio isolated from its list across
# an operation, so the paths Linux takes for an isolated folio (unevictable_pgs_stranded) are
# never taken.

@kernel
def mlock_cache_folio(vmstat, lru, links, fr_flags, lv, head, nr):
    """``mlock_folio`` + ``__mlock_folio`` for a page-cache folio on its LRU list: PG_mlocked the
    first time; onto the unevictable list (``unevictable_pgs_culled``) with mlock_count 1, or one
    more count where it is there already (a ramfs folio starts there with count 0)."""
    f = fr_flags[head]
    if not f & PG_mlocked:
        f |= PG_mlocked
        fr_flags[head] = f
        vmstat[VS_NR_MLOCK] += nr
        vmstat[VS_UNEVICTABLE_PGS_MLOCKED] += nr
    if not f & PG_lru:
        return
    if f & PG_unevictable:
        links[FR_PREV, head] += 1
        return
    lru_del(lru, links, lv, file_lru(fr_flags, head), head, nr)
    fr_flags[head] = (f & ~PG_active) | PG_unevictable
    links[FR_NEXT, head] = -1
    links[FR_PREV, head] = 1
    lru[LV_PAGES + LRU_UNEVICTABLE, lv] += nr
    vmstat[VS_NR_UNEVICTABLE] += nr
    vmstat[VS_UNEVICTABLE_PGS_CULLED] += nr


@kernel
def munlock_cache_folio(vmstat, lru, links, fr_flags, lv, head, nr):
    """``munlock_folio`` + ``__munlock_folio`` for a page-cache folio: one mlock_count less; with
    the last, PG_mlocked goes (``unevictable_pgs_munlocked``) and a folio that is evictable again
    (not ramfs) returns to the inactive list (``unevictable_pgs_rescued``). A folio that was never
    counted is taken as at its last mlock, as Linux takes it."""
    f = fr_flags[head]
    if f & PG_lru and f & PG_unevictable:
        c = links[FR_PREV, head]
        if c > 0:
            c -= 1
            links[FR_PREV, head] = c
        if c > 0:
            return
    if f & PG_mlocked:
        f &= ~PG_mlocked
        fr_flags[head] = f
        vmstat[VS_NR_MLOCK] -= nr
        vmstat[VS_UNEVICTABLE_PGS_MUNLOCKED] += nr
    if f & PG_lru and f & PG_unevictable and not f & PG_ramfs:
        lru[LV_PAGES + LRU_UNEVICTABLE, lv] -= nr
        fr_flags[head] = f & ~PG_unevictable
        lru_add_head(lru, links, lv, file_lru(fr_flags, head), head, nr)
        vmstat[VS_NR_UNEVICTABLE] -= nr
        vmstat[VS_UNEVICTABLE_PGS_RESCUED] += nr


@kernel(inline="always")
def folio_mark_accessed(policy, vmstat, lru, links, fr_flags, lv, pfn, nr):
    """An access to a cached folio (``folio_mark_accessed`` under the Linux policy)."""
    f = fr_flags[pfn]
    if policy == POLICY_LINUX:
        if not f & PG_referenced:
            fr_flags[pfn] = f | PG_referenced
        elif not f & (PG_active | PG_unevictable) and f & PG_lru:
            li = file_lru(fr_flags, pfn)
            lru_del(lru, links, lv, li, pfn, nr)
            fr_flags[pfn] = (f | PG_active) & ~PG_referenced
            lru_add_head(lru, links, lv, li + 1, pfn, nr)
            vmstat[VS_PGACTIVATE] += nr
            lru[LV_AGE, lv] += nr                # workingset_activation ages the lruvec
    elif policy == POLICY_LRU:
        if (f & (PG_lru | PG_unevictable)) == PG_lru:
            lru_move_head(lru, links, lv, file_lru(fr_flags, pfn), pfn)
    elif policy == POLICY_CLOCK:
        fr_flags[pfn] = f | PG_referenced


@kernel(inline="always")
def int_sqrt(x):
    r = 0
    while (r + 1) * (r + 1) <= x:
        r += 1
    return r


@kernel(inline="always")
def inactive_is_low(lru, lv):
    inactive = lru[LV_PAGES + LRU_INACTIVE_FILE, lv]
    active = lru[LV_PAGES + LRU_ACTIVE_FILE, lv]
    gb = (inactive + active) >> 18
    ratio = int_sqrt(10 * gb) if gb else 1
    return inactive * ratio < active


@kernel
def shrink_active_list(vmstat, lru, links, fr_flags, fr_order, lv, nr_to_scan):
    """Move up to ``nr_to_scan`` pages from the active tail to the inactive head."""
    moved = 0
    while moved < nr_to_scan:
        pfn = lru[LV_TAIL + LRU_ACTIVE_FILE, lv]
        if pfn < 0:
            break
        nr = 1 << fr_order[pfn]
        lru_del(lru, links, lv, LRU_ACTIVE_FILE, pfn, nr)
        fr_flags[pfn] = (fr_flags[pfn] & ~PG_active) | PG_workingset
        lru_add_head(lru, links, lv, LRU_INACTIVE_FILE, pfn, nr)
        moved += nr
    vmstat[VS_PGREFILL] += moved
    vmstat[VS_PGDEACTIVATE] += moved
    return moved


@kernel(inline="always")
def folio_evictable_now(fr32, fr_flags, pfn, mapped_ok):
    """Clean, not under writeback, and unmapped (or ``mapped_ok``: the caller will check its
    references and unmap it through the reverse map): ``shrink_folio_list`` may free it."""
    return (fr_flags[pfn] & (PG_dirty | PG_writeback)) == 0 and (mapped_ok or
                                                                 fr32[FR_MAPCOUNT, pfn] == 0)


@kernel
def isolate_victim(policy, vmstat, lru, links, fr32, fr_flags, fr_order, lv, max_scan, mapped_ok):
    """The next folio reclaim frees under ``policy``, taken off its list (PG_lru cleared), or -1
    when none of the next ``max_scan`` pages examined (``pgscan_file``) can be freed now (at most
    every page on the file lists). Folios passed over move as the module docstring says. With
    ``mapped_ok`` a mapped folio may be the one returned (the caller unmaps it or puts it back)."""
    if policy == POLICY_LINUX and inactive_is_low(lru, lv):
        shrink_active_list(vmstat, lru, links, fr_flags, fr_order, lv, SWAP_CLUSTER_MAX)
    li = LRU_INACTIVE_FILE
    budget = min(max_scan, lru[LV_PAGES + li, lv] + lru[LV_PAGES + LRU_ACTIVE_FILE, lv])
    while budget > 0:
        pfn = lru[LV_TAIL + li, lv]
        if pfn < 0:
            if policy != POLICY_LINUX or lru[LV_TAIL + LRU_ACTIVE_FILE, lv] < 0:
                return -1
            shrink_active_list(vmstat, lru, links, fr_flags, fr_order, lv, SWAP_CLUSTER_MAX)
            continue
        nr = 1 << fr_order[pfn]
        budget -= nr
        vmstat[VS_PGSCAN_FILE] += nr
        f = fr_flags[pfn]
        if policy == POLICY_CLOCK and f & PG_referenced:
            fr_flags[pfn] = f & ~PG_referenced
            lru_move_head(lru, links, lv, li, pfn)
            budget += nr                     # a second chance costs one more pass at most
            continue
        if not folio_evictable_now(fr32, fr_flags, pfn, mapped_ok):
            if policy == POLICY_LINUX:
                lru_del(lru, links, lv, li, pfn, nr)
                fr_flags[pfn] = (f | PG_active | PG_reclaim) & ~PG_referenced
                lru_add_head(lru, links, lv, LRU_ACTIVE_FILE, pfn, nr)
                vmstat[VS_PGACTIVATE] += nr
            else:
                lru_move_head(lru, links, lv, li, pfn)
            continue
        lru_del(lru, links, lv, li, pfn, nr)
        fr_flags[pfn] = f & ~PG_lru
        return pfn
    return -1
