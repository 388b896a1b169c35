"""Page faults, zapping and the access path (mm/memory.c).

``handle_mm_fault`` resolves one fault; ``access_one`` is the hardware side (TLBs, page walk,
accessed and dirty bits) and calls it. Hot functions take arrays, never the state tuple.
"""
from .borrow import borrow_state, borrow, prefetch
from .compaction import alloc_thp
from .consts import (
    C_ZERO_REMAP,
    C_HPC_MODEL,
    FS_TYPE,
    I_FS,
    HPC_2013,
    C_SHRINK_UNDERUSED,
    G_STALL_PS,
    PG_workingset,
    SWP_WORKINGSET,
    SWP_WRITTEN,
    C_WORKINGSET,
    T_STALL_PS,
    C_COST_SWAP_READ,
    G_NR_MM,
    MM_SWAPENTS,
    SWP_COUNT,
    T_MAJFLT,
    VS_PGMAJFAULT,
    VS_PSWPIN,
    _PAGE_PROTNONE,
    VS_THP_FAULT_FALLBACK_CHARGE,
    G_CUR_MEMCG,
    MC_THP_FALLBACK_CHARGE,
    MM_MEMCG,
    T_MEMCG,
    FAULT_PC_RESERVE,
    C_READ_AHEAD,
    PG_anon,
    _PAGE_ACCESSED,
    _PAGE_DIRTY,
    _PAGE_PRESENT,
    _PAGE_PSE,
    _PAGE_RW,
    _PAGE_SPECIAL,
    _PAGE_TABLE,
    C_COST_ACCESS,
    C_COST_CLEAR_PAGE,
    C_COST_COPY_PAGE,
    C_COST_FAULT,
    C_COST_PGTABLE_ALLOC,
    C_COST_STLB_HIT,
    C_COST_TLB_FLUSH,
    C_COST_WALK_LOAD,
    C_L1_2M_SETS,
    C_L1_2M_WAYS,
    C_L1_4K_SETS,
    C_L1_4K_WAYS,
    C_NR_FRAMES,
    C_PDE_CACHE,
    C_PDPTE_CACHE,
    C_PT_LEVELS,
    C_RECORD,
    C_STLB_SETS,
    C_STLB_WAYS,
    C_USE_ZERO_PAGE,
    C_ZERO_WP,
    CPU_STAMP,
    EFAULT,
    ENOMEM,
    FK_ANON,
    FK_HUGE_ZERO,
    FK_OTHER,
    FK_SWAP,
    FK_SEGV,
    FK_THP,
    FK_WP,
    FK_ZERO,
    FLUSH,
    FR_MAPCOUNT,
    FR_OWNER,
    G_HUGE_ZERO_PFN,
    G_NR_FREE,
    G_HIST_FAULT,
    G_NEXT_EVENT,
    HPAGE_PMD_NR,
    HPAGE_PMD_ORDER,
    HPAGE_PMD_SIZE,
    MM_ANON,
    MM_ANON_THP,
    MM_ANONPAGES,
    MM_FLAGS,
    MM_HAD_PMD,
    MM_PGD,
    MM_PGTABLES,
    NEED_GROW,
    OK,
    OP_FAULT,
    PTRS_PER_TABLE,
    REC_FAULT,
    SEGV,
    T_ACCESSES,
    T_CLOCK,
    T_CPU,
    T_DTLB_MISS,
    T_FAULT_PS,
    T_MINFLT,
    T_MM,
    T_PID,
    T_STLB_MISS,
    T_WALK_LOADS,
    T_WALK_PS,
    TASK_SIZE,
    V_END,
    V_ANON_VMA,
    V_FILE,
    V_PGOFF,
    V_FLAGS,
    V_START,
    VM_LOCKED,
    VM_READ,
    VM_SHARED,
    VM_WRITE,
    VS_NR_ANON_PAGES,
    VS_NR_ANON_THP,
    VS_NR_PAGE_TABLE_PAGES,
    VS_PGALLOC,
    VS_PGFAULT,
    VS_PGFREE,
    VS_THP_FAULT_ALLOC,
    VS_THP_FAULT_FALLBACK,
    ZERO_WP_THP,
    PG_anon_exclusive,
    PG_hugezero,
    PG_tail,
    PG_written,
    PG_file_thp,
)
from .events import ev_room, hist_add, run_timers
from .events import record as ev_record
from .huge_memory import (
    deferred_split_folio,
    get_huge_zero_pfn,
    khugepaged_enter,
    leaf_prot,
    prep_anon_folio,
    split_huge_pmd,
    split_page_too,
    thp_vma_allowable,
)
from .file_fault import do_file_fault, do_file_huge_fault, do_file_wp, file_room
from .shmem import huge_cache_capable
from .filemap import large_folios
from .filemap import unmap_file_pte, zap_file_pmd
from .jit import kernel
from .swap import anon_pte_of, swap_put, swapin_memcg
from .rmap import free_folio, pte_mapped_pages, queue_if_partial, remove_rmap_pte
from .lru import munlock_cache_folio
from .mlock import mlock_folio, munlock_anon_pte_page, munlock_thp
from .workingset import workingset_refault_anon
from .mmap import range_has_vma, vma_lookup
from .memcontrol import mem_cgroup_charge
from .vmscan import alloc_page_fast, reclaim_for_tables
from .page_alloc import free_pages
from .page_counter import (
    CHARGE_ANON,
    frame_memcg,
    mc,
    memcg_commit,
    page_counter_uncharge,
)
from .pagetable import (
    alloc_deposit_table,
    alloc_table,
    deposit_table,
    entry_pfn,
    free_table,
    next_pmd,
    pmd_alloc_walk,
    pmd_lookup,
    pt_slots_available,
    pte_lookup,
    swp_offset,
    withdraw_table,
)
from .tlb import (
    KEY_2M,
    fill_2m,
    fill_l1,
    fill_new_4k,
    fill_stlb,
    fixed_geometry,
    flush_tlb_page,
    probe_2m,
    probe_l1,
    probe_stlb,
    set_index,
    tlb_layout,
)

FAULT_RESERVE_TABLES = 8     # pool slots a fault may need: P4D, PUD, PMD, PTE, deposit, spare
PREFETCH_AHEAD = 16          # accesses between a prefetch and its use


@kernel
def page_reusable(fr32, fr_idx, fr_flags, fr_order, pfn):
    """do_wp_page's reuse test: PageAnonExclusive, else wp_can_reuse_anon_folio (the folio's only
    mapping), which makes the page exclusive again."""
    if fr_flags[pfn] & PG_anon_exclusive:
        return True
    if (fr_flags[pfn] & PG_tail) != 0 or fr_order[pfn] > 0:
        head = pfn & ~(HPAGE_PMD_NR - 1)
        ok = fr32[FR_OWNER, head + 1] == 0 and fr_idx[head + 1] == 1
    else:
        ok = fr32[FR_MAPCOUNT, pfn] == 1
    if ok:
        fr_flags[pfn] |= PG_anon_exclusive
    return ok


# ---- the fault handler --------------------------------------------------------------------------

