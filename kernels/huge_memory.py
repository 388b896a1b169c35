"""Transparent huge pages at fault time and PMD splits (mm/huge_memory.c)."""
from .consts import (
    _PAGE_ACCESSED,
    _PAGE_NX,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_TABLE,
    _PAGE_USER,
    C_HPC_MODEL,
    C_KERNEL,
    C_NR_FRAMES,
    C_SHMEM_ENABLED,
    C_SPLIT_MODE,
    G_NR_MM,
    MM_ANON,
    MM_PGD,
    C_THP_DISABLE_MODE,
    C_THP_ENABLED,
    FR_MAPCOUNT,
    FR_OWNER,
    G_HUGE_ZERO_PFN,
    HPAGE_PMD_NR,
    HPAGE_PMD_ORDER,
    HPAGE_PMD_SIZE,
    MIGRATE_MOVABLE,
    MM_ANON_THP,
    MM_FLAGS,
    MM_KH_SEQ,
    MMF_VM_HUGEPAGE,
    G_KH_MM,
    G_KH_SEQ,
    G_KH_WAKE,
    HPC_MAINLINE,
    MMF_DISABLE_THP_COMPLETELY,
    MMF_DISABLE_THP_EXCEPT_ADVISED,
    PTE_PFN_MASK,
    PTRS_PER_TABLE,
    SHMEM_HUGE_ADVISE,
    SHMEM_HUGE_ALWAYS,
    SHMEM_HUGE_FORCE,
    SHMEM_HUGE_WITHIN_SIZE,
    THP_MADVISE,
    THP_NEVER,
    THPDIS_EXCEPT_ADVISED,
    THPDIS_MMF,
    VM_EXEC,
    VM_HUGEPAGE,
    VM_NOHUGEPAGE,
    VM_READ,
    VM_WRITE,
    VS_NR_ANON_THP,
    VS_PGALLOC,
    VS_THP_SPLIT_PMD,
    VS_THP_ZERO_PAGE_ALLOC,
    VS_THP_ZERO_PAGE_ALLOC_FAILED,
    PG_anon,
    PG_anon_exclusive,
    PG_head,
    PG_hugezero,
    PG_lru,
    PG_mlocked,
    PG_partially_mapped,
    PG_deferred,
    PG_written,
    PG_tail,
    PG_file_thp,
    FR_NEXT,
    FR_PREV,
    G_DEFERRED_HEAD,
    G_DEFERRED_N,
    G_DEFERRED_TAIL,
    VS_PGFREE,
    VS_THP_DEFERRED_SPLIT_PAGE,
    VS_THP_SPLIT_PAGE,
)
from .events import NEVER, rearm
from .filemap import zap_file_pmd
from .jit import kernel
from .page_counter import CHARGE_ANON, memcg_split_stat, memcg_uncharge_folio
from .page_alloc import free_pages, rmqueue
from .pagetable import entry_pfn, pmd_lookup, withdraw_table
from .tlb import flush_tlb_page


@kernel
def thp_disabled_by_mm(cfg, mm_flags, vm_flags):
    """The per-process switch (prctl) as the profile has it (vma_thp_disabled)."""
    mode = cfg[C_THP_DISABLE_MODE]
    if mode == THPDIS_MMF or mode == THPDIS_EXCEPT_ADVISED:
        if mm_flags & (1 << MMF_DISABLE_THP_COMPLETELY):
            return True
        if mode == THPDIS_EXCEPT_ADVISED and (mm_flags & (1 << MMF_DISABLE_THP_EXCEPT_ADVISED)):
            return (vm_flags & VM_HUGEPAGE) == 0
    return False


@kernel
def thp_vma_allowable(cfg, mm_flags, vm_flags, vm_start, vm_end, va):
    """thp_vma_allowable_order for an anonymous VMA at fault time, and the 2 MiB geometry."""
    en = cfg[C_THP_ENABLED]
    if en == THP_NEVER:
        return False
    if vm_flags & VM_NOHUGEPAGE:
        return False
    if thp_disabled_by_mm(cfg, mm_flags, vm_flags):
        return False
    if en == THP_MADVISE and (vm_flags & VM_HUGEPAGE) == 0:
        return False
    h = va & ~(HPAGE_PMD_SIZE - 1)
    return h >= vm_start and h + HPAGE_PMD_SIZE <= vm_end


