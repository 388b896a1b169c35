"""File mappings: faults, fault-around, dirty tracking, copy on write, truncation, SIGBUS, fork,
and MADV_WILLWRITE."""
import errno
import os

import pytest

import mmcore
from mmcore.check import check_files, check_invariants
from mmcore.kernels import consts as K

MiB = 1 << 20
RW_ = os.O_CREAT | os.O_RDWR
SHARED = mmcore.MAP_SHARED
PRIVATE = mmcore.MAP_PRIVATE


def setup(memory="256MiB", **kw):
    m = mmcore.Machine({"memory": memory, **kw})
    m.mount("/data", "ext4", size="1GiB")
    t = m.spawn("app")
    return m, t


def checked(m):
    check_invariants(m)
    check_files(m)


def written_file(m, t, path="/data/f", size=4 * MiB, cached=False):
    fd = t.open(path, RW_)
    t.pwrite(fd, 0, size)
    t.fsync(fd)
    if not cached:
        t.write_sysctl("vm.drop_caches", 1)
    return fd


def test_read_faults_read_around_and_map_neighbours():
    m, t = setup()
    fd = written_file(m, t)
    a = t.mmap(4 * MiB, mmcore.PROT_READ, SHARED, fd=fd)
    t.touch(a + 40 * 4096, 1, write=False)
    c = t.counters()
    assert c["maj_flt"] == 1 and m.vmstat()["pgmajfault"] == 1
    # read-around: read_ahead_kb (32 pages) centred on page 40; fault-around: 16 pages mapped
    assert m.meminfo()["Cached"] == 32 * 4
    assert t.smaps(a)["Rss"] == 16 * 4 and t.status()["RssFile"] == 16 * 4
    assert m.meminfo()["Mapped"] == 16 * 4
    t.touch(a + 32 * 4096, 16 * 4096, write=False)       # all mapped already: no fault
    assert t.counters()["min_flt"] == c["min_flt"]
    t.touch(a + 50 * 4096, 1, write=False)                # cached: a minor fault
    assert t.counters()["maj_flt"] == 1 and t.counters()["min_flt"] == c["min_flt"] + 1
    checked(m)


def test_shared_write_dirties_and_writeback_write_protects_again():
    m, t = setup()
    fd = t.open("/data/f", RW_)
    t.ftruncate(fd, MiB)                                   # sparse: holes only
    a = t.mmap(MiB, flags=SHARED, fd=fd)
    t0 = t.time_ns
    t.touch(a, MiB, write=True)
    first = t.time_ns - t0
    sm = t.smaps(a)
    assert sm["Private_Dirty"] == 1024 and sm["Anonymous"] == 0
    assert m.meminfo()["Dirty"] == 1024
    of = m.vfs.fdtable(t.pid)[fd]
    f = m.vfs.state
    b = int(f.ino[K.I_BLK, of.ino])
    assert set(f.blk[b:b + 256].tolist()) == {K.BLK_DELALLOC}   # page_mkwrite reserved them
    t.fsync(fd)
    assert set(f.blk[b:b + 256].tolist()) == {K.BLK_WRITTEN}
    assert t.smaps(a)["Private_Dirty"] == 0 and t.smaps(a)["Private_Clean"] == 1024
    faults = t.counters()["min_flt"]
    t0 = t.time_ns
    t.touch(a, MiB, write=True)                            # write-protected again: 256 faults
    again = t.time_ns - t0
    assert t.counters()["min_flt"] == faults + 256
    assert m.meminfo()["Dirty"] == 1024
    assert again * 3 < first                               # but cheap: blocks are written
    checked(m)


def test_private_mapping_copies_on_write():
    m, t = setup()
    fd = written_file(m, t, cached=True)
    p = t.mmap(MiB, flags=PRIVATE, fd=fd)
    t.touch(p, MiB, write=False)
    t.touch(p, MiB, write=True)
    sm = t.smaps(p)
    assert sm["Anonymous"] == 1024 and sm["Rss"] == 1024
    assert m.meminfo()["Dirty"] == 0                       # the file is untouched
    assert t.status()["RssFile"] == 0 and t.status()["RssAnon"] == 1024
    with pytest.raises(OSError) as e:
        t.madvise(p, MiB, mmcore.MADV_FREE)
    assert e.value.errno == errno.EINVAL
    checked(m)


def test_fork_refaults_shared_file_mappings_and_shares_private_pages():
    m, t = setup()
    fd = written_file(m, t, cached=True)
    a = t.mmap(MiB, flags=SHARED, fd=fd)
    p = t.mmap(MiB, flags=PRIVATE, fd=fd)
    t.touch(a, MiB, write=False)
    t.touch(p, MiB, write=False)
    c = t.fork()
    assert c.smaps(a)["Rss"] == 0                          # not copied: faults in again
    assert c.smaps(p)["Rss"] == 1024 and c.smaps(p)["Shared_Clean"] == 1024
    c.touch(a, MiB, write=True)
    assert t.smaps(a)["Shared_Dirty"] == 1024              # one page cache, two mappings
    checked(m)
    c.exit()
    checked(m)


