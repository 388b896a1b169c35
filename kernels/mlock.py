"""mlock's page side and MADV_FREE (mm/mlock.c, mm/madvise.c)."""
from .consts import (
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PROTNONE,
    _PAGE_PSE,
    _PAGE_SPECIAL,
    FR_MAPCOUNT,
    FR_OWNER,
    HPAGE_PMD_NR,
    MM_PGD,
    VS_NR_MLOCK,
    PG_lazyfree,
    PG_mlocked,
    PG_tail,
)
from .jit import kernel
from .pagetable import entry_pfn, next_pmd, pte_lookup


@kernel
def folio_head(fr_flags, fr_order, pfn):
    if fr_flags[pfn] & PG_tail:
        return pfn & ~(HPAGE_PMD_NR - 1)
    return pfn


@kernel
def mlock_range(cfg, pt, fr_idx, fr_flags, fr_order, vmstat, mm, mmi, start, end, lock):
    """mlock_folio / munlock_folio for every folio mapped in [start, end): PG_mlocked and the
    Mlocked counter (a folio counts whole, once)."""
    pgd = mm[MM_PGD, mmi]
    if pgd < 0:
        return
    va = start
    while va < end:
        pos, nxt = next_pmd(cfg, pt, fr_idx, pgd, va, end)
        if pos >= 0:
            e = pt[pos]
            if e & _PAGE_PSE:
                if (e & _PAGE_SPECIAL) == 0:
                    _mlock_folio(fr_flags, fr_order, vmstat, entry_pfn(e), lock)
            else:
                tb = pte_lookup(pt, fr_idx, e, va)
                for k in range((nxt - va) >> 12):
                    pe = pt[tb + k]
                    if (pe & (_PAGE_PRESENT | _PAGE_PROTNONE)) != 0 and (pe & _PAGE_SPECIAL) == 0:
                        _mlock_folio(fr_flags, fr_order, vmstat, entry_pfn(pe), lock)
        va = nxt


@kernel
def _mlock_folio(fr_flags, fr_order, vmstat, pfn, lock):
    head = folio_head(fr_flags, fr_order, pfn)
    n = 1 << fr_order[head]
    if lock and (fr_flags[head] & PG_mlocked) == 0:
        fr_flags[head] |= PG_mlocked
        vmstat[VS_NR_MLOCK] += n
    elif not lock and (fr_flags[head] & PG_mlocked) != 0:
        fr_flags[head] &= ~PG_mlocked
        vmstat[VS_NR_MLOCK] -= n


@kernel
def lazyfree_range(cfg, pt, fr32, fr_idx, fr_flags, fr_order, mm, mmi, start, end):
    """madvise_free_pte_range over [start, end) (PMDs at the ends already split): a page mapped
    once loses D and A and becomes lazily freeable. Returns the entries changed."""
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
                    pt[pos] = e & ~(_PAGE_DIRTY | _PAGE_ACCESSED)
                    fr_flags[head] |= PG_lazyfree
                    changed += 1
            else:
                tb = pte_lookup(pt, fr_idx, e, va)
                for k in range((nxt - va) >> 12):
                    pe = pt[tb + k]
                    if pe == 0 or (pe & _PAGE_SPECIAL) != 0:
                        continue
                    pfn = entry_pfn(pe)
                    if fr32[FR_MAPCOUNT, pfn] != 1:
                        continue          # mapped more than once: left alone
                    pt[tb + k] = pe & ~(_PAGE_DIRTY | _PAGE_ACCESSED)
                    fr_flags[pfn] |= PG_lazyfree
                    changed += 1
        va = nxt
    return changed
