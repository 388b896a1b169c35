"""Invariant checks over a machine's state (used after every operation in the tests)."""
from __future__ import annotations

import numpy as np

from .kernels import consts as K


def _forder(flags):
    """The order a large page-cache folio's frames carry in their flags (0: not one)."""
    return (flags >> K.FOLIO_ORDER_SHIFT) & 15


def _fhead(flags, p):
    """The head of the page-cache folio holding frame(s) ``p``."""
    return p & ~((1 << _forder(flags[p])) - 1)


def check_invariants(m) -> None:
    """Raise AssertionError if the state is inconsistent.

    Frames are conserved (free + folios + page tables = total); the buddy lists are consistent;
    every leaf maps an allocated frame or a zero page; mapcounts equal the mappings; each mm's rss
    counters equal what its page tables map; page-table page counts agree.
    """
    s = m.state
    n = int(s.cfg[K.C_NR_FRAMES])
    hw = int(s.gs[K.G_HIGH_WATER])
    flags = s.fr_flags
    order = s.fr_order
    # the packed fields are views of fr32's FR_MEMCG row, not arrays of their own
    for name in ("fr_order", "fr_memcg", "pb_mt"):
        assert np.shares_memory(getattr(s, name), s.fr32[K.FR_MEMCG]), f"{name} is not a view of fr32"
    # free lists
    free = 0
    listed = np.zeros(n + 1, bool)
    for o in range(K.NR_PAGE_ORDERS):
        for mt in range(K.MIGRATE_PCPTYPES):
            li = o * K.MIGRATE_PCPTYPES + mt
            p = int(s.gs[K.G_FREE_HEAD + li])
            cnt = 0
            prev = -1
            while p >= 0:
                assert flags[p] & K.PG_buddy, f"listed pfn {p} lacks PG_buddy"
                assert order[p] == o, f"pfn {p} on order-{o} list has order {order[p]}"
                assert p % (1 << o) == 0, f"free block {p} misaligned for order {o}"
                assert p + (1 << o) <= hw, f"free block {p} above high water {hw}"
                assert int(s.pb_mt[p >> K.PAGEBLOCK_ORDER]) == mt, f"pfn {p} on wrong mt list"
                assert int(s.fr32[K.FR_PREV, p]) == prev
                assert not listed[p], f"pfn {p} listed twice"
                listed[p] = True
                cnt += 1
                free += 1 << o
                prev = p
                p = int(s.fr32[K.FR_NEXT, p])
            assert cnt == s.gs[K.G_FREE_COUNT + li], f"count mismatch on list ({o}, {mt})"
    free += n - hw
    assert free == s.gs[K.G_NR_FREE], f"free pages {free} != nr_free {s.gs[K.G_NR_FREE]}"
    # walk every frame below high water: free blocks, folios and tables tile it exactly
    used = tables = 0
    p = 0
    while p < hw:
        f = int(flags[p])
        if f & K.PG_buddy:
            assert listed[p], f"PG_buddy pfn {p} on no list"
            sz = 1 << int(order[p])
            # a free block is clean: allocations rely on it (prep_anon_folio writes only flags)
            assert not (flags[p + 1:p + sz]).any(), f"free block {p}: flags left on its pages"
            assert f == K.PG_buddy, f"free block {p}: flags {f:#x} left on its head"
            assert not s.fr32[K.FR_OWNER, p:p + sz].any(), f"free block {p}: owner left"
            assert not s.fr32[K.FR_MAPCOUNT, p:p + sz].any(), f"free block {p}: mapcount left"
            assert not s.fr_idx[p:p + sz].any(), f"free block {p}: index left"
            p += sz
        elif f & K.PG_pgtable:
            tables += 1
            p += 1
        elif f & K.PG_head:
            sz = 1 << int(order[p])
            if f & K.PG_file_thp:
                # a large page-cache folio: every frame flagged with its order, none a PG_tail
                # or PG_head
                assert sz > 1 and sz == 1 << _forder(f) and p % sz == 0, \
                    f"file folio {p}: order {order[p]}, flagged {_forder(f)}"
                t = flags[p + 1:p + sz]
                assert np.all(t & K.PG_file_thp) and not np.any(t & (K.PG_tail | K.PG_head)), \
                    f"file THP {p}: bad tails"
                assert np.all(_forder(t) == _forder(f)), f"file folio {p}: tails of another order"
                assert np.all(s.fr32[K.FR_OWNER, p:p + sz] == s.fr32[K.FR_OWNER, p]), \
                    f"file THP {p}: subpages of different files"
                assert np.array_equal(s.fr_idx[p:p + sz], s.fr_idx[p] + np.arange(sz)), \
                    f"file folio {p}: its pages' indexes are not consecutive"
                assert s.fr_idx[p] % sz == 0, f"file THP {p}: index {s.fr_idx[p]} not aligned"
            else:
                assert np.all(flags[p + 1:p + sz] & K.PG_tail), f"folio {p}: bad tails"
            used += sz
            p += sz
        else:
            raise AssertionError(f"pfn {p} is neither free, a folio nor a table (flags {f:#x})")
    assert free + used + tables == n, "frames not conserved"
    assert tables == int(s.vmstat[K.VS_NR_PAGE_TABLE_PAGES]), "table count"
    # mappings
    mapcount = np.zeros(n + 1, np.int64)
    entire = {}
    fentire: dict[int, int] = {}
    zero = n
    hz = int(s.gs[K.G_HUGE_ZERO_PFN])
    for ti in range(int(s.gs[K.G_NR_TASKS])):
        pass
    filemapped: dict[int, int] = {}
    swap_refs = np.zeros(s.swp.shape[1], np.int64)
    for mmi in range(int(s.gs[K.G_NR_MM])):
        if s.mm[K.MM_USERS, mmi] <= 0:
            continue
        anon = thp = swapents = 0
        for va, e in _leaves(m, mmi):
            if not e & (K._PAGE_PRESENT | K._PAGE_PROTNONE):
                off = ((~e) >> 9) & ((1 << 50) - 1)          # a swap entry (x86-64 layout)
                assert not e & K._PAGE_PSE and 1 <= off < s.swp.shape[1], \
                    f"mm {mmi}: bad swap entry {e:#x} at {va:#x}"
                swap_refs[off] += 1
                swapents += 1
                continue
            pfn = (e & K.PTE_PFN_MASK) >> 12
            if e & K._PAGE_PSE:
                assert va % K.HPAGE_PMD_SIZE == 0 and pfn % 512 == 0
                if e & K._PAGE_SPECIAL:
                    assert pfn == hz and not e & K._PAGE_RW
                    continue
                assert flags[pfn] & K.PG_head and order[pfn] == 9
                if flags[pfn] & K.PG_file_thp:
                    assert flags[pfn] & K.PG_lru, f"PMD at {va:#x} maps a file THP not in the cache"
                    fentire[pfn] = fentire.get(pfn, 0) + 1
                    filemapped[mmi] = filemapped.get(mmi, 0) + 512
                    continue
                entire[pfn] = entire.get(pfn, 0) + 1
                anon += 512
                thp += 1
                continue
            if e & K._PAGE_SPECIAL:
                assert pfn == zero and not e & K._PAGE_RW, f"bad zero-page pte at {va:#x}"
                continue
            assert flags[pfn] & (K.PG_head | K.PG_tail | K.PG_file_thp), \
                f"pte at {va:#x} maps a frame not in use ({pfn})"
            mapcount[pfn] += 1
            if flags[pfn] & (K.PG_anon | K.PG_tail):
                anon += 1
            else:
                hd = _fhead(flags, pfn)
                assert flags[hd] & K.PG_lru, f"pte at {va:#x} maps a file page not in the cache"
                filemapped[mmi] = filemapped.get(mmi, 0) + 1
        assert anon == s.mm[K.MM_ANONPAGES, mmi], f"mm {mmi}: RssAnon {s.mm[K.MM_ANONPAGES, mmi]} != mapped {anon}"
        assert filemapped.get(mmi, 0) == s.mm[K.MM_FILEPAGES, mmi] + s.mm[K.MM_SHMEMPAGES, mmi], \
            f"mm {mmi}: RssFile + RssShmem != file pages mapped"
        assert thp == s.mm[K.MM_ANON_THP, mmi]
        assert swapents == s.mm[K.MM_SWAPENTS, mmi], \
            f"mm {mmi}: VmSwap {s.mm[K.MM_SWAPENTS, mmi]} pages != swap entries {swapents}"
    _check_swap(s, swap_refs)
    inuse = (flags[:n] & (K.PG_head | K.PG_tail | K.PG_file_thp)) != 0
    anonish = inuse & ((flags[:n] & K.PG_hugezero) == 0)
    idx = np.nonzero(anonish)[0]
    assert np.array_equal(s.fr32[K.FR_MAPCOUNT, idx], mapcount[idx]), "mapcount mismatch"
    # memory cgroups: every user page is charged once, to its frame's memcg and the ancestors
    ncg = int(s.gs[K.G_NR_MEMCG])
    user = idx[(flags[idx] & K.PG_pgtable) == 0]          # page tables are not charged
    hz = int(s.gs[K.G_HUGE_ZERO_PFN])
    if hz >= 0:                                           # nor the huge zero folio's tails
        user = user[(user < hz) | (user >= hz + K.HPAGE_PMD_NR)]
    local = np.bincount(s.fr_memcg[user], minlength=ncg)
    assert local.shape[0] == ncg, "a frame charged to a memcg that does not exist"
    usage = local.copy()
    for c in range(ncg - 1, 0, -1):                      # parents have smaller ids
        usage[int(s.gs[K.G_MCG + c * K.NR_MC + K.MC_PARENT])] += usage[c]
    for c in range(ncg):
        got = int(s.gs[K.G_MCG + c * K.NR_MC + K.MC_USAGE])
        assert got == usage[c], f"memcg {c}: memory.current {got} pages != {usage[c]} charged"
    for head, cnt in entire.items():
        assert s.fr32[K.FR_OWNER, head + 1] == cnt, f"THP {head}: entire mapcount"
    fheads = np.nonzero((flags[:n] & (K.PG_file_thp | K.PG_head)) == (K.PG_file_thp | K.PG_head))[0]
    for head in fheads.tolist():
        assert s.fr32[K.FILE_ENTIRE, head + 1] == fentire.get(head, 0), f"file THP {head}: entire mapcount"
    v = s.vmstat
    fpmd = [h for h in fheads.tolist() if _forder(flags[h]) == K.HPAGE_PMD_ORDER]
    shmem_thp = [h for h in fpmd if flags[h] & K.PG_swapbacked and not flags[h] & K.PG_ramfs]
    assert v[K.VS_NR_SHMEM_HUGEPAGES] == len(shmem_thp), "nr_shmem_hugepages"
    assert v[K.VS_NR_FILE_HUGEPAGES] == len(fpmd) - len(shmem_thp), "nr_file_hugepages"
    pmd_mapped = [h for h in fheads.tolist() if fentire.get(h, 0) > 0]
    shmem_pmd = [h for h in pmd_mapped if h in set(shmem_thp)]
    assert v[K.VS_NR_SHMEM_PMDMAPPED] == len(shmem_pmd), "nr_shmem_pmdmapped"
    assert v[K.VS_NR_FILE_PMDMAPPED] == len(pmd_mapped) - len(shmem_pmd), "nr_file_pmdmapped"
    _check_khugepaged(s)


