"""Files: block states, the page cache, writeback, reclaim, drop_caches and their errors."""
import errno
import os

import numpy as np
import pytest

import mmcore
from mmcore.check import check_files, check_invariants
from mmcore.kernels import consts as K

MiB = 1 << 20
RW_ = os.O_CREAT | os.O_RDWR


def blocks(m, t, fd):
    """The file's block states, one per page of its size."""
    f = m.vfs.state
    of = m.vfs.fdtable(t.pid)[fd]
    n = (int(f.ino[K.I_SIZE, of.ino]) + 4095) // 4096
    b, cap = int(f.ino[K.I_BLK, of.ino]), int(f.ino[K.I_BLKCAP, of.ino])
    out = np.zeros(n, np.int8)
    out[:min(n, cap)] = f.blk[b:b + min(n, cap)]
    return out


def machine(memory="256MiB", **kw):
    m = mmcore.Machine({"memory": memory, **kw})
    m.mount("/data", "ext4", size="1GiB")
    return m, m.spawn("app")


def checked(m):
    check_invariants(m)
    check_files(m)


def test_ext4_write_reserves_then_writeback_allocates():
    m, t = machine()
    fd = t.open("/data/f", RW_)
    free0 = m.fs_stats("/data")["free_blocks"]
    assert t.pwrite(fd, 0, 10 * 4096) == 10 * 4096
    assert set(blocks(m, t, fd)) == {K.BLK_DELALLOC}
    assert m.fs_stats("/data")["free_blocks"] == free0 - 10
    assert m.meminfo()["Dirty"] == 40 and m.meminfo()["Cached"] == 40
    checked(m)
    t.fsync(fd)
    assert set(blocks(m, t, fd)) == {K.BLK_WRITTEN}
    assert m.meminfo()["Dirty"] == 0 and m.meminfo()["Writeback"] == 0
    assert m.fs_stats("/data")["bytes_written"] == 10 * 4096
    assert m.vmstat()["pgpgout"] == 40 and m.vmstat()["nr_written"] == 10
    checked(m)


def test_fallocate_unwritten_reads_zero_and_converts_at_writeback():
    m, t = machine()
    fd = t.open("/data/f", RW_)
    t.fallocate(fd, 0, 0, 8 * 4096)
    assert t.stat_size(fd) == 8 * 4096
    assert set(blocks(m, t, fd)) == {K.BLK_UNWRITTEN}
    assert t.pread(fd, 0, 8 * 4096) == 8 * 4096
    assert m.fs_stats("/data")["bytes_read"] == 0          # unwritten extents read as zeros
    assert m.meminfo()["Cached"] == 32
    t.pwrite(fd, 0, 4096)
    assert blocks(m, t, fd)[0] == K.BLK_UNWRITTEN           # converted only at writeback
    t.fsync(fd)
    assert list(blocks(m, t, fd)) == [K.BLK_WRITTEN] + [K.BLK_UNWRITTEN] * 7
    checked(m)


def _first_write_ns(m, t, fd, index):
    before = t.time_ns
    t.pwrite(fd, index * 4096, 4096)
    return t.time_ns - before


def test_first_write_costs_follow_the_block_state():
    """Spec 8: a first write to a sparse or fallocated page costs several times one to a page whose
    block is written and cached."""
    m, t = machine()
    fd = t.open("/data/f", RW_)
    t.pwrite(fd, 0, 64 * 4096)
    t.fsync(fd)                                     # pages 0..63 written and cached, clean
    t.fallocate(fd, K.FALLOC_FL_KEEP_SIZE, 64 * 4096, 64 * 4096)
    written = _first_write_ns(m, t, fd, 3)
    fallocated = _first_write_ns(m, t, fd, 70)
    sparse = _first_write_ns(m, t, fd, 200)
    assert written < fallocated < sparse
    assert 3 <= sparse / written <= 30


