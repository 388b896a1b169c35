"""A plain-Python model of swap entries without memory pressure, for differential tests.

It follows the engine's swap rules (``kernels/swap.py``, ``do_swap_page`` in
``kernels/memory.py``) as Linux states them, on a machine whose memory never runs short, so no
reclaim runs and every swap-out comes from MADV_PAGEOUT:

- One swap device of ``slots`` pages; slot 0 is the header; a new slot is the first free one at
  or after a cursor (wrapping to 1), and the cursor moves past it.
- MADV_PAGEOUT walks the range's VMAs in address order and swaps out each present anonymous page
  that exactly one PTE maps (a shared page stays), while a slot is free (none: it stops).
- A fault on a swap entry held by one PTE maps a new page, writable where the VMA is (dirty on a
  write) and frees the slot; a shared entry is mapped read-only into every address space of the
  fork family that holds it at that address, its count dropping by that many (freed at 0).
  A write then copies on write as for any shared page.
- fork copies swap entries (one more count each) and write-protects present pages on both
  sides; munmap and exit drop their entries' counts.
- Reads of never-written anonymous memory map the zero page; a write to it, or to a page mapped
  more than once, copies; a write to a page mapped once reuses it.

Every page here holds data (a write made it), so 6.12's swap zeromap never applies.

State compared with the engine: each task's PTE at every page of its mappings as ``None``,
``"zero"``, ``("swap", slot)`` or ``("page", writable)``; RssAnon and VmSwap; SwapFree; pswpin and
pswpout.
"""
from __future__ import annotations

PAGE = 4096


class Page:
    __slots__ = ("mapcount",)

    def __init__(self) -> None:
        self.mapcount = 1


class Task:
    def __init__(self, pid: int, family: int) -> None:
        self.pid = pid
        self.family = family                 # the anon tree (shared along fork)
        self.vmas: list[list[int]] = []      # [start, end), sorted, writable anonymous
        self.pte: dict[int, object] = {}     # va -> "zero" | ("swap", slot) | [Page, writable]


class SwapModel:
    def __init__(self, swap_bytes: int) -> None:
        self.slots = swap_bytes // PAGE
        self.count = [0] * max(self.slots, 1)
        self.cursor = 1
        self.free = max(self.slots - 1, 0)
        self.tasks: dict[int, Task] = {}
        self.pswpin = 0
        self.pswpout = 0

    # ---- slots ----------------------------------------------------------------------------
    def _get_slot(self) -> int:
        n = self.slots
        s = self.cursor
        for _ in range(n):
            if s >= n or s < 1:
                s = 1
            if self.count[s] == 0:
                self.cursor = s + 1
                self.free -= 1
                return s
            s += 1
        raise AssertionError("no free slot though free > 0")

    def _put(self, slot: int, n: int) -> None:
        self.count[slot] -= n
        assert self.count[slot] >= 0
        if self.count[slot] == 0:
            self.free += 1

    # ---- tasks and mappings -----------------------------------------------------------------
    def spawn(self, pid: int) -> None:
        self.tasks[pid] = Task(pid, pid)

    def mmap(self, pid: int, addr: int, length: int) -> None:
        t = self.tasks[pid]
        t.vmas.append([addr, addr + length])
        t.vmas.sort()

    def _in_vma(self, t: Task, va: int) -> bool:
        return any(s <= va < e for s, e in t.vmas)

    def _unmap_pte(self, t: Task, va: int) -> None:
        e = t.pte.pop(va, None)
        if isinstance(e, tuple):
            self._put(e[1], 1)
        elif isinstance(e, list):
            e[0].mapcount -= 1

    def munmap(self, pid: int, addr: int, length: int) -> None:
        t = self.tasks[pid]
        end = addr + length
        for va in [v for v in t.pte if addr <= v < end]:
            self._unmap_pte(t, va)
        out = []
        for s, e in t.vmas:
            if e <= addr or s >= end:
                out.append([s, e])
                continue
            if s < addr:
                out.append([s, addr])
            if e > end:
                out.append([end, e])
        t.vmas = sorted(out)

    def exit(self, pid: int) -> None:
        t = self.tasks.pop(pid)
        for va in list(t.pte):
            self._unmap_pte(t, va)

    def fork(self, pid: int, child: int) -> None:
        p = self.tasks[pid]
        c = Task(child, p.family)
        c.vmas = [list(v) for v in p.vmas]
        for va, e in p.pte.items():
            if isinstance(e, tuple):
                self.count[e[1]] += 1
                c.pte[va] = e
            elif isinstance(e, list):
                e[0].mapcount += 1
                e[1] = False                      # write-protected on both sides
                c.pte[va] = [e[0], False]
            else:
                c.pte[va] = e
        self.tasks[child] = c

    # ---- faults -------------------------------------------------------------------------------
    def touch(self, pid: int, addr: int, length: int, write: bool) -> None:
        t = self.tasks[pid]
        for va in range(addr, addr + length, PAGE):
            assert self._in_vma(t, va), "touch outside a mapping"
            self._access(t, va, write)

    def _access(self, t: Task, va: int, write: bool) -> None:
        e = t.pte.get(va)
        if isinstance(e, tuple):
            self._swap_in(t, va, e, write)
            e = t.pte.get(va)
            if not write or (isinstance(e, list) and e[1]):
                return
        if e is None:
            t.pte[va] = [Page(), True] if write else "zero"
            return
        if not write:
            return
        if e == "zero":
            t.pte[va] = [Page(), True]
            return
        page, writable = e
        if writable:
            return
        if page.mapcount == 1:
            e[1] = True                           # reuse
        else:
            page.mapcount -= 1                    # copy on write
            t.pte[va] = [Page(), True]

    def _swap_in(self, t: Task, va: int, e: tuple, write: bool) -> None:
        slot = e[1]
        self.pswpin += 1
        page = Page()
        if self.count[slot] == 1:
            t.pte[va] = [page, True]
            self._put(slot, 1)
            return
        n = 0
        for other in self.tasks.values():
            if other.family == t.family and other.pte.get(va) == e:
                other.pte[va] = [page, False]
                n += 1
        page.mapcount = n
        self._put(slot, n)

    # ---- madvise -----------------------------------------------------------------------------
    def pageout(self, pid: int, addr: int, length: int) -> None:
        t = self.tasks[pid]
        end = addr + length
        for s, e in sorted(t.vmas):
            for va in range(max(s, addr), min(e, end), PAGE):
                if self.free <= 0:
                    return
                x = t.pte.get(va)
                if isinstance(x, list) and x[0].mapcount == 1:
                    slot = self._get_slot()
                    self.count[slot] = 1
                    t.pte[va] = ("swap", slot)
                    self.pswpout += 1

    # ---- observables ----------------------------------------------------------------------------
    def pte_states(self, pid: int) -> dict[int, object]:
        t = self.tasks[pid]
        out = {}
        for va, e in t.pte.items():
            out[va] = e if not isinstance(e, list) else ("page", e[1])
        return out

    def status(self, pid: int) -> tuple[int, int]:
        t = self.tasks[pid]
        anon = sum(1 for e in t.pte.values() if isinstance(e, list))
        swap = sum(1 for e in t.pte.values() if isinstance(e, tuple))
        return anon * 4, swap * 4
