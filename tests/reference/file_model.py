"""Plain-Python reference model of the file layer (tests/reference/FILES.md).

Mounts, inodes, block states, the page cache and its LRU lists, the disks, dirty accounting,
fsync/sync, ftruncate, fallocate, unlink, drop_caches and the dentry/inode slab, written from the
Linux behaviour and the model rules in FILES.md -- dicts, lists and ints, no NumPy, nothing from
the engine but its constants. Scope: the regime without memory pressure and without background
writeback (free memory stays above the low watermark, so kswapd and direct reclaim never run;
``dirty_background_ratio``/``dirty_ratio`` are 100 and the flusher's timers lie beyond every
clock). Leaving the regime raises ``OutOfRegime`` instead of guessing.

Where the engine departs from Linux, the reference does what Linux does; each departure has a name
(``DEVIATIONS``), and a reference built with ``deviations={name, ...}`` reproduces the engine's
behaviour for those names instead, so a differential test can compare everything else exactly
while the departure stays visible in its own test.
"""
from __future__ import annotations

import errno
import os
from dataclasses import dataclass, field

from mmcore.kernels.consts import (
    BLK_DELALLOC,
    BLK_HOLE,
    BLK_UNWRITTEN,
    BLK_WRITTEN,
    FALLOC_FL_KEEP_SIZE,
    FALLOC_FL_PUNCH_HOLE,
    FALLOC_FL_WRITE_ZEROES,
    FALLOC_FL_ZERO_RANGE,
    LRU_ACTIVE_ANON,
    LRU_ACTIVE_FILE,
    LRU_INACTIVE_ANON,
    LRU_INACTIVE_FILE,
    LRU_UNEVICTABLE,
    VM_HUGEPAGE,
    VM_NOHUGEPAGE,
    XFS_EXTENTADD_SPACE_RES,
    XFS_MAX_BMBT_EXTLEN,
)

PAGE = 4096
HPAGE_NR = 512                              # pages in a PMD-sized folio (FILES.md 13)
FALLOC_FL_COLLAPSE_RANGE = 0x08
FALLOC_FL_INSERT_RANGE = 0x20
FALLOC_FL_UNSHARE_RANGE = 0x40
SLAB_BYTES_PER_FILE = 192 + 1096            # a dentry and an ext4 inode, on XFS too (FILES.md 9)
NEVER = 1 << 62
MAX_FILE_BYTES = 1 << 44                    # s_maxbytes of every filesystem here (16 TiB)
LISTS = (LRU_INACTIVE_ANON, LRU_ACTIVE_ANON, LRU_INACTIVE_FILE, LRU_ACTIVE_FILE, LRU_UNEVICTABLE)
O_ACCMODE = os.O_RDONLY | os.O_WRONLY | os.O_RDWR
KNOWN_O = O_ACCMODE | os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC | os.O_NOATIME
MEMFS = ("tmpfs", "ramfs")
BLOCKFS = ("ext4", "ext2", "xfs")
DELALLOC = ("ext4", "xfs")                  # delayed allocation and unwritten extents (FILES.md 3)

# Where the engine departs from Linux (FILES.md 12 gives each one's Linux rule and reproducer).
DEVIATIONS = {
    "write_marks_accessed": "pwrite marks ext4/ext2/ramfs pages accessed (Linux >= 4.7 does not)",
    "read_marks_every_page": "pread marks the first page again when the previous read ended in it",
    "readahead_per_inode": "readahead state lives in the inode, not in the open file",
    "failed_write_keeps_page": "a write failing with ENOSPC leaves its new page beyond EOF cached",
    "close_is_free": "close() costs no system call",
    "empty_pwrite_is_free": "pwrite of 0 bytes costs no system call",
    "open_trunc": "O_TRUNC costs a second system call and O_RDONLY|O_TRUNC does not truncate",
    "ftruncate_ebadf": "ftruncate on a read-only descriptor gives EBADF, not EINVAL",
    "fallocate_checks": "fallocate mode and access checks in the wrong order or missing",
    "tmpfs_punch_unsupported": "tmpfs FALLOC_FL_PUNCH_HOLE gives EOPNOTSUPP",
    "tmpfs_fallocate_enospc_keeps_pages": "a tmpfs fallocate failing with ENOSPC keeps its pages",
    "ext4_fallocate_all_or_nothing": "an ext4 fallocate failing with ENOSPC allocates nothing",
    "ext4_zero_range": "ZERO_RANGE drops and unwrites the partial edge pages, punches first",
    "ext4_write_zeroes": "WRITE_ZEROES keeps cached pages and skips written blocks",
    "drop_slab_memfs": "drop_caches 2 frees tmpfs/ramfs dentries and inodes",
    "pgalloc_uncounted": "page-cache allocations do not count pgalloc_normal",
    "slab_units": "SReclaimable (kB) and nr_slab_reclaimable (pages) disagree",
    "efbig_small_fs": "pwrite beyond 4x the size of an ext4/ext2/xfs filesystem gives EFBIG",
    "memfs_reads": "tmpfs reads allocate pages for holes; tmpfs/ramfs reads use readahead",
    "truncate_beyond_eof": "truncation and unlink ignore pages and blocks beyond EOF",
    "huge_falloc_head_only": "tmpfs fallocate initialises a cached huge folio only at its first index",
    "memfs_fault_readaround": "a tmpfs/ramfs fault on a hole reads around it (pages, pgmajfault)",
    "fault_ignores_falloc": "a fault leaves a fallocated tmpfs page !uptodate; fault-around maps it",
    "punch_zaps_cows": "punching a hole also zaps the private copies of the punched pages",
    "ramfs_rss_shmem": "mapped ramfs pages count in RssShmem (they are not swap-backed: RssFile)",
}
# departures only streams with mappings or huge mounts show (tests/test_hpc_differential.py)
MAPPING_DEVIATIONS = frozenset({"huge_falloc_head_only", "memfs_fault_readaround",
                                "fault_ignores_falloc", "punch_zaps_cows", "ramfs_rss_shmem"})
HPC_MODELS = ("mainline", "2013", "2013+mmap")
SHMEM_HUGE = ("never", "always", "within_size", "advise", "deny", "force")


class OutOfRegime(Exception):
    """The op stream left the regime the reference models (memory pressure, background writeback)."""


def _err(code: int, what: str) -> OSError:
    return OSError(code, f"{what}: {os.strerror(code)}")


def _pages(nbytes: int) -> int:
    return (nbytes + PAGE - 1) // PAGE


def get_init_ra_size(size: int, mx: int) -> int:
    """mm/readahead.c: the first window of a sequential stream."""
    newsize = 1
    while newsize < size:
        newsize <<= 1
    if newsize <= mx // 32:
        return newsize * 4
    if newsize <= mx // 4:
        return newsize * 2
    return mx


def get_next_ra_size(cur: int, mx: int) -> int:
    if cur < mx // 16:
        return 4 * cur
    if cur <= mx // 2:
        return 2 * cur
    return mx


def write_order(index: int, lo: int, end: int) -> int:
    """The folio order a write at page ``index``, going on at byte ``lo`` up to ``end``, asks
    for (FILES.md 16): ilog2 of the bytes left in its 2 MiB chunk, less 12, capped at PMD order
    and at the alignment of ``index`` (generic_perform_write, fgf_set_order, __ffs)."""
    n = min(HPAGE_NR * PAGE - lo % (HPAGE_NR * PAGE), end - lo)
    order = min(max(n.bit_length() - 1 - 12, 0), 9)
    while order and index % (1 << order):
        order -= 1
    return order


@dataclass
class Mount:
    path: str
    fstype: str
    blocks: int
    free: int
    rd_lat: int                 # ps per request
    wr_lat: int
    rd_page: int                # ps per 4 KiB
    wr_page: int
    disk_free_at: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    pages_lost: int = 0
    huge: str = "never"         # tmpfs huge= (FILES.md 13)


@dataclass
class Page:
    dirty: bool = False
    writeback: bool = False
    referenced: bool = False
    active: bool = False
    mapped: bool = False        # its buffers map blocks (write_begin done: PG_mappedtodisk)
    falloc: bool = False        # tmpfs: fallocated, never written (!uptodate: reads as a hole)
    huge: int = -1              # first index of its large folio (one Page for all its pages), or -1
    nr: int = 1                 # pages in its folio (HPAGE_NR: PMD-sized)
    readahead: bool = False     # PG_readahead: reaching it starts the next window (FILES.md 4)


@dataclass
class ReadState:
    """file_ra_state (FILES.md 4): the latest window and the last read's end."""
    start: int = 0              # where the latest window starts
    size: int = 0               # its pages
    async_size: int = 0         # the mark sits at start + size - async_size
    prev_pos: int = -1          # byte after the last byte the previous read copied
    order: int = 0              # 6.11+ ra->order: the folio order the next window asks for


@dataclass
class Inode:
    ino: int
    fs: int
    size: int = 0
    nlink: int = 1
    refs: int = 0
    alive: bool = True
    dcache: bool = True
    blocks: dict = field(default_factory=dict)     # page index -> BLK_* (holes absent)
    pages: dict = field(default_factory=dict)      # page index -> Page
    ra: ReadState = field(default_factory=ReadState)
    mra: ReadState = field(default_factory=ReadState)  # the state its mappings use
    io: list = field(default_factory=lambda: [(0, 0, 0), (0, 0, 0)])  # latest read requests
    nrdirty: int = 0
    wb_done: int = 0            # ps: completion of the latest writeback submitted
    wb_err: int = 0


@dataclass
class OpenFile:
    ino: int
    flags: int
    path: str
    ra: ReadState = field(default_factory=ReadState)


