"""/proc/PID/pagemap, /proc/kpageflags and /proc/kpagecount over the engine's state.

The three files researchers read to see what backs each virtual page (Documentation/admin-guide/
mm/pagemap.rst), in the kernel's bit layout, so a script written for a real machine reads the
engine's answer unchanged:

* ``Task.pagemap(addr, length)``: one 64-bit entry per page of the range. Bits 0-54 the PFN of a
  present page (as root sees it), or for a swapped page the swap type (bits 0-4) and offset
  (bits 5-54); bit 55 soft-dirty; 56 the page is mapped exclusively (its precise mapcount is 1);
  61 a file page or shared anonymous page; 62 swapped; 63 present. Bits 57 (uffd-wp) and 58
  (guard region) are never set: neither exists here.
* ``Machine.kpageflags(pfns)``: the KPF_* bits of each frame (``stable_page_flags``), taken
  from the frame's folio as the kernel takes them: tails report their head's LRU, dirty and
  mapped state; every page of a large folio has COMPOUND_HEAD or COMPOUND_TAIL, and THP.
* ``Machine.kpagecount(pfns)``: each frame's precise mapcount (PTE mappings of the page plus
  PMD mappings of its folio); 0 for the zero pages, page tables and free frames.

What the engine does not keep is not invented: IDLE (page_idle tracking), LOCKED, SLAB, KSM,
HWPOISON and the like stay 0; an anonymous page is on the LRU from its first fault (the kernel
may still hold it in a per-CPU batch). The arrays are computed with NumPy over the whole
range at once: no per-page Python.
"""
from __future__ import annotations

import numpy as np

from .kernels import consts as K
from .kernels.pagetable import SWP_OFFSET_MASK

# include/uapi/linux/kernel-page-flags.h (and the kernel-internal bits 32+ fs/proc/page.c reports)
KPF = {
    "LOCKED": 0, "ERROR": 1, "REFERENCED": 2, "UPTODATE": 3, "DIRTY": 4, "LRU": 5, "ACTIVE": 6,
    "SLAB": 7, "WRITEBACK": 8, "RECLAIM": 9, "BUDDY": 10, "MMAP": 11, "ANON": 12,
    "SWAPCACHE": 13, "SWAPBACKED": 14, "COMPOUND_HEAD": 15, "COMPOUND_TAIL": 16, "HUGE": 17,
    "UNEVICTABLE": 18, "HWPOISON": 19, "NOPAGE": 20, "KSM": 21, "THP": 22, "OFFLINE": 23,
    "ZERO_PAGE": 24, "IDLE": 25, "PGTABLE": 26, "RESERVED": 32, "MLOCKED": 33,
}

# pagemap entry bits
PM_PFN_MASK = (1 << 55) - 1
PM_SOFT_DIRTY = 1 << 55
PM_MMAP_EXCLUSIVE = 1 << 56
PM_FILE = 1 << 61
PM_SWAP = 1 << 62
PM_PRESENT = 1 << 63
SWP_TYPE_BITS = 5                 # MAX_SWAPFILES_SHIFT: the offset starts at bit 5

_MAX_ORDER = 10


def kpf_names(flags: int) -> list[str]:
    """The KPF_* names set in one kpageflags value, lowest bit first."""
    return [name for name, bit in KPF.items() if flags >> bit & 1]


def _bit(cond: np.ndarray, name: str) -> np.ndarray:
    return cond.astype(np.uint64) << np.uint64(KPF[name])


def folio_heads(state, pfns: np.ndarray) -> np.ndarray:
    """The head frame of the folio each frame of ``pfns`` belongs to (itself when it is not a
    tail): a tail's head is the nearest aligned frame below it that heads a large enough
    folio (``compound_head``)."""
    fl = state.fr_flags
    order = state.fr_order
    heads = pfns.copy()
    tail = ((fl[pfns] & K.PG_tail) != 0) | \
        (((fl[pfns] & K.PG_file_thp) != 0) & ((fl[pfns] & K.PG_head) == 0))
    todo = np.flatnonzero(tail)
    for k in range(1, _MAX_ORDER + 1):
        if todo.size == 0:
            break
        cand = pfns[todo] & ~((1 << k) - 1)
        hit = ((fl[cand] & K.PG_head) != 0) & (order[cand] >= k)
        heads[todo[hit]] = cand[hit]
        todo = todo[~hit]
    return heads


