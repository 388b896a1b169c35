"""The engine's swap entries against the plain-Python model of tests/reference/swap_model.py:
MADV_PAGEOUT, swap-in faults, fork, copy on write, munmap and exit on a machine that never runs
short of memory, with swap devices small enough to fill up and wrap their slot cursor."""
from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmcore import Config, Machine
from mmcore.check import check_invariants

from .reference.swap_model import PAGE, SwapModel

MADV_PAGEOUT = 21
PAGES = 48
SWP_MASK = (1 << 50) - 1


def engine_states(t) -> dict[int, object]:
    out = {}
    for va, e in t.page_table().items():
        if e == 0:
            continue
        if not e & 1:
            out[va] = ("swap", ((~e) >> 9) & SWP_MASK)
        elif e & (1 << 9):                          # _PAGE_SPECIAL: the zero page
            out[va] = "zero"
        else:
            out[va] = ("page", bool(e & 2))
    return out


def compare(m: Machine, model: SwapModel, tasks: dict) -> None:
    for pid, t in tasks.items():
        assert engine_states(t) == model.pte_states(pid), f"pid {pid}"
        st_ = t.status()
        assert (st_["RssAnon"], st_["VmSwap"]) == model.status(pid), f"pid {pid}"
    assert m.meminfo()["SwapFree"] == model.free * 4
    v = m.vmstat()
    assert (v["pswpin"], v["pswpout"]) == (model.pswpin, model.pswpout)
    check_invariants(m)


_OP = st.tuples(st.sampled_from(["touch_w", "touch_r", "pageout", "fork", "exit", "munmap"]),
                st.integers(0, 3), st.integers(0, PAGES - 1), st.integers(1, 16))


def run(ops, swap_pages: int) -> None:
    m = Machine(Config(memory="256MiB", swap=swap_pages * PAGE, thp_enabled="never"))
    m.spawn("init")
    model = SwapModel(swap_pages * PAGE)
    root = m.spawn("p")
    model.spawn(root.pid)
    base = root.mmap(PAGES * PAGE)
    model.mmap(root.pid, base, PAGES * PAGE)
    tasks = {root.pid: root}
    for name, who, first, n in ops:
        pid = sorted(tasks)[who % len(tasks)]
        t = tasks[pid]
        lo, hi = base + first * PAGE, base + min(first + n, PAGES) * PAGE
        if name in ("touch_w", "touch_r"):
            mapped = [va for va in range(lo, hi, PAGE)
                      if any(s <= va < e for s, e in model.tasks[pid].vmas)]
            for va in mapped:                       # page by page: holes are skipped
                t.touch(va, PAGE, write=name == "touch_w")
            for va in mapped:
                model.touch(pid, va, PAGE, name == "touch_w")
        elif name == "pageout":
            try:
                t.madvise(lo, hi - lo, MADV_PAGEOUT)
            except OSError:
                pass                                # ENOMEM for a hole, after the rest is done
            model.pageout(pid, lo, hi - lo)
        elif name == "fork" and len(tasks) < 4:
            c = t.fork()
            tasks[c.pid] = c
            model.fork(pid, c.pid)
        elif name == "exit" and t is not root:
            t.exit()
            del tasks[pid]
            model.exit(pid)
        elif name == "munmap":
            t.munmap(lo, hi - lo)
            model.munmap(pid, lo, hi - lo)
        compare(m, model, tasks)


@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_OP, min_size=3, max_size=25), st.sampled_from([12, 40, 1024]))
def test_swap_streams_agree(ops, swap_pages):
    run(ops, swap_pages)


def test_a_full_swap_device_wraps_its_cursor():
    ops = [("touch_w", 0, 0, 16), ("pageout", 0, 0, 8), ("touch_r", 0, 2, 3),
           ("pageout", 0, 8, 8), ("touch_w", 0, 0, 4), ("pageout", 0, 0, 16)]
    run(ops, 12)                                     # 11 slots for 16 pages


def test_shared_entries_after_fork():
    ops = [("touch_w", 0, 0, 8), ("pageout", 0, 0, 8), ("fork", 0, 0, 1), ("fork", 0, 0, 1),
           ("touch_r", 1, 0, 2), ("touch_w", 2, 2, 2), ("exit", 1, 0, 1), ("touch_w", 0, 0, 8)]
    run(ops, 40)
