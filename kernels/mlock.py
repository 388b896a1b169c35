"""mlock's page side and MADV_FREE (mm/mlock.c, mm/madvise.c).

A folio is mlocked when ``PG_mlocked`` is set on its head page; ``Mlocked`` (NR_MLOCK) counts all of
its pages then. Linux keeps a ``mlock_count`` per folio (mm/mlock.c, since 5.18): mlock_folio sets
PG_mlocked or adds one to the count, munlock_folio takes one off and clears PG_mlocked with the
last. The events are those of Linux 6.18:

- a folio faulted into a VM_LOCKED VMA starts mlocked (mlock_new_folio, from folio_add_lru_vma);
- mlock_fixup walks the range it changes (mlock_pte_range): a PMD-mapped THP and an order-0 page
  are mlocked or munlocked; a PTE-mapped THP is munlocked once per run of PTEs mapping it
  (folio_pte_batch), and mlocked only when one run maps all of it (allow_mlock_munlock: the
  folio lies inside the range and is fully mapped), so a THP that crosses the range's or the
  VMA's edge is never mlocked by it;
- every removal of a mapping from a VM_LOCKED VMA munlocks once (__folio_remove_rmap calls
  munlock_vma_folio): a zapped PMD, a zapped run of PTEs, a page replaced by copy on write, and a
  PMD split (__split_huge_pmd_locked drops the PMD mapping).

A THP keeps its count in ``fr_idx[head + MLOCK_COUNT]`` (a tail page's index slot, otherwise
unused). An order-0 page keeps none: its count is always the number of its mappings in VM_LOCKED
VMAs (every event above adds or removes exactly one such mapping), so munlocking it clears
PG_mlocked unless another address space still maps it in a VM_LOCKED VMA, which the anon rmap
walk finds (the check folio_referenced_one makes when it restores a missed mlock).

Mlocked folios are on the unevictable list, as they have been since 2.6.28: ``nr_unevictable``
(Unevictable) counts them and the ``unevictable_pgs_*`` events follow __mlock_folio and
__munlock_folio. Anonymous folios are on no list here (reclaim finds them through the page
tables), so for them that list is a count alone. A page-cache folio really leaves its file list
for the unevictable one and keeps Linux's mlock_count there (``lru.mlock_cache_folio``), so
reclaim never meets it; page-cache THPs are not mlocked here.
"""
from .consts import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    FR_MAPCOUNT,
    FR_OWNER,
    G_NR_MM,
    HPAGE_PMD_NR,
    HPAGE_PMD_SIZE,
    MM_ANON,
    MM_PGD,
    MM_VBASE,
    MM_VCOUNT,
    PTE_PFN_MASK,
    V_END,
    V_FLAGS,
    V_START,
    VM_LOCKED,
    VM_LOCKONFAULT,
    VS_NR_MLOCK,
    VS_NR_UNEVICTABLE,
    VS_UNEVICTABLE_PGS_CULLED,
    VS_UNEVICTABLE_PGS_MLOCKED,
    VS_UNEVICTABLE_PGS_MUNLOCKED,
    VS_UNEVICTABLE_PGS_RESCUED,
    PG_anon,
    PG_lazyfree,
    PG_mlocked,
    PG_tail,
    PG_file_thp,
)
from .filemap import file_folio_head, file_folio_nr
from .jit import kernel
from .lru import mlock_cache_folio, munlock_cache_folio
from .mmap import vma_lookup
from .mprotect import split_pmd_at
from .page_counter import frame_memcg
from .pagetable import entry_pfn, next_pmd, pmd_lookup, pte_lookup

MLOCK_COUNT = 2          # a THP's mlock_count: fr_idx[head + MLOCK_COUNT]

# what a walk over a range does to the folios mapped there (mlock_vma_pages_range's modes)
MLOCK_LOCK = 0           # mlock_fixup turning VM_LOCKED on
MLOCK_UNLOCK = 1         # mlock_fixup turning VM_LOCKED off
MLOCK_ZAP = 2            # the range of a VM_LOCKED VMA is about to be zapped