def _entire_mapcount(state, heads: np.ndarray) -> np.ndarray:
    """PMD mappings of each large folio (0 for an order-0 folio)."""
    fl = state.fr_flags
    out = np.zeros(heads.shape, np.int64)
    large = (state.fr_order[heads] > 0) & ((fl[heads] & K.PG_head) != 0)
    idx = np.flatnonzero(large)
    if idx.size:
        second = heads[idx] + 1
        anon = (fl[heads[idx]] & K.PG_anon) != 0
        filethp = (fl[heads[idx]] & K.PG_file_thp) != 0
        out[idx[anon]] = state.fr32[K.FR_OWNER, second[anon]]
        out[idx[filethp]] = state.fr32[K.FILE_ENTIRE, second[filethp]]
    return out


def _check_pfns(state, pfns) -> np.ndarray:
    a = np.asarray(pfns)
    if a.ndim == 0:
        a = a.reshape(1)
    if a.dtype.kind not in "iu":
        raise TypeError(f"pfns: expected integer frame numbers, got dtype {a.dtype}")
    a = a.astype(np.int64, copy=False)
    if a.size and a.min() < 0:
        raise ValueError(f"pfns: {int(a.min())} is negative; frame numbers start at 0")
    return a


def _valid(state, pfns: np.ndarray) -> np.ndarray:
    return pfns < state.fr_flags.shape[0]


def kpagecount(state, pfns) -> np.ndarray:
    """/proc/kpagecount: the precise mapcount of each frame (uint64)."""
    pfns = _check_pfns(state, pfns)
    out = np.zeros(pfns.shape, np.uint64)
    ok = np.flatnonzero(_valid(state, pfns))
    p = pfns[ok]
    fl = state.fr_flags[p]
    mapped_kind = (fl & (K.PG_buddy | K.PG_pgtable | K.PG_reserved | K.PG_hugezero)) == 0
    heads = folio_heads(state, p)
    mapped_kind &= (state.fr_flags[heads] & K.PG_hugezero) == 0
    n = state.fr32[K.FR_MAPCOUNT, p].astype(np.int64) + _entire_mapcount(state, heads)
    n = np.where(mapped_kind & (n > 0), n, 0)
    out[ok] = n.astype(np.uint64)
    return out


