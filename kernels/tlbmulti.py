"""Many TLB geometries over one access stream, in one pass (the batched mode of sweeps).

A sweep over TLB geometries alone re-runs the same accesses against the same page tables: only
the TLB differs. ``tlb_multi`` replays a stream of translations (an address and the size of the
page that maps it, read off the page tables once) against K geometries at once, each with its own
entries, and counts what ``memory.access_loop`` counts: L1 dTLB misses and page walks (STLB
misses). It follows that loop's hardware side exactly for loads on mapped memory: probe the 4 KiB
L1, then the 2 MiB L1; on a miss probe the STLB (4 KiB key, then 2 MiB) and fill the L1 entry on a
hit; on a walk fill the STLB and the L1 of the leaf's size. LRU stamps advance as that loop's do
in the L1s; the STLB is an LRU stack per set (see ``tlb_multi``), which counts the same.
Stores (dirty bits), faults, flushes and the paging-structure caches are not part of it: the
stream is loads of mapped pages (an address nothing maps is skipped). A stream may come in
pieces: the state the kernel keeps between calls is the caller's arrays (``mmcore.tlbsim``).
"""

from .consts import MM_PGD, PTE_PFN_MASK, PTRS_PER_TABLE, TASK_SIZE, _PAGE_PRESENT, _PAGE_PSE
from .jit import kernel
from .pagetable import pmd_lookup
from .tlb import KEY_2M, probe_victim

G_S1 = 0          # geometry columns: L1 4 KiB sets, ways; L1 2 MiB sets, ways; STLB sets, ways;
G_W1 = 1          # the first geometry of its pass (the one holding the pass's state) and the
G_S2 = 2          # pass's STLB stack depth (the most ways of its members)
G_W2 = 3
G_S3 = 4
G_W3 = 5
G_LEAD = 6
G_DEPTH = 7
NR_G = 8

ST_STAMP = 0      # per pass (the lead geometry's row of ``st``): the LRU clock, the L1 entry the
ST_LAST = 1       # previous access used, whether a 2 MiB leaf was ever seen, the L1 dTLB misses
ST_HUGE = 2
ST_DTLB = 3
NR_ST = 4


@kernel(inline="always")
def _index(vpn, sets, mask):
    return vpn & mask if mask >= 0 else vpn % sets


@kernel(inline="always")
def _stack_access(stk, b, depth, key):
    """LRU stack of one STLB set (``stk[b:b + depth]``, most recent first, -1 empty): move
    ``key`` to the top; returns its stack distance before the access, or ``depth`` if it was not
    in the deepest ``depth`` (a miss in every geometry of the group)."""
    p = 0
    while p < depth:
        if stk[b + p] == key:
            break
        p += 1
    q = p if p < depth else depth - 1
    while q > 0:
        stk[b + q] = stk[b + q - 1]
        q -= 1
    stk[b] = key
    return p


