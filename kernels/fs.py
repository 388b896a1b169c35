"""Filesystems' block state: what a first write, a writeback and a fallocate do to each 4 KiB block.

One int8 per block of each file (``blk[ino[I_BLK] + index]``), ``BLK_*``:

- ext4 (delayed allocation): a write to a hole reserves a block (``ext4_da_get_block_prep``:
  BLK_DELALLOC, the filesystem's free count drops, ENOSPC when none is left) and writeback
  allocates it; ``fallocate`` allocates unwritten blocks, which read as zeros and are converted to
  written at writeback completion (``ext4_end_io``: a journalled extent change).
- XFS: the same block model (``delalloc_fs``): iomap's buffered write and ``page_mkwrite`` reserve
  delalloc blocks (``xfs_buffered_write_iomap_begin``, ``xfs_bmapi_reserve_delalloc``), writeback
  allocates them (``xfs_map_blocks``), unwritten extents are converted at I/O completion
  (``xfs_end_ioend``), with ext4's costs. Not modelled: the indirect-block reservation that comes
  with each delalloc extent, speculative preallocation beyond EOF, and the whole-extent
  reservation that makes a write larger than the free space fail with ENOSPC rather than write
  short (each seen on a 6.18 host).
- ext2: ``write()`` allocates a hole's block in ``write_begin``; a write through a shared mapping
  allocates nothing until writeback (``page_mkwrite`` does "almost nothing"), so a full disk
  loses that data at writeback and fsync reports ENOSPC.
- tmpfs and ramfs: no blocks; the size limit counts pages (``FS_BLOCKS``/``FS_FREE``).

Costs are the ``cfg`` entries named in each function; spec section 1.1-1.3 gives the behaviour.
"""
from .consts import (
    BLK_DELALLOC,
    BLK_HOLE,
    BLK_UNWRITTEN,
    BLK_WRITTEN,
    C_COST_BLOCK_ALLOC,
    C_COST_DA_RESERVE,
    C_COST_MKWRITE,
    C_COST_UNWRITTEN_CONVERT,
    C_COST_UNWRITTEN_MAP,
    ENOSPC,
    FS_ERR_LOST,
    FS_FREE,
    FS_TYPE,
    FST_EXT2,
    FST_EXT4,
    FST_XFS,
    I_BLK,
    I_BLKCAP,
    I_FS,
    I_WB_ERR,
)
from .jit import kernel


@kernel(inline="always")
def delalloc_fs(t):
    """Filesystem type ``t`` reserves blocks at write time and allocates them at writeback, and
    has unwritten extents: ext4 and XFS (``consts.DELALLOC_FSTYPES`` in Python)."""
    return t == FST_EXT4 or t == FST_XFS


@kernel(inline="always")
def block_fs(t):
    """Filesystem type ``t`` keeps block states on a disk: ext4, XFS and ext2
    (``consts.BLOCK_FSTYPES``); tmpfs and ramfs have none."""
    return delalloc_fs(t) or t == FST_EXT2


@kernel(inline="always")
def has_blocks(fs, ino, ii):
    return block_fs(fs[FS_TYPE, ino[I_FS, ii]])


@kernel(inline="always")
def blk_state(ino, blk, ii, index):
    """A block's state; beyond the file's block array, a hole."""
    if index >= ino[I_BLKCAP, ii]:
        return BLK_HOLE
    return blk[ino[I_BLK, ii] + index]


@kernel
def fs_write_begin(cfg, fs, ino, blk, ii, index, via_syscall):
    """The filesystem's work before a page is first dirtied (``write_begin`` for write(),
    ``page_mkwrite`` for a store through a shared mapping). Returns the cost in ps, or -ENOSPC."""
    f = ino[I_FS, ii]
    t = fs[FS_TYPE, f]
    if not block_fs(t):
        return cfg[C_COST_MKWRITE]
    b = ino[I_BLK, ii] + index
    s = blk[b]
    if delalloc_fs(t):
        # ext4_da_get_block_prep; XFS: xfs_buffered_write_iomap_begin reserves the hole
        if s == BLK_HOLE:
            if fs[FS_FREE, f] <= 0:
                return -ENOSPC
            fs[FS_FREE, f] -= 1
            blk[b] = BLK_DELALLOC
            return cfg[C_COST_MKWRITE] + cfg[C_COST_DA_RESERVE]
        if s == BLK_UNWRITTEN:
            return cfg[C_COST_MKWRITE] + cfg[C_COST_UNWRITTEN_MAP]
        return cfg[C_COST_MKWRITE]
    # ext2
    if s == BLK_HOLE and via_syscall:
        if fs[FS_FREE, f] <= 0:
            return -ENOSPC
        fs[FS_FREE, f] -= 1
        blk[b] = BLK_WRITTEN
        return cfg[C_COST_MKWRITE] + cfg[C_COST_BLOCK_ALLOC]
    return cfg[C_COST_MKWRITE]


@kernel
def fs_writeback_block(cfg, fs, ino, blk, ii, index):
    """Writeback of one dirty page's block: allocate delalloc (and ext2 hole) blocks, convert
    unwritten ones. Returns the cost in ps; a block that cannot be allocated loses the page's data
    and leaves -ENOSPC for the next fsync."""
    f = ino[I_FS, ii]
    if not block_fs(fs[FS_TYPE, f]):
        return 0
    b = ino[I_BLK, ii] + index
    s = blk[b]
    if s == BLK_DELALLOC:
        blk[b] = BLK_WRITTEN
        return cfg[C_COST_BLOCK_ALLOC]
    if s == BLK_UNWRITTEN:
        blk[b] = BLK_WRITTEN
        return cfg[C_COST_UNWRITTEN_CONVERT]
    if s == BLK_HOLE:
        if fs[FS_FREE, f] <= 0:
            fs[FS_ERR_LOST, f] += 1
            ino[I_WB_ERR, ii] = -ENOSPC
            return 0
        fs[FS_FREE, f] -= 1
        blk[b] = BLK_WRITTEN
        return cfg[C_COST_BLOCK_ALLOC]
    return 0


@kernel
def fs_fallocate(fs, ino, blk, ii, first, last):
    """Allocate unwritten blocks over [first, last) where there are holes (delalloc blocks already
    hold a reservation, which becomes their allocation). Returns 0 or -ENOSPC, checked before any
    block changes."""
    f = ino[I_FS, ii]
    base = ino[I_BLK, ii]
    need = 0
    for i in range(first, last):
        if blk[base + i] == BLK_HOLE:
            need += 1
    if need > fs[FS_FREE, f]:
        return -ENOSPC
    for i in range(first, last):
        if blk[base + i] == BLK_HOLE:
            blk[base + i] = BLK_UNWRITTEN
    fs[FS_FREE, f] -= need
    return 0


@kernel
def fs_punch_blocks(fs, ino, blk, ii, first, last):
    """Free every block in [first, last) (truncate, unlink): reservations and allocations both
    return to the free count."""
    f = ino[I_FS, ii]
    base = ino[I_BLK, ii]
    freed = 0
    for i in range(first, min(last, ino[I_BLKCAP, ii])):
        if blk[base + i] != BLK_HOLE:
            blk[base + i] = BLK_HOLE
            freed += 1
    fs[FS_FREE, f] += freed
    return freed


@kernel(inline="always")
def fs_reads_zeros(ino, blk, fs, ii, index):
    """A page whose contents need no disk read: a hole, an unwritten or a reserved block, or any
    page of a memory-only filesystem."""
    if not has_blocks(fs, ino, ii):
        return True
    return blk_state(ino, blk, ii, index) != BLK_WRITTEN
