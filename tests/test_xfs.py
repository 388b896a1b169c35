"""XFS: ext4's block model (delalloc, unwritten extents, ext4's costs), xfs_alloc_file_space's
ENOSPC rule for fallocate, no FALLOC_FL_WRITE_ZEROES in 6.18, no MADV_WILLWRITE hook, large
page-cache folios from 5.18 (tests/reference/FILES.md 3, 8, 16). The host facts cited were seen
on a 6.18 kernel with loop-mounted XFS images (mkfs.xfs 6.1)."""
import errno
import os

import numpy as np
import pytest

import mmcore
from mmcore.check import check_files, check_invariants
from mmcore.kernels import consts as K
from mmcore.kernels import filemap as FM
from mmcore.kernels import fs as FS
from mmcore.pageflags import folio_runs

PAGE = 4096
KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30
RW_ = os.O_CREAT | os.O_RDWR
RESERVE = K.XFS_EXTENTADD_SPACE_RES


def machine(size="64MiB", kernel="6.18", fstype="xfs", **kw):
    m = mmcore.Machine({"memory": "256MiB", "kernel": kernel, **kw})
    m.mount("/x", fstype, size=size)
    return m, m.spawn("app")


def checked(m):
    check_invariants(m)
    check_files(m)


def blocks(m, t, fd, n):
    """The states of the file's first ``n`` blocks (holes beyond its block array)."""
    f = m.vfs.state
    ii = m.vfs.fdtable(t.pid)[fd].ino
    b, cap = int(f.ino[K.I_BLK, ii]), int(f.ino[K.I_BLKCAP, ii])
    out = np.full(n, K.BLK_HOLE, np.int8)
    out[:min(n, cap)] = f.blk[b:b + min(n, cap)]
    return out.tolist()


def free(m):
    return m.fs_stats("/x")["free_blocks"]


def folio_sizes(m, t, fd, first, n):
    """Folio sizes behind pages [first, first + n) of the file, read through a shared mapping's
    pagemap and kpageflags, as a script reads them on Linux."""
    a = t.mmap((first + n) * PAGE, mmcore.PROT_READ, mmcore.MAP_SHARED, fd=fd)
    t.touch(a + first * PAGE, n * PAGE, write=False)
    runs = folio_runs(m.state, t.pagemap(a + first * PAGE, n * PAGE))
    t.munmap(a, (first + n) * PAGE)
    return runs


# ---- blocks: ext4's model ---------------------------------------------------------------------
def test_xfs_write_reserves_delalloc_then_writeback_allocates():
    m, t = machine()
    fd = t.open("/x/f", RW_)
    f0 = free(m)
    assert t.pwrite(fd, 0, 10 * PAGE) == 10 * PAGE
    assert blocks(m, t, fd, 10) == [K.BLK_DELALLOC] * 10       # xfs_bmapi_reserve_delalloc
    assert free(m) == f0 - 10 and m.meminfo()["Dirty"] == 40
    checked(m)
    t.fsync(fd)
    assert blocks(m, t, fd, 10) == [K.BLK_WRITTEN] * 10
    assert m.fs_stats("/x")["bytes_written"] == 10 * PAGE and free(m) == f0 - 10
    checked(m)


def test_xfs_page_mkwrite_reserves_and_a_full_disk_is_sigbus():
    m, t = machine(size="64KiB")                               # 16 blocks
    fd = t.open("/x/f", RW_)
    t.ftruncate(fd, 8 * PAGE)                                  # a hole
    a = t.mmap(8 * PAGE, flags=mmcore.MAP_SHARED, fd=fd)
    t.touch(a, 1, write=True)                                  # iomap_page_mkwrite
    assert blocks(m, t, fd, 2) == [K.BLK_DELALLOC, K.BLK_HOLE] and free(m) == 15
    assert m.meminfo()["Dirty"] == 4
    g = t.open("/x/g", RW_)
    assert t.pwrite(g, 0, 15 * PAGE) == 15 * PAGE and free(m) == 0
    with pytest.raises(mmcore.BusError):
        t.touch(a + PAGE, 1, write=True)
    assert blocks(m, t, fd, 2) == [K.BLK_DELALLOC, K.BLK_HOLE]
    checked(m)


