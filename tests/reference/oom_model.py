"""The OOM killer's arithmetic written out in plain Python from the kernel sources, one version
family at a time, with C's signed 64-bit semantics spelled out (wrap-around, division truncating
toward zero). ``tests/test_oom.py`` compares ``mmcore.oom`` with it."""

LONG_MIN = -(1 << 63)


def s64(x: int) -> int:
    """Wrap to a signed 64-bit long, as the kernel's arithmetic does."""
    x &= (1 << 64) - 1
    return x - (1 << 64) if x >> 63 else x


def c_div(a: int, b: int) -> int:
    """C99 integer division: truncation toward zero."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def family(kernel: str) -> str:
    major, minor = (int(x) for x in kernel.split(".")[:2])
    v = (major, minor)
    if v < (3, 14):
        return "3.10"
    if v < (4, 17):
        return "3.14"
    if v < (5, 9):
        return "4.17"
    return "5.9"


def oom_badness(rss, swap, pgtables_bytes, adj, totalpages, kernel="6.18", cap=False,
                eligible=True):
    f = family(kernel)
    if not eligible or adj == -1000:
        return LONG_MIN if f == "5.9" else 0
    # points = get_mm_rss(mm) + get_mm_counter(mm, MM_SWAPENTS) + mm_pgtables_bytes(mm) / PAGE_SIZE
    points = rss + swap + pgtables_bytes // 4096
    if f == "3.10" and cap:
        adj -= 30                                   # "3% bonus" in adj units
    if f == "3.14" and cap:
        points -= c_div(points * 3, 100)            # root bonus on current usage
    adj = s64(adj * (totalpages // 1000))           # adj *= totalpages / 1000: divide first
    points = s64(points + adj)
    if f == "5.9":
        return points                               # no clamp: may be negative
    return points if points > 0 else 1


def proc_oom_score(rss, swap, pgtables_bytes, adj, totalpages, kernel="6.18", cap=False,
                   eligible=True):
    b = oom_badness(rss, swap, pgtables_bytes, adj, totalpages, kernel, cap, eligible)
    if family(kernel) == "5.9":
        if b == LONG_MIN:
            return 0
        return c_div(s64(1000 + c_div(s64(b * 1000), totalpages)) * 2, 3)
    # unsigned long: points * 1000 / totalpages
    return ((b * 1000) % (1 << 64)) // totalpages
