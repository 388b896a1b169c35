"""Swap: slots, swap-out of anonymous pages, and their memcg charge (mm/swapfile.c, mm/vmscan.c's
anon side, mm/rmap.c try_to_unmap, mm/memcontrol.c's swap counter).

One swap device of ``swp.shape[1]`` slots; slot 0 holds the swap header, as mkswap leaves it, so
SwapTotal is one page less than the device. ``swp[SWP_COUNT, s]`` is the slot's ``swap_map``
count (the PTEs that hold its entry: more than one after fork), ``swp[SWP_MEMCG, s]`` its
``swap_cgroup`` (the memcg its swap charge went to). Slots are taken next-fit from a cursor, as
the kernel's per-device allocator hands out consecutive offsets to consecutive swap-outs.

Anonymous pages are not kept on LRU lists here. Anon reclaim is a CLOCK over the page tables:
``shrink_anon`` walks the address spaces from a cursor that persists between calls (mm by mm,
VMA by VMA, in address order); a present anonymous PTE whose accessed bit is set has it cleared
and is passed over (a second chance: the bit that ``folio_referenced`` would have found), one
whose bit is clear is swapped out. That is the reference information the kernel's
``folio_check_references`` uses, gathered the way MGLRU's page-table walk gathers it, but the
order of eviction is address order rather than the inactive anon list's (an approximation; the
fidelity ledger says so). A THP is split first (``thp_swpout_fallback``: it is never written to
swap whole), a mlocked page is never taken, and a page shared after fork is unmapped from every
address space of its anon tree at once (try_to_unmap), one swap entry with a count per PTE.

There is no swap cache: a swap-in frees its slot at once (the kernel keeps a clean copy in the
swap cache until the slot is needed; ``nr_swapcached`` stays 0 here).
"""
from .consts import (
    C_ZERO_REMAP,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_SPECIAL,
    C_COST_SWAP_WRITE,
    FR_MAPCOUNT,
    FR_OWNER,
    G_ANON_SCAN_MM,
    G_ANON_SCAN_VA,
    G_NR_MM,
    G_NR_SWAP_FREE,
    G_SWAP_CURSOR,
    G_SWAP_IO_PS,
    HPAGE_PMD_NR,
    MC_EV_SWAP_FAIL,
    MC_EV_SWAP_MAX,
    MC_ONLINE,
    MC_PARENT,
    MC_PGSCAN,
    MC_PGSTEAL,
    MC_SWAP_MAX,
    MC_SWAP_USAGE,
    MM_ANON,
    MM_ANONPAGES,
    MM_MEMCG,
    MM_PGD,
    MM_SWAPENTS,
    MM_VBASE,
    MM_VCOUNT,
    PG_anon,
    PG_file_thp,
    PG_hugezero,
    PG_lazyfree,
    PG_mlocked,
    PG_tail,
    SWP_COUNT,
    SWP_MEMCG,
    SWP_AGE,
    SWP_WORKINGSET,
    SWP_WRITTEN,
    PG_written,
    C_WORKINGSET,
    PG_workingset,
    V_END,
    V_FILE,
    V_FLAGS,
    V_START,
    VM_LOCKED,
    VS_PGSCAN_ANON,
    VS_PGSTEAL_ANON,
    VS_PSWPOUT,
    VS_THP_SWPOUT_FALLBACK,
)

from .jit import kernel
from .workingset import workingset_eviction_anon
from .page_counter import mc, memcg_is_descendant
from .pagetable import entry_pfn, next_pmd, pmd_lookup, pte_lookup, swp_entry_pte
from .rmap import remove_rmap_pte, split_anon_folio
from .tlb import flush_tlb_page


# ---- slots and their charge ----------------------------------------------------------------------

@kernel
def get_swap_slot(gs, swp):
    """A free slot (its count still 0), or -1 when the device is full (get_swap_pages)."""
    if gs[G_NR_SWAP_FREE] <= 0:
        return -1
    n = swp.shape[1]
    s = gs[G_SWAP_CURSOR]
    for _ in range(n):
        if s >= n or s < 1:
            s = 1
        if swp[SWP_COUNT, s] == 0:
            gs[G_SWAP_CURSOR] = s + 1
            gs[G_NR_SWAP_FREE] -= 1
            return s
        s += 1
    return -1


