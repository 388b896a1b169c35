"""ext4's large page-cache folios (6.16+; tests/reference/FILES.md 16): the order a write asks
for, the folio as the unit of dirtying, writeback, reclaim, drop_caches and truncation."""
import os

import pytest

import mmcore
from mmcore.check import check_files, check_invariants
from mmcore.pageflags import folio_runs

PAGE = 4096
MiB = 1 << 20
RW_ = os.O_CREAT | os.O_RDWR


def checked(m):
    check_invariants(m)
    check_files(m)


def ext4(kernel="6.18", fstype="ext4", memory="256MiB", **kw):
    m = mmcore.Machine({"memory": memory, "kernel": kernel, **kw})
    m.mount("/d", fstype, size="64MiB")
    return m, m.spawn("app")


def folio_sizes(m, t, fd, first, n):
    """Folio sizes (pages) behind pages [first, first + n) of the file, read the way a script
    reads them on Linux: map it shared, read each page, pagemap + kpageflags."""
    a = t.mmap((first + n) * PAGE, mmcore.PROT_READ, mmcore.MAP_SHARED, fd=fd)
    t.touch(a + first * PAGE, n * PAGE, write=False)
    runs = folio_runs(m.state, t.pagemap(a + first * PAGE, n * PAGE))
    t.munmap(a, (first + n) * PAGE)
    return runs


@pytest.mark.parametrize("writes, first, n, expect", [
    ([(3 * PAGE, 100 * PAGE)], 3, 100, [1, 4, 8, 16, 32, 32, 4, 2, 1]),
    ([(0, 4 * MiB)], 0, 1024, [512, 512]),
    ([(k * PAGE, PAGE) for k in range(8)], 0, 8, [1] * 8),
    ([(100, 64 * PAGE)], 0, 65, [64, 1]),             # unaligned: 100 bytes spill over
    ([(0, 3 * MiB)], 0, 768, [512, 256]),
])
def test_a_write_makes_the_folios_its_order_asks_for(writes, first, n, expect):
    m, t = ext4()
    fd = t.open("/d/f", RW_)
    for off, length in writes:
        t.pwrite(fd, off, length)
    assert folio_sizes(m, t, fd, first, n) == expect
    checked(m)


@pytest.mark.parametrize("kernel, fstype", [("6.18", "ext2"), ("4.13", "ext4"), ("3.10", "ext4")])
def test_no_large_folios_before_6_16_or_on_ext2(kernel, fstype):
    m, t = ext4(kernel, fstype)
    fd = t.open("/d/f", RW_)
    t.pwrite(fd, 0, 64 * PAGE)
    assert folio_sizes(m, t, fd, 0, 64) == [1] * 64
    checked(m)


def test_dirtying_and_writeback_count_the_whole_folio():
    m, t = ext4()
    fd = t.open("/d/f", RW_)
    v0 = m.vmstat()
    t.pwrite(fd, 0, 64 * PAGE)                       # one order-6 folio
    v = m.vmstat()
    assert v["nr_dirty"] == 64 and v["nr_dirtied"] - v0["nr_dirtied"] == 64
    t.fsync(fd)
    v1 = m.vmstat()
    assert v1["nr_dirty"] == 0 and v1["nr_written"] - v["nr_written"] == 64
    assert v1["pgpgout"] - v["pgpgout"] == 64 * 4
    # one byte into page 5 dirties the folio: the next fsync writes all 64 pages again
    t.pwrite(fd, 5 * PAGE + 7, 1)
    v2 = m.vmstat()
    assert v2["nr_dirty"] == 64 and v2["nr_dirtied"] - v1["nr_dirtied"] == 64
    t.fsync(fd)
    v3 = m.vmstat()
    assert v3["nr_written"] - v2["nr_written"] == 64 and v3["nr_dirty"] == 0
    checked(m)


def test_a_truncation_that_cuts_a_folio_splits_it():
    m, t = ext4()
    fd = t.open("/d/f", RW_)
    t.pwrite(fd, 0, 64 * PAGE)
    t.fsync(fd)
    t.ftruncate(fd, 10 * PAGE + 100)                 # keeps pages 0..10 of the order-6 folio
    assert m.vmstat()["nr_file_pages"] == 11
    assert folio_sizes(m, t, fd, 0, 11) == [1] * 11
    assert m.vmstat()["thp_split_page"] == 0         # only PMD-sized splits count there
    checked(m)