def _check_swap(s, refs: np.ndarray) -> None:
    """Every slot's count is the number of PTEs holding its entry; the free count, and each
    memcg's swap usage (hierarchical), follow from the counts."""
    count = s.swp[K.SWP_COUNT].astype(np.int64)
    assert count[0] == 0, "the swap header slot is in use"
    bad = np.nonzero(count != refs)[0]
    assert bad.size == 0, f"swap slot {bad[0]}: count {count[bad[0]]} != {refs[bad[0]]} PTEs"
    used = count > 0
    assert int(s.gs[K.G_NR_SWAP_FREE]) == int(s.cfg[K.C_SWAP_PAGES]) - int(used.sum()), \
        "nr_swap_pages != free slots"
    ncg = int(s.gs[K.G_NR_MEMCG])
    usage = np.bincount(s.swp[K.SWP_MEMCG][used], minlength=ncg)
    for c in range(ncg - 1, 0, -1):
        usage[int(s.gs[K.G_MCG + c * K.NR_MC + K.MC_PARENT])] += usage[c]
    for c in range(ncg):
        got = int(s.gs[K.G_MCG + c * K.NR_MC + K.MC_SWAP_USAGE])
        assert got == usage[c], f"memcg {c}: memory.swap.current {got} pages != {usage[c]} slots"