def test_xfs_fallocate_unwritten_reads_zero_and_converts_at_writeback():
    m, t = machine()
    fd = t.open("/x/f", RW_)
    t.fallocate(fd, 0, 0, 8 * PAGE)
    assert t.stat_size(fd) == 8 * PAGE
    assert blocks(m, t, fd, 8) == [K.BLK_UNWRITTEN] * 8
    assert t.pread(fd, 0, 8 * PAGE) == 8 * PAGE
    assert m.fs_stats("/x")["bytes_read"] == 0                 # unwritten extents read as zeros
    t.pwrite(fd, 0, PAGE)
    assert blocks(m, t, fd, 1) == [K.BLK_UNWRITTEN]            # converted at I/O completion
    t.fsync(fd)
    assert blocks(m, t, fd, 8) == [K.BLK_WRITTEN] + [K.BLK_UNWRITTEN] * 7
    t.fallocate(fd, K.FALLOC_FL_PUNCH_HOLE | K.FALLOC_FL_KEEP_SIZE, PAGE + 100, 3 * PAGE)
    assert blocks(m, t, fd, 5) == [K.BLK_WRITTEN, K.BLK_UNWRITTEN, K.BLK_HOLE, K.BLK_HOLE,
                                   K.BLK_UNWRITTEN]
    checked(m)


def test_xfs_uses_ext4s_costs():
    """A first write to a hole, to an unwritten block and to a written cached page cost on XFS
    what they cost on ext4 (one set of cost constants)."""
    def costs(fstype):
        m, t = machine(fstype=fstype)
        fd = t.open("/x/f", RW_)
        t.pwrite(fd, 0, PAGE)
        t.fsync(fd)
        t.fallocate(fd, K.FALLOC_FL_KEEP_SIZE, PAGE, PAGE)
        out = []
        for index in (0, 1, 5):
            t0 = t.time_ns
            t.pwrite(fd, index * PAGE, PAGE)
            out.append(t.time_ns - t0)
        return out
    xfs = costs("xfs")
    assert xfs == costs("ext4")
    assert xfs[0] < xfs[1] < xfs[2]                            # written < unwritten < hole


# ---- fallocate: xfs_alloc_file_space's rule -------------------------------------------------------
@pytest.mark.parametrize("mode", [0, K.FALLOC_FL_KEEP_SIZE, K.FALLOC_FL_ZERO_RANGE])
def test_xfs_fallocate_reserves_the_whole_range_up_front(mode):
    """As on the host (60917 free blocks: a request of free - 4 blocks succeeded, of free - 3
    failed with nothing allocated and the size unchanged, in each of these modes); ext4 on the
    same disk allocates what fits and grows the size over it."""
    m, t = machine(size="64KiB")
    fd = t.open("/x/f", RW_)
    with pytest.raises(OSError) as e:
        t.fallocate(fd, mode, 0, (16 - RESERVE + 1) * PAGE)
    assert e.value.errno == errno.ENOSPC
    assert t.stat_size(fd) == 0 and free(m) == 16 and blocks(m, t, fd, 16) == [K.BLK_HOLE] * 16
    t.fallocate(fd, mode, 0, (16 - RESERVE) * PAGE)
    assert free(m) == RESERVE and blocks(m, t, fd, 12) == [K.BLK_UNWRITTEN] * 12
    assert t.stat_size(fd) == (0 if mode == K.FALLOC_FL_KEEP_SIZE else 12 * PAGE)
    checked(m)
    e4, t4 = machine(size="64KiB", fstype="ext4")
    fd4 = t4.open("/x/f", RW_)
    with pytest.raises(OSError):
        t4.fallocate(fd4, mode, 0, 20 * PAGE)
    assert e4.fs_stats("/x")["free_blocks"] == 0               # ext4_alloc_file_blocks keeps it