def kpageflags(state, pfns) -> np.ndarray:
    """/proc/kpageflags: the KPF_* bits of each frame (uint64); NOPAGE past the last frame."""
    pfns = _check_pfns(state, pfns)
    out = np.full(pfns.shape, np.uint64(1) << np.uint64(KPF["NOPAGE"]))
    ok = np.flatnonzero(_valid(state, pfns))
    p = pfns[ok]
    fl = state.fr_flags
    own = fl[p]
    heads = folio_heads(state, p)
    hf = fl[heads]
    large = (state.fr_order[heads] > 0) & ((hf & K.PG_head) != 0) & ((own & K.PG_buddy) == 0)
    zero4k = (own & K.PG_reserved) != 0
    hugezero = (hf & K.PG_hugezero) != 0
    pgtable = (own & K.PG_pgtable) != 0
    # frames at and above the allocator's high-water mark are free order-10 blocks not yet on
    # any list (kernels/page_alloc.py): the head of each reads as BUDDY, as the kernel's would
    hw = int(state.gs[K.G_HIGH_WATER])
    implicit = (p >= hw) & (p < int(state.cfg[K.C_NR_FRAMES]))
    buddy = ((own & K.PG_buddy) != 0) | (implicit & ((p - hw) % K.MAX_ORDER_NR_PAGES == 0))
    anon = ((hf & K.PG_anon) != 0) & ~hugezero
    # a page-cache folio: headed, neither anonymous nor a page table nor a zero page
    cache = ((hf & K.PG_head) != 0) & ~anon & ~hugezero & ~pgtable & ~zero4k & ~buddy
    used = anon | cache
    # folio_mapped: any page of the folio mapped, by a PTE or by a PMD
    mapped = np.zeros(p.shape, bool)
    entire = _entire_mapcount(state, heads)
    mapped |= entire > 0
    mapped |= state.fr32[K.FR_MAPCOUNT, p] > 0
    li = np.flatnonzero(used & large & ~mapped)
    if li.size:
        # a large folio is mapped when any of its pages is: look at every page of each
        # (the few large folios asked about, not the whole machine)
        uniq, inv = np.unique(heads[li], return_inverse=True)
        any_m = np.zeros(uniq.shape, bool)
        for j, h in enumerate(uniq):
            nr = 1 << int(state.fr_order[h])
            any_m[j] = bool((state.fr32[K.FR_MAPCOUNT, h:h + nr] > 0).any())
        mapped[li] = any_m[inv]
    v = np.zeros(p.shape, np.uint64)
    v |= _bit(used & ((hf & K.PG_referenced) != 0), "REFERENCED")
    v |= _bit(used, "UPTODATE")
    v |= _bit(cache & ((hf & K.PG_dirty) != 0), "DIRTY")
    v |= _bit(used & ((hf & K.PG_lru) != 0), "LRU")
    v |= _bit(used & ((hf & K.PG_active) != 0), "ACTIVE")
    v |= _bit(cache & ((hf & K.PG_writeback) != 0), "WRITEBACK")
    v |= _bit(cache & ((hf & K.PG_reclaim) != 0), "RECLAIM")
    v |= _bit(buddy, "BUDDY")
    v |= _bit(used & mapped, "MMAP")
    v |= _bit(anon, "ANON")
    v |= _bit((anon & ((hf & K.PG_lazyfree) == 0)) | (cache & ((hf & K.PG_swapbacked) != 0)),
              "SWAPBACKED")
    head_self = heads == p
    v |= _bit((large | hugezero) & head_self, "COMPOUND_HEAD")
    v |= _bit((large | hugezero) & ~head_self, "COMPOUND_TAIL")
    v |= _bit(used & ((hf & K.PG_unevictable) != 0), "UNEVICTABLE")
    v |= _bit((large & used) | hugezero, "THP")
    v |= _bit(zero4k | hugezero, "ZERO_PAGE")
    v |= _bit(pgtable, "PGTABLE")
    v |= _bit(zero4k, "RESERVED")
    v |= _bit(used & ((hf & K.PG_mlocked) != 0), "MLOCKED")
    out[ok] = v
    return out


