"""Scenario files: a machine, its filesystems and tasks, and what the tasks do, in TOML.

``load_scenario(path_or_dict)`` reads and validates a scenario completely before anything runs;
``run_scenario(scenario)`` runs it on a fresh ``Machine`` and returns a summary (a dict of plain
values), optionally writing an HDF5 run trace (``mmcore.trace``). ``data/README.md`` explains the
format with examples; this is the reference.

Format
------
Top-level tables (any other key is an error)::

    [scenario]   name, description, seed (int, default 0), on_error ("stop" | "continue"),
                 quantum (bytes: long writes/touches/brk populates yield between slices)
    [params]     name = value defaults; any value elsewhere may be "${name}"
    [machine]    any mmcore.Config field, nested tables tlb = {...} and costs = {...} included
    [[mount]]    path, fstype ("ext4" | "xfs" | "ext2" | "tmpfs" | "ramfs"), size, disk = {...},
                 huge ("never" | "always" | "within_size" | "advise": tmpfs only)
                 (disk: read_latency_us, write_latency_us, read_mb_s, write_mb_s)
    [[task]]     name, comm (default: name), oom_score_adj (default 0),
                 prctl = {option = ..., arg2 = ...} or a list of such tables (run at spawn),
                 thread_of (a thread of an earlier task)
    [[cgroup]]   path ("/a/b", parents first), files = {control file = value, ...}, tasks
    [[phase]]    name, task (the default task of its ops), ops = [ {op = ...}, ... ]
    [record]     record_faults, record_syscalls (bools), sample_interval_ns (ns or "1ms"),
                 observables = ["meminfo", "vmstat", "status", "counters", "smaps",
                 "smaps_rollup", "dmesg", "buddyinfo", "zoneinfo", "fs_stats"],
                 tlb_geometries = [{stlb_entries = 512}, ...]: TLB geometries (tables of
                 [machine] tlb settings, over the machine's) that every access is replayed
                 against as well (``Machine.shadow_tlbs``); the summary's ``tlb_geometries``
                 gives each one's L1 dTLB and STLB misses

Values: sizes are bytes or strings such as ``"64MiB"``; durations are ns or strings such as
``"200us"``, ``"1.5ms"``, ``"1s"``; flags are a constant's name (``"MAP_POPULATE"``, or
``"populate"``), a list of names, or an int. ``"${name}"`` as a whole value takes the param's
value with its type; inside a longer string it is replaced by the value's text.

Ops. Every op has ``op`` and ``task`` (unless its phase names one), and optionally ``label``
(the name its latencies are reported under, default the op) and ``on_error``. Mappings and file
descriptors have names, local to their task: ``mmap`` with ``map = "buf"`` defines ``buf``, and
a range is then ``map = "buf"`` (the whole mapping) with optional ``offset`` and ``length``, or
``addr = "buf+0x1000"`` or ``addr = {map = "buf", offset = 4096}`` with ``length``.

    mmap        map, length, prot (default PROT_READ|PROT_WRITE), flags (default
                MAP_PRIVATE|MAP_ANONYMOUS; MAP_POPULATE and MAP_NORESERVE may be added); or a
                file: fd, offset (file bytes, page-aligned), flags (default MAP_SHARED)
    munmap, mlock (onfault), munlock, touch (stride default 4096, write default true),
    mprotect (prot), madvise (advice)                                  a range each
    mlockall    flags (MCL_*);  munlockall
    prctl       option, arg2, arg3, arg4, arg5
    access      map, count, pattern = "sequential" (stride) | "uniform" | "zipf" (a > 0:
                page k of the range has weight k**-a), offset, length, write (bool, or the
                fraction of writes), seed; or trace = "file.mmtr" | "file" with
                format = "lackey", rebased onto the range (rebase, wrap), count (a prefix)
    open        fd, path, flags (default O_RDONLY), count (a group: fd names the N files of
                path with {i} or {i:03d} replaced by 0..N-1)
    close, fsync                       fd (a group: every file of it)
    pread, pwrite                      fd, length, offset (bytes, or a generator
                {dist = "uniform" | "sequential", align = ...}), pick (for a group: "all", or
                {dist = "uniform" | "sequential" | "zipf", a = ...}), seed
    fadvise     fd, advice (POSIX_FADV_*), offset, length (0: to the end of the file)
    fallocate   fd, mode (FALLOC_FL_*), offset, length;   ftruncate   fd, length
    unlink      path (count and {i} as for open);   sync
    write_sysctl  name ("vm.drop_caches", ...), value;   sysfs_write  path, value
    sleep       duration (simulated time passes for the task)
    brk         increment, map;  cgroup_write  path, file, value;  oom_wait  path
    read_proc   target, file;  kill  target;  exit
    earlyoom    mem_percent, swap_percent (one poll of an earlyoom-like daemon)
    oomd        cgroups (the monitored ones), pressure_limit, pressure_duration, swap_limit (one
                poll of a systemd-oomd-like daemon; its state lives from poll to poll)
    repeat      count, while_running (a task name: stop once that task has finished its
                ops in this phase and its clock is not ahead; count may then be omitted), ops

Time. Each task has its own clock. Within a phase every task's ops keep their order, and the
task whose clock is earliest runs its next op (ties: the task declared first), as
``Machine.run`` interleaves a batch. A phase starts once every task has reached the latest
clock (the lagging tasks sleep up to it). An op's latency is the simulated time it took on its
task's clock. Ops take the kernel's sleeping locks (``mmcore.locking``) and may sleep on them, on
a memcg OOM, or on an OOM victim; the others run meanwhile. A run where nothing can run and nothing
is due ends with ``outcome = "hung"`` (and khungtaskd's reports in dmesg).

Errors. ``ScenarioError`` (a ValueError) names the file and the key path
(``phase[2].ops[5].length``, 0-based) or, for a TOML syntax error, the line and column, the bad
text and what was expected. An op that fails when the scenario runs (an errno, a SIGSEGV, a
SIGBUS) raises ``ScenarioRunError`` naming the op's key path, unless ``on_error = "continue"``,
which counts it and goes on (an ``access`` counts each faulting access). Op names and advice
values planned but not implemented yet (``PLANNED_OPS``, ``PLANNED_MADV``) are validation errors
that say so.

Nothing from a scenario file is evaluated as code: values are TOML data, parameter references
are plain text substitution, and trace files are read by ``mmcore.formats``.
"""
from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import os
import re
import tomllib
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping

import numpy as np

from .config import Config, ConfigError, KhugepagedConfig, TLBConfig, parse_size
from .kernels import consts as K

__all__ = ["Scenario", "ScenarioError", "ScenarioRunError", "load_scenario", "override",
           "run_scenario", "OPS", "PLANNED_OPS", "PLANNED_MADV", "OBSERVABLES"]


class ScenarioError(ValueError):
    """A scenario is malformed: the message names the file and the key path (or line)."""

    def __init__(self, message: str, *, file: str | None = None, key: str | None = None,
                 line: int | None = None, column: int | None = None):
        self.file, self.key, self.line, self.column = file, key, line, column
        self.reason = message
        where = file or "<scenario>"
        if line is not None:
            where += f":{line}" + (f":{column}" if column is not None else "")
        if key:
            where += f": {key}"
        super().__init__(f"{where}: {message}")


class ScenarioRunError(ScenarioError):
    """An op of a valid scenario failed while it ran (an errno, a SIGSEGV or SIGBUS, a name no
    longer there)."""


# ---- what the format knows ---------------------------------------------------------------------

OPS = ("mmap", "munmap", "mprotect", "madvise", "mlock", "munlock", "mlockall", "munlockall",
       "prctl", "touch", "access", "open", "close", "pread", "pwrite", "fsync", "fadvise",
       "fallocate",
       "ftruncate", "unlink", "sync", "write_sysctl", "sysfs_write", "sleep", "repeat", "brk",
       "cgroup_write", "oom_wait", "kill", "read_proc", "exit", "earlyoom", "oomd")
PLANNED_OPS = {
    "fork": "fork is not in the scenario format yet (declare the child as a [[task]])",
    "execve": "execve is not in the scenario format yet",
    "clone_thread": "threads are declared as tasks: [[task]] thread_of = \"name\"",
}
PROC_FILES = ("cmdline", "environ", "maps", "smaps", "status")
OBSERVABLES = ("meminfo", "vmstat", "status", "counters", "smaps", "smaps_rollup", "dmesg",
               "buddyinfo", "zoneinfo", "fs_stats")
DEFAULT_OBSERVABLES = ("meminfo", "vmstat", "status", "counters", "smaps_rollup", "dmesg")

PROT = {"PROT_NONE": K.PROT_NONE, "PROT_READ": K.PROT_READ, "PROT_WRITE": K.PROT_WRITE,
        "PROT_EXEC": K.PROT_EXEC}
MAP = {"MAP_PRIVATE": K.MAP_PRIVATE, "MAP_ANONYMOUS": K.MAP_ANONYMOUS,
       "MAP_POPULATE": K.MAP_POPULATE, "MAP_NORESERVE": K.MAP_NORESERVE,
       "MAP_SHARED": K.MAP_SHARED, "MAP_SHARED_VALIDATE": K.MAP_SHARED_VALIDATE,
       "MAP_FIXED": K.MAP_FIXED, "MAP_FIXED_NOREPLACE": K.MAP_FIXED_NOREPLACE}
# the advice values sys_madvise implements (kernels/syscalls.py); the planned ones say so
MADV = {"MADV_DONTNEED": K.MADV_DONTNEED, "MADV_FREE": K.MADV_FREE,
        "MADV_HUGEPAGE": K.MADV_HUGEPAGE, "MADV_NOHUGEPAGE": K.MADV_NOHUGEPAGE,
        "MADV_POPULATE_READ": K.MADV_POPULATE_READ, "MADV_POPULATE_WRITE": K.MADV_POPULATE_WRITE,
        "MADV_WILLWRITE": K.MADV_WILLWRITE, "MADV_COLLAPSE": K.MADV_COLLAPSE,
        "MADV_COLD": K.MADV_COLD, "MADV_PAGEOUT": K.MADV_PAGEOUT, "MADV_NORMAL": K.MADV_NORMAL,
        "MADV_RANDOM": K.MADV_RANDOM, "MADV_SEQUENTIAL": K.MADV_SEQUENTIAL,
        "MADV_WILLNEED": K.MADV_WILLNEED}
PLANNED_MADV: dict[str, int] = {}
MCL = {"MCL_CURRENT": K.MCL_CURRENT, "MCL_FUTURE": K.MCL_FUTURE, "MCL_ONFAULT": K.MCL_ONFAULT}
PR = {"PR_SET_THP_DISABLE": K.PR_SET_THP_DISABLE, "PR_GET_THP_DISABLE": K.PR_GET_THP_DISABLE,
      "PR_THP_DISABLE_EXCEPT_ADVISED": K.PR_THP_DISABLE_EXCEPT_ADVISED}
O_FLAGS = {"O_RDONLY": os.O_RDONLY, "O_WRONLY": os.O_WRONLY, "O_RDWR": os.O_RDWR,
           "O_CREAT": os.O_CREAT, "O_EXCL": os.O_EXCL, "O_TRUNC": os.O_TRUNC,
           "O_APPEND": os.O_APPEND, "O_CLOEXEC": os.O_CLOEXEC, "O_NOATIME": os.O_NOATIME}
FADV = {"POSIX_FADV_NORMAL": K.POSIX_FADV_NORMAL, "POSIX_FADV_RANDOM": K.POSIX_FADV_RANDOM,
        "POSIX_FADV_SEQUENTIAL": K.POSIX_FADV_SEQUENTIAL, "POSIX_FADV_WILLNEED": K.POSIX_FADV_WILLNEED,
        "POSIX_FADV_DONTNEED": K.POSIX_FADV_DONTNEED, "POSIX_FADV_NOREUSE": K.POSIX_FADV_NOREUSE}
FALLOC = {"FALLOC_FL_KEEP_SIZE": K.FALLOC_FL_KEEP_SIZE, "FALLOC_FL_PUNCH_HOLE": K.FALLOC_FL_PUNCH_HOLE,
          "FALLOC_FL_ZERO_RANGE": K.FALLOC_FL_ZERO_RANGE,
          "FALLOC_FL_WRITE_ZEROES": K.FALLOC_FL_WRITE_ZEROES}
SYSCTLS = ("vm.drop_caches", "vm.dirty_ratio", "vm.dirty_background_ratio",
           "vm.dirty_expire_centisecs", "vm.dirty_writeback_centisecs", "vm.overcommit_memory",
           "vm.overcommit_ratio", "vm.overcommit_kbytes", "vm.admin_reserve_kbytes",
           "vm.user_reserve_kbytes")
_THP_SYSFS = "kernel/mm/transparent_hugepage/"
SYSFS = (_THP_SYSFS + "enabled", _THP_SYSFS + "defrag", _THP_SYSFS + "use_zero_page",
         _THP_SYSFS + "shmem_enabled", _THP_SYSFS + "shrink_underused") + tuple(
    _THP_SYSFS + "khugepaged/" + k for k in KhugepagedConfig.LIMITS)
FSTYPES = ("ext4", "xfs", "ext2", "tmpfs", "ramfs")
DISK_FSTYPES = tuple(K.FSTYPE_NAMES[t] for t in K.BLOCK_FSTYPES)    # a mount needs a size
DISK_KEYS = ("read_latency_us", "write_latency_us", "read_mb_s", "write_mb_s")
RECORD_KEYS = ("record_faults", "record_syscalls", "sample_interval_ns")
MAX_TLB_GEOMETRIES = 64        # [record] tlb_geometries: one replay pass holds them all

_TOP = ("scenario", "params", "machine", "mount", "task", "cgroup", "phase", "record")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_PARAM_RE = re.compile(r"\$\{([^}]*)\}")
_ADDR_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(?:\+\s*(\S(?:.*\S)?))?\s*$")
_DUR_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s)\s*$")
_DUR_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000}
_INDEX_RE = re.compile(r"\{i(?::(0?)(\d+)d)?\}")
MAX_ZIPF_ITEMS = 1 << 24       # a zipf op over more pages or files would build a huge table
ACCESS_CHUNK = 1 << 20         # accesses generated and run per kernel call
_I62 = 1 << 62


# ---- the parsed scenario -----------------------------------------------------------------------

@dataclass(frozen=True)
class Op:
    """One operation of a phase, validated: ``args`` holds its resolved arguments."""
    kind: str
    task: str
    key: str                   # its key path, e.g. "phase[1].ops[3]"
    label: str
    on_error: str
    args: Mapping[str, Any]


@dataclass(frozen=True)
class Repeat:
    """A repeat block: ``ops`` run ``count`` times (None: until ``while_running`` finishes)."""
    key: str
    count: int | None
    while_running: str | None
    ops: tuple
    tasks: frozenset


