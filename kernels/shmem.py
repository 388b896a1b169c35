"""Huge pages in the page cache of memory filesystems (mm/shmem.c's THP support, 4.8+, and the 2013
ramfs series): when a page-cache miss gets a PMD-sized folio instead of a 4 KiB page.

Three models (``cfg[C_HPC_MODEL]``):

- ``HPC_MAINLINE``: tmpfs with the ``huge=`` mount option (profiles 4.8 and later), as
  ``shmem_huge_global_enabled`` decides: ``always``; ``within_size`` when the file (or the write
  under way) reaches the end of the aligned 2 MiB range; ``advise`` for a fault in a
  MADV_HUGEPAGE VMA; ``never``. ``shmem_enabled``'s ``deny`` and ``force`` override every mount.
  A fault also needs the VMA to be suitable (``thp_vma_suitable_order``), no VM_NOHUGEPAGE and no
  prctl; the folio is then PMD-mapped (``do_set_pmd``).
- ``HPC_2013``: Kirill Shutemov's 2013 series (v5, "everything but mmap()"): ramfs only; a write,
  a read of a hole or a fault on a hole allocates a huge page; no huge mappings: a fault on a huge
  page splits it first; ``thp_write_alloc[_failed]`` and ``thp_read_alloc[_failed]``.
- ``HPC_2013_MMAP``: the same, plus what the series lacked: faults map the huge page with a PMD.

The allocation takes the effort THP's ``defrag`` mode allows (``alloc_thp``: compaction when
the mode says so) and falls back to 4 KiB pages when it fails (``thp_file_fallback``), when any
page of the 2 MiB range is cached already, or when the filesystem lacks 512 free blocks. A new
folio is cleared whole (shmem zeroes what a first write does not cover).
"""
from .compaction import alloc_thp
from .consts import (
    VS_THP_FILE_FALLBACK_CHARGE,
    G_CUR_MEMCG,
    C_COST_CLEAR_PAGE,
    C_COST_PC_ALLOC,
    C_HPC_MODEL,
    C_KERNEL,
    C_SHMEM_ENABLED,
    HPAGE_PMD_SIZE,
    HPC_2013,
    MM_FLAGS,
    VM_READ,
    VM_WRITE,
    FS_FREE,
    FS_HUGE,
    FS_TYPE,
    FST_RAMFS,
    FST_TMPFS,
    HPAGE_PMD_NR,
    HPAGE_PMD_ORDER,
    HPC_MAINLINE,
    I_FS,
    I_SIZE,
    SHMEM_HUGE_ADVISE,
    SHMEM_HUGE_ALWAYS,
    SHMEM_HUGE_DENY,
    SHMEM_HUGE_FORCE,
    SHMEM_HUGE_WITHIN_SIZE,
    VM_HUGEPAGE,
    VM_NOHUGEPAGE,
    VS_PGALLOC,
    VS_THP_FILE_ALLOC,
    VS_THP_FILE_FALLBACK,
    VS_THP_READ_ALLOC,
    VS_THP_READ_ALLOC_FAILED,
    VS_THP_WRITE_ALLOC,
    VS_THP_WRITE_ALLOC_FAILED,
)
from .filemap import charge_kind, filemap_add_large, filemap_get_folio
from .huge_memory import hugepage_pmd_enabled, khugepaged_enter, thp_disabled_by_mm
from .jit import kernel
from .memcontrol import mem_cgroup_charge
from .page_counter import memcg_commit, page_counter_uncharge

# what asks for the folio (the 2013 counters tell writes from reads and faults)
HUGE_FOR_WRITE = 0
HUGE_FOR_READ = 1
HUGE_FOR_FAULT = 2


@kernel(inline="always")
def huge_cache_capable(cfg, fs, ino, ii):
    """Whether inode ``ii``'s filesystem can hold huge pages in this model at all."""
    t = fs[FS_TYPE, ino[I_FS, ii]]
    if cfg[C_HPC_MODEL] == HPC_MAINLINE:
        return t == FST_TMPFS and cfg[C_KERNEL] >= 408
    return t == FST_RAMFS


@kernel
def shmem_huge_wanted(cfg, fs, ino, ii, index, write_end, vm_flags, mm_flags, why):
    """``shmem_huge_global_enabled`` (or the 2013 rule): may page ``index`` of inode ``ii`` come
    in as part of a PMD-sized folio? ``write_end`` is the end of a write under way (bytes, 0 if
    none); ``vm_flags``/``mm_flags`` are the faulting VMA's and mm's (``why`` HUGE_FOR_FAULT)."""
    if not huge_cache_capable(cfg, fs, ino, ii):
        return False
    if why == HUGE_FOR_FAULT:
        if vm_flags & VM_NOHUGEPAGE or thp_disabled_by_mm(cfg, mm_flags, vm_flags):
            return False
    if cfg[C_HPC_MODEL] != HPC_MAINLINE:
        return True
    se = cfg[C_SHMEM_ENABLED]
    if se == SHMEM_HUGE_DENY:
        return False
    if se == SHMEM_HUGE_FORCE:
        return True
    h = fs[FS_HUGE, ino[I_FS, ii]]
    if h == SHMEM_HUGE_ALWAYS:
        return True
    if h == SHMEM_HUGE_WITHIN_SIZE:
        need = ((index >> 9) + 1) << 9                  # round_up(index + 1, HPAGE_PMD_NR)
        size = max(write_end, ino[I_SIZE, ii])
        return (size + 4095) >> 12 >= need
    if h == SHMEM_HUGE_ADVISE:
        return why == HUGE_FOR_FAULT and (vm_flags & VM_HUGEPAGE) != 0
    return False