def pagemap(state, mmi: int, addr: int, length: int) -> np.ndarray:
    """/proc/PID/pagemap entries (uint64) for the pages of [addr, addr + length), address space
    ``mmi``; ``addr`` rounds down and the end up to whole pages."""
    from .kernels import proc as P
    first = addr >> 12
    last = (addr + length + K.PAGE_SIZE - 1) >> 12
    out = np.zeros(max(last - first, 0), np.uint64)
    if out.size == 0 or state.mm[K.MM_PGD, mmi] < 0:
        return out
    start, end = first << 12, last << 12
    cap = 1024
    while True:
        vas = np.zeros(cap, np.int64)
        ents = np.zeros(cap, np.int64)
        n = P.dump_leaves(state.cfg, state.pt, state.fr_idx, state.mm, mmi, start, end, vas, ents)
        if n <= cap:
            break
        cap = n
    vas, ents = vas[:n], ents[:n]
    pmd = (ents & K._PAGE_PSE) != 0
    # expand PMD leaves into their 512 pages (within the range)
    rep = np.where(pmd, K.HPAGE_PMD_NR, 1)
    page_va = np.repeat(vas, rep) + _offsets(rep) * K.PAGE_SIZE
    page_ent = np.repeat(ents, rep)
    sub = _offsets(rep)
    keep = (page_va >= start) & (page_va < end)
    page_va, page_ent, sub = page_va[keep], page_ent[keep], sub[keep]
    is_pmd = (page_ent & K._PAGE_PSE) != 0
    slot = (page_va >> 12) - first
    present = (page_ent & (K._PAGE_PRESENT | K._PAGE_PROTNONE)) != 0
    swap = (page_ent != 0) & ~present
    pfn = ((page_ent & K.PTE_PFN_MASK) >> 12) + np.where(is_pmd, sub, 0)
    e = np.zeros(page_va.shape, np.uint64)
    # present pages
    pi = np.flatnonzero(present)
    pp = pfn[pi]
    e[pi] = PM_PRESENT | pp.astype(np.uint64)
    fl = state.fr_flags
    normal = (page_ent[pi] & K._PAGE_SPECIAL) == 0        # vm_normal_page: not the zero page
    heads = folio_heads(state, pp)
    anon = (fl[heads] & K.PG_anon) != 0
    hugezero = (fl[heads] & K.PG_hugezero) != 0
    # PM_FILE: a page that is not anonymous (a PMD of the huge zero folio counts as one, as
    # pagemap_pmd_range sees it; a PTE of the 4 KiB zero page has no page at all)
    file_ = (normal & ~anon & ~hugezero) | (hugezero & is_pmd[pi])
    e[pi] |= np.where(file_, np.uint64(PM_FILE), np.uint64(0))
    precise = state.fr32[K.FR_MAPCOUNT, pp].astype(np.int64) + _entire_mapcount(state, heads)
    excl = normal & ~hugezero & (precise == 1)
    e[pi] |= np.where(excl, np.uint64(PM_MMAP_EXCLUSIVE), np.uint64(0))
    # swapped pages: type 0, the offset from the entry
    si = np.flatnonzero(swap)
    off = ((~page_ent[si]) >> 9) & SWP_OFFSET_MASK
    e[si] = PM_SWAP | (off.astype(np.uint64) << np.uint64(SWP_TYPE_BITS))
    e |= np.where((page_ent & K._PAGE_SOFT_DIRTY) != 0, np.uint64(PM_SOFT_DIRTY), np.uint64(0))
    out[slot] = e
    return out


def _offsets(rep: np.ndarray) -> np.ndarray:
    """0, 1, ..., rep[i] - 1 for each i, concatenated."""
    total = int(rep.sum())
    starts = np.repeat(np.cumsum(rep) - rep, rep)
    return np.arange(total, dtype=np.int64) - starts


def folio_runs(state, pagemap_entries: np.ndarray) -> list[int]:
    """Sizes in pages of the folios backing consecutive present pages, in address order, as a
    script reading pagemap and kpageflags would find them (a run of COMPOUND_TAIL frames after
    their COMPOUND_HEAD); a page not present ends a run and counts as 0."""
    return folio_runs_from(pagemap_entries, kpageflags(state, pagemap_entries & PM_PFN_MASK))


def folio_runs_from(entries: np.ndarray, flags: np.ndarray) -> list[int]:
    """``folio_runs`` from pagemap entries and the kpageflags of their PFNs (host or engine)."""
    runs: list[int] = []
    prev = -2
    head_bit = 1 << KPF["COMPOUND_HEAD"]
    tail_bit = 1 << KPF["COMPOUND_TAIL"]
    for ent, f in zip(entries.tolist(), flags.tolist()):
        if not ent >> 63 & 1:
            runs.append(0)
            prev = -2
            continue
        pfn = ent & PM_PFN_MASK
        if f & tail_bit and runs and pfn == prev + 1 and runs[-1] > 0:
            runs[-1] += 1
        else:
            runs.append(1)
        prev = pfn
        if not f & (head_bit | tail_bit):
            prev = -2
    return runs