def test_a_truncation_of_a_pmd_sized_folio_counts_a_split():
    m, t = ext4()
    fd = t.open("/d/f", RW_)
    t.pwrite(fd, 0, 2 * MiB)
    assert m.vmstat()["nr_file_hugepages"] == 1
    assert m.meminfo()["FileHugePages"] == 2048
    t.ftruncate(fd, MiB)
    v = m.vmstat()
    assert v["thp_split_page"] == 1 and v["nr_file_hugepages"] == 0
    assert v["nr_file_pages"] == 256 and v["nr_dirty"] == 256
    checked(m)


def test_drop_caches_drops_whole_clean_folios():
    m, t = ext4()
    fd = t.open("/d/f", RW_)
    t.pwrite(fd, 0, 100 * PAGE)
    t.fsync(fd)
    t.pwrite(fd, 64 * PAGE, 1)                       # dirties the order-5 folio at 64
    assert m.vmstat()["nr_dirty"] == 32
    t.write_sysctl("vm.drop_caches", 1)
    assert m.vmstat()["nr_file_pages"] == 32         # the dirty folio stays, whole
    checked(m)


def test_reclaim_evicts_whole_folios():
    """A file four times the size of memory, written in 1 MiB steps and synced as it goes: the
    page cache holds folios of 256 pages, and reclaim frees them whole."""
    m, t = ext4(memory="32MiB")
    m.mount("/big", "ext4", size="256MiB")
    fd = t.open("/big/f", RW_)
    for k in range(128):
        t.pwrite(fd, k * MiB, MiB)
        if k % 8 == 7:
            t.fsync(fd)
        if k % 32 == 31:
            checked(m)
    v = m.vmstat()
    assert v["pgsteal_kswapd"] + v["pgsteal_direct"] > 0
    assert v["nr_file_pages"] % 256 == 0              # whole folios left, whole folios gone
    checked(m)


def test_reclaim_unmaps_pte_mapped_folios_whole_from_every_mapping():
    """16-page folios mapped by PTEs in two processes, one mapping starting 4 MiB into the file:
    reclaim takes a folio out of every mapping at once (one rmap walk per folio), so the pages
    each mapping still maps come in whole folios and are the same pages in both."""
    m, t = ext4(memory="64MiB")
    fd = t.open("/d/f", RW_)
    for k in range(256):
        t.pwrite(fd, k * 16 * PAGE, 16 * PAGE)       # sixteen-page folios
    t.fsync(fd)
    a = t.mmap(16 * MiB, mmcore.PROT_READ, mmcore.MAP_SHARED, fd=fd, addr=(1 << 32) + PAGE)
    t.touch(a, 16 * MiB, write=False)
    u = m.spawn("reader")
    fdu = u.open("/d/f", os.O_RDONLY)
    b = u.mmap(8 * MiB, mmcore.PROT_READ, mmcore.MAP_SHARED, fd=fdu, offset=4 * MiB)
    u.touch(b, 8 * MiB, write=False)
    assert folio_runs(m.state, t.pagemap(a, 16 * MiB)) == [16] * 256
    hog = m.spawn("hog")
    c = hog.mmap(52 * MiB)
    hog.touch(c, 52 * MiB)
    v = m.vmstat()
    assert v["pgsteal_kswapd"] + v["pgsteal_direct"] > 0
    present = (t.pagemap(a, 16 * MiB) >> 63).astype(bool)
    assert 0 < present.sum() < 4096
    assert (present.reshape(256, 16).all(axis=1) == present.reshape(256, 16).any(axis=1)).all()
    both = (u.pagemap(b, 8 * MiB) >> 63).astype(bool)
    assert (both == present[1024:3072]).all()
    checked(m)


def test_a_shared_store_into_a_clean_folio_dirties_it_whole():
    m, t = ext4()
    fd = t.open("/d/f", RW_)
    t.pwrite(fd, 0, 64 * PAGE)
    t.fsync(fd)
    a = t.mmap(64 * PAGE, mmcore.PROT_READ | mmcore.PROT_WRITE, mmcore.MAP_SHARED, fd=fd)
    t.touch(a + 3 * PAGE, 1, write=True)
    assert m.vmstat()["nr_dirty"] == 64
    t.fsync(fd)
    assert m.vmstat()["nr_dirty"] == 0
    t.touch(a + 9 * PAGE, 1, write=True)             # write-protected again by the writeback
    assert m.vmstat()["nr_dirty"] == 64
    checked(m)


