"""Plain-Python reference model of memory-cgroup charging and the memcg OOM killer, for
anonymous private memory on a cgroup v2, kernel 6.18 machine (tests/test_memcg_differential.py
runs it against the engine, op by op).

Slow and obvious on purpose: one object per cgroup, task, page and PTE. It is written from the
kernel's rules, not from the engine's code; each rule names the function it follows.

Charging (mm/memcontrol.c, mm/page_counter.c)
 C1. An anonymous page is charged when it is allocated: a write fault on an empty PTE
     (do_anonymous_page), a write to the zero page or a COW copy (wp_page_copy -> folio_prealloc
     -> mem_cgroup_charge). It is charged to the memcg of the mm's owner (get_mem_cgroup_from_mm:
     the process's cgroup at the time of the fault). A read of a never-written page maps the zero
     page and charges nothing. A write to a write-protected page that is no longer shared
     (wp_can_reuse_anon_folio) reuses it and charges nothing.
 C2. try_charge_memcg / page_counter_try_charge: the charge walks from the memcg up; the first
     counter that would pass its memory.max is ``mem_over_limit`` and nothing is charged. The
     root memcg's own pages are not counted (try_charge returns at once for the root), its
     counter only sums its children's.
 C3. A refused charge counts a ``max`` event at mem_over_limit (memcg_memory_event(MEMCG_MAX)).
     The kernel counts one per pass of its retry loop (18 before an OOM); the model counts one per
     refused charge, so only "max > 0" is comparable.
 C4. Reclaim (try_to_free_mem_cgroup_pages) frees nothing: anonymous pages without swap are not
     reclaimable and no page cache is modelled. So every refused charge ends in mem_cgroup_oom
     (order 0 <= PAGE_ALLOC_COSTLY_ORDER).
 C5. __folio_uncharge / page_counter_uncharge: a page is uncharged from the memcg it was charged
     to (folio->memcg_data), whatever cgroup its mappers are in now, when its last mapping goes
     (munmap, exit, an OOM kill, or a COW copy replacing the last other mapping).
 C6. cgroup v2 never moves charges: attaching a process (cgroup.procs) changes only where its
     next charges go. Attaching a process to the cgroup it is already in is a no-op
     (cgroup_migrate_prepare_dst drops a src == dst css_set; cgroup_migrate_add_task returns).
 C7. memory_max_write: the new limit is set first; while usage is above it, reclaim (nothing),
     then a ``oom`` event and mem_cgroup_out_of_memory; stop when usage fits or nothing could be
     killed (the write still succeeds, usage stays above the limit).

The memcg OOM (mm/memcontrol.c mem_cgroup_oom, mm/oom_kill.c)
 O1. mem_cgroup_oom counts an ``oom`` event at mem_over_limit and runs out_of_memory with
     oc->memcg = mem_over_limit; totalpages = mem_cgroup_get_max = memory.max (+ swap.max capped
     by the swap there is: none here), or 1 if that is 0 (constrained_alloc).
 O2. select_bad_process -> mem_cgroup_scan_tasks: mem_over_limit's subtree in pre-order
     (css_next_descendant_pre: parent first, children in creation order), each cgroup's
     processes in the order they joined (css_set task lists: fork and migration add at the tail).
     oom_evaluate_task skips the global init (oom_unkillable_task); oom_badness is LONG_MIN for
     oom_score_adj -1000, else rss + swap entries + page-table pages + adj * (totalpages / 1000)
     (integer division first); chosen_points starts at LONG_MIN and a task with points >=
     chosen_points replaces the choice, so ties go to the LAST task in scan order.
 O3. oom_kill_process: mem_cgroup_get_oom_group first (the highest memcg with memory.oom.group
     set from the victim's cgroup up to mem_over_limit); __oom_kill_process(victim) counts
     ``oom_kill`` at the victim's mm's memcg (memcg_memory_event_mm) and vmstat oom_kill. With a
     group: ``oom_group_kill`` +1 at the group, then mem_cgroup_scan_tasks(group,
     oom_kill_memcg_member) kills every process of the group's subtree except oom_score_adj -1000
     and the global init, each counting ``oom_kill`` again -- the victim included: it still has
     its mm when the scan reaches it (the SIGKILL is asynchronous), so it is counted twice.
 O4. The killed processes exit (their mappings go: C5). The kernel frees the victim's memory
     asynchronously (exit or the oom_reaper) while the charge retries; the model frees it at once.
 O5. mem_cgroup_oom returned true: try_charge retries the same charge (goto retry). A fault that
     had decided to copy a page goes on copying it after the kill, even if the kill left the old
     page mapped only by the faulting task. If the faulting task was killed, its access ends. If
     nothing could be killed, the charge fails and the fault returns VM_FAULT_OOM: the kernel
     then retries the fault forever (pagefault_out_of_memory: "Huh VM_FAULT_OOM leaked out");
     the model, as the engine, fails the access with ENOMEM instead.

Page tables (the page-table term of oom_badness; tests/reference/SEMANTICS.md 2 and 9)
 P1. Modelled here, not read from the engine: x86-64 4-level paging; VmPTE (mm_pgtables_bytes)
     counts PUD, PMD and PTE tables (not the PGD). A fault inside a VMA allocates the missing PUD
     (512 GiB), PMD (1 GiB) and PTE (2 MiB) tables of its address before the page (and before
     the charge: a charge that fails leaves them); a SIGSEGV allocates nothing.
 P2. munmap frees every table whose range intersects the unmapped range and no remaining VMA
     (free_pgtables, simplified as SEMANTICS 2); MAP_FIXED over a mapping unmaps it first.
 P3. fork copies every leaf (anonymous and zero-page PTEs) and allocates the child's tables for
     each (SEMANTICS 9); the parent's anonymous PTEs become write-protected. exit frees all.
     This is the engine's rule, kept so the badness inputs agree; Linux's copy_page_range skips
     VMAs without an anon_vma and allocates the child's tables per parent table, not per leaf
     (test_fork_page_tables_linux_rule shows both as strict xfails).
 P4. Page tables are not charged to the memcg (the kernel charges them as kmem, __GFP_ACCOUNT;
     the engine, and so the model, leave them out of memory.current).

Simplifications: processes only (no threads), anonymous private 4 KiB pages only (THP disabled,
no swap, no page cache, no shmem), v2 only, no memory.high/low/min, no oom_kill_disable, pid 1 is
the global init. Global OOM never happens (enough RAM).

Known engine departures can be switched on (``departures=``, names in ``DEPARTURES``) so that
random streams keep comparing past them; the differential tests show each under Linux's rule as
a strict xfail.
"""
from __future__ import annotations