@kernel
def swap_charge(gs, cg):
    """__mem_cgroup_try_charge_swap for one page: the swap counters from ``cg`` up, unless one
    would pass its memory.swap.max (then ``cg`` counts a swap ``max`` and ``fail`` event and
    the page stays in memory)."""
    c = cg
    while c >= 0:
        if gs[mc(c, MC_SWAP_USAGE)] + 1 > gs[mc(c, MC_SWAP_MAX)]:
            gs[mc(cg, MC_EV_SWAP_MAX)] += 1
            gs[mc(cg, MC_EV_SWAP_FAIL)] += 1
            return False
        c = gs[mc(c, MC_PARENT)]
    c = cg
    while c >= 0:
        gs[mc(c, MC_SWAP_USAGE)] += 1
        c = gs[mc(c, MC_PARENT)]
    return True


@kernel
def swap_put(gs, swp, off, n):
    """``n`` references to slot ``off`` went (swap_free_nr / free_swap_and_cache): the last one
    frees the slot and its swap charge."""
    c = swp[SWP_COUNT, off] - n
    swp[SWP_COUNT, off] = c
    if c == 0:
        gs[G_NR_SWAP_FREE] += 1
        cg = swp[SWP_MEMCG, off]
        while cg >= 0:
            gs[mc(cg, MC_SWAP_USAGE)] -= 1
            cg = gs[mc(cg, MC_PARENT)]
        swp[SWP_MEMCG, off] = 0
        swp[SWP_WORKINGSET, off] = 0
        swp[SWP_AGE, off] = 0
        swp[SWP_WRITTEN, off] = 0


@kernel
def swapin_memcg(gs, swp, off, fallback):
    """The memcg a swapped-in page is charged to: the one its swap charge went to while that
    memcg is online, else the faulting mm's (mem_cgroup_swapin_charge_folio)."""
    cg = swp[SWP_MEMCG, off]
    if gs[mc(cg, MC_ONLINE)] != 0:
        return cg
    return fallback


@kernel(inline="always")
def anon_pte_of(cfg, pt, fr_idx, mm, m, va):
    """Position of mm ``m``'s PTE for ``va`` (below a PTE table), or -1."""
    pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, m], va)
    if pos < 0 or (pt[pos] & _PAGE_PRESENT) == 0 or (pt[pos] & _PAGE_PSE) != 0:
        return -1
    return pte_lookup(pt, fr_idx, pt[pos], va)


# ---- swap-out ---------------------------------------------------------------------------------