def test_a_write_takes_a_smaller_folio_where_the_range_is_partly_cached():
    m, t = ext4()
    fd = t.open("/d/f", RW_)
    t.pwrite(fd, 6 * PAGE, PAGE)                     # page 6 alone
    t.pwrite(fd, 0, 16 * PAGE)                       # order 4 at 0 collides: 4 + 2 + (6) + 1 + 8
    assert folio_sizes(m, t, fd, 0, 16) == [4, 2, 1, 1, 8]
    checked(m)


def test_a_folio_whose_blocks_cannot_all_be_reserved_is_not_taken():
    m = mmcore.Machine({"memory": "256MiB"})
    m.mount("/d", "ext4", size="64KiB")               # 16 blocks
    t = m.spawn("app")
    fd = t.open("/d/f", RW_)
    assert t.pwrite(fd, 0, 13 * PAGE) == 13 * PAGE    # 8 + 4 + 1: 3 blocks left
    t.fsync(fd)
    # 4 pages at 16: order 2 needs 4 blocks, order 1 takes 2, then one page, then ENOSPC
    assert t.pwrite(fd, 16 * PAGE, 4 * PAGE) == 3 * PAGE
    assert folio_sizes(m, t, fd, 16, 3) == [2, 1]
    checked(m)


def test_mlock_locks_a_folio_its_ptes_map_whole():
    """mlock_pte_range mlocks a large folio when one run of the locked range's PTEs maps all of
    it (allow_mlock_munlock); munlock rescues it."""
    m, t = ext4()
    fd = t.open("/d/f", RW_)
    t.pwrite(fd, 0, 64 * PAGE)                       # one order-6 folio
    a = t.mmap(64 * PAGE, mmcore.PROT_READ, mmcore.MAP_SHARED, fd=fd)
    t.touch(a, 64 * PAGE, write=False)               # mapped before the mlock
    t.mlock(a, 32 * PAGE)                            # half of it: left alone
    assert m.meminfo()["Mlocked"] == 0
    t.munlock(a, 32 * PAGE)
    t.mlock(a, 64 * PAGE)
    v, mi = m.vmstat(), m.meminfo()
    assert mi["Mlocked"] == mi["Unevictable"] == 256
    assert v["unevictable_pgs_mlocked"] == v["unevictable_pgs_culled"] == 64
    checked(m)
    t.munlock(a, 64 * PAGE)
    v, mi = m.vmstat(), m.meminfo()
    assert mi["Mlocked"] == mi["Unevictable"] == 0 and v["unevictable_pgs_rescued"] == 64
    checked(m)


def test_a_locked_mapping_keeps_its_large_folios_from_reclaim():
    """A fault mlocks order-0 folios only, so a large folio faulted into a locked VMA stays
    evictable until reclaim meets it: folio_referenced mlocks it then (it is mapped whole), and
    it is never reclaimed."""
    m, t = ext4(memory="64MiB")
    fd = t.open("/d/f", RW_)
    t.pwrite(fd, 0, 16 * MiB)                        # eight PMD-sized folios
    t.fsync(fd)
    a = t.mmap(16 * MiB, mmcore.PROT_READ, mmcore.MAP_SHARED, fd=fd)
    t.mlock(a, 16 * MiB)                             # populates: faults map the folios' pages
    assert m.meminfo()["Mlocked"] == 0
    other = t.open("/d/g", RW_)                      # an unlocked file for reclaim to take
    t.pwrite(other, 0, 16 * MiB)
    t.fsync(other)
    hog = m.spawn("hog")
    b = hog.mmap(36 * MiB)
    hog.touch(b, 36 * MiB)
    v = m.vmstat()
    assert v["pgsteal_kswapd"] + v["pgsteal_direct"] > 0
    assert t.smaps(a)["Rss"] == 16384                 # every page still mapped
    mlocked = m.meminfo()["Mlocked"]                 # those reclaim met, whole
    assert 0 < mlocked and mlocked % 2048 == 0 and v["unevictable_pgs_culled"] == mlocked // 4
    checked(m)


def pmd_map(t, fd, length, prot=mmcore.PROT_READ, flags=mmcore.MAP_SHARED, at=1 << 32):
    """The file mapped at a 2 MiB-aligned address (MAP_FIXED), from offset 0."""
    return t.mmap(length, prot, flags | mmcore.MAP_FIXED, fd=fd, addr=at)