def _check_khugepaged(s) -> None:
    """khugepaged's list: an mm is on it exactly when MMF_VM_HUGEPAGE is set, in a unique
    enrolment order; the scan cursor is on a listed mm; the wakeup is armed only with work."""
    nmm = int(s.gs[K.G_NR_MM])
    seq = s.mm[K.MM_KH_SEQ, :nmm]
    flag = (s.mm[K.MM_FLAGS, :nmm] >> K.MMF_VM_HUGEPAGE) & 1
    assert np.array_equal(seq != 0, flag != 0), "MMF_VM_HUGEPAGE and khugepaged's list disagree"
    listed = seq[seq != 0]
    assert len(np.unique(listed)) == len(listed), "two mms share an enrolment number"
    assert listed.size == 0 or listed.max() <= s.gs[K.G_KH_SEQ]
    cur = int(s.gs[K.G_KH_MM])
    assert cur == -1 or seq[cur] != 0, f"khugepaged scans mm {cur}, which is not listed"
    assert s.gs[K.G_NEXT_EVENT] == min(s.gs[K.G_NEXT_SAMPLE], s.gs[K.G_KH_WAKE], s.gs[K.G_KC_WAKE])
    # the deferred split queue: linked both ways through page[2], exactly the THPs flagged
    # PG_deferred, each mapped; only 6.12+ (shrink_underused) queues THPs that are not partially
    # mapped
    heads = []
    p, prev = int(s.gs[K.G_DEFERRED_HEAD]), -1
    while p >= 0:
        f = int(s.fr_flags[p])
        assert f & K.PG_deferred, f"queued THP {p} is not flagged"
        assert s.fr_order[p] == K.HPAGE_PMD_ORDER and f & K.PG_head and f & K.PG_anon
        assert int(s.fr32[K.FR_PREV, p + 2]) == prev, f"queued THP {p}: bad back link"
        mc = s.fr32[K.FR_MAPCOUNT, p:p + K.HPAGE_PMD_NR]
        entire = int(s.fr32[K.FR_OWNER, p + 1])
        assert entire > 0 or (mc > 0).any(), f"queued THP {p} is not mapped at all"
        if not f & K.PG_partially_mapped:
            assert s.cfg[K.C_KERNEL] >= 612, f"THP {p} queued but not partially mapped"
        heads.append(p)
        prev, p = p, int(s.fr32[K.FR_NEXT, p + 2])
    assert prev == s.gs[K.G_DEFERRED_TAIL] and len(heads) == s.gs[K.G_DEFERRED_N]
    n = int(s.cfg[K.C_NR_FRAMES])
    flagged = np.nonzero(s.fr_flags[:n] & K.PG_deferred)[0]
    assert sorted(heads) == list(flagged), "PG_deferred and the queue disagree"
    partial = np.nonzero(s.fr_flags[:n] & K.PG_partially_mapped)[0]
    assert set(partial.tolist()) <= set(heads), "a partially mapped THP is not queued"


