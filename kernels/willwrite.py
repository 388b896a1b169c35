"""MADV_WILLWRITE (Andy Lutomirski's RFC, 5 Aug 2013; never merged): prepare a file mapping's
blocks for writing before the first write, so that write is cheap (spec 1.4-1.9).

``madvise_willwrite_vma`` is the RFC's per-VMA step (1.6): no VM_WRITE -> -EFAULT; a private or
anonymous mapping -> 0 ("not yet supported"); a filesystem without the hook (ext2, XFS, tmpfs,
ramfs: the RFC implemented ext4's alone) -> 0; ext4 -> ``block_willwrite`` (1.9): per 4 KiB
page, read-fault it in, -EFAULT beyond the end of the file, then ``__block_write_begin`` over it
(ext4: reserve a delalloc block for a hole, map the buffers of an unwritten one) without
dirtying anything; the PTE stays read-only, so the later first store still faults, but only for
the base ``page_mkwrite`` cost.

The RFC's future work, both off by default (``Config.willwrite_cow_ahead``,
``Config.willwrite_full_prep``): copy-on-write ahead for private file and anonymous mappings
(write-fault each page now), and full preparation of shared file mappings (map each page
writable and dirty now, as a write fault would).
"""
from .consts import (
    C_COST_MKWRITE,
    C_WILLWRITE,
    EFAULT,
    FS_TYPE,
    FST_EXT4,
    I_FS,
    I_SIZE,
    PG_mappedtodisk,
    VM_SHARED,
    VM_WRITE,
    WW_COW_AHEAD,
    WW_FULL_PREP,
)
from .fs import fs_write_begin
from .jit import kernel

PAGE = 4096


@kernel
def willwrite_plan(cfg, fs, ino, vm_flags, vfile):
    """What MADV_WILLWRITE does to one VMA: -EFAULT, 0 (nothing: userspace falls back), 1 (read
    fault and reserve: the RFC), 2 (write-fault every page: full preparation or COW ahead)."""
    if not vm_flags & VM_WRITE:
        return -EFAULT
    ww = cfg[C_WILLWRITE]
    if not vm_flags & VM_SHARED or vfile < 0:
        return 2 if ww & WW_COW_AHEAD and vfile != -2 else 0
    if fs[FS_TYPE, ino[I_FS, vfile]] != FST_EXT4:
        return 2 if ww & WW_FULL_PREP else 0
    return 2 if ww & WW_FULL_PREP else 1


@kernel
def block_willwrite_page(cfg, fs, ino, blk, fr_flags, ii, index, pfn):
    """``__block_write_begin`` on a cached page without committing: reserve or map its block and
    mark its buffers mapped. Returns the cost in ps, or -ENOSPC."""
    if fr_flags[pfn] & PG_mappedtodisk:
        return cfg[C_COST_MKWRITE]
    c = fs_write_begin(cfg, fs, ino, blk, ii, index, False)
    if c < 0:
        return c
    fr_flags[pfn] |= PG_mappedtodisk
    return c


@kernel
def willwrite_in_eof(ino, ii, vstart, pgoff, va):
    """True if the page at ``va`` of a VMA mapping inode ``ii`` lies inside the file."""
    index = pgoff + ((va - vstart) >> 12)
    return index * PAGE < ino[I_SIZE, ii]