def test_xfs_fallocate_reserves_blocks_already_mapped_too():
    """The host: 100 written blocks, 50 free: KEEP_SIZE over 47 of them failed, over 46 did not."""
    m, t = machine(size="64KiB")
    fd = t.open("/x/f", RW_)
    t.pwrite(fd, 0, 8 * PAGE)
    t.fsync(fd)
    assert free(m) == 8
    with pytest.raises(OSError) as e:
        t.fallocate(fd, K.FALLOC_FL_KEEP_SIZE, 0, (8 - RESERVE + 1) * PAGE)
    assert e.value.errno == errno.ENOSPC
    t.fallocate(fd, K.FALLOC_FL_KEEP_SIZE, 0, (8 - RESERVE) * PAGE)   # nothing to allocate
    assert free(m) == 8 and blocks(m, t, fd, 8) == [K.BLK_WRITTEN] * 8
    checked(m)


def test_xfs_fallocate_beyond_one_extent_keeps_what_earlier_transactions_allocated():
    """A range longer than XFS_MAX_BMBT_EXTLEN takes several transactions: the first one's
    extent stays when a later one cannot reserve, and the size does not move (on a 40 GiB host
    image two extents stayed, each cut short by its allocation group, the size 0)."""
    m, t = machine(size="12GiB")
    fd = t.open("/x/f", RW_)
    total = free(m)
    with pytest.raises(OSError) as e:
        t.fallocate(fd, 0, 0, 13 * GiB)
    assert e.value.errno == errno.ENOSPC
    assert t.stat_size(fd) == 0
    assert free(m) == total - K.XFS_MAX_BMBT_EXTLEN
    b = blocks(m, t, fd, K.XFS_MAX_BMBT_EXTLEN + 1)
    assert b[0] == b[-2] == K.BLK_UNWRITTEN and b[-1] == K.BLK_HOLE
    checked(m)


def test_xfs_zero_range_punches_before_it_allocates():
    """xfs_falloc_zero_range: with room it leaves what ext4 leaves; without, the whole blocks it
    punched stay holes and nothing is preallocated."""
    def run(fstype):
        m, t = machine(size="64KiB", fstype=fstype)
        fd = t.open("/x/f", RW_)
        t.pwrite(fd, 0, 4 * PAGE)
        t.fsync(fd)
        t.fallocate(fd, K.FALLOC_FL_ZERO_RANGE, PAGE + 100, 4 * PAGE)
        return m, t, fd, blocks(m, t, fd, 7), t.stat_size(fd), free(m)
    m, t, fd, *xfs = run("xfs")
    assert xfs == list(run("ext4")[3:])
    assert xfs[0] == [K.BLK_WRITTEN, K.BLK_WRITTEN] + [K.BLK_UNWRITTEN] * 4 + [K.BLK_HOLE]
    assert xfs[1] == 5 * PAGE + 100 and xfs[2] == 10
    g = t.open("/x/g", RW_)
    t.pwrite(g, 0, free(m) * PAGE)                             # the disk is full
    with pytest.raises(OSError) as e:
        t.fallocate(fd, K.FALLOC_FL_ZERO_RANGE, 0, 4 * PAGE)
    assert e.value.errno == errno.ENOSPC
    assert blocks(m, t, fd, 5) == [K.BLK_HOLE] * 4 + [K.BLK_UNWRITTEN]
    assert free(m) == 4 and t.stat_size(fd) == xfs[1]
    checked(m)