# folio_pte_batch compares PTEs without these bits (accessed and writable always, dirty as
# mlock_pte_range and zap_present_ptes ask)
_BATCH_IGNORED = PTE_PFN_MASK | _PAGE_ACCESSED | _PAGE_DIRTY | _PAGE_RW


@kernel
def mlock_folio(fr_idx, fr_flags, fr_order, vmstat, head):
    """mlock_folio / mlock_new_folio: PG_mlocked and NR_MLOCK for the whole folio the first time,
    one more mlock_count (kept for a THP only) after that."""
    large = fr_order[head] > 0           # a THP: the only large folio
    if (fr_flags[head] & PG_mlocked) == 0:
        fr_flags[head] |= PG_mlocked
        nr = HPAGE_PMD_NR if large else 1
        if large:
            fr_idx[head + MLOCK_COUNT] = 1
        _anon_unevictable(vmstat, nr)
    elif large:
        fr_idx[head + MLOCK_COUNT] += 1


@kernel
def munlock_thp(fr_idx, fr_flags, vmstat, head):
    """munlock_folio for a THP: one mlock_count less; PG_mlocked goes with the last."""
    if (fr_flags[head] & PG_mlocked) == 0:
        return
    c = fr_idx[head + MLOCK_COUNT] - 1
    if c > 0:
        fr_idx[head + MLOCK_COUNT] = c
        return
    fr_idx[head + MLOCK_COUNT] = 0
    fr_flags[head] &= ~PG_mlocked
    _anon_unevictable(vmstat, -HPAGE_PMD_NR)


@kernel(inline="always")
def _anon_unevictable(vmstat, nr):
    """An anonymous folio of ``abs(nr)`` pages becomes mlocked (nr > 0: mlocked, culled onto the
    unevictable list) or stops being so (munlocked, rescued)."""
    vmstat[VS_NR_MLOCK] += nr
    vmstat[VS_NR_UNEVICTABLE] += nr
    if nr > 0:
        vmstat[VS_UNEVICTABLE_PGS_MLOCKED] += nr
        vmstat[VS_UNEVICTABLE_PGS_CULLED] += nr
    else:
        vmstat[VS_UNEVICTABLE_PGS_MUNLOCKED] -= nr
        vmstat[VS_UNEVICTABLE_PGS_RESCUED] -= nr


@kernel
def munlock_page(cfg, gs, pt, fr32, fr_idx, fr_flags, vmstat, lru, mm, vma, mmi, pfn):
    """munlock_folio for an order-0 page whose mapping in address space ``mmi`` leaves a VM_LOCKED
    VMA (module docstring): an anonymous page stays PG_mlocked while another address space maps
    it in one; a page-cache page keeps count."""
    if (fr_flags[pfn] & PG_anon) == 0:
        munlock_cache_folio(vmstat, lru, fr32, fr_flags, frame_memcg(fr32, pfn), pfn, 1)
        return
    if (fr_flags[pfn] & PG_mlocked) == 0:
        return
    if fr32[FR_MAPCOUNT, pfn] > 1 and _locked_elsewhere(cfg, gs, pt, fr32, fr_idx, mm, vma, mmi,
                                                         pfn):
        return
    fr_flags[pfn] &= ~PG_mlocked
    _anon_unevictable(vmstat, -1)


@kernel
def mlock_page(fr32, fr_idx, fr_flags, fr_order, vmstat, lru, pfn):
    """mlock_vma_folio for an order-0 page newly mapped (or found mapped) in a VM_LOCKED VMA."""
    if (fr_flags[pfn] & PG_anon) == 0:
        mlock_cache_folio(vmstat, lru, fr32, fr_flags, frame_memcg(fr32, pfn), pfn, 1)
    else:
        mlock_folio(fr_idx, fr_flags, fr_order, vmstat, pfn)


