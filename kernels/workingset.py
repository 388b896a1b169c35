"""Workingset detection (mm/workingset.c, 3.15+): shadow entries and refault distances.

When reclaim evicts a page-cache page, Linux leaves a *shadow entry* in the page's slot of the
file's xarray: the reclaim root's ``nonresident_age`` at eviction (a counter of evictions and
activations, aged in the lruvec and all its ancestors), the memcg id, and whether the page was in
the workingset. When the page is read in again, the *refault distance*, how far the counter has
moved since, says how many pages were evicted or activated in between. If the page would have
stayed resident had the active list been given that many more pages (``refault_distance <=
workingset_size``: the active file list, plus the anon lists while swap has room), the refault
is activated at once (workingset_activate_file), and a page that was in the workingset when
evicted is a *restore* (workingset_restore_file), whose read is a memory stall (thrashing).

Our shadow entries live beside the page-cache index in a table of their own, ``shadow``
(``SH_KEY``/``SH_VAL`` rows): sets of ``SH_WAYS`` entries found by the hash of (inode, index). A
full set gives up its oldest entry, as Linux's shadow-node shrinker bounds shadow memory by the
memory size: it allows one xarray node of shadows per eight LRU pages' worth of slots
(``count_shadow_nodes``), which is eight shadows a page when files are read densely, and the
table has eight entries a frame (at most 2^22). A shadow older than the memory size could not
be judged recent anyway; it only counts as a refault. Each lruvec
keeps only its own ``nonresident_age`` (``lru[LV_AGE]``); an ancestor's is the sum over its
subtree, which is what aging every ancestor gives. Truncation, hole punching and unlink drop a
file's shadows by bumping its ``I_SHADOW_GEN`` (a shadow of another generation never matches),
which also drops those below the new size that Linux would keep. A write does not refault
(``__GFP_WRITE``): its page replaces the shadow without being activated. drop_caches leaves no
shadows (``invalidate_mapping_pages`` is not reclaim).

Anonymous pages (5.9+) keep their shadow in their swap slot (``swp[SWP_WORKINGSET]``: the
workingset bit and the reclaim root; ``swp[SWP_AGE]``: its age, 31 bits), as Linux keeps it in
the swap cache's xarray; every swap-in is a refault (``workingset_refault_anon``), activated when
the distance is within the file lists plus, while swap has room, the anonymous pages (Linux:
the active anon list; there are no anon lists here, so all of them), and a restore is a memory
stall. Activation itself changes nothing for an anonymous page here (the anon CLOCK has no
active list); it ages the lruvec.
"""
from .consts import (
    G_MCG,
    G_NR_MEMCG,
    G_NR_SWAP_FREE,
    I_SHADOW_GEN,
    LRU_ACTIVE_ANON,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE,
    LV_AGE,
    LV_PAGES,
    MC_ANON,
    MC_ONLINE,
    MC_PARENT,
    MC_WS_ACTIVATE,
    MC_WS_ACTIVATE_ANON,
    MC_WS_REFAULT,
    MC_WS_REFAULT_ANON,
    MC_WS_RESTORE,
    MC_WS_RESTORE_ANON,
    NR_MC,
    PG_active,
    PG_workingset,
    SH_KEY,
    SH_VAL,
    SH_WAYS,
    SWP_AGE,
    SWP_WORKINGSET,
    VS_WORKINGSET_ACTIVATE_ANON,
    VS_WORKINGSET_ACTIVATE_FILE,
    VS_WORKINGSET_REFAULT_ANON,
    VS_WORKINGSET_REFAULT_FILE,
    VS_WORKINGSET_RESTORE_ANON,
    VS_WORKINGSET_RESTORE_FILE,
)
from .jit import kernel

EVICTION_BITS = 40
EVICTION_MASK = (1 << EVICTION_BITS) - 1
_MEMCG_SHIFT = EVICTION_BITS
_WS_SHIFT = 56
_GEN_SHIFT = 57
_GEN_MASK = 63
_H = -7046029254386353131        # 0x9E3779B97F4A7C15


@kernel(inline="always")
def _key(ii, index):
    return ((ii + 1) << EVICTION_BITS) | index


@kernel(inline="always")
def _set(shadow, ii, index):
    """First slot of the set that holds (ii, index)'s shadow."""
    nsets = shadow.shape[1] // SH_WAYS
    h = (index * _H) ^ (ii * -4417276706812531889)
    return ((h >> 29) & (nsets - 1)) * SH_WAYS