import errno

PAGE = 4096
LONG_MIN = -(1 << 63)
PAGE_COUNTER_MAX = ((1 << 63) - 1) // PAGE      # memory.max "max" (LONG_MAX / PAGE_SIZE)
UNLIMITED = None                   # memory.max "max"
PTRS_SHIFT = {"pte": 21, "pmd": 30, "pud": 39}   # the span of one table at each level

DEPARTURES = {
    "cow_reuse_charges": "engine: kernels/memory.py charges a page before do_wp_page decides "
                         "to reuse an exclusive write-protected page, so a write at the limit "
                         "OOM-kills where the kernel reuses the page without a charge",
    "fault_restarts": "engine: after a memcg OOM kill the fault restarts from scratch and "
                      "re-decides copy vs reuse; the kernel retries the charge of the copy it "
                      "had decided (try_charge goto retry), so the copy is charged to the writer "
                      "and the old page uncharged from its memcg",
    "group_kill_unfiltered": "engine: the memory.oom.group kill (Machine._out_of_memory) kills "
                             "oom_score_adj -1000 processes and init too; oom_kill_memcg_member "
                             "spares them",
    "group_kill_victim_once": "engine: a group kill counts oom_kill once for the victim; the "
                              "kernel's oom_kill_memcg_member calls __oom_kill_process on the "
                              "victim again (it still has its mm) and counts it twice",
    "reattach_moves_to_tail": "engine: attaching a process to the cgroup it is already in moves "
                              "it to the end of the cgroup's scan order; the kernel's migration "
                              "skips a src == dst css_set (no-op)",
}


class RefSegv(Exception):
    """SIGSEGV: an access outside every (faultable) VMA."""


class RefOOMKilled(Exception):
    """The faulting task was killed by the OOM killer during its access."""


