"""Read a live Linux /proc into a task table, for the OOM killer's questions ("whom would it
pick now, and after this workload?").

``snapshot()`` reads each process's memory counters, ``oom_score_adj``, ``oom_score`` and
capabilities, then reads the counters again: a process whose inputs changed between the two reads
is listed in ``Snapshot.changed`` (a live system moves; nothing fails because of it). Kernel
threads and processes that vanish while being read are left out.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import oom

PF_KTHREAD = 0x00200000
CAP_SYS_ADMIN = 21


@dataclass(frozen=True)
class ProcTask:
    pid: int
    ppid: int
    comm: str
    rss_anon_kb: int
    rss_file_kb: int
    rss_shmem_kb: int
    swap_kb: int
    pte_kb: int
    oom_score_adj: int
    oom_score: int               # what the live kernel printed
    cap_sys_admin: bool

    @property
    def rss_pages(self) -> int:
        return (self.rss_anon_kb + self.rss_file_kb + self.rss_shmem_kb) // 4


@dataclass
class Snapshot:
    tasks: list[ProcTask]
    mem_total_kb: int
    mem_free_kb: int
    swap_total_kb: int
    kernel: str                               # "major.minor" of the running kernel
    changed: list[int] = field(default_factory=list)   # pids whose inputs moved while read

    @property
    def totalpages(self) -> int:
        """totalram_pages + total_swap_pages (MemTotal and SwapTotal are exact multiples)."""
        return (self.mem_total_kb + self.swap_total_kb) // 4

    def expected_oom_scores(self) -> np.ndarray:
        """``/proc/PID/oom_score`` recomputed from the snapshot's inputs with the running
        kernel's rule (``mmcore.oom``), in the order of ``tasks``."""
        t = self.tasks
        return oom.proc_oom_score(
            np.array([x.rss_pages for x in t], np.int64),
            np.array([x.swap_kb // 4 for x in t], np.int64),
            np.array([x.pte_kb * 1024 for x in t], np.int64),
            np.array([x.oom_score_adj for x in t], np.int64), self.totalpages,
            kernel=self.kernel, cap_sys_admin=np.array([x.cap_sys_admin for x in t]),
            eligible=np.array([x.pid != 1 for x in t]))


_STATUS_KEYS = ("Name", "PPid", "Tgid", "RssAnon", "RssFile", "RssShmem", "VmSwap", "VmPTE",
                "CapEff")


def _status(d: Path) -> dict[str, str] | None:
    try:
        text = (d / "status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k in _STATUS_KEYS:
            out[k] = v.strip()
    return out


def _kb(st: dict[str, str], key: str) -> int:
    return int(st.get(key, "0 kB").split()[0])


def _inputs(st: dict[str, str]) -> tuple:
    return tuple(_kb(st, k) for k in ("RssAnon", "RssFile", "RssShmem", "VmSwap", "VmPTE"))


def _meminfo(root: Path) -> dict[str, int]:
    out = {}
    for line in (root / "meminfo").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = int(v.split()[0])
    return out


def snapshot(root: str | os.PathLike = "/proc", pids: list[int] | None = None) -> Snapshot:
    """A task table of the processes under ``root`` (all, or just ``pids``): each process's RSS
    (anon, file, shmem), swap, page tables, oom_score_adj, the oom_score the kernel printed and
    CAP_SYS_ADMIN; the memory totals; the kernel version."""
    root = Path(root)
    if not (root / "meminfo").exists():
        raise FileNotFoundError(f"{root}: not a Linux /proc (no meminfo)")
    mi = _meminfo(root)
    release = os.uname().release if root == Path("/proc") else (
        (root / "sys/kernel/osrelease").read_text().strip())
    m = re.match(r"(\d+)\.(\d+)", release)
    kernel = f"{m.group(1)}.{m.group(2)}" if m else "6.18"
    if pids is None:
        dirs = sorted((p for p in root.iterdir() if p.name.isdigit()), key=lambda p: int(p.name))
    else:
        dirs = [root / str(int(p)) for p in pids]
    tasks, changed = [], []
    for d in dirs:
        st = _status(d)
        if st is None or "RssAnon" not in st:          # gone, or a kernel thread (no mm)
            continue
        try:
            stat = (d / "stat").read_text()
            flags = int(stat[stat.rindex(")") + 2:].split()[6])
            if flags & PF_KTHREAD or int(st["Tgid"]) != int(d.name):
                continue
            adj = int((d / "oom_score_adj").read_text())
            score = int((d / "oom_score").read_text())
        except (FileNotFoundError, ProcessLookupError, PermissionError, ValueError):
            continue
        again = _status(d)
        if again is None:
            continue
        if _inputs(again) != _inputs(st):
            changed.append(int(d.name))
        cap = int(st.get("CapEff", "0"), 16)
        a, f, sh, sw, pte = _inputs(st)
        tasks.append(ProcTask(pid=int(d.name), ppid=int(st.get("PPid", 0)), comm=st.get("Name", ""),
                              rss_anon_kb=a, rss_file_kb=f, rss_shmem_kb=sh, swap_kb=sw,
                              pte_kb=pte, oom_score_adj=adj, oom_score=score,
                              cap_sys_admin=bool(cap >> CAP_SYS_ADMIN & 1)))
    return Snapshot(tasks=tasks, mem_total_kb=mi["MemTotal"], mem_free_kb=mi["MemFree"],
                    swap_total_kb=mi.get("SwapTotal", 0), kernel=kernel, changed=changed)
