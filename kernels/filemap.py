"""The page cache's index (mm/filemap.c): which frame holds page ``index`` of file ``ino``.

Linux keeps one xarray per address_space. We keep one open-addressing hash table for the whole
machine, ``pc`` (int32 slots holding a pfn, -1 when empty), sized to a power of two at least twice
the pages it holds. A slot stores only the frame number: the key, (inode, index), lives in the
frame's own metadata (``fr32[FR_OWNER]`` and ``fr_idx``, as ``folio->mapping`` and
``folio->index`` do), so the table costs 4 bytes a slot and a lookup checks the frame it finds.
Linear probing, with backward-shift deletion instead of tombstones, keeps probe lengths short
however long a run lasts. The hash keeps neighbours together: the 16 pages of an aligned 16-page
block of a file share one hashed home, each at its own offset in a 64-byte line of slots, so a
walk along a file (a sequential read, fault-around, readahead, writeback) meets one new line of
the table every 16 pages instead of one every page. Every subpage of a large folio has its
own slot (as the 2013 huge page cache gave a huge page 512 radix-tree slots), so a lookup of any
index finds its subpage.

The same functions serve the simulated machine and ``mmcore.pagecache.replay``.
"""
from .borrow import borrow, prefetch
from .consts import (
    C_HPC_MODEL,
    C_KERNEL,
    FST_EXT4,
    FST_XFS,
    HPC_MAINLINE,
    FILE_ENTIRE,
    FOLIO_ORDER_MASK,
    FOLIO_ORDER_SHIFT,
    HPAGE_PMD_NR,
    HPAGE_PMD_ORDER,
    PG_file_thp,
    PG_lru,
    VS_NR_FILE_HUGEPAGES,
    VS_NR_FILE_PMDMAPPED,
    VS_NR_SHMEM_HUGEPAGES,
    VS_NR_SHMEM_PMDMAPPED,
    VS_THP_SPLIT_PAGE,
    VS_THP_SPLIT_PMD,
    PTE_PFN_MASK,
    VS_NR_MAPPED,
    MM_SHMEMPAGES,
    MM_FILEPAGES,
    FG_PC_USED,
    FR_MAPCOUNT,
    FR_NEXT,
    FR_OWNER,
    FR_PREV,
    FS_FREE,
    FS_TYPE,
    FST_RAMFS,
    FST_TMPFS,
    I_DIRTIED_WHEN,
    I_FS,
    I_NRDIRTY,
    I_NRPAGES,
    I_PAGES_END,
    PG_dirty,
    PG_head,
    PG_swapbacked,
    PG_unevictable,
    PG_ramfs,
    PG_mlocked,
    VS_UNEVICTABLE_PGS_CULLED,
    VS_UNEVICTABLE_PGS_CLEARED,
    POLICY_LINUX,
    VS_NR_DIRTIED,
    VS_NR_DIRTY,
    VS_NR_FILE_PAGES,
    VS_NR_SHMEM,
    VS_NR_UNEVICTABLE,
    VS_NR_MLOCK,
    VS_PGFREE,
)
from .jit import kernel
from .lru import folio_add_lru, folio_del_lru, folio_mark_accessed, isolate_victim
from .page_alloc import free_pages
from .page_counter import CHARGE_FILE, CHARGE_SHMEM, memcg_uncharge_folio
from .workingset import workingset_refault

# Fibonacci hashing constants (2^64 / golden ratio, and a second odd multiplier), as int64.
_H1 = -7046029254386353131        # 0x9E3779B97F4A7C15
_H2 = -4417276706812531889        # 0xC2B2AE3D27D4EB4F
_AHEAD = 16                       # requests between a slot's prefetch and its use


@kernel(inline="always")
def pc_home(ino, index, mask):
    """The home slot of (ino, index): the high bits of a multiplicative hash of the page's
    16-page block, times 16, plus the page's place in its block (``mask`` + 1 is a power of two
    of at least 16 slots)."""
    h = (index >> 4) * _H1 + ino * _H2
    return (((h >> 32) << 4) | (index & 15)) & mask