class _Cgroup:
    def __init__(self, path: str, parent: "_Cgroup | None"):
        self.path = path
        self.parent = parent
        self.children: list[_Cgroup] = []
        self.max: int | None = UNLIMITED       # pages
        self.oom_group = 0
        self.usage = 0                         # the page counter (hierarchical)
        self.anon = 0                          # pages charged to this memcg itself (memory.stat)
        self.ev = {"max": 0, "oom": 0, "oom_kill": 0, "oom_group_kill": 0}     # local events
        self.procs: list[int] = []             # tgids in join order

    def subtree(self) -> list["_Cgroup"]:
        out = [self]
        for c in self.children:
            out.extend(c.subtree())
        return out

    def ancestry(self) -> list["_Cgroup"]:
        out, c = [], self
        while c is not None:
            out.append(c)
            c = c.parent
        return out


class _Page:
    __slots__ = ("memcg", "mapcount")

    def __init__(self, memcg: _Cgroup):
        self.memcg = memcg
        self.mapcount = 1


class _Pte:
    __slots__ = ("page", "writable")

    def __init__(self, page: _Page | None, writable: bool):
        self.page = page            # None: the zero page
        self.writable = writable


class _MM:
    def __init__(self):
        self.vmas: list[list[int]] = []       # sorted disjoint [start, end) byte ranges
        self.specials: list[tuple[int, int]] = []   # [vvar]/[vdso]: VMAs nobody may fault
        self.ptes: dict[int, _Pte] = {}      # vpn -> PTE
        self.tables: set[tuple[str, int]] = set()

    def in_vma(self, va: int) -> bool:
        return any(s <= va < e for s, e in self.vmas)

    def intersects(self, lo: int, hi: int) -> bool:
        return any(s < hi and lo < e for s, e in self.vmas) or \
            any(s < hi and lo < e for s, e in self.specials)

    def add_vma(self, lo: int, hi: int) -> None:
        out = []
        for s, e in self.vmas:
            if e < lo or s > hi:
                out.append([s, e])
            else:                              # touching or overlapping: one range
                lo, hi = min(lo, s), max(hi, e)
        out.append([lo, hi])
        self.vmas = sorted(out)

    def remove_vma(self, lo: int, hi: int) -> None:
        out = []
        for s, e in self.vmas:
            if e <= lo or s >= hi:
                out.append([s, e])
                continue
            if s < lo:
                out.append([s, lo])
            if e > hi:
                out.append([hi, e])
        self.vmas = sorted(out)

    def rss(self) -> int:
        return sum(1 for p in self.ptes.values() if p.page is not None)


def table_keys(va: int) -> list[tuple[str, int]]:
    """The PUD, PMD and PTE tables a 4-level walk to ``va`` needs (VmPTE counts these)."""
    return [(lvl, va >> sh) for lvl, sh in PTRS_SHIFT.items()]


class _Task:
    def __init__(self, pid: int, mm: _MM, cgroup: _Cgroup, adj: int):
        self.pid = pid
        self.mm = mm
        self.cgroup = cgroup
        self.adj = adj