def test_truncate_unmaps_and_access_beyond_eof_is_sigbus():
    m, t = setup()
    fd = written_file(m, t, cached=True)
    a = t.mmap(4 * MiB, flags=SHARED, fd=fd)
    t.touch(a, 4 * MiB, write=False)
    assert t.smaps(a)["FilePmdMapped"] == 4096             # 6.18's ext4: PMD-sized folios
    t.ftruncate(fd, MiB + 100)
    # the PMD across the new EOF goes whole (a file PMD split only unmaps), the one past it too
    assert t.smaps(a)["Rss"] == 0
    t.touch(a, MiB + 100, write=False)                     # pages below EOF fault back in
    assert t.smaps(a)["Rss"] == 257 * 4 and t.smaps(a)["FilePmdMapped"] == 0
    checked(m)
    with pytest.raises(mmcore.BusError):
        t.touch(a + 2 * MiB, 1, write=False)
    t.touch(a + MiB, 1, write=True)                        # the partial last page is fine


def test_unlinked_mapped_file_lives_until_munmap():
    m, t = setup()
    fd = written_file(m, t, cached=True)
    a = t.mmap(MiB, flags=SHARED, fd=fd)
    t.close(fd)
    t.unlink("/data/f")
    t.touch(a, MiB, write=False)
    assert m.meminfo()["Cached"] == 4096
    t.munmap(a, MiB)
    assert m.meminfo()["Cached"] == 0
    checked(m)


def test_mmap_errors():
    m, t = setup()
    fd = written_file(m, t)
    ro = t.open("/data/f", os.O_RDONLY)
    wo = t.open("/data/f", os.O_WRONLY)
    ap = t.open("/data/f", os.O_RDWR | os.O_APPEND)
    for f, flags, prot in ((ro, SHARED, mmcore.PROT_READ | mmcore.PROT_WRITE),
                           (wo, SHARED, mmcore.PROT_READ), (ap, SHARED, mmcore.PROT_WRITE)):
        with pytest.raises(OSError) as e:
            t.mmap(MiB, prot, flags, fd=f)
        assert e.value.errno == errno.EACCES
    t.mmap(MiB, mmcore.PROT_READ | mmcore.PROT_WRITE, PRIVATE, fd=ro)   # a private copy is fine
    with pytest.raises(OSError) as e:
        t.mmap(MiB, flags=SHARED, fd=fd, offset=100)
    assert e.value.errno == errno.EINVAL
    with pytest.raises(OSError) as e:
        t.mmap(MiB, flags=SHARED, fd=77)
    assert e.value.errno == errno.EBADF
    with pytest.raises(ValueError, match="fd: a mapping without MAP_ANONYMOUS"):
        t.mmap(MiB, flags=SHARED)


def _willwrite_setup(**kw):
    m, t = setup(**kw)
    fd = t.open("/data/f", RW_)
    t.fallocate(fd, 0, 0, MiB)
    a = t.mmap(MiB, flags=SHARED, fd=fd)
    return m, t, fd, a


def test_madv_willwrite_reserves_without_dirtying():
    m, t, fd, a = _willwrite_setup()
    t.ftruncate(fd, 2 * MiB)                               # the second MiB is a hole
    b = t.mmap(MiB, flags=SHARED, fd=fd, offset=MiB)
    assert t.madvise(b, MiB, mmcore.MADV_WILLWRITE) == MiB
    of = m.vfs.fdtable(t.pid)[fd]
    f = m.vfs.state
    base = int(f.ino[K.I_BLK, of.ino])
    assert set(f.blk[base + 256:base + 512].tolist()) == {K.BLK_DELALLOC}
    assert m.meminfo()["Dirty"] == 0                        # nothing dirtied
    assert t.smaps(b)["Rss"] == 1024                       # read-faulted in, read-only
    t0 = t.time_ns
    t.touch(b, MiB, write=True)
    after = t.time_ns - t0
    t0 = t.time_ns
    t.touch(a, MiB, write=True)                            # fallocated, not prepared
    plain = t.time_ns - t0
    assert after * 3 < plain
    checked(m)


