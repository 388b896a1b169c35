"""Faults on file mappings (mm/memory.c do_read_fault / do_shared_fault / do_cow_fault /
do_fault_around / wp_page_shared, mm/filemap.c filemap_fault / filemap_map_pages).

- A read fault (or any fault on a private mapping) finds the page in the page cache or reads it
  in: a major fault (``pgmajfault``) that reads around the faulting index (``read_ahead_kb``,
  centred: ``do_sync_mmap_readahead``'s read-around) and waits for the disk. It then maps the
  already-cached neighbours too (``fault_around_bytes``, aligned, within the VMA, the PTE table
  and the file), all read-only.
- A write fault on a shared mapping runs the filesystem's ``page_mkwrite`` (``fs_write_begin``:
  ext4 and XFS reserve a delalloc block for a hole; a page whose buffers are already mapped pays
  only the base cost), maps the page writable and dirty and dirties it; ENOSPC there is SIGBUS.
- A write to a clean page mapped read-only in a shared mapping (``wp_page_shared``) does the same
  without the lookup; writeback write-protects the PTEs again (``folio_mkclean``), so the next
  store pays ``page_mkwrite`` again.
- A write fault on a private mapping copies the page into a new anonymous page (``do_cow_fault``);
  a write to a file page mapped read-only there copies it too (never reused).
- An access beyond the end of the file is SIGBUS.

Mapped file pages count in ``MM_FILEPAGES`` (tmpfs: ``MM_SHMEMPAGES``), ``nr_mapped`` (pages
mapped at least once) and their frame's mapcount.

Page-cache THPs (``shmem.py``): ``do_file_huge_fault`` runs before the PTE-level fault when no
PMD leaf is present. For a memory filesystem it allocates the huge folio the model allows; where
the PMD is empty, the VMA suitable (``thp_vma_suitable_order``: the aligned 2 MiB range inside
the VMA, the file offset aligned alike), THP not refused by VM_NOHUGEPAGE or the prctl, and the
fault not a private write, it maps the folio with one PMD (``do_set_pmd``, ``thp_file_mapped``):
writable at once in a shared writable mapping, as shmem has no write-notify. Under the 2013 model
there are no huge mappings: a fault that finds a huge page splits it and maps 4 KiB.
"""
from .consts import (
    BLK_HOLE,
    ENOSPC,
    I_BLK,
    MM_MEMCG,
    PG_written,
    C_COST_CLEAR_PAGE,
    I_FS,
    FST_RAMFS,
    FST_TMPFS,
    FS_FREE,
    FS_TYPE,
    C_HPC_MODEL,
    HPAGE_PMD_NR,
    HPAGE_PMD_SIZE,
    HPC_2013,
    MM_FLAGS,
    MM_HAD_PMD,
    PG_file_thp,
    VM_WRITE,
    VS_THP_FILE_MAPPED,
    _PAGE_PSE,
    VS_NR_DIRTY,
    FG_NEED_PT,
    FG_NEED_WB,
    FG_NEED_PC,
    FG_WB_TAIL,
    FG_WB_HEAD,
    FG_PC_USED,
    _PAGE_DIRTY,
    _PAGE_RW,
    C_COST_COPY_PAGE,
    C_COST_MKWRITE,
    C_COST_TLB_FLUSH,
    C_FAULT_AROUND,
    ENOMEM,
    FR_MAPCOUNT,
    I_SIZE,
    MIGRATE_MOVABLE,
    MM_ANON,
    MM_ANONPAGES,
    OK,
    PG_falloc_new,
    PG_mappedtodisk,
    PG_swapbacked,
    SIGBUS,
    T_MAJFLT,
    VM_SHARED,
    VM_LOCKED,
    VM_RAND_READ,
    VM_SEQ_READ,
    I_MRA,
    NR_RA_FIELDS,
    RA_ASYNC,
    RA_ORDER,
    RA_SIZE,
    RA_START,
    PG_readahead,
    VM_NOHUGEPAGE,
    VS_NR_ANON_PAGES,
    VS_PGALLOC,
    VS_PGMAJFAULT,
)
from .filemap import (
    account_page_dirtied,
    file_folio_head,
    file_folio_nr,
    file_folio_pmd,
    large_folios,
    filemap_get_folio,
    map_file_pmd,
    map_file_pte,
    split_file_folio,
    unmap_file_pte,
)
from .shmem import (
    HUGE_FOR_FAULT,
    huge_cache_capable,
    shmem_alloc_huge,
    shmem_huge_wanted,
)
from .fs import delalloc_fs, fs_write_begin
from .huge_memory import leaf_prot, prep_anon_folio, thp_disabled_by_mm
from .jit import kernel
from .lru import mlock_cache_folio, munlock_cache_folio
from .mlock import mlock_folio
from .memcontrol import mem_cgroup_charge
from .page_counter import CHARGE_ANON, frame_memcg, memcg_commit, page_counter_uncharge
from .pagetable import pt_slots_available
from .page_alloc import rmqueue
from .page_writeback import balance_dirty_pages
from .readahead import (
    hugepage_ra_wanted,
    hugepage_readahead,
    page_cache_ra_order,
    ra_busy,
    ra_hit,
    ra_pages,
    ra_sync,
    ra_wait,
    read_pages,
    wait_read,
)
from .tlb import flush_tlb_page