@kernel
def swap_out_page(S, pfn, target):
    """Write order-0 anonymous page ``pfn`` to swap and free it: every PTE that maps it (found
    through the anon rmap: its address in each mm of its anon tree) becomes the slot's swap
    entry (try_to_unmap), the slot's count is the number of PTEs, the memcg's charge moves from
    memory to swap. False (nothing changed) if swap is full, the memcg's swap.max refuses it,
    or a mapping is not where the rmap says. From 5.9 the slot keeps the page's shadow, aged
    against reclaim root ``target`` (``workingset_eviction``)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    if gs[G_NR_SWAP_FREE] <= 0:
        return False
    anon = fr32[FR_OWNER, pfn]
    va = fr_idx[pfn] << 12
    want = fr32[FR_MAPCOUNT, pfn]
    found = 0
    for m in range(gs[G_NR_MM]):
        if mm[MM_ANON, m] != anon or mm[MM_PGD, m] < 0:
            continue
        q = anon_pte_of(cfg, pt, fr_idx, mm, m, va)
        if q >= 0 and (pt[q] & _PAGE_PRESENT) != 0 and entry_pfn(pt[q]) == pfn:
            found += 1
    if found != want or want == 0:
        return False
    cg = fr_memcg[pfn]
    if not swap_charge(gs, cg):
        return False
    slot = get_swap_slot(gs, swp)
    swp[SWP_COUNT, slot] = want
    swp[SWP_MEMCG, slot] = cg
    swp[SWP_WRITTEN, slot] = 1 if fr_flags[pfn] & PG_written else 0
    if cfg[C_WORKINGSET] >= 2:
        workingset_eviction_anon(gs, lru, swp, slot, fr_flags[pfn] & PG_workingset, target)
    else:
        swp[SWP_WORKINGSET, slot] = 1 if fr_flags[pfn] & PG_workingset else 0
    e = swp_entry_pte(slot)
    for m in range(gs[G_NR_MM]):
        if mm[MM_ANON, m] != anon or mm[MM_PGD, m] < 0:
            continue
        q = anon_pte_of(cfg, pt, fr_idx, mm, m, va)
        if q >= 0 and (pt[q] & _PAGE_PRESENT) != 0 and entry_pfn(pt[q]) == pfn:
            pt[q] = e
            mm[MM_ANONPAGES, m] -= 1
            mm[MM_SWAPENTS, m] += 1
            flush_tlb_page(cfg, tlb, pwc, m + 1, va)
            remove_rmap_pte(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pfn)
    if swp[SWP_WRITTEN, slot] != 0 or cfg[C_ZERO_REMAP] == 0:
        vmstat[VS_PSWPOUT] += 1
        gs[G_SWAP_IO_PS] += cfg[C_COST_SWAP_WRITE]
    # else 6.12+: a zero-filled page only sets its slot's bit in the swap zeromap, no I/O
    return True


@kernel
def split_for_swap(S, head):
    """A THP about to be swapped out is split (it is never written whole here): every PMD that
    maps it is split through the anon rmap, then the folio (its unmapped subpages are freed, and
    from 6.12 its zero-filled ones mapped to the zero page and freed). Returns the pages freed
    by the split, or -1 if it cannot split (mlocked)."""
    got = split_anon_folio(S, head)
    if got >= 0:
        S.vmstat[VS_THP_SWPOUT_FALLBACK] += 1
    return got


@kernel
def _next_vma(mm, vma, m, va):
    """The first VMA of mm ``m`` that ends above ``va`` and may hold anonymous pages reclaim can
    take (not the vDSO, not VM_LOCKED), or -1."""
    base = mm[MM_VBASE, m]
    for k in range(mm[MM_VCOUNT, m]):
        p = base + k
        if vma[V_END, p] <= va or vma[V_FILE, p] == -2 or (vma[V_FLAGS, p] & VM_LOCKED) != 0:
            continue
        return p
    return -1


@kernel
def shrink_anon(S, target, nr_to_reclaim, max_scan):
    """Swap out up to ``nr_to_reclaim`` anonymous pages charged to ``target``'s subtree (every
    memcg for the root), examining at most ``max_scan`` present PTEs, continuing the CLOCK walk
    where the last call stopped (module docstring). Returns (pages freed, anon pages scanned)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    nmm = gs[G_NR_MM]
    if nmm == 0 or gs[G_NR_SWAP_FREE] <= 0 or nr_to_reclaim <= 0:
        return 0, 0
    m = gs[G_ANON_SCAN_MM]
    va = gs[G_ANON_SCAN_VA]
    freed = 0
    scanned = 0
    examined = 0
    moves = 0
    while freed < nr_to_reclaim and examined < max_scan and moves <= 2 * nmm + 1:
        if gs[G_NR_SWAP_FREE] <= 0:
            break
        if m >= nmm:
            m = 0
            va = 0
        pgd = mm[MM_PGD, m]
        p = -1
        if pgd >= 0 and (target == 0 or memcg_is_descendant(gs, mm[MM_MEMCG, m], target)):
            p = _next_vma(mm, vma, m, va)
        if p < 0:
            m += 1
            va = 0
            moves += 1
            continue
        a = max(va, vma[V_START, p])
        vend = vma[V_END, p]
        while a < vend and freed < nr_to_reclaim and examined < max_scan:
            pos, nxt = next_pmd(cfg, pt, fr_idx, pgd, a, vend)
            if pos < 0:
                a = nxt
                continue
            e = pt[pos]
            if e & _PAGE_PSE:
                head = entry_pfn(e)
                if (e & (_PAGE_SPECIAL | _PAGE_PRESENT)) != _PAGE_PRESENT or \
                        fr_flags[head] & (PG_hugezero | PG_file_thp | PG_mlocked) or \
                        (target != 0 and not memcg_is_descendant(gs, fr_memcg[head], target)):
                    a = nxt
                    continue
                examined += HPAGE_PMD_NR
                scanned += HPAGE_PMD_NR
                vmstat[VS_PGSCAN_ANON] += HPAGE_PMD_NR
                gs[mc(fr_memcg[head], MC_PGSCAN)] += HPAGE_PMD_NR
                if e & _PAGE_ACCESSED:
                    pt[pos] = e & ~_PAGE_ACCESSED
                    fr_flags[head] |= PG_workingset
                    a = nxt
                    continue
                got = split_for_swap(S, head)
                if got < 0:
                    a = nxt
                    continue
                freed += got
                continue                 # the same range again, now through a PTE table
            while a < nxt and freed < nr_to_reclaim and examined < max_scan:
                q = pte_lookup(pt, fr_idx, e, a)
                a += 4096
                pe = pt[q]
                if (pe & (_PAGE_PRESENT | _PAGE_SPECIAL)) != _PAGE_PRESENT:
                    continue
                pfn = entry_pfn(pe)
                f = fr_flags[pfn]
                if (f & (PG_anon | PG_tail)) == 0:
                    continue                     # a page-cache page: file reclaim's
                examined += 1
                large = (f & PG_tail) != 0 or fr_order[pfn] > 0
                head = pfn & ~(HPAGE_PMD_NR - 1) if large else pfn
                if fr_flags[head] & PG_mlocked or (target != 0 and not memcg_is_descendant(
                        gs, fr_memcg[pfn], target)):
                    continue
                scanned += 1
                vmstat[VS_PGSCAN_ANON] += 1
                gs[mc(fr_memcg[pfn], MC_PGSCAN)] += 1
                if pe & _PAGE_ACCESSED:
                    # referenced: a second chance, and the page counts as workingset (the
                    # kernel activates it: PG_workingset goes with the activation)
                    pt[q] = pe & ~_PAGE_ACCESSED
                    fr_flags[pfn] |= PG_workingset
                    continue
                if large:
                    got = split_for_swap(S, head)
                    if got < 0:
                        continue
                    freed += got
                    if pt[q] != pe:
                        continue             # a zero-filled page: now the zero page's PTE
                if fr_flags[pfn] & PG_lazyfree and fr32[FR_MAPCOUNT, pfn] == 1:
                    if pe & _PAGE_DIRTY:
                        fr_flags[pfn] &= ~PG_lazyfree    # written since MADV_FREE: swap-backed
                    else:
                        # a clean lazily freed page is discarded, not written (try_to_unmap_one)
                        pt[q] = 0
                        mm[MM_ANONPAGES, m] -= 1
                        flush_tlb_page(cfg, tlb, pwc, m + 1, a - 4096)
                        cgp = fr_memcg[pfn]
                        remove_rmap_pte(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pfn)
                        freed += 1
                        vmstat[VS_PGSTEAL_ANON] += 1
                        gs[mc(cgp, MC_PGSTEAL)] += 1
                        continue
                if swap_out_page(S, pfn, target):
                    freed += 1
                    vmstat[VS_PGSTEAL_ANON] += 1
                    gs[mc(fr_memcg[pfn], MC_PGSTEAL)] += 1
        va = a
        if a >= vend:
            # on to the next VMA of this mm (found from ``va`` next time round)
            if _next_vma(mm, vma, m, va) < 0:
                m += 1
                va = 0
                moves += 1
    gs[G_ANON_SCAN_MM] = m
    gs[G_ANON_SCAN_VA] = va
    return freed, scanned


