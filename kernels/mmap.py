"""Virtual memory areas (mm/mmap.c, mm/vma.c): sorted per-mm segments in a global VMA pool.

Each mm owns a contiguous segment ``[MM_VBASE, MM_VBASE + MM_VCAP)`` of the pool, its VMAs sorted by
start in the first ``MM_VCOUNT`` slots. A segment that fills up moves to the end of the pool with
twice the room; Python grows the pool when ``vma_reserve`` returns NEED_GROW.
"""
from .consts import (
    G_VMA_CAP,
    G_VMA_NEXT,
    HPAGE_PMD_SIZE,
    MM_VBASE,
    MM_VCAP,
    MM_VCOUNT,
    MMAP_MIN_ADDR,
    NEED_GROW,
    NR_V_FIELDS,
    OK,
    V_END,
    V_ANON_VMA,
    V_FILE,
    V_FLAGS,
    V_PGOFF,
    V_START,
)
from .jit import kernel


@kernel
def vma_reserve(gs, mm, vma, mmi, need):
    """Make room for ``need`` more VMAs in the mm's segment, or return NEED_GROW (nothing changed)."""
    cnt = mm[MM_VCOUNT, mmi]
    cap = mm[MM_VCAP, mmi]
    if cnt + need <= cap:
        return OK
    newcap = max(2 * cap, cnt + need, 4)
    nb = gs[G_VMA_NEXT]
    if nb + newcap > gs[G_VMA_CAP]:
        return NEED_GROW
    ob = mm[MM_VBASE, mmi]
    for f in range(NR_V_FIELDS):
        for i in range(cnt):
            vma[f, nb + i] = vma[f, ob + i]
    gs[G_VMA_NEXT] = nb + newcap
    mm[MM_VBASE, mmi] = nb
    mm[MM_VCAP, mmi] = newcap
    return OK


@kernel
def find_vma_index(mm, vma, mmi, va):
    """Index (0-based in the segment) of the first VMA with end > va (count if none): find_vma."""
    b = mm[MM_VBASE, mmi]
    lo = 0
    hi = mm[MM_VCOUNT, mmi]
    while lo < hi:
        mid = (lo + hi) >> 1
        if vma[V_END, b + mid] > va:
            hi = mid
        else:
            lo = mid + 1
    return lo


@kernel
def vma_lookup(mm, vma, mmi, va):
    """Pool index of the VMA containing ``va``, or -1."""
    i = find_vma_index(mm, vma, mmi, va)
    if i < mm[MM_VCOUNT, mmi]:
        p = mm[MM_VBASE, mmi] + i
        if vma[V_START, p] <= va:
            return p
    return -1


@kernel
def range_has_vma(mm, vma, mmi, start, end):
    i = find_vma_index(mm, vma, mmi, start)
    if i < mm[MM_VCOUNT, mmi]:
        return vma[V_START, mm[MM_VBASE, mmi] + i] < end
    return False


@kernel
def vma_insert_at(mm, vma, mmi, i, start, end, flags, pgoff, file):
    """Insert a VMA at segment index ``i`` (room reserved by the caller)."""
    b = mm[MM_VBASE, mmi]
    cnt = mm[MM_VCOUNT, mmi]
    for f in range(NR_V_FIELDS):
        for j in range(cnt, i, -1):
            vma[f, b + j] = vma[f, b + j - 1]
    vma[V_START, b + i] = start
    vma[V_END, b + i] = end
    vma[V_FLAGS, b + i] = flags
    vma[V_PGOFF, b + i] = pgoff
    vma[V_FILE, b + i] = file
    vma[V_ANON_VMA, b + i] = 0
    mm[MM_VCOUNT, mmi] = cnt + 1


@kernel
def vma_remove_at(mm, vma, mmi, i):
    b = mm[MM_VBASE, mmi]
    cnt = mm[MM_VCOUNT, mmi]
    for f in range(NR_V_FIELDS):
        for j in range(i, cnt - 1):
            vma[f, b + j] = vma[f, b + j + 1]
    mm[MM_VCOUNT, mmi] = cnt - 1


@kernel
def vma_split_at(mm, vma, mmi, va):
    """Split the VMA containing ``va`` at ``va`` (no-op on a boundary or a hole): __split_vma."""
    i = find_vma_index(mm, vma, mmi, va)
    if i >= mm[MM_VCOUNT, mmi]:
        return
    p = mm[MM_VBASE, mmi] + i
    s = vma[V_START, p]
    if s >= va:
        return
    e = vma[V_END, p]
    vma_insert_at(mm, vma, mmi, i + 1, va, e, vma[V_FLAGS, p],
                  vma[V_PGOFF, p] + ((va - s) >> 12), vma[V_FILE, p])
    vma[V_ANON_VMA, p + 1] = vma[V_ANON_VMA, p]
    vma[V_END, p] = va


@kernel
def _mergeable(vma, a, b):
    return (vma[V_END, a] == vma[V_START, b] and vma[V_FLAGS, a] == vma[V_FLAGS, b]
            and vma[V_FILE, a] == vma[V_FILE, b]
            and vma[V_PGOFF, a] + ((vma[V_END, a] - vma[V_START, a]) >> 12) == vma[V_PGOFF, b])


@kernel
def vma_merge_around(mm, vma, mmi, i):
    """Merge segment index ``i`` with identical neighbours; returns the index it ends up at."""
    b = mm[MM_VBASE, mmi]
    if i + 1 < mm[MM_VCOUNT, mmi] and _mergeable(vma, b + i, b + i + 1):
        vma[V_END, b + i] = vma[V_END, b + i + 1]
        vma[V_ANON_VMA, b + i] |= vma[V_ANON_VMA, b + i + 1]
        vma_remove_at(mm, vma, mmi, i + 1)
    if i > 0 and _mergeable(vma, b + i - 1, b + i):
        vma[V_END, b + i - 1] = vma[V_END, b + i]
        vma[V_ANON_VMA, b + i - 1] |= vma[V_ANON_VMA, b + i]
        vma_remove_at(mm, vma, mmi, i)
        i -= 1
    return i


@kernel
def get_unmapped_area(mm, vma, mmi, length, thp_align, mmap_base):
    """Top-down vm_unmapped_area below ``mmap_base``; with ``thp_align`` the start is 2 MiB-aligned
    and the gap must hold ``length + 2 MiB`` (__thp_get_unmapped_area). Returns the address or -1."""
    b = mm[MM_VBASE, mmi]
    cnt = mm[MM_VCOUNT, mmi]
    need = length + HPAGE_PMD_SIZE if thp_align else length
    gap_end = mmap_base
    i = find_vma_index(mm, vma, mmi, mmap_base - 1)
    # VMAs that straddle mmap_base lower the first gap's end
    if i < cnt and vma[V_START, b + i] < mmap_base:
        gap_end = vma[V_START, b + i]
    i -= 1
    while True:
        gap_start = vma[V_END, b + i] if i >= 0 else MMAP_MIN_ADDR
        if gap_end - gap_start >= need and gap_end - length >= MMAP_MIN_ADDR:
            a = gap_end - length
            if thp_align:
                a &= ~(HPAGE_PMD_SIZE - 1)
            return a
        if i < 0:
            return -1
        gap_end = vma[V_START, b + i]
        i -= 1
