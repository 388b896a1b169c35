"""Readahead: windows, PG_readahead marks, asynchronous windows and the waits for pages in flight.

The mmap sequences are the ones a 6.18 host showed with read_ahead_kb 128 on a cold 4 MiB ext4
file (mincore after each fault: 32, 64, 96, 96, 128 pages cached; 16 pages mapped after the first
fault). On 6.16+ ext4 the windows fill with large folios whose order grows by 2 per async window,
which also aligns the windows' ends differently (tests/test_large_folios.py has the folios)."""
import errno
import os

import pytest

import mmcore
from mmcore.kernels import consts as K

MiB = 1 << 20


def setup(kernel="6.18", size=4 * MiB, fstype="ext4", **kw):
    m = mmcore.Machine({"memory": "256MiB", "kernel": kernel, **kw})
    m.mount("/d", fstype, size="1GiB")
    t = m.spawn("reader")
    fd = t.open("/d/f", os.O_CREAT | os.O_RDWR)
    t.pwrite(fd, 0, size)
    t.fsync(fd)
    t.close(fd)
    t.write_sysctl("vm.drop_caches", 1)
    fd = t.open("/d/f", os.O_RDWR)
    return m, t, fd, m.vfs.fdtable(t.pid)[fd].ino


def cached(m, ii):
    """(one past the highest cached index, pages cached) of inode ``ii``."""
    s, pc = m.state, m.vfs.state.pc
    idx = [int(s.fr_idx[p]) for p in pc[pc >= 0] if s.fr32[K.FR_OWNER, p] == ii]
    return (max(idx) + 1 if idx else 0, len(idx))


def marked(m, ii):
    s, pc = m.state, m.vfs.state.pc
    return sorted(int(s.fr_idx[p]) for p in pc[pc >= 0]
                  if s.fr32[K.FR_OWNER, p] == ii and s.fr_flags[p] & K.PG_readahead)


def clock(t):
    return int(t.machine.state.task[K.T_CLOCK, t._ti])


def test_mmap_read_around_and_async_windows_match_the_host():
    m, t, fd, ii = setup()
    a = t.mmap(4 * MiB, flags=mmcore.MAP_SHARED, fd=fd)
    seen = []
    for page in (5, 24, 32, 40, 64):
        t.touch(a + page * 4096, 1, write=False)
        seen.append(cached(m, ii))
    assert seen == [(32, 32), (64, 64), (96, 96), (96, 96), (128, 128)]
    assert m.vmstat()["pgmajfault"] == 1                  # the later windows were never missed


def test_fault_around_skips_the_marked_page():
    """filemap_map_pages leaves a PG_readahead folio to the fault that starts the next window."""
    m, t, fd, ii = setup()
    a = t.mmap(4 * MiB, flags=mmcore.MAP_SHARED | mmcore.MAP_FIXED, fd=fd, addr=1 << 32)
    t.touch(a + 5 * 4096, 1, write=False)                 # read-around [0, 32), mark at 24
    assert marked(m, ii) == [24]
    assert t.smaps(a)["Rss"] == 64                        # fault-around maps [0, 16)
    t.touch(a + 20 * 4096, 1, write=False)                # fault-around over [16, 32)
    assert t.smaps(a)["Rss"] == 124                       # all of it but the marked page
    assert cached(m, ii) == (32, 32)                      # no window started yet
    t.touch(a + 24 * 4096, 1, write=False)
    assert t.smaps(a)["Rss"] == 128 and cached(m, ii) == (64, 64) and marked(m, ii) == [32]


@pytest.mark.parametrize("kernel, fstype, expected", [
    # 6.11+: the first window's async part is what the read does not need; async windows are
    # trimmed to a multiple of 1 << min(order, 5) pages: 4 where the order stays 0 (ext2)...
    ("6.18", "ext2", [(4, 4), (12, 12), (12, 12), (12, 12), (28, 28), (28, 28), (60, 60), (60, 60)]),
    # ... and 16 for the third window on ext4, whose order has grown to 4: [12, 28) becomes
    # [12, 16), and the next window [16, 24) is capped at order 3 by its size
    ("6.18", "ext4", [(4, 4), (12, 12), (12, 12), (12, 12), (16, 16), (16, 16), (24, 24), (24, 24)]),
    ("3.10", "ext4", [(4, 4), (12, 12), (12, 12), (12, 12), (28, 28), (28, 28), (60, 60), (60, 60)]),
])
def test_sequential_reads_ramp_up(kernel, fstype, expected):
    m, t, fd, ii = setup(kernel, fstype=fstype)
    seen = []
    for page in (0, 1, 2, 3, 4, 5, 12, 13):
        t.pread(fd, page * 4096, 4096)
        seen.append(cached(m, ii))
    assert seen == expected