def test_xfs_write_zeroes_is_eopnotsupp_in_6_18():
    """The host: FALLOC_FL_WRITE_ZEROES on XFS gave EOPNOTSUPP (not in XFS_FALLOC_FL_SUPPORTED),
    on ext4 it works (6.17+)."""
    m, t = machine()
    fd = t.open("/x/f", RW_)
    t.pwrite(fd, 0, 2 * PAGE)
    with pytest.raises(OSError) as e:
        t.fallocate(fd, K.FALLOC_FL_WRITE_ZEROES, 0, 4 * PAGE)
    assert e.value.errno == errno.EOPNOTSUPP
    assert t.stat_size(fd) == 2 * PAGE and blocks(m, t, fd, 4)[2:] == [K.BLK_HOLE] * 2
    m.mount("/e", "ext4", size="1MiB")
    g = t.open("/e/g", RW_)
    t.fallocate(g, K.FALLOC_FL_WRITE_ZEROES, 0, 4 * PAGE)
    assert t.stat_size(g) == 4 * PAGE
    checked(m)


def test_xfs_same_size_ftruncate_drops_blocks_beyond_eof():
    """The host: KEEP_SIZE blocks beyond EOF went at an ftruncate to the same size
    (xfs_setattr_size) and stayed at one that grows the file."""
    m, t = machine()
    fd = t.open("/x/f", RW_)
    t.pwrite(fd, 0, PAGE)
    t.fallocate(fd, K.FALLOC_FL_KEEP_SIZE, PAGE, 4 * PAGE)
    f0 = free(m)
    t.ftruncate(fd, PAGE)
    assert free(m) == f0 + 4 and blocks(m, t, fd, 5)[1:] == [K.BLK_HOLE] * 4
    t.fallocate(fd, K.FALLOC_FL_KEEP_SIZE, PAGE, 4 * PAGE)
    t.ftruncate(fd, 2 * PAGE)
    assert blocks(m, t, fd, 5)[1:] == [K.BLK_UNWRITTEN] * 4
    checked(m)


# ---- MADV_WILLWRITE: ext4's hook only ------------------------------------------------------------
def test_madv_willwrite_returns_0_on_xfs():
    m, t = machine()
    m.mount("/e", "ext4", size="64MiB")
    out = {}
    for path in ("/x/f", "/e/f"):
        fd = t.open(path, RW_)
        t.fallocate(fd, 0, 0, MiB)
        a = t.mmap(MiB, flags=mmcore.MAP_SHARED, fd=fd)
        out[path] = t.madvise(a, MiB, mmcore.MADV_WILLWRITE)
    assert out == {"/x/f": 0, "/e/f": MiB}
    assert m.meminfo()["Dirty"] == 0
    checked(m)


# ---- large folios ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel, expect", [
    ("6.18", [1, 4, 8, 16, 32, 32, 4, 2, 1]),
    ("4.13", [1] * 100),
    ("3.10", [1] * 100),
])
def test_xfs_large_folios_on_6_18_not_before(kernel, expect):
    m, t = machine(kernel=kernel)
    fd = t.open("/x/f", RW_)
    t.pwrite(fd, 3 * PAGE, 100 * PAGE)
    assert folio_sizes(m, t, fd, 3, 100) == expect
    checked(m)


def test_xfs_large_folios_not_in_the_2013_page_cache_models():
    m, t = machine(huge_page_cache="2013")
    fd = t.open("/x/f", RW_)
    t.pwrite(fd, 0, 64 * PAGE)
    assert folio_sizes(m, t, fd, 0, 64) == [1] * 64


@pytest.mark.parametrize("fst, since", [(K.FST_XFS, 518), (K.FST_EXT4, 616)])
def test_large_folios_start_with_5_18_xfs_and_6_16_ext4(fst, since):
    """The version test itself (the profiles have no kernel between 4.13 and 6.18)."""
    cfg = mmcore.Machine({"memory": "64MiB"}).state.cfg.copy()
    for kernel, want in ((since - 1, False), (since, True), (618, True)):
        cfg[K.C_KERNEL] = kernel
        assert FM.large_folios(cfg, fst) == want
    cfg[K.C_HPC_MODEL] = K.HPC_2013
    assert not FM.large_folios(cfg, fst)
    for other in (K.FST_EXT2, K.FST_TMPFS, K.FST_RAMFS):
        cfg[K.C_KERNEL], cfg[K.C_HPC_MODEL] = 618, K.HPC_MAINLINE
        assert not FM.large_folios(cfg, other)