def test_madv_willwrite_rfc_return_values():
    m, t, fd, a = _willwrite_setup()
    p = t.mmap(MiB, flags=PRIVATE, fd=fd)
    anon = t.mmap(MiB)
    ro = t.mmap(MiB, mmcore.PROT_READ, SHARED, fd=fd)
    assert t.madvise(p, MiB, mmcore.MADV_WILLWRITE) == 0   # private: not supported
    assert t.madvise(anon, MiB, mmcore.MADV_WILLWRITE) == 0
    with pytest.raises(OSError) as e:
        t.madvise(ro, MiB, mmcore.MADV_WILLWRITE)
    assert e.value.errno == errno.EFAULT
    m.mount("/old", "ext2", size="16MiB")
    fd2 = t.open("/old/g", RW_)
    t.ftruncate(fd2, MiB)
    c = t.mmap(MiB, flags=SHARED, fd=fd2)
    assert t.madvise(c, MiB, mmcore.MADV_WILLWRITE) == 0   # no willwrite hook
    big = t.mmap(2 * MiB, flags=SHARED, fd=fd)             # the file is 1 MiB long
    with pytest.raises(OSError) as e:
        t.madvise(big, 2 * MiB, mmcore.MADV_WILLWRITE)
    assert e.value.errno == errno.EFAULT                   # block_willwrite beyond EOF
    t.munmap(a + MiB // 2, 4096)
    with pytest.raises(OSError) as e:
        t.madvise(a, MiB, mmcore.MADV_WILLWRITE)           # a hole: ENOMEM after the rest
    assert e.value.errno == errno.ENOMEM
    assert K.MADV_WILLWRITE not in (18, 19, 20, 21, 22, 23, 24, 25, 100, 101, 102, 103)
    checked(m)


def test_madv_willwrite_extensions():
    m, t, fd, a = _willwrite_setup(willwrite_full_prep=True, willwrite_cow_ahead=True)
    assert t.madvise(a, MiB, mmcore.MADV_WILLWRITE) == MiB
    assert m.meminfo()["Dirty"] == 1024                    # full preparation dirties the pages
    faults = t.counters()["min_flt"]
    t.touch(a, MiB, write=True)
    assert t.counters()["min_flt"] == faults               # nothing left to fault
    anon = t.mmap(MiB)
    assert t.madvise(anon, MiB, mmcore.MADV_WILLWRITE) == MiB
    assert t.smaps(anon)["Anonymous"] == 1024              # copy-on-write ahead of the zero page
    checked(m)


def test_willwrite_story_moves_the_cost_out_of_the_time_sensitive_phase():
    from mmcore.scenarios import willwrite_story
    rows = {r["variant"]: r for r in willwrite_story(memory="512MiB", file_size="8MiB")}
    plain, ww = rows["plain"], rows["MADV_WILLWRITE"]
    assert ww["p99_us"] * 3 < plain["p99_us"]
    assert ww["phase_ms"] * 3 < plain["phase_ms"]
    assert ww["prep_ms"] > plain["prep_ms"]
    assert plain["extra_disk_MiB"] == ww["extra_disk_MiB"] == 0
    assert rows["throwaway write"]["extra_disk_MiB"] == 8           # the workaround's cost
    assert rows["FALLOC_FL_WRITE_ZEROES"]["extra_disk_MiB"] == 8    # the device writes zeroes
    # after the throwaway write the blocks are written: each first store still faults (the page
    # is clean and mapped read-only) but pays only the base page_mkwrite, as after WILLWRITE
    assert rows["throwaway write"]["p99_us"] == ww["p99_us"]
    for v in ("MADV_WILLWRITE full prep", "MADV_POPULATE_WRITE"):
        assert rows[v]["phase_faults"] == 0 and rows[v]["p99_us"] < 0.01


def test_reclaim_unmaps_mapped_file_pages_through_the_reverse_map():
    m, t = setup(memory="128MiB")
    fd = t.open("/data/big", RW_)
    t.pwrite(fd, 0, 192 * MiB)
    t.fsync(fd)
    a = t.mmap(192 * MiB, mmcore.PROT_READ, SHARED, fd=fd)
    t.touch(a, 192 * MiB, write=False)                  # more than memory, all mapped on the way
    rss = t.smaps(a)["Rss"]
    assert 0 < rss < 128 * 1024
    assert m.meminfo()["Mapped"] == rss
    vs = m.vmstat()
    assert vs["pgsteal_kswapd"] + vs["pgsteal_direct"] > 0
    checked(m)
    pgpgin = m.vmstat()["pgpgin"]
    majflt = t.counters()["maj_flt"]
    t.touch(a, 192 * MiB, write=False)                  # again: the evicted pages come back
    assert m.vmstat()["pgpgin"] - pgpgin >= 192 * 1024 - rss
    # mostly through asynchronous readahead ahead of the faults: far fewer major faults than
    # one per readahead window
    assert t.counters()["maj_flt"] - majflt < 192 * MiB // 4096 // 32 // 10
    checked(m)


def test_willwrite_scenario_file():
    """data/willwrite.toml: the advised run's write phase is several times shorter."""
    from pathlib import Path

    from mmcore.scenario import load_scenario, run_scenario
    path = Path(__file__).parent.parent / "data" / "willwrite.toml"
    s = load_scenario(path)
    advised = run_scenario(s, params={"size": "8MiB"})
    plain = run_scenario(s, params={"size": "8MiB", "advise": 0})

    def phase_ms(summary, name):
        return next(p for p in summary["phases"] if p["name"] == name)["sim_time_ns"] / 1e6
    assert phase_ms(advised, "write") * 3 < phase_ms(plain, "write")