PAGE = 4096


@kernel(inline="always")
def mlock_mapped(vmstat, lru, fr32, fr_flags, pfn):
    """mlock_vma_folio when a PTE of a VM_LOCKED VMA starts mapping page-cache page ``pfn``
    (``folio_add_file_rmap_ptes``: order-0 folios only, so page-cache THPs are left alone)."""
    if not fr_flags[pfn] & PG_file_thp:
        mlock_cache_folio(vmstat, lru, fr32, fr_flags, frame_memcg(fr32, pfn), pfn, 1)


@kernel(inline="always")
def munlock_mapped(vmstat, lru, fr32, fr_flags, pfn):
    """munlock_vma_folio when such a PTE stops mapping it (``folio_remove_rmap_ptes``)."""
    if not fr_flags[pfn] & PG_file_thp:
        munlock_cache_folio(vmstat, lru, fr32, fr_flags, frame_memcg(fr32, pfn), pfn, 1)


@kernel(inline="always")
def file_room(fgs, pc, wbq, vmstat, pc_more, wb_more, pt_slots, gs):
    """Room for ``pc_more`` page-cache entries, writeback of every dirty page plus ``wb_more``,
    and ``pt_slots`` free page-table slots. If not, record what is needed (FG_NEED_*) for the
    NEED_GROW that follows."""
    need_pc = fgs[FG_PC_USED] + pc_more
    need_wb = vmstat[VS_NR_DIRTY] + wb_more
    ok = need_pc * 2 <= pc.shape[0] and need_wb <= wbq.shape[1] - (fgs[FG_WB_TAIL] - fgs[FG_WB_HEAD])
    ok = ok and pt_slots_available(gs) >= pt_slots
    if not ok:
        fgs[FG_NEED_PC] = need_pc
        fgs[FG_NEED_WB] = need_wb + (fgs[FG_WB_TAIL] - fgs[FG_WB_HEAD])
        fgs[FG_NEED_PT] = pt_slots
    return ok


@kernel
def folio_mkwrite_blocks(cfg, fs, ino, blk, ii, base, nr):
    """page_mkwrite of a large folio, pages [base, base + nr): ext4_page_mkwrite (XFS:
    iomap_page_mkwrite) maps every block of the folio up to EOF at once, all or nothing (-ENOSPC).
    Returns the cost in ps: one base cost, and each block's own work."""
    last = min(base + nr, (ino[I_SIZE, ii] + PAGE - 1) >> 12)
    f = ino[I_FS, ii]
    if delalloc_fs(fs[FS_TYPE, f]):
        holes = 0
        for j in range(base, last):
            holes += blk[ino[I_BLK, ii] + j] == BLK_HOLE
        if holes > fs[FS_FREE, f]:
            return -ENOSPC
    c = cfg[C_COST_MKWRITE]
    for j in range(base, last):
        c += fs_write_begin(cfg, fs, ino, blk, ii, j, False) - cfg[C_COST_MKWRITE]
    return c