def test_a_read_the_size_of_the_window_differs_between_eras():
    """A 32-page read at offset 0 with read_ahead_kb 128: 6.11+ reads the 32 pages with the mark
    half way; before, the window the read would hit at once grows by the next size (64 pages,
    mark at 32)."""
    m, t, fd, ii = setup("6.18")
    t.pread(fd, 0, 32 * 4096)
    assert cached(m, ii)[1] == 32 + 32                    # and the async window from the mark at 16
    assert marked(m, ii) == [32]
    m, t, fd, ii = setup("3.10")
    t.pread(fd, 0, 32 * 4096)
    assert cached(m, ii)[1] == 64 and marked(m, ii) == [32]


def test_random_reads_read_only_what_they_ask():
    m, t, fd, ii = setup()
    t.pread(fd, 100 * 4096, 4096)                         # no history: as is
    assert cached(m, ii) == (101, 1) and marked(m, ii) == []
    t.pread(fd, 101 * 4096, 4096)                         # right after it: a window starts
    assert cached(m, ii)[1] == 1 + 4 and marked(m, ii) == [102]
    t.pread(fd, 500 * 4096, 2 * 4096)                     # far away: as is again
    assert cached(m, ii)[1] == 5 + 2 and marked(m, ii) == [102]


def test_context_readahead_from_cached_history():
    """A miss right after a run of cached pages that is longer than the request reads the run's
    length ahead (page_cache_prev_miss), with a one-page async part."""
    m, t, fd, ii = setup()
    t.pread(fd, 200 * 4096, 8 * 4096)                     # a random read: [200, 208)
    t.pread(fd, 0, 4096)                                  # elsewhere, to move prev_pos away
    before = cached(m, ii)[1]
    t.pread(fd, 208 * 4096, 4096)                         # 8 cached pages before it, 1 asked
    assert cached(m, ii)[1] - before == 9
    assert 216 in marked(m, ii)


def test_async_window_overlaps_the_reader_and_a_locked_page_is_waited_for():
    m, t, fd, ii = setup()
    fs = m.vfs.state.fs
    fsi = int(m.vfs.state.ino[K.I_FS, ii])
    t.pread(fd, 0, 4096)                                  # sync window [0, 4), mark at 1
    t0 = clock(t)
    t.pread(fd, 4096, 4096)                               # the mark: window [4, 12) in flight
    t1 = clock(t)
    window_done = int(fs[K.FS_DISK_FREE_AT, fsi])
    assert t1 < window_done                               # the reader did not wait for it
    rd_lat = int(fs[K.FS_RD_LAT, fsi])
    assert t1 - t0 < rd_lat
    t.pread(fd, 2 * 4096, 2 * 4096)                       # cached and ready: no wait
    assert clock(t) < window_done
    t.pread(fd, 4 * 4096, 4096)                           # locked until its read completes
    assert clock(t) >= window_done
    assert marked(m, ii) == [12]                          # the read of 4 started [12, 28)


def test_readahead_room_follows_read_ahead_kb():
    """A large read_ahead_kb needs page-cache room for two windows per fault and per read."""
    m, t, fd, ii = setup(read_ahead_kb=8192, size=32 * MiB)
    a = t.mmap(32 * MiB, flags=mmcore.MAP_SHARED, fd=fd)
    t.touch(a, 1, write=False)
    assert cached(m, ii) == (2048, 2048)                  # read-around: 2048 pages from 0
    assert marked(m, ii) == [1536]
    t.touch(a + 1536 * 4096, 1, write=False)              # the mark: 2048 more, async
    assert cached(m, ii) == (4096, 4096)
    t.pread(fd, 16 * MiB, 4096)
    from mmcore.check import check_files, check_invariants
    check_invariants(m)
    check_files(m)


# ---- POSIX_FADV_* and MADV_RANDOM/SEQUENTIAL/WILLNEED -------------------------------------------

def test_fadvise_random_reads_only_what_is_asked():
    m, t, fd, ii = setup()
    t.fadvise(fd, 0, 0, os.POSIX_FADV_RANDOM)
    for page in range(8):
        t.pread(fd, page * 4096, 4096)
    assert cached(m, ii) == (8, 8) and marked(m, ii) == []
    t.fadvise(fd, 0, 0, os.POSIX_FADV_NORMAL)
    t.pread(fd, 8 * 4096, 4096)                           # sequential again: a window
    assert cached(m, ii)[1] > 9


def test_fadvise_sequential_doubles_the_window():
    m, t, fd, ii = setup()
    t.fadvise(fd, 0, 0, os.POSIX_FADV_SEQUENTIAL)
    t.pread(fd, 0, 64 * 4096)                             # one window of 64 pages (not 32)
    assert cached(m, ii)[1] == 64 + 64                    # and the async one from its mark