@kernel
def madvise_pageout(S, mmi, start, end):
    """MADV_PAGEOUT (5.4+) over [start, end) of mm ``mmi``: every anonymous page mapped by this
    mm alone is swapped out now, whether referenced or not (reclaim_pages ignores references);
    a THP mapped by this mm alone is split first; pages shared with another mm, mlocked pages and
    page-cache pages are left (file pages are not paged out here). Without free swap nothing
    happens, as in the kernel, where such pages go back to the LRU. Returns the pages written."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    pgd = mm[MM_PGD, mmi]
    done = 0
    va = start
    while va < end and pgd >= 0 and gs[G_NR_SWAP_FREE] > 0:
        pos, nxt = next_pmd(cfg, pt, fr_idx, pgd, va, end)
        if pos < 0:
            va = nxt
            continue
        e = pt[pos]
        if e & _PAGE_PSE:
            head = entry_pfn(e)
            if (e & (_PAGE_SPECIAL | _PAGE_PRESENT)) != _PAGE_PRESENT or \
                    fr_flags[head] & (PG_hugezero | PG_file_thp | PG_mlocked) or \
                    fr32[FR_OWNER, head + 1] != 1 or fr_idx[head + 1] != 0 or \
                    split_for_swap(S, head) < 0:
                va = nxt
                continue
            continue                     # the same range again, now through a PTE table
        while va < nxt and gs[G_NR_SWAP_FREE] > 0:
            q = pte_lookup(pt, fr_idx, e, va)
            va += 4096
            pe = pt[q]
            if (pe & (_PAGE_PRESENT | _PAGE_SPECIAL)) != _PAGE_PRESENT:
                continue
            pfn = entry_pfn(pe)
            f = fr_flags[pfn]
            if (f & (PG_anon | PG_tail)) == 0 or fr32[FR_MAPCOUNT, pfn] != 1:
                continue
            if (f & PG_tail) != 0 or fr_order[pfn] > 0:
                head = pfn & ~(HPAGE_PMD_NR - 1)
                if fr32[FR_OWNER, head + 1] != 0 or split_for_swap(S, head) < 0 or pt[q] != pe:
                    continue             # (a zero-filled page maps the zero page after the split)
            elif f & PG_mlocked:
                continue
            if swap_out_page(S, pfn, 0):         # reclaim_pages: no target memcg (the root)
                done += 1
        va = nxt
    return done


@kernel
def madvise_cold(cfg, pt, fr32, fr_idx, fr_flags, fr_order, mm, mmi, start, end):
    """MADV_COLD (5.4+): the anonymous pages this mm alone maps in [start, end) lose their
    accessed bits, so the anon CLOCK takes them first (the kernel deactivates them: to the
    inactive list's tail). Returns the PTEs changed."""
    pgd = mm[MM_PGD, mmi]
    changed = 0
    va = start
    while va < end and pgd >= 0:
        pos, nxt = next_pmd(cfg, pt, fr_idx, pgd, va, end)
        if pos < 0:
            va = nxt
            continue
        e = pt[pos]
        if e & _PAGE_PSE:
            head = entry_pfn(e)
            if (e & (_PAGE_SPECIAL | _PAGE_PRESENT)) == _PAGE_PRESENT and \
                    (fr_flags[head] & (PG_hugezero | PG_file_thp)) == 0 and \
                    fr32[FR_OWNER, head + 1] == 1 and fr_idx[head + 1] == 0 and \
                    e & _PAGE_ACCESSED:
                pt[pos] = e & ~_PAGE_ACCESSED
                changed += 1
            va = nxt
            continue
        while va < nxt:
            q = pte_lookup(pt, fr_idx, e, va)
            va += 4096
            pe = pt[q]
            if (pe & (_PAGE_PRESENT | _PAGE_SPECIAL | _PAGE_ACCESSED)) != (_PAGE_PRESENT
                                                                          | _PAGE_ACCESSED):
                continue
            pfn = entry_pfn(pe)
            if fr_flags[pfn] & (PG_anon | PG_tail) and fr32[FR_MAPCOUNT, pfn] == 1:
                pt[q] = pe & ~_PAGE_ACCESSED
                changed += 1
    return changed