@kernel
def shared_mkwrite(S, ii, index, pfn, ppos, now):
    """``page_mkwrite`` and dirtying for a store through a shared mapping. Returns (status, cost,
    clock after any dirty throttling)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    pfn = file_folio_head(fr_flags, pfn)         # the folio's state lives in its head
    if fr_flags[pfn] & PG_mappedtodisk:
        c = cfg[C_COST_MKWRITE]                  # its buffers are mapped already: base cost
    else:
        if fr_flags[pfn] & PG_file_thp:
            c = folio_mkwrite_blocks(cfg, fs, ino, blk, ii, fr_idx[pfn],
                                     file_folio_nr(fr_flags, pfn))
        else:
            c = fs_write_begin(cfg, fs, ino, blk, ii, index, False)
        if c < 0:
            return SIGBUS, 0, now
        fr_flags[pfn] |= PG_mappedtodisk
    pt[ppos] |= _PAGE_RW | _PAGE_DIRTY
    fr_flags[pfn] &= ~PG_falloc_new
    now += c
    if account_page_dirtied(vmstat, fr_flags, fs, ino, ii, pfn, now) and not fr_flags[pfn] & PG_swapbacked:
        now = balance_dirty_pages(S, now)
    return OK, c, now


@kernel(inline="always")
def async_mmap_readahead(S, ii, ra, index, pfn, vm_flags, t):
    """do_async_mmap_readahead on the marked page ``pfn`` (no window under MADV_RANDOM), then the
    wait if its read is pending. The window's allocations may reclaim the page (Linux holds it):
    then it is looked up again, and read by the caller if gone. Returns (time, frame or -1)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    mx = ra_pages(cfg, ra)
    t, started = ra_hit(S, fr_flags, ino, ii, ra, index, pfn, mx,
                        0 if vm_flags & VM_RAND_READ else mx, t, False)
    if started:
        pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
    return t, pfn