@kernel(inline="always")
def _descends(gs, c, root):
    while c >= 0:
        if c == root:
            return True
        c = gs[G_MCG + c * NR_MC + MC_PARENT]
    return False


@kernel
def nonresident_age(gs, lru, memcg):
    """``lruvec->nonresident_age`` of ``memcg``: its subtree's evictions and activations."""
    n = gs[G_NR_MEMCG]
    if n == 1:
        return lru[LV_AGE, 0]
    a = 0
    for c in range(min(n, lru.shape[1])):
        if _descends(gs, c, memcg):
            a += lru[LV_AGE, c]
    return a


@kernel
def workingset_size(gs, lru, memcg):
    """What a file refault's distance is held against (workingset_test_recent): the active file
    list, and, while swap has room, the anon pages (all of them are on the anon lists in Linux;
    here anonymous pages are counted from the memcg statistics, tmpfs pages from the lists)."""
    n = min(gs[G_NR_MEMCG], lru.shape[1])
    swap = gs[G_NR_SWAP_FREE] > 0
    size = 0
    for c in range(n):
        if not _descends(gs, c, memcg):
            continue
        size += lru[LV_PAGES + LRU_ACTIVE_FILE, c]
        if swap:
            size += (lru[LV_PAGES + LRU_ACTIVE_ANON, c] + lru[LV_PAGES + LRU_INACTIVE_ANON, c]
                     + gs[G_MCG + c * NR_MC + MC_ANON])
    return size


@kernel(inline="always")
def workingset_age_nonresident(lru, lv, nr):
    if lv < lru.shape[1]:
        lru[LV_AGE, lv] += nr


@kernel
def workingset_eviction(gs, lru, shadow, ino, fr_flags, ii, index, pfn, target):
    """Leave the shadow of page ``index`` of inode ``ii`` (frame ``pfn``, being reclaimed with
    ``target`` as the reclaim root), then age ``target``'s lruvec for the eviction."""
    age = nonresident_age(gs, lru, target) & EVICTION_MASK
    ws = 1 if fr_flags[pfn] & PG_workingset else 0
    val = (age | (target << _MEMCG_SHIFT) | (ws << _WS_SHIFT)
           | ((ino[I_SHADOW_GEN, ii] & _GEN_MASK) << _GEN_SHIFT))
    key = _key(ii, index)
    b = _set(shadow, ii, index)
    slot = -1
    oldest = -1
    for w in range(SH_WAYS):
        k = shadow[SH_KEY, b + w]
        if k == key or k == 0:
            slot = b + w
            break
        # the entry evicted longest ago (ages of different memcgs compare roughly)
        if oldest < 0 or (shadow[SH_VAL, b + w] & EVICTION_MASK) < (shadow[SH_VAL, oldest] & EVICTION_MASK):
            oldest = b + w
    if slot < 0:
        slot = oldest
    shadow[SH_KEY, slot] = key
    shadow[SH_VAL, slot] = val
    workingset_age_nonresident(lru, target, 1)


@kernel
def shadow_take(shadow, ino, ii, index):
    """Remove and return the shadow of page ``index`` of inode ``ii`` (-1: none, or one left by
    an earlier generation of the file)."""
    key = _key(ii, index)
    b = _set(shadow, ii, index)
    for w in range(SH_WAYS):
        if shadow[SH_KEY, b + w] == key:
            val = shadow[SH_VAL, b + w]
            shadow[SH_KEY, b + w] = 0
            shadow[SH_VAL, b + w] = 0
            if (val >> _GEN_SHIFT) & _GEN_MASK != ino[I_SHADOW_GEN, ii] & _GEN_MASK:
                return -1
            return val
    return -1


@kernel
def workingset_refault(gs, vmstat, lru, shadow, ino, fr_flags, fr_memcg, ii, index, pfn, read):
    """A new page-cache page ``pfn`` for ``index`` of inode ``ii``, before it joins the LRU: its
    shadow (if any) is consumed; for a read (``read``) a shadow makes it a refault, activated when
    recent, a restore when it had been in the workingset. Returns True for a restore (its read
    is a memory stall)."""
    val = shadow_take(shadow, ino, ii, index)
    if val < 0 or not read:
        return False
    return _refault(gs, vmstat, lru, fr_flags, fr_memcg, pfn, val, 1)