@kernel
def collapse_vma_ok(cfg, mm_flags, vm_flags, file, enforce_sysfs, vm_start, vm_end, anon_vma):
    """thp_vma_allowable_order for collapse: anonymous, accessible, not VM_NOHUGEPAGE, not disabled
    by the prctl, (khugepaged only) the sysfs ``enabled`` mode, big enough to hold an aligned
    2 MiB range (thp_vma_suitable_order at vm_end - 2 MiB), and with an ``anon_vma`` (a VMA
    never written to, nor faulted by a THP fault, has none: outside a fault, nothing to do)."""
    h = (vm_end - HPAGE_PMD_SIZE) & ~(HPAGE_PMD_SIZE - 1)
    if h < vm_start:
        return False
    if file != -1:
        return False                 # file and special mappings: the huge page cache's business
    if anon_vma == 0:
        return False
    if (vm_flags & (VM_READ | VM_WRITE)) == 0 or (vm_flags & VM_NOHUGEPAGE):
        return False
    if thp_disabled_by_mm(cfg, mm_flags, vm_flags):
        return False
    if enforce_sysfs:
        en = cfg[C_THP_ENABLED]
        if en == THP_NEVER or (en == THP_MADVISE and (vm_flags & VM_HUGEPAGE) == 0):
            return False
    return True


@kernel
def hugepage_pmd_enabled(cfg):
    """Whether khugepaged runs (start_stop_khugepaged): THP on for anonymous memory, or, 6.12+
    ("mm: shmem: fix khugepaged activation policy for shmem"), PMD-sized shmem THP on:
    shmem_enabled always, within_size, advise or force (shmem_hpage_pmd_enabled)."""
    if cfg[C_THP_ENABLED] != THP_NEVER:
        return True
    if cfg[C_KERNEL] < 612 or cfg[C_HPC_MODEL] != HPC_MAINLINE:
        return False
    se = cfg[C_SHMEM_ENABLED]
    return (se == SHMEM_HUGE_ALWAYS or se == SHMEM_HUGE_WITHIN_SIZE or se == SHMEM_HUGE_ADVISE
            or se == SHMEM_HUGE_FORCE)


@kernel
def khugepaged_enter(cfg, gs, mm, mmi, now):
    """__khugepaged_enter: put the mm on khugepaged's list (MMF_VM_HUGEPAGE) and wake khugepaged
    at ``now`` if it slept for want of work."""
    if mm[MM_KH_SEQ, mmi] != 0:
        return
    mm[MM_FLAGS, mmi] |= 1 << MMF_VM_HUGEPAGE
    gs[G_KH_SEQ] += 1
    mm[MM_KH_SEQ, mmi] = gs[G_KH_SEQ]
    if gs[G_KH_WAKE] == NEVER and hugepage_pmd_enabled(cfg):
        gs[G_KH_WAKE] = now
        rearm(gs)


@kernel
def khugepaged_exit(gs, mm, mmi):
    """__khugepaged_exit: an exiting mm leaves the list now, unless khugepaged is scanning it
    (then khugepaged drops it when it next looks)."""
    if mm[MM_KH_SEQ, mmi] != 0 and gs[G_KH_MM] != mmi:
        mm[MM_KH_SEQ, mmi] = 0
        mm[MM_FLAGS, mmi] &= ~(1 << MMF_VM_HUGEPAGE)


@kernel
def get_huge_zero_pfn(gs, cfg, vmstat, fr32, fr_flags, fr_order, pb_mt):
    """The huge zero folio, allocated on first use (mm_get_huge_zero_folio)."""
    p = gs[G_HUGE_ZERO_PFN]
    if p >= 0:
        return p
    p = rmqueue(gs, cfg, fr32, fr_flags, fr_order, pb_mt, HPAGE_PMD_ORDER, MIGRATE_MOVABLE)
    if p < 0:
        vmstat[VS_THP_ZERO_PAGE_ALLOC_FAILED] += 1
        return -1
    vmstat[VS_THP_ZERO_PAGE_ALLOC] += 1
    vmstat[VS_PGALLOC] += HPAGE_PMD_NR
    fr_flags[p] = PG_head | PG_hugezero
    for i in range(1, HPAGE_PMD_NR):
        fr_flags[p + i] = PG_tail
    gs[G_HUGE_ZERO_PFN] = p
    return p