def _pgd_count(s) -> int:
    return int(np.sum(s.mm[K.MM_PGD, : int(s.gs[K.G_NR_MM])] >= 0))


def _leaves(m, mmi):
    from .kernels import proc as P
    s = m.state
    if s.mm[K.MM_PGD, mmi] < 0:
        return []
    b, c = int(s.mm[K.MM_VBASE, mmi]), int(s.mm[K.MM_VCOUNT, mmi])
    out = []
    for i in range(b, b + c):
        start, end = int(s.vma[K.V_START, i]), int(s.vma[K.V_END, i])
        cap = max(16, (end - start) >> 12)
        vas = np.zeros(cap, np.int64)
        ents = np.zeros(cap, np.int64)
        k = P.dump_leaves(s.cfg, s.pt, s.fr_idx, s.mm, mmi, start, end, vas, ents)
        out.extend(zip(vas[:k].tolist(), ents[:k].tolist()))
    return out


def check_files(m) -> None:
    """The file layer's invariants: the page-cache index, the LRU lists, dirty and writeback
    accounting, block counts and the slab count all agree with each other."""
    from .kernels.filemap import filemap_get_folio
    s, f = m.state, m.vfs.state
    flags, owner, idx = s.fr_flags, s.fr32[K.FR_OWNER], s.fr_idx
    pfns = f.pc[f.pc >= 0].astype(np.int64)
    assert len(pfns) == f.fgs[K.FG_PC_USED], "index count"
    assert len(set(pfns.tolist())) == len(pfns), "a frame indexed twice"
    nino = int(f.fgs[K.FG_NR_INODES])
    pages = np.zeros(nino, np.int64)
    dirty = np.zeros(nino, np.int64)
    for p in pfns.tolist():
        fl = int(flags[p])
        ii = int(owner[p])
        if fl & K.PG_file_thp:
            fl = int(flags[_fhead(flags, p)])  # a large folio's state lives in its head
        assert fl & K.PG_head and not fl & K.PG_anon, f"cached pfn {p}: flags {fl:#x}"
        assert f.ino[K.I_ALIVE, ii], f"cached pfn {p} of a freed inode {ii}"
        assert filemap_get_folio(f.pc, s.fr32, s.fr_idx, ii, int(idx[p])) == p, f"pfn {p} unreachable"
        assert fl & K.PG_lru, f"cached pfn {p} not on an LRU"
        assert int(idx[p]) * 4096 < max(int(f.ino[K.I_SIZE, ii]), 1) or fl & K.PG_swapbacked, \
            f"pfn {p}: page {int(idx[p])} beyond EOF of inode {ii}"
        pages[ii] += 1
        if fl & K.PG_dirty and not fl & K.PG_swapbacked:
            dirty[ii] += 1
            if f.fs[K.FS_TYPE, f.ino[K.I_FS, ii]] in K.DELALLOC_FSTYPES:   # ext4, XFS
                b = int(f.ino[K.I_BLK, ii]) + int(idx[p])
                assert int(f.ino[K.I_BLKCAP, ii]) > int(idx[p]) and f.blk[b] != K.BLK_HOLE, \
                    f"dirty delalloc-fs page {int(idx[p])} of inode {ii} has no block or reservation"
    alive = f.ino[K.I_ALIVE, :nino] != 0
    assert np.array_equal(pages[alive], f.ino[K.I_NRPAGES, :nino][alive]), "I_NRPAGES"
    assert np.array_equal(dirty[alive], f.ino[K.I_NRDIRTY, :nino][alive]), "I_NRDIRTY"
    for ii in np.nonzero(alive)[0]:
        assert (f.ino[K.I_DIRTIED_WHEN, ii] < 0) == (f.ino[K.I_NRDIRTY, ii] == 0), f"dirtied_when {ii}"
    v = s.vmstat
    assert v[K.VS_NR_FILE_PAGES] == len(pfns), "nr_file_pages"
    assert v[K.VS_NR_DIRTY] == dirty.sum(), "nr_dirty"
    wbheads = [p for p in pfns.tolist() if flags[p] & K.PG_writeback]
    assert all(_fhead(flags, p) == p for p in wbheads), "PG_writeback on a tail"
    wb = sum(1 << int(_forder(flags[p])) for p in wbheads)
    assert v[K.VS_NR_WRITEBACK] == wb, "nr_writeback"
    assert len(wbheads) == f.fgs[K.FG_WB_TAIL] - f.fgs[K.FG_WB_HEAD], "writeback ring"
    cap = f.wbq.shape[1]
    for k in range(int(f.fgs[K.FG_WB_HEAD]), int(f.fgs[K.FG_WB_TAIL])):
        assert flags[f.wbq[0, k % cap]] & K.PG_writeback, "ring entry not under writeback"
    sb = (flags[pfns] & (K.PG_swapbacked | K.PG_ramfs)) if len(pfns) else np.zeros(0)
    # nr_mapped: cached pages mapped by a PTE, or whose THP a PMD maps
    fe = (s.fr32[K.FILE_ENTIRE, _fhead(flags, pfns) + 1] * (_forder(flags[pfns]) == K.HPAGE_PMD_ORDER)
          if len(pfns) else 0)
    mapped = int(np.sum((s.fr32[K.FR_MAPCOUNT, pfns] > 0) | (fe > 0))) if len(pfns) else 0
    assert v[K.VS_NR_MAPPED] == mapped, f"nr_mapped {v[K.VS_NR_MAPPED]} != {mapped}"
    assert v[K.VS_NR_SHMEM] == int(np.sum(sb == K.PG_swapbacked)), "nr_shmem"
    # LRU lists: linked both ways, counted, and holding exactly the cached pages
    seen = set()
    from .kernels.lru import file_lru
    heads = [p for p in pfns.tolist() if _fhead(flags, p) == p]
    for lv in range(f.lru.shape[1]):                  # one lruvec per memcg
        # the unevictable list is a count alone (lruvec_add_folio, 5.18+)
        li = K.LRU_UNEVICTABLE
        assert f.lru[K.LV_HEAD + li, lv] == -1 and f.lru[K.LV_TAIL + li, lv] == -1, "unevictable linked"
        uv = [p for p in heads if flags[p] & K.PG_unevictable and int(s.fr_memcg[p]) == lv]
        assert sum(1 << int(_forder(flags[p])) for p in uv) == f.lru[K.LV_PAGES + li, lv], \
            f"memcg {lv}: unevictable count"
        seen.update(uv)
        for li in range(K.NR_LRU_LISTS - 1):
            p, prev, cnt = int(f.lru[K.LV_HEAD + li, lv]), -1, 0
            while p >= 0:
                assert int(s.fr32[K.FR_PREV, p]) == prev, f"list {li}: bad prev at {p}"
                assert p not in seen, f"pfn {p} on two lists"
                assert file_lru(flags, p) == li, f"pfn {p} on list {li}"
                assert int(s.fr_memcg[p]) == lv, f"pfn {p} on memcg {lv}'s lists"
                seen.add(p)
                cnt += 1 << int(_forder(flags[p]))
                prev, p = p, int(s.fr32[K.FR_NEXT, p])
            assert int(f.lru[K.LV_TAIL + li, lv]) == prev, f"list {li}: tail"
            assert cnt == f.lru[K.LV_PAGES + li, lv], f"list {li}: count {cnt}"
    assert seen == set(heads), "LRU lists and the page cache's folios differ"
    _check_mlocked_cache(m, heads)
    # blocks: free + used = capacity on every filesystem
    for fsi in range(len(m.vfs.mounts)):
        t = int(f.fs[K.FS_TYPE, fsi])
        used = 0
        for ii in np.nonzero(alive)[0]:
            if f.ino[K.I_FS, ii] != fsi:
                continue
            if t in K.BLOCK_FSTYPES:
                b, c = int(f.ino[K.I_BLK, ii]), int(f.ino[K.I_BLKCAP, ii])
                used += int(np.sum(f.blk[b:b + c] != K.BLK_HOLE))
            else:
                used += int(f.ino[K.I_NRPAGES, ii])
        assert used + f.fs[K.FS_FREE, fsi] == f.fs[K.FS_BLOCKS, fsi], f"fs {fsi}: blocks"
    assert f.fgs[K.FG_SLAB] == int(np.sum(f.ino[K.I_DCACHE, :nino][alive])), "slab count"


