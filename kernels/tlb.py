"""Translation lookaside buffers and paging-structure caches (Intel SDM vol. 3, 4.10).

Per simulated CPU ``c``: ``tlb[c, 0, e]`` is entry ``e``'s stored tag (``key * 2 + dirty``, -1 when
invalid), ``tlb[c, 1, e]`` its last-use stamp (LRU) and ``tlb[c, 2, e]`` the frame it translates to
(the head of a 2 MiB page; the hardware keeps it, and a store through the entry marks the page it
reaches written: ``PG_written``). Entries are laid out as the L1 dTLB for
4 KiB pages, the L1 dTLB for 2 MiB pages, then the unified STLB. A key is
``asid << 37 | size_bit << 36 | virtual page number``; the ASID is the mm id + 1, so a task switch
flushes nothing (PCID).
"""
from .consts import (
    C_L1_2M_SETS,
    C_L1_2M_WAYS,
    C_L1_4K_SETS,
    C_L1_4K_WAYS,
    C_NCPUS,
    C_PDE_CACHE,
    C_PDPTE_CACHE,
    C_STLB_SETS,
    C_STLB_WAYS,
)
from .jit import kernel

KEY_2M = 1 << 36
VPN_MASK = (1 << 36) - 1
TLB_SINGLE_PAGE_FLUSH_CEILING = 33   # arch/x86/mm/tlb.c tlb_single_page_flush_ceiling


@kernel
def set_index(vpn, sets):
    """Virtual page number modulo the number of sets (a mask when that is a power of two)."""
    if (sets & (sets - 1)) == 0:
        return vpn & (sets - 1)
    return vpn % sets


@kernel
def key4k(asid, va):
    return (asid << 37) | (va >> 12)


@kernel
def key2m(asid, va):
    return (asid << 37) | KEY_2M | (va >> 21)


@kernel(inline="always")
def probe_victim(t, a, b, ways, key, stamp):
    """One scan of the set at ``b``: the entry holding ``key`` (its stamp refreshed) as
    ``(entry, -1)``, or ``(-1, victim)`` where a fill puts it (the lowest invalid way, else the
    least recently used)."""
    victim = b
    oldest = a[b]
    invalid = -1
    for w in range(ways):
        e = b + w
        x = t[e]
        if (x >> 1) == key:
            a[e] = stamp
            return e, -1
        if x < 0:
            if invalid < 0:
                invalid = e
        elif invalid < 0 and a[e] < oldest:
            oldest = a[e]
            victim = e
    return -1, (invalid if invalid >= 0 else victim)


# ---- the default geometry, specialised ------------------------------------------------------------
# TLBConfig's default sets and ways (L1 4 KiB 16 x 4, L1 2 MiB 8 x 4, STLB 128 x 12: Skylake's) as
# compile-time constants. The access loop asks these helpers with ``fixed`` true when the machine
# has that geometry: the loops over a set then unroll, which sizes read from ``cfg`` at run time
# prevent (measured side by side, a random read over 64 MiB: 54.8 ns with run-time sizes, 40.0
# with these). Any other geometry takes the same code with its own sizes.
FIXED_L1_SETS, FIXED_L1_WAYS = 16, 4
FIXED_2M_SETS, FIXED_2M_WAYS = 8, 4
FIXED_STLB_SETS, FIXED_STLB_WAYS = 128, 12
FIXED_2M_BASE = FIXED_L1_SETS * FIXED_L1_WAYS
FIXED_STLB_BASE = FIXED_2M_BASE + FIXED_2M_SETS * FIXED_2M_WAYS


@kernel(inline="always")
def fixed_geometry(s1, w1, s2, w2, s3, w3):
    """Whether a machine's TLB has the default geometry (the specialised lookups apply)."""
    return (s1 == FIXED_L1_SETS and w1 == FIXED_L1_WAYS and s2 == FIXED_2M_SETS
            and w2 == FIXED_2M_WAYS and s3 == FIXED_STLB_SETS and w3 == FIXED_STLB_WAYS)


@kernel(inline="always")
def tlb_probe(tags, ages, base, sets, ways, vpn, key, stamp):
    """Entry index holding ``key`` (its stamp refreshed), or -1. ``tags``/``ages``: one CPU's."""
    b = base + set_index(vpn, sets) * ways
    for w in range(ways):
        if (tags[b + w] >> 1) == key:
            ages[b + w] = stamp
            return b + w
    return -1