def test_ext2_allocates_on_write_and_ext4_enospc():
    m, t = machine()
    m.mount("/old", "ext2", size="1MiB")
    fd = t.open("/old/f", RW_)
    t.pwrite(fd, 0, 4096)
    assert blocks(m, t, fd)[0] == K.BLK_WRITTEN
    assert m.fs_stats("/old")["free_blocks"] == 255
    m.mount("/small", "ext4", size="64KiB")
    fd2 = t.open("/small/f", RW_)
    assert t.pwrite(fd2, 0, 20 * 4096) == 16 * 4096    # a short write: the disk is full
    with pytest.raises(OSError) as e:
        t.pwrite(fd2, 16 * 4096, 4096)
    assert e.value.errno == errno.ENOSPC
    t.ftruncate(fd2, 4096)
    assert m.fs_stats("/small")["free_blocks"] == 15
    checked(m)


def test_drop_caches_drops_only_clean_unmapped_droppable_pages():
    m, t = machine()
    m.mount("/tmp", "tmpfs", size="64MiB")
    m.mount("/ram", "ramfs")
    clean, dirty = t.open("/data/clean", RW_), t.open("/data/dirty", RW_)
    t.pwrite(clean, 0, MiB)
    t.fsync(clean)
    t.pwrite(dirty, 0, MiB)
    for p in ("/tmp/a", "/ram/a"):
        t.pwrite(t.open(p, RW_), 0, MiB)
    assert m.meminfo()["Cached"] == 4 * 1024
    assert m.meminfo()["Shmem"] == 1024 and m.meminfo()["Unevictable"] == 1024
    t.write_sysctl("vm.drop_caches", 1)
    assert m.meminfo()["Cached"] == 3 * 1024            # the clean ext4 file's pages went
    assert m.meminfo()["Dirty"] == 1024
    assert m.dmesg() == ["app (1): drop_caches: 1"]
    assert m.vmstat()["drop_pagecache"] == 1
    checked(m)


def test_drop_caches_log_bit4_and_range():
    m, t = machine()
    sh = m.spawn("sh")
    for v in (0, 5, "x"):
        with pytest.raises(OSError) as e:
            t.write_sysctl("vm.drop_caches", v)
        assert e.value.errno == errno.EINVAL
    t.write_sysctl("vm.drop_caches", 3)
    sh.write_sysctl("/proc/sys/vm/drop_caches", 4)      # logged, then silent from here on
    t.write_sysctl("vm.drop_caches", 1)
    assert m.dmesg() == ["app (1): drop_caches: 3", "sh (2): drop_caches: 4"]
    assert m.vmstat()["drop_pagecache"] == 2 and m.vmstat()["drop_slab"] == 1
    old = mmcore.Machine({"memory": "64MiB", "kernel": "3.10"})
    ot = old.spawn("cat")
    ot.write_sysctl("vm.drop_caches", 3)
    with pytest.raises(OSError):
        ot.write_sysctl("vm.drop_caches", 4)            # 3.10 accepted 1..3 and logged nothing
    assert old.dmesg() == []


def test_drop_slab_makes_lookups_and_reads_slow():
    m, t = machine()
    fd = t.open("/data/f", RW_)
    t.pwrite(fd, 0, 4 * MiB)
    t.fsync(fd)
    t.close(fd)
    assert m.meminfo()["SReclaimable"] > 0
    before = t.time_ns
    fd = t.open("/data/f", os.O_RDONLY)
    t.pread(fd, 0, 4 * MiB)
    warm = t.time_ns - before
    t.close(fd)
    t.write_sysctl("vm.drop_caches", 3)
    assert m.meminfo()["SReclaimable"] == 0 and m.meminfo()["Cached"] == 0
    read0 = m.fs_stats("/data")["bytes_read"]
    before = t.time_ns
    fd = t.open("/data/f", os.O_RDONLY)
    t.pread(fd, 0, 4 * MiB)
    cold = t.time_ns - before
    assert m.fs_stats("/data")["bytes_read"] - read0 == 4 * MiB + 4096   # data + inode block
    assert cold > 10 * warm
    checked(m)


