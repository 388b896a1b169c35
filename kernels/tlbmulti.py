"""Many TLB geometries over one access stream, in one pass (the batched mode of sweeps).

A sweep over TLB geometries alone re-runs the same accesses against the same page tables: only
the TLB differs. ``tlb_multi`` replays a stream of translations (an address and the size of the
page that maps it, read off the page tables once) against K geometries at once, each with its own
entries, and counts what ``memory.access_loop`` counts: L1 dTLB misses and page walks (STLB
misses). It follows that loop's hardware side exactly for loads on mapped memory: probe the 4 KiB
L1, then the 2 MiB L1; on a miss probe the STLB (4 KiB key, then 2 MiB) and fill the L1 entry on a
hit; on a walk fill the STLB and the L1 of the leaf's size. LRU stamps advance as that loop's do.
Stores (dirty bits), faults, flushes and the paging-structure caches are not part of it: the
stream must be loads of pages already mapped (``mmcore.tlbsim`` checks).
"""
from .consts import MM_PGD, PTE_PFN_MASK, PTRS_PER_TABLE, _PAGE_PRESENT, _PAGE_PSE
from .jit import kernel
from .pagetable import pmd_lookup
from .tlb import KEY_2M, tlb_fill, tlb_probe

G_S1 = 0          # geometry columns: L1 4 KiB sets, ways; L1 2 MiB sets, ways; STLB sets, ways
G_W1 = 1
G_S2 = 2
G_W2 = 3
G_S3 = 4
G_W3 = 5
NR_G = 6


@kernel
def tlb_multi(vas, huge, asid, geo, tags, ages, out):
    """Replay loads at ``vas`` (``huge[i]``: mapped by a 2 MiB leaf) against every geometry
    ``geo[g]``; ``tags[g]``/``ages[g]`` are its entries (tags -1: empty), laid out as the engine's
    (4 KiB L1, 2 MiB L1, STLB). Adds to ``out[g, 0]`` the L1 dTLB misses and ``out[g, 1]`` the
    page walks. One geometry at a time over the whole stream, so its entries stay in cache."""
    n = vas.shape[0]
    # with no 2 MiB leaf in the stream no 2 MiB entry is ever filled: their probes would miss
    # (access_loop skips them the same way for an mm that never had a PMD leaf)
    any_huge = False
    for i in range(n):
        if huge[i]:
            any_huge = True
            break
    for g in range(geo.shape[0]):
        s1 = geo[g, G_S1]
        w1 = geo[g, G_W1]
        s2 = geo[g, G_S2]
        w2 = geo[g, G_W2]
        s3 = geo[g, G_S3]
        w3 = geo[g, G_W3]
        b2 = s1 * w1
        b3 = b2 + s2 * w2
        t = tags[g]
        a = ages[g]
        dtlb = 0
        walks = 0
        stamp = 0
        last = -1
        for i in range(n):
            va = vas[i]
            v4 = va >> 12
            v2 = va >> 21
            k4 = (asid << 37) | v4
            k2 = (asid << 37) | KEY_2M | v2
            stamp += 2
            if last >= 0 and ((t[last] >> 1) == k4 or (t[last] >> 1) == k2):
                a[last] = stamp              # the entry the previous access used (the probe's
                continue                     # result, as in access_loop)
            e = tlb_probe(t, a, 0, s1, w1, v4, k4, stamp)
            if e < 0 and any_huge:
                e = tlb_probe(t, a, b2, s2, w2, v2, k2, stamp)
            if e >= 0:
                last = e
                continue
            dtlb += 1
            e3 = tlb_probe(t, a, b3, s3, w3, v4, k4, stamp)
            if e3 < 0 and any_huge:
                e3 = tlb_probe(t, a, b3, s3, w3, v2, k2, stamp)
            if e3 >= 0:
                if (t[e3] >> 1) == k4:
                    last = tlb_fill(t, a, 0, s1, w1, v4, k4, t[e3] & 1, stamp + 1)
                else:
                    last = tlb_fill(t, a, b2, s2, w2, v2, k2, t[e3] & 1, stamp + 1)
                continue
            walks += 1
            if huge[i]:
                tlb_fill(t, a, b3, s3, w3, v2, k2, 0, stamp + 1)
                last = tlb_fill(t, a, b2, s2, w2, v2, k2, 0, stamp + 1)
            else:
                tlb_fill(t, a, b3, s3, w3, v4, k4, 0, stamp + 1)
                last = tlb_fill(t, a, 0, s1, w1, v4, k4, 0, stamp + 1)
        out[g, 0] += dtlb
        out[g, 1] += walks


@kernel
def leaf_sizes(cfg, pt, fr_idx, mm, mmi, vas, huge):
    """``huge[i]`` = 1 where ``vas[i]`` is mapped by a 2 MiB leaf, 0 by a 4 KiB one. Returns the
    index of the first address not mapped (no present leaf), or -1."""
    pgd = mm[MM_PGD, mmi]
    for i in range(vas.shape[0]):
        va = vas[i]
        pos = pmd_lookup(cfg, pt, fr_idx, pgd, va)
        if pos < 0:
            return i
        e = pt[pos]
        if (e & _PAGE_PRESENT) == 0:
            return i
        if e & _PAGE_PSE:
            huge[i] = 1
            continue
        q = fr_idx[(e & PTE_PFN_MASK) >> 12] * PTRS_PER_TABLE + ((va >> 12) & 511)
        if (pt[q] & _PAGE_PRESENT) == 0:
            return i
        huge[i] = 0
    return -1