@kernel
def do_file_fault(S, mmi, ti, vm_flags, vstart, vend, pgoff, ii, ppos, va, write, now):
    """A fault on a non-present PTE of a file mapping. Returns (status, cost in ps from ``now``:
    disk waits included)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    index = pgoff + ((va - vstart) >> 12)
    eof = (ino[I_SIZE, ii] + PAGE - 1) >> 12
    if index >= eof:
        return SIGBUS, 0
    t = now
    pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
    ftype = fs[FS_TYPE, ino[I_FS, ii]]
    memfs = ftype == FST_TMPFS or ftype == FST_RAMFS
    ra = ino[I_MRA:I_MRA + NR_RA_FIELDS, ii]
    mx = ra_pages(cfg, ra)
    if pfn >= 0 and not memfs and ra_busy(fr_flags, ino, ii, pfn, t):
        t, pfn = async_mmap_readahead(S, ii, ra, index, pfn, vm_flags, t)
    if pfn < 0 and cfg[C_HPC_MODEL] == HPC_2013 and \
            shmem_huge_wanted(cfg, fs, ino, ii, index, 0, vm_flags, mm[MM_FLAGS, mmi], HUGE_FOR_FAULT):
        pfn, c = shmem_alloc_huge(S, ii, index, vm_flags, HUGE_FOR_FAULT, t)
        t += c
    if pfn >= 0 and fr_flags[pfn] & PG_file_thp and cfg[C_HPC_MODEL] == HPC_2013:
        # the 2013 series maps no huge page: a fault on one splits it first
        split_file_folio(vmstat, fr32, fr_flags, fr_order, fr_memcg, lru,
                         file_folio_head(fr_flags, pfn))
    if pfn < 0:
        if memfs:
            # shmem_fault / filemap_fault on a memory filesystem: that one page (ramfs has no
            # readahead); a full tmpfs is SIGBUS; only ramfs's filemap_fault counts a major fault
            if fs[FS_FREE, ino[I_FS, ii]] <= 0:
                return SIGBUS, t - now
            st, t = read_pages(S, ii, index, index + 1, t)
            if st < 0:
                return -ENOMEM, t - now
            if ftype == FST_RAMFS:
                vmstat[VS_PGMAJFAULT] += 1
                task[T_MAJFLT, ti] += 1
        else:
            # do_sync_mmap_readahead: nothing under MADV_RANDOM or with readahead off; ahead
            # under MADV_SEQUENTIAL; else read around the page (a quarter of the window async)
            st, cpu, done, thrash = OK, t, t, False
            if hugepage_ra_wanted(cfg, vm_flags):
                st, cpu, done, thrash = hugepage_readahead(S, ii, ra, index, vm_flags, t)
            elif mx == 0 or vm_flags & VM_RAND_READ:
                pass
            elif vm_flags & VM_SEQ_READ:
                st, cpu, done, thrash = ra_sync(S, ii, ra, index, mx, mx, t)
            else:
                ra[RA_START] = max(0, index - mx // 2)
                ra[RA_SIZE] = mx
                ra[RA_ASYNC] = mx // 4
                ra[RA_ORDER] = 0
                st, cpu, done, thrash = page_cache_ra_order(S, ii, ra, ra[RA_START], t)
            t = wait_read(S, cpu, done, thrash)
            if filemap_get_folio(pc, fr32, fr_idx, ii, index) < 0:
                if st < 0:
                    return -ENOMEM, t - now
                st, t = read_pages(S, ii, index, index + 1, t)
                if st < 0:
                    return -ENOMEM, t - now
            vmstat[VS_PGMAJFAULT] += 1
            task[T_MAJFLT, ti] += 1
        pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
    h = file_folio_head(fr_flags, pfn)
    if fr_flags[h] & PG_falloc_new:
        # shmem_fault on a fallocated folio: zeroed and uptodate now
        fr_flags[h] &= ~PG_falloc_new
        t += file_folio_nr(fr_flags, h) * cfg[C_COST_CLEAR_PAGE]
    prot = leaf_prot(vm_flags)
    shared = (vm_flags & VM_SHARED) != 0
    if write and not shared:
        # do_cow_fault: a private copy of the page
        cg = mm[MM_MEMCG, mmi]
        over, c = mem_cgroup_charge(S, cg, 1)
        t += c
        if over >= 0:
            return -ENOMEM, t - now
        new = rmqueue(gs, cfg, fr32, fr_flags, fr_order, pb_mt, 0, MIGRATE_MOVABLE)
        if new < 0:
            page_counter_uncharge(gs, cg, 1)
            return -ENOMEM, t - now
        memcg_commit(gs, fr32, cg, new, 1, CHARGE_ANON)
        prep_anon_folio(fr32, fr_idx, fr_flags, fr_order, new, 0, mm[MM_ANON, mmi], va >> 12)
        fr_flags[new] |= PG_written      # a copy of file data (counted as data, not zeros)
        fr32[FR_MAPCOUNT, new] = 1
        if vm_flags & VM_LOCKED:
            mlock_folio(fr_idx, fr_flags, fr_order, vmstat, new)    # folio_add_lru_vma
        pt[ppos] = prot | _PAGE_RW | _PAGE_DIRTY | (new << 12)
        mm[MM_ANONPAGES, mmi] += 1
        vmstat[VS_NR_ANON_PAGES] += 1
        vmstat[VS_PGALLOC] += 1
        return OK, t - now + cfg[C_COST_COPY_PAGE]
    map_file_pte(vmstat, fr32, fr_flags, pt, mm, mmi, ppos, pfn, prot)
    if write:
        st, c, t = shared_mkwrite(S, ii, index, pfn, ppos, t)
        if st != OK:
            unmap_file_pte(vmstat, fr32, fr_flags, mm, mmi, pfn)
            pt[ppos] = 0
            return st, t - now
        if vm_flags & VM_LOCKED:
            mlock_mapped(vmstat, lru, fr32, fr_flags, pfn)
        return OK, t - now
    if vm_flags & VM_LOCKED:
        mlock_mapped(vmstat, lru, fr32, fr_flags, pfn)
    # do_fault_around: map the cached neighbours read-only as well
    fa = max(1, cfg[C_FAULT_AROUND])
    lo = max(va & ~(fa * PAGE - 1), vstart, va & ~((1 << 21) - 1))
    hi = min((va & ~(fa * PAGE - 1)) + fa * PAGE, vend, (va & ~((1 << 21) - 1)) + (1 << 21))
    base = ppos - ((va - lo) >> 12)
    for k in range((hi - lo) >> 12):
        q = base + k
        if q == ppos or pt[q] != 0:
            continue
        j = pgoff + ((lo + k * PAGE - vstart) >> 12)
        if j >= eof:
            break
        p = filemap_get_folio(pc, fr32, fr_idx, ii, j)
        # filemap_map_pages maps uptodate, unlocked folios without the readahead mark
        if p >= 0 and not fr_flags[file_folio_head(fr_flags, p)] & (PG_falloc_new | PG_readahead) \
                and ra_wait(ino, ii, j, t) == t:
            map_file_pte(vmstat, fr32, fr_flags, pt, mm, mmi, q, p, prot)   # uptodate ones only
            if vm_flags & VM_LOCKED:
                mlock_mapped(vmstat, lru, fr32, fr_flags, p)
    return OK, t - now


@kernel
def do_file_wp(S, mmi, vm_flags, vstart, pgoff, ii, ppos, va, now):
    """A write to a page-cache page mapped read-only: ``wp_page_shared`` in a shared mapping, a
    copy in a private one. Returns (status, cost in ps)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    pte = pt[ppos]
    pfn = (pte >> 12) & ((1 << 40) - 1)
    if vm_flags & VM_SHARED:
        index = pgoff + ((va - vstart) >> 12)
        st, c, t = shared_mkwrite(S, ii, index, pfn, ppos, now)
        if st != OK:
            return st, 0
        flush_tlb_page(cfg, tlb, pwc, mmi + 1, va)
        return OK, t - now + cfg[C_COST_TLB_FLUSH]
    cg = mm[MM_MEMCG, mmi]
    over, c = mem_cgroup_charge(S, cg, 1)
    if over >= 0:
        return -ENOMEM, c
    new = rmqueue(gs, cfg, fr32, fr_flags, fr_order, pb_mt, 0, MIGRATE_MOVABLE)
    if new < 0:
        page_counter_uncharge(gs, cg, 1)
        return -ENOMEM, c
    memcg_commit(gs, fr32, cg, new, 1, CHARGE_ANON)
    prep_anon_folio(fr32, fr_idx, fr_flags, fr_order, new, 0, mm[MM_ANON, mmi], va >> 12)
    fr_flags[new] |= PG_written          # a copy of file data (counted as data, not zeros)
    fr32[FR_MAPCOUNT, new] = 1
    mm[MM_ANONPAGES, mmi] += 1
    vmstat[VS_NR_ANON_PAGES] += 1
    vmstat[VS_PGALLOC] += 1
    if vm_flags & VM_LOCKED:
        # wp_page_copy: the copy starts mlocked, the page-cache page leaves a locked VMA
        mlock_folio(fr_idx, fr_flags, fr_order, vmstat, new)
        munlock_mapped(vmstat, lru, fr32, fr_flags, pfn)
    unmap_file_pte(vmstat, fr32, fr_flags, mm, mmi, pfn)
    pt[ppos] = leaf_prot(vm_flags) | _PAGE_RW | _PAGE_DIRTY | (new << 12)
    flush_tlb_page(cfg, tlb, pwc, mmi + 1, va)
    return OK, c + cfg[C_COST_COPY_PAGE] + cfg[C_COST_TLB_FLUSH]