@kernel(inline="always")
def filemap_get_folio(pc, fr32, fr_idx, ino, index):
    """The frame caching page ``index`` of file ``ino``, or -1 (``filemap_get_entry``)."""
    mask = pc.shape[0] - 1
    s = pc_home(ino, index, mask)
    while True:
        pfn = pc[s]
        if pfn < 0:
            return -1
        if fr_idx[pfn] == index and fr32[FR_OWNER, pfn] == ino:
            return pfn
        s = (s + 1) & mask


@kernel(inline="always")
def filemap_insert(pc, fr32, fr_idx, pfn):
    """Enter frame ``pfn`` under the key its metadata holds (the caller checked it is absent and
    that the table has room: fewer than half its slots in use after the insert)."""
    mask = pc.shape[0] - 1
    s = pc_home(fr32[FR_OWNER, pfn], fr_idx[pfn], mask)
    while pc[s] >= 0:
        s = (s + 1) & mask
    pc[s] = pfn


@kernel(inline="always")
def filemap_delete(pc, fr32, fr_idx, pfn):
    """Remove frame ``pfn`` (which must be present) and shift later entries of its probe run back,
    so no tombstone is left behind."""
    mask = pc.shape[0] - 1
    i = pc_home(fr32[FR_OWNER, pfn], fr_idx[pfn], mask)
    while pc[i] != pfn:
        i = (i + 1) & mask
    j = i
    while True:
        j = (j + 1) & mask
        q = pc[j]
        if q < 0:
            break
        k = pc_home(fr32[FR_OWNER, q], fr_idx[q], mask)
        # move q back to the hole at i unless its home lies cyclically in (i, j]
        if (j > i and (k <= i or k > j)) or (j < i and (k <= i and k > j)):
            pc[i] = q
            i = j
    pc[i] = -1


@kernel
def pc_rehash(old, new, fr32, fr_idx):
    """Move every entry of ``old`` into the empty, larger table ``new``."""
    for s in range(old.shape[0]):
        pfn = old[s]
        if pfn >= 0:
            filemap_insert(new, fr32, fr_idx, pfn)