def _check_mlocked_cache(m, heads) -> None:
    """mlock on page-cache folios: an order-0 page is PG_mlocked exactly when PTEs of VM_LOCKED
    VMAs map it, its mlock_count (FR_PREV while on the unevictable list) is the number of those
    PTEs, and it is on the unevictable list exactly when it is mlocked or ramfs's; a large one is
    mlocked only while some locked PTE maps it. Mlocked and Unevictable add up over anonymous and
    cached folios."""
    s, f = m.state, m.vfs.state
    flags = s.fr_flags
    cached = set(heads)
    locked = {}
    for mmi in range(int(s.gs[K.G_NR_MM])):
        if s.mm[K.MM_PGD, mmi] < 0:
            continue
        b, c = int(s.mm[K.MM_VBASE, mmi]), int(s.mm[K.MM_VCOUNT, mmi])
        spans = [(int(s.vma[K.V_START, i]), int(s.vma[K.V_END, i])) for i in range(b, b + c)
                 if s.vma[K.V_FLAGS, i] & K.VM_LOCKED]
        if not spans:
            continue
        for va, e in _leaves(m, mmi):
            if not any(lo <= va < hi for lo, hi in spans):
                continue
            if e & K._PAGE_PSE and not flags[(e & K.PTE_PFN_MASK) >> 12] & K.PG_file_thp:
                continue                           # an anonymous THP (checked elsewhere)
            pfn = int(_fhead(flags, (e & K.PTE_PFN_MASK) >> 12))
            if pfn in cached:
                locked[pfn] = locked.get(pfn, 0) + 1
    cached_mlocked = 0
    for p in heads:
        fl = int(flags[p])
        n = locked.get(p, 0)
        if fl & K.PG_file_thp:
            # a large folio: mlocked only where one locked run of PTEs mapped all of it, and
            # munlocked at any unmap of a run, so its count is no exact tally of locked PTEs
            assert not fl & K.PG_mlocked or n > 0, f"large folio {p} mlocked, no locked PTE"
            assert bool(fl & K.PG_unevictable) == bool(fl & (K.PG_mlocked | K.PG_ramfs)), \
                f"large folio {p}: unevictable {fl:#x}"
            if fl & K.PG_mlocked:
                assert int(s.fr32[K.FR_PREV, p]) >= 1, f"large folio {p}: mlock_count 0"
                cached_mlocked += 1 << int(_forder(fl))
            continue
        assert bool(fl & K.PG_mlocked) == (n > 0), f"cached pfn {p}: PG_mlocked with {n} locked PTEs"
        assert bool(fl & K.PG_unevictable) == bool(fl & (K.PG_mlocked | K.PG_ramfs)), \
            f"cached pfn {p}: unevictable {fl:#x}"
        if fl & K.PG_unevictable:
            assert int(s.fr32[K.FR_PREV, p]) == n, f"cached pfn {p}: mlock_count {int(s.fr32[K.FR_PREV, p])} != {n}"
        cached_mlocked += n > 0
    anon = np.flatnonzero((flags & (K.PG_anon | K.PG_head | K.PG_mlocked)) ==
                          (K.PG_anon | K.PG_head | K.PG_mlocked))
    anon_mlocked = int(np.sum(np.left_shift(1, s.fr_order[anon].astype(np.int64))))
    v = s.vmstat
    assert v[K.VS_NR_MLOCK] == anon_mlocked + cached_mlocked, \
        f"nr_mlock {v[K.VS_NR_MLOCK]} != {anon_mlocked} anon + {cached_mlocked} cached"
    lists = int(f.lru[K.LV_PAGES + K.LRU_UNEVICTABLE].sum())
    assert v[K.VS_NR_UNEVICTABLE] == lists + anon_mlocked, \
        f"nr_unevictable {v[K.VS_NR_UNEVICTABLE]} != {lists} listed + {anon_mlocked} anon mlocked"