@dataclass(frozen=True)
class Phase:
    name: str
    key: str
    ops: tuple
    tasks: frozenset


@dataclass(frozen=True)
class TaskSpec:
    name: str
    comm: str
    oom_score_adj: int
    prctl: tuple                # ((option, arg2, arg3, arg4, arg5), ...)
    thread_of: str | None = None   # a thread (clone CLONE_VM|CLONE_THREAD) of that task


@dataclass(frozen=True)
class CgroupSpec:
    path: str
    files: tuple                # ((control file, value), ...) written in order
    tasks: tuple                # task names attached at the start


@dataclass(frozen=True)
class MountSpec:
    path: str
    fstype: str
    size_bytes: int | None
    disk: Mapping[str, float] | None
    huge: str = "never"          # tmpfs huge= option


@dataclass(frozen=True)
class Scenario:
    """A validated scenario (make one with ``load_scenario``).

    ``raw`` is the document as read; ``doc`` the same with every ``${param}`` replaced, and
    ``canonical`` its canonical JSON (sorted keys, plus the SHA-256 of each trace file it
    reads), whose SHA-256 is ``hash``.
    """
    file: str | None
    base_dir: str
    raw: Mapping[str, Any]
    params: Mapping[str, Any]
    doc: Mapping[str, Any]
    name: str
    description: str
    seed: int
    on_error: str
    machine: Mapping[str, Any]
    mounts: tuple
    tasks: tuple
    phases: tuple
    cgroups: tuple
    quantum: int
    observables: tuple
    canonical: str
    hash: str
    traces: Mapping[str, tuple] = field(repr=False, compare=False, default_factory=dict)
    tlb_geometries: tuple = ()          # [record] tlb_geometries: (label, TLBConfig fields) pairs

    def config(self) -> Config:
        """A fresh ``Config`` of the scenario's machine (the machine may change its own)."""
        return Config.from_dict(copy.deepcopy(dict(self.machine)))


# ---- reading -----------------------------------------------------------------------------------

def load_scenario(path_or_dict: str | os.PathLike | Mapping[str, Any], *,
                  params: Mapping[str, Any] | None = None) -> Scenario:
    """Read and validate a scenario: a path to a TOML file, or the same document as a dict.

    ``params`` overrides values of the scenario's ``[params]`` table. Raises ``ScenarioError``
    naming the file and the key path (or the line of a TOML syntax error).
    """
    if isinstance(path_or_dict, Mapping):
        raw = copy.deepcopy(dict(path_or_dict))
        return _build(raw, None, os.getcwd(), params, {})
    path = os.fspath(path_or_dict)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise ScenarioError("no such file", file=path) from None
    except OSError as e:
        raise ScenarioError(f"cannot be read: {e.strerror}", file=path) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ScenarioError("not UTF-8 text (a TOML file must be UTF-8)", file=path, line=line) from None
    raw = _parse_toml(text, path)
    return _build(raw, path, os.path.dirname(os.path.abspath(path)), params, {})


def override(scenario: Scenario, sets: Mapping[str, Any]) -> Scenario:
    """The scenario with ``sets`` applied: each key is a param name or a dotted path into a
    table (``machine.memory``, ``machine.tlb.stlb_entries``, ``scenario.seed``,
    ``record.sample_interval_ns``), validated again."""
    raw = copy.deepcopy(dict(scenario.raw))
    params = dict(scenario.params)
    declared = raw.get("params", {}) if isinstance(raw.get("params"), dict) else {}
    for k, v in sets.items():
        if not isinstance(k, str) or not k:
            raise ScenarioError(f"override {k!r}: expected a param name or a dotted key", file=scenario.file)
        if "." not in k:
            if k not in declared:
                raise ScenarioError(f"override {k!r}: not a param of this scenario (params: "
                                    f"{sorted(declared) or 'none'}; a table key is written "
                                    "like machine.memory)", file=scenario.file)
            params[k] = v
            continue
        parts = k.split(".")
        if parts[0] not in ("scenario", "machine", "record"):
            raise ScenarioError(f"override {k!r}: only keys of [scenario], [machine] and [record] "
                                "(or params) can be set", file=scenario.file)
        node = raw
        for p in parts[:-1]:
            nxt = node.setdefault(p, {})
            if not isinstance(nxt, dict):
                raise ScenarioError(f"override {k!r}: {p} is not a table", file=scenario.file)
            node = nxt
        node[parts[-1]] = v
    return _build(raw, scenario.file, scenario.base_dir, params, dict(scenario.traces))


# ---- TOML syntax errors ------------------------------------------------------------------------

_EXPECT = {
    "Invalid value": "a TOML value: a quoted string (sizes too: \"64MiB\"), a number, true or "
                     "false, an array [...] or an inline table {...}",
    "Expected newline or end of document after a statement": "one key = value per line (a "
                     "size or a name must be quoted, e.g. \"64MiB\")",
    "Expected '=' after a key in a key/value pair": "key = value",
    "Invalid statement": "key = value, [table] or [[array of tables]]",
    "Unclosed array": "a closing ]",
    "Unclosed inline table": "a closing } on the same line (an inline table is one line)",
    "Unterminated string": "a closing quote on the same line",
    "Invalid initial character for a key part": "a key: letters, digits, _ and - (or quoted)",
    "Cannot overwrite a value": "each key once in its table",
    "Expected ']' at the end of a table declaration": "a table header [name] on one line",
    "Expected ']]' at the end of an array declaration": "an array-of-tables header [[name]] on one line",
}


def _expectation(reason: str) -> str:
    if reason in _EXPECT:
        return _EXPECT[reason]
    if reason.startswith("Illegal character '\\n'"):
        return "a closing quote before the end of the line"
    if reason.startswith(("Cannot declare", "Cannot redefine", "Cannot mutate")):
        return "each table declared once ([[name]] for a list of tables)"
    return "valid TOML (https://toml.io)"


def _parse_toml(text: str, path: str | None) -> dict:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise _toml_error(text, str(e), path) from None


def _toml_error(text: str, msg: str, path: str | None) -> ScenarioError:
    lines = text.splitlines() or [""]
    m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", msg)
    eod = m is None
    if m:
        reason, line, col = msg[:m.start()], int(m.group(1)), int(m.group(2))
    else:
        reason = re.sub(r"\s*\(at end of document\)$", "", msg)
        line, col = _unclosed_line(lines, reason), None
    src = lines[line - 1] if 0 < line <= len(lines) else ""
    bad = _bad_text(src, col)
    expected = _expectation(reason)
    if eod and reason in ("Invalid value", "Unclosed array", "Unclosed inline table"):
        reason = "the document ends inside the array or inline table opened on this line"
        expected = "its closing ] or }"
        bad = ""
    if src.count("{") > src.count("}"):
        expected += " (an inline table {...} must be on one line)"
    detail = f"{reason}: found {bad!r}, expected {expected}" if bad else f"{reason}; expected {expected}"
    caret = "" if col is None else "\n    " + " " * (col - 1) + "^"
    return ScenarioError(f"invalid TOML at line {line}: {detail}\n    {src}{caret}",
                         file=path, line=line, column=col)


def _bad_text(src: str, col: int | None) -> str:
    """The offending value: the whole right-hand side of ``key = value`` when it is not a TOML
    value by itself (``memory = 4GiB``), else the token at the column."""
    body = src.split("#", 1)[0]
    if re.match(r"^\s*[A-Za-z0-9_.\"'-]+\s*=", body):
        rhs = body.split("=", 1)[1].strip()
        if rhs and not rhs.startswith(("[", "{")):
            try:
                tomllib.loads(f"v = {rhs}")
            except tomllib.TOMLDecodeError:
                return rhs
    if col is None:
        return body.strip()
    tok = re.match(r"[^\s,\]}]*", src[col - 1:])
    return tok.group(0) if tok and tok.group(0) else src[col - 1:col]


def _unclosed_line(lines: list[str], reason: str) -> int:
    """The line where an unclosed string, array or inline table began (tomllib reports
    them at the end of the document)."""
    depth = 0
    opened = len(lines)
    for n, s in enumerate(lines, 1):
        in_str = None
        for ch in s:
            if in_str:
                if ch == in_str:
                    in_str = None
                continue
            if ch in "\"'":
                in_str = ch
            elif ch == "#":
                break
            elif ch in "[{" and (depth or "=" in s.split(ch, 1)[0]):
                if depth == 0:
                    opened = n
                depth += 1
            elif ch in "]}" and depth:
                depth -= 1
        if in_str and reason == "Unterminated string":
            return n
        if reason == "Unclosed inline table" and depth:
            return opened
    return opened


# ---- building ------------------------------------------------------------------------------------