def test_fadvise_willneed_reads_ahead_without_waiting():
    m, t, fd, ii = setup()
    assert t.fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED) == 320     # io_pages: 1280 KiB
    assert cached(m, ii) == (320, 320) and marked(m, ii) == []
    fsi = int(m.vfs.state.ino[K.I_FS, ii])
    done = int(m.vfs.state.fs[K.FS_DISK_FREE_AT, fsi])
    assert clock(t) < done                                # the caller did not wait
    t.pread(fd, 0, 4096)                                  # cached, but its read is pending
    assert clock(t) >= done
    assert m.vmstat()["pgmajfault"] == 0


def test_fadvise_willneed_before_4_10_reads_the_whole_range():
    m, t, fd, ii = setup(kernel="3.10")
    assert t.fadvise(fd, 0, 0, os.POSIX_FADV_WILLNEED) == 1024      # 4 MiB, in 2 MiB requests


def test_fadvise_dontneed_drops_clean_unmapped_whole_pages():
    m, t, fd, ii = setup()
    t.pread(fd, 0, 64 * 4096)
    a = t.mmap(4096, flags=mmcore.MAP_SHARED, fd=fd, offset=4 * 4096)
    t.touch(a, 1, write=False)                            # page 4 mapped
    t.pwrite(fd, 8 * 4096, 4096)                          # page 8 dirty
    n0 = cached(m, ii)[1]
    wb0 = m.vmstat()["nr_written"] + m.meminfo()["Writeback"] // 4
    # [100 bytes into page 0, the middle of page 31]: whole pages 1..30
    dropped = t.fadvise(fd, 100, 31 * 4096 - 100 + 2048, os.POSIX_FADV_DONTNEED)
    assert dropped == 30 - 2                              # not the mapped one, not the dirty one
    assert cached(m, ii)[1] == n0 - dropped
    # writeback of the dirty page started (WB_SYNC_NONE): it is kept, under writeback or written
    assert m.vmstat()["nr_written"] + m.meminfo()["Writeback"] // 4 == wb0 + 1
    from mmcore.check import check_files, check_invariants
    check_invariants(m)
    check_files(m)


@pytest.mark.parametrize("advice", [-1, 6, 100])
def test_fadvise_bad_input(advice):
    m, t, fd, ii = setup(size=MiB)
    with pytest.raises(OSError) as e:
        t.fadvise(fd, 0, 0, advice)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        t.fadvise(fd, 0, -1, os.POSIX_FADV_NORMAL)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        t.fadvise(99, 0, 0, os.POSIX_FADV_NORMAL)
    assert e.value.errno == errno.EBADF


def test_fadvise_on_tmpfs_does_nothing():
    m = mmcore.Machine({"memory": "64MiB"})
    m.mount("/t", "tmpfs", size="16MiB")
    t = m.spawn()
    fd = t.open("/t/f", os.O_CREAT | os.O_RDWR)
    t.pwrite(fd, 0, MiB)
    assert t.fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED) == 0
    assert m.meminfo()["Shmem"] == 1024


def test_madvise_random_faults_a_page_at_a_time():
    m, t, fd, ii = setup()
    a = t.mmap(4 * MiB, flags=mmcore.MAP_SHARED | mmcore.MAP_FIXED, fd=fd, addr=1 << 32)
    t.madvise(a, 4 * MiB, mmcore.MADV_RANDOM)
    t.touch(a + 5 * 4096, 1, write=False)
    assert cached(m, ii) == (6, 1)
    t.madvise(a, 4 * MiB, mmcore.MADV_SEQUENTIAL)
    t.touch(a + 100 * 4096, 1, write=False)               # ahead of the page, not around it
    assert cached(m, ii)[1] == 1 + 32
    assert min(i for i in range(100, 200) if cached_at(m, ii, i)) == 100
    t.madvise(a, 4 * MiB, mmcore.MADV_NORMAL)
    t.touch(a + 600 * 4096, 1, write=False)               # around it again
    assert cached_at(m, ii, 600 - 16) and cached_at(m, ii, 600 + 15)


def test_madvise_willneed_reads_a_file_range_ahead():
    m, t, fd, ii = setup()
    a = t.mmap(4 * MiB, flags=mmcore.MAP_SHARED, fd=fd)
    t.madvise(a + MiB, MiB, mmcore.MADV_WILLNEED)
    assert cached(m, ii) == (512, 256)
    assert t.smaps(a)["Rss"] == 0                         # read, not mapped
    b = t.mmap(MiB)                                       # anonymous: nothing to do
    t.madvise(b, MiB, mmcore.MADV_WILLNEED)
    with pytest.raises(OSError) as e:                     # a hole: ENOMEM
        t.madvise(1 << 40, MiB, mmcore.MADV_WILLNEED)
    assert e.value.errno == errno.ENOMEM


def cached_at(m, ii, index):
    s, pc = m.state, m.vfs.state.pc
    return any(s.fr32[K.FR_OWNER, p] == ii and s.fr_idx[p] == index for p in pc[pc >= 0])