@kernel
def shmem_alloc_huge(S, ii, index, vm_flags, why, now):
    """``shmem_alloc_and_add_folio`` at PMD order for page ``index``: allocate, clear and add the
    folio covering its aligned 2 MiB range. Returns (frame of page ``index`` or -1 to fall back
    to 4 KiB pages, cost in ps)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    base = index & ~(HPAGE_PMD_NR - 1)
    if fs[FS_FREE, ino[I_FS, ii]] < HPAGE_PMD_NR:
        return -1, 0                                   # shmem_inode_acct_blocks failed
    for i in range(HPAGE_PMD_NR):
        if filemap_get_folio(pc, fr32, fr_idx, ii, base + i) >= 0:
            return -1, 0                               # -EEXIST: part of the range is cached
    cg = gs[G_CUR_MEMCG]
    over, cost = mem_cgroup_charge(S, cg, HPAGE_PMD_NR)
    if over >= 0:
        # the memcg cannot take the folio even after reclaim (no OOM for it): base pages
        if cfg[C_HPC_MODEL] == HPC_MAINLINE:
            vmstat[VS_THP_FILE_FALLBACK] += 1
            vmstat[VS_THP_FILE_FALLBACK_CHARGE] += 1
        return -1, cost
    head, c = alloc_thp(cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, pb_mt, pt, mm, tlb,
                        pwc, vm_flags, now + cost)
    cost += c
    mainline = cfg[C_HPC_MODEL] == HPC_MAINLINE
    if head < 0:
        page_counter_uncharge(gs, cg, HPAGE_PMD_NR)
        if mainline:
            vmstat[VS_THP_FILE_FALLBACK] += 1
        elif why == HUGE_FOR_WRITE:
            vmstat[VS_THP_WRITE_ALLOC_FAILED] += 1
        else:
            vmstat[VS_THP_READ_ALLOC_FAILED] += 1
        return -1, cost
    if mainline:
        vmstat[VS_THP_FILE_ALLOC] += 1
    elif why == HUGE_FOR_WRITE:
        vmstat[VS_THP_WRITE_ALLOC] += 1
    else:
        vmstat[VS_THP_READ_ALLOC] += 1
    vmstat[VS_PGALLOC] += HPAGE_PMD_NR
    memcg_commit(gs, fr32, cg, head, HPAGE_PMD_NR, charge_kind(fs, ino, ii))
    filemap_add_large(vmstat, fr32, fr_idx, fr_flags, fr_memcg, pc, lru, fgs, fs, ino, ii, base,
                      head, HPAGE_PMD_ORDER)
    cost += cfg[C_COST_PC_ALLOC] + HPAGE_PMD_NR * cfg[C_COST_CLEAR_PAGE]
    return head + (index - base), cost


@kernel
def file_thp_vma_ok(cfg, fs, ino, mm_flags, ii, vs, ve, pgoff, flags):
    """thp_vma_allowable_order for file VMA [vs, ve) of inode ``ii`` from page ``pgoff`` with
    ``flags``: a memory filesystem whose model coalesces, not VM_NOHUGEPAGE, no prctl, the file
    offset aligned with the address (thp_vma_suitable_order) and an aligned 2 MiB range inside;
    shmem_enabled=deny refuses even MADV_COLLAPSE."""
    if ii < 0 or cfg[C_HPC_MODEL] == HPC_2013 or not huge_cache_capable(cfg, fs, ino, ii):
        return False
    hstart = (vs + HPAGE_PMD_SIZE - 1) & ~(HPAGE_PMD_SIZE - 1)
    if hstart + HPAGE_PMD_SIZE > ve or ((vs >> 12) - pgoff) & (HPAGE_PMD_NR - 1):
        return False
    if (flags & (VM_READ | VM_WRITE)) == 0 or flags & VM_NOHUGEPAGE:
        return False
    if thp_disabled_by_mm(cfg, mm_flags, flags):
        return False
    return not (cfg[C_HPC_MODEL] == HPC_MAINLINE and cfg[C_SHMEM_ENABLED] == SHMEM_HUGE_DENY)


@kernel
def khugepaged_enter_file_vma(cfg, gs, fs, ino, mm, mmi, ii, vs, ve, pgoff, flags, now):
    """khugepaged_enter_vma for a file VMA (at mmap, __mmap_new_vma / vma_merge_new_range, and at
    MADV_HUGEPAGE with the new flags): the mm joins khugepaged's list if khugepaged runs and may
    collapse there (TVA_ENFORCE_SYSFS: the huge= setting at the VMA's first index)."""
    if not hugepage_pmd_enabled(cfg) or \
            not file_thp_vma_ok(cfg, fs, ino, mm[MM_FLAGS, mmi], ii, vs, ve, pgoff, flags):
        return
    if cfg[C_HPC_MODEL] == HPC_MAINLINE and not shmem_huge_wanted(
            cfg, fs, ino, ii, pgoff, 0, flags, mm[MM_FLAGS, mmi], HUGE_FOR_FAULT):
        return
    khugepaged_enter(cfg, gs, mm, mmi, now)