def _build(raw: dict, path: str | None, base_dir: str, params: Mapping[str, Any] | None,
           traces: dict) -> Scenario:
    v = _Validator(path, base_dir, traces)
    if not isinstance(raw, dict):
        raise v.err("", f"expected a table of tables, got {type(raw).__name__}")
    v.keys(raw, "", _TOP, ())
    declared = v.params(raw.get("params", {}))
    for k in params or {}:
        if k not in declared:
            raise v.err("params", f"{k!r} is not a param of this scenario (params: "
                                  f"{sorted(declared) or 'none'})")
    values = {**declared, **(params or {})}
    doc = {k: (val if k == "params" else v.subst(val, k, values)) for k, val in raw.items()}
    doc["params"] = values
    v.no_datetimes(doc, "")
    meta = v.scenario_table(doc.get("scenario", {}))
    machine = v.machine(doc.get("machine", {}), doc.get("record", {}))
    config = Config.from_dict(copy.deepcopy(machine))
    observables = v.record(doc.get("record", {}))
    tlb_geometries = v.tlb_geometries(doc.get("record", {}), machine)
    mounts = v.mounts(doc.get("mount", []))
    tasks = v.tasks(doc.get("task", []))
    cgroups = v.cgroups(doc.get("cgroup", []), tasks, config)
    phases = v.phases(doc.get("phase", []), tasks, mounts, config, meta["on_error"])
    canon_doc = dict(doc)
    if v.trace_digests:
        canon_doc["trace_files"] = dict(sorted(v.trace_digests.items()))
    canonical = json.dumps(canon_doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return Scenario(
        file=path, base_dir=base_dir, raw=raw, params=values, doc=doc, name=meta["name"],
        description=meta["description"], seed=meta["seed"], on_error=meta["on_error"],
        machine=machine, mounts=mounts, tasks=tasks, phases=phases, observables=observables,
        tlb_geometries=tlb_geometries, cgroups=cgroups, quantum=meta["quantum"],
        canonical=canonical, hash=hashlib.sha256(canonical.encode()).hexdigest(),
        traces=v.traces)


def _idx(key: str, i: int) -> str:
    return f"{key}[{i}]"


def _sub(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


class _Scope:
    """What a task has defined so far, in op order: mappings (name -> length) and fds."""

    def __init__(self) -> None:
        self.maps: dict[str, int] = {}
        self.fds: dict[str, int] = {}           # name -> number of files (1 unless a group)


class _Validator:
    """Checks one document, key by key; ``err`` makes the error naming file and key path."""

    def __init__(self, path: str | None, base_dir: str, traces: dict):
        self.path = path
        self.base_dir = base_dir
        self.traces = traces                    # (abs path, format) -> (addresses, writes, sha256)
        self.trace_digests: dict[str, str] = {}
        self.on_error = "stop"

    def err(self, key: str, msg: str) -> ScenarioError:
        return ScenarioError(msg, file=self.path, key=key or None)

    # ---- generic checks ---------------------------------------------------------------------
    def keys(self, d: Any, key: str, allowed: tuple, required: tuple) -> dict:
        if not isinstance(d, dict):
            raise self.err(key, f"expected a table, got {_tname(d)} {d!r}")
        unknown = [k for k in d if k not in allowed]
        if unknown:
            raise self.err(_sub(key, unknown[0]), f"unknown key; known keys here: {', '.join(allowed)}")
        for k in required:
            if k not in d:
                raise self.err(_sub(key, k), "missing (required)")
        return d

    def int_(self, v: Any, key: str, lo: int = 0, hi: int = _I62) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise self.err(key, f"expected an integer, got {_tname(v)} {v!r}")
        if not lo <= v <= hi:
            raise self.err(key, f"expected an integer in [{lo}, {hi}], got {v}")
        return v

    def size(self, v: Any, key: str, lo: int = 0, hi: int = _I62) -> int:
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        try:
            n = parse_size(v, key)
        except ConfigError:
            raise self.err(key, f"expected a size: bytes or a string such as \"64MiB\", got "
                                f"{_tname(v)} {v!r}") from None
        if not lo <= n <= hi:
            raise self.err(key, f"expected a size in [{lo}, {hi}] bytes, got {n}")
        return n

    def duration(self, v: Any, key: str) -> int:
        if isinstance(v, int) and not isinstance(v, bool):
            return self.int_(v, key, 0, 1 << 50)
        m = _DUR_RE.match(v) if isinstance(v, str) else None
        if not m:
            raise self.err(key, f"expected a duration: ns, or a string such as \"200us\", \"5ms\", "
                                f"\"1s\", got {_tname(v)} {v!r}")
        ns = float(m.group(1)) * _DUR_UNITS[m.group(2)]
        if ns != int(ns) or ns > 1 << 50:
            raise self.err(key, f"expected a whole number of ns up to 2**50, got {v!r} = {ns} ns")
        return int(ns)

    def num(self, v: Any, key: str, lo: float, hi: float, lo_open: bool = False) -> float:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
            raise self.err(key, f"expected a number, got {_tname(v)} {v!r}")
        if v < lo or v > hi or (lo_open and v == lo):
            rng = f"({lo}, {hi}]" if lo_open else f"[{lo}, {hi}]"
            raise self.err(key, f"expected a number in {rng}, got {v}")
        return float(v)

    def bool_(self, v: Any, key: str) -> bool:
        if not isinstance(v, bool):
            raise self.err(key, f"expected true or false, got {_tname(v)} {v!r}")
        return v

    def str_(self, v: Any, key: str) -> str:
        if not isinstance(v, str) or not v:
            raise self.err(key, f"expected a non-empty string, got {_tname(v)} {v!r}")
        return v

    def name(self, v: Any, key: str) -> str:
        if not isinstance(v, str) or not _NAME_RE.match(v):
            raise self.err(key, "expected a name: a letter or _, then letters, digits or _ "
                                f"(at most 64), got {_tname(v)} {v!r}")
        return v

    def choice(self, v: Any, key: str, choices: tuple) -> str:
        if v not in choices or not isinstance(v, str):
            raise self.err(key, f"expected one of {', '.join(map(repr, choices))}, got {v!r}")
        return v

    def flags(self, v: Any, key: str, table: Mapping[str, int], what: str,
              planned: Mapping[str, str] | None = None) -> int:
        """A constant's name (with or without its prefix, any case), a list of names, or an int."""
        if isinstance(v, int) and not isinstance(v, bool):
            return self.int_(v, key, 0, (1 << 32) - 1)
        items = v if isinstance(v, list) else [v]
        prefix = os.path.commonprefix(list(table))
        prefix = prefix[:prefix.rfind("_") + 1]
        out = 0
        for i, item in enumerate(items):
            k = _idx(key, i) if isinstance(v, list) else key
            if not isinstance(item, str):
                raise self.err(k, f"expected a {what} name, got {_tname(item)} {item!r}")
            nm = item.strip().upper()
            nm = nm if nm.startswith(prefix) else prefix + nm
            if planned and nm in planned:
                raise self.err(k, f"{nm} is not implemented yet: {planned[nm]}")
            if nm not in table:
                raise self.err(k, f"unknown {what} {item!r}; expected one of {', '.join(table)}")
            out |= table[nm]
        return out

    # ---- params -------------------------------------------------------------------------------
    def params(self, d: Any) -> dict:
        if not isinstance(d, dict):
            raise self.err("params", f"expected a table of name = value, got {_tname(d)}")
        for k, val in d.items():
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", k):
                raise self.err(_sub("params", k), "a param name is a letter or _, then letters, digits or _")
            if isinstance(val, dict):
                raise self.err(_sub("params", k), "expected a value (string, number, bool or array), got a table")
        return dict(d)

    def subst(self, v: Any, key: str, params: Mapping[str, Any]) -> Any:
        """``v`` with every ``${name}`` replaced (a whole-string reference keeps the type)."""
        if isinstance(v, dict):
            return {k: self.subst(x, _sub(key, k), params) for k, x in v.items()}
        if isinstance(v, list):
            return [self.subst(x, _idx(key, i), params) for i, x in enumerate(v)]
        if not isinstance(v, str) or "${" not in v:
            return v
        refs = _PARAM_RE.findall(v)
        if v.count("${") != len(refs):
            raise self.err(key, f"malformed param reference in {v!r}; expected ${{name}}")
        for r in refs:
            if r not in params:
                raise self.err(key, f"param {r!r} is not defined in [params] (defined: "
                                    f"{sorted(params) or 'none'})")
        m = _PARAM_RE.fullmatch(v)
        if m:
            return copy.deepcopy(params[m.group(1)])
        for r in refs:
            if not isinstance(params[r], (str, int, float)) or isinstance(params[r], bool):
                raise self.err(key, f"param {r!r} is {_tname(params[r])} {params[r]!r}, which "
                                    "cannot be spliced into a string")
        return _PARAM_RE.sub(lambda m: str(params[m.group(1)]), v)

    def no_datetimes(self, v: Any, key: str) -> None:
        if isinstance(v, dict):
            for k, x in v.items():
                self.no_datetimes(x, _sub(key, k))
        elif isinstance(v, list):
            for i, x in enumerate(v):
                self.no_datetimes(x, _idx(key, i))
        elif not isinstance(v, (str, int, float, bool)):
            raise self.err(key, f"expected a string, number, bool, array or table, got {_tname(v)} {v!r}")

    # ---- tables -------------------------------------------------------------------------------
    def scenario_table(self, d: Any) -> dict:
        self.keys(d, "scenario", ("name", "description", "seed", "on_error", "quantum"), ())
        out = {"name": self.str_(d.get("name", "scenario"), "scenario.name"),
               "description": d.get("description", ""),
               "quantum": self.size(d.get("quantum", 0), "scenario.quantum", 0, 1 << 40),
               "seed": self.int_(d.get("seed", 0), "scenario.seed", 0, (1 << 63) - 1),
               "on_error": self.choice(d.get("on_error", "stop"), "scenario.on_error", ("stop", "continue"))}
        if not isinstance(out["description"], str):
            raise self.err("scenario.description", f"expected a string, got {_tname(out['description'])}")
        return out

    def machine(self, d: Any, record: Any) -> dict:
        self.keys(d, "machine", tuple(d) if isinstance(d, dict) else (), ())
        m = dict(d)
        if isinstance(record, dict):
            for k in RECORD_KEYS:
                if k in record and k in m:
                    raise self.err(_sub("machine", k), f"also set in [record]; set {k} in one place")
                if k in record:
                    m[k] = record[k]
                    if k == "sample_interval_ns":
                        m[k] = self.duration(record[k], "record.sample_interval_ns")
        if isinstance(m.get("sample_interval_ns"), str):
            m["sample_interval_ns"] = self.duration(m["sample_interval_ns"], "machine.sample_interval_ns")
        for k in ("tlb", "costs"):
            if k in m and not isinstance(m[k], dict):
                raise self.err(_sub("machine", k), f"expected a table of settings, got {_tname(m[k])}")
        try:
            Config.from_dict(copy.deepcopy(m))
        except ConfigError as e:
            fld, _, msg = str(e).partition(": ")
            if fld in RECORD_KEYS and fld not in d:
                raise self.err(_sub("record", fld), msg) from None
            raise self.err("machine" if fld == "config" else _sub("machine", fld), msg) from None
        return m

    def record(self, d: Any) -> tuple:
        self.keys(d, "record", RECORD_KEYS + ("observables", "tlb_geometries"), ())
        for k in ("record_faults", "record_syscalls"):
            if k in d:
                self.bool_(d[k], _sub("record", k))
        obs = d.get("observables", list(DEFAULT_OBSERVABLES))
        if not isinstance(obs, list):
            raise self.err("record.observables", f"expected a list of names, got {_tname(obs)}")
        for i, o in enumerate(obs):
            self.choice(o, _idx("record.observables", i), OBSERVABLES)
        return tuple(dict.fromkeys(obs))

    def tlb_geometries(self, d: Any, machine: Mapping[str, Any]) -> tuple:
        """``[record] tlb_geometries``: a list of tables of ``machine.tlb`` settings, each
        applied over the machine's own; per geometry (its label, its whole TLB table)."""
        if not isinstance(d, dict) or "tlb_geometries" not in d:
            return ()
        lst = d["tlb_geometries"]
        key = "record.tlb_geometries"
        if not isinstance(lst, list) or not lst:
            raise self.err(key, "expected a non-empty list of tables of TLB settings, e.g. "
                                "[{stlb_entries = 512}, {stlb_entries = 2048}]")
        if len(lst) > MAX_TLB_GEOMETRIES:
            raise self.err(key, f"{len(lst)} geometries: expected at most {MAX_TLB_GEOMETRIES}")
        base = dict(machine.get("tlb", {}))
        fields = tuple(f.name for f in dataclasses.fields(TLBConfig))
        out = []
        for i, g in enumerate(lst):
            gk = _idx(key, i)
            if not isinstance(g, dict):
                raise self.err(gk, f"expected a table of TLB settings, got {_tname(g)}")
            self.keys(g, gk, fields, ())
            for f, x in g.items():
                if isinstance(x, bool) or not isinstance(x, int):
                    raise self.err(_sub(gk, f), f"expected an integer, got {_tname(x)}")
            try:
                Config(tlb=TLBConfig(**{**base, **g})).validate()
            except (ConfigError, TypeError) as e:
                raise self.err(gk, str(e).removeprefix("tlb.")) from None
            label = ",".join(f"{f}={g[f]}" for f in sorted(g)) or "machine"
            out.append((label, {**base, **g}))
        return tuple(out)

    def mounts(self, lst: Any) -> tuple:
        if not isinstance(lst, list):
            raise self.err("mount", "expected [[mount]] tables")
        out, seen = [], set()
        for i, d in enumerate(lst):
            key = _idx("mount", i)
            self.keys(d, key, ("path", "fstype", "size", "disk", "huge"), ("path", "fstype"))
            p = self.str_(d["path"], _sub(key, "path"))
            if not p.startswith("/"):
                raise self.err(_sub(key, "path"), f"expected an absolute path such as \"/data\", got {p!r}")
            p = os.path.normpath(p)
            if p in seen:
                raise self.err(_sub(key, "path"), f"{p} is mounted twice")
            seen.add(p)
            fst = self.choice(d["fstype"], _sub(key, "fstype"), FSTYPES)
            size = self.size(d["size"], _sub(key, "size"), 4096) if "size" in d else None
            if size is None and fst in DISK_FSTYPES:
                raise self.err(_sub(key, "size"), f"missing: an {fst} filesystem needs a size, e.g. \"8GiB\"")
            disk = None
            if "disk" in d:
                dk = _sub(key, "disk")
                self.keys(d["disk"], dk, DISK_KEYS, ())
                disk = {k: self.num(x, _sub(dk, k), 0, 1e12, lo_open=k.endswith("mb_s"))
                        for k, x in d["disk"].items()}
            huge = self.choice(d.get("huge", "never"), _sub(key, "huge"),
                               ("never", "always", "within_size", "advise"))
            if huge != "never" and fst != "tmpfs":
                raise self.err(_sub(key, "huge"), f"only tmpfs takes huge=, got {huge!r} for {fst}")
            out.append(MountSpec(p, fst, size, disk, huge))
        return tuple(out)

    def tasks(self, lst: Any) -> tuple:
        if not isinstance(lst, list):
            raise self.err("task", "expected [[task]] tables")
        out, seen = [], set()
        for i, d in enumerate(lst):
            key = _idx("task", i)
            self.keys(d, key, ("name", "comm", "oom_score_adj", "prctl", "thread_of"), ("name",))
            name = self.name(d["name"], _sub(key, "name"))
            if name in seen:
                raise self.err(_sub(key, "name"), f"task {name!r} is declared twice")
            seen.add(name)
            comm = self.str_(d.get("comm", name), _sub(key, "comm"))
            adj = self.int_(d.get("oom_score_adj", 0), _sub(key, "oom_score_adj"), -1000, 1000)
            pr = d.get("prctl", [])
            pr = pr if isinstance(pr, list) else [pr]
            calls = tuple(self.prctl_args(p, _idx(_sub(key, "prctl"), j)) for j, p in enumerate(pr))
            owner = None
            if "thread_of" in d:
                owner = d["thread_of"]
                if not isinstance(owner, str) or owner not in seen - {name} or \
                        any(t.name == owner and t.thread_of for t in out):
                    raise self.err(_sub(key, "thread_of"), "expected a process declared above "
                                   f"(not itself a thread), got {owner!r}")
            out.append(TaskSpec(name, comm, adj, calls, owner))
        return tuple(out)

    def cgroups(self, lst: Any, tasks: tuple, config: Config) -> tuple:
        from .memcg import V1_FILES, V2_FILES, parse_path
        if not isinstance(lst, list):
            raise self.err("cgroup", "expected [[cgroup]] tables")
        names = {t.name for t in tasks}
        files_ok = V2_FILES if config.cgroups == 2 else V1_FILES
        out, seen = [], {"/"}
        for i, d in enumerate(lst):
            key = _idx("cgroup", i)
            self.keys(d, key, ("path", "files", "tasks"), ("path",))
            try:
                path = parse_path(d["path"])
            except (TypeError, ValueError) as e:
                raise self.err(_sub(key, "path"), str(e)) from None
            if path in seen:
                raise self.err(_sub(key, "path"), f"cgroup {path} is declared twice (or is the root)")
            if (path.rsplit("/", 1)[0] or "/") not in seen:
                raise self.err(_sub(key, "path"), f"the parent of {path} is not declared above it")
            seen.add(path)
            files = d.get("files", {})
            if not isinstance(files, dict):
                raise self.err(_sub(key, "files"), f"expected a table of control files, got {_tname(files)}")
            for f, val in files.items():
                if f not in files_ok or f in ("cgroup.procs", "tasks"):
                    writable = ", ".join(x for x in files_ok if x not in ("cgroup.procs", "tasks"))
                    raise self.err(_sub(_sub(key, "files"), f), f"not a writable cgroup "
                                   f"v{config.cgroups} memory file of this kernel ({writable})")
                if isinstance(val, bool) or not isinstance(val, (int, str)):
                    raise self.err(_sub(_sub(key, "files"), f), f"expected a number or a string, got {_tname(val)}")
            tl = d.get("tasks", [])
            if not isinstance(tl, list) or any(not isinstance(x, str) or x not in names for x in tl):
                known = ", ".join(sorted(names)) or "none"
                raise self.err(_sub(key, "tasks"), f"expected a list of task names ({known}), "
                               f"got {tl!r}")
            out.append(CgroupSpec(path, tuple(files.items()), tuple(tl)))
        return tuple(out)

    def prctl_args(self, d: Any, key: str) -> tuple:
        self.keys(d, key, ("option", "arg2", "arg3", "arg4", "arg5"), ("option",))
        opt = self.flags(d["option"], _sub(key, "option"), PR, "prctl option")
        args = [self.flags(d.get(a, 0), _sub(key, a), PR, "prctl argument")
                for a in ("arg2", "arg3", "arg4", "arg5")]
        return (opt, *args)

    # ---- phases and ops -------------------------------------------------------------------------
    def phases(self, lst: Any, tasks: tuple, mounts: tuple, config: Config, on_error: str) -> tuple:
        if not isinstance(lst, list):
            raise self.err("phase", "expected [[phase]] tables")
        self.task_names = [t.name for t in tasks]
        self.scopes = {t.name: _Scope() for t in tasks}
        self.mount_paths = [m.path for m in mounts]
        self.config = config
        self.on_error = on_error
        out = []
        for i, d in enumerate(lst):
            key = _idx("phase", i)
            self.keys(d, key, ("name", "task", "ops"), ("ops",))
            name = self.str_(d.get("name", f"phase{i}"), _sub(key, "name"))
            default = self.task_ref(d["task"], _sub(key, "task")) if "task" in d else None
            ops, used = self.op_list(d["ops"], _sub(key, "ops"), default)
            unbounded = set().union(*[r.tasks for r, _ in _whiles(ops) if r.count is None])
            for r, (target, tkey) in _whiles(ops):
                if target not in used:
                    raise self.err(tkey, f"task {target!r} has no ops in this phase, so the "
                                         "block would end at once")
                if r.count is None and target in unbounded:
                    raise self.err(tkey, f"task {target!r} itself runs a repeat without count "
                                         "in this phase: give one of the blocks a count")
            out.append(Phase(name, key, ops, frozenset(used)))
        return tuple(out)

    def task_ref(self, v: Any, key: str) -> str:
        if not isinstance(v, str) or v not in self.task_names:
            raise self.err(key, f"expected a task declared in [[task]] ({', '.join(self.task_names) or 'none'}), "
                                f"got {v!r}")
        return v

    def op_list(self, lst: Any, key: str, default: str | None) -> tuple[tuple, set]:
        if not isinstance(lst, list):
            raise self.err(key, f"expected a list of op tables, got {_tname(lst)}")
        ops, used = [], set()
        for j, d in enumerate(lst):
            op = self.op(d, _idx(key, j), default)
            ops.append(op)
            used |= op.tasks if isinstance(op, Repeat) else {op.task}
        return tuple(ops), used

    def op(self, d: Any, key: str, default: str | None) -> Op | Repeat:
        if not isinstance(d, dict):
            raise self.err(key, f"expected an op table such as {{op = \"mmap\", ...}}, got {_tname(d)}")
        if "op" not in d:
            raise self.err(_sub(key, "op"), "missing (required): the op's name, e.g. op = \"mmap\"")
        kind = d["op"]
        if isinstance(kind, str) and kind in PLANNED_OPS:
            raise self.err(_sub(key, "op"), f"op {kind!r} is not implemented yet: {PLANNED_OPS[kind]}")
        if not isinstance(kind, str) or kind not in OPS:
            raise self.err(_sub(key, "op"), f"unknown op {kind!r}; the ops are {', '.join(OPS)}")
        if kind == "repeat":
            return self.repeat(d, key, default)
        spec = _OP_SPECS[kind]
        self.keys(d, key, ("op", "task", "label", "on_error") + spec[0], spec[1])
        if "task" in d:
            task = self.task_ref(d["task"], _sub(key, "task"))
        elif default is not None:
            task = default
        else:
            raise self.err(_sub(key, "task"), "missing: name the task here or in the phase (task = ...)")
        label = self.name(d.get("label", kind), _sub(key, "label"))
        on_error = self.choice(d.get("on_error", self.on_error), _sub(key, "on_error"), ("stop", "continue"))
        args = getattr(self, f"op_{kind}")(d, key, self.scopes[task])
        return Op(kind, task, key, label, on_error, args)

    def repeat(self, d: dict, key: str, default: str | None) -> Repeat:
        self.keys(d, key, ("op", "count", "while_running", "ops", "task"), ("ops",))
        if "task" in d:
            default = self.task_ref(d["task"], _sub(key, "task"))
        wr = self.task_ref(d["while_running"], _sub(key, "while_running")) if "while_running" in d else None
        if "count" not in d and wr is None:
            raise self.err(_sub(key, "count"), "missing: a repeat needs a count, a while_running task, or both")
        count = self.int_(d["count"], _sub(key, "count"), 0, _I62) if "count" in d else None
        ops, used = self.op_list(d["ops"], _sub(key, "ops"), default)
        if wr is not None and wr in used:
            raise self.err(_sub(key, "while_running"), f"task {wr!r} runs ops inside this block; "
                                                       "while_running must name another task")
        return Repeat(key, count, wr, ops, frozenset(used))

    # ---- op arguments ----------------------------------------------------------------------------
    def map_ref(self, name: Any, key: str, scope: _Scope) -> str:
        name = self.name(name, key)
        if name not in scope.maps:
            raise self.err(key, f"no mapping {name!r} in this task yet (define it first: "
                                f"{{op = \"mmap\", map = \"{name}\", length = ...}}); "
                                f"mappings: {sorted(scope.maps) or 'none'}")
        return name

    def range_(self, d: dict, key: str, scope: _Scope, need_length: bool = False) -> dict:
        """``map`` [+ ``offset``, ``length``] or ``addr`` + ``length`` -> {map, offset, length}."""
        if ("map" in d) == ("addr" in d):
            raise self.err(_sub(key, "map"), "give the range as map = \"name\" (with optional "
                                             "offset and length) or addr = \"name+offset\" with length")
        if "map" in d:
            mp = self.map_ref(d["map"], _sub(key, "map"), scope)
            off = self.size(d.get("offset", 0), _sub(key, "offset"))
        else:
            if "offset" in d:
                raise self.err(_sub(key, "offset"), "with addr, write the offset into it (addr = \"buf+0x1000\")")
            mp, off = self.addr(d["addr"], _sub(key, "addr"), scope)
            need_length = True
        if need_length and "length" not in d:
            raise self.err(_sub(key, "length"), "missing (required)")
        total = scope.maps[mp]
        if off > total:
            raise self.err(_sub(key, "offset" if "map" in d else "addr"),
                           f"offset {off:#x} is beyond mapping {mp!r} ({total:#x} bytes)")
        length = self.size(d["length"], _sub(key, "length")) if "length" in d else total - off
        if off + length > total:
            raise self.err(_sub(key, "length"), f"offset {off:#x} + length {length:#x} is beyond "
                                                f"mapping {mp!r} ({total:#x} bytes)")
        return {"map": mp, "offset": off, "length": length}

    def addr(self, v: Any, key: str, scope: _Scope) -> tuple[str, int]:
        if isinstance(v, dict):
            self.keys(v, key, ("map", "offset"), ("map",))
            return self.map_ref(v["map"], _sub(key, "map"), scope), self.size(v.get("offset", 0), _sub(key, "offset"))
        m = _ADDR_RE.match(v) if isinstance(v, str) else None
        if not m:
            raise self.err(key, f"expected \"name\", \"name+offset\" (e.g. \"buf+0x1000\") or "
                                f"{{map = \"name\", offset = ...}}, got {_tname(v)} {v!r}")
        off = 0
        if m.group(2):
            try:
                off = int(m.group(2), 0)
            except ValueError:
                off = self.size(m.group(2), key)
        return self.map_ref(m.group(1), key, scope), off

    def fd_ref(self, v: Any, key: str, scope: _Scope) -> str:
        name = self.name(v, key)
        if name not in scope.fds:
            raise self.err(key, f"no file descriptor {name!r} in this task yet (open it first: "
                                f"{{op = \"open\", fd = \"{name}\", path = ...}}); fds: {sorted(scope.fds) or 'none'}")
        return name

    def file_path(self, v: Any, key: str, count: int | None) -> str:
        p = self.str_(v, key)
        if not p.startswith("/"):
            raise self.err(key, f"expected an absolute path, got {p!r}")
        has_i = bool(_INDEX_RE.search(p))
        if count is not None and not has_i:
            raise self.err(key, "with count, the path needs {i} (or {i:03d}) for the file's number")
        if count is None and "{" in p:
            raise self.err(key, "{i} in a path needs count = N")
        norm = os.path.normpath(_INDEX_RE.sub("0", p))
        if not any(norm.startswith(mp.rstrip("/") + "/") for mp in self.mount_paths):
            raise self.err(key, f"{p} is on no mounted filesystem (mounts: {self.mount_paths or 'none'})")
        return p

    def op_mmap(self, d: dict, key: str, scope: _Scope) -> dict:
        name = self.name(d["map"], _sub(key, "map"))
        length = self.size(d["length"], _sub(key, "length"), 1)
        prot = self.flags(d.get("prot", ["PROT_READ", "PROT_WRITE"]), _sub(key, "prot"), PROT, "protection")
        fk = _sub(key, "flags")
        fd = None
        if "fd" in d:
            fd = self.fd_ref(d["fd"], _sub(key, "fd"), scope)
            if scope.fds[fd] > 1:
                raise self.err(_sub(key, "fd"), f"fd {fd!r} is a group of {scope.fds[fd]} files; "
                                                "mmap maps one file")
        flags = self.flags(d.get("flags", ["MAP_SHARED"] if fd else ["MAP_PRIVATE", "MAP_ANONYMOUS"]),
                           fk, MAP, "mmap flag")
        if flags & K.MAP_TYPE not in (K.MAP_PRIVATE, K.MAP_SHARED, K.MAP_SHARED_VALIDATE):
            raise self.err(fk, "expected exactly one of MAP_PRIVATE, MAP_SHARED")
        if flags & (K.MAP_FIXED | K.MAP_FIXED_NOREPLACE):
            raise self.err(fk, "MAP_FIXED: in a scenario the kernel places mappings, and ops refer "
                               "to them by name")
        if fd is None and not flags & K.MAP_ANONYMOUS:
            raise self.err(fk, "a mapping without MAP_ANONYMOUS maps a file: give fd = \"name\"")
        if fd is not None and flags & K.MAP_ANONYMOUS:
            raise self.err(fk, "MAP_ANONYMOUS with fd: drop one of them")
        if fd is None and flags & K.MAP_TYPE != K.MAP_PRIVATE:
            raise self.err(fk, "MAP_SHARED | MAP_ANONYMOUS (shared memory) is not implemented yet; "
                               "map a tmpfs file MAP_SHARED instead")
        if "offset" in d and fd is None:
            raise self.err(_sub(key, "offset"), "the file offset of a mapping needs fd = \"name\"")
        off = self.size(d.get("offset", 0), _sub(key, "offset"), 0, 1 << 44)
        if off % 4096:
            raise self.err(_sub(key, "offset"), f"expected a multiple of 4096 (a page), got {off}")
        scope.maps[name] = length
        return {"map": name, "length": length, "prot": prot, "flags": flags, "fd": fd, "file_offset": off}

    def op_munmap(self, d: dict, key: str, scope: _Scope) -> dict:
        return self.range_(d, key, scope)

    op_munlock = op_munmap

    def op_mlock(self, d: dict, key: str, scope: _Scope) -> dict:
        return {**self.range_(d, key, scope), "onfault": self.bool_(d.get("onfault", False), _sub(key, "onfault"))}

    def op_mprotect(self, d: dict, key: str, scope: _Scope) -> dict:
        return {**self.range_(d, key, scope), "prot": self.flags(d["prot"], _sub(key, "prot"), PROT, "protection")}

    def op_madvise(self, d: dict, key: str, scope: _Scope) -> dict:
        adv = d["advice"]
        k = _sub(key, "advice")
        if isinstance(adv, int) and not isinstance(adv, bool):
            named = {v: n for n, v in {**MADV, **PLANNED_MADV}.items()}
            if adv in named:
                adv = named[adv]
            else:
                raise self.err(k, f"advice {adv} is not modelled; expected one of {', '.join(MADV)}")
        planned = {n: "the scenario format takes it once the machine implements it" for n in PLANNED_MADV}
        if isinstance(adv, list):
            raise self.err(k, "expected one advice name, got a list")
        return {**self.range_(d, key, scope), "advice": self.flags(adv, k, MADV, "madvise advice", planned)}

    def op_touch(self, d: dict, key: str, scope: _Scope) -> dict:
        return {**self.range_(d, key, scope),
                "stride": self.size(d.get("stride", 4096), _sub(key, "stride"), 1, 1 << 40),
                "write": self.bool_(d.get("write", True), _sub(key, "write"))}

    def op_mlockall(self, d: dict, key: str, scope: _Scope) -> dict:
        f = self.flags(d["flags"], _sub(key, "flags"), MCL, "mlockall flag")
        if f == 0:
            raise self.err(_sub(key, "flags"), "expected at least one of MCL_CURRENT, MCL_FUTURE")
        return {"flags": f}

    def op_munlockall(self, d: dict, key: str, scope: _Scope) -> dict:
        return {}

    op_sync = op_munlockall

    def op_prctl(self, d: dict, key: str, scope: _Scope) -> dict:
        return {"args": self.prctl_args({k: v for k, v in d.items() if k.startswith(("option", "arg"))}, key)}

    def op_access(self, d: dict, key: str, scope: _Scope) -> dict:
        rng = self.range_(d, key, scope)
        if "trace" in d:
            return {**rng, **self.access_trace(d, key, rng)}
        for k in ("format", "rebase", "wrap"):
            if k in d:
                raise self.err(_sub(key, k), "only with trace = \"file\"")
        pattern = self.choice(d.get("pattern", "uniform"), _sub(key, "pattern"), ("sequential", "uniform", "zipf"))
        count = self.int_(d.get("count"), _sub(key, "count"), 0, _I62) if "count" in d else None
        if count is None:
            raise self.err(_sub(key, "count"), "missing: the number of accesses")
        if rng["length"] == 0 and count:
            raise self.err(_sub(key, "length"), "the range is empty")
        out = {**rng, "pattern": pattern, "count": count, "seed": self.seed(d, key)}
        if pattern == "sequential":
            out["stride"] = self.size(d.get("stride", 4096), _sub(key, "stride"), 1, 1 << 40)
        elif "stride" in d:
            raise self.err(_sub(key, "stride"), "only with pattern = \"sequential\"")
        if pattern == "zipf":
            out["a"] = self.num(d.get("a", 1.0), _sub(key, "a"), 0, 100, lo_open=True)
            if -(-rng["length"] // 4096) > MAX_ZIPF_ITEMS:
                raise self.err(_sub(key, "length"), f"a zipf range may hold at most {MAX_ZIPF_ITEMS} pages")
        elif "a" in d:
            raise self.err(_sub(key, "a"), "only with pattern = \"zipf\"")
        w = d.get("write", False)
        out["write"] = self.bool_(w, _sub(key, "write")) if isinstance(w, bool) else \
            self.num(w, _sub(key, "write"), 0.0, 1.0)
        return out

    def seed(self, d: dict, key: str) -> int:
        """The op's own seed: given, or one derived from its key path (stable across runs)."""
        if "seed" in d:
            return self.int_(d["seed"], _sub(key, "seed"), 0, (1 << 63) - 1)
        return zlib.crc32(key.encode())

    def access_trace(self, d: dict, key: str, rng: dict) -> dict:
        for k in ("pattern", "stride", "a", "write", "seed"):
            if k in d:
                raise self.err(_sub(key, k), "not with trace = ... (the trace gives addresses and writes)")
        tk = _sub(key, "trace")
        rel = self.str_(d["trace"], tk)
        p = os.path.normpath(os.path.join(self.base_dir, rel))
        default_fmt = "mmtr" if p.endswith(".mmtr") else None
        fmt = self.choice(d.get("format", default_fmt), _sub(key, "format"), ("mmtr", "lackey")) \
            if "format" in d or default_fmt is None else default_fmt
        if (p, fmt) not in self.traces:
            self.traces[(p, fmt)] = self.read_trace(p, fmt, tk)
        addrs, writes, sha = self.traces[(p, fmt)]
        self.trace_digests[rel] = sha
        count = self.int_(d["count"], _sub(key, "count"), 0, len(addrs)) if "count" in d else len(addrs)
        rebase = self.bool_(d.get("rebase", True), _sub(key, "rebase"))
        wrap = self.bool_(d.get("wrap", False), _sub(key, "wrap"))
        a = addrs[:count]
        lo = (int(a.min()) & ~4095) if rebase and count else 0
        if count and not wrap:
            span_lo, span_hi = int(a.min()) - lo, int(a.max()) - lo
            if span_lo < 0 or span_hi >= rng["length"]:
                raise self.err(tk, f"the trace's addresses span [{span_lo:#x}, {span_hi:#x}] after rebasing, "
                                   f"outside the range's {rng['length']:#x} bytes (map more, or wrap = true)")
        return {"trace": (p, fmt), "count": count, "base": lo, "wrap": wrap}

    def read_trace(self, p: str, fmt: str, key: str) -> tuple:
        from . import formats
        try:
            with open(p, "rb") as f:
                sha = hashlib.sha256(f.read()).hexdigest()
            if fmt == "mmtr":
                a, w = formats.read_access_trace(p)
            else:
                a, w, _ = formats.read_lackey(p)
        except FileNotFoundError:
            raise self.err(key, f"no such trace file: {p}") from None
        except (OSError, ValueError) as e:
            raise self.err(key, f"cannot read the {fmt} trace: {e}") from None
        return np.ascontiguousarray(a, np.int64), np.ascontiguousarray(w, np.int8), sha

    def op_open(self, d: dict, key: str, scope: _Scope) -> dict:
        name = self.name(d["fd"], _sub(key, "fd"))
        count = self.int_(d["count"], _sub(key, "count"), 1, 1 << 20) if "count" in d else None
        path = self.file_path(d["path"], _sub(key, "path"), count)
        flags = self.flags(d.get("flags", "O_RDONLY"), _sub(key, "flags"), O_FLAGS, "open flag")
        if flags & (os.O_WRONLY | os.O_RDWR) == os.O_WRONLY | os.O_RDWR:
            raise self.err(_sub(key, "flags"), "O_WRONLY and O_RDWR together")
        scope.fds[name] = count or 1
        return {"fd": name, "path": path, "count": count, "flags": flags}

    def op_close(self, d: dict, key: str, scope: _Scope) -> dict:
        return {"fd": self.fd_ref(d["fd"], _sub(key, "fd"), scope)}

    op_fsync = op_close

    def op_pread(self, d: dict, key: str, scope: _Scope) -> dict:
        fd = self.fd_ref(d["fd"], _sub(key, "fd"), scope)
        length = self.size(d["length"], _sub(key, "length"), 0, 1 << 40)
        out = {"fd": fd, "length": length, "seed": self.seed(d, key)}
        off = d.get("offset", 0)
        ok = _sub(key, "offset")
        if isinstance(off, dict):
            self.keys(off, ok, ("dist", "align", "start"), ("dist",))
            out["offset"] = (self.choice(off["dist"], _sub(ok, "dist"), ("uniform", "sequential")),
                             self.size(off.get("align", length or 4096), _sub(ok, "align"), 1, 1 << 40),
                             self.size(off.get("start", 0), _sub(ok, "start"), 0, _I62))
        else:
            out["offset"] = ("fixed", 0, self.size(off, ok, 0, 1 << 44))
        n = scope.fds[fd]
        pick = d.get("pick", "all")
        pk = _sub(key, "pick")
        if pick == "all":
            out["pick"] = ("all", 0.0)
        else:
            self.keys(pick, pk, ("dist", "a"), ("dist",))
            dist = self.choice(pick["dist"], _sub(pk, "dist"), ("uniform", "sequential", "zipf"))
            if "a" in pick and dist != "zipf":
                raise self.err(_sub(pk, "a"), "only with dist = \"zipf\"")
            a = self.num(pick.get("a", 1.0), _sub(pk, "a"), 0, 100, lo_open=True)
            if n == 1:
                raise self.err(pk, f"fd {fd!r} is one file; pick needs a group (open with count)")
            out["pick"] = (dist, a)
        return out

    op_pwrite = op_pread

    def op_fallocate(self, d: dict, key: str, scope: _Scope) -> dict:
        return {"fd": self.fd_ref(d["fd"], _sub(key, "fd"), scope),
                "mode": self.flags(d.get("mode", 0), _sub(key, "mode"), FALLOC, "fallocate mode"),
                "offset": self.size(d.get("offset", 0), _sub(key, "offset"), 0, 1 << 44),
                "length": self.size(d["length"], _sub(key, "length"), 1, 1 << 44)}

    def op_fadvise(self, d: dict, key: str, scope: _Scope) -> dict:
        advice = d["advice"]
        if isinstance(advice, int) and not isinstance(advice, bool) and \
                advice not in FADV.values():
            raise self.err(_sub(key, "advice"), f"expected one of {', '.join(FADV)} (0 to 5), "
                                                f"got {advice}")
        return {"fd": self.fd_ref(d["fd"], _sub(key, "fd"), scope),
                "advice": self.flags(advice, _sub(key, "advice"), FADV, "fadvise advice"),
                "offset": self.size(d.get("offset", 0), _sub(key, "offset"), 0, 1 << 44),
                "length": self.size(d.get("length", 0), _sub(key, "length"), 0, 1 << 44)}

    def op_ftruncate(self, d: dict, key: str, scope: _Scope) -> dict:
        return {"fd": self.fd_ref(d["fd"], _sub(key, "fd"), scope),
                "length": self.size(d["length"], _sub(key, "length"), 0, 1 << 44)}

    def op_unlink(self, d: dict, key: str, scope: _Scope) -> dict:
        count = self.int_(d["count"], _sub(key, "count"), 1, 1 << 20) if "count" in d else None
        return {"path": self.file_path(d["path"], _sub(key, "path"), count), "count": count}

    def op_write_sysctl(self, d: dict, key: str, scope: _Scope) -> dict:
        name = self.str_(d["name"], _sub(key, "name")).removeprefix("/proc/sys/").replace("/", ".")
        if name not in SYSCTLS:
            raise self.err(_sub(key, "name"), f"unknown sysctl {d['name']!r}; expected one of {', '.join(SYSCTLS)}")
        value = self.int_(d["value"], _sub(key, "value"), 0, 1 << 31)
        if name == "vm.drop_caches" and not 1 <= value <= 4:
            raise self.err(_sub(key, "value"), f"vm.drop_caches takes 1, 2, 3 or 4, got {value}")
        return {"name": name, "value": value}

    def op_sysfs_write(self, d: dict, key: str, scope: _Scope) -> dict:
        path = self.str_(d["path"], _sub(key, "path")).removeprefix("/sys/").strip("/")
        if path not in SYSFS:
            raise self.err(_sub(key, "path"), f"unknown sysfs file {d['path']!r}; expected one of {', '.join(SYSFS)}")
        v = d["value"]
        knob = path.rsplit("/", 1)[1]
        if knob == "shrink_underused" and self.config.profile.version < 612:
            raise self.err(_sub(key, "path"), f"{path} exists from 6.12; machine.kernel is "
                           f"{self.config.kernel!r}")
        if "/khugepaged/" in path:
            lo, hi = KhugepagedConfig.LIMITS[knob]
            if isinstance(v, str) and v.strip().isdigit():
                v = int(v.strip())
            return {"path": path, "value": str(self.int_(v, _sub(key, "value"), lo, hi))}
        value = str(v) if isinstance(v, int) and not isinstance(v, bool) else self.str_(v, _sub(key, "value"))
        choices = {"enabled": ("always", "madvise", "never"), "use_zero_page": ("0", "1"),
                   "shrink_underused": ("0", "1"),
                   "defrag": self.config.profile.defrag_modes,
                   "shmem_enabled": K.SHMEM_HUGE_NAMES}[path.rsplit("/", 1)[1]]
        self.choice(value.strip(), _sub(key, "value"), tuple(choices))
        return {"path": path, "value": value.strip()}

    def op_sleep(self, d: dict, key: str, scope: _Scope) -> dict:
        return {"ns": self.duration(d["duration"], _sub(key, "duration"))}

    def op_brk(self, d: dict, key: str, scope: _Scope) -> dict:
        inc = self.size(d["increment"], _sub(key, "increment"), 0, 1 << 40)
        mp = None
        if "map" in d:
            mp = self.name(d["map"], _sub(key, "map"))
            scope.maps[mp] = max(inc, 1)
        return {"increment": inc, "map": mp}

    def _cgroup_path(self, v: Any, key: str) -> str:
        from .memcg import parse_path
        try:
            return parse_path(v)
        except (TypeError, ValueError) as e:
            raise self.err(key, str(e)) from None

    def op_cgroup_write(self, d: dict, key: str, scope: _Scope) -> dict:
        val = d["value"]
        if isinstance(val, bool) or not isinstance(val, (int, str)):
            raise self.err(_sub(key, "value"), f"expected a number or a string, got {_tname(val)}")
        return {"path": self._cgroup_path(d["path"], _sub(key, "path")),
                "file": self.str_(d["file"], _sub(key, "file")), "value": val}

    def op_oom_wait(self, d: dict, key: str, scope: _Scope) -> dict:
        return {"path": self._cgroup_path(d["path"], _sub(key, "path"))}

    def op_kill(self, d: dict, key: str, scope: _Scope) -> dict:
        return {"target": self.task_ref(d["target"], _sub(key, "target"))}

    def op_read_proc(self, d: dict, key: str, scope: _Scope) -> dict:
        return {"target": self.task_ref(d["target"], _sub(key, "target")),
                "file": self.choice(d["file"], _sub(key, "file"), PROC_FILES)}

    def op_exit(self, d: dict, key: str, scope: _Scope) -> dict:
        return {}

    def op_oomd(self, d: dict, key: str, scope: _Scope) -> dict:
        k = _sub(key, "cgroups")
        paths = d["cgroups"]
        if isinstance(paths, str):
            paths = [paths]
        if not isinstance(paths, list) or not paths:
            raise self.err(k, f"expected a cgroup path or a list of them, got {_tname(paths)}")
        return {"cgroups": tuple(self._cgroup_path(p, f"{k}[{i}]") for i, p in enumerate(paths)),
                "limit": self.num(d.get("pressure_limit", 60.0), _sub(key, "pressure_limit"),
                                  0.0, 100.0),
                "duration": self.num(d.get("pressure_duration", 30.0),
                                     _sub(key, "pressure_duration"), 0.0, 86400.0),
                "swap": self.num(d.get("swap_limit", 90.0), _sub(key, "swap_limit"), 0.0, 100.0)}

    def op_earlyoom(self, d: dict, key: str, scope: _Scope) -> dict:
        return {"mem": self.num(d.get("mem_percent", 10.0), _sub(key, "mem_percent"), 0.0, 100.0),
                "swap": self.num(d.get("swap_percent", 10.0), _sub(key, "swap_percent"), 0.0, 100.0)}


# the keys each op takes: (allowed, required), beside op, task, label and on_error
_RANGE = ("map", "addr", "offset", "length")
_OP_SPECS: dict[str, tuple[tuple, tuple]] = {
    "mmap": (("map", "length", "prot", "flags", "fd", "offset"), ("map", "length")),
    "munmap": (_RANGE, ()), "munlock": (_RANGE, ()),
    "mlock": (_RANGE + ("onfault",), ()),
    "mprotect": (_RANGE + ("prot",), ("prot",)),
    "madvise": (_RANGE + ("advice",), ("advice",)),
    "touch": (_RANGE + ("stride", "write"), ()),
    "mlockall": (("flags",), ("flags",)), "munlockall": ((), ()),
    "prctl": (("option", "arg2", "arg3", "arg4", "arg5"), ("option",)),
    "access": (_RANGE + ("count", "pattern", "stride", "a", "write", "seed", "trace", "format",
                         "rebase", "wrap"), ()),
    "open": (("fd", "path", "flags", "count"), ("fd", "path")),
    "close": (("fd",), ("fd",)), "fsync": (("fd",), ("fd",)),
    "pread": (("fd", "offset", "length", "pick", "seed"), ("fd", "length")),
    "pwrite": (("fd", "offset", "length", "pick", "seed"), ("fd", "length")),
    "fallocate": (("fd", "mode", "offset", "length"), ("fd", "length")),
    "fadvise": (("fd", "advice", "offset", "length"), ("fd", "advice")),
    "ftruncate": (("fd", "length"), ("fd", "length")),
    "unlink": (("path", "count"), ("path",)),
    "sync": ((), ()),
    "write_sysctl": (("name", "value"), ("name", "value")),
    "sysfs_write": (("path", "value"), ("path", "value")),
    "sleep": (("duration",), ("duration",)),
    "brk": (("increment", "map"), ("increment",)),
    "cgroup_write": (("path", "file", "value"), ("path", "file", "value")),
    "oom_wait": (("path",), ("path",)),
    "kill": (("target",), ("target",)),
    "read_proc": (("target", "file"), ("target", "file")),
    "exit": ((), ()),
    "earlyoom": (("mem_percent", "swap_percent"), ()),
    "oomd": (("cgroups", "pressure_limit", "pressure_duration", "swap_limit"), ("cgroups",)),
}


def _whiles(ops: tuple) -> Iterator[tuple[Repeat, tuple[str, str]]]:
    """Every repeat block with while_running, and (its target, the key naming it)."""
    for op in ops:
        if isinstance(op, Repeat):
            if op.while_running is not None:
                yield op, (op.while_running, _sub(op.key, "while_running"))
            yield from _whiles(op.ops)


def _tname(v: Any) -> str:
    return {bool: "a bool", int: "an integer", float: "a float", str: "a string", list: "an array",
            dict: "a table"}.get(type(v), type(v).__name__)


def expand_index(path: str, i: int) -> str:
    """``path`` with ``{i}`` / ``{i:03d}`` replaced by ``i``."""
    def rep(m: re.Match) -> str:
        return f"{i:0{m.group(2)}d}" if m.group(1) else (f"{i:{m.group(2)}d}" if m.group(2) else str(i))
    return _INDEX_RE.sub(rep, path)


def _zipf_cdf(n: int, a: float) -> np.ndarray:
    w = np.arange(1, n + 1, dtype=np.float64) ** -a
    c = np.cumsum(w)
    return c / c[-1]


# ---- running ---------------------------------------------------------------------------------------

def run_scenario(scenario: Scenario | str | os.PathLike | Mapping[str, Any], *, seed: int | None = None,
                 trace: str | os.PathLike | None = None,
                 progress: Callable[[int, int | None], None] | None = None,
                 params: Mapping[str, Any] | None = None) -> dict:
    """Run a scenario on a fresh machine; returns its summary (plain, JSON-able values).

    Parameters
    ----------
    scenario : Scenario, or anything ``load_scenario`` takes
    seed : int, optional
        The run's seed (default: the scenario's ``[scenario] seed``): the machine's and every
        generator's randomness derive from it.
    trace : path, optional
        Write an HDF5 run trace here (``mmcore.trace`` schema). It appears only once the run has
        finished and the file is complete; a failed run leaves nothing at this path.
    progress : callable, optional
        Called as ``progress(done, total)`` in units of work (accesses, touched pages, other
        ops); ``total`` is None when a ``while_running`` block makes it unknown.
    params : dict, optional
        Overrides of the scenario's ``[params]``.

    Returns
    -------
    dict
        ``scenario``, ``hash``, ``seed``, ``params``, ``sim_time_ns``, ``phases`` (each with
        ``sim_time_ns`` and per-op latency statistics), ``tasks`` (per task: pid, comm,
        ``status``, ``counters``, ``smaps_rollup``), ``meminfo``, ``vmstat``, ``dmesg``,
        ``filesystems`` and the extra ``[record] observables``.
    """
    sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    if params:
        sc = _with_params(sc, params)
    if seed is None:
        seed = sc.seed
    elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 1 << 63:
        raise ScenarioError(f"seed: expected a non-negative integer, got {seed!r}", file=sc.file)
    if trace is not None:
        d = os.path.dirname(os.path.abspath(os.fspath(trace)))
        if not os.path.isdir(d):
            raise ScenarioError(f"trace: directory {d} does not exist", file=sc.file)
    runner = _Runner(sc, int(seed), progress)
    summary = runner.run()
    if trace is not None:
        runner.write_trace(os.fspath(trace), summary)
    return summary


def _with_params(sc: Scenario, params: Mapping[str, Any]) -> Scenario:
    """``sc`` with its params overridden (validated again)."""
    return _build(copy.deepcopy(dict(sc.raw)), sc.file, sc.base_dir, {**sc.params, **params}, dict(sc.traces))


class _Hung(Exception):
    """The run cannot go on: every task left is asleep and nothing will wake it."""


class _Frame:
    """A repeat block being run by one task; ``broken`` once its while_running task is done."""
    __slots__ = ("rep", "broken")

    def __init__(self, rep: Repeat):
        self.rep, self.broken = rep, False


class _Stats:
    """Latencies (ns of the task's clock) of one op label of one task in one phase."""
    __slots__ = ("task", "op", "lat", "errors", "units")

    def __init__(self, task: str, op: str):
        self.task, self.op, self.lat, self.errors, self.units = task, op, [], 0, 0

    def summary(self) -> dict:
        a = np.asarray(self.lat, np.int64)
        pct = (lambda q: int(np.percentile(a, q, method="nearest"))) if a.size else (lambda q: 0)
        return {"task": self.task, "op": self.op, "count": int(a.size), "units": self.units,
                "errors": self.errors,
                "total_ns": int(a.sum()), "mean_ns": float(a.mean()) if a.size else 0.0,
                "p50_ns": pct(50), "p90_ns": pct(90), "p99_ns": pct(99), "max_ns": int(a.max()) if a.size else 0}


class _Runner:
    """One run of a scenario: the machine, the name tables and the per-phase statistics."""

    def __init__(self, sc: Scenario, seed: int, progress: Callable | None):
        from .machine import Machine
        self.sc = sc
        self.seed = seed
        self.progress = progress
        self.done_units = 0
        self.total_units = _total_units(sc)
        config = sc.config()
        self.config_json = json.dumps(config.to_dict(), sort_keys=True)
        self.m = Machine(config, seed=seed)
        if sc.tlb_geometries:
            self.m.shadow_tlbs([g for _, g in sc.tlb_geometries])
        for i, ms in enumerate(sc.mounts):
            try:
                self.m.mount(ms.path, ms.fstype, ms.size_bytes, disk=dict(ms.disk) if ms.disk else None,
                             huge=ms.huge)
            except (OSError, ValueError) as e:
                raise ScenarioRunError(f"mount failed: {e}", file=sc.file, key=_idx("mount", i)) from None
        self.tasks = {}
        self.order = {}
        for i, ts in enumerate(sc.tasks):
            if ts.thread_of is None:
                t = self.m.spawn(ts.comm, ts.oom_score_adj)
            else:
                t = self.tasks[ts.thread_of].clone_thread()
            self.tasks[ts.name], self.order[ts.name] = t, i
            for j, args in enumerate(ts.prctl):
                try:
                    t.prctl(*args)
                except OSError as e:
                    raise ScenarioRunError(f"prctl failed: {e}", file=sc.file,
                                           key=_idx(_sub(_idx("task", i), "prctl"), j)) from None
        self.maps: dict[tuple[str, str], tuple[int, int]] = {}
        self.fds: dict[tuple[str, str], list[int]] = {}
        self.rngs: dict[tuple[str, str], np.random.Generator] = {}
        self.cursors: dict[tuple, int] = {}
        self.cdfs: dict[tuple, np.ndarray] = {}
        self.phase_stats: list[dict[str, _Stats]] = []
        self.op_errors = 0
        for i, cs in enumerate(sc.cgroups):
            try:
                cg = self.m.cgroup(cs.path, create=True)
                for f, val in cs.files:
                    cg.write(f, val)
                for tn in cs.tasks:
                    cg.attach(self.tasks[tn])
            except (OSError, ValueError) as e:
                raise ScenarioRunError(f"cgroup setup failed: {e}", file=sc.file,
                                       key=_idx("cgroup", i)) from None
        from .locking import LockTable
        self.locks = LockTable()
        self.active: dict[str, dict] = {}          # name -> the op it is in the middle of
        self.blocked_since: dict[str, int] = {}    # name -> ps, asleep on a lock since
        self.oom_notes: dict[int, int] = {}        # memcg id -> OOM notifications so far
        self.event_ps = 0                          # when the latest wake-up cause happened
        self.reap_tries: dict[int, int] = {}
        self.fatal: set[int] = set()               # tgids with SIGKILL pending (kill op)
        self.user_kills: list[dict] = []           # what userspace OOM daemons signalled
        self.oomd_state: dict = {}                  # each oomd op's monitor, from poll to poll
        self.outcome = "completed"
        self.hung: list[dict] = []
        self.m._wake_hooks.append(self._memcg_event)

    # ---- the schedule ------------------------------------------------------------------------
    def run(self) -> dict:
        phases = []
        for ph in self.sc.phases:
            start = self._barrier()
            stats: dict[str, _Stats] = {}
            try:
                self._run_phase(ph, stats)
            except _Hung:
                pass
            end = max([t.time_ns for t in self._live()], default=start)
            self.phase_stats.append(stats)
            phases.append({"name": ph.name, "start_ns": start, "end_ns": end, "sim_time_ns": end - start,
                           "ops": {k: s.summary() for k, s in stats.items()}})
            if self.outcome == "hung":
                break
        if self.progress:
            self.progress(self.done_units, self.done_units)
        return self._summary(phases)

    def _live(self) -> list:
        return [t for t in self.tasks.values() if t._alive_flag()]

    def _barrier(self) -> int:
        """Every live task sleeps up to the latest clock; returns that time."""
        live = self._live()
        now = max([t.time_ns for t in live], default=0)
        for t in live:
            if t.time_ns < now:
                t.nanosleep(now - t.time_ns)
        return now

    def _run_phase(self, ph: Phase, stats: dict) -> None:
        """The phase's ops: the runnable task with the earliest clock goes next. An op runs to
        its end unless it sleeps (a lock, a memcg OOM wait, a victim that has yet to exit, an
        OOM notification) or reaches a slice boundary (``[scenario] quantum``); other tasks
        run meanwhile. When nothing can run and no timed event is due, the run has hung."""
        pending: dict[str, tuple] = {}
        for name in self.tasks:
            if name in ph.tasks:
                gen = self._walk(ph.ops, name, ())
                item = next(gen, None)
                if item is not None:
                    pending[name] = (item, gen)
        while pending:
            for name in [n for n in pending if not self.tasks[n]._alive_flag()]:
                self.active.pop(name, None)              # killed: its later ops never run
                self.locks.release_all(name)
                del pending[name]
            ready = [n for n in pending if self._runnable(n)]
            if not ready:
                if not pending:
                    break
                if self._fire_timer():
                    continue
                self._hang()
            name = min(ready, key=lambda n: (self.tasks[n].time_ns, self.order[n]))
            (op, frames), gen = pending[name]
            if name not in self.active:
                now = self.tasks[name].time_ns
                broken = False
                for fr in frames:
                    target = fr.rep.while_running
                    # its task is done once it has no ops left and its clock is not ahead of ours
                    if target is not None and target not in pending and self.tasks[target].time_ns <= now:
                        fr.broken = True               # the block ends here
                        broken = True
                        break
                if not broken:
                    self._start(name, op, stats)
            if name in self.active:
                self._step(name, stats)
            if name in self.active:
                continue                                 # asleep, or at a slice boundary
            item = next(gen, None)
            if item is None:
                del pending[name]
            else:
                pending[name] = (item, gen)

    def _walk(self, ops: tuple, task: str, frames: tuple) -> Iterator[tuple[Op, tuple]]:
        """``task``'s ops in order, repeats unrolled lazily; a broken block stops yielding."""
        for op in ops:
            if isinstance(op, Op):
                if op.task == task:
                    yield op, frames
                continue
            if task not in op.tasks:
                continue
            fr = _Frame(op)
            chain = frames + (fr,)
            it = 0
            while op.count is None or it < op.count:
                t0 = self.tasks[task].time_ns
                for item in self._walk(op.ops, task, chain):
                    yield item
                    if any(f.broken for f in chain):
                        break
                if any(f.broken for f in chain):
                    break
                if op.count is None and self.tasks[task].time_ns == t0:
                    raise ScenarioRunError("a repeat without count made no progress in simulated "
                                           "time (add a sleep to the block)", file=self.sc.file, key=op.key)
                it += 1

    def _start(self, name: str, op: Op, stats: dict) -> None:
        t = self.tasks[name]
        key = f"{name}.{op.label}"
        st = stats.get(key)
        if st is None:
            st = stats[key] = _Stats(name, op.label)
        self.active[name] = {"gen": self._op_steps(t, name, op), "op": op, "st": st,
                             "t0": t.time_ns, "done0": self.done_units, "errors": 0, "wait": None}

    def _step(self, name: str, stats: dict) -> None:
        """Run ``name``'s op until it sleeps, reaches a slice boundary, or ends."""
        from .machine import BusError, OOMKilled, SegmentationFault
        ctx = self.active[name]
        t = self.tasks[name]
        op = ctx["op"]
        self.op_errors = ctx["errors"]
        self.m._stuck = {self.tasks[n]._tgid for n, c in self.active.items()
                         if n != name and c["wait"] is not None and c["wait"][0] == "lock"}
        units = None
        try:
            ctx["wait"] = ctx["gen"].send(None)
            ctx["errors"] = self.op_errors
            if ctx["wait"][0] == "lock":
                self.blocked_since.setdefault(name, int(self.m.state.task[K.T_CLOCK, t._ti]))
            self.event_ps = max(self.event_ps, int(self.m.state.task[K.T_CLOCK, t._ti]))
            return
        except StopIteration as e:
            units = e.value if e.value is not None else 1
        except OOMKilled:
            self.op_errors += 1           # the task died in the op; the run goes on without it
            units = 1
        except (OSError, SegmentationFault, BusError, ValueError, NotImplementedError) as e:
            fatal = isinstance(e, (ScenarioError, ValueError, NotImplementedError,
                                   ProcessLookupError)) or op.on_error != "continue"
            if fatal:
                self.locks.release_all(name)
                del self.active[name]
                if isinstance(e, ScenarioError):
                    raise
                raise ScenarioRunError(f"{op.kind} by task {name!r} failed at {t.time_ns} ns: {e}",
                                       file=self.sc.file, key=op.key) from None
            self.op_errors += 1               # on_error = "continue": counted, the op ends
            units = 1
        self.locks.release_all(name)
        del self.active[name]
        self.blocked_since.pop(name, None)
        if t._alive_flag():
            self.event_ps = max(self.event_ps, int(self.m.state.task[K.T_CLOCK, t._ti]))
        st = ctx["st"]
        st.lat.append(t.time_ns - ctx["t0"])
        st.errors += self.op_errors
        self._tick(units)
        st.units += self.done_units - ctx["done0"]
        if t._alive_flag() and (t._tgid in self.m._dying or t._tgid in self.fatal):
            self._exit_group(t)           # SIGKILL was pending: it dies on the way out

    def _exit_group(self, t) -> None:
        for n, other in self.tasks.items():
            if other._tgid == t._tgid and other._alive_flag():
                self.locks.release_all(n)
                self.active.pop(n, None)
                other.exit()
        self.m._dying.pop(t._tgid, None)

    # ---- sleeping and waking ------------------------------------------------------------------
    def _runnable(self, name: str) -> bool:
        """``name`` can run now: not in an op, or its op's sleep has ended (its clock then moves
        up to the time of the cause)."""
        ctx = self.active.get(name)
        if ctx is None or ctx["wait"] is None:
            return True
        w = ctx["wait"]
        kind = w[0]
        m = self.m
        if kind == "slice":
            ok = True
        elif kind == "lock":
            lk = self.locks.get(w[1])
            ok = (lk.writer is None or lk.writer == name) if w[2] == "f" else lk.can_take(name, w[2])
        elif kind == "oom":
            cg = m._cgroups_by_id[w[1]]
            ok = (cg._g(K.MC_USAGE) < w[2] or cg._g(K.MC_MAX) > w[3] or
                  cg.oom_kill_disable < w[4])
        elif kind == "victim":
            v = m._tasks.get(w[1])
            ok = v is None or bool(m.state.mm[K.MM_FLAGS, v._mmi] & (1 << K.MMF_OOM_SKIP))
        elif kind == "event":
            ok = self.oom_notes.get(w[1], 0) > w[2]
        else:
            raise AssertionError(kind)
        if not ok:
            return False
        ctx["wait"] = None
        if kind != "slice":
            t = self.tasks[name]
            lag = (self.event_ps - int(m.state.task[K.T_CLOCK, t._ti])) // 1000
            if lag > 0:
                t.nanosleep(lag)
        self.blocked_since.pop(name, None)
        return True

    def _memcg_event(self, cg, what: str) -> None:
        """Machine hook: an OOM notification of ``cg`` reaches the listeners of it and of its
        descendants (mem_cgroup_oom_notify walks the subtree)."""
        if what == "oom":
            for c in cg.subtree():
                self.oom_notes[c.id] = self.oom_notes.get(c.id, 0) + 1

    def _fire_timer(self) -> bool:
        """The earliest oom_reaper run due, if any: True when one ran."""
        q = self.m._pending_reap
        if not q:
            return False
        q.sort()
        due, tgid = q.pop(0)
        self.event_ps = max(self.event_ps, due)
        v = self.m._tasks.get(tgid)
        if v is None:
            return True
        lk = self.locks.get(("mmap", v._mmi))
        if lk.writer is not None and self.reap_tries.get(tgid, 0) < 10:
            # mmap_read_trylock failed: try again HZ/10 later, MAX_OOM_REAP_RETRIES times
            self.reap_tries[tgid] = self.reap_tries.get(tgid, 0) + 1
            q.append((due + 10**11, tgid))
            return True
        self.m._oom_reap(tgid, locked=lk.writer is not None)
        return True

    def _hang(self) -> None:
        """Nothing can run and nothing is due: the tasks asleep stay asleep. khungtaskd reports
        the ones in uninterruptible sleep; the run ends here."""
        from .locking import HungTaskDetector, hung_task_lines, lock_name
        m = self.m
        v = m.config.profile.version
        det = HungTaskDetector(m.config.hung_task_timeout_secs)
        reports = []
        for name, ctx in self.active.items():
            w = ctx["wait"]
            t = self.tasks[name]
            if w is None:
                continue
            if w[0] == "lock":
                path = m.vfs.inode_paths.get(w[1][1], "") if w[1][0] == "inode" else ""
                why, state = f"{lock_name(w[1], v, path)}", "D"
                since = self.blocked_since.get(name, int(m.state.task[K.T_CLOCK, t._ti]))
                at = det.report_time(since)
                if at is not None:
                    reports.append((at, name))
            elif w[0] == "oom":
                why, state = f"the OOM of memory cgroup {m._cgroups_by_id[w[1]].path}", "D (killable)"
            elif w[0] == "victim":
                why, state = f"OOM victim {w[1]} to exit (in the charge path)", "R"
            else:
                why, state = f"an OOM notification of {m._cgroups_by_id[w[1]].path}", "S"
            self.hung.append({"task": name, "pid": t.pid, "comm": t.comm, "state": state,
                              "waiting_for": why, "reported": False})
        end = self.event_ps
        for at, name in sorted(reports):
            t = self.tasks[name]
            m._dmesg.extend(hung_task_lines(t.comm, t.pid, m.config.hung_task_timeout_secs, v))
            for h in self.hung:
                if h["task"] == name:
                    h["reported"] = True
                    h["reported_at_ns"] = at // 1000
            end = max(end, at)
        for name in self.active:                       # they slept until the run ended
            t = self.tasks[name]
            lag = (end - int(m.state.task[K.T_CLOCK, t._ti])) // 1000
            if lag > 0:
                t.nanosleep(lag)
        self.outcome = "hung"
        raise _Hung()

    # ---- what each op locks, and where it may sleep ---------------------------------------------
    def _take(self, name: str, key: tuple, mode: str):
        """Take a lock (a generator: it yields while the task sleeps on it)."""
        if mode == "f":
            lk = self.locks.get(key)
            while not (lk.writer is None or lk.writer == name):
                yield ("lock", key, "f")
            return
        while not self.locks.try_take(name, key, mode):
            yield ("lock", key, mode)

    def _oom_retry(self, name: str, held: list, fn, user_fault: bool):
        """Run ``fn`` (a machine call); if a memcg OOM makes the task sleep, sleep as the OOM
        model says (a generator) and call it again. Legacy sleeps in the charge path with every
        lock held; from 3.12 a user fault first unwinds and drops its locks; 4.19+ kills in the
        charge path (locks held) and only the oom_kill_disable wait is deferred."""
        from .machine import MemcgOOMWait, OOMVictimWait
        model = self.m.config.oom
        while True:
            try:
                return fn()
            except MemcgOOMWait as e:
                cg = self.m.cgroup(e.path)
                unwind = user_fault and model != "legacy"
                wait = ("oom", cg.id, cg._g(K.MC_USAGE), cg._g(K.MC_MAX), int(cg.oom_kill_disable))
            except OOMVictimWait as e:
                unwind = user_fault and model == "reliable"
                wait = ("victim", e.victim)
            if unwind:
                for key, _ in held:
                    self.locks.release(name, key)
            yield wait
            if wait[0] == "oom":
                cg = self.m._cgroups_by_id[wait[1]]
                cg._set(K.MC_UNDER_OOM, max(0, cg._g(K.MC_UNDER_OOM) - 1))
            if unwind:
                for key, mode in held:
                    yield from self._take(name, key, mode)

    def _op_steps(self, t, name: str, op: Op):
        """An op as a generator of sleeps (see ``_run_phase``); returns its units of work."""
        from .locking import lock_plan
        kind = op.kind
        v = self.m.config.profile.version
        gen = getattr(self, f"_gen_{kind}", None)
        if gen is not None:
            return (yield from gen(t, name, op))
        plan = lock_plan(kind, v, mm=t._mmi)
        for key, mode in plan:
            yield from self._take(name, key, mode)
        fn = getattr(self, f"_op_{kind}")
        return (yield from self._oom_retry(name, plan, lambda: fn(t, name, op),
                                           kind in ("touch", "access")))

    def _slices(self, total: int):
        q = self.sc.quantum or total or 1
        return [(lo, min(q, total - lo)) for lo in range(0, total, q)] or [(0, 0)]

    def _gen_touch(self, t, name: str, op: Op):
        from .locking import lock_plan
        plan = lock_plan("touch", self.m.config.profile.version, mm=t._mmi)
        for key, mode in plan:
            yield from self._take(name, key, mode)
        addr, length = self._range(name, op)
        a = op.args
        for k, (lo, n) in enumerate(self._slices(length)):
            if k:
                yield ("slice",)
            yield from self._oom_retry(name, plan, lambda: t.touch(addr + lo, n, a["stride"], a["write"]),
                                       True)
        return _touch_units(op)

    def _file_op(self, t, name: str, fd: int, fn, user_fault: bool = False):
        """A write/fallocate/ftruncate-like call on ``fd`` under its inode lock."""
        ino = self.m.vfs.fdtable(t._tgid)[fd].ino
        plan = [(("inode", ino), "w")]
        yield from self._take(name, plan[0][0], "w")
        try:
            return (yield from self._oom_retry(name, plan, fn, user_fault))
        finally:
            self.locks.release(name, plan[0][0])

    def _gen_pwrite(self, t, name: str, op: Op):
        import errno
        for fd in self._picked(name, op):
            off = self._offset(t, name, op, fd, True)
            ino = self.m.vfs.fdtable(t._tgid)[fd].ino
            key = ("inode", ino)
            yield from self._take(name, key, "w")
            done = 0
            for k, (lo, n) in enumerate(self._slices(op.args["length"])):
                if k:
                    yield ("slice",)
                try:
                    got = yield from self._oom_retry(name, [(key, "w")],
                                                     lambda: t.pwrite(fd, off + lo, n), False)
                except OSError as e:
                    if e.errno == errno.ENOMEM and done > 0:
                        break                 # the write returns what it wrote
                    self.locks.release(name, key)
                    raise
                done += got
                if got < n:
                    break                     # a short write: the call ends
            self.locks.release(name, key)
        return 1

    def _gen_fallocate(self, t, name: str, op: Op):
        a = op.args
        for fd in self._fdlist(name, op):
            yield from self._file_op(t, name, fd, lambda: t.fallocate(fd, a["mode"], a["offset"], a["length"]))
        return 1

    def _gen_ftruncate(self, t, name: str, op: Op):
        for fd in self._fdlist(name, op):
            yield from self._file_op(t, name, fd, lambda: t.ftruncate(fd, op.args["length"]))
        return 1

    def _gen_brk(self, t, name: str, op: Op):
        """brk(2) holds the mmap lock for writing to move the break; an mlockall'ed heap is then
        populated under the read side (mm_populate, whose errors brk ignores)."""
        import errno
        key = ("mmap", t._mmi)
        yield from self._take(name, key, "w")
        old = t.brk(0)
        new = t.brk(old + op.args["increment"], populate=False)
        self.locks.release(name, key)
        a = (old + 4095) & ~4095
        end = (new + 4095) & ~4095
        if op.args["map"] is not None:
            self.maps[(name, op.args["map"])] = (a, max(end - a, 0))
        deff = int(self.m.state.mm[K.MM_DEF_FLAGS, t._mmi])
        if end > a and deff & K.VM_LOCKED and not deff & K.VM_LOCKONFAULT:
            yield from self._take(name, key, "r")
            for k, (lo, n) in enumerate(self._slices(end - a)):
                if k:
                    yield ("slice",)
                try:
                    yield from self._oom_retry(name, [(key, "r")], lambda: t._populate(a + lo, n, 2),
                                               False)
                except OSError as e:
                    if e.errno != errno.ENOMEM:
                        raise
                    break
            self.locks.release(name, key)
        return 1

    def _gen_read_proc(self, t, name: str, op: Op):
        from .locking import lock_plan
        target = self.tasks[op.args["target"]]
        if not target._alive_flag():
            raise ProcessLookupError(f"/proc/{target.pid}/{op.args['file']}: the task has exited")
        plan = lock_plan("read_proc", self.m.config.profile.version, target_mm=target._mmi,
                         proc_file=op.args["file"])
        for key, mode in plan:
            yield from self._take(name, key, mode)
        if not target._alive_flag():
            return 1
        if op.args["file"] in ("maps", "smaps"):
            target.smaps()
        else:
            target.status()
        t.nanosleep(2000)                     # a read(2) of a small /proc file
        return 1

    def _gen_oom_wait(self, t, name: str, op: Op):
        """A userspace OOM handler's read of its eventfd (cgroup.event_control on
        memory.oom_control): returns once the memcg (or an ancestor's listener) is notified."""
        cg = self.m.cgroup(op.args["path"])
        if not cg.under_oom:
            yield ("event", cg.id, self.oom_notes.get(cg.id, 0))
        return 1

    def _gen_cgroup_write(self, t, name: str, op: Op):
        a = op.args
        cg = self.m.cgroup(a["path"])
        yield from self._oom_retry(name, [], lambda: cg.write(a["file"], a["value"]), False)
        t.nanosleep(1000)
        return 1

    def _gen_kill(self, t, name: str, op: Op):
        """kill(pid, SIGKILL): a task asleep uninterruptibly dies when it wakes; any other goes
        at once (its locks released as it exits)."""
        target = self.tasks[op.args["target"]]
        if target._alive_flag():
            ctx = self.active.get(op.args["target"])
            if ctx is not None and ctx["wait"] is not None and ctx["wait"][0] == "lock":
                self.fatal.add(target._tgid)
            else:
                self._exit_group(target)
        t.nanosleep(1000)
        return 1
        yield

    def _gen_exit(self, t, name: str, op: Op):
        self._exit_group(t)
        return 1
        yield

    def _gen_earlyoom(self, t, name: str, op: Op):
        """One poll of an earlyoom-like daemon (``mmcore.oom.earlyoom_decide``, the tool's
        defaults -m 10 -s 10): it reads /proc/meminfo and every process's oom_score, and when
        MemAvailable and SwapFree are both low it signals the process with the highest score
        (SIGTERM, or SIGKILL below half the thresholds; either ends it: no handlers here)."""
        import signal as _signal

        from . import oom as O
        m = self.m
        mi = m.meminfo()
        procs = [p for p in m.tasks() if p.pid == p._tgid]
        score = np.array([p.oom_score for p in procs], np.int64)
        rss = np.array([p.status()["VmRSS"] for p in procs], np.int64)
        sig, i = O.earlyoom_decide(mi["MemTotal"], mi["MemAvailable"], mi["SwapTotal"],
                                   mi["SwapFree"], score, vm_rss_kb=rss,
                                   oom_score_adj=np.array([p.oom_score_adj for p in procs], np.int64),
                                   pid=np.array([p.pid for p in procs], np.int64),
                                   mem_term_percent=op.args["mem"], swap_term_percent=op.args["swap"])
        t.nanosleep(20_000 + 2_000 * len(procs))      # reading /proc/meminfo and each oom_score
        if sig and i >= 0:
            v = procs[i]
            self.user_kills.append({"time_ns": t.time_ns, "by": name, "signal": _signal.Signals(sig).name,
                                    "pid": v.pid, "comm": v.comm, "oom_score": int(score[i]),
                                    "VmRSS_kB": int(rss[i])})
            self._user_kill(v)
        return 1
        yield

    def _user_kill(self, v) -> None:
        """A userspace daemon's kill signal to ``v``'s thread group: a task asleep on a lock
        dies when it wakes (the signal stays pending); any other exits now."""
        vname = next((n for n, x in self.tasks.items() if x._tgid == v._tgid), None)
        ctx = self.active.get(vname) if vname else None
        if ctx is not None and ctx["wait"] is not None and ctx["wait"][0] == "lock":
            self.fatal.add(v._tgid)
        else:
            self._exit_group(v)

    def _gen_oomd(self, t, name: str, op: Op):
        """One poll of a systemd-oomd-like daemon (``mmcore.oom``'s oomd rules, the tool's
        defaults) over the monitored cgroups, as ManagedOOMSwap=kill and
        ManagedOOMMemoryPressure=kill on them would have it: the swap rule first (system memory
        and swap both more than ``swap_limit`` % used: the candidate using the most swap, above
        5 % of swap); then the pressure rule (a monitored cgroup's memory.pressure ``full avg10``
        above ``pressure_limit`` % at every poll for ``pressure_duration`` s: among its
        candidates the one with the most reclaim (pgscan since the last poll), then the most
        memory). Candidates are the leaves below a monitored cgroup (itself if it has none). The
        victim cgroup's every process is killed (SIGKILL), and that cgroup's pressure watch
        starts over."""
        from . import oom as O
        m = self.m
        a = op.args
        mons = [m.cgroup(p) for p in a["cgroups"]]
        st = self.oomd_state.get((name, op.key))
        if st is None:
            st = self.oomd_state[(name, op.key)] = {
                "monitor": O.OomdPressureMonitor(len(mons), limit_percent=a["limit"],
                                                 duration_s=a["duration"]),
                "pgscan": {}}

        def leaves(cg):
            sub = [c for c in cg.subtree() if not c.children]
            return sub or [cg]
        cands = []
        for cg in mons:
            cands.extend(c for c in leaves(cg) if c not in cands)
        pgscan = {c.id: c.stat()["pgscan"] for c in cands}
        delta = [pgscan[c.id] - st["pgscan"].get(c.id, 0) for c in cands]
        st["pgscan"].update(pgscan)
        mi = m.meminfo()
        victim, rule = None, None
        if mi["SwapTotal"] > 0:
            i = O.oomd_swap_kill([int(c.read("memory.swap.current")) for c in cands],
                                 mi["SwapTotal"], mi["SwapFree"], mem_total_kb=mi["MemTotal"],
                                 mem_available_kb=mi["MemAvailable"],
                                 swap_used_limit_percent=a["swap"])
            if i >= 0:
                victim, rule = cands[i], "swap"
        avg10 = [float(c.read("memory.pressure").split()[6].split("=")[1]) for c in mons]
        hit = st["monitor"].observe(t.time_ns / 1e9, avg10)
        if victim is None and hit.any():
            mon = mons[int(hit.argmax())]
            sub = leaves(mon)
            i = O.oomd_select_by_pgscan_rate([delta[cands.index(c)] for c in sub],
                                             [c.current for c in sub])
            if i >= 0:
                victim, rule = sub[i], "memory pressure"
        t.nanosleep(20_000 + 2_000 * len(cands))       # reading the cgroups' files
        if victim is not None:
            if rule == "memory pressure":
                st["monitor"] = O.OomdPressureMonitor(len(mons), limit_percent=a["limit"],
                                                      duration_s=a["duration"])
            for pid in list(victim.procs):
                v = next((x for x in m.tasks() if x.pid == pid), None)
                if v is None:
                    continue
                self.user_kills.append({"time_ns": t.time_ns, "by": name, "signal": "SIGKILL",
                                        "pid": v.pid, "comm": v.comm, "cgroup": victim.path,
                                        "rule": rule, "VmRSS_kB": v.status()["VmRSS"]})
                self._user_kill(v)
        return 1
        yield

    def _tick(self, units: int) -> None:
        if units:
            self.done_units += units
            if self.progress:
                self.progress(self.done_units, self.total_units)

    # ---- name resolution ---------------------------------------------------------------------
    def _fail(self, op: Op, msg: str) -> ScenarioRunError:
        return ScenarioRunError(msg, file=self.sc.file, key=op.key)

    def _range(self, name: str, op: Op) -> tuple[int, int]:
        a = op.args
        got = self.maps.get((name, a["map"]))
        if got is None:
            raise self._fail(op, f"mapping {a['map']!r} of task {name!r} does not exist now (unmapped?)")
        return got[0] + a["offset"], a["length"]

    def _fdlist(self, name: str, op: Op) -> list[int]:
        fds = self.fds.get((name, op.args["fd"]))
        if fds is None:
            raise self._fail(op, f"fd {op.args['fd']!r} of task {name!r} is not open now (closed?)")
        return fds

    def _rng(self, name: str, op: Op) -> np.random.Generator:
        k = (name, op.key)
        if k not in self.rngs:
            self.rngs[k] = np.random.default_rng([self.seed, op.args["seed"], zlib.crc32(name.encode())])
        return self.rngs[k]

    # ---- memory ops ----------------------------------------------------------------------------
    def _op_mmap(self, t, name: str, op: Op) -> int:
        a = op.args
        if a["fd"] is None:
            addr = t.mmap(a["length"], a["prot"], a["flags"])
        else:
            fds = self._fdlist(name, op)
            addr = t.mmap(a["length"], a["prot"], a["flags"], fd=fds[0], offset=a["file_offset"])
        self.maps[(name, a["map"])] = (addr, a["length"])
        return 1

    def _op_munmap(self, t, name: str, op: Op) -> int:
        addr, length = self._range(name, op)
        t.munmap(addr, length)
        base, total = self.maps[(name, op.args["map"])]
        if addr <= base and addr + length >= base + total:
            del self.maps[(name, op.args["map"])]
        return 1

    def _op_mprotect(self, t, name: str, op: Op) -> int:
        t.mprotect(*self._range(name, op), op.args["prot"])
        return 1

    def _op_madvise(self, t, name: str, op: Op) -> int:
        t.madvise(*self._range(name, op), op.args["advice"])
        return 1

    def _op_mlock(self, t, name: str, op: Op) -> int:
        t.mlock(*self._range(name, op), onfault=op.args["onfault"])
        return 1

    def _op_munlock(self, t, name: str, op: Op) -> int:
        t.munlock(*self._range(name, op))
        return 1

    def _op_mlockall(self, t, name: str, op: Op) -> int:
        t.mlockall(op.args["flags"])
        return 1

    def _op_munlockall(self, t, name: str, op: Op) -> int:
        t.munlockall()
        return 1

    def _op_prctl(self, t, name: str, op: Op) -> int:
        t.prctl(*op.args["args"])
        return 1

    def _op_touch(self, t, name: str, op: Op) -> int:
        addr, length = self._range(name, op)
        t.touch(addr, length, op.args["stride"], op.args["write"])
        return _touch_units(op)

    def _op_access(self, t, name: str, op: Op) -> int:
        a = op.args
        addr, length = self._range(name, op)
        keep_going = op.on_error == "continue"
        for lo in range(0, a["count"], ACCESS_CHUNK):
            n = min(ACCESS_CHUNK, a["count"] - lo)
            addrs, writes = self._addresses(name, op, addr, length, lo, n)
            res = t.access(addrs, writes, record_faults=keep_going)
            if keep_going:
                self.op_errors += int(np.count_nonzero(res))     # SIGSEGVs, counted
            self._tick(n)
        return 0 if a["count"] else 1

    def _addresses(self, name: str, op: Op, addr: int, length: int, lo: int, n: int) -> tuple:
        """Accesses lo .. lo + n of an access op: (addresses, writes)."""
        a = op.args
        if "trace" in a:
            addrs, writes, _ = self.sc.traces[a["trace"]]
            off = addrs[lo:lo + n] - a["base"]
            if a["wrap"]:
                off = off % length
            return addr + off, writes[lo:lo + n]
        rng = self._rng(name, op)
        if a["pattern"] == "sequential":
            k = np.arange(lo, lo + n, dtype=np.int64)
            off = (k * a["stride"]) % length
        elif a["pattern"] == "uniform":
            off = rng.integers(0, length, n, dtype=np.int64)
        else:
            pages = -(-length // 4096)
            cdf = self._cdf(("pages", pages, a["a"]))
            off = np.searchsorted(cdf, rng.random(n), side="right").astype(np.int64) * 4096
            off = np.minimum(off, length - 1)
        w = a["write"]
        if isinstance(w, bool):
            writes = np.array([1 if w else 0], np.int8)
            writes = np.full(n, writes[0], np.int8) if n else writes[:0]
        else:
            writes = (rng.random(n) < w).astype(np.int8)
        return addr + off, writes

    def _cdf(self, k: tuple) -> np.ndarray:
        if k not in self.cdfs:
            self.cdfs[k] = _zipf_cdf(k[1], k[2])
        return self.cdfs[k]

    # ---- file ops --------------------------------------------------------------------------------
    def _op_open(self, t, name: str, op: Op) -> int:
        a = op.args
        if a["count"] is None:
            fds = [t.open(a["path"], a["flags"])]
        else:
            fds = [t.open(expand_index(a["path"], i), a["flags"]) for i in range(a["count"])]
        self.fds[(name, a["fd"])] = fds
        return 1

    def _op_close(self, t, name: str, op: Op) -> int:
        for fd in self._fdlist(name, op):
            t.close(fd)
        del self.fds[(name, op.args["fd"])]
        return 1

    def _op_fsync(self, t, name: str, op: Op) -> int:
        for fd in self._fdlist(name, op):
            t.fsync(fd)
        return 1

    def _picked(self, name: str, op: Op) -> list[int]:
        fds = self._fdlist(name, op)
        dist, a = op.args["pick"]
        if dist == "all":
            return fds
        if dist == "uniform":
            return [fds[int(self._rng(name, op).integers(0, len(fds)))]]
        if dist == "sequential":
            k = (name, op.key, "pick")
            i = self.cursors.get(k, 0)
            self.cursors[k] = i + 1
            return [fds[i % len(fds)]]
        cdf = self._cdf(("files", len(fds), a))
        return [fds[int(np.searchsorted(cdf, self._rng(name, op).random(), side="right"))]]

    def _offset(self, t, name: str, op: Op, fd: int, write: bool) -> int:
        dist, align, start = op.args["offset"]
        if dist == "fixed":
            return start
        length = op.args["length"]
        if dist == "uniform":
            chunks = max(1, (t.stat_size(fd) - start) // align)
            return start + int(self._rng(name, op).integers(0, chunks)) * align
        k = (name, op.key, fd)
        off = self.cursors.get(k, start)
        if not write and off + length > t.stat_size(fd):     # reads wrap at the end of the file
            off = start
        self.cursors[k] = off + align
        return off

    def _op_pread(self, t, name: str, op: Op) -> int:
        for fd in self._picked(name, op):
            t.pread(fd, self._offset(t, name, op, fd, False), op.args["length"])
        return 1

    def _op_pwrite(self, t, name: str, op: Op) -> int:
        for fd in self._picked(name, op):
            t.pwrite(fd, self._offset(t, name, op, fd, True), op.args["length"])
        return 1

    def _op_fallocate(self, t, name: str, op: Op) -> int:
        a = op.args
        for fd in self._fdlist(name, op):
            t.fallocate(fd, a["mode"], a["offset"], a["length"])
        return 1

    def _op_fadvise(self, t, name: str, op: Op) -> int:
        a = op.args
        for fd in self._fdlist(name, op):
            t.fadvise(fd, a["offset"], a["length"], a["advice"])
        return 1

    def _op_ftruncate(self, t, name: str, op: Op) -> int:
        for fd in self._fdlist(name, op):
            t.ftruncate(fd, op.args["length"])
        return 1

    def _op_unlink(self, t, name: str, op: Op) -> int:
        a = op.args
        for i in range(a["count"] or 1):
            t.unlink(expand_index(a["path"], i) if a["count"] else a["path"])
        return 1

    def _op_sync(self, t, name: str, op: Op) -> int:
        t.sync()
        return 1

    def _op_write_sysctl(self, t, name: str, op: Op) -> int:
        t.write_sysctl(op.args["name"], op.args["value"])
        return 1

    def _op_sysfs_write(self, t, name: str, op: Op) -> int:
        self.m.sysfs_write(op.args["path"], op.args["value"])
        return 1

    def _op_sleep(self, t, name: str, op: Op) -> int:
        t.nanosleep(op.args["ns"])
        return 1

    # ---- results -------------------------------------------------------------------------------
    def _summary(self, phases: list) -> dict:
        m, sc = self.m, self.sc
        obs = set(sc.observables)
        tasks = {}
        for name, t in self.tasks.items():
            d = {"pid": t.pid, "comm": t.comm, "alive": t._alive_flag()}
            if d["alive"]:
                d.update(status=t.status(), counters=t.counters(), smaps_rollup=t.smaps_rollup())
                if "smaps" in obs:
                    d["smaps"] = {mp: _plain(t.smaps(addr)) for (tn, mp), (addr, _) in self.maps.items()
                                  if tn == name}
            tasks[name] = d
        out = {
            "scenario": sc.name, "description": sc.description, "file": sc.file, "hash": sc.hash,
            "seed": self.seed, "params": copy.deepcopy(dict(sc.params)), "config": json.loads(self.config_json),
            "sim_time_ns": max([t.time_ns for t in self.tasks.values()], default=0),
            "phases": phases, "tasks": tasks, "meminfo": m.meminfo(), "vmstat": m.vmstat(),
            "dmesg": m.dmesg(), "filesystems": {ms.path: m.fs_stats(ms.path) for ms in sc.mounts},
            "observables": list(sc.observables),
            "outcome": self.outcome, "hung_tasks": self.hung, "userspace_kills": self.user_kills,
            "cgroups": {cg.path: {"current": cg.current, "peak": cg.peak, "events": cg.events(),
                                  "swap": cg._g(K.MC_SWAP_USAGE) * 4096, "procs": cg.procs}
                        for cg in m.cgroups()[1:]},
        }
        if sc.tlb_geometries:
            out["tlb_geometries"] = [{"geometry": label, **c} for (label, _), c
                                     in zip(sc.tlb_geometries, m._tlb_shadow.counts())]
        if "buddyinfo" in obs:
            out["buddyinfo"] = m.buddyinfo()
        if "zoneinfo" in obs:
            out["zoneinfo"] = m.zoneinfo()
        return out

    def write_trace(self, path: str, summary: dict) -> None:
        """The run's HDF5 trace (``mmcore.trace`` schema), plus the scenario's own records."""
        from .trace import TraceWriter, log2_histogram, write_machine_records
        m, sc = self.m, self.sc
        obs = set(sc.observables)
        attrs = {"scenario_name": sc.name, "scenario": sc.canonical,
                 "summary": json.dumps(summary, default=_json_default)}
        with TraceWriter(path, config_json=self.config_json, seed=self.seed, scenario_hash=sc.hash,
                         attrs=attrs) as w:
            write_machine_records(w, m)
            for i, stats in enumerate(self.phase_stats):
                for k, s in stats.items():
                    if s.lat:
                        w.write_histogram(f"phase{i}.{k}_latency_ns", *log2_histogram(np.asarray(s.lat)))
            self._write_finals(w, summary, obs)

    def _write_finals(self, w, summary: dict, obs: set) -> None:
        for name in ("meminfo", "vmstat"):
            if name in obs:
                w.write_final(name, summary[name])
        if "dmesg" in obs:
            w.write_final("dmesg", {f"{i:06d}": line for i, line in enumerate(summary["dmesg"])})
        for i, ph in enumerate(summary["phases"]):
            w.write_final(f"phase.{i}", {"name": ph["name"], "start_ns": ph["start_ns"],
                                         "end_ns": ph["end_ns"], "sim_time_ns": ph["sim_time_ns"]})
        for name, d in summary["tasks"].items():
            w.write_final(f"task.{name}", {"pid": d["pid"], "comm": d["comm"], "alive": int(d["alive"])})
            if not d["alive"]:
                continue
            for part in ("status", "counters", "smaps_rollup"):
                if part in obs:
                    w.write_final(f"{part}.{d['pid']}", d[part])
            for mp, sm in d.get("smaps", {}).items():
                w.write_final(f"smaps.{d['pid']}.{mp}", sm)
        if "buddyinfo" in obs:
            w.write_final("buddyinfo", {f"order{i}": n for i, n in enumerate(summary["buddyinfo"])})
        if "zoneinfo" in obs:
            w.write_final("zoneinfo", {k.replace(" ", "_"): v for k, v in summary["zoneinfo"].items()})
        if "fs_stats" in obs:
            for p, st in summary["filesystems"].items():
                w.write_final("fs" + re.sub(r"[^A-Za-z0-9_.:+-]", "_", p.replace("/", ".")), st)


def _plain(d: Mapping) -> dict:
    return {k: (int(v) if isinstance(v, (int, np.integer)) else v) for k, v in d.items()}


def _json_default(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    raise TypeError(f"not JSON-able: {type(v).__name__}")


def _touch_units(op: Op) -> int:
    return max(1, -(-op.args["length"] // op.args["stride"]))


def _total_units(sc: Scenario) -> int | None:
    """Units of work of the whole run (see ``run_scenario``'s ``progress``), or None."""
    total = 0
    for ph in sc.phases:
        n = _units(ph.ops)
        if n is None:
            return None
        total += n
    return total


def _units(ops: tuple) -> int | None:
    total = 0
    for op in ops:
        if isinstance(op, Repeat):
            inner = _units(op.ops)
            if inner is None or op.count is None:
                return None
            total += op.count * inner
        elif op.kind == "access":
            total += max(1, op.args["count"])
        elif op.kind == "touch":
            total += _touch_units(op)
        else:
            total += 1
    return total