@kernel
def prep_anon_folio(fr32, fr_idx, fr_flags, fr_order, pfn, order, anon, vpn):
    """Mark a freshly allocated anonymous folio (folio_add_new_anon_rmap bookkeeping)."""
    fr_flags[pfn] = PG_head | PG_anon | PG_lru | PG_anon_exclusive
    fr_order[pfn] = order
    fr32[FR_OWNER, pfn] = anon
    fr_idx[pfn] = vpn
    fr32[FR_MAPCOUNT, pfn] = 0
    if order > 0:
        # A block from the buddy allocator has zero owner, mapcount and index on every page
        # (every free path clears them; check_invariants asserts it), so only the tails' flags
        # are written: one contiguous fill. page[1] carries the folio's entire (PMD) mapcount in
        # its owner slot and its total PTE mapcount in its index slot, both 0 now.
        fr_flags[pfn + 1:pfn + (1 << order)] = PG_tail | PG_anon_exclusive


@kernel
def leaf_prot(vm_flags):
    """Present, user, accessed; NX unless executable (vm_get_page_prot)."""
    e = _PAGE_PRESENT | _PAGE_USER | _PAGE_ACCESSED
    if (vm_flags & VM_EXEC) == 0:
        e |= _PAGE_NX
    return e


@kernel
def split_huge_pmd(cfg, vmstat, fr32, fr_idx, fr_flags, pt, pt_aux, mm, mmi, pos):
    """__split_huge_pmd_locked: turn a PMD leaf into the deposited PTE table with 512 PTEs.

    The folio stays whole (a PTE-mapped THP); the zero folio splits into 4 KiB zero-page PTEs.
    A page-cache THP's PMD is simply cleared (nothing was deposited for it; its pages are
    faulted in again by PTEs): ``pt[pos]`` is then 0.
    """
    pmde = pt[pos]
    if fr_flags[entry_pfn(pmde)] & PG_file_thp:
        zap_file_pmd(vmstat, fr32, fr_flags, pt, mm, mmi, pos, False)
        return
    pmd_table = pt_aux[0, pos // PTRS_PER_TABLE]
    table = withdraw_table(fr32, pmd_table)
    head = entry_pfn(pmde)
    bits = pmde & ~(PTE_PFN_MASK | _PAGE_PSE)
    base = fr_idx[table] * PTRS_PER_TABLE
    if fr_flags[head] & PG_hugezero:
        zp = cfg[C_NR_FRAMES]
        for i in range(HPAGE_PMD_NR):
            pt[base + i] = bits | (zp << 12)
    else:
        for i in range(HPAGE_PMD_NR):
            pt[base + i] = bits | ((head + i) << 12)
            fr32[FR_MAPCOUNT, head + i] += 1
        fr32[FR_OWNER, head + 1] -= 1
        fr_idx[head + 1] += HPAGE_PMD_NR
        mm[MM_ANON_THP, mmi] -= 1
        if fr32[FR_OWNER, head + 1] == 0:
            vmstat[VS_NR_ANON_THP] -= 1      # NR_ANON_THPS counts PMD-mapped folios
    pt[pos] = _PAGE_TABLE | (table << 12)
    vmstat[VS_THP_SPLIT_PMD] += 1


# ---- the deferred split queue (mm/huge_memory.c: deferred_split_folio, deferred_split_scan) ----
# A THP that lost some of its subpages' mappings but not all is queued (PG_partially_mapped); from
# 6.12, with shrink_underused, so is every new anonymous THP (faulted or collapsed), for the
# shrinker to split it if it is underused. The shrinker (``rmap.deferred_split_scan``) runs under
# memory pressure and from drop_caches' drop_slab. The queue is FIFO and linked through page[2]
# of each folio, where the kernel keeps _deferred_list; PG_deferred marks a queued head.

@kernel
def deferred_split_folio(gs, vmstat, fr32, fr_flags, head, partially_mapped):
    """Queue an anonymous THP once. ``partially_mapped``: some of its pages lost their last
    mapping (the first time counts thp_deferred_split_page); else a new THP queued for the
    underused check."""
    f = fr_flags[head]
    if partially_mapped and (f & PG_partially_mapped) == 0:
        f |= PG_partially_mapped
        vmstat[VS_THP_DEFERRED_SPLIT_PAGE] += 1
    if f & PG_deferred:
        fr_flags[head] = f
        return
    fr_flags[head] = f | PG_deferred
    link = head + 2
    tail = gs[G_DEFERRED_TAIL]
    fr32[FR_NEXT, link] = -1
    fr32[FR_PREV, link] = tail
    if tail >= 0:
        fr32[FR_NEXT, tail + 2] = head
    else:
        gs[G_DEFERRED_HEAD] = head
    gs[G_DEFERRED_TAIL] = head
    gs[G_DEFERRED_N] += 1


@kernel
def deferred_split_remove(gs, fr32, fr_flags, head):
    """Take a queued THP off the queue (it is being freed or split, or the shrinker found it in
    use)."""
    if (fr_flags[head] & PG_deferred) == 0:
        return
    fr_flags[head] &= ~(PG_deferred | PG_partially_mapped)
    link = head + 2
    nxt = fr32[FR_NEXT, link]
    prv = fr32[FR_PREV, link]
    if prv >= 0:
        fr32[FR_NEXT, prv + 2] = nxt
    else:
        gs[G_DEFERRED_HEAD] = nxt
    if nxt >= 0:
        fr32[FR_PREV, nxt + 2] = prv
    else:
        gs[G_DEFERRED_TAIL] = prv
    fr32[FR_NEXT, link] = 0
    fr32[FR_PREV, link] = 0
    gs[G_DEFERRED_N] -= 1


@kernel
def split_folio(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, head):
    """__split_huge_page of an anonymous THP mapped by PTEs only: every subpage becomes an order-0
    folio, and the unmapped ones are freed. Returns the pages freed, or -1 if it cannot split here
    (still PMD-mapped somewhere, or mlocked: left as it is)."""
    if fr32[FR_OWNER, head + 1] != 0 or (fr_flags[head] & PG_mlocked) != 0:
        return -1
    deferred_split_remove(gs, fr32, fr_flags, head)
    memcg_split_stat(gs, fr32, head, CHARGE_ANON)
    base = fr_flags[head] & ~(PG_tail | PG_anon_exclusive | PG_partially_mapped | PG_deferred |
                              PG_written)
    owner = fr32[FR_OWNER, head]
    vpn = fr_idx[head]
    freed = 0
    for i in range(HPAGE_PMD_NR):
        p = head + i
        keep = fr_flags[p] & (PG_anon_exclusive | PG_written)
        fr_order[p] = 0
        if fr32[FR_MAPCOUNT, p] == 0:
            fr_flags[p] = 0
            fr32[FR_OWNER, p] = 0
            fr_idx[p] = 0
            fr32[FR_NEXT, p] = 0
            fr32[FR_PREV, p] = 0
            memcg_uncharge_folio(gs, fr32, p, 1, CHARGE_ANON)
            free_pages(gs, fr32, fr_flags, fr_order, pb_mt, p, 0)
            freed += 1
        else:
            fr_flags[p] = base | keep
            fr32[FR_OWNER, p] = owner
            fr_idx[p] = vpn + i
    vmstat[VS_PGFREE] += freed
    vmstat[VS_THP_SPLIT_PAGE] += 1
    return freed


@kernel
def split_page_too(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, tlb,
                   pwc, head):
    """3.10 (C_SPLIT_MODE 1): split_huge_page splits the compound page along with the PMD, and
    first every other PMD that maps it (found through the anon rmap: its address in each mm of
    the anon tree)."""
    if cfg[C_SPLIT_MODE] == 0 or (fr_flags[head] & (PG_hugezero | PG_file_thp)) != 0:
        return
    if (fr_flags[head] & PG_head) == 0 or fr_order[head] != HPAGE_PMD_ORDER:
        return
    split_folio_pmds(cfg, gs, vmstat, fr32, fr_idx, fr_flags, pt, pt_aux, mm, tlb, pwc, head)
    split_folio(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, head)


@kernel
def split_folio_pmds(cfg, gs, vmstat, fr32, fr_idx, fr_flags, pt, pt_aux, mm, tlb, pwc, head):
    """unmap_folio's PMD part for the anonymous THP at ``head``: every PMD that maps it (found
    through the anon rmap: its address in each mm of the anon tree) is split, and that mm's TLB
    entry flushed (at no cost)."""
    if fr32[FR_OWNER, head + 1] == 0:
        return
    anon = fr32[FR_OWNER, head]
    va = fr_idx[head] << 12
    for m in range(gs[G_NR_MM]):
        if mm[MM_ANON, m] != anon or mm[MM_PGD, m] < 0:
            continue
        pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, m], va)
        if pos >= 0 and (pt[pos] & _PAGE_PSE) != 0 and entry_pfn(pt[pos]) == head:
            split_huge_pmd(cfg, vmstat, fr32, fr_idx, fr_flags, pt, pt_aux, mm, m, pos)
            flush_tlb_page(cfg, tlb, pwc, m + 1, va)