@kernel
def do_file_huge_fault(S, mmi, ti, vm_flags, vstart, vend, pgoff, ii, pos, va, write, now):
    """The page-cache THP part of a fault on a file mapping whose PMD holds no leaf (module
    docstring). Returns (status, cost in ps, done): not done means the PTE-level fault goes on
    (and finds any folio allocated here in the page cache)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    if cfg[C_HPC_MODEL] == HPC_2013:
        return OK, 0, False
    memfs = huge_cache_capable(cfg, fs, ino, ii)
    if not memfs and not large_folios(cfg, fs[FS_TYPE, ino[I_FS, ii]]):
        return OK, 0, False
    haddr = va & ~(HPAGE_PMD_SIZE - 1)
    if haddr < vstart or haddr + HPAGE_PMD_SIZE > vend or \
            ((vstart >> 12) - pgoff) & (HPAGE_PMD_NR - 1) != 0:
        return OK, 0, False                    # thp_vma_suitable_order
    index = pgoff + ((va - vstart) >> 12)
    if index >= (ino[I_SIZE, ii] + PAGE - 1) >> 12:
        return OK, 0, False                    # beyond EOF: SIGBUS at PTE level
    cost = 0
    mm_flags = mm[MM_FLAGS, mmi]
    wanted = memfs and shmem_huge_wanted(cfg, fs, ino, ii, index, 0, vm_flags, mm_flags,
                                         HUGE_FOR_FAULT)
    pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
    if not memfs:
        # ext4, XFS: filemap_fault. A miss under MADV_HUGEPAGE reads PMD-sized folios (a major
        # fault), a marked folio starts the next window; finish_fault then maps a PMD-sized one
        # by its PMD. Anything else goes on at PTE level (the read-around, fault-around).
        ra = ino[I_MRA:I_MRA + NR_RA_FIELDS, ii]
        if pfn < 0:
            if not hugepage_ra_wanted(cfg, vm_flags) or pt[pos] != 0 or \
                    (write and not vm_flags & VM_SHARED):
                return OK, 0, False
            st, cpu, done, thrash = hugepage_readahead(S, ii, ra, index, vm_flags, now)
            cost = wait_read(S, cpu, done, thrash) - now
            pfn = filemap_get_folio(pc, fr32, fr_idx, ii, index)
            if pfn < 0:
                return OK, cost, False             # the PTE-level fault reads the page
            vmstat[VS_PGMAJFAULT] += 1
            task[T_MAJFLT, ti] += 1
        elif ra_busy(fr_flags, ino, ii, pfn, now + cost):
            t, pfn = async_mmap_readahead(S, ii, ra, index, pfn, vm_flags, now + cost)
            cost = t - now
            if pfn < 0:
                return OK, cost, False
    elif pfn < 0:
        if not wanted:
            return OK, 0, False
        pfn, cost = shmem_alloc_huge(S, ii, index, vm_flags, HUGE_FOR_FAULT, now)
        if pfn < 0:
            return OK, cost, False
    shared = (vm_flags & VM_SHARED) != 0
    if pt[pos] != 0 or not file_folio_pmd(fr_flags, pfn) or (write and not shared):
        return OK, cost, False
    # do_set_pmd (6.12+ also asks vma_thp_disabled: VM_NOHUGEPAGE and the prctl)
    if vm_flags & VM_NOHUGEPAGE or thp_disabled_by_mm(cfg, mm_flags, vm_flags):
        return OK, cost, False
    head = file_folio_head(fr_flags, pfn)
    if write and not memfs:
        # ext4, XFS, do_shared_fault: page_mkwrite maps every block of the folio (all or nothing),
        # then finish_fault maps it by its PMD, writable and dirty. A store into a
        # write-protected PMD comes here too: wp_huge_pmd zapped it, and the fault that
        # follows finds the PMD empty
        if fr_flags[head] & PG_mappedtodisk:
            c = cfg[C_COST_MKWRITE]
        else:
            c = folio_mkwrite_blocks(cfg, fs, ino, blk, ii, fr_idx[head], HPAGE_PMD_NR)
            if c < 0:
                return SIGBUS, cost, True
            fr_flags[head] |= PG_mappedtodisk
        cost += c
    if fr_flags[head] & PG_falloc_new:
        fr_flags[head] &= ~PG_falloc_new           # shmem_fault zeroes a fallocated folio
        cost += HPAGE_PMD_NR * cfg[C_COST_CLEAR_PAGE]
    e = leaf_prot(vm_flags) | _PAGE_PSE | (head << 12)
    if shared and vm_flags & VM_WRITE and (memfs or write):
        e |= _PAGE_RW                          # shmem: no write-notify; ext4: after page_mkwrite
    if write:
        e |= _PAGE_DIRTY
        if account_page_dirtied(vmstat, fr_flags, fs, ino, ii, head, now + cost) and not memfs:
            cost = balance_dirty_pages(S, now + cost) - now
    pt[pos] = e
    map_file_pmd(vmstat, fr32, fr_flags, mm, mmi, head)
    mm[MM_HAD_PMD, mmi] = 1
    vmstat[VS_THP_FILE_MAPPED] += 1
    return OK, cost, True