@kernel
def workingset_refault_folio(gs, vmstat, lru, shadow, ino, fr_flags, fr_memcg, ii, base, head, nr):
    """``workingset_refault`` for a large folio read into pages [base, base + nr) at frame
    ``head``: the range's shadows are consumed and the last one found decides for the folio
    (``__filemap_add_folio`` keeps the last value entry it replaces); the counters count its
    pages (folio_nr_pages). Returns True for a restore."""
    val = -1
    for i in range(nr):
        v = shadow_take(shadow, ino, ii, base + i)
        if v >= 0:
            val = v
    if val < 0:
        return False
    return _refault(gs, vmstat, lru, fr_flags, fr_memcg, head, val, nr)


@kernel
def _refault(gs, vmstat, lru, fr_flags, fr_memcg, pfn, val, nr):
    """The refault of the ``nr``-page folio at ``pfn`` whose shadow was ``val``: activated when
    recent, a restore when it had been in the workingset."""
    lv = fr_memcg[pfn]
    mc = G_MCG + lv * NR_MC
    vmstat[VS_WORKINGSET_REFAULT_FILE] += nr
    gs[mc + MC_WS_REFAULT] += nr
    evict_memcg = (val >> _MEMCG_SHIFT) & 0xFFFF
    if evict_memcg >= gs[G_NR_MEMCG] or gs[G_MCG + evict_memcg * NR_MC + MC_ONLINE] == 0:
        return False                               # the memcg is gone: not recent
    distance = (nonresident_age(gs, lru, evict_memcg) - (val & EVICTION_MASK)) & EVICTION_MASK
    if distance > workingset_size(gs, lru, evict_memcg):
        return False
    fr_flags[pfn] |= PG_active
    workingset_age_nonresident(lru, lv, nr)
    vmstat[VS_WORKINGSET_ACTIVATE_FILE] += nr
    gs[mc + MC_WS_ACTIVATE] += nr
    if (val >> _WS_SHIFT) & 1:
        fr_flags[pfn] |= PG_workingset
        vmstat[VS_WORKINGSET_RESTORE_FILE] += nr
        gs[mc + MC_WS_RESTORE] += nr
        return True
    return False


_AGE31 = (1 << 31) - 1


@kernel
def workingset_eviction_anon(gs, lru, swp, slot, workingset, target):
    """The shadow a swapped-out page leaves in its slot, then the eviction's aging."""
    swp[SWP_WORKINGSET, slot] = (1 if workingset else 0) | (target << 1)
    swp[SWP_AGE, slot] = nonresident_age(gs, lru, target) & _AGE31
    workingset_age_nonresident(lru, target, 1)


@kernel
def workingset_refault_anon(gs, vmstat, lru, swp, slot, fr_flags, pfn, lv):
    """A swap-in of slot ``slot`` into frame ``pfn`` (charged to memcg ``lv``): a refault, and an
    activation and restore as for a file page, against the anon workingset size (file lists,
    and the anon pages while swap has room). Returns True for a restore (a thrashing stall)."""
    mc = G_MCG + lv * NR_MC
    vmstat[VS_WORKINGSET_REFAULT_ANON] += 1
    gs[mc + MC_WS_REFAULT_ANON] += 1
    val = swp[SWP_WORKINGSET, slot]
    evict = val >> 1
    if evict >= gs[G_NR_MEMCG] or gs[G_MCG + evict * NR_MC + MC_ONLINE] == 0:
        return False
    distance = (nonresident_age(gs, lru, evict) - swp[SWP_AGE, slot]) & _AGE31
    size = 0
    n = min(gs[G_NR_MEMCG], lru.shape[1])
    swap = gs[G_NR_SWAP_FREE] > 0
    for c in range(n):
        if _descends(gs, c, evict):
            size += lru[LV_PAGES + LRU_ACTIVE_FILE, c] + lru[LV_PAGES + LRU_INACTIVE_FILE, c]
            if swap:
                size += lru[LV_PAGES + LRU_ACTIVE_ANON, c] + gs[G_MCG + c * NR_MC + MC_ANON]
    if distance > size:
        return False
    workingset_age_nonresident(lru, lv, 1)
    vmstat[VS_WORKINGSET_ACTIVATE_ANON] += 1
    gs[mc + MC_WS_ACTIVATE_ANON] += 1
    if val & 1:
        fr_flags[pfn] |= PG_workingset
        vmstat[VS_WORKINGSET_RESTORE_ANON] += 1
        gs[mc + MC_WS_RESTORE_ANON] += 1
        return True
    return False