def test_unlink_frees_on_last_close_and_truncate_frees_blocks():
    m, t = machine()
    fd = t.open("/data/f", RW_)
    t.pwrite(fd, 0, MiB)
    free = m.fs_stats("/data")["free_blocks"]
    t.unlink("/data/f")
    with pytest.raises(OSError) as e:
        t.open("/data/f", os.O_RDONLY)
    assert e.value.errno == errno.ENOENT
    assert m.meminfo()["Cached"] == 1024                # still open
    t.close(fd)
    assert m.meminfo()["Cached"] == 0 and m.meminfo()["Dirty"] == 0
    assert m.fs_stats("/data")["free_blocks"] == free + 256
    fd = t.open("/data/g", RW_)
    t.pwrite(fd, 0, MiB)
    t.ftruncate(fd, 6000)
    assert m.meminfo()["Cached"] == 8 and list(blocks(m, t, fd)) == [K.BLK_DELALLOC] * 2
    checked(m)


def test_fallocate_modes():
    m, t = machine()
    fd = t.open("/data/f", RW_)
    t.pwrite(fd, 0, 16 * 4096)
    t.fsync(fd)
    t.fallocate(fd, K.FALLOC_FL_PUNCH_HOLE | K.FALLOC_FL_KEEP_SIZE, 4096 + 100, 3 * 4096)
    assert list(blocks(m, t, fd)[:5]) == [K.BLK_WRITTEN, K.BLK_WRITTEN, K.BLK_HOLE,
                                          K.BLK_HOLE, K.BLK_WRITTEN]
    t.fallocate(fd, K.FALLOC_FL_ZERO_RANGE, 8 * 4096, 2 * 4096)
    assert list(blocks(m, t, fd)[8:10]) == [K.BLK_UNWRITTEN] * 2
    w0 = m.fs_stats("/data")["bytes_written"]
    t.fallocate(fd, K.FALLOC_FL_WRITE_ZEROES, 16 * 4096, 4 * 4096)
    assert list(blocks(m, t, fd)[16:20]) == [K.BLK_WRITTEN] * 4
    assert m.fs_stats("/data")["bytes_written"] - w0 == 4 * 4096
    for mode in (K.FALLOC_FL_PUNCH_HOLE, 0x400):
        with pytest.raises(OSError) as e:
            t.fallocate(fd, mode, 0, 4096)
        assert e.value.errno == errno.EOPNOTSUPP
    old = mmcore.Machine({"memory": "64MiB", "kernel": "4.13"})
    old.mount("/d", "ext4", size="16MiB")
    ot = old.spawn("t")
    ofd = ot.open("/d/f", RW_)
    with pytest.raises(OSError) as e:
        ot.fallocate(ofd, K.FALLOC_FL_WRITE_ZEROES, 0, 4096)
    assert e.value.errno == errno.EOPNOTSUPP
    m.mount("/old", "ext2", size="1MiB")
    with pytest.raises(OSError) as e:
        t.fallocate(t.open("/old/x", RW_), 0, 0, 4096)
    assert e.value.errno == errno.EOPNOTSUPP
    checked(m)


def test_flusher_writes_expired_inodes_back():
    m, t = machine()
    fd = t.open("/data/f", RW_)
    t.pwrite(fd, 0, MiB)
    t.nanosleep(20 * 10**9)
    assert m.meminfo()["Dirty"] == 1024                # younger than dirty_expire_centisecs
    t.nanosleep(16 * 10**9)                            # 36 s: the 35 s wakeup wrote it
    assert m.meminfo()["Dirty"] == 0
    assert m.fs_stats("/data")["bytes_written"] == MiB
    checked(m)