@kernel
def munlock_anon_pte_page(cfg, gs, vmstat, pt, fr32, fr_idx, fr_flags, fr_order, mm, vma, mmi,
                          pfn):
    """munlock_vma_folio for one PTE mapping of anonymous page ``pfn`` leaving a VM_LOCKED VMA
    (wp_page_copy, khugepaged's collapse)."""
    if (fr_flags[pfn] & PG_tail) != 0 or fr_order[pfn] > 0:
        munlock_thp(fr_idx, fr_flags, vmstat, pfn & ~(HPAGE_PMD_NR - 1))
    elif fr_flags[pfn] & PG_mlocked:
        if fr32[FR_MAPCOUNT, pfn] > 1 and _locked_elsewhere(cfg, gs, pt, fr32, fr_idx, mm, vma,
                                                             mmi, pfn):
            return
        fr_flags[pfn] &= ~PG_mlocked
        _anon_unevictable(vmstat, -1)


@kernel
def _locked_elsewhere(cfg, gs, pt, fr32, fr_idx, mm, vma, mmi, pfn):
    """rmap walk of an order-0 anonymous page: does an address space other than ``mmi`` map it
    inside a VM_LOCKED VMA? (It can only sit at its own address: the anon index.)"""
    va = fr_idx[pfn] << 12
    anon = fr32[FR_OWNER, pfn]
    for m in range(gs[G_NR_MM]):
        if m == mmi or mm[MM_ANON, m] != anon or mm[MM_PGD, m] < 0:
            continue
        pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, m], va)
        if pos < 0 or pt[pos] == 0 or (pt[pos] & _PAGE_PSE) != 0:
            continue
        e = pt[pte_lookup(pt, fr_idx, pt[pos], va)]
        if (e & (_PAGE_PRESENT | _PAGE_PROTNONE)) == 0 or entry_pfn(e) != pfn:
            continue
        p = vma_lookup(mm, vma, m, va)
        if p >= 0 and (vma[V_FLAGS, p] & VM_LOCKED) != 0:
            return True
    return False


@kernel
def folio_pte_batch(pt, q, pfn, max_nr):
    """folio_pte_batch: how many PTEs from ``pt[q]`` (which maps ``pfn``, a page of a THP) on map
    the following pages of the same folio with the same bits, ignoring A, D and RW (at most
    ``max_nr``)."""
    bits = pt[q] & ~_BATCH_IGNORED
    lim = min(max_nr, HPAGE_PMD_NR - (pfn & (HPAGE_PMD_NR - 1)))
    n = 1
    while n < lim:
        e = pt[q + n]
        if entry_pfn(e) != pfn + n or (e & ~_BATCH_IGNORED) != bits:
            break
        n += 1
    return n