@kernel
def tlb_multi(vas, huge, asid, geo, tags, ages, stk, hist, st):
    """Replay loads at ``vas`` by address space ``asid`` (``huge[i]``: 1 if a 2 MiB leaf maps
    it, 0 a 4 KiB one, -1 not mapped: skipped) against every geometry ``geo[g]``, carrying on
    from the state the previous call left (a stream may come in pieces).

    State, per pass (in its lead geometry's rows): ``tags``/``ages`` the L1 dTLB entries (tags -1:
    empty), laid out as the engine's (4 KiB L1, then 2 MiB L1); ``stk`` the STLB's LRU stacks;
    ``hist`` the histogram of STLB stack distances; ``st`` the ``ST_*`` words. A geometry's page
    walks are the accesses at a stack distance of its ways or more (``hist[lead, ways:]``), its
    L1 dTLB misses ``st[lead, ST_DTLB]``.

    Geometries that differ only in STLB ways share one pass. The L1s do not depend on the STLB
    (loads fill the same L1 entry whether the STLB hit or a walk found the leaf), so such
    geometries see the same STLB access stream, and with LRU replacement a ``w``-way set holds
    exactly the ``w`` most recent keys of that set (Mattson et al., "Evaluation techniques for
    storage hierarchies", 1970): one LRU stack per set, as deep as the most ways, and a
    histogram of stack distances give every member's walks (those at distance >= its ways).
    Each pass keeps its entries in cache; each probe also finds the way a fill would use."""
    n = vas.shape[0]
    k = geo.shape[0]
    # with no 2 MiB leaf in the stream no 2 MiB entry is ever filled: their probes would miss
    # (access_loop skips them the same way for an mm that never had a PMD leaf)
    seen_huge = 0
    for i in range(n):
        if huge[i] > 0:
            seen_huge = 1
            break
    for g in range(k):
        if geo[g, G_LEAD] != g:
            continue
        s1 = geo[g, G_S1]
        w1 = geo[g, G_W1]
        s2 = geo[g, G_S2]
        w2 = geo[g, G_W2]
        s3 = geo[g, G_S3]
        depth = geo[g, G_DEPTH]
        m1 = s1 - 1 if (s1 & (s1 - 1)) == 0 else -1
        m2 = s2 - 1 if (s2 & (s2 - 1)) == 0 else -1
        m3 = s3 - 1 if (s3 & (s3 - 1)) == 0 else -1
        b2 = s1 * w1
        t = tags[g]
        a = ages[g]
        sk = stk[g]
        hg = hist[g]
        if seen_huge:
            st[g, ST_HUGE] = 1
        any_huge = st[g, ST_HUGE] != 0
        dtlb = 0
        stamp = st[g, ST_STAMP]
        last = st[g, ST_LAST]
        for i in range(n):
            if huge[i] < 0:
                continue
            va = vas[i]
            v4 = va >> 12
            v2 = va >> 21
            k4 = (asid << 37) | v4
            k2 = (asid << 37) | KEY_2M | v2
            stamp += 2
            if last >= 0 and ((t[last] >> 1) == k4 or (t[last] >> 1) == k2):
                a[last] = stamp              # the entry the previous access used (the probe's
                continue                     # result, as in access_loop)
            e, v1 = probe_victim(t, a, _index(v4, s1, m1) * w1, w1, k4, stamp)
            if e < 0 and any_huge:
                e, vh = probe_victim(t, a, b2 + _index(v2, s2, m2) * w2, w2, k2, stamp)
                if huge[i]:
                    v1 = vh
            if e >= 0:
                last = e
                continue
            dtlb += 1
            # the STLB: one key per address (a load of a fixed mapping is always of one size)
            if huge[i]:
                hg[_stack_access(sk, _index(v2, s3, m3) * depth, depth, k2)] += 1
                t[v1] = k2 * 2
            else:
                hg[_stack_access(sk, _index(v4, s3, m3) * depth, depth, k4)] += 1
                t[v1] = k4 * 2
            a[v1] = stamp + 1
            last = v1
        st[g, ST_STAMP] = stamp
        st[g, ST_LAST] = last
        st[g, ST_DTLB] += dtlb


@kernel
def leaf_sizes(cfg, pt, fr_idx, mm, mmi, vas, huge):
    """``huge[i]`` = 1 where ``vas[i]`` is mapped by a 2 MiB leaf, 0 by a 4 KiB one, -1 where
    no present leaf maps it. Returns the index of the first address not mapped, or -1."""
    pgd = mm[MM_PGD, mmi]
    first = -1
    for i in range(vas.shape[0]):
        va = vas[i]
        huge[i] = -1
        if va < 0 or va >= TASK_SIZE:
            pos = -1
        else:
            pos = pmd_lookup(cfg, pt, fr_idx, pgd, va)
        if pos >= 0 and (pt[pos] & _PAGE_PRESENT) != 0:
            e = pt[pos]
            if e & _PAGE_PSE:
                huge[i] = 1
            else:
                q = fr_idx[(e & PTE_PFN_MASK) >> 12] * PTRS_PER_TABLE + ((va >> 12) & 511)
                if (pt[q] & _PAGE_PRESENT) != 0:
                    huge[i] = 0
        if huge[i] < 0 and first < 0:
            first = i
    return first