def test_dirty_throttling_and_reclaim_under_pressure():
    m, t = machine("128MiB")
    fd = t.open("/data/big", RW_)
    limit_kb = 0
    for k in range(12):
        t.pwrite(fd, k * 16 * MiB, 16 * MiB)
        mi = m.meminfo()
        limit_kb = max(limit_kb, mi["Dirty"] + mi["Writeback"])
    # dirty_ratio 20 of dirtyable memory (< 128 MiB), plus one ratelimit batch of slack
    assert limit_kb <= 128 * 1024 * 20 // 100 + 32 * 4
    vs = m.vmstat()
    assert vs["pgsteal_kswapd"] > 0 and vs["nr_written"] > 0
    assert m.meminfo()["MemFree"] >= m.zoneinfo()["min"] * 4
    checked(m)
    t.fsync(fd)
    t.pread(fd, 0, 192 * MiB)                          # more than memory: reclaim keeps up
    assert m.meminfo()["Cached"] < 128 * 1024
    checked(m)


def test_bad_input():
    m, t = machine()
    with pytest.raises(OSError) as e:
        t.open("/data/none", os.O_RDONLY)
    assert e.value.errno == errno.ENOENT
    with pytest.raises(OSError) as e:
        t.open("/elsewhere/f", RW_)
    assert e.value.errno == errno.ENOENT
    fd = t.open("/data/f", RW_)
    with pytest.raises(OSError) as e:
        t.open("/data/f", RW_ | os.O_EXCL)
    assert e.value.errno == errno.EEXIST
    ro = t.open("/data/f", os.O_RDONLY)
    with pytest.raises(OSError) as e:
        t.pwrite(ro, 0, 1)
    assert e.value.errno == errno.EBADF
    t.close(fd)
    for call in (lambda: t.pread(fd, 0, 1), lambda: t.close(fd), lambda: t.fsync(99)):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EBADF
    with pytest.raises(ValueError, match="offset: expected a value"):
        t.pread(ro, -1, 1)
    with pytest.raises(ValueError, match="flags: .* the model does not support"):
        t.open("/data/g", os.O_CREAT | os.O_DIRECT)
    with pytest.raises(ValueError, match="fstype: expected one of"):
        m.mount("/x", "btrfs", size="1GiB")
    with pytest.raises(ValueError, match="size: a ext4 filesystem needs a size"):
        m.mount("/x", "ext4")
    with pytest.raises(OSError) as e:
        m.mount("/data", "ext4", size="1GiB")
    assert e.value.errno == errno.EBUSY
    with pytest.raises(mmcore.ConfigError, match="disk: unknown key"):
        m.mount("/y", "ext4", size="1GiB", disk={"rpm": 7200})
    with pytest.raises(OSError) as e:
        t.write_sysctl("vm.no_such_knob", 1)
    assert e.value.errno == errno.ENOENT
    with pytest.raises(OSError) as e:
        t.write_sysctl("vm.dirty_ratio", 0)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(mmcore.ConfigError, match="lru_policy: expected one of"):
        mmcore.Machine({"lru_policy": "mru"})


def test_watermarks_follow_the_kernel():
    """min_free_kbytes = int_sqrt(KiB * 16), raised for THP to 11 pageblocks (one zone);
    low/high add max(min/4, managed * watermark_scale_factor / 10000)."""
    m = mmcore.Machine({"memory": "4GiB", "thp_enabled": "never"})
    z = m.zoneinfo()
    assert (z["min"], z["low"], z["high"]) == (2048, 2048 + 1048, 2048 + 2 * 1048)
    m = mmcore.Machine({"memory": "4GiB"})
    z = m.zoneinfo()
    assert z["min"] == 22528 // 4 and z["low"] - z["min"] == 22528 // 16


def test_drop_caches_cron_scenario_shows_the_cost():
    from mmcore.scenarios import drop_caches_cron
    base, cron = drop_caches_cron(memory="256MiB", files=8, file_size="4MiB", reads=3000,
                                  period_s=0.2)
    assert base["disk_read_MiB"] == 0 and base["drops"] == 0 and base["dmesg_lines"] == 0
    assert cron["drops"] >= 2 and cron["dmesg_lines"] == cron["drops"]
    assert cron["disk_read_MiB"] > 0 and cron["pgpgin"] > 0
    assert cron["p99_us"] > 10 * base["p99_us"]
    assert cron["elapsed_s"] > base["elapsed_s"]
