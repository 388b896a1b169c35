"""Memory cgroups: the hierarchy, its control files, and which tasks are where.

``Machine.cgroup(path)`` returns a ``Cgroup`` (``"/"`` is the root); ``Machine.cgroup(path,
create=True)`` makes it first (as ``mkdir`` in the cgroup filesystem: the parent must exist).
``cg.attach(task)`` moves the task's whole thread group in (a write of its pid to
``cgroup.procs``); pages it charges from then on go to ``cg``, and the pages it charged before
stay where they were (cgroup v2 never moves charges; v1 only with move_charge_at_immigrate, which
is not modelled).

The control files are read and written by name, as text, in the kernel's formats and units:
``cg.read("memory.current")``, ``cg.write("memory.max", "64M")``. Which files exist depends on
the machine's hierarchy (``Config.cgroup_version``: 2 from 4.5, else 1):

v2  memory.current, memory.max, memory.high, memory.low, memory.min, memory.peak,
    memory.swap.current, memory.swap.max, memory.swap.events, memory.oom.group, memory.pressure,
    memory.events, memory.events.local, memory.stat, cgroup.procs
v1  memory.usage_in_bytes, memory.limit_in_bytes, memory.max_usage_in_bytes, memory.failcnt,
    memory.memsw.usage_in_bytes, memory.memsw.limit_in_bytes, memory.oom_control, memory.stat,
    cgroup.procs, tasks

Charging follows ``kernels/page_counter.py`` and ``kernels/memcontrol.py``: anonymous pages go to
the memcg of the mm's owner, page-cache pages to the memcg of the task that brings them in. A
charge that passes a limit reclaims from the memcg's subtree; one that still fails is the OOM
model's to handle (``Machine`` runs the memcg OOM killer, returns ENOMEM, or makes the task wait,
as ``Config.oom`` says).

memory.stat prints only what the machine models (anon, file, shmem, the THP amounts, the LRU
lists, pgscan, pgsteal and the file workingset counters); the kernel's other keys are left out
rather than printed as zeros.
"""
from __future__ import annotations

import errno as _errno
import os
from typing import TYPE_CHECKING

import numpy as np

from .kernels import consts as K

if TYPE_CHECKING:
    from .machine import Machine, Task

__all__ = ["Cgroup", "V1_FILES", "V2_FILES", "parse_path"]

PAGE = 4096
V2_FILES = ("memory.current", "memory.max", "memory.high", "memory.low", "memory.min",
            "memory.peak", "memory.swap.current", "memory.swap.max", "memory.swap.events",
            "memory.oom.group", "memory.pressure", "memory.events", "memory.events.local", "memory.stat",
    "cgroup.procs")
V1_FILES = ("memory.usage_in_bytes", "memory.limit_in_bytes", "memory.max_usage_in_bytes",
            "memory.failcnt", "memory.memsw.usage_in_bytes", "memory.memsw.limit_in_bytes",
            "memory.oom_control", "memory.stat", "cgroup.procs", "tasks")
_WRITABLE_V2 = ("memory.max", "memory.high", "memory.low", "memory.min", "memory.swap.max",
                "memory.oom.group", "cgroup.procs", "memory.peak")
_WRITABLE_V1 = ("memory.limit_in_bytes", "memory.memsw.limit_in_bytes", "memory.oom_control",
                "memory.failcnt", "memory.max_usage_in_bytes", "cgroup.procs", "tasks")
_EVENTS = (("low", K.MC_EV_LOW), ("high", K.MC_EV_HIGH), ("max", K.MC_EV_MAX),
           ("oom", K.MC_EV_OOM), ("oom_kill", K.MC_EV_OOM_KILL),
           ("oom_group_kill", K.MC_EV_OOM_GROUP_KILL))
# v1's RESOURCE_MAX in bytes, as memory.limit_in_bytes prints "no limit"
V1_UNLIMITED = 9223372036854771712


def _oserror(code: int, what: str) -> OSError:
    return OSError(code, f"{what}: {os.strerror(code)}")