@kernel(inline="always")
def tlb_fill(tags, ages, pfns, base, sets, ways, vpn, key, dirty, pfn, stamp):
    """Insert ``key`` (translating to frame ``pfn``): in place if present, else the lowest invalid
    way, else the LRU way."""
    hit, victim = probe_victim(tags, ages, base + set_index(vpn, sets) * ways, ways, key, stamp)
    e = hit if hit >= 0 else victim
    tags[e] = key * 2 + dirty
    ages[e] = stamp
    pfns[e] = pfn
    return e


@kernel(inline="always")
def tlb_fill_new(tags, ages, pfns, base, sets, ways, vpn, key, dirty, pfn, stamp):
    """``tlb_fill`` of a key known to be absent from the set: the lowest invalid way, else the
    least recently used (the same way ``tlb_fill`` picks), without looking for the key."""
    b = base + set_index(vpn, sets) * ways
    e = b
    oldest = ages[b]
    for w in range(ways):
        if tags[b + w] < 0:
            e = b + w
            break
        if ages[b + w] < oldest:
            oldest = ages[b + w]
            e = b + w
    tags[e] = key * 2 + dirty
    ages[e] = stamp
    pfns[e] = pfn
    return e


@kernel(inline="always")
def fill_new_4k(fixed, tags, ages, pfns, b3, s1, w1, s3, w3, vpn, key, dirty, pfn, stamp):
    """A 4 KiB translation neither the L1 dTLB nor the STLB holds (both probes missed): into
    the STLB, then the L1 dTLB; returns the L1 entry."""
    if fixed:
        tlb_fill_new(tags, ages, pfns, FIXED_STLB_BASE, FIXED_STLB_SETS, FIXED_STLB_WAYS, vpn,
                     key, dirty, pfn, stamp)
        return tlb_fill_new(tags, ages, pfns, 0, FIXED_L1_SETS, FIXED_L1_WAYS, vpn, key, dirty,
                            pfn, stamp)
    tlb_fill_new(tags, ages, pfns, b3, s3, w3, vpn, key, dirty, pfn, stamp)
    return tlb_fill_new(tags, ages, pfns, 0, s1, w1, vpn, key, dirty, pfn, stamp)


@kernel(inline="always")
def probe_l1(fixed, tags, ages, s1, w1, vpn, key, stamp):
    """``tlb_probe`` of the L1 dTLB for 4 KiB pages."""
    if fixed:
        return tlb_probe(tags, ages, 0, FIXED_L1_SETS, FIXED_L1_WAYS, vpn, key, stamp)
    return tlb_probe(tags, ages, 0, s1, w1, vpn, key, stamp)


@kernel(inline="always")
def probe_2m(fixed, tags, ages, b2, s2, w2, vpn, key, stamp):
    """``tlb_probe`` of the L1 dTLB for 2 MiB pages (at ``b2``)."""
    if fixed:
        return tlb_probe(tags, ages, FIXED_2M_BASE, FIXED_2M_SETS, FIXED_2M_WAYS, vpn, key, stamp)
    return tlb_probe(tags, ages, b2, s2, w2, vpn, key, stamp)


@kernel(inline="always")
def probe_stlb(fixed, tags, ages, b3, s3, w3, vpn, key, stamp):
    """``tlb_probe`` of the STLB (at ``b3``)."""
    if fixed:
        return tlb_probe(tags, ages, FIXED_STLB_BASE, FIXED_STLB_SETS, FIXED_STLB_WAYS, vpn, key,
                      stamp)
    return tlb_probe(tags, ages, b3, s3, w3, vpn, key, stamp)


@kernel(inline="always")
def fill_l1(fixed, tags, ages, pfns, s1, w1, vpn, key, dirty, pfn, stamp):
    """``tlb_fill`` of the L1 dTLB for 4 KiB pages."""
    if fixed:
        return tlb_fill(tags, ages, pfns, 0, FIXED_L1_SETS, FIXED_L1_WAYS, vpn, key, dirty, pfn,
                     stamp)
    return tlb_fill(tags, ages, pfns, 0, s1, w1, vpn, key, dirty, pfn, stamp)


@kernel(inline="always")
def fill_2m(fixed, tags, ages, pfns, b2, s2, w2, vpn, key, dirty, pfn, stamp):
    """``tlb_fill`` of the L1 dTLB for 2 MiB pages (at ``b2``)."""
    if fixed:
        return tlb_fill(tags, ages, pfns, FIXED_2M_BASE, FIXED_2M_SETS, FIXED_2M_WAYS, vpn, key,
                     dirty, pfn, stamp)
    return tlb_fill(tags, ages, pfns, b2, s2, w2, vpn, key, dirty, pfn, stamp)