def test_a_read_fault_maps_a_pmd_sized_folio_by_its_pmd():
    m, t = ext4()
    fd = t.open("/d/f", RW_)
    t.pwrite(fd, 0, 4 * MiB)
    a = pmd_map(t, fd, 4 * MiB)
    t.touch(a + 5 * PAGE, 1, write=False)
    sm = t.smaps(a)
    assert sm["FilePmdMapped"] == 2048 and sm["Rss"] == 2048
    t.touch(a, 4 * MiB, write=False)
    v, mi = m.vmstat(), m.meminfo()
    assert t.smaps(a)["FilePmdMapped"] == 4096 and mi["FilePmdMapped"] == 4096
    assert v["thp_file_mapped"] == 2 and v["nr_file_pmdmapped"] == 2
    checked(m)
    # from a file offset that is not 2 MiB-aligned against the address: PTEs only
    b = t.mmap(2 * MiB, mmcore.PROT_READ, mmcore.MAP_SHARED | mmcore.MAP_FIXED, fd=fd,
               addr=(2 << 32) + 64 * PAGE)
    t.touch(b, 2 * MiB - 64 * PAGE, write=False)
    assert t.smaps(b)["FilePmdMapped"] == 0
    checked(m)


def test_a_store_into_a_write_protected_pmd_maps_it_again_writable():
    """A read maps the folio by a write-protected PMD (ext4 needs page_mkwrite). A store zaps it
    (wp_huge_pmd: thp_split_pmd), and the fault that follows finds the PMD empty: page_mkwrite,
    then finish_fault maps the folio by its PMD again, writable and dirty. Writeback
    write-protects it (folio_mkclean), and the next store does it all again. As on a 6.18 host:
    FilePmdMapped 2048 kB throughout, Private_Dirty 0, 2048, 0, 2048 kB, one thp_split_pmd per
    store."""
    m, t = ext4()
    fd = t.open("/d/f", RW_)
    t.pwrite(fd, 0, 2 * MiB)
    t.fsync(fd)
    a = pmd_map(t, fd, 2 * MiB, mmcore.PROT_READ | mmcore.PROT_WRITE)
    t.touch(a, 1, write=False)
    sm = t.smaps(a)
    assert sm["FilePmdMapped"] == 2048 and sm["Private_Dirty"] == 0 and m.vmstat()["nr_dirty"] == 0
    for k in (1, 2):
        t.touch(a + 7 * PAGE, 1, write=True)
        v, sm = m.vmstat(), t.smaps(a)
        assert v["thp_split_pmd"] == k and sm["FilePmdMapped"] == 2048 and sm["Private_Dirty"] == 2048
        assert v["nr_dirty"] == 512 and v["nr_file_hugepages"] == 1
        t.touch(a + 9 * PAGE, 1, write=True)          # writable now: no fault
        assert m.vmstat()["thp_split_pmd"] == k
        checked(m)
        t.fsync(fd)
        assert t.smaps(a)["Private_Dirty"] == 0 and m.vmstat()["nr_dirty"] == 0
    checked(m)


def test_a_shared_write_fault_maps_a_cached_pmd_sized_folio_by_its_pmd():
    """A store into an empty PMD over a cached PMD-sized folio: page_mkwrite, then the folio
    mapped by its PMD, writable and dirty (host: FilePmdMapped and Private_Dirty 2048 kB); on a
    file with MADV_HUGEPAGE and nothing cached, the fault reads the folios first."""
    m, t = ext4()
    fd = t.open("/d/f", RW_)
    t.pwrite(fd, 0, 4 * MiB)
    a = pmd_map(t, fd, 4 * MiB, mmcore.PROT_READ | mmcore.PROT_WRITE)
    t.touch(a, 1, write=True)
    sm = t.smaps(a)
    assert sm["FilePmdMapped"] == 2048 and sm["Private_Dirty"] == 2048 and sm["Rss"] == 2048
    t.touch(a + 2 * MiB, 1, write=False)
    assert t.smaps(a)["FilePmdMapped"] == 4096
    checked(m)
    m, t = ext4()
    fd = cold_file(m, t, "/d/g", 1024)
    b = pmd_map(t, fd, 4 * MiB, mmcore.PROT_READ | mmcore.PROT_WRITE)
    t.madvise(b, 4 * MiB, mmcore.MADV_HUGEPAGE)
    t.touch(b, 1, write=True)
    sm = t.smaps(b)
    assert sm["FilePmdMapped"] == 2048 and sm["Private_Dirty"] == 2048
    assert m.vmstat()["nr_dirty"] == 512 and m.vmstat()["pgmajfault"] == 1
    checked(m)