class MemcgModel:
    """The reference machine: cgroups, processes, their anonymous pages and the memcg OOM."""

    def __init__(self, mmap_base: int = 0x7FFFF7FFF000, departures=()):
        unknown = set(departures) - set(DEPARTURES)
        if unknown:
            raise ValueError(f"unknown departures {sorted(unknown)}")
        self.departures = frozenset(departures)
        self.mmap_base = mmap_base
        self.root = _Cgroup("/", None)
        self.cgroups: dict[str, _Cgroup] = {"/": self.root}
        self.tasks: dict[int, _Task] = {}
        self.next_pid = 1
        self.oom_kills = 0                     # vmstat oom_kill
        # ("oom", memcg path, victim pid or None, faulting pid or None for a memory.max write)
        self.log: list[tuple] = []

    # ---- cgroups -----------------------------------------------------------------------------
    def mkdir(self, path: str) -> None:
        assert path not in self.cgroups, path
        parent = self.cgroups[path.rsplit("/", 1)[0] or "/"]
        cg = _Cgroup(path, parent)
        parent.children.append(cg)
        self.cgroups[path] = cg

    def preorder(self) -> list[str]:
        return [c.path for c in self.root.subtree()]

    def attach(self, path: str, pid: int) -> None:
        t = self.tasks[pid]
        cg = self.cgroups[path]
        if cg is t.cgroup and "reattach_moves_to_tail" not in self.departures:
            return                             # C6: src == dst css_set: nothing moves
        t.cgroup.procs.remove(pid)
        cg.procs.append(pid)
        t.cgroup = cg

    def write_max(self, path: str, pages: int | None) -> None:
        """memory.max (pages, None for "max"): C7."""
        cg = self.cgroups[path]
        assert cg is not self.root
        cg.max = pages
        if pages is None:
            return
        while cg.usage > pages:
            if not self._mem_cgroup_out_of_memory(cg, None):
                break

    def write_oom_group(self, path: str, value: int) -> None:
        assert path != "/"
        self.cgroups[path].oom_group = int(value)

    # ---- processes ---------------------------------------------------------------------------
    def spawn(self, adj: int = 0) -> int:
        """A new process with a fresh address space (the vDSO specials only), in the root."""
        pid = self.next_pid
        self.next_pid += 1
        mm = _MM()
        mm.specials = [(self.mmap_base - 0x8000, self.mmap_base)]
        self.tasks[pid] = _Task(pid, mm, self.root, adj)
        self.root.procs.append(pid)
        return pid

    def set_adj(self, pid: int, adj: int) -> None:
        self.tasks[pid].adj = adj

    def fork(self, pid: int) -> int:
        """P3: the child shares every page copy-on-write; it joins its parent's cgroup."""
        p = self.tasks[pid]
        child = self.next_pid
        self.next_pid += 1
        mm = _MM()
        mm.vmas = [list(v) for v in p.mm.vmas]
        mm.specials = list(p.mm.specials)
        for vpn, pte in p.mm.ptes.items():
            if pte.page is not None:
                pte.page.mapcount += 1
            pte.writable = False               # the parent's PTEs are write-protected too
            mm.ptes[vpn] = _Pte(pte.page, False)
            mm.tables.update(table_keys(vpn << 12))
        self.tasks[child] = _Task(child, mm, p.cgroup, p.adj)
        p.cgroup.procs.append(child)
        return child

    def exit(self, pid: int) -> None:
        t = self.tasks.pop(pid)
        t.cgroup.procs.remove(pid)
        for pte in t.mm.ptes.values():
            self._unmap(pte)
        t.mm.ptes.clear()
        t.mm.tables.clear()
        t.mm.vmas = []

    # ---- address space -----------------------------------------------------------------------
    def mmap(self, pid: int, addr: int, length: int) -> int:
        """mmap(addr, length, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_FIXED)."""
        assert addr % PAGE == 0 and length > 0
        hi = addr + (length + PAGE - 1) // PAGE * PAGE
        self.munmap(pid, addr, length)         # P2: MAP_FIXED unmaps what it overlaps first
        self.tasks[pid].mm.add_vma(addr, hi)
        return addr

    def munmap(self, pid: int, addr: int, length: int) -> None:
        mm = self.tasks[pid].mm
        lo, hi = addr, addr + (length + PAGE - 1) // PAGE * PAGE
        if not any(s < hi and lo < e for s, e in mm.vmas):
            return
        for vpn in sorted(v for v in mm.ptes if lo <= v << 12 < hi):
            self._unmap(mm.ptes.pop(vpn))
        mm.remove_vma(lo, hi)
        for lvl, sh in PTRS_SHIFT.items():
            for key in range(lo >> sh, ((hi - 1) >> sh) + 1):
                if (lvl, key) in mm.tables and not mm.intersects(key << sh, (key + 1) << sh):
                    mm.tables.discard((lvl, key))

    def _unmap(self, pte: _Pte) -> None:
        page = pte.page
        if page is None:
            return
        page.mapcount -= 1
        if page.mapcount == 0:
            self._uncharge(page)

    # ---- accesses ------------------------------------------------------------------------------
    def touch(self, pid: int, addr: int, length: int, write: bool) -> None:
        """One access to each page of [addr, addr + length), in address order. Raises RefSegv,
        RefOOMKilled (the task died; the pages before stay done) or OSError(ENOMEM)."""
        va = addr
        while va < addr + length:
            self._fault(self.tasks[pid], va, write)
            va += PAGE

    def _fault(self, t: _Task, va: int, write: bool) -> None:
        while not self._fault_once(t, va, write):
            pass                               # the engine's restart after a kill

    def _fault_once(self, t: _Task, va: int, write: bool) -> bool:
        """handle_mm_fault for one access; False: restart it (departure ``fault_restarts``)."""
        mm = t.mm
        if not mm.in_vma(va):
            raise RefSegv(va)
        vpn = va >> 12
        pte = mm.ptes.get(vpn)
        if pte is not None and (not write or pte.writable):
            return True                        # no fault
        mm.tables.update(table_keys(va))       # P1: the walk allocates the tables first
        if pte is None and not write:
            mm.ptes[vpn] = _Pte(None, False)   # the zero page: no charge
            return True
        if pte is not None and pte.page is not None and pte.page.mapcount == 1:
            # wp_can_reuse_anon_folio: nobody else maps it
            if "cow_reuse_charges" in self.departures:
                if not self._charge(t):
                    return False
                self._uncharge_counter(t.cgroup)       # charged for nothing: given back
            pte.writable = True
            return True
        # a new page: do_anonymous_page, or wp_page_copy (from the zero page or a shared page)
        if not self._charge(t):
            return False
        page = _Page(t.cgroup)
        t.cgroup.anon += 1
        old = mm.ptes.get(vpn)
        mm.ptes[vpn] = _Pte(page, True)
        if old is not None:
            self._unmap(old)                   # the old page's mapping goes (C5)
        return True

    # ---- charging -------------------------------------------------------------------------------
    def _over_limit(self, cg: _Cgroup) -> _Cgroup | None:
        for c in cg.ancestry():
            if c is self.root:
                return None
            if c.max is not None and c.usage + 1 > c.max:
                return c
        return None

    def _charge(self, t: _Task) -> bool:
        """try_charge_memcg for one page to ``t``'s memcg, with the OOM loop (O5). True: charged;
        False: a victim died and the fault restarts (``fault_restarts``). Raises RefOOMKilled if
        ``t`` died, OSError(ENOMEM) if nothing could be killed."""
        while True:
            cg = t.cgroup
            if cg is self.root:
                return True                   # C2: the root's own pages are not counted
            over = self._over_limit(cg)
            if over is None:
                for c in cg.ancestry():
                    c.usage += 1
                return True
            over.ev["max"] += 1
            if not self._mem_cgroup_out_of_memory(over, t):
                raise OSError(errno.ENOMEM, "memcg OOM without a victim")
            if t.pid not in self.tasks:
                raise RefOOMKilled(t.pid)
            if "fault_restarts" in self.departures:
                return False

    def _uncharge_counter(self, cg: _Cgroup) -> None:
        if cg is self.root:
            return
        for c in cg.ancestry():
            c.usage -= 1

    def _uncharge(self, page: _Page) -> None:
        page.memcg.anon -= 1
        self._uncharge_counter(page.memcg)

    # ---- the OOM killer --------------------------------------------------------------------------
    def badness(self, t: _Task, totalpages: int) -> int:
        """oom_badness (5.9+): LONG_MIN for the unkillable, else rss + swap + page tables +
        adj * (totalpages / 1000)."""
        if t.pid == 1 or t.adj == -1000:
            return LONG_MIN
        return t.mm.rss() + 0 + len(t.mm.tables) + t.adj * (totalpages // 1000)

    def scan_order(self, cg: _Cgroup) -> list[_Task]:
        return [self.tasks[p] for c in cg.subtree() for p in c.procs]

    def totalpages(self, cg: _Cgroup) -> int:
        return (cg.max if cg.max is not None else PAGE_COUNTER_MAX) or 1

    def select_bad_process(self, cg: _Cgroup) -> _Task | None:
        total = self.totalpages(cg)
        chosen, chosen_points = None, LONG_MIN
        for t in self.scan_order(cg):
            if t.pid == 1:
                continue                       # oom_unkillable_task
            points = self.badness(t, total)
            if points == LONG_MIN or points < chosen_points:
                continue
            chosen, chosen_points = t, points
        return chosen

    def oom_group(self, victim: _Task, oom_cg: _Cgroup) -> _Cgroup | None:
        """mem_cgroup_get_oom_group."""
        found = None
        for c in victim.cgroup.ancestry():
            if c is self.root:
                break
            if c.oom_group:
                found = c
            if c is oom_cg:
                break
        return found

    def _mem_cgroup_out_of_memory(self, oom_cg: _Cgroup, current: _Task | None) -> bool:
        oom_cg.ev["oom"] += 1
        victim = self.select_bad_process(oom_cg)
        self.log.append(("oom", oom_cg.path, None if victim is None else victim.pid,
                         None if current is None else current.pid))
        if victim is None:
            return False
        group = self.oom_group(victim, oom_cg)
        killed = [victim]
        self._count_kill(victim)
        if group is not None:
            group.ev["oom_group_kill"] += 1
            for t in self.scan_order(group):
                if "group_kill_unfiltered" not in self.departures and \
                        (t.adj == -1000 or t.pid == 1):
                    continue                   # oom_kill_memcg_member spares them
                if t is victim:
                    if "group_kill_victim_once" not in self.departures:
                        self._count_kill(t)    # __oom_kill_process again: still has its mm
                    continue
                self._count_kill(t)
                killed.append(t)
        for t in killed:
            self.exit(t.pid)
        return True

    def _count_kill(self, t: _Task) -> None:
        t.cgroup.ev["oom_kill"] += 1
        self.oom_kills += 1

    # ---- observables ----------------------------------------------------------------------------
    def current(self, path: str) -> int:
        """memory.current in bytes (the page counter; C2 for the root)."""
        return self.cgroups[path].usage * PAGE

    def stat_anon(self, path: str) -> int:
        """memory.stat anon (recursive) in bytes."""
        return sum(c.anon for c in self.cgroups[path].subtree()) * PAGE

    def events(self, path: str, local: bool = False) -> dict[str, int]:
        cgs = [self.cgroups[path]] if local else self.cgroups[path].subtree()
        return {k: sum(c.ev[k] for c in cgs) for k in ("max", "oom", "oom_kill", "oom_group_kill")}

    def procs(self, path: str) -> list[int]:
        return list(self.cgroups[path].procs)

    def status(self, pid: int) -> dict[str, int]:
        mm = self.tasks[pid].mm
        return {"RssAnon": mm.rss() * 4, "VmPTE": len(mm.tables) * 4}

    def cgroup_of(self, pid: int) -> str:
        return self.tasks[pid].cgroup.path

    # ---- self-consistency --------------------------------------------------------------------------
    def check_invariants(self) -> None:
        pages: dict[int, tuple[_Page, int]] = {}
        for t in self.tasks.values():
            for vpn, pte in t.mm.ptes.items():
                assert t.mm.in_vma(vpn << 12), f"pid {t.pid}: a PTE outside every VMA"
                for key in table_keys(vpn << 12):
                    assert key in t.mm.tables, f"pid {t.pid}: PTE {vpn:#x} without table {key}"
                if pte.page is not None:
                    page, n = pages.get(id(pte.page), (pte.page, 0))
                    pages[id(pte.page)] = (page, n + 1)
                    assert not (pte.writable and pte.page.mapcount > 1), "a shared page writable"
            for lvl, key in t.mm.tables:
                sh = PTRS_SHIFT[lvl]
                assert t.mm.intersects(key << sh, (key + 1) << sh), \
                    f"pid {t.pid}: {lvl} table {key:#x} outside every VMA"
            assert t.cgroup.procs.count(t.pid) == 1
        for page, n in pages.values():
            assert page.mapcount == n, f"mapcount {page.mapcount} != {n} mappings"
        local: dict[str, int] = {}
        for page, _ in pages.values():
            local[page.memcg.path] = local.get(page.memcg.path, 0) + 1
        for c in self.root.subtree():
            assert c.anon == local.get(c.path, 0), f"{c.path}: anon {c.anon} != its pages"
            charged = sum(local.get(d.path, 0) for d in c.subtree() if d is not self.root)
            assert c.usage == charged, f"{c.path}: usage {c.usage} != {charged} charged pages"
            assert all(p in self.tasks and self.tasks[p].cgroup is c for p in c.procs)