def _page_counter_memparse(value, what: str) -> int:
    """page_counter_memparse: "max" or a byte count with an optional K/M/G/T suffix, rounded
    down to pages (EINVAL for anything else)."""
    if isinstance(value, str) and value.strip() == "max":
        return K.PAGE_COUNTER_MAX
    if isinstance(value, bool):
        raise _oserror(_errno.EINVAL, f"write {value!r} to {what}")
    try:
        if isinstance(value, (int, np.integer)):
            b = int(value)
        else:
            s = str(value).strip()
            mult = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}.get(s[-1:].lower(), 1)
            b = int(s[:-1] if mult > 1 else s) * mult
    except (ValueError, TypeError):
        raise _oserror(_errno.EINVAL, f"write {value!r} to {what} (expected \"max\" or a size "
                       "in bytes, K/M/G/T suffixes allowed)") from None
    if b < 0:
        raise _oserror(_errno.EINVAL, f"write {value!r} to {what} (expected a size >= 0)")
    return min(b // PAGE, K.PAGE_COUNTER_MAX)


_WORKINGSET = ("workingset_refault_file", "workingset_activate_file", "workingset_restore_file")


def workingset_names(d: dict[str, int], version: int) -> dict[str, int]:
    """The workingset counters of ``d`` (vmstat or memory.stat) under the names kernel
    ``version`` prints: none before 3.15 (no workingset detection); no ``_file`` suffix and no
    ``_anon`` counters before 5.9, which added anonymous workingset detection; no ``restore``
    before 4.20."""
    if version >= 509:
        return d
    for k in _WORKINGSET:
        d.pop(k.replace("_file", "_anon"))
    for k in _WORKINGSET:
        val = d.pop(k)
        if version >= 315 and (k != "workingset_restore_file" or version >= 420):
            d[k[:-len("_file")]] = val
    return d


class Cgroup:
    """One memory cgroup of a machine (see the module docstring)."""

    def __init__(self, machine: "Machine", cid: int, path: str):
        self.machine = machine
        self.id = cid
        self.path = path
        self.procs_order: list[int] = []       # tgids in attach order (css_task_iter's order)
        self.children: list["Cgroup"] = []

    def __repr__(self) -> str:
        return f"<Cgroup {self.path} id={self.id}>"

    # ---- the table row ---------------------------------------------------------------------
    def _g(self, field: int) -> int:
        return int(self.machine.state.gs[K.G_MCG + self.id * K.NR_MC + field])

    def _set(self, field: int, value: int) -> None:
        self.machine.state.gs[K.G_MCG + self.id * K.NR_MC + field] = value

    @property
    def parent(self) -> "Cgroup | None":
        p = self._g(K.MC_PARENT)
        return None if p < 0 else self.machine._cgroups_by_id[p]

    def subtree(self) -> list["Cgroup"]:
        """This cgroup and its descendants in pre-order (css_next_descendant_pre: a parent before
        its children, children in creation order), the order memcg walks use."""
        out = [self]
        for c in self.children:
            out.extend(c.subtree())
        return out

    def _sum(self, field: int) -> int:
        return sum(c._g(field) for c in self.subtree())

    # ---- values (bytes) ----------------------------------------------------------------------
    @property
    def current(self) -> int:
        """memory.current: bytes charged to this cgroup and its descendants."""
        return self._g(K.MC_USAGE) * PAGE

    @property
    def peak(self) -> int:
        return self._g(K.MC_WATERMARK) * PAGE

    def limit_pages(self, field: int = K.MC_MAX) -> int:
        return self._g(field)

    @property
    def oom_kill_disable(self) -> bool:
        return bool(self._g(K.MC_OOM_KILL_DISABLE))

    @property
    def under_oom(self) -> bool:
        return self._g(K.MC_UNDER_OOM) > 0

    def events(self, local: bool = False) -> dict[str, int]:
        """memory.events (hierarchical: this cgroup and its descendants) or memory.events.local.
        ``oom_group_kill`` exists from 5.19."""
        src = [self] if local else self.subtree()
        ev = {name: sum(c._g(f) for c in src) for name, f in _EVENTS}
        if self.machine.config.profile.version < 519:
            del ev["oom_group_kill"]
        return ev

    def swap_events(self) -> dict[str, int]:
        """memory.swap.events (hierarchical): ``max`` and ``fail`` count swap-outs memory.swap.max
        refused; ``high`` stays 0 (memory.swap.high is not modelled)."""
        src = self.subtree()
        return {"high": 0, "max": sum(c._g(K.MC_EV_SWAP_MAX) for c in src),
                "fail": sum(c._g(K.MC_EV_SWAP_FAIL) for c in src)}

    def stat(self, local: bool = False) -> dict[str, int]:
        """memory.stat as a dict, the v2 names (bytes for amounts, counts for events), summed
        over the subtree as the kernel's (recursive) memory.stat is; ``local``: this cgroup's
        own pages only (v1 prints both)."""
        s = self.machine.state
        src = [self] if local else self.subtree()
        ids = np.array([c.id for c in src], np.int64)
        lists = s.lru[K.LV_PAGES:K.LV_PAGES + K.NR_LRU_LISTS][:, ids[ids < s.lru.shape[1]]].sum(axis=1)
        heads = np.flatnonzero(((s.fr_flags & (K.PG_file_thp | K.PG_head)) ==
                                (K.PG_file_thp | K.PG_head)) &
                               ((s.fr_flags >> K.FOLIO_ORDER_SHIFT) & 15 == K.HPAGE_PMD_ORDER))
        heads = heads[np.isin(s.fr_memcg[heads], ids)]
        fs_type = s.fs[K.FS_TYPE, s.ino[K.I_FS, s.fr32[K.FR_OWNER, heads]]]
        tmpfs_thp = int((fs_type == K.FST_TMPFS).sum())

        def total(field: int) -> int:
            return sum(c._g(field) for c in src)
        out = {
            "anon": total(K.MC_ANON) * PAGE,
            "file": total(K.MC_FILE) * PAGE,
            "shmem": total(K.MC_SHMEM) * PAGE,
            "anon_thp": total(K.MC_ANON_THP) * K.HPAGE_PMD_SIZE,
            "file_thp": (int(heads.size) - tmpfs_thp) * K.HPAGE_PMD_SIZE,
            "shmem_thp": tmpfs_thp * K.HPAGE_PMD_SIZE,
            "inactive_anon": int(lists[K.LRU_INACTIVE_ANON]) * PAGE,
            "active_anon": int(lists[K.LRU_ACTIVE_ANON]) * PAGE,
            "inactive_file": int(lists[K.LRU_INACTIVE_FILE]) * PAGE,
            "active_file": int(lists[K.LRU_ACTIVE_FILE]) * PAGE,
            "unevictable": int(lists[K.LRU_UNEVICTABLE]) * PAGE,
            "pgscan": total(K.MC_PGSCAN),
            "pgsteal": total(K.MC_PGSTEAL),
            "thp_fault_fallback_charge": total(K.MC_THP_FALLBACK_CHARGE),
            "workingset_refault_file": total(K.MC_WS_REFAULT),
            "workingset_activate_file": total(K.MC_WS_ACTIVATE),
            "workingset_restore_file": total(K.MC_WS_RESTORE),
            "workingset_refault_anon": total(K.MC_WS_REFAULT_ANON),
            "workingset_activate_anon": total(K.MC_WS_ACTIVATE_ANON),
            "workingset_restore_anon": total(K.MC_WS_RESTORE_ANON),
        }
        return workingset_names(out, self.machine.config.profile.version)

    @property
    def procs(self) -> list[int]:
        """cgroup.procs: the thread-group ids in this cgroup (not its descendants)."""
        return [p for p in self.procs_order if p in self.machine._tasks]

    # ---- control files -------------------------------------------------------------------------
    def _files(self) -> tuple[str, ...]:
        return V2_FILES if self.machine.config.cgroups == 2 else V1_FILES

    def _check_file(self, name: str) -> None:
        if not isinstance(name, str) or name not in self._files():
            v = self.machine.config.cgroups
            raise _oserror(_errno.ENOENT, f"{self._fspath(name)} (cgroup v{v} memory files: "
                           f"{', '.join(self._files())})")

    def _fspath(self, name: object) -> str:
        base = "/sys/fs/cgroup" if self.machine.config.cgroups == 2 else "/sys/fs/cgroup/memory"
        return f"{base}{'' if self.path == '/' else self.path}/{name}"

    def read(self, name: str) -> str:
        """The text of control file ``name``, as the kernel prints it (newline-terminated)."""
        self._check_file(name)
        root = self.id == 0
        if self.machine.config.cgroups == 2 and root and name.startswith("memory.") and \
                name not in ("memory.stat", "memory.events", "memory.peak", "memory.current",
                             "memory.pressure"):
            raise _oserror(_errno.ENOENT, f"{self._fspath(name)} (the root cgroup has no such file)")

        def limit(field: int) -> str:
            v = self._g(field)
            return "max\n" if v >= K.PAGE_COUNTER_MAX else f"{v * PAGE}\n"

        def v1limit(field: int) -> str:
            v = self._g(field)
            return f"{V1_UNLIMITED}\n" if v >= K.PAGE_COUNTER_MAX else f"{v * PAGE}\n"
        if name in ("memory.current", "memory.usage_in_bytes"):
            return f"{self.current}\n"
        if name == "memory.memsw.usage_in_bytes":
            return f"{self.current + self._g(K.MC_SWAP_USAGE) * PAGE}\n"
        if name in ("memory.peak", "memory.max_usage_in_bytes"):
            return f"{self.peak}\n"
        if name == "memory.max":
            return limit(K.MC_MAX)
        if name == "memory.high":
            return limit(K.MC_HIGH)
        if name == "memory.swap.max":
            return limit(K.MC_SWAP_MAX)
        if name in ("memory.low", "memory.min"):
            return f"{self._g(K.MC_LOW if name == 'memory.low' else K.MC_MIN) * PAGE}\n"
        if name == "memory.swap.current":
            return f"{self._g(K.MC_SWAP_USAGE) * PAGE}\n"
        if name == "memory.limit_in_bytes":
            return v1limit(K.MC_MAX)
        if name == "memory.memsw.limit_in_bytes":
            return v1limit(K.MC_MEMSW_MAX)
        if name == "memory.failcnt":
            return f"{self._g(K.MC_FAILCNT)}\n"
        if name == "memory.oom.group":
            return f"{self._g(K.MC_OOM_GROUP)}\n"
        if name == "memory.pressure":
            from .psi import pressure_text
            return pressure_text(self.machine, self.id, self._fspath(name))
        if name == "memory.swap.events":
            return "".join(f"{k} {v}\n" for k, v in self.swap_events().items())
        if name in ("memory.events", "memory.events.local"):
            ev = self.events(local=name.endswith("local"))
            return "".join(f"{k} {v}\n" for k, v in ev.items())
        if name == "memory.oom_control":
            out = f"oom_kill_disable {int(self.oom_kill_disable)}\nunder_oom {int(self.under_oom)}\n"
            if self.machine.config.profile.version >= 413:
                out += f"oom_kill {self._g(K.MC_EV_OOM_KILL)}\n"
            return out
        if name == "memory.stat":
            st = self.stat()
            if self.machine.config.cgroups == 2:
                return "".join(f"{k} {v}\n" for k, v in st.items())
            return self._v1_stat(st)
        if name in ("cgroup.procs", "tasks"):
            pids = self.procs if name == "cgroup.procs" else [
                t.pid for p in self.procs for t in self.machine._tasks.values() if t._tgid == p]
            return "".join(f"{p}\n" for p in pids)
        raise AssertionError(name)

    def _v1_stat(self, st: dict[str, int]) -> str:
        """v1 memory.stat: the local counters, hierarchical_memory_limit, then total_* sums."""
        local = self.stat(local=True)
        keys = (("cache", "file"), ("rss", "anon"), ("rss_huge", "anon_thp"), ("shmem", "shmem"),
                ("inactive_anon", "inactive_anon"), ("active_anon", "active_anon"),
                ("inactive_file", "inactive_file"), ("active_file", "active_file"),
                ("unevictable", "unevictable"))
        lines = [f"{k} {local[v]}" for k, v in keys]
        lim = min(c._g(K.MC_MAX) for c in self._ancestry())
        lines.append(f"hierarchical_memory_limit "
                     f"{V1_UNLIMITED if lim >= K.PAGE_COUNTER_MAX else lim * PAGE}")
        lines += [f"total_{k} {st[v]}" for k, v in keys]
        return "".join(x + "\n" for x in lines)

    def _ancestry(self) -> list["Cgroup"]:
        out = []
        c: Cgroup | None = self
        while c is not None:
            out.append(c)
            c = c.parent
        return out

    def write(self, name: str, value) -> None:
        """Write control file ``name`` as a shell's ``echo value > file`` would. Errors are the
        kernel's errnos as OSError, naming the file and what was expected."""
        self._check_file(name)
        v2 = self.machine.config.cgroups == 2
        what = self._fspath(name)
        if name not in (_WRITABLE_V2 if v2 else _WRITABLE_V1):
            raise _oserror(_errno.EACCES, f"write to {what} (read-only)")
        if name in ("cgroup.procs", "tasks"):
            try:
                pid = int(str(value).strip())
            except ValueError:
                raise _oserror(_errno.EINVAL, f"write {value!r} to {what} (expected a pid)") from None
            t = self.machine._tasks.get(pid)
            if t is None:
                raise _oserror(_errno.ESRCH, f"write {pid} to {what} (no such task)")
            self.attach(t)
            return
        if self.id == 0:
            raise _oserror(_errno.EINVAL, f"write to {what} (the root cgroup's limits are fixed)")
        if name == "memory.oom.group":
            self._set(K.MC_OOM_GROUP, self._bool01(value, what))
            return
        if name == "memory.oom_control":
            self._set(K.MC_OOM_KILL_DISABLE, self._bool01(value, what))
            if not self.oom_kill_disable:
                self.machine._memcg_wake(self)     # memcg_oom_recover
            return
        if name == "memory.failcnt":
            self._set(K.MC_FAILCNT, 0)
            return
        if name in ("memory.peak", "memory.max_usage_in_bytes"):
            self._set(K.MC_WATERMARK, self._g(K.MC_USAGE))
            return
        if not v2 and str(value).strip() == "-1":
            pages = K.PAGE_COUNTER_MAX
        else:
            pages = _page_counter_memparse(value, f"write {value!r} to {what}")
        field = {"memory.max": K.MC_MAX, "memory.high": K.MC_HIGH, "memory.low": K.MC_LOW,
                 "memory.min": K.MC_MIN, "memory.swap.max": K.MC_SWAP_MAX,
                 "memory.limit_in_bytes": K.MC_MAX,
                 "memory.memsw.limit_in_bytes": K.MC_MEMSW_MAX}[name]
        if name == "memory.limit_in_bytes" and pages > self._g(K.MC_MEMSW_MAX):
            raise _oserror(_errno.EINVAL, f"write {value!r} to {what} (above "
                           "memory.memsw.limit_in_bytes)")
        if name == "memory.memsw.limit_in_bytes" and pages < self._g(K.MC_MAX):
            raise _oserror(_errno.EINVAL, f"write {value!r} to {what} (below "
                           "memory.limit_in_bytes)")
        old = self._g(field)
        self._set(field, pages)
        if field in (K.MC_MAX, K.MC_HIGH) and self._g(K.MC_USAGE) > pages:
            ok = self.machine._memcg_shrink_to(self, pages, oom=(name == "memory.max"),
                                               high=(field == K.MC_HIGH))
            if not ok:
                self._set(field, old)
                raise _oserror(_errno.EBUSY, f"write {value!r} to {what} (usage "
                               f"{self.current} bytes could not be reclaimed below it)")
        if pages > old:
            self.machine._memcg_wake(self)

    @staticmethod
    def _bool01(value, what: str) -> int:
        s = str(value).strip()
        if s not in ("0", "1"):
            raise _oserror(_errno.EINVAL, f"write {value!r} to {what} (expected 0 or 1)")
        return int(s)

    # ---- membership ------------------------------------------------------------------------------
    def attach(self, task: "Task") -> None:
        """Move ``task``'s thread group into this cgroup (cgroup.procs)."""
        self.machine._cgroup_attach(self, task)

    def mkdir(self, name: str) -> "Cgroup":
        """A child cgroup (EEXIST if it exists)."""
        path = ("" if self.path == "/" else self.path) + "/" + name
        return self.machine.cgroup(path, create=True)

    def rmdir(self) -> None:
        """Remove this (empty, childless) cgroup: EBUSY if it has tasks or children; its charges
        move to the parent, as the kernel reparents an offlined memcg's pages."""
        self.machine._cgroup_rmdir(self)


def parse_path(path: str) -> str:
    """A cgroup path normalised: "/a/b" (the root is "/")."""
    if not isinstance(path, str):
        raise TypeError(f"path: expected a string such as \"/a/b\", got {path!r}")
    parts = [p for p in path.split("/") if p]
    for p in parts:
        if p in (".", "..") or len(p) > 255:
            raise ValueError(f"path: {path!r} has an invalid component {p!r}")
    return "/" + "/".join(parts)