@kernel(inline="always")
def fill_stlb(fixed, tags, ages, pfns, b3, s3, w3, vpn, key, dirty, pfn, stamp):
    """``tlb_fill`` of the STLB (at ``b3``)."""
    if fixed:
        return tlb_fill(tags, ages, pfns, FIXED_STLB_BASE, FIXED_STLB_SETS, FIXED_STLB_WAYS, vpn,
                     key, dirty, pfn, stamp)
    return tlb_fill(tags, ages, pfns, b3, s3, w3, vpn, key, dirty, pfn, stamp)


@kernel
def tlb_layout(cfg):
    """(base of L1-2M, base of STLB, total entries)."""
    l1 = cfg[C_L1_4K_SETS] * cfg[C_L1_4K_WAYS]
    l2 = l1 + cfg[C_L1_2M_SETS] * cfg[C_L1_2M_WAYS]
    return l1, l2, l2 + cfg[C_STLB_SETS] * cfg[C_STLB_WAYS]


@kernel
def _inval_set(tlb, c, base, sets, ways, vpn, key):
    b = base + set_index(vpn, sets) * ways
    for w in range(ways):
        if (tlb[c, 0, b + w] >> 1) == key:
            tlb[c, 0, b + w] = -1


@kernel
def flush_tlb_page(cfg, tlb, pwc, asid, va):
    """Invalidate the 4 KiB and 2 MiB translations of ``va`` in every CPU (INVLPG + shootdown)."""
    b2, b3, _ = tlb_layout(cfg)
    v4 = va >> 12
    v2 = va >> 21
    k4 = key4k(asid, va)
    k2 = key2m(asid, va)
    for c in range(cfg[C_NCPUS]):
        _inval_set(tlb, c, 0, cfg[C_L1_4K_SETS], cfg[C_L1_4K_WAYS], v4, k4)
        _inval_set(tlb, c, b2, cfg[C_L1_2M_SETS], cfg[C_L1_2M_WAYS], v2, k2)
        _inval_set(tlb, c, b3, cfg[C_STLB_SETS], cfg[C_STLB_WAYS], v4, k4)
        _inval_set(tlb, c, b3, cfg[C_STLB_SETS], cfg[C_STLB_WAYS], v2, k2)
    flush_pwc(cfg, pwc, asid, va & ~4095, (va & ~4095) + 4096)


@kernel
def flush_pwc(cfg, pwc, asid, start, end):
    """Drop the paging-structure-cache entries of the address space that cover [start, end)."""
    npde = cfg[C_PDE_CACHE]
    n = npde + cfg[C_PDPTE_CACHE]
    for c in range(cfg[C_NCPUS]):
        for i in range(n):
            k = pwc[c, i]
            if k < 0 or (k >> 37) != asid:
                continue
            shift = 21 if i < npde else 30
            lo = (k & VPN_MASK) << shift
            if lo < end and lo + (1 << shift) > start:
                pwc[c, i] = -1


@kernel
def flush_tlb_range(cfg, tlb, pwc, asid, start, end):
    """flush_tlb_mm_range: page by page up to the ceiling, else every entry of the ASID in range."""
    npages = (end - start) >> 12
    if npages <= TLB_SINGLE_PAGE_FLUSH_CEILING:
        va = start
        while va < end:
            flush_tlb_page(cfg, tlb, pwc, asid, va)
            va += 4096
        return
    _, _, total = tlb_layout(cfg)
    for c in range(cfg[C_NCPUS]):
        for e in range(total):
            t = tlb[c, 0, e]
            if t < 0:
                continue
            k = t >> 1
            if (k >> 37) != asid:
                continue
            if k & KEY_2M:
                lo = (k & VPN_MASK) << 21
                hi = lo + (1 << 21)
            else:
                lo = (k & VPN_MASK) << 12
                hi = lo + 4096
            if lo < end and hi > start:
                tlb[c, 0, e] = -1
    flush_pwc(cfg, pwc, asid, start, end)


@kernel
def flush_tlb_mm(cfg, tlb, pwc, asid):
    _, _, total = tlb_layout(cfg)
    for c in range(cfg[C_NCPUS]):
        for e in range(total):
            t = tlb[c, 0, e]
            if t >= 0 and ((t >> 1) >> 37) == asid:
                tlb[c, 0, e] = -1
    flush_pwc(cfg, pwc, asid, 0, 1 << 57)