@kernel
def mlock_vma_pages_range(cfg, gs, vmstat, lru, pt, fr32, fr_idx, fr_flags, fr_order, mm, vma,
                          mmi, start, end, mode):
    """mlock_vma_pages_range / mlock_pte_range over [start, end) of one VMA of ``mmi``, or, with
    MLOCK_ZAP, the munlocks a zap of that range makes (zap_pte_range / zap_huge_pmd), including
    the one of a PMD split first because it is only partly inside (vma_adjust_trans_huge).

    MLOCK_LOCK: a PMD-mapped THP and an order-0 page are mlocked; a PTE-mapped THP or large
    page-cache folio only when one run of PTEs maps all of it. MLOCK_UNLOCK and MLOCK_ZAP: every
    PMD-mapped THP, run of PTEs of a large folio and order-0 page is munlocked once. The zero
    pages are never touched (nor PMD-mapped page-cache folios).
    """
    pgd = mm[MM_PGD, mmi]
    if pgd < 0:
        return
    va = start
    while va < end:
        pos, nxt = next_pmd(cfg, pt, fr_idx, pgd, va, end)
        if pos < 0:
            va = nxt
            continue
        e = pt[pos]
        if e & _PAGE_PSE:
            head = entry_pfn(e)
            if (e & _PAGE_SPECIAL) == 0 and (fr_flags[head] & PG_file_thp) != 0:
                # a PMD-mapped page-cache folio: mlock_pte_range mlocks it; a zap or munlock
                # (folio_remove_rmap_pmd) munlocks it once
                if mode == MLOCK_LOCK:
                    mlock_cache_folio(vmstat, lru, fr32, fr_flags, frame_memcg(fr32, head), head,
                                      HPAGE_PMD_NR)
                else:
                    munlock_cache_folio(vmstat, lru, fr32, fr_flags, frame_memcg(fr32, head), head,
                                        HPAGE_PMD_NR)
            elif (e & _PAGE_SPECIAL) == 0:
                if mode == MLOCK_LOCK:
                    mlock_folio(fr_idx, fr_flags, fr_order, vmstat, head)
                else:
                    if mode == MLOCK_ZAP and nxt - va < HPAGE_PMD_SIZE:
                        munlock_thp(fr_idx, fr_flags, vmstat, head)     # the split
                    munlock_thp(fr_idx, fr_flags, vmstat, head)
            va = nxt
            continue
        tb = pte_lookup(pt, fr_idx, e, va)
        n = (nxt - va) >> 12
        k = 0
        while k < n:
            pe = pt[tb + k]
            if (pe & (_PAGE_PRESENT | _PAGE_PROTNONE)) == 0 or (pe & _PAGE_SPECIAL) != 0:
                k += 1
                continue
            pfn = entry_pfn(pe)
            if fr_flags[pfn] & PG_file_thp:
                # a large page-cache folio: mlocked when this run of PTEs maps all of it
                # (allow_mlock_munlock), munlocked once per run (folio_remove_rmap_ptes)
                head = file_folio_head(fr_flags, pfn)
                nr = file_folio_nr(fr_flags, pfn)
                step = folio_pte_batch(pt, tb + k, pfn, min(n - k, head + nr - pfn))
                if mode != MLOCK_LOCK:
                    munlock_cache_folio(vmstat, lru, fr32, fr_flags, frame_memcg(fr32, head), head,
                                        nr)
                elif pfn == head and step == nr:
                    mlock_cache_folio(vmstat, lru, fr32, fr_flags, frame_memcg(fr32, head), head, nr)
                k += step
                continue
            if (fr_flags[pfn] & PG_tail) == 0 and fr_order[pfn] == 0:
                if mode == MLOCK_LOCK:
                    mlock_page(fr32, fr_idx, fr_flags, fr_order, vmstat, lru, pfn)
                else:
                    munlock_page(cfg, gs, pt, fr32, fr_idx, fr_flags, vmstat, lru, mm, vma, mmi,
                                 pfn)
                k += 1
                continue
            head = pfn & ~(HPAGE_PMD_NR - 1)
            step = folio_pte_batch(pt, tb + k, pfn, n - k)
            if mode != MLOCK_LOCK:
                munlock_thp(fr_idx, fr_flags, vmstat, head)
            elif step == HPAGE_PMD_NR:         # allow_mlock_munlock: the whole folio, in range
                mlock_folio(fr_idx, fr_flags, fr_order, vmstat, head)
            k += step
        va = nxt