@kernel(inline="always")
def do_anonymous_page(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm, mmi,
                      vm_flags, ppos, va, write, S, now):
    """A fault on an empty PTE: the zero page for a read, a new zeroed page for a write
    (allocated as GFP_HIGHUSER_MOVABLE is: waking kswapd, reclaiming directly below the min
    watermark)."""
    prot = leaf_prot(vm_flags)
    if not write:
        pt[ppos] = prot | _PAGE_SPECIAL | (cfg[C_NR_FRAMES] << 12)
        return OK, 0
    pfn, rc = alloc_page_fast(S, now)
    if pfn < 0:
        return -ENOMEM, rc
    prep_anon_folio(fr32, fr_idx, fr_flags, fr_order, pfn, 0, mm[MM_ANON, mmi], va >> 12)
    fr32[FR_MAPCOUNT, pfn] = 1
    if vm_flags & VM_LOCKED:
        mlock_folio(fr_idx, fr_flags, fr_order, vmstat, pfn)     # folio_add_lru_vma
    pt[ppos] = prot | _PAGE_RW | _PAGE_DIRTY | (pfn << 12)
    mm[MM_ANONPAGES, mmi] += 1
    vmstat[VS_NR_ANON_PAGES] += 1
    return OK, rc + cfg[C_COST_CLEAR_PAGE]


@kernel
def do_wp_page(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm, vma, mmi, tlb,
               pwc, vm_flags, ppos, va, S, now):
    """A write to a present read-only PTE in a writable VMA: reuse, or copy on write (the copy
    allocated with reclaim, as ``do_anonymous_page``'s page is)."""
    pte = pt[ppos]
    old = entry_pfn(pte)
    if (pte & _PAGE_SPECIAL) == 0 and page_reusable(fr32, fr_idx, fr_flags, fr_order, old):
        pt[ppos] = pte | _PAGE_RW | _PAGE_DIRTY
        return OK, 0
    pfn, rc = alloc_page_fast(S, now)
    if pfn < 0:
        return -ENOMEM, rc
    if (pt[ppos] & _PAGE_PRESENT) == 0 or entry_pfn(pt[ppos]) != old:
        # reclaim took the page being copied (a file page mapped privately): the fault retries
        free_pages(gs, fr32, fr_flags, fr_order, pb_mt, pfn, 0)
        vmstat[VS_PGFREE] += 1
        return OK, rc
    prep_anon_folio(fr32, fr_idx, fr_flags, fr_order, pfn, 0, mm[MM_ANON, mmi], va >> 12)
    fr32[FR_MAPCOUNT, pfn] = 1
    vmstat[VS_NR_ANON_PAGES] += 1
    if vm_flags & VM_LOCKED:
        mlock_folio(fr_idx, fr_flags, fr_order, vmstat, pfn)
    if pte & _PAGE_SPECIAL:
        cost = rc + cfg[C_COST_CLEAR_PAGE]
        mm[MM_ANONPAGES, mmi] += 1
    else:
        cost = rc + cfg[C_COST_COPY_PAGE]
        fr_flags[pfn] |= fr_flags[old] & PG_written      # the copy holds what the page held
        if vm_flags & VM_LOCKED:
            # wp_page_copy: the old page leaves a locked VMA (munlock_vma_folio)
            munlock_anon_pte_page(cfg, gs, vmstat, pt, fr32, fr_idx, fr_flags, fr_order, mm, vma,
                                  mmi, old)
        if remove_rmap_pte(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, old):
            queue_if_partial(gs, vmstat, fr32, fr_idx, fr_flags, fr_order,
                             old & ~(HPAGE_PMD_NR - 1))
    pt[ppos] = leaf_prot(vm_flags) | _PAGE_RW | _PAGE_DIRTY | (pfn << 12)
    flush_tlb_page(cfg, tlb, pwc, mmi + 1, va)
    return OK, cost + cfg[C_COST_TLB_FLUSH]


@kernel
def do_swap_page(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm, mmi, vm_flags,
                 ppos, va, write, S, ti, now):
    """A fault on a swap entry: charge and allocate a page (with reclaim), read it from swap (a
    major fault, ``pswpin``), map it. An entry held by one PTE is mapped writable where the VMA
    is (dirty on a write fault) and its slot freed; a shared one (after fork) is mapped
    read-only, in every mm of the anon tree that holds the same entry at this address, as their
    later faults would find it in the swap cache (a write then copies on write)."""
    swp = S.swp
    e = pt[ppos]
    off = swp_offset(e)
    cg = swapin_memcg(gs, swp, off, mm[MM_MEMCG, mmi])
    over, cost = mem_cgroup_charge(S, cg, 1)
    if over >= 0:
        return -ENOMEM, cost
    pfn, c = alloc_page_fast(S, now + cost)
    cost += c
    if pfn < 0:
        page_counter_uncharge(gs, cg, 1)
        return -ENOMEM, cost
    memcg_commit(gs, fr32, cg, pfn, 1, CHARGE_ANON)
    anon = mm[MM_ANON, mmi]
    prep_anon_folio(fr32, fr_idx, fr_flags, fr_order, pfn, 0, anon, va >> 12)
    data = swp[SWP_WRITTEN, off] != 0
    if data:
        fr_flags[pfn] |= PG_written
    # 6.12+: a zero-filled page was never written to the device (the swap zeromap): the read is
    # a folio_zero_range, no I/O
    zeromap = not data and cfg[C_ZERO_REMAP] != 0
    prot = leaf_prot(vm_flags) | (pfn << 12)
    n = 0
    if swp[SWP_COUNT, off] == 1:
        pte = prot
        if vm_flags & VM_WRITE:
            pte |= _PAGE_RW
            if write:
                pte |= _PAGE_DIRTY
        pt[ppos] = pte
        mm[MM_SWAPENTS, mmi] -= 1
        mm[MM_ANONPAGES, mmi] += 1
        n = 1
    else:
        fr_flags[pfn] &= ~PG_anon_exclusive
        for m in range(gs[G_NR_MM]):
            if mm[MM_ANON, m] != anon or mm[MM_PGD, m] < 0:
                continue
            q = anon_pte_of(cfg, pt, fr_idx, mm, m, va)
            if q >= 0 and pt[q] == e:
                pt[q] = prot
                mm[MM_SWAPENTS, m] -= 1
                mm[MM_ANONPAGES, m] += 1
                n += 1
    fr32[FR_MAPCOUNT, pfn] = n
    if cfg[C_WORKINGSET] >= 2:
        # 5.9+: the slot's shadow decides (workingset_refault); a restore is thrashing
        thrash = workingset_refault_anon(gs, vmstat, S.lru, swp, off, fr_flags, pfn, cg)
    else:
        thrash = swp[SWP_WORKINGSET, off] & 1 != 0
        if thrash:
            fr_flags[pfn] |= PG_workingset       # the page is in the workingset again
    if thrash and not zeromap:
        # a workingset page read back: a memory stall (swap_read_folio's psi_memstall_enter)
        gs[G_STALL_PS] += cfg[C_COST_SWAP_READ]
    swap_put(gs, swp, off, n)
    if vm_flags & VM_LOCKED:
        mlock_folio(fr_idx, fr_flags, fr_order, vmstat, pfn)
    vmstat[VS_NR_ANON_PAGES] += 1
    vmstat[VS_PGMAJFAULT] += 1
    S.task[T_MAJFLT, ti] += 1
    if zeromap:
        return OK, cost + cfg[C_COST_CLEAR_PAGE]
    vmstat[VS_PSWPIN] += 1
    return OK, cost + cfg[C_COST_SWAP_READ]