def test_a_private_write_copies_after_the_split():
    m, t = ext4()
    fd = t.open("/d/f", RW_)
    t.pwrite(fd, 0, 2 * MiB)
    a = pmd_map(t, fd, 2 * MiB, mmcore.PROT_READ | mmcore.PROT_WRITE, mmcore.MAP_PRIVATE)
    t.touch(a, 2 * MiB, write=False)
    assert t.smaps(a)["FilePmdMapped"] == 2048
    t.touch(a + 3 * PAGE, 1, write=True)
    sm = t.smaps(a)
    assert sm["FilePmdMapped"] == 0 and sm["Anonymous"] == 4
    checked(m)


def test_reclaim_unmaps_pmd_mapped_folios_no_one_uses():
    m, t = ext4(memory="64MiB")
    fd = t.open("/d/f", RW_)
    t.pwrite(fd, 0, 16 * MiB)
    t.fsync(fd)
    a = pmd_map(t, fd, 16 * MiB)
    t.touch(a, 16 * MiB, stride=2 * MiB, write=False)
    assert t.smaps(a)["FilePmdMapped"] == 16384
    hog = m.spawn("hog")
    b = hog.mmap(52 * MiB)
    hog.touch(b, 52 * MiB)
    v = m.vmstat()
    assert v["pgsteal_kswapd"] + v["pgsteal_direct"] >= 512
    left = t.smaps(a)["FilePmdMapped"]
    assert left < 16384 and left % 2048 == 0
    assert m.meminfo()["FilePmdMapped"] == left
    checked(m)


def test_mlock_locks_a_pmd_mapped_folio_and_munmap_unlocks_it():
    m, t = ext4()
    fd = t.open("/d/f", RW_)
    t.pwrite(fd, 0, 4 * MiB)
    a = pmd_map(t, fd, 4 * MiB)
    t.touch(a, 4 * MiB, stride=2 * MiB, write=False)
    t.mlock(a, 4 * MiB)
    mi = m.meminfo()
    assert mi["Mlocked"] == mi["Unevictable"] == 4096
    checked(m)
    t.munmap(a, 2 * MiB)
    assert m.meminfo()["Mlocked"] == 2048
    checked(m)
    t.munmap(a + 2 * MiB, 2 * MiB)
    v, mi = m.vmstat(), m.meminfo()
    assert mi["Mlocked"] == mi["Unevictable"] == 0
    assert v["unevictable_pgs_mlocked"] == v["unevictable_pgs_munlocked"] == 1024
    checked(m)


def cold_file(m, t, path, npages):
    """A file of ``npages`` written, written back and dropped from the page cache."""
    fd = t.open(path, RW_)
    t.pwrite(fd, 0, npages * PAGE)
    t.fsync(fd)
    t.write_sysctl("vm.drop_caches", 1)
    assert m.meminfo()["Cached"] == 0
    return fd


@pytest.mark.parametrize("step, expect", [
    # read_ahead_kb 128 (32 pages): the first window of 4 pages is order 0, then every async
    # window asks for 2 orders more, capped by ilog2 of its size and its end aligned to it
    (1, [1, 1, 1, 1, 4, 4, 4, 8, 8, 16, 16] + [32] * 6),
    (16, [1] * 32 + [4] * 8 + [16, 16] + [32] * 5),
])
def test_readahead_fills_windows_with_folios_of_growing_order(step, expect):
    m, t = ext4()
    fd = cold_file(m, t, "/d/f", 256)
    for k in range(0, 256, step):
        t.pread(fd, k * PAGE, step * PAGE)
    assert folio_sizes(m, t, fd, 0, 256) == expect
    assert m.vmstat()["pgpgin"] == 256 * 4
    checked(m)


@pytest.mark.parametrize("kernel, fstype", [("6.18", "ext2"), ("4.13", "ext4")])
def test_readahead_stays_at_order_0_without_large_folios(kernel, fstype):
    m, t = ext4(kernel, fstype)
    fd = cold_file(m, t, "/d/f", 256)
    for k in range(256):
        t.pread(fd, k * PAGE, PAGE)
    assert folio_sizes(m, t, fd, 0, 256) == [1] * 256
    checked(m)