@kernel
def munlock_pmd_at(cfg, vmstat, lru, pt, fr32, fr_idx, fr_flags, mm, mmi, va):
    """The munlock of a PMD split at a VMA boundary ``va`` inside a VM_LOCKED VMA (call it before
    split_pmd_at): __split_huge_pmd_locked removes the PMD mapping (folio_remove_rmap_pmd)."""
    if (va & (HPAGE_PMD_SIZE - 1)) == 0:
        return
    pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, mmi], va)
    if pos < 0:
        return
    e = pt[pos]
    if (e & _PAGE_PSE) != 0 and (e & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0 and \
            (e & _PAGE_SPECIAL) == 0:
        head = entry_pfn(e)
        if fr_flags[head] & PG_file_thp:
            munlock_cache_folio(vmstat, lru, fr32, fr_flags, frame_memcg(fr32, head), head,
                                HPAGE_PMD_NR)
        else:
            munlock_thp(fr_idx, fr_flags, vmstat, head)


@kernel
def munlock_mm(cfg, gs, vmstat, lru, pt, fr32, fr_idx, fr_flags, fr_order, mm, vma, mmi):
    """Before exit_mmap tears address space ``mmi`` down: the munlocks its zap makes, VMA by VMA,
    after which no VMA is VM_LOCKED (as exit_mmap's munlock_vma_pages_all left them before 5.18),
    so the teardown itself has nothing left to munlock."""
    b = mm[MM_VBASE, mmi]
    for i in range(mm[MM_VCOUNT, mmi]):
        if vma[V_FLAGS, b + i] & VM_LOCKED:
            mlock_vma_pages_range(cfg, gs, vmstat, lru, pt, fr32, fr_idx, fr_flags, fr_order, mm,
                                  vma, mmi, vma[V_START, b + i], vma[V_END, b + i], MLOCK_ZAP)
            vma[V_FLAGS, b + i] &= ~(VM_LOCKED | VM_LOCKONFAULT)


@kernel
def mlock_range(cfg, pt, fr_idx, fr_flags, fr_order, vmstat, mm, mmi, start, end, lock):
    """exit_mmap's munlock of a VM_LOCKED VMA. The teardown runs munlock_mm first (mm_put), which
    needs the rmap and the VMAs this entry does not get and leaves no VMA locked, so getting here
    means an address space was torn down without it."""
    raise AssertionError("exit_mmap of an address space with VM_LOCKED VMAs: munlock_mm first")


@kernel
def lazyfree_split_at(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm,
                      tlb, pwc, mmi, va):
    """madvise_free_huge_pmd on a THP the range ends inside: split its PMD first (1 if it did);
    the huge zero PMD is left alone (is_huge_zero_pmd)."""
    pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, mmi], va)
    if pos >= 0 and (pt[pos] & _PAGE_SPECIAL) != 0:
        return 0
    return split_pmd_at(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm,
                        tlb, pwc, mmi, va)


@kernel
def lazyfree_range(cfg, pt, fr32, fr_idx, fr_flags, fr_order, mm, mmi, start, end):
    """madvise_free_pte_range over [start, end) (PMDs at the ends already split): a page mapped
    once loses D and A and becomes lazily freeable. Returns the entries that changed (were young
    or dirty): only those are flushed (tlb_remove_tlb_entry)."""
    pgd = mm[MM_PGD, mmi]
    if pgd < 0:
        return 0
    changed = 0
    va = start
    while va < end:
        pos, nxt = next_pmd(cfg, pt, fr_idx, pgd, va, end)
        if pos >= 0:
            e = pt[pos]
            if e & _PAGE_PSE:
                head = entry_pfn(e)
                if (e & _PAGE_SPECIAL) == 0 and fr32[FR_OWNER, head + 1] == 1 and \
                        fr_idx[head + 1] == 0:
                    if e & (_PAGE_DIRTY | _PAGE_ACCESSED):
                        pt[pos] = e & ~(_PAGE_DIRTY | _PAGE_ACCESSED)
                        changed += 1
                    fr_flags[head] |= PG_lazyfree
            else:
                tb = pte_lookup(pt, fr_idx, e, va)
                for k in range((nxt - va) >> 12):
                    pe = pt[tb + k]
                    if pe == 0 or (pe & _PAGE_SPECIAL) != 0:
                        continue
                    pfn = entry_pfn(pe)
                    if fr32[FR_MAPCOUNT, pfn] != 1:
                        continue          # mapped more than once: left alone
                    if pe & (_PAGE_DIRTY | _PAGE_ACCESSED):
                        pt[tb + k] = pe & ~(_PAGE_DIRTY | _PAGE_ACCESSED)
                        changed += 1
                    fr_flags[pfn] |= PG_lazyfree
        va = nxt
    return changed
