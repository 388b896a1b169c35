"""Reading pages in (mm/readahead.c): readahead window sizes and the disk reads that fill them."""
from .consts import (
    C_COST_CLEAR_PAGE,
    C_COST_PC_ALLOC,
    ENOMEM,
    FS_BYTES_READ,
    FS_DISK_FREE_AT,
    FS_RD_LAT,
    FS_RD_PAGE,
    G_STALL_PS,
    I_FS,
    OK,
    VS_PGPGIN,
)
from .filemap import filemap_add_page, filemap_get_folio
from .fs import fs_reads_zeros
from .jit import kernel
from .memcontrol import pagecache_alloc

PAGE = 4096


@kernel(inline="always")
def roundup_pow_of_two(n):
    r = 1
    while r < n:
        r <<= 1
    return r


@kernel(inline="always")
def get_init_ra_size(size, mx):
    newsize = roundup_pow_of_two(size)
    if newsize <= mx // 32:
        return newsize * 4
    if newsize <= mx // 4:
        return newsize * 2
    return mx


@kernel(inline="always")
def get_next_ra_size(cur, mx):
    if cur < mx // 16:
        return 4 * cur
    if cur <= mx // 2:
        return 2 * cur
    return mx


@kernel
def disk_read(fs, f, now, npages):
    """A read request of ``npages`` on filesystem ``f``'s disk issued at ``now``: its completion."""
    start = max(now, fs[FS_DISK_FREE_AT, f])
    done = start + fs[FS_RD_LAT, f] + npages * fs[FS_RD_PAGE, f]
    fs[FS_DISK_FREE_AT, f] = done
    fs[FS_BYTES_READ, f] += npages * PAGE
    return done


@kernel
def read_pages(S, ii, first, last, now):
    """Bring the missing pages of [first, last) into the page cache with one disk request for
    those that hold data. Returns (status, time the pages are ready)."""
    cfg, gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pt, pt_aux, mm, vma, \
        task, tlb, pwc, cpus, ev, smp, fs, ino, blk, pc, lru, fgs, wbq, swp, shadow = S
    f = ino[I_FS, ii]
    nio = 0
    cpu = now
    thrash = False
    for index in range(first, last):
        if filemap_get_folio(pc, fr32, fr_idx, ii, index) >= 0:
            continue
        pfn, c = pagecache_alloc(S, ii, cpu)
        cpu += c + cfg[C_COST_PC_ALLOC]
        if pfn < 0:
            return -ENOMEM, cpu
        if filemap_add_page(vmstat, fr32, fr_idx, fr_flags, fr_memcg, pc, lru, fgs, fs, ino, ii,
                            index, pfn, gs, shadow, True):
            thrash = True
        if fs_reads_zeros(ino, blk, fs, ii, index):
            cpu += cfg[C_COST_CLEAR_PAGE]
        else:
            nio += 1
    if nio == 0:
        return OK, cpu
    vmstat[VS_PGPGIN] += 4 * nio
    done = disk_read(fs, f, cpu, nio)
    if thrash:
        # read_pages and folio_wait_bit_common: waiting for a workingset page's read is a memory
        # stall (psi_memstall_enter), the thrashing PSI counts
        gs[G_STALL_PS] += done - cpu
    return OK, done