def test_a_cached_page_in_the_window_leaves_the_rest_to_order_0():
    """A page already cached inside a window's range ends the large-folio loop (-EEXIST); the
    rest of the window comes in order-0 pages, around the cached one."""
    m, t = ext4()
    fd = cold_file(m, t, "/d/f", 64)
    t.pread(fd, 13 * PAGE, 1)                          # a random read: page 13 alone
    for k in range(64):
        t.pread(fd, k * PAGE, PAGE)
    # windows [0,4) order 0, [4,12) order 2, [12,16) hits page 13: all order 0, then [16,24)
    # asks for order 4 (capped at 3 by its 8 pages)
    runs = folio_sizes(m, t, fd, 0, 64)
    assert runs[:4] == [1] * 4 and runs[4:6] == [4, 4] and runs[6:10] == [1] * 4
    assert runs[10] == 8 and sum(runs) == 64
    checked(m)


def test_a_fault_reads_around_at_order_0_and_a_marked_folio_starts_order_2():
    m, t = ext4()
    fd = cold_file(m, t, "/d/f", 256)
    a = t.mmap(256 * PAGE, mmcore.PROT_READ, mmcore.MAP_SHARED, fd=fd)
    t.touch(a, PAGE, write=False)                      # read-around: [0, 32), mark at 24
    assert m.meminfo()["Cached"] == 32 * 4
    t.touch(a + 24 * PAGE, PAGE, write=False)          # the mark: the next window at order 2
    assert m.meminfo()["Cached"] == 64 * 4
    assert folio_sizes(m, t, fd, 0, 64) == [1] * 32 + [4] * 8
    checked(m)


def test_readahead_orders_match_a_6_18_hosts_tracepoints():
    """read_ahead_kb 8192 (2048 pages), a cold 4 MiB ext4 file read 4 KiB at a time: the windows
    (size 4 at order 0, 16 at order 2, 60 at order 4, 240 at order 6) and the folios they add,
    as a 6.18 host's readahead:page_cache_ra_order and filemap:mm_filemap_add_to_page_cache
    tracepoints show them for the same reads."""
    m, t = ext4(read_ahead_kb=8192)
    fd = cold_file(m, t, "/d/f", 1024)
    for k in range(320):
        t.pread(fd, k * PAGE, PAGE)
    expect = [1] * 4 + [4] * 4 + [4, 8, 16, 16, 16] + [16, 32, 64, 64, 64]
    assert folio_sizes(m, t, fd, 0, 320) == expect
    checked(m)


@pytest.mark.parametrize("advice, cached_kb", [
    # a cold 8 MiB file mapped 2 MiB-aligned and faulted at 0, 2 MiB and 4 MiB, as on a 6.18
    # host: MADV_HUGEPAGE reads two PMD-sized folios at the first fault and the marked second
    # one starts a window of two more; with MADV_RANDOM too, one folio per fault and no window
    ((mmcore.MADV_HUGEPAGE,), [4096, 8192, 8192]),
    ((mmcore.MADV_HUGEPAGE, mmcore.MADV_RANDOM), [2048, 4096, 6144]),
])
def test_a_madv_hugepage_read_fault_reads_pmd_sized_folios_and_maps_them(advice, cached_kb):
    m, t = ext4(read_ahead_kb=8192)
    fd = cold_file(m, t, "/d/f", 2048)
    a = pmd_map(t, fd, 8 * MiB)
    for adv in advice:
        t.madvise(a, 8 * MiB, adv)
    majflt = []
    for k in range(3):
        t.touch(a + k * 2 * MiB, 1, write=False)
        assert m.meminfo()["Cached"] == cached_kb[k]
        assert t.smaps(a)["FilePmdMapped"] == (k + 1) * 2048
        majflt.append(m.vmstat()["pgmajfault"])
    assert majflt == ([1, 1, 1] if len(advice) == 1 else [1, 2, 3])   # a miss is a major fault
    assert folio_runs(m.state, t.pagemap(a, 6 * MiB)) == [512] * 3
    checked(m)


def test_without_madv_hugepage_a_read_fault_reads_around_in_small_folios():
    """The same file and fault without the advice: the read-around window (read_ahead_kb 8192:
    the whole file) at order 0, fault-around mapping 16 pages (host: 2048 pages cached, Rss
    64 kB)."""
    m, t = ext4(read_ahead_kb=8192)
    fd = cold_file(m, t, "/d/f", 2048)
    a = pmd_map(t, fd, 8 * MiB)
    t.touch(a, 1, write=False)
    assert m.meminfo()["Cached"] == 8192
    assert t.smaps(a)["Rss"] == 64 and t.smaps(a)["FilePmdMapped"] == 0
    checked(m)