@kernel
def do_huge_pmd_anonymous_page(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt,
                               pt_aux, mm, tlb, pwc, mmi, vm_flags, pos, va, now):
    """Allocate and map a THP; returns (status, cost, mapped?). Not mapped means fall back."""
    pfn, cost = alloc_thp(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm, tlb,
                          pwc, vm_flags, now)
    if pfn < 0:
        vmstat[VS_THP_FAULT_FALLBACK] += 1
        return OK, cost, False
    table = alloc_deposit_table(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt_aux,
                                mmi)
    if table < 0:
        free_pages(gs, fr32, fr_flags, fr_order, pb_mt, pfn, HPAGE_PMD_ORDER)
        return -ENOMEM, cost, False
    haddr = va & ~(HPAGE_PMD_SIZE - 1)
    prep_anon_folio(fr32, fr_idx, fr_flags, fr_order, pfn, HPAGE_PMD_ORDER, mm[MM_ANON, mmi],
                    haddr >> 12)
    fr32[FR_OWNER, pfn + 1] = 1
    if vm_flags & VM_LOCKED:
        mlock_folio(fr_idx, fr_flags, fr_order, vmstat, pfn)
    e = leaf_prot(vm_flags) | _PAGE_DIRTY | _PAGE_PSE | (pfn << 12)
    if vm_flags & VM_WRITE:
        e |= _PAGE_RW
    pt[pos] = e
    mm[MM_HAD_PMD, mmi] = 1
    deposit_table(fr32, pt_aux[0, pos // PTRS_PER_TABLE], table)
    mm[MM_PGTABLES, mmi] += 1
    mm[MM_ANONPAGES, mmi] += HPAGE_PMD_NR
    mm[MM_ANON_THP, mmi] += 1
    vmstat[VS_NR_PAGE_TABLE_PAGES] += 1
    vmstat[VS_NR_ANON_PAGES] += HPAGE_PMD_NR
    vmstat[VS_NR_ANON_THP] += 1
    vmstat[VS_PGALLOC] += HPAGE_PMD_NR
    vmstat[VS_THP_FAULT_ALLOC] += 1
    if cfg[C_SHRINK_UNDERUSED]:
        deferred_split_folio(gs, vmstat, fr32, fr_flags, pfn, False)
    cost += HPAGE_PMD_NR * cfg[C_COST_CLEAR_PAGE] + cfg[C_COST_PGTABLE_ALLOC]
    return OK, cost, True


@kernel
def map_huge_zero(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, mmi,
                  vm_flags, pos):
    """Map the huge zero folio read-only with one PMD (set_huge_zero_folio); False: fall back."""
    fresh = gs[G_HUGE_ZERO_PFN] < 0
    hz = get_huge_zero_pfn(gs, cfg, vmstat, fr32, fr_flags, fr_order, pb_mt)
    if hz < 0:
        return OK, False, 0
    # allocating the huge zero folio zeroes 2 MiB once (get_huge_zero_folio, __GFP_ZERO)
    zc = HPAGE_PMD_NR * cfg[C_COST_CLEAR_PAGE] if fresh else 0
    table = alloc_deposit_table(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt_aux,
                                mmi)
    if table < 0:
        return -ENOMEM, False, zc
    pt[pos] = leaf_prot(vm_flags) | _PAGE_PSE | _PAGE_SPECIAL | (hz << 12)
    mm[MM_HAD_PMD, mmi] = 1
    deposit_table(fr32, pt_aux[0, pos // PTRS_PER_TABLE], table)
    mm[MM_PGTABLES, mmi] += 1
    vmstat[VS_NR_PAGE_TABLE_PAGES] += 1
    return OK, True, zc + cfg[C_COST_PGTABLE_ALLOC]


@kernel(inline="always")
def _handle_mm_fault(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm,
                     vma, tlb, pwc, mmi, va, write, S, ti, now):
    """__handle_mm_fault: see ``handle_mm_fault``."""
    p = vma_lookup(mm, vma, mmi, va)
    if p < 0:
        return SEGV, cfg[C_COST_FAULT]     # the exception is paid for all the same
    gs[G_CUR_MEMCG] = S.task[T_MEMCG, ti]         # page cache is charged to current's memcg
    cg = mm[MM_MEMCG, mmi]                        # anon pages to the mm owner's
    vm_flags = vma[V_FLAGS, p]
    if vma[V_FILE, p] == -2:                      # [vvar]/[vdso]: special mappings, not modelled
        return SEGV, cfg[C_COST_FAULT]     # the exception is paid for all the same
    if write:
        if (vm_flags & VM_WRITE) == 0:
            return SEGV, cfg[C_COST_FAULT]     # the exception is paid for all the same
        if (vm_flags & VM_SHARED) == 0:
            # a write in a private VMA makes (or finds) an anonymous page there: anon_vma_prepare
            # runs first (do_anonymous_page, do_cow_fault, wp_page_copy), even if the fault
            # then fails
            vma[V_ANON_VMA, p] = 1
    elif (vm_flags & VM_READ) == 0:
        return SEGV, cfg[C_COST_FAULT]     # the exception is paid for all the same
    if pt_slots_available(gs) < FAULT_RESERVE_TABLES:
        return NEED_GROW, 0
    vfile = vma[V_FILE, p]
    # room for fault-around and two readahead windows (read-around, and the async one)
    if vfile >= 0 and not file_room(S.fgs, S.pc, S.wbq, vmstat,
                                    FAULT_PC_RESERVE + 2 * cfg[C_READ_AHEAD], FAULT_PC_RESERVE, 0,
                                    gs):
        return NEED_GROW, 0                      # the page cache or the writeback ring is full
    cost = cfg[C_COST_FAULT]
    if gs[G_NR_FREE] < FAULT_RESERVE_TABLES:
        cost += reclaim_for_tables(S, now)      # page tables are allocated with reclaim too
    if mm[MM_PGD, mmi] < 0:
        pgd = alloc_table(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux,
                          mmi)
        if pgd < 0:
            return -ENOMEM, cost
        mm[MM_PGD, mmi] = pgd
        # meminfo PageTables counts every level since 6.14 ("account page tables at all
        # levels"); VmPTE (mm_pgtables_bytes) never counted the PGD
        vmstat[VS_NR_PAGE_TABLE_PAGES] += 1
        cost += cfg[C_COST_PGTABLE_ALLOC]
    pos, n = pmd_alloc_walk(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux,
                            mm, mmi, va)
    cost += n * cfg[C_COST_PGTABLE_ALLOC]
    if pos < 0:
        return -ENOMEM, cost
    pmde = pt[pos]
    if pmde == 0:
        if vfile < 0 and thp_vma_allowable(cfg, mm[MM_FLAGS, mmi], vm_flags, vma[V_START, p],
                                           vma[V_END, p], va):
            vma[V_ANON_VMA, p] = 1               # do_huge_pmd_anonymous_page: vmf_anon_prepare,
            khugepaged_enter(cfg, gs, mm, mmi, now)  # even for the huge zero page
            if not write and cfg[C_USE_ZERO_PAGE] != 0:
                st, done, c = map_huge_zero(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order,
                                            pb_mt, pt, pt_aux, mm, mmi, vm_flags, pos)
                cost += c
                if st != OK or done:
                    return st, cost
            else:
                over, c = mem_cgroup_charge(S, cg, HPAGE_PMD_NR)
                cost += c
                if over >= 0:
                    # a THP the memcg cannot take: base pages instead (no OOM for costly orders)
                    vmstat[VS_THP_FAULT_FALLBACK] += 1
                    vmstat[VS_THP_FAULT_FALLBACK_CHARGE] += 1
                    gs[mc(cg, MC_THP_FALLBACK_CHARGE)] += 1
                else:
                    st, c, done = do_huge_pmd_anonymous_page(cfg, gs, vmstat, fr32, fr_idx,
                                                             fr_flags, fr_order, pb_mt, pt,
                                                             pt_aux, mm, tlb, pwc, mmi, vm_flags,
                                                             pos, va, now)
                    cost += c
                    if done:
                        memcg_commit(gs, fr32, cg, entry_pfn(pt[pos]), HPAGE_PMD_NR, CHARGE_ANON)
                    else:
                        page_counter_uncharge(gs, cg, HPAGE_PMD_NR)
                    if st != OK or done:
                        return st, cost
    elif pmde & _PAGE_PSE:
        if not write or (pmde & _PAGE_RW) != 0:
            pt[pos] = pmde | _PAGE_ACCESSED
            return OK, cost
        head = entry_pfn(pmde)
        if fr_flags[head] & PG_file_thp:
            pass        # wp_huge_pmd: COW or write-notify is done at PTE level: split the PMD
        elif fr_flags[head] & PG_hugezero:
            if cfg[C_ZERO_WP] == ZERO_WP_THP:
                # do_huge_zero_wp_pmd: replace the zero PMD by a fresh THP, keep the deposit.
                # Like wp_huge_pmd, it does not ask thp_vma_allowable again: a PMD that is
                # already huge stays huge even if the prctl was set since.
                over, c = mem_cgroup_charge(S, cg, HPAGE_PMD_NR)
                cost += c
                pfn = -1
                if over < 0:
                    pfn, c = alloc_thp(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt,
                                       pt, mm, tlb, pwc, vm_flags, now)
                    cost += c
                    if pfn < 0:
                        page_counter_uncharge(gs, cg, HPAGE_PMD_NR)
                if pfn >= 0:
                    memcg_commit(gs, fr32, cg, pfn, HPAGE_PMD_NR, CHARGE_ANON)
                    haddr = va & ~(HPAGE_PMD_SIZE - 1)
                    prep_anon_folio(fr32, fr_idx, fr_flags, fr_order, pfn, HPAGE_PMD_ORDER,
                                    mm[MM_ANON, mmi], haddr >> 12)
                    fr32[FR_OWNER, pfn + 1] = 1
                    if vm_flags & VM_LOCKED:
                        mlock_folio(fr_idx, fr_flags, fr_order, vmstat, pfn)
                    pt[pos] = (leaf_prot(vm_flags) | _PAGE_RW | _PAGE_DIRTY | _PAGE_PSE
                               | (pfn << 12))
                    mm[MM_ANONPAGES, mmi] += HPAGE_PMD_NR
                    mm[MM_ANON_THP, mmi] += 1
                    vmstat[VS_NR_ANON_PAGES] += HPAGE_PMD_NR
                    vmstat[VS_NR_ANON_THP] += 1
                    vmstat[VS_PGALLOC] += HPAGE_PMD_NR
                    vmstat[VS_THP_FAULT_ALLOC] += 1
                    if cfg[C_SHRINK_UNDERUSED]:
                        deferred_split_folio(gs, vmstat, fr32, fr_flags, pfn, False)
                    flush_tlb_page(cfg, tlb, pwc, mmi + 1, va)
                    cost += HPAGE_PMD_NR * cfg[C_COST_CLEAR_PAGE] + cfg[C_COST_TLB_FLUSH]
                    return OK, cost
                vmstat[VS_THP_FAULT_FALLBACK] += 1
        elif page_reusable_pmd(fr32, fr_idx, fr_flags, head):
            pt[pos] = pmde | _PAGE_RW | _PAGE_DIRTY | _PAGE_ACCESSED
            return OK, cost
        if vm_flags & VM_LOCKED and (fr_flags[head] & (PG_hugezero | PG_file_thp)) == 0:
            munlock_thp(fr_idx, fr_flags, vmstat, head)      # the split drops the PMD mapping
        elif vm_flags & VM_LOCKED and fr_flags[head] & PG_file_thp:
            munlock_cache_folio(vmstat, S.lru, fr32, fr_flags, frame_memcg(fr32, head), head,
                                HPAGE_PMD_NR)
        split_huge_pmd(cfg, vmstat, fr32, fr_idx, fr_flags, pt, pt_aux, mm, mmi, pos)
        split_page_too(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm,
                       tlb, pwc, head)
        flush_tlb_page(cfg, tlb, pwc, mmi + 1, va)
        cost += cfg[C_COST_TLB_FLUSH]
        pmde = pt[pos]
    if vfile >= 0 and (pt[pos] & _PAGE_PSE) == 0 and cfg[C_HPC_MODEL] != HPC_2013 and \
            (huge_cache_capable(cfg, S.fs, S.ino, vfile) or
             (pt[pos] == 0 and large_folios(cfg, S.fs[FS_TYPE, S.ino[I_FS, vfile]]))):
        # a page-cache THP: allocated here for a memory filesystem, PMD-mapped where it can be
        # (ext4's PMD-sized folios too; do_file_huge_fault's own first tests, made here: most
        # file faults need no call)
        st, c, done = do_file_huge_fault(S, mmi, ti, vm_flags, vma[V_START, p], vma[V_END, p],
                                         vma[V_PGOFF, p], vfile, pos, va, write, now + cost)
        cost += c
        if st != OK or done:
            return st, cost
    if pt[pos] == 0:
        table = alloc_table(gs, cfg, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux,
                            mmi)
        if table < 0:
            return -ENOMEM, cost
        pt[pos] = _PAGE_TABLE | (table << 12)
        mm[MM_PGTABLES, mmi] += 1
        vmstat[VS_NR_PAGE_TABLE_PAGES] += 1
        cost += cfg[C_COST_PGTABLE_ALLOC]
    ppos = pte_lookup(pt, fr_idx, pt[pos], va)
    pte = pt[ppos]
    if pte != 0 and (pte & _PAGE_PRESENT) == 0:
        st, c = do_swap_page(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm,
                             mmi, vm_flags, ppos, va, write, S, ti, now + cost)
        return st, cost + c
    if pte == 0:
        if vfile >= 0:
            st, c = do_file_fault(S, mmi, ti, vm_flags, vma[V_START, p], vma[V_END, p],
                                  vma[V_PGOFF, p], vfile, ppos, va, write, now + cost)
            return st, cost + c
        if write:
            over, c = mem_cgroup_charge(S, cg, 1)
            cost += c
            if over >= 0:
                return -ENOMEM, cost                 # the OOM model decides (G_OOM_MEMCG)
        st, c = do_anonymous_page(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt,
                                  mm, mmi, vm_flags, ppos, va, write, S, now + cost)
        if write:
            if st == OK:
                memcg_commit(gs, fr32, cg, entry_pfn(pt[ppos]), 1, CHARGE_ANON)
            else:
                page_counter_uncharge(gs, cg, 1)
        return st, cost + c
    if write and (pte & _PAGE_RW) == 0:
        if vfile >= 0 and (pte & _PAGE_SPECIAL) == 0 and (fr_flags[entry_pfn(pte)] & PG_anon) == 0:
            st, c = do_file_wp(S, mmi, vm_flags, vma[V_START, p], vma[V_PGOFF, p], vfile, ppos,
                               va, now + cost)
            return st, cost + c
        if (pte & _PAGE_SPECIAL) == 0 and page_reusable(fr32, fr_idx, fr_flags, fr_order,
                                                         entry_pfn(pte)):
            # wp_can_reuse_anon_folio: the page is written in place, nothing is charged
            st, c = do_wp_page(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm,
                               vma, mmi, tlb, pwc, vm_flags, ppos, va, S, now + cost)
            return st, cost + c
        over, c = mem_cgroup_charge(S, cg, 1)       # wp_page_copy: the copy is charged
        cost += c
        if over >= 0:
            return -ENOMEM, cost
        st, c = do_wp_page(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm, vma,
                           mmi, tlb, pwc, vm_flags, ppos, va, S, now + cost)
        new = entry_pfn(pt[ppos])
        if st == OK and ((pte & _PAGE_SPECIAL) != 0 or new != entry_pfn(pte)):
            memcg_commit(gs, fr32, cg, new, 1, CHARGE_ANON)
        else:
            page_counter_uncharge(gs, cg, 1)
        return st, cost + c
    return OK, cost


@kernel(inline="always")
def handle_mm_fault(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, vma,
                    tlb, pwc, mmi, va, write, S, ti, now):
    """Resolve a fault at ``va``; returns (status, cost in ps).

    Status OK, SEGV, NEED_GROW (nothing changed: grow the page-table pool and retry) or -ENOMEM.
    A folio faulted into a VM_LOCKED VMA starts mlocked (mlock_new_folio, where it is mapped).
    Inlined into its callers (Numba IR inlining): a call passing the state arrays costs more
    than a minor fault.
    """
    return _handle_mm_fault(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux,
                            mm, vma, tlb, pwc, mmi, va, write, S, ti, now)


@kernel
def fault_kind(cfg, pt, fr_idx, fr_flags, mm, mmi, va, st, was_present):
    """What a fault did, for the event record (FK_*), read off the page tables afterwards."""
    if st == SEGV:
        return FK_SEGV
    if st != OK:
        return FK_OTHER
    if was_present:
        return FK_WP
    pos = pmd_lookup(cfg, pt, fr_idx, mm[MM_PGD, mmi], va)
    if pos < 0 or pt[pos] == 0:
        return FK_OTHER
    e = pt[pos]
    if e & _PAGE_PSE:
        return FK_HUGE_ZERO if fr_flags[entry_pfn(e)] & PG_hugezero else FK_THP
    pe = pt[pte_lookup(pt, fr_idx, e, va)]
    return FK_ZERO if pe & _PAGE_SPECIAL else FK_ANON


@kernel
def page_reusable_pmd(fr32, fr_idx, fr_flags, head):
    """do_huge_pmd_wp_page: reuse an exclusive THP, or one with a single PMD and no PTE maps."""
    if fr_flags[head] & PG_anon_exclusive:
        return True
    if fr32[FR_OWNER, head + 1] == 1 and fr_idx[head + 1] == 0:
        for i in range(HPAGE_PMD_NR):
            fr_flags[head + i] |= PG_anon_exclusive
        return True
    return False


# ---- the hardware side: TLB, walk, A/D bits ------------------------------------------------------

@kernel(inline="always")
def mark_written(fr_flags, tag, pfn, va):
    """A store through a TLB entry (``tag``, frame ``pfn``): the page it reaches holds data now
    (PG_written; a store writes data other than zeros, as a rule)."""
    if tag & (KEY_2M << 1):
        pfn += (va >> 12) & (HPAGE_PMD_NR - 1)
    f = fr_flags[pfn]
    if (f & PG_written) == 0:
        fr_flags[pfn] = f | PG_written


@kernel(inline="always")
def prefetch_pte(pt, fr_idx, cpwc, npde, npdpte, npwc, asid, va):
    """Software prefetch (a hint only: nothing observable changes). The walks of a random stream
    wait on their PTE loads, so the access loop starts loading the PTE of an access a few ahead,
    found through the PDPTE cache's PMD-table pointer (no walk of its own)."""
    j = set_index(va >> 30, npdpte)
    if va >= 0 and cpwc[npde + j] == ((asid << 37) | (va >> 30)):
        pmde = pt[cpwc[npwc + npde + j] * PTRS_PER_TABLE + ((va >> 21) & 511)]
        if (pmde & (_PAGE_PRESENT | _PAGE_PSE)) == _PAGE_PRESENT:
            prefetch(pt, fr_idx[entry_pfn(pmde)] * PTRS_PER_TABLE + ((va >> 12) & 511))


@kernel
def access_loop(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, vma,
                tlb, pwc, task, cpus, ev, smp, ti, addrs, writes, start, stride, n, i0, results,
                S):
    """Loads and stores by task ``ti``: the hardware side (TLBs, page walk, accessed and dirty
    bits), calling ``handle_mm_fault`` on a fault; the faulting access then re-executes, as the
    CPU re-executes the faulting instruction.

    Addresses are ``addrs[i]`` (with ``writes[i]``, or ``writes[0]`` for all) or, when ``addrs`` is
    empty, ``start + i * stride``. With ``results`` as long as the stream a SIGSEGV is recorded
    (1) and the stream goes on; otherwise the loop stops there. Returns (status, index reached):
    OK, SEGV, NEED_GROW (restart at the index after growing the pool), FLUSH (drain the event or
    sample buffer, then restart at the index), TIMER (khugepaged is due: run ``khugepaged_run``,
    then restart at the index) or -ENOMEM. Timed events due before an access run first, at their
    own times.

    Everything per access stays in this one function: a call that passes the state arrays costs
    a reference-count round trip per array, so only faults leave the loop.
    """
    S = borrow_state(S)                  # handed down to file faults: no reference counting
    # the entry kernel holds every array for the whole call: no reference counting inside
    cfg = borrow(cfg)
    gs = borrow(gs)
    vmstat = borrow(vmstat)
    fr32 = borrow(fr32)
    fr_idx = borrow(fr_idx)
    fr_flags = borrow(fr_flags)
    fr_order = borrow(fr_order)
    pb_mt = borrow(pb_mt)
    pt = borrow(pt)
    pt_aux = borrow(pt_aux)
    mm = borrow(mm)
    vma = borrow(vma)
    tlb = borrow(tlb)
    pwc = borrow(pwc)
    task = borrow(task)
    cpus = borrow(cpus)
    ev = borrow(ev)
    smp = borrow(smp)
    mmi = task[T_MM, ti]
    c = task[T_CPU, ti]
    asid = mmi + 1
    b2, b3, _ = tlb_layout(cfg)
    s1 = cfg[C_L1_4K_SETS]
    w1 = cfg[C_L1_4K_WAYS]
    s2 = cfg[C_L1_2M_SETS]
    w2 = cfg[C_L1_2M_WAYS]
    s3 = cfg[C_STLB_SETS]
    w3 = cfg[C_STLB_WAYS]
    fixed = fixed_geometry(s1, w1, s2, w2, s3, w3)     # the default geometry: unrolled lookups
    npde = cfg[C_PDE_CACHE]
    npdpte = cfg[C_PDPTE_CACHE]
    levels = cfg[C_PT_LEVELS]
    walk_cost = cfg[C_COST_WALK_LOAD]
    access_cost = cfg[C_COST_ACCESS]
    stlb_cost = cfg[C_COST_STLB_HIT]
    tags = tlb[c, 0]
    ages = tlb[c, 1]
    pfns = tlb[c, 2]
    cpwc = pwc[c]
    npwc = npde + npdpte                 # keys in [0, npwc), table slots after them
    one = writes.shape[0] == 1
    from_array = addrs.shape[0] > 0
    record = results.shape[0] == n
    # the read-only loop below applies: loads from an array on the default TLB geometry
    reads_fast = from_array and fixed and one and writes[0] == 0
    stamp = cpus[c, CPU_STAMP]
    clock = task[T_CLOCK, ti]
    accesses = 0
    dtlb = 0
    stlb = 0
    wloads = 0
    wps = 0
    fps = 0
    flt = 0
    status = OK
    last = -1
    rec_fault = (cfg[C_RECORD] & REC_FAULT) != 0
    pid = task[T_PID, ti]
    # kept in locals (the compiler cannot tell these arrays from the TLB's): the next timed
    # event moves only when timers run here, and page-table slots go only to faults
    next_event = gs[G_NEXT_EVENT]
    slots = pt_slots_available(gs)
    i = i0
    while i < n:
        # A tight loop over consecutive accesses that hit the entry the previous one used (the
        # common case of a sequential stream), before the general path below.
        # Per access it only compares keys: the entry's age, the clock and the counts move once
        # for the whole run (each access would set the same entry's age to the next stamp, and
        # only the last value is ever seen), and the run stops where the next timed event falls
        # (the accesses that start before it: clock + k * access_cost < next_event).
        if last >= 0 and clock < next_event:
            t = tags[last]
            tk = t >> 1
            writable = (t & 1) != 0
            # the first access decides whether the run starts (a random stream's seldom does),
            # before the division that bounds it
            va = addrs[i] if from_array else start + i * stride
            lim = i
            if va >= 0 and (((va >> 12) | (asid << 37)) == tk or
                            ((va >> 21) | (asid << 37) | KEY_2M) == tk):
                lim = n
                if access_cost > 0:
                    lim = min(n, i + (next_event - clock + access_cost - 1) // access_cost)
            j = i
            while j < lim:
                if from_array:
                    va = addrs[j]
                    write = (writes[0] if one else writes[j]) != 0
                else:
                    va = start + j * stride
                    write = writes[0] != 0
                if va < 0 or (((va >> 12) | (asid << 37)) != tk and
                              ((va >> 21) | (asid << 37) | KEY_2M) != tk):
                    break
                if write:
                    if not writable:
                        break
                    mark_written(fr_flags, t, pfns[last], va)
                j += 1
            if j > i:
                stamp += j - i
                ages[last] = stamp
                clock += (j - i) * access_cost
                accesses += j - i
                i = j
            if i >= n:
                break
        # The read-only loop: loads that hit a TLB or walk to a present 4 KiB PTE, over an
        # address space that never mapped a PMD leaf (no 2 MiB keys to probe), while no timed
        # event is due, the pool has a fault's reserve and the event buffer has room (so the
        # general path below would neither stop nor flush before them). It does exactly what
        # that path does for such an access, with the few values it needs kept in registers;
        # anything else (a fault, a 2 MiB leaf, a bad address) goes to the general path with
        # nothing of that access done except accessed bits the general walk sets again: the
        # walk's paging-structure-cache fills wait until it has succeeded, so the general walk
        # starts where it would have. An L1 hit on the entry the previous access used leaves it
        # too, for the run loop above.
        if reads_fast and clock < next_event and slots >= FAULT_RESERVE_TABLES and \
                mm[MM_HAD_PMD, mmi] == 0 and (not rec_fault or ev_room(gs, ev, 3)):
            while i < n and clock < next_event:
                va = addrs[i]
                if va < 0 or va >= TASK_SIZE:
                    break
                v4 = va >> 12
                k4 = (asid << 37) | v4
                if last >= 0 and (tags[last] >> 1) == k4:
                    break
                s1st = stamp + 1
                e = probe_l1(True, tags, ages, s1, w1, v4, k4, s1st)
                if e >= 0:
                    stamp = s1st
                    last = e
                    clock += access_cost
                    accesses += 1
                    i += 1
                    continue
                e3 = probe_stlb(True, tags, ages, b3, s3, w3, v4, k4, s1st)
                if e3 >= 0:
                    stamp = s1st + 1
                    last = fill_l1(True, tags, ages, pfns, s1, w1, v4, k4, 1 & tags[e3],
                                   pfns[e3], stamp)
                    dtlb += 1
                    clock += access_cost + stlb_cost
                    accesses += 1
                    i += 1
                    continue
                if npdpte > 0 and i + PREFETCH_AHEAD < n:
                    prefetch_pte(pt, fr_idx, cpwc, npde, npdpte, npwc, asid,
                                 addrs[i + PREFETCH_AHEAD])
                v2 = va >> 21
                pdpte_i = set_index(v2 >> 9, npdpte) if npdpte > 0 else 0
                pde_i = set_index(v2, npde) if npde > 0 else 0
                kp = (asid << 37) | (v2 >> 9)
                kd = (asid << 37) | v2
                if npde > 0 and cpwc[pde_i] == kd:
                    slot = cpwc[npwc + pde_i]
                    level = 1
                elif npdpte > 0 and cpwc[npde + pdpte_i] == kp:
                    slot = cpwc[npwc + npde + pdpte_i]
                    level = 2
                else:
                    pgd = mm[MM_PGD, mmi]
                    slot = fr_idx[pgd] if pgd >= 0 else -1
                    level = levels
                loads = 0
                lpos = -1
                pdpte_child = -1
                pde_child = -1
                while slot >= 0:
                    loads += 1
                    pos = slot * PTRS_PER_TABLE + ((va >> (3 + 9 * level)) & 511)
                    ent = pt[pos]
                    if (ent & _PAGE_PRESENT) == 0:
                        break
                    if (ent & _PAGE_ACCESSED) == 0:
                        pt[pos] = ent | _PAGE_ACCESSED
                    if level == 1:
                        lpos = pos
                        break
                    if level == 2 and (ent & _PAGE_PSE) != 0:
                        break
                    child = fr_idx[entry_pfn(ent)]
                    if level == 3:
                        pdpte_child = child
                    elif level == 2:
                        pde_child = child
                    slot = child
                    level -= 1
                if lpos < 0:
                    break
                if npdpte > 0 and pdpte_child >= 0:
                    cpwc[npde + pdpte_i] = kp
                    cpwc[npwc + npde + pdpte_i] = pdpte_child
                if npde > 0 and pde_child >= 0:
                    cpwc[pde_i] = kd
                    cpwc[npwc + pde_i] = pde_child
                leaf = pt[lpos]
                stamp = s1st + 1
                last = fill_new_4k(True, tags, ages, pfns, b3, s1, w1, s3, w3, v4, k4,
                                   1 if (leaf & (_PAGE_RW | _PAGE_DIRTY)) ==
                                   (_PAGE_RW | _PAGE_DIRTY) else 0, entry_pfn(leaf), stamp)
                wc = loads * walk_cost
                dtlb += 1
                stlb += 1
                wloads += loads
                wps += wc
                clock += access_cost + wc
                accesses += 1
                i += 1
            if i >= n:
                break
        if clock >= next_event:
            st = run_timers(cfg, gs, vmstat, smp, clock)
            if st != OK:
                status = st              # FLUSH, or TIMER: khugepaged runs, then this resumes
                break
            next_event = gs[G_NEXT_EVENT]
        if rec_fault and not ev_room(gs, ev, 3):
            status = FLUSH
            break
        if from_array:
            va = addrs[i]
            write = (writes[0] if one else writes[i]) != 0
        else:
            va = start + i * stride
            write = writes[0] != 0
        if va < 0 or va >= TASK_SIZE:
            if record:
                results[i] = 1
                i += 1
                continue
            status = SEGV
            break
        if slots < FAULT_RESERVE_TABLES:
            status = NEED_GROW           # checked first, so a restarted access counts once
            break
        v4 = va >> 12
        v2 = va >> 21
        k4 = (asid << 37) | v4
        k2 = (asid << 37) | KEY_2M | v2
        accesses += 1
        cost = access_cost
        st = OK
        stamp += 1
        # The L1 entry the previous access used: if it still holds this page, the set probe
        # would find exactly it (a key is in one set, once), so this is that probe's result.
        if last >= 0:
            t = tags[last]
            if ((t >> 1) == k4 or (t >> 1) == k2) and (not write or (t & 1) != 0):
                if write:
                    mark_written(fr_flags, t, pfns[last], va)
                ages[last] = stamp
                clock += cost
                i += 1
                continue
        # 2 MiB entries of this address space exist only if it ever mapped a PMD leaf
        huge_ok = mm[MM_HAD_PMD, mmi] != 0
        e = probe_l1(fixed, tags, ages, s1, w1, v4, k4, stamp)
        if e < 0 and huge_ok:
            e = probe_2m(fixed, tags, ages, b2, s2, w2, v2, k2, stamp)
        if e >= 0 and (not write or (tags[e] & 1) != 0):
            last = e
            if write:
                mark_written(fr_flags, tags[e], pfns[e], va)
            clock += cost
            i += 1
            continue
        missed = False                   # neither TLB level holds the 4 KiB key
        if e < 0:
            dtlb += 1
            e3 = probe_stlb(fixed, tags, ages, b3, s3, w3, v4, k4, stamp)
            if e3 < 0 and huge_ok:
                e3 = probe_stlb(fixed, tags, ages, b3, s3, w3, v2, k2, stamp)
            if e3 >= 0 and (not write or (tags[e3] & 1) != 0):
                cost += stlb_cost
                stamp += 1
                if (tags[e3] >> 1) == k4:
                    last = fill_l1(fixed, tags, ages, pfns, s1, w1, v4, k4, 1 & tags[e3],
                                   pfns[e3], stamp)
                else:
                    last = fill_2m(fixed, tags, ages, pfns, b2, s2, w2, v2, k2, 1 & tags[e3],
                                   pfns[e3], stamp)
                if write:
                    mark_written(fr_flags, tags[last], pfns[last], va)
                clock += cost
                i += 1
                continue
            missed = e3 < 0 or (tags[e3] >> 1) != k4
        # page walk (a TLB miss, or a store through a clean entry), then fault and walk again
        if from_array and npdpte > 0 and i + PREFETCH_AHEAD < n:
            prefetch_pte(pt, fr_idx, cpwc, npde, npdpte, npwc, asid, addrs[i + PREFETCH_AHEAD])
        pdpte_i = set_index(v2 >> 9, npdpte) if npdpte > 0 else 0
        pde_i = set_index(v2, npde) if npde > 0 else 0
        kp = (asid << 37) | (v2 >> 9)
        kd = (asid << 37) | v2
        for attempt in range(3):
            stlb += 1
            # the paging-structure caches hold table pointers: a hit starts the walk lower down
            if npde > 0 and cpwc[pde_i] == kd:
                slot = cpwc[npwc + pde_i]
                level = 1
            elif npdpte > 0 and cpwc[npde + pdpte_i] == kp:
                slot = cpwc[npwc + npde + pdpte_i]
                level = 2
            else:
                pgd = mm[MM_PGD, mmi]
                slot = fr_idx[pgd] if pgd >= 0 else -1
                level = levels
            loads = 0
            lpos = -1
            while True:
                loads += 1
                if slot < 0:
                    break
                pos = slot * PTRS_PER_TABLE + ((va >> (3 + 9 * level)) & 511)
                ent = pt[pos]
                if (ent & _PAGE_PRESENT) == 0:
                    break
                if (ent & _PAGE_ACCESSED) == 0:     # the CPU sets A with a locked update;
                    pt[pos] = ent | _PAGE_ACCESSED  # once set, it only reads the line
                if level == 1 or (level == 2 and (ent & _PAGE_PSE) != 0):
                    lpos = pos
                    break
                child = fr_idx[entry_pfn(ent)]
                if level == 3 and npdpte > 0:
                    cpwc[npde + pdpte_i] = kp
                    cpwc[npwc + npde + pdpte_i] = child
                elif level == 2 and npde > 0:
                    cpwc[pde_i] = kd
                    cpwc[npwc + pde_i] = child
                slot = child
                level -= 1
            wc = loads * walk_cost
            cost += wc
            wloads += loads
            wps += wc
            if lpos >= 0:
                leaf = pt[lpos]
                if not write or (leaf & _PAGE_RW) != 0:
                    if write:
                        leaf |= _PAGE_DIRTY
                        pt[lpos] = leaf
                    d = 1 if (leaf & (_PAGE_RW | _PAGE_DIRTY)) == (_PAGE_RW | _PAGE_DIRTY) else 0
                    stamp += 1
                    f = entry_pfn(leaf)
                    if level == 1 and missed:
                        last = fill_new_4k(fixed, tags, ages, pfns, b3, s1, w1, s3, w3, v4, k4, d,
                                           f, stamp)
                    elif level == 2:
                        fill_stlb(fixed, tags, ages, pfns, b3, s3, w3, v2, k2, d, f, stamp)
                        last = fill_2m(fixed, tags, ages, pfns, b2, s2, w2, v2, k2, d, f, stamp)
                    else:
                        fill_stlb(fixed, tags, ages, pfns, b3, s3, w3, v4, k4, d, f, stamp)
                        last = fill_l1(fixed, tags, ages, pfns, s1, w1, v4, k4, d, f, stamp)
                    if write:
                        mark_written(fr_flags, tags[last], f, va)
                    break
            # page fault: the only way out of this function per access
            vmstat[VS_PGFAULT] += 1
            flt += 1
            swapins = vmstat[VS_PSWPIN] if rec_fault else 0
            st, fc = handle_mm_fault(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt,
                                     pt, pt_aux, mm, vma, tlb, pwc, mmi, va, write,
                                     S, ti, clock + cost)
            if rec_fault and st != NEED_GROW:       # a fault that only asked for room reruns
                ev_record(gs, ev, clock + cost, pid, OP_FAULT, va, st if st != SEGV else -EFAULT,
                          fc, FK_SWAP if vmstat[VS_PSWPIN] != swapins else
                          fault_kind(cfg, pt, fr_idx, fr_flags, mm, mmi, va, st, lpos >= 0))
            cost += fc
            fps += fc
            if st != NEED_GROW:
                hist_add(gs, G_HIST_FAULT, fc)
            else:
                # the access reruns once Python has made room: count it (and its fault) then
                accesses -= 1
                flt -= 1
                vmstat[VS_PGFAULT] -= 1
            slots = pt_slots_available(gs)
            next_event = gs[G_NEXT_EVENT]        # a fault may enrol the mm and wake khugepaged
            if st != OK:
                break
        clock += cost
        if st != OK:
            if st == SEGV and record:
                results[i] = 1
                i += 1
                continue
            status = st
            break
        i += 1
    cpus[c, CPU_STAMP] = stamp
    task[T_CLOCK, ti] = clock
    task[T_ACCESSES, ti] += accesses
    task[T_DTLB_MISS, ti] += dtlb
    task[T_STLB_MISS, ti] += stlb
    task[T_WALK_LOADS, ti] += wloads
    task[T_WALK_PS, ti] += wps
    task[T_FAULT_PS, ti] += fps
    task[T_MINFLT, ti] += flt
    task[T_STALL_PS, ti] += gs[G_STALL_PS]      # the faults' memory stalls (PSI)
    gs[G_STALL_PS] = 0
    return status, i


# ---- unmapping -----------------------------------------------------------------------------------

@kernel
def zap_huge_pmd(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, mmi,
                 pos):
    """Unmap a whole PMD leaf and free its deposited table (zap_huge_pmd)."""
    pmde = pt[pos]
    head = entry_pfn(pmde)
    pt[pos] = 0
    table = withdraw_table(fr32, pt_aux[0, pos // PTRS_PER_TABLE])
    free_table(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt_aux, table)
    mm[MM_PGTABLES, mmi] -= 1
    vmstat[VS_NR_PAGE_TABLE_PAGES] -= 1
    if fr_flags[head] & PG_hugezero:
        return
    fr32[FR_OWNER, head + 1] -= 1
    mm[MM_ANONPAGES, mmi] -= HPAGE_PMD_NR
    mm[MM_ANON_THP, mmi] -= 1
    if fr32[FR_OWNER, head + 1] == 0:
        # the last PMD mapping: pages still mapped by PTEs elsewhere stay counted
        vmstat[VS_NR_ANON_THP] -= 1
        still = pte_mapped_pages(fr32, fr_idx, head)
        vmstat[VS_NR_ANON_PAGES] -= HPAGE_PMD_NR - still
        if 0 < still < HPAGE_PMD_NR:
            deferred_split_folio(gs, vmstat, fr32, fr_flags, head, True)
    if fr32[FR_OWNER, head + 1] == 0 and fr_idx[head + 1] == 0:
        free_folio(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, head, HPAGE_PMD_ORDER)


@kernel
def zap_page_range(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, tlb,
                   pwc, mmi, start, end, swp):
    """unmap_page_range over [start, end): returns the leaves zapped plus PMDs split (non-zero
    means the TLB needs a flush)."""
    pgd = mm[MM_PGD, mmi]
    if pgd < 0:
        return 0
    zapped = 0
    va = start
    while va < end:
        pos, nxt = next_pmd(cfg, pt, fr_idx, pgd, va, end)
        if pos < 0:
            va = nxt
            continue
        pmde = pt[pos]
        if pmde & _PAGE_PSE:
            if fr_flags[entry_pfn(pmde)] & PG_file_thp:
                whole = (va & (HPAGE_PMD_SIZE - 1)) == 0 and nxt - va == HPAGE_PMD_SIZE
                zap_file_pmd(vmstat, fr32, fr_flags, pt, mm, mmi, pos, whole)
                zapped += HPAGE_PMD_NR if whole else 1
                va = nxt
                continue
            if (va & (HPAGE_PMD_SIZE - 1)) == 0 and nxt - va == HPAGE_PMD_SIZE:
                zap_huge_pmd(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux,
                             mm, mmi, pos)
                zapped += HPAGE_PMD_NR
                va = nxt
                continue
            split_huge_pmd(cfg, vmstat, fr32, fr_idx, fr_flags, pt, pt_aux, mm, mmi, pos)
            split_page_too(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux,
                           mm, tlb, pwc, entry_pfn(pmde))
            zapped += 1
        tb = pte_lookup(pt, fr_idx, pt[pos], va)
        n = (nxt - va) >> 12
        # zap_present_ptes removes a THP's consecutive PTEs as one batch (folio_pte_batch): the
        # folio is queued for a deferred split only if it survives the whole batch
        bhead = -1
        bnext = -1
        bgone = False
        for i in range(n):
            e = pt[tb + i]
            if e == 0:
                continue
            pt[tb + i] = 0
            zapped += 1
            if (e & (_PAGE_PRESENT | _PAGE_PROTNONE)) == 0:
                # a swap entry: free_swap_and_cache
                swap_put(gs, swp, swp_offset(e), 1)
                mm[MM_SWAPENTS, mmi] -= 1
                continue
            if e & _PAGE_SPECIAL:
                continue
            pfn = entry_pfn(e)
            if (fr_flags[pfn] & (PG_anon | PG_tail)) == 0:
                unmap_file_pte(vmstat, fr32, fr_flags, mm, mmi, pfn)   # it stays in the cache
                continue
            mm[MM_ANONPAGES, mmi] -= 1
            large = (fr_flags[pfn] & PG_tail) != 0 or fr_order[pfn] > 0
            head = pfn & ~(HPAGE_PMD_NR - 1) if large else -1
            if bhead >= 0 and (head != bhead or pfn != bnext):
                if bgone:
                    queue_if_partial(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, bhead)
                bhead = -1
                bgone = False
            if remove_rmap_pte(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pfn):
                bgone = True
            if large:
                bhead = head
                bnext = pfn + 1
        if bhead >= 0 and bgone:
            queue_if_partial(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, bhead)
        va = nxt
    return zapped


@kernel
def _table_level_free(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm,
                      vma, mmi, start, end, shift):
    """Free the tables at one level whose range meets [start, end) and no VMA (free_pgtables).

    ``shift`` is the span of the table's entries' parent: 21 frees PTE tables, 30 PMD tables, ...
    """
    from_va = start & ~((1 << shift) - 1)
    va = from_va
    size = 1 << shift
    pgd = mm[MM_PGD, mmi]
    levels = cfg[C_PT_LEVELS]
    while va < end:
        if not range_has_vma(mm, vma, mmi, va, va + size):
            # walk to the entry that points at the table covering [va, va + size)
            slot = fr_idx[pgd]
            sh = 39 + 9 * (levels - 4)
            ok = True
            while sh > shift:
                e = pt[slot * PTRS_PER_TABLE + ((va >> sh) & 511)]
                if (e & _PAGE_PRESENT) == 0:
                    ok = False
                    break
                slot = fr_idx[entry_pfn(e)]
                sh -= 9
            if ok:
                pos = slot * PTRS_PER_TABLE + ((va >> shift) & 511)
                e = pt[pos]
                if (e & _PAGE_PRESENT) != 0 and (e & _PAGE_PSE) == 0:
                    pt[pos] = 0
                    free_table(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt_aux,
                               entry_pfn(e))
                    mm[MM_PGTABLES, mmi] -= 1
                    vmstat[VS_NR_PAGE_TABLE_PAGES] -= 1
        va += size


@kernel
def free_pgtables(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux, mm, vma,
                  mmi, start, end):
    """After munmap: free PTE, then PMD, then PUD (and P4D) tables no VMA needs any more."""
    if mm[MM_PGD, mmi] < 0 or end <= start:
        return
    shift = 21
    while shift <= 39 + 9 * (cfg[C_PT_LEVELS] - 4):
        _table_level_free(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, pt_aux,
                          mm, vma, mmi, start, end, shift)
        shift += 9