def test_xfs_readahead_orders_match_a_6_18_hosts_tracepoints():
    """A cold 4 MiB file read 4 KiB at a time on an XFS loop device (read_ahead_kb 2560): the
    host's readahead:page_cache_ra_order showed windows at 0, 4, 20, 80, 192, 384 and 768 of 4,
    16, 60, 112, 192, 384 and 640 pages at orders 0, 2, 4, 6, 8 and 9 up (PMD order caps the
    folios); each window's folios follow from its order and each index's alignment."""
    m, t = machine(read_ahead_kb=2560)
    fd = t.open("/x/f", RW_)
    t.pwrite(fd, 0, 4 * MiB)
    t.fsync(fd)
    t.write_sysctl("vm.drop_caches", 1)
    for k in range(1024):
        t.pread(fd, k * PAGE, PAGE)
    expect = ([1] * 4 + [4] * 4 + [4, 8, 16, 16, 16] + [16, 32, 64] + [64, 128] + [128, 256]
              + [256])
    assert folio_sizes(m, t, fd, 0, 1024) == expect
    checked(m)


# ---- the API and its helpers ---------------------------------------------------------------------
def test_fstype_lists_and_kernel_helpers_agree():
    for t in range(len(K.FSTYPE_NAMES)):
        assert FS.delalloc_fs(t) == (t in K.DELALLOC_FSTYPES)
        assert FS.block_fs(t) == (t in K.BLOCK_FSTYPES)
    assert K.FSTYPE_NAMES[K.FST_XFS] == "xfs"
    assert [K.FSTYPE_NAMES[t] for t in K.DELALLOC_FSTYPES] == ["ext4", "xfs"]


def test_mount_errors_name_xfs():
    m = mmcore.Machine({"memory": "64MiB"})
    with pytest.raises(ValueError, match=r"fstype: expected one of .*'xfs'.*got 'btrfs'"):
        m.mount("/b", "btrfs", size="1GiB")
    with pytest.raises(ValueError, match="size: a xfs filesystem needs a size"):
        m.mount("/x", "xfs")
    m.mount("/x", "xfs", size="1GiB")
    assert m.fs_stats("/x")["fstype"] == "xfs" and m.fs_stats("/x")["blocks"] == 262144


def test_scenario_mounts_xfs():
    from mmcore.scenario import ScenarioError, load_scenario, run_scenario
    doc = {"scenario": {"name": "x"}, "machine": {"memory": "64MiB"},
           "mount": [{"path": "/x", "fstype": "xfs"}], "task": [{"name": "a"}],
           "phase": [{"name": "p", "task": "a", "ops": [
               {"op": "open", "fd": "f", "path": "/x/f", "flags": ["O_CREAT", "O_RDWR"]},
               {"op": "fallocate", "fd": "f", "mode": "FALLOC_FL_WRITE_ZEROES", "length": "1MiB",
                "on_error": "continue"},
               {"op": "fallocate", "fd": "f", "length": "1MiB"}]}]}
    with pytest.raises(ScenarioError, match="xfs filesystem needs a size"):
        load_scenario(doc)
    doc["mount"][0]["size"] = "16MiB"
    s = load_scenario(doc)
    assert s.mounts[0].fstype == "xfs"
    ops = run_scenario(s)["phases"][0]["ops"]
    assert ops["a.fallocate"]["count"] == 2 and ops["a.fallocate"]["errors"] == 1   # WRITE_ZEROES