@dataclass
class Task:
    pid: int
    comm: str
    cpu: int
    clock: int                  # ps
    fds: dict = field(default_factory=dict)


class RefFiles:
    """The file layer of one machine.

    Parameters
    ----------
    memory_bytes : int
        The machine's memory (MemTotal).
    costs_ps : dict
        ``syscall, copy, alloc, clear, mkwrite, da_reserve, unwritten_map, block_alloc,
        unwritten_convert, reclaim_page, lookup_hit, lookup_miss`` in ps.
    watermarks : (min, low, high)
        Zone watermarks in pages.
    kernel : int
        Three-digit kernel version (310, 413, 618, ...).
    deviations : iterable of str
        Names from ``DEVIATIONS`` whose engine behaviour to reproduce instead of Linux's.
    """

    def __init__(self, memory_bytes: int, costs_ps: dict, watermarks: tuple, *, kernel: int = 618,
                 ncpus: int = 2, read_ahead_kb: int = 128, max_sectors_kb: int = 1280,
                 lru_policy: str = "linux",
                 dirty_ratio: int = 100, dirty_background_ratio: int = 100,
                 dirty_writeback_ps: int = NEVER, huge_page_cache: str = "mainline",
                 shmem_enabled: str = "never", deviations=()):
        unknown = set(deviations) - set(DEVIATIONS)
        if unknown:
            raise ValueError(f"deviations: unknown {sorted(unknown)}")
        self.deviations = frozenset(deviations)
        if huge_page_cache not in HPC_MODELS or shmem_enabled not in SHMEM_HUGE:
            raise ValueError(f"huge_page_cache {huge_page_cache!r}, shmem_enabled {shmem_enabled!r}")
        self.hpc = huge_page_cache
        self.shmem_enabled = shmem_enabled
        self.anon_pages = 0                          # private copies (the mapping layer's)
        self.c = dict(costs_ps)
        self.kernel = kernel
        self.ncpus = ncpus
        self.ra_max = max(1, read_ahead_kb >> 2)
        self.ra_off = read_ahead_kb >> 2 == 0         # ra_pages 0: one page per miss, forced
        self.io_pages = max_sectors_kb >> 2
        self.policy = lru_policy
        self.wmark_min, self.wmark_low, self.wmark_high = watermarks
        self.dirty_ratio, self.dirty_bg_ratio = dirty_ratio, dirty_background_ratio
        self.dirty_writeback_ps = dirty_writeback_ps
        self.total_pages = memory_bytes // PAGE
        self.mounts: list[Mount] = []
        self.mount_index: dict[str, int] = {}
        self.inodes: list[Inode] = []
        self.paths: dict[str, int] = {}
        self.tasks: dict[int, Task] = {}
        self.cpu_free = [0] * ncpus
        self.now = 0                                 # the machine clock (ps)
        self.lru = {li: [] for li in LISTS}          # (ino, index) keys, head (young end) first
        self.ring: list[tuple] = []                  # writeback in flight: ((ino, index), done)
        self.vm = {k: 0 for k in VMSTAT_KEYS}
        self.slab_objects = 0
        self.log: list[str] = []
        self.stfu = 0
        self.first_dirtied = None                    # when Dirty first became non-zero

    def dev(self, name: str) -> bool:
        return name in self.deviations

    # ---- set-up ---------------------------------------------------------------------------------
    def mount(self, path: str, fstype: str, size_bytes: int, *, read_latency_us=80.0,
              write_latency_us=20.0, read_mb_s=3000.0, write_mb_s=2000.0, huge="never") -> None:
        """Mount a filesystem of ``size_bytes`` (ramfs: 0 = unlimited) on a disk (FILES.md 1);
        ``huge`` is tmpfs's huge= option (FILES.md 13)."""
        if huge != "never" and (fstype != "tmpfs" or self.kernel < 408 or self.hpc != "mainline"
                                or huge not in SHMEM_HUGE[:4]):
            raise ValueError(f"huge={huge!r} on {fstype}")
        if fstype == "ramfs" and size_bytes == 0:
            size_bytes = 1 << 62
        blocks = size_bytes // PAGE
        self.mount_index[path] = len(self.mounts)
        self.mounts.append(Mount(path, fstype, blocks, blocks,
                                 rd_lat=round(read_latency_us * 10**6),
                                 wr_lat=round(write_latency_us * 10**6),
                                 rd_page=round(PAGE * 10**6 / read_mb_s),
                                 wr_page=round(PAGE * 10**6 / write_mb_s), huge=huge))

    def spawn(self, comm: str) -> int:
        pid = len(self.tasks) + 1
        self.tasks[pid] = Task(pid, comm[:15], len(self.tasks) % self.ncpus, self.now)
        return pid

    # ---- time (FILES.md 2) ------------------------------------------------------------------------
    def _begin(self, pid: int) -> int:
        """An op starts when its task and its CPU are free; returns its clock after the entry."""
        t = self.tasks[pid]
        t.clock = max(t.clock, self.cpu_free[t.cpu])
        now = t.clock + self.c["syscall"]
        self._background(now)
        return now

    def _end(self, pid: int, now: int) -> None:
        t = self.tasks[pid]
        t.clock = now
        self.cpu_free[t.cpu] = now
        self.now = max(self.now, now)

    def _background(self, now: int) -> None:
        """Writeback completions due by ``now``; the flusher must not be due (the regime)."""
        if self.first_dirtied is not None and now >= self.first_dirtied + self.dirty_writeback_ps:
            raise OutOfRegime(f"the flusher would wake at {self.first_dirtied + self.dirty_writeback_ps}")
        self._complete(now)

    # ---- pages and lists ---------------------------------------------------------------------------
    def fstype(self, ino: Inode) -> str:
        return self.mounts[ino.fs].fstype

    def _list_of(self, ino: Inode, page: Page) -> int:
        """folio_lru_list: ramfs unevictable, tmpfs on the anon lists, the rest on the file lists."""
        t = self.fstype(ino)
        if t == "ramfs":
            return LRU_UNEVICTABLE
        base = LRU_INACTIVE_ANON if t == "tmpfs" else LRU_INACTIVE_FILE
        return base + 1 if page.active else base

    def _alloc_page(self, ino: Inode, index: int) -> Page:
        """filemap_add_folio + folio_add_lru of a fresh page (the caller pays its cost)."""
        if self._free_pages() - 1 < self.wmark_low:
            raise OutOfRegime("free memory would fall below the low watermark (kswapd)")
        page = Page()
        ino.pages[index] = page
        self.lru[self._list_of(ino, page)].insert(0, (ino.ino, index))
        if not self.dev("pgalloc_uncounted"):
            self.vm["pgalloc_normal"] += 1
        if self.fstype(ino) in MEMFS:
            self.mounts[ino.fs].free -= 1          # the page is the file's storage
        return page

    def _remove_page(self, ino: Inode, index: int) -> None:
        """__filemap_remove_folio and the free (a dirty page is cleaned first, unwritten). For a
        page of a PMD-sized folio the whole folio goes."""
        page = ino.pages[index]
        assert not page.writeback, "removing a page under writeback"
        nr = page.nr
        first = page.huge if page.huge >= 0 else index
        self._unmapped_check(ino, first, first + nr)
        for i in range(first, first + nr):
            del ino.pages[i]
        if page.dirty:
            self._clean(ino, page)
        self.lru[self._list_of(ino, page)].remove((ino.ino, first))
        if self.fstype(ino) in MEMFS:
            self.mounts[ino.fs].free += nr
        self.vm["pgfree"] += nr

    def _unmapped_check(self, ino: Inode, first: int, last: int) -> None:
        """Hook of the mapping layer: pages leaving the cache must be mapped nowhere."""

    def _folio_key(self, ino: Inode, index: int) -> tuple:
        """The LRU key of the folio holding page ``index``: its first page's."""
        page = ino.pages[index]
        return (ino.ino, page.huge if page.huge >= 0 else index)

    # ---- PMD-sized folios (FILES.md 13) -------------------------------------------------------------
    def huge_capable(self, ino: Inode) -> bool:
        """Can this file's page cache hold PMD-sized folios at all in this model?"""
        if self.hpc == "mainline":
            return self.fstype(ino) == "tmpfs" and self.kernel >= 408
        return self.fstype(ino) == "ramfs"

    def huge_wanted(self, ino: Inode, index: int, write_end: int, why: str, vma_flags: int = 0,
                    thp_disabled: bool = False) -> bool:
        """shmem_huge_global_enabled (mainline) or the 2013 series' rule: may page ``index`` come
        in as part of a PMD-sized folio? ``why`` is "write" (write, fallocate), "read" or
        "fault"; ``write_end`` the end of a write under way (0 if none)."""
        if not self.huge_capable(ino):
            return False
        if why == "fault" and (vma_flags & VM_NOHUGEPAGE or thp_disabled):
            return False
        if self.hpc != "mainline":
            return True
        if self.shmem_enabled in ("deny", "force"):
            return self.shmem_enabled == "force"
        h = self.mounts[ino.fs].huge
        if h == "always":
            return True
        if h == "within_size":
            return _pages(max(write_end, ino.size)) >= (index // HPAGE_NR + 1) * HPAGE_NR
        return h == "advise" and why == "fault" and bool(vma_flags & VM_HUGEPAGE)

    def _alloc_huge(self, ino: Inode, index: int, why: str, now: int):
        """shmem_alloc_and_add_folio at PMD order for page ``index``: (page or None, clock).
        Needs 512 free blocks and no page of the aligned range cached; the order-9 block itself
        is always there in the regime (FILES.md 0)."""
        base = index - index % HPAGE_NR
        m = self.mounts[ino.fs]
        if m.free < HPAGE_NR or any(i in ino.pages for i in range(base, base + HPAGE_NR)):
            return None, now
        if self._free_pages() - HPAGE_NR < self.wmark_low:
            raise OutOfRegime("free memory would fall below the low watermark (kswapd)")
        if self.hpc == "mainline":
            self.vm["thp_file_alloc"] += 1
        else:
            self.vm["thp_write_alloc" if why == "write" else "thp_read_alloc"] += 1
        page = Page(huge=base, nr=HPAGE_NR)
        for i in range(base, base + HPAGE_NR):
            ino.pages[i] = page
        self.lru[self._list_of(ino, page)].insert(0, (ino.ino, base))
        if not self.dev("pgalloc_uncounted"):
            self.vm["pgalloc_normal"] += HPAGE_NR
        m.free -= HPAGE_NR
        return page, now + self.c["alloc"] + HPAGE_NR * self.c["clear"]

    def _split_folio(self, ino: Inode, base: int) -> None:
        """split_folio of a large folio no PMD maps: order-0 pages with its state; they go to the
        head of its list, first page first (the engine's order; FILES.md 13). thp_split_page
        counts PMD-sized folios."""
        page = ino.pages[base]
        li = self._list_of(ino, page)
        self.lru[li].remove((ino.ino, base))
        for i in range(base + page.nr - 1, base - 1, -1):
            ino.pages[i] = Page(page.dirty, page.writeback, page.referenced, page.active,
                                page.mapped, page.falloc)
            self.lru[li].insert(0, (ino.ino, i))
        if page.nr == HPAGE_NR:
            self.vm["thp_split_page"] += 1

    def huge_folios(self, ino: Inode) -> list:
        """First pages of the file's PMD-sized folios."""
        return sorted({p.huge for p in ino.pages.values() if p.huge >= 0 and p.nr == HPAGE_NR})

    def large_folios(self, ino: Inode) -> dict:
        """First page -> pages of every large folio of the file."""
        return dict(sorted({p.huge: p.nr for p in ino.pages.values() if p.huge >= 0}.items()))

    # ---- ext4's and XFS's large folios (FILES.md 16) -------------------------------------------
    def large_capable(self, ino: Inode) -> bool:
        """XFS from 5.18 and ext4 from 6.16 cache file data in large folios (mainline's page
        cache)."""
        since = {"xfs": 518, "ext4": 616}.get(self.fstype(ino))
        return since is not None and self.kernel >= since and self.hpc == "mainline"

    def _alloc_large(self, ino: Inode, index: int, order: int):
        """__filemap_get_folio(FGP_CREAT) above order 0 for a write at page ``index``: from
        ``order`` down to 1, the first order whose aligned range holds no cached page and whose
        blocks can all be reserved (FILES.md 16). Returns the folio's Page, or None for the
        order-0 fallback. The regime keeps free memory far above the low watermark."""
        m = self.mounts[ino.fs]
        while order > 0:
            nr = 1 << order
            span = range(index, index + nr)
            holes = sum(ino.blocks.get(i, BLK_HOLE) == BLK_HOLE for i in span)
            if not any(i in ino.pages for i in span) and holes <= m.free:
                return self._add_large(ino, index, nr)
            order -= 1
        return None

    def _add_large(self, ino: Inode, index: int, nr: int) -> Page:
        """A fresh large folio of ``nr`` pages as pages [index, index + nr), on its LRU list (the
        caller checked the range is empty). The regime keeps free memory above the low
        watermark."""
        if self._free_pages() - nr <= self.wmark_low:
            raise OutOfRegime("free memory would fall below the low watermark")
        page = Page(huge=index, nr=nr)
        for i in range(index, index + nr):
            ino.pages[i] = page
        self.lru[self._list_of(ino, page)].insert(0, (ino.ino, index))
        if not self.dev("pgalloc_uncounted"):
            self.vm["pgalloc_normal"] += nr
        return page

    def _mark_accessed(self, ino: Inode, index: int) -> None:
        """folio_mark_accessed under the configured policy (mm/swap.c; lru.py for the others)."""
        page = ino.pages[index]
        key = self._folio_key(ino, index)
        if self.policy == "linux":
            if not page.referenced:
                page.referenced = True
            elif not page.active and self.fstype(ino) != "ramfs":
                li = self._list_of(ino, page)
                self.lru[li].remove(key)
                page.active, page.referenced = True, False
                self.lru[li + 1].insert(0, key)
                self.vm["pgactivate"] += page.nr                            # folio_nr_pages
        elif self.policy == "lru":
            li = self._list_of(ino, page)
            self.lru[li].remove(key)
            self.lru[li].insert(0, key)
        elif self.policy == "clock":
            page.referenced = True

    def _dirty(self, ino: Inode, page: Page, now: int) -> None:
        """folio_mark_dirty: tmpfs and ramfs pages are never counted in Dirty."""
        if page.dirty:
            return
        page.dirty = True
        if self.fstype(ino) in MEMFS:
            return
        self.vm["nr_dirty"] += page.nr
        self.vm["nr_dirtied"] += page.nr
        ino.nrdirty += page.nr
        if self.first_dirtied is None:
            self.first_dirtied = now

    def _clean(self, ino: Inode, page: Page) -> None:
        page.dirty = False
        if self.fstype(ino) in MEMFS:
            return
        self.vm["nr_dirty"] -= page.nr
        ino.nrdirty -= page.nr

    # ---- blocks (FILES.md 3) --------------------------------------------------------------------------
    def _reads_zeros(self, ino: Inode, index: int) -> bool:
        return self.fstype(ino) in MEMFS or ino.blocks.get(index, BLK_HOLE) != BLK_WRITTEN

    def _write_begin(self, ino: Inode, index: int):
        """The filesystem's work before a page is dirtied by write(): cost in ps, or None (ENOSPC)."""
        t = self.fstype(ino)
        c = self.c
        if t in MEMFS:
            return c["mkwrite"]
        m = self.mounts[ino.fs]
        s = ino.blocks.get(index, BLK_HOLE)
        if s == BLK_HOLE:
            if m.free <= 0:
                return None
            m.free -= 1
            if t in DELALLOC:                      # ext4_da_get_block_prep, XFS's iomap_begin
                ino.blocks[index] = BLK_DELALLOC
                return c["mkwrite"] + c["da_reserve"]
            ino.blocks[index] = BLK_WRITTEN        # ext2_get_block allocates now
            return c["mkwrite"] + c["block_alloc"]
        if s == BLK_UNWRITTEN and t in DELALLOC:
            return c["mkwrite"] + c["unwritten_map"]
        return c["mkwrite"]

    def _writeback_block(self, ino: Inode, index: int) -> int:
        """Writeback of one page's block: allocate delalloc, convert unwritten (cost in ps)."""
        if self.fstype(ino) not in BLOCKFS:
            return 0
        s = ino.blocks.get(index, BLK_HOLE)
        if s == BLK_DELALLOC:
            ino.blocks[index] = BLK_WRITTEN
            return self.c["block_alloc"]
        if s == BLK_UNWRITTEN:
            ino.blocks[index] = BLK_WRITTEN
            return self.c["unwritten_convert"]
        if s == BLK_HOLE:
            m = self.mounts[ino.fs]
            if m.free <= 0:
                m.pages_lost += 1
                ino.wb_err = -errno.ENOSPC
                return 0
            m.free -= 1
            ino.blocks[index] = BLK_WRITTEN
            return self.c["block_alloc"]
        return 0

    def _punch(self, ino: Inode, first: int, last: int) -> None:
        """Free every block in [first, last): reservations and allocations alike."""
        m = self.mounts[ino.fs]
        for i in [i for i in ino.blocks if first <= i < last]:
            del ino.blocks[i]
            m.free += 1

    # ---- the disk and writeback (FILES.md 1, 5) -----------------------------------------------------------------
    def _disk_read(self, m: Mount, now: int, npages: int) -> int:
        start = max(now, m.disk_free_at)
        m.disk_free_at = start + m.rd_lat + npages * m.rd_page
        m.bytes_read += npages * PAGE
        return m.disk_free_at

    def _read_pages_ra(self, ino: Inode, first: int, last: int, mark: int, now: int):
        """Bring the missing pages of [first, last) in with one request for those holding data,
        the one at ``mark`` (if added) with PG_readahead; the request's pages stay locked until
        it completes (the inode keeps its latest two requests). Returns (submitted, ready)."""
        cpu = now
        nio = 0
        lo = hi = -1
        for index in range(first, last):
            if index in ino.pages:
                continue
            cpu += self.c["alloc"]
            page = self._alloc_page(ino, index)
            if index == mark:
                page.readahead = True
            if self._reads_zeros(ino, index):
                cpu += self.c["clear"]
            else:
                nio += 1
                lo = index if lo < 0 else lo
                hi = index + 1
        return cpu, self._submit_read(ino, nio, lo, hi, cpu)

    def _submit_read(self, ino: Inode, nio: int, lo: int, hi: int, cpu: int) -> int:
        """read_pages: one request for the ``nio`` pages holding data among [lo, hi), locked until
        it completes (the inode keeps its latest two requests). Returns when they are ready."""
        if nio == 0:
            return cpu
        self.vm["pgpgin"] += 4 * nio
        done = self._disk_read(self.mounts[ino.fs], cpu, nio)
        ino.io = [(lo, hi, done), ino.io[0]]
        return done

    def _read_pages(self, ino: Inode, first: int, last: int, now: int) -> int:
        """Bring the missing pages of [first, last) in and wait: returns when they are ready."""
        return max(self._read_pages_ra(ino, first, last, -1, now))

    def _ra_wait(self, ino: Inode, index: int, now: int) -> int:
        """A page locked under a pending read request: the reader waits for it."""
        for lo, hi, done in ino.io:
            if lo <= index < hi and done > now:
                return done
        return now

    def _do_page_cache_ra(self, ino: Inode, index: int, nr: int, lookahead: int, now: int):
        """do_page_cache_ra: ``nr`` pages from ``index``, not past EOF, the page ``lookahead``
        before the end marked (5.10+: the count is clipped to EOF first, moving the mark)."""
        if ino.size == 0 or nr <= 0:
            return now, now
        end_index = (ino.size - 1) >> 12
        if index > end_index:
            return now, now
        if self.kernel >= 510:
            nr = min(nr, end_index - index + 1)
            mark = index + nr - lookahead if lookahead <= nr else -1
            return self._read_pages_ra(ino, index, index + nr, mark, now)
        return self._read_pages_ra(ino, index, min(index + nr, end_index + 1), index + nr - lookahead,
                                   now)

    def _max_pages(self, req: int) -> int:
        """ractl_max_pages: a request larger than the window may read up to io_pages (4.10+)."""
        if self.kernel >= 410 and req > self.ra_max and self.io_pages > self.ra_max:
            return min(req, self.io_pages)
        return self.ra_max

    def _ra_sync(self, ino: Inode, ra: ReadState, index: int, req: int, now: int):
        """page_cache_sync_ra (ondemand_readahead before 6.11) for a read missing at ``index``."""
        mx, new = self._max_pages(req), self.kernel >= 611
        prev = ra.prev_pos
        seq = prev >= 0 and 0 <= index - (prev >> 12) <= 1
        if not new and index != 0 and index in (ra.start + ra.size - ra.async_size, ra.start + ra.size):
            ra.start += ra.size
            ra.size = get_next_ra_size(ra.size, mx)
            ra.async_size = ra.size
        elif index == 0 or req > mx or seq:
            ra.start = index
            ra.size = get_init_ra_size(req, mx)
            ra.async_size = ra.size - req if ra.size > req else (ra.size >> 1 if new else ra.size)
        else:
            contig = 0
            while contig < mx and index - 1 - contig >= 0 and index - 1 - contig in ino.pages:
                contig += 1
            if contig <= req:
                return self._do_page_cache_ra(ino, index, req, 0, now)     # random: as is
            if contig >= index:
                contig *= 2
            ra.start, ra.size, ra.async_size = index, min(contig + req, mx), 1
        if not new:
            if index == ra.start and ra.size == ra.async_size:
                ra.async_size = get_next_ra_size(ra.size, mx)
                ra.size += ra.async_size
            return self._do_page_cache_ra(ino, ra.start, ra.size, ra.async_size, now)
        ra.order = 0
        return self._ra_order(ino, ra, now)

    def _ra_order(self, ino: Inode, ra: ReadState, now: int):
        """page_cache_ra_order (FILES.md 4): the window in order-0 pages, or, where the file has
        large folios (FILES.md 16), in folios of the window's order, each lowered to its index's
        alignment and to what fits before the window's end or EOF, the one holding the mark
        (rounded down to it) marked; a cached page in the way ends the loop and the rest of the
        window is read with order-0 pages as a second request. Returns (submitted, ready)."""
        start, size = ra.start, ra.size
        if not self.large_capable(ino):
            ra.order = 0
            return self._do_page_cache_ra(ino, start, size, ra.async_size, now)
        if ino.size == 0 or size <= 0:
            return now, now
        limit = min((ino.size - 1) >> 12, start + size - 1)
        mark = start + size - ra.async_size
        order = min(9, ra.order)
        while order and (1 << order) > size:
            order -= 1
        ra.order = new_order = order
        index, cpu, nio, lo, hi, stopped = start, now, 0, -1, -1, False
        while index <= limit:
            order = new_order
            if index % (1 << order):
                order = (index & -index).bit_length() - 1          # __ffs(index)
            while order and index + (1 << order) - 1 > limit:
                order -= 1
            nr = 1 << order
            if any(i in ino.pages for i in range(index, index + nr)):
                stopped = True                                       # -EEXIST
                break
            cpu += self.c["alloc"]
            page = self._alloc_page(ino, index) if order == 0 else self._add_large(ino, index, nr)
            if index == mark - mark % nr:
                page.readahead = True
            for i in range(index, index + nr):
                if self._reads_zeros(ino, i):
                    cpu += self.c["clear"]
                else:
                    nio += 1
                    lo = i if lo < 0 else lo
                    hi = i + 1
            index += nr
        done = self._submit_read(ino, nio, lo, hi, cpu)
        if stopped and size > index - start:
            cpu, done2 = self._do_page_cache_ra(ino, index, size - (index - start), ra.async_size, cpu)
            done = max(done, done2)
        return cpu, done

    def _ra_async(self, ino: Inode, ra: ReadState, index: int, nr: int, req: int, now: int) -> int:
        """page_cache_async_ra at the marked ``nr``-page folio at ``index``: returns when the
        request is submitted."""
        mx, new = self._max_pages(req), self.kernel >= 611
        if not new and index == 0:
            ra.start, ra.size = 0, get_init_ra_size(req, mx)
            ra.async_size = ra.size - req if ra.size > req else ra.size
        elif index == (ra.start + ra.size - ra.async_size) // nr * nr or \
                (not new and index == ra.start + ra.size):
            ra.start += ra.size
            nxt = get_next_ra_size(ra.size, mx)
            ra.size = max(ra.size, nxt) if new else nxt
            ra.async_size = ra.size
        else:
            start = next((index + 1 + k for k in range(mx) if index + 1 + k not in ino.pages),
                         index + 1 + mx)
            if start - index > mx:
                return now
            ra.start, ra.size = start, get_next_ra_size(start - index + req, mx)
            ra.async_size = ra.size
        if new:
            ra.order += 2
            align = 1 << min(ra.order, (mx & -mx).bit_length() - 1)   # 1 << min(order, ffs - 1)
            end = ra.start + ra.size
            if end - end % align > ra.start:
                ra.size -= end % align
            ra.async_size = ra.size
            return self._ra_order(ino, ra, now)[0]
        if index == ra.start and ra.size == ra.async_size:
            ra.async_size = get_next_ra_size(ra.size, mx)
            ra.size += ra.async_size
        return self._do_page_cache_ra(ino, ra.start, ra.size, ra.async_size, now)[0]

    def _ra_hit(self, ino: Inode, ra: ReadState, index: int, req: int, now: int,
                by_folio: bool = True) -> int:
        """A cached page reached: its folio's mark starts the next window (not under writeback),
        asked for from the folio by read() (``by_folio``), from the page by a fault; then a
        pending read of the page is waited for."""
        page = ino.pages[index]
        if page.readahead and not page.writeback:
            page.readahead = False
            if not self.ra_off:
                at = index
                if by_folio and page.huge >= 0:
                    at = page.huge
                    req += index - at
                now = self._ra_async(ino, ra, at, page.nr, req, now)
        return self._ra_wait(ino, index, now)

    def _write_inode(self, ino: Inode, now: int) -> None:
        """Submit every dirty folio of ``ino`` as one request (index order; FILES.md 5): a large
        folio goes whole, one ring entry for all its pages."""
        dirty = sorted(i for i, p in ino.pages.items() if p.dirty and p.huge in (-1, i))
        if self.fstype(ino) in MEMFS or not dirty:
            return
        m = self.mounts[ino.fs]
        done = max(now, m.disk_free_at) + m.wr_lat
        sent = 0
        for index in dirty:
            page = ino.pages[index]
            for j in range(index, index + page.nr):
                done += m.wr_page + self._writeback_block(ino, j)
            self._clean(ino, page)
            page.writeback = True
            self.vm["nr_writeback"] += page.nr
            self.vm["pgpgout"] += 4 * page.nr
            self.ring.append(((ino.ino, index), done))
            sent += page.nr
        m.disk_free_at = done
        m.bytes_written += sent * PAGE
        ino.wb_done = max(ino.wb_done, done)

    def _complete(self, now: int) -> None:
        """folio_end_writeback for the pages done by ``now``, in submission order."""
        while self.ring and self.ring[0][1] <= now:
            (i, index), _ = self.ring.pop(0)
            page = self.inodes[i].pages[index]
            page.writeback = False
            self.vm["nr_writeback"] -= page.nr
            self.vm["nr_written"] += page.nr

    def _check_dirty_limits(self) -> None:
        """balance_dirty_pages must find Dirty below the background threshold (the regime)."""
        avail = self._free_pages() + self._lru_pages(LRU_INACTIVE_FILE) + self._lru_pages(LRU_ACTIVE_FILE)
        thresh = avail * self.dirty_ratio // 100
        bg = avail * self.dirty_bg_ratio // 100
        if bg >= thresh:
            bg = thresh // 2
        if self.vm["nr_dirty"] > bg:
            raise OutOfRegime("Dirty above the background threshold (background writeback)")

    # ---- names and descriptors ----------------------------------------------------------------------------
    def _resolve(self, path: str) -> tuple:
        norm = os.path.normpath(path)
        best = None
        for mp in self.mount_index:
            if norm == mp or norm.startswith(mp.rstrip("/") + "/"):
                if best is None or len(mp) > len(best):
                    best = mp
        if best is None:
            raise _err(errno.ENOENT, f"open {path}")
        if norm == best:
            raise _err(errno.EISDIR, f"open {path}")
        return self.mount_index[best], norm

    def _fd(self, pid: int, fd: int, what: str) -> OpenFile:
        of = self.tasks[pid].fds.get(fd)
        if of is None:
            raise _err(errno.EBADF, what)
        return of

    def _file(self, pid: int, fd: int, what: str, write: bool = False) -> OpenFile:
        of = self._fd(pid, fd, what)
        acc = of.flags & O_ACCMODE
        if (write and acc == os.O_RDONLY) or (not write and acc == os.O_WRONLY):
            raise _err(errno.EBADF, what)
        return of

    def _lookup(self, ino: Inode, now: int) -> int:
        """A path walk ending at ``ino``: a cached dentry and inode, or a slab allocation and
        (ext4/ext2) an inode-table read."""
        if ino.dcache:
            return now + self.c["lookup_hit"]
        now += self.c["lookup_miss"]
        if self.fstype(ino) in BLOCKFS:
            now = self._disk_read(self.mounts[ino.fs], now, 1)
            self.vm["pgpgin"] += 4
        ino.dcache = True
        self.slab_objects += 1
        return now

    # ---- system calls -----------------------------------------------------------------------------------------
    def open(self, pid: int, path: str, flags: int) -> int:
        if flags & ~KNOWN_O:
            raise ValueError(f"flags {flags:#o}: not modelled")
        if flags & O_ACCMODE == O_ACCMODE:
            raise _err(errno.EINVAL, f"open {path}")
        fsi, norm = self._resolve(path)
        ii = self.paths.get(norm)
        created = False
        if ii is None:
            if not flags & os.O_CREAT:
                raise _err(errno.ENOENT, f"open {path}")
            ii = len(self.inodes)
            self.inodes.append(Inode(ii, fsi))
            self.slab_objects += 1
            self.paths[norm] = ii
            created = True
        elif flags & os.O_CREAT and flags & os.O_EXCL:
            raise _err(errno.EEXIST, f"open {path}")
        ino = self.inodes[ii]
        now = self._lookup(ino, self._begin(pid))
        if self.dev("open_trunc"):
            self._end(pid, now)
            if flags & os.O_TRUNC and flags & (os.O_WRONLY | os.O_RDWR):
                now = self._begin(pid)             # a second call's entry
                now = self._truncate(ino, 0, now)
                self._end(pid, now)
        else:
            if flags & os.O_TRUNC and not created:  # do_open: a new file is not truncated
                now = self._truncate(ino, 0, now)
            self._end(pid, now)
        t = self.tasks[pid]
        fd = 3
        while fd in t.fds:
            fd += 1
        t.fds[fd] = OpenFile(ii, flags, norm)
        ino.refs += 1
        return fd

    def close(self, pid: int, fd: int) -> None:
        self._fd(pid, fd, "close")
        if not self.dev("close_is_free"):
            self._end(pid, self._begin(pid))
        of = self.tasks[pid].fds.pop(fd)
        if of.flags & (os.O_WRONLY | os.O_RDWR) and self.hpc != "mainline" and not any(
                o.ino == of.ino and o.flags & (os.O_WRONLY | os.O_RDWR)
                for t in self.tasks.values() for o in t.fds.values()):
            self._split_last_huge(self.inodes[of.ino])
        self._put(self.inodes[of.ino])

    def _split_last_huge(self, ino: Inode) -> None:
        """The 2013 series' close by the file's last writer: the folio holding the last byte is
        split (unless a PMD maps it) and its pages past EOF that no PTE maps are freed (FILES.md
        13)."""
        if ino.size == 0:
            return
        page = ino.pages.get((ino.size - 1) >> 12)
        if page is None or page.huge < 0 or self._pmd_mapped(ino, page.huge):
            return
        base = page.huge
        self._split_folio(ino, base)
        for index in range(_pages(ino.size), base + HPAGE_NR):
            if index in ino.pages and not self._pte_mapped(ino, index):
                self._remove_page(ino, index)

    def _pmd_mapped(self, ino: Inode, base: int) -> bool:
        """Hook of the mapping layer."""
        return False

    def _pte_mapped(self, ino: Inode, index: int) -> bool:
        """Hook of the mapping layer."""
        return False

    def _put(self, ino: Inode) -> None:
        ino.refs -= 1
        if ino.refs == 0 and ino.nlink == 0 and self._releasable(ino):
            self._release(ino)

    def _releasable(self, ino: Inode) -> bool:
        """Hook of the mapping layer: an unlinked, closed file lives while a VMA maps it."""
        return True

    def _release(self, ino: Inode) -> None:
        """The last reference to an unlinked inode went (iput_final): pages, blocks, caches."""
        if self.dev("truncate_beyond_eof") and self.fstype(ino) in MEMFS:
            limit = _pages(ino.size)            # tmpfs pages beyond EOF stay behind
        else:
            limit = NEVER
        for index in sorted(i for i in ino.pages if i < limit):
            if index in ino.pages:                 # (a folio goes whole at its first page)
                self._remove_page(ino, index)
        if self.fstype(ino) in BLOCKFS:
            self._punch(ino, 0, NEVER)
        if ino.dcache:
            ino.dcache = False
            self.slab_objects -= 1
        ino.alive = False

    def unlink(self, pid: int, path: str) -> None:
        _, norm = self._resolve(path)
        ii = self.paths.get(norm)
        if ii is None:
            raise _err(errno.ENOENT, f"unlink {path}")
        ino = self.inodes[ii]
        self._end(pid, self._lookup(ino, self._begin(pid)))
        del self.paths[norm]
        ino.nlink = 0
        if ino.refs == 0 and self._releasable(ino):
            self._release(ino)

    def pread(self, pid: int, fd: int, pos: int, count: int) -> int:
        of = self._file(pid, fd, "pread")
        ino = self.inodes[of.ino]
        now = self._begin(pid)
        end = min(pos + count, ino.size)
        if end <= pos:
            self._end(pid, now)
            return 0
        if self.fstype(ino) in MEMFS and not self.dev("memfs_reads"):
            now = self._read_memfs(ino, of, pos, end, now)
        else:
            now = self._read_cached(ino, of, pos, end, now)
        self._end(pid, now)
        return end - pos

    def _skip_first_mark(self, ino: Inode, of: OpenFile, pos: int, first: int) -> bool:
        """filemap_read marks the first folio only if the previous read on this open file did not
        end in it (6.x: pos_same_folio(pos, prev_pos - 1)); 3.10-4.x: unless the read starts
        exactly where the previous one stopped (prev_index and prev_offset)."""
        if self.dev("read_marks_every_page"):
            return False
        prev = of.ra.prev_pos
        if self.kernel >= 500:
            return (prev - 1) >> 12 == first
        return prev >= 0 and prev >> 12 == first and prev & 4095 == pos & 4095

    def _read_cached(self, ino: Inode, of: OpenFile, pos: int, end: int, now: int) -> int:
        """filemap_read of [pos, end) with the model's readahead windows (FILES.md 4)."""
        first, last = pos >> 12, _pages(end)
        ra = ino.ra if self.dev("readahead_per_inode") else of.ra
        eof = _pages(ino.size)
        skip = self._skip_first_mark(ino, of, pos, first)
        ramfs = self.fstype(ino) == "ramfs" and not self.dev("memfs_reads")
        for index in range(first, last):
            if index not in ino.pages:
                if ramfs:
                    window = 1                       # no readahead (ra_pages 0): one page per miss
                    if self.huge_wanted(ino, index, 0, "read"):
                        page, now = self._alloc_huge(ino, index, "read", now)   # 2013: a hole
                        if page is not None:
                            window = 0
                    now = self._read_pages(ino, index, min(index + window, eof), now)
                elif self.ra_off:
                    now = max(self._do_page_cache_ra(ino, index, 1, 0, now))
                else:
                    now = max(self._ra_sync(ino, ra, index, last - index, now))
                    if index not in ino.pages:       # the window moved past it (a ramp-up)
                        now = self._read_pages(ino, index, index + 1, now)
            elif not ramfs:
                now = self._ra_hit(ino, ra, index, last - index, now)
            if not (index == first and skip):
                self._mark_accessed(ino, index)
            now += self.c["copy"]
        of.ra.prev_pos = end if self.kernel >= 500 or end & 4095 else end - PAGE
        return now

    def _read_memfs(self, ino: Inode, of: OpenFile, pos: int, end: int, now: int) -> int:
        """shmem_file_read_iter: a hole reads as zeros without a page; a page is marked accessed
        when the read covers its first byte. ramfs goes through filemap_read without readahead."""
        if self.fstype(ino) == "ramfs":
            return self._read_cached(ino, of, pos, end, now)
        first, last = pos >> 12, _pages(end)
        for index in range(first, last):
            page = ino.pages.get(index)
            if page is not None and not page.falloc and (index > first or pos & 4095 == 0
                                                         or self.dev("read_marks_every_page")):
                self._mark_accessed(ino, index)
            now += self.c["copy"]
        return now

    def pwrite(self, pid: int, fd: int, pos: int, count: int) -> int:
        of = self._file(pid, fd, "pwrite", write=True)
        ino = self.inodes[of.ino]
        if of.flags & os.O_APPEND:
            pos = ino.size
        if count == 0:
            if not self.dev("empty_pwrite_is_free"):
                self._end(pid, self._begin(pid))
            return 0
        m = self.mounts[ino.fs]
        t = m.fstype
        if pos + count > MAX_FILE_BYTES:
            raise _err(errno.EFBIG, "pwrite")
        if self.dev("efbig_small_fs") and t in BLOCKFS and _pages(pos + count) > 4 * m.blocks + 16:
            raise _err(errno.EFBIG, "pwrite")
        now = self._begin(pid)
        end = pos + count
        written = 0
        err = 0
        marks = t == "tmpfs" or self.kernel < 407 or self.dev("write_marks_accessed")
        for index in range(pos >> 12, _pages(end)):
            lo, hi = max(pos, index * PAGE), min(end, (index + 1) * PAGE)
            added = index not in ino.pages
            if added:
                if t in MEMFS and m.free <= 0:
                    err = errno.ENOSPC
                    break
                partial = hi - lo < PAGE and index * PAGE < ino.size
                if partial and not self._reads_zeros(ino, index):
                    now = self._read_pages(ino, index, index + 1, now)   # read before modify
                else:
                    page = None
                    if self.huge_wanted(ino, index, end, "write"):
                        page, now = self._alloc_huge(ino, index, "write", now)
                    elif self.large_capable(ino) and write_order(index, lo, end):
                        page = self._alloc_large(ino, index, write_order(index, lo, end))
                        if page is not None:
                            now += self.c["alloc"]
                    if page is None:
                        now += self.c["alloc"]
                        self._alloc_page(ino, index)
                        if hi - lo < PAGE:
                            now += self.c["clear"]
            page = ino.pages[index]
            assert not page.writeback, "no writeback in flight between ops in this regime"
            c = self.c["mkwrite"] if page.mapped else self._write_begin(ino, index)
            if c is None:
                err = errno.ENOSPC
                # ext4_truncate_failed_write / ext2_write_failed: a new page beyond EOF goes
                if added and index >= _pages(ino.size) and not self.dev("failed_write_keeps_page"):
                    self._remove_page(ino, index)
                break
            # a large ext4 folio's blocks are mapped page by page as writes reach them
            page.mapped = page.mapped or page.huge < 0 or t not in BLOCKFS
            page.falloc = False
            now += c + self.c["copy"]
            self._dirty(ino, page, now)
            if marks:
                self._mark_accessed(ino, index)
            written += hi - lo
            ino.size = max(ino.size, hi)
        self._check_dirty_limits()
        self._end(pid, now)
        if written == 0 and err:
            raise _err(err, "pwrite")
        return written

    def fsync(self, pid: int, fd: int) -> None:
        of = self._fd(pid, fd, "fsync")
        ino = self.inodes[of.ino]
        now = self._begin(pid)
        self._write_inode(ino, now)
        now = max(now, ino.wb_done)
        self._complete(now)
        self._end(pid, now)
        err, ino.wb_err = ino.wb_err, 0
        if err:
            raise _err(-err, "fsync")

    def sync(self, pid=None) -> None:
        """sync(2) from task ``pid``, or the machine's own sync at its clock (``pid`` None)."""
        now = self._begin(pid) if pid is not None else self.now
        if pid is None:
            self._background(now)
        for ino in self.inodes:
            if ino.alive and ino.nrdirty:
                self._write_inode(ino, now)
        for _, done in self.ring:
            now = max(now, done)
        self._complete(now)
        if pid is not None:
            self._end(pid, now)
        else:
            self.now = max(self.now, now)

    def _truncate_pages(self, ino: Inode, first: int, last: int, now: int, cows: bool = False) -> int:
        """truncate_inode_pages_range over [first, last): unmaps the range everywhere, waits for
        writeback, drops the pages. A PMD-sized folio wholly inside goes whole; one the range
        cuts is split and loses its pages in the range (mainline, 5.17+), or is kept whole with
        that part zeroed (``clear`` per page; the 2013 series, older kernels; FILES.md 13)."""
        self._unmap_pages(ino, first, last, cows)
        for index in sorted(i for i in ino.pages if first <= i < last):
            page = ino.pages.get(index)
            if page is None:
                continue                           # its folio went already
            if page.huge >= 0:
                base = page.huge
                if base >= first and base + page.nr <= last:
                    self._remove_page(ino, base)
                    continue
                if self.hpc != "mainline" or self.kernel < 517:
                    if index == max(first, base):  # once per folio
                        now += (min(last, base + page.nr) - index) * self.c["clear"]
                    continue
                self._split_folio(ino, base)
                page = ino.pages[index]
            if page.writeback:
                now = max(now, ino.wb_done)
                self._complete(now)
            self._remove_page(ino, index)
        return now

    def _unmap_pages(self, ino: Inode, first: int, last: int, even_cows: bool) -> None:
        """Hook of the mapping layer: unmap_mapping_range over [first, last); ``even_cows`` for
        truncation (truncate_pagecache), not for punching (truncate_pagecache_range)."""

    def _truncate(self, ino: Inode, length: int, now: int) -> int:
        """The size change of ftruncate and O_TRUNC (FILES.md 7)."""
        old = ino.size
        t = self.fstype(ino)
        beyond = self.dev("truncate_beyond_eof")
        # ext4_setattr calls ext4_truncate, xfs_setattr_size xfs_itruncate_extents and
        # shmem_setattr truncates even when the size does not change, to drop what
        # fallocate(KEEP_SIZE) placed beyond EOF (XFS: seen on a 6.18 host)
        if length < old or (length == old and t in ("ext4", "xfs", "tmpfs") and not beyond):
            first = _pages(length)
            last = _pages(old) if beyond and t in MEMFS else NEVER
            now = self._truncate_pages(ino, first, last, now, cows=True)
            if t in BLOCKFS:
                self._punch(ino, first, NEVER)
        ino.size = length
        return now

    def ftruncate(self, pid: int, fd: int, length: int) -> None:
        of = self._fd(pid, fd, "ftruncate")
        if not of.flags & (os.O_WRONLY | os.O_RDWR):
            raise _err(errno.EBADF if self.dev("ftruncate_ebadf") else errno.EINVAL, "ftruncate")
        ino = self.inodes[of.ino]
        now = self._begin(pid)
        self._end(pid, self._truncate(ino, length, now))

    # ---- fallocate (FILES.md 8) ------------------------------------------------------------------------------
    def _falloc_check(self, pid: int, fd: int, mode: int, offset: int, length: int) -> OpenFile:
        """The checks before any work, in vfs_fallocate's order (or the engine's)."""
        wz = FALLOC_FL_WRITE_ZEROES if self.kernel >= 617 else 0
        m = mode & ~FALLOC_FL_KEEP_SIZE
        if self.dev("fallocate_checks"):
            of = self._file(pid, fd, "fallocate", write=True)
            if length == 0:
                raise _err(errno.EINVAL, "fallocate")
            known = FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE | wz
            if mode & ~known or (mode & FALLOC_FL_PUNCH_HOLE and not mode & FALLOC_FL_KEEP_SIZE):
                raise _err(errno.EOPNOTSUPP, "fallocate")
            if mode & FALLOC_FL_WRITE_ZEROES and mode != FALLOC_FL_WRITE_ZEROES:
                raise _err(errno.EINVAL, "fallocate")
            return of
        of = self._fd(pid, fd, "fallocate")
        if length <= 0:
            raise _err(errno.EINVAL, "fallocate")
        known = (FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE | FALLOC_FL_COLLAPSE_RANGE
                 | FALLOC_FL_ZERO_RANGE | FALLOC_FL_INSERT_RANGE | FALLOC_FL_UNSHARE_RANGE | wz)
        if mode & ~known or m not in (0, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_COLLAPSE_RANGE,
                                      FALLOC_FL_ZERO_RANGE, FALLOC_FL_INSERT_RANGE,
                                      FALLOC_FL_UNSHARE_RANGE, FALLOC_FL_WRITE_ZEROES):
            raise _err(errno.EOPNOTSUPP, "fallocate")
        if m == FALLOC_FL_PUNCH_HOLE and not mode & FALLOC_FL_KEEP_SIZE:
            raise _err(errno.EOPNOTSUPP, "fallocate")
        if m in (FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE, FALLOC_FL_WRITE_ZEROES) \
                and mode & FALLOC_FL_KEEP_SIZE:
            raise _err(errno.EOPNOTSUPP, "fallocate")
        if not of.flags & (os.O_WRONLY | os.O_RDWR):
            raise _err(errno.EBADF, "fallocate")
        t = self.fstype(self.inodes[of.ino])
        if m in (FALLOC_FL_COLLAPSE_RANGE, FALLOC_FL_INSERT_RANGE) and t in DELALLOC \
                or m == FALLOC_FL_UNSHARE_RANGE and t == "xfs":
            raise NotImplementedError("fallocate: COLLAPSE_RANGE, INSERT_RANGE and XFS's "
                                      "UNSHARE_RANGE are not modelled")
        return of

    def fallocate(self, pid: int, fd: int, mode: int, offset: int, length: int) -> None:
        of = self._falloc_check(pid, fd, mode, offset, length)
        ino = self.inodes[of.ino]
        t = self.fstype(ino)
        m = mode & ~FALLOC_FL_KEEP_SIZE
        if self.dev("fallocate_checks") and m & FALLOC_FL_PUNCH_HOLE:
            m = FALLOC_FL_PUNCH_HOLE               # the engine takes PUNCH|ZERO as a punch
        tmpfs_modes = (0,) if self.dev("tmpfs_punch_unsupported") else (0, FALLOC_FL_PUNCH_HOLE)
        fs_modes = {"ext4": (0, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE, FALLOC_FL_WRITE_ZEROES),
                    "xfs": (0, FALLOC_FL_PUNCH_HOLE, FALLOC_FL_ZERO_RANGE),   # no WRITE_ZEROES in 6.18
                    "tmpfs": tmpfs_modes}
        if m not in fs_modes.get(t, ()):
            raise _err(errno.EOPNOTSUPP, "fallocate")
        keep = bool(mode & FALLOC_FL_KEEP_SIZE)
        end = offset + length
        now = self._begin(pid)
        if t == "tmpfs":
            ok, now = self._falloc_tmpfs(ino, m, offset, end, keep, now)
        elif m == FALLOC_FL_PUNCH_HOLE:
            ok, now = True, self._punch_hole(ino, offset, end, now)
        elif t == "xfs" and m == FALLOC_FL_ZERO_RANGE:
            ok, now = self._xfs_zero_range(ino, offset, end, keep, now)
        elif t == "xfs":
            ok = self._xfs_alloc_file_space(ino, offset >> 12, _pages(end))
            if ok and not keep:                    # xfs_falloc_setsize, after success only
                ino.size = max(ino.size, end)
        elif m == FALLOC_FL_ZERO_RANGE:
            ok, now = self._zero_range(ino, offset, end, keep, False, now)
        elif m == FALLOC_FL_WRITE_ZEROES:
            ok, now = self._zero_range(ino, offset, end, keep, True, now)
        else:
            ok = self._alloc_unwritten(ino, offset >> 12, _pages(end), None if keep else end)
        self._end(pid, now)
        if not ok:
            raise _err(errno.ENOSPC, "fallocate")

    def _punch_hole(self, ino: Inode, offset: int, end: int, now: int) -> int:
        """PUNCH_HOLE: the pages and blocks wholly inside the range go (partial ones are zeroed in
        place, which the model does not simulate)."""
        a, b = _pages(offset), end >> 12
        if b > a:
            now = self._truncate_pages(ino, a, b, now)
            if self.fstype(ino) in BLOCKFS:
                self._punch(ino, a, b)
        return now

    def _grow(self, ino: Inode, new_size, reached: int) -> None:
        """ext4_alloc_file_blocks: the size follows the blocks mapped so far (not KEEP_SIZE)."""
        if new_size is not None:
            ino.size = max(ino.size, min(new_size, reached * PAGE))

    def _alloc_unwritten(self, ino: Inode, first: int, last: int, new_size) -> bool:
        """Mode 0 and KEEP_SIZE on ext4: holes become unwritten blocks, in order; a delalloc block's
        reservation becomes its allocation (it stays delalloc until writeback)."""
        m = self.mounts[ino.fs]
        holes = [i for i in range(first, last) if ino.blocks.get(i, BLK_HOLE) == BLK_HOLE]
        if self.dev("ext4_fallocate_all_or_nothing"):
            if len(holes) > m.free:
                return False
            for i in holes:
                ino.blocks[i] = BLK_UNWRITTEN
            m.free -= len(holes)
            self._grow(ino, new_size, last)
            return True
        for i in holes:
            if m.free <= 0:                        # what was allocated stays (no rollback)
                if i > first:
                    self._grow(ino, new_size, i)
                return False
            m.free -= 1
            ino.blocks[i] = BLK_UNWRITTEN
        self._grow(ino, new_size, last)
        return True

    def _xfs_alloc_file_space(self, ino: Inode, first: int, last: int) -> bool:
        """xfs_alloc_file_space (FILES.md 8): an extent per transaction, each reserving, before
        it allocates, the blocks left in the range (mapped or not, at most XFS_MAX_BMBT_EXTLEN)
        plus XFS_EXTENTADD_SPACE_RES; a run of holes becomes unwritten, a run of mapped blocks
        is passed over. False on ENOSPC, with the extents allocated before it kept."""
        m = self.mounts[ino.fs]

        def hole(i):
            return ino.blocks.get(i, BLK_HOLE) == BLK_HOLE

        i = first
        while i < last:
            want = min(last - i, XFS_MAX_BMBT_EXTLEN)
            if want + XFS_EXTENTADD_SPACE_RES > m.free:
                return False
            run = 1
            while run < want and hole(i + run) == hole(i):
                run += 1
            if hole(i):
                for k in range(i, i + run):
                    ino.blocks[k] = BLK_UNWRITTEN
                m.free -= run
            i += run
        return True

    def _xfs_zero_range(self, ino: Inode, offset: int, end: int, keep: bool, now: int):
        """xfs_falloc_zero_range: punch the whole pages and blocks inside the range (FILES.md 8),
        then preallocate the whole range; the size grows only on success. Returns (ok, now)."""
        a, b = _pages(offset), end >> 12
        if b > a:
            now = self._truncate_pages(ino, a, b, now)
            self._punch(ino, a, b)
        ok = self._xfs_alloc_file_space(ino, offset >> 12, _pages(end))
        if ok and not keep:
            ino.size = max(ino.size, end)
        return ok, now

    def _zero_range(self, ino: Inode, offset: int, end: int, keep: bool, zeroes: bool, now: int):
        """ext4_zero_range (ZERO_RANGE; WRITE_ZEROES with ``zeroes``). Returns (ok, now)."""
        m = self.mounts[ino.fs]
        first, last = offset >> 12, _pages(end)
        new_size = None if keep or end <= ino.size else end
        engine = self.dev("ext4_write_zeroes" if zeroes else "ext4_zero_range")
        if engine and not zeroes:
            now = self._truncate_pages(ino, first, last, now)
            self._punch(ino, first, last)
            if last - first > m.free:
                return False, now
            for i in range(first, last):
                ino.blocks[i] = BLK_UNWRITTEN
            m.free -= last - first
            self._grow(ino, new_size, last)
            return True, now
        if engine:
            holes = [i for i in range(first, last) if ino.blocks.get(i, BLK_HOLE) == BLK_HOLE]
            if len(holes) > m.free:
                return False, now
            for i in holes:
                ino.blocks[i] = BLK_UNWRITTEN
            m.free -= len(holes)
            nz = [i for i in range(first, last) if ino.blocks[i] == BLK_UNWRITTEN]
            for i in nz:
                ino.blocks[i] = BLK_WRITTEN
            now = self._zero_out(m, now, len(nz))
            self._grow(ino, new_size, last)
            return True, now
        # Linux: the unaligned edges are preallocated (unwritten), the interior's pages dropped and
        # its blocks converted to unwritten (ZERO_RANGE) or zeroed on the disk (WRITE_ZEROES)
        if offset & 4095 or end & 4095:
            if not self._alloc_unwritten(ino, first, last, new_size):
                return False, now
        a, b = _pages(offset), end >> 12
        if b <= a:
            return True, now
        now = self._truncate_pages(ino, a, b, now)
        nz = 0
        ok = True
        for i in range(a, b):
            s = ino.blocks.get(i, BLK_HOLE)
            if s == BLK_HOLE:
                if m.free <= 0:
                    ok = False
                    break
                m.free -= 1
            ino.blocks[i] = BLK_WRITTEN if zeroes else BLK_UNWRITTEN
            nz += 1
        if zeroes:
            now = self._zero_out(m, now, nz)
        if ok or nz:
            self._grow(ino, new_size, last if ok else a + nz)
        return ok, now

    def _zero_out(self, m: Mount, now: int, npages: int) -> int:
        """The device writes zeroes over ``npages`` blocks (one request; REQ_OP_WRITE_ZEROES is
        not counted in pgpgout)."""
        if npages == 0:
            return now
        start = max(now, m.disk_free_at)
        m.disk_free_at = start + m.wr_lat + npages * m.wr_page
        m.bytes_written += npages * PAGE
        return m.disk_free_at

    def _falloc_tmpfs(self, ino: Inode, m: int, offset: int, end: int, keep: bool, now: int):
        """shmem_fallocate: PUNCH_HOLE frees the pages inside the range; otherwise a page for every
        index of the range, all or nothing. Returns (ok, now)."""
        if m == FALLOC_FL_PUNCH_HOLE:
            return True, self._punch_hole(ino, offset, end, now)
        mnt = self.mounts[ino.fs]
        first, last = offset >> 12, _pages(end)
        undo = not self.dev("tmpfs_fallocate_enospc_keeps_pages")
        if undo and last - first > mnt.blocks:
            return False, now                      # "avoid a swapstorm if len is impossible"
        added = []
        mine = set()                               # folios this call added (they stay !uptodate)
        for index in range(first, last):
            if index in ino.pages:
                page = ino.pages[index]
                if id(page) in mine or (page.huge >= 0 and index != page.huge
                                        and self.dev("huge_falloc_head_only")):
                    continue
                page.falloc = False                # an earlier fallocate's folio is initialised now
                continue
            if mnt.free <= 0:
                if undo:                           # shmem_undo_range of the folios it added
                    for i in added:
                        self._remove_page(ino, i)
                return False, now
            page = None
            if self.huge_wanted(ino, index, end, "write"):
                page, now = self._alloc_huge(ino, index, "write", now)
            if page is None:
                now += self.c["alloc"] + self.c["clear"]
                page = self._alloc_page(ino, index)
            page.falloc = True
            mine.add(id(page))
            added.append(index)
        if not keep and end > ino.size:
            ino.size = end
        return True, now

    # ---- sysctl, sleep --------------------------------------------------------------------------------------------
    def write_sysctl(self, pid: int, name: str, value) -> None:
        key = name.removeprefix("/proc/sys/").replace("/", ".")
        try:
            v = int(str(value).strip())
        except ValueError:
            raise _err(errno.EINVAL, f"write {value!r} to {name}") from None
        if key != "vm.drop_caches":
            raise NotImplementedError(f"{key}: only vm.drop_caches is modelled")
        if not 1 <= v <= (4 if self.kernel >= 315 else 3):
            raise _err(errno.EINVAL, f"write {value!r} to {name}")
        now = self._begin(pid)
        if v & 1:
            dropped = 0
            for li in (LRU_INACTIVE_FILE, LRU_ACTIVE_FILE):
                for key2 in list(self.lru[li]):
                    ino = self.inodes[key2[0]]
                    page = ino.pages[key2[1]]
                    if not page.dirty and not page.writeback:
                        self._remove_page(ino, key2[1])
                        dropped += page.nr
            self.vm["drop_pagecache"] += 1
            now += dropped * self.c["reclaim_page"]
        if v & 2:
            for ino in self.inodes:
                pinned = self.fstype(ino) in MEMFS and not self.dev("drop_slab_memfs")
                if ino.alive and ino.dcache and ino.refs == 0 and not ino.pages and not pinned:
                    ino.dcache = False
                    self.slab_objects -= 1
            self.vm["drop_slab"] += 1
        self._end(pid, now)
        if self.kernel >= 315:
            if not self.stfu:
                self.log.append(f"{self.tasks[pid].comm} ({pid}): drop_caches: {v}")
            self.stfu |= v & 4

    def nanosleep(self, pid: int, ns: int) -> None:
        t = self.tasks[pid]
        t.clock += ns * 1000
        self._background(t.clock)
        self.now = max(self.now, t.clock)

    # ---- observables -----------------------------------------------------------------------------------------------
    def nr_file_pages(self) -> int:
        return sum(len(i.pages) for i in self.inodes)

    def _free_pages(self) -> int:
        return self.total_pages - self.nr_file_pages() - self.anon_pages

    def _huge_counts(self) -> dict:
        """PMD-sized folios: (tmpfs, other) folios, and those a PMD maps (the mapping layer's)."""
        out = {"nr_shmem_hugepages": 0, "nr_file_hugepages": 0}
        for i in self.inodes:
            n = len(self.huge_folios(i))
            out["nr_shmem_hugepages" if self.fstype(i) == "tmpfs" else "nr_file_hugepages"] += n
        out.update(self._pmd_mapped_counts())
        return out

    def _pmd_mapped_counts(self) -> dict:
        return {"nr_shmem_pmdmapped": 0, "nr_file_pmdmapped": 0}

    def _nr_mapped(self) -> int:
        return 0

    def _slab_pages(self) -> int:
        if self.dev("slab_units"):
            return (self.slab_objects * SLAB_BYTES_PER_FILE // 1024 + 3) // 4
        return _pages(self.slab_objects * SLAB_BYTES_PER_FILE)

    def _slab_kb(self) -> int:
        if self.dev("slab_units"):
            return self.slab_objects * SLAB_BYTES_PER_FILE // 1024
        return 4 * self._slab_pages()

    def _lru_pages(self, li: int) -> int:
        """Pages on list ``li``: each folio there counts all its pages (lru_zone_size)."""
        return sum(self.inodes[i].pages[x].nr for i, x in self.lru[li])

    def meminfo(self) -> dict:
        free = self._free_pages()
        file_lru = self._lru_pages(LRU_INACTIVE_FILE) + self._lru_pages(LRU_ACTIVE_FILE)
        slab = self._slab_pages()
        avail = max(0, free - self.wmark_high + file_lru - min(file_lru // 2, self.wmark_low)
                    + slab - min(slab // 2, self.wmark_low))
        shmem = sum(len(i.pages) for i in self.inodes if self.fstype(i) == "tmpfs")
        unevictable = sum(len(i.pages) for i in self.inodes if self.fstype(i) == "ramfs")
        h = self._huge_counts()
        return {"MemTotal": self.total_pages * 4, "MemFree": free * 4, "MemAvailable": avail * 4,
                "Buffers": 0, "Cached": self.nr_file_pages() * 4,
                "Active(file)": self._lru_pages(LRU_ACTIVE_FILE) * 4,
                "Inactive(file)": self._lru_pages(LRU_INACTIVE_FILE) * 4,
                "Unevictable": unevictable * 4, "Dirty": self.vm["nr_dirty"] * 4,
                "Writeback": self.vm["nr_writeback"] * 4, "Mapped": self._nr_mapped() * 4,
                "Shmem": shmem * 4, "KReclaimable": self._slab_kb(), "SReclaimable": self._slab_kb(),
                "AnonPages": self.anon_pages * 4,
                "ShmemHugePages": h["nr_shmem_hugepages"] * 2048,
                "ShmemPmdMapped": h["nr_shmem_pmdmapped"] * 2048,
                "FileHugePages": h["nr_file_hugepages"] * 2048,
                "FilePmdMapped": h["nr_file_pmdmapped"] * 2048}

    def vmstat(self) -> dict:
        d = dict(self.vm)
        d["nr_free_pages"] = self._free_pages()
        d["nr_file_pages"] = self.nr_file_pages()
        d["nr_inactive_file"] = self._lru_pages(LRU_INACTIVE_FILE)
        d["nr_active_file"] = self._lru_pages(LRU_ACTIVE_FILE)
        d["nr_shmem"] = sum(len(i.pages) for i in self.inodes if self.fstype(i) == "tmpfs")
        d["nr_unevictable"] = sum(len(i.pages) for i in self.inodes if self.fstype(i) == "ramfs")
        d["nr_slab_reclaimable"] = self._slab_pages()
        d["nr_mapped"] = self._nr_mapped()
        d["nr_anon_pages"] = self.anon_pages
        d.update(self._huge_counts())
        return d

    def fs_stats(self, path: str) -> dict:
        m = self.mounts[self.mount_index[path]]
        return {"fstype": m.fstype, "blocks": m.blocks, "free_blocks": m.free,
                "bytes_read": m.bytes_read, "bytes_written": m.bytes_written,
                "pages_lost": m.pages_lost}

    def dmesg(self) -> list:
        return list(self.log)

    def clock_ps(self, pid: int) -> int:
        return self.tasks[pid].clock

    def page_flags(self) -> dict:
        """(ino, index) -> (dirty, writeback, referenced, active, mapped) of every cached page."""
        return {(i.ino, x): (p.dirty, p.writeback, p.referenced, p.active, p.mapped)
                for i in self.inodes for x, p in i.pages.items()}

    def lru_lists(self) -> dict:
        """Every list in order, the unevictable one sorted (Linux keeps no order there)."""
        return {li: sorted(keys) if li == LRU_UNEVICTABLE else list(keys)
                for li, keys in self.lru.items()}

    def inode_table(self) -> list:
        """Per inode: alive, then (size, nlink, refs, dcache, nrpages, nrdirty, non-hole blocks)."""
        return [(i.alive,) + ((i.size, i.nlink, i.refs, i.dcache, len(i.pages), i.nrdirty,
                               dict(sorted(i.blocks.items()))) if i.alive else ())
                for i in self.inodes]

    def invariant_breaks(self) -> list:
        """States the engine's own check_files rejects that a deviation produced (pages beyond EOF
        of a block filesystem, pages of a freed inode)."""
        out = []
        for i in self.inodes:
            if not i.alive and i.pages:
                out.append(f"inode {i.ino} freed with {len(i.pages)} pages cached")
            elif self.fstype(i) in BLOCKFS and any(x * PAGE >= max(i.size, 1) for x in i.pages):
                out.append(f"inode {i.ino} caches a page beyond EOF")
        return out

    def check(self) -> None:
        """The reference's own consistency."""
        keys = {(i.ino, x) for i in self.inodes for x, p in i.pages.items() if p.huge in (-1, x)}
        for i in self.inodes:
            for b, nr in self.large_folios(i).items():
                assert b % nr == 0 and all(i.pages.get(b + k) is i.pages[b]
                                           for k in range(nr)), f"folio {b} of {i.ino}"
        listed = [k for li in LISTS for k in self.lru[li]]
        assert len(listed) == len(set(listed)) and set(listed) == keys, "LRU lists vs cache"
        for li in LISTS:
            for k in self.lru[li]:
                ino = self.inodes[k[0]]
                assert self._list_of(ino, ino.pages[k[1]]) == li, f"{k} on list {li}"
        assert self.vm["nr_dirty"] == sum(i.nrdirty for i in self.inodes)
        for i in self.inodes:
            assert i.nrdirty == sum(p.dirty for p in i.pages.values()) or self.fstype(i) in MEMFS
        assert self.vm["nr_writeback"] == sum(self.inodes[i].pages[x].nr for (i, x), _ in self.ring)
        for k, m in enumerate(self.mounts):
            used = sum(len(i.blocks) if m.fstype in BLOCKFS else len(i.pages)
                       for i in self.inodes if i.fs == k and (i.alive or m.fstype in MEMFS))
            assert used + m.free == m.blocks, f"{m.path}: blocks"
        assert self.slab_objects == sum(i.dcache for i in self.inodes if i.alive)


VMSTAT_KEYS = ("nr_dirty", "nr_writeback", "nr_dirtied", "nr_written", "pgpgin", "pgpgout",
               "pgactivate", "pgdeactivate", "pgrefill", "pgscan_kswapd", "pgscan_direct",
               "pgsteal_kswapd", "pgsteal_direct", "pgscan_file", "pgsteal_file", "pgrotated",
               "drop_pagecache", "drop_slab", "pageoutrun", "allocstall_normal", "pgalloc_normal",
               "pgfree", "nr_mapped", "thp_file_alloc", "thp_file_fallback", "thp_file_mapped",
               "thp_split_pmd", "thp_split_page", "thp_write_alloc", "thp_write_alloc_failed",
               "thp_read_alloc", "thp_read_alloc_failed", "pgmajfault")