@kernel
def replay_requests(pages, policy, pc, fr32, fr_idx, fr_flags, fr_order, lru, vmstat, hit_out):
    """Replay page-cache requests against a cache of ``fr_idx.shape[0] - 1`` frames: each request
    is looked up (``filemap_get_folio``); a hit is an access (``folio_mark_accessed``), a miss
    reclaims a frame when none is free (``isolate_victim``) and adds the page to the cache and the
    LRU. Under the Linux policy a miss also marks the new folio accessed, as ``filemap_read`` does;
    the reference-bit policies start new pages unreferenced (libCacheSim's ``init_freq=0``).
    Page numbers are any int64 values, keyed as the pages of file 0. Returns the hit count;
    ``hit_out`` (length 0 or len(pages)) receives 1 for each hit."""
    # borrowed views: no reference counting of arrays across the inlined helpers (see borrow.py)
    pages = borrow(pages)
    pc = borrow(pc)
    fr32 = borrow(fr32)
    fr_idx = borrow(fr_idx)
    fr_flags = borrow(fr_flags)
    fr_order = borrow(fr_order)
    lru = borrow(lru)
    vmstat = borrow(vmstat)
    hit_out = borrow(hit_out)
    capacity = fr_idx.shape[0] - 1
    used = 0
    hits = 0
    keep = hit_out.shape[0] > 0
    n = pages.shape[0]
    mask = pc.shape[0] - 1
    owner = borrow(fr32[FR_OWNER])
    nxt = borrow(fr32[FR_NEXT])
    prv = borrow(fr32[FR_PREV])
    for r in range(n):
        # the trace is known ahead: start loading the slots and frames later requests will need
        if r + _AHEAD < n:
            prefetch(pc, pc_home(0, pages[r + _AHEAD], mask))
            q = pc[pc_home(0, pages[r + _AHEAD // 2], mask)]
            if q >= 0:
                prefetch(fr_idx, q)
                prefetch(owner, q)
                prefetch(nxt, q)
                prefetch(prv, q)
        index = pages[r]
        pfn = filemap_get_folio(pc, fr32, fr_idx, 0, index)
        if pfn >= 0:
            hits += 1
            if keep:
                hit_out[r] = 1
            folio_mark_accessed(policy, vmstat, lru, fr32, fr_flags, 0, pfn, 1)
            continue
        if used < capacity:
            used += 1
            pfn = used
        else:
            pfn = isolate_victim(policy, vmstat, lru, fr32, fr32, fr_flags, fr_order, 0, 1 << 62, False)
            filemap_delete(pc, fr32, fr_idx, pfn)
            fr_flags[pfn] = 0
        fr32[FR_OWNER, pfn] = 0
        fr_idx[pfn] = index
        filemap_insert(pc, fr32, fr_idx, pfn)
        folio_add_lru(lru, fr32, fr_flags, 0, pfn, 1)
        if policy == POLICY_LINUX:
            # a read marks the folio it copies from, the one it just brought in too (filemap_read)
            folio_mark_accessed(policy, vmstat, lru, fr32, fr_flags, 0, pfn, 1)
    return hits


# ---- page-cache pages of the simulated machine ------------------------------------------------

@kernel(inline="always")
def charge_kind(fs, ino, ii):
    """How a page of inode ``ii`` is charged: shmem (tmpfs) or file (ramfs counts as file)."""
    return CHARGE_SHMEM if fs[FS_TYPE, ino[I_FS, ii]] == FST_TMPFS else CHARGE_FILE


@kernel
def filemap_add_page(vmstat, fr32, fr_idx, fr_flags, fr_memcg, pc, lru, fgs, fs, ino, ii, index,
                     pfn, gs, shadow, read):
    """``filemap_add_folio`` + ``folio_add_lru`` for a freshly allocated order-0 frame: index it,
    account it and put it on its LRU list (the caller checked the index has room). The page's
    shadow entry goes; for a ``read`` it decides whether this is a refault of the workingset
    (``workingset_refault``: the page joins the active list). Returns True when the page was
    in the workingset when evicted (its read is a memory stall)."""
    fr32[FR_OWNER, pfn] = ii
    fr32[FR_MAPCOUNT, pfn] = 0
    fr_idx[pfn] = index
    t = fs[FS_TYPE, ino[I_FS, ii]]
    f = PG_head
    if t == FST_TMPFS or t == FST_RAMFS:
        f |= PG_swapbacked
        if t == FST_RAMFS:
            f |= PG_unevictable | PG_ramfs           # lru_add culls it: mapping_unevictable
            vmstat[VS_NR_UNEVICTABLE] += 1
            vmstat[VS_UNEVICTABLE_PGS_CULLED] += 1
        vmstat[VS_NR_SHMEM] += t == FST_TMPFS
        fs[FS_FREE, ino[I_FS, ii]] -= 1          # the page is the file's storage (size= limit)
    fr_flags[pfn] = f
    filemap_insert(pc, fr32, fr_idx, pfn)
    fgs[FG_PC_USED] += 1
    ino[I_NRPAGES, ii] += 1
    if index >= ino[I_PAGES_END, ii]:
        ino[I_PAGES_END, ii] = index + 1
    vmstat[VS_NR_FILE_PAGES] += 1
    restore = workingset_refault(gs, vmstat, lru, shadow, ino, fr_flags, fr_memcg, ii, index, pfn,
                                 read)
    folio_add_lru(lru, fr32, fr_flags, fr_memcg[pfn], pfn, 1)
    return restore


@kernel
def filemap_remove_page(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pc, lru,
                        fgs, fs, ino, pfn):
    """``__filemap_remove_folio`` and the free: unindex, unaccount, take off the LRU and return the
    frame to the buddy allocator. The page must be unmapped and not under writeback; a dirty page
    (truncation) is cleaned first."""
    ii = fr32[FR_OWNER, pfn]
    f = fr_flags[pfn]
    memcg_uncharge_folio(gs, fr32, pfn, 1, charge_kind(fs, ino, ii))
    if f & PG_dirty:
        account_page_cleaned(vmstat, fr_flags, fs, ino, ii, pfn)
    filemap_delete(pc, fr32, fr_idx, pfn)
    fgs[FG_PC_USED] -= 1
    folio_del_lru(lru, fr32, fr_flags, fr_memcg[pfn], pfn, 1)
    ino[I_NRPAGES, ii] -= 1
    vmstat[VS_NR_FILE_PAGES] -= 1
    if f & PG_mlocked:
        vmstat[VS_NR_MLOCK] -= 1                 # __page_cache_release of a still mlocked page
        vmstat[VS_UNEVICTABLE_PGS_CLEARED] += 1
    if f & PG_unevictable:
        vmstat[VS_NR_UNEVICTABLE] -= 1
    if f & PG_swapbacked:
        if not f & PG_ramfs:
            vmstat[VS_NR_SHMEM] -= 1
        fs[FS_FREE, ino[I_FS, ii]] += 1          # tmpfs/ramfs: the page was the file's storage
    fr_flags[pfn] = 0
    fr32[FR_OWNER, pfn] = 0
    fr_idx[pfn] = 0
    vmstat[VS_PGFREE] += 1
    free_pages(gs, fr32, fr_flags, fr_order, pb_mt, pfn, 0)


@kernel(inline="always")
def account_page_dirtied(vmstat, fr_flags, fs, ino, ii, pfn, now):
    """``folio_mark_dirty`` on the folio whose head is ``pfn``, of a filesystem that writes back
    (tmpfs and ramfs pages are never counted as Dirty): every page of it counts. Returns True if
    it was clean."""
    if fr_flags[pfn] & PG_dirty:
        return False
    fr_flags[pfn] |= PG_dirty
    if fr_flags[pfn] & PG_swapbacked:
        return True
    nr = file_folio_nr(fr_flags, pfn)
    vmstat[VS_NR_DIRTY] += nr
    vmstat[VS_NR_DIRTIED] += nr
    if ino[I_NRDIRTY, ii] == 0:
        ino[I_DIRTIED_WHEN, ii] = now
    ino[I_NRDIRTY, ii] += nr
    return True


@kernel(inline="always")
def account_page_cleaned(vmstat, fr_flags, fs, ino, ii, pfn):
    fr_flags[pfn] &= ~PG_dirty
    if fr_flags[pfn] & PG_swapbacked:
        return
    nr = file_folio_nr(fr_flags, pfn)
    vmstat[VS_NR_DIRTY] -= nr
    ino[I_NRDIRTY, ii] -= nr
    if ino[I_NRDIRTY, ii] == 0:
        ino[I_DIRTIED_WHEN, ii] = -1


# ---- file pages mapped by PTEs and PMDs (mm/rmap.c for file folios) ----------------------------
# A page counts in nr_mapped while a PTE maps it or a PMD maps its folio (NR_FILE_MAPPED counts
# pages, each once). The entire (PMD) mapcount of a page-cache THP lives in page[1]'s FILE_ENTIRE.

@kernel(inline="always")
def large_folios(cfg, t):
    """Whether files of filesystem type ``t`` get large page-cache folios (writes, readahead,
    faults), in mainline's huge page cache: XFS from 5.18 ("xfs: Support large folios":
    ``xfs_setup_inode`` calls ``mapping_set_large_folios``), ext4 from 6.16
    (``ext4_set_inode_mapping_order``)."""
    if cfg[C_HPC_MODEL] != HPC_MAINLINE:
        return False
    if t == FST_XFS:
        return cfg[C_KERNEL] >= 518
    return t == FST_EXT4 and cfg[C_KERNEL] >= 616


@kernel(inline="always")
def file_folio_order(fr_flags, pfn):
    """The order of the page-cache folio holding frame ``pfn`` (0: an order-0 page)."""
    return (fr_flags[pfn] >> FOLIO_ORDER_SHIFT) & 15


@kernel(inline="always")
def file_folio_nr(fr_flags, pfn):
    """Pages in the page-cache folio holding frame ``pfn``."""
    return 1 << ((fr_flags[pfn] >> FOLIO_ORDER_SHIFT) & 15)


@kernel(inline="always")
def file_folio_head(fr_flags, pfn):
    """The head frame of the page-cache folio holding frame ``pfn`` (folios are naturally
    aligned, and every frame of a large one carries its order)."""
    return pfn & ~((1 << ((fr_flags[pfn] >> FOLIO_ORDER_SHIFT) & 15)) - 1)


@kernel(inline="always")
def file_folio_pmd(fr_flags, pfn):
    """Whether frame ``pfn`` belongs to a PMD-sized page-cache folio (folio_test_pmd_mappable)."""
    return file_folio_order(fr_flags, pfn) == HPAGE_PMD_ORDER


@kernel(inline="always")
def file_entire_mapcount(fr32, fr_flags, pfn):
    """PMD mappings of the folio holding ``pfn`` (0 unless it is PMD-sized)."""
    if file_folio_pmd(fr_flags, pfn):
        return fr32[FILE_ENTIRE, file_folio_head(fr_flags, pfn) + 1]
    return 0


@kernel(inline="always")
def file_folio_mapped(fr32, fr_flags, head):
    """folio_mapped: any page of the folio at ``head`` mapped by a PTE, or the folio by a PMD."""
    nr = file_folio_nr(fr_flags, head)
    if nr == 1:
        return fr32[FR_MAPCOUNT, head] > 0
    if file_entire_mapcount(fr32, fr_flags, head) > 0:
        return True
    for i in range(nr):
        if fr32[FR_MAPCOUNT, head + i] > 0:
            return True
    return False


@kernel(inline="always")
def file_rss(mm, mmi, fr_flags, pfn, delta):
    """mm_counter_file: tmpfs pages count in RssShmem, the rest (ramfs too) in RssFile."""
    if (fr_flags[pfn] & (PG_swapbacked | PG_ramfs)) == PG_swapbacked:
        mm[MM_SHMEMPAGES, mmi] += delta
    else:
        mm[MM_FILEPAGES, mmi] += delta


@kernel(inline="always")
def map_file_pte(vmstat, fr32, fr_flags, pt, mm, mmi, ppos, pfn, prot):
    """Install a PTE mapping page-cache page ``pfn`` (``folio_add_file_rmap_pte``)."""
    pt[ppos] = prot | (pfn << 12)
    if fr32[FR_MAPCOUNT, pfn] == 0 and file_entire_mapcount(fr32, fr_flags, pfn) == 0:
        vmstat[VS_NR_MAPPED] += 1
    fr32[FR_MAPCOUNT, pfn] += 1
    file_rss(mm, mmi, fr_flags, pfn, 1)


@kernel(inline="always")
def unmap_file_pte(vmstat, fr32, fr_flags, mm, mmi, pfn):
    """A PTE mapping page-cache page ``pfn`` went (``folio_remove_rmap_pte``); the page stays
    cached."""
    fr32[FR_MAPCOUNT, pfn] -= 1
    if fr32[FR_MAPCOUNT, pfn] == 0 and file_entire_mapcount(fr32, fr_flags, pfn) == 0:
        vmstat[VS_NR_MAPPED] -= 1
    file_rss(mm, mmi, fr_flags, pfn, -1)


@kernel
def _unmapped_subpages(fr32, head):
    n = 0
    for i in range(HPAGE_PMD_NR):
        if fr32[FR_MAPCOUNT, head + i] == 0:
            n += 1
    return n


@kernel
def map_file_pmd(vmstat, fr32, fr_flags, mm, mmi, head):
    """``folio_add_file_rmap_pmd``: one more PMD maps the page-cache THP at ``head``."""
    fr32[FILE_ENTIRE, head + 1] += 1
    if fr32[FILE_ENTIRE, head + 1] == 1:
        vmstat[VS_NR_MAPPED] += _unmapped_subpages(fr32, head)
        if fr_flags[head] & PG_swapbacked and not fr_flags[head] & PG_ramfs:
            vmstat[VS_NR_SHMEM_PMDMAPPED] += 1
        else:
            vmstat[VS_NR_FILE_PMDMAPPED] += 1
    file_rss(mm, mmi, fr_flags, head, HPAGE_PMD_NR)


@kernel
def unmap_file_pmd(vmstat, fr32, fr_flags, mm, mmi, head):
    """``folio_remove_rmap_pmd`` for a page-cache THP: the folio stays cached."""
    fr32[FILE_ENTIRE, head + 1] -= 1
    if fr32[FILE_ENTIRE, head + 1] == 0:
        vmstat[VS_NR_MAPPED] -= _unmapped_subpages(fr32, head)
        if fr_flags[head] & PG_swapbacked and not fr_flags[head] & PG_ramfs:
            vmstat[VS_NR_SHMEM_PMDMAPPED] -= 1
        else:
            vmstat[VS_NR_FILE_PMDMAPPED] -= 1
    file_rss(mm, mmi, fr_flags, head, -HPAGE_PMD_NR)


@kernel
def zap_file_pmd(vmstat, fr32, fr_flags, pt, mm, mmi, pos, whole):
    """zap_huge_pmd, or __split_huge_pmd (``whole`` False: part of its range goes), of a PMD
    mapping a page-cache THP: either way the PMD is cleared (nothing was deposited for it) and
    the folio stays cached; its pages are faulted in again by PTEs."""
    head = (pt[pos] & PTE_PFN_MASK) >> 12
    pt[pos] = 0
    unmap_file_pmd(vmstat, fr32, fr_flags, mm, mmi, head)
    if not whole:
        vmstat[VS_THP_SPLIT_PMD] += 1


# ---- large page-cache folios (the huge page cache, and ext4's and XFS's large folios) ------------
# Every subpage keeps its own index entry, owner and index, as the 2013 series gave a huge page 512
# radix-tree slots; the folio sits on its LRU list once, by its head, counting all its pages, and
# its state (dirty, writeback, referenced, active) lives in the head.

@kernel(inline="always")
def _thp_counter(fr_flags, head):
    """The vmstat row counting a PMD-sized folio: nr_shmem_hugepages for tmpfs,
    nr_file_hugepages else."""
    if fr_flags[head] & PG_swapbacked and not fr_flags[head] & PG_ramfs:
        return VS_NR_SHMEM_HUGEPAGES
    return VS_NR_FILE_HUGEPAGES


@kernel
def filemap_add_large(vmstat, fr32, fr_idx, fr_flags, fr_memcg, pc, lru, fgs, fs, ino, ii, base,
                      head, order):
    """Add the freshly allocated block of ``order`` at ``head`` as pages [base, base + 2**order)
    of inode ``ii`` (the caller checked the range is empty, the index has room and, on a memory
    filesystem, that it has the blocks free), and put it on its LRU list."""
    filemap_index_large(vmstat, fr32, fr_idx, fr_flags, pc, fgs, fs, ino, ii, base, head, order)
    folio_add_lru(lru, fr32, fr_flags, fr_memcg[head], head, 1 << order)


@kernel
def filemap_index_large(vmstat, fr32, fr_idx, fr_flags, pc, fgs, fs, ino, ii, base, head, order):
    """``filemap_add_large`` without the LRU: index and account the folio (a read decides on its
    refault before it joins a list)."""
    nr = 1 << order
    t = fs[FS_TYPE, ino[I_FS, ii]]
    f = PG_file_thp | (order << FOLIO_ORDER_SHIFT)
    if t == FST_TMPFS or t == FST_RAMFS:
        f |= PG_swapbacked
        if t == FST_RAMFS:
            f |= PG_unevictable | PG_ramfs
            vmstat[VS_NR_UNEVICTABLE] += nr
            vmstat[VS_UNEVICTABLE_PGS_CULLED] += nr
        else:
            vmstat[VS_NR_SHMEM] += nr
        fs[FS_FREE, ino[I_FS, ii]] -= nr
    for i in range(nr):
        p = head + i
        fr32[FR_OWNER, p] = ii
        fr32[FR_MAPCOUNT, p] = 0
        fr_idx[p] = base + i
        fr_flags[p] = f
        filemap_insert(pc, fr32, fr_idx, p)
    fr_flags[head] = f | PG_head
    fr32[FILE_ENTIRE, head + 1] = 0
    fgs[FG_PC_USED] += nr
    ino[I_NRPAGES, ii] += nr
    if base + nr > ino[I_PAGES_END, ii]:
        ino[I_PAGES_END, ii] = base + nr
    vmstat[VS_NR_FILE_PAGES] += nr
    if order == HPAGE_PMD_ORDER:
        vmstat[_thp_counter(fr_flags, head)] += 1


@kernel
def filemap_remove_large(gs, vmstat, fr32, fr_idx, fr_flags, fr_order, fr_memcg, pb_mt, pc, lru,
                         fgs, fs, ino, head):
    """Remove and free a whole large page-cache folio (unmapped everywhere, not under
    writeback; a dirty one, truncated, is cleaned first)."""
    ii = fr32[FR_OWNER, head]
    f = fr_flags[head]
    order = file_folio_order(fr_flags, head)
    nr = 1 << order
    memcg_uncharge_folio(gs, fr32, head, nr, charge_kind(fs, ino, ii))
    if f & PG_dirty:
        account_page_cleaned(vmstat, fr_flags, fs, ino, ii, head)
    folio_del_lru(lru, fr32, fr_flags, fr_memcg[head], head, nr)
    if order == HPAGE_PMD_ORDER:
        vmstat[_thp_counter(fr_flags, head)] -= 1
    for i in range(nr):
        filemap_delete(pc, fr32, fr_idx, head + i)
    for i in range(nr):
        p = head + i
        fr_flags[p] = 0
        fr32[FR_OWNER, p] = 0
        fr32[FR_NEXT, p] = 0
        fr32[FR_PREV, p] = 0
        fr_idx[p] = 0
    fgs[FG_PC_USED] -= nr
    ino[I_NRPAGES, ii] -= nr
    vmstat[VS_NR_FILE_PAGES] -= nr
    if f & PG_unevictable:
        vmstat[VS_NR_UNEVICTABLE] -= nr
    if f & PG_swapbacked:
        if not f & PG_ramfs:
            vmstat[VS_NR_SHMEM] -= nr
        fs[FS_FREE, ino[I_FS, ii]] += nr
    vmstat[VS_PGFREE] += nr
    free_pages(gs, fr32, fr_flags, fr_order, pb_mt, head, order)


@kernel
def split_file_folio(vmstat, fr32, fr_flags, fr_order, fr_memcg, lru, head):
    """``split_folio`` of a large page-cache folio that no PMD maps: its pages become order-0
    folios with the head's state, PTE mappings untouched, each on the head's list (the head
    first, as ``lru_add_split_folio`` puts the tails after it). Returns False if a PMD still
    maps it. thp_split_page counts PMD-sized folios."""
    if fr32[FILE_ENTIRE, head + 1] != 0 and file_folio_pmd(fr_flags, head):
        return False
    order = file_folio_order(fr_flags, head)
    nr = 1 << order
    keep = fr_flags[head] & ~(PG_file_thp | PG_lru | FOLIO_ORDER_MASK)
    folio_del_lru(lru, fr32, fr_flags, fr_memcg[head], head, nr)
    if order == HPAGE_PMD_ORDER:
        vmstat[_thp_counter(fr_flags, head)] -= 1
        vmstat[VS_THP_SPLIT_PAGE] += 1
    fr32[FILE_ENTIRE, head + 1] = 0
    for i in range(nr - 1, -1, -1):
        p = head + i
        fr_order[p] = 0
        fr_flags[p] = keep
        folio_add_lru(lru, fr32, fr_flags, fr_memcg[p], p, 1)
    return True
