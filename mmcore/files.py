"""Filesystems, files and file descriptors: the Python half of the machine's file layer.

The namespace (mount points, paths, file descriptors) lives here; everything that happens to
pages, blocks and time happens in the kernels (``mmcore.kernels.read_write`` and the modules it
calls), which get the machine's ``State``, whose file arrays (``fs``, ``ino``, ``blk``, ``pc``,
``lru``, ``fgs``, ``wbq``) this layer creates and grows.

A ``Disk`` is one FIFO queue: latency per request plus transfer time per 4 KiB. The defaults
(``Disk()``) are a datacenter NVMe SSD's order of magnitude: 80 us to read, 20 us to write (the
device's write cache), 3 GB/s read and 2 GB/s write.
"""
from __future__ import annotations

import errno as _errno
import os
from dataclasses import dataclass

import numpy as np

from .config import ConfigError, parse_size
from .kernels import consts as K
from .kernels import filemap as FM
from .kernels import read_write as RW

PAGE = 4096
NEVER = 1 << 62
FSTYPES = {"ext4": K.FST_EXT4, "ext2": K.FST_EXT2, "tmpfs": K.FST_TMPFS, "ramfs": K.FST_RAMFS,
           "xfs": K.FST_XFS}
DISK_FSTYPES = tuple(K.FSTYPE_NAMES[t] for t in K.BLOCK_FSTYPES)    # a mount needs a size
# SReclaimable per cached file: a dentry (192 bytes) and an ext4 inode (1096 bytes) slab object,
# on every filesystem (XFS's xfs_inode is 984 bytes on a 6.18 host: not told apart)
SLAB_BYTES_PER_FILE = K.SLAB_BYTES_PER_FILE      # a cached dentry + inode
O_ACCMODE = os.O_RDONLY | os.O_WRONLY | os.O_RDWR
_KNOWN_O = O_ACCMODE | os.O_CREAT | os.O_EXCL | os.O_TRUNC | os.O_APPEND | os.O_CLOEXEC | os.O_NOATIME


@dataclass
class Disk:
    """A disk's service times (each a parameter; see the module docstring for the defaults)."""
    read_latency_us: float = 80.0
    write_latency_us: float = 20.0
    read_mb_s: float = 3000.0
    write_mb_s: float = 2000.0

    def validate(self) -> None:
        for name in ("read_latency_us", "write_latency_us", "read_mb_s", "write_mb_s"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"disk.{name}: expected a non-negative number, got {v!r}")
        for name in ("read_mb_s", "write_mb_s"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"disk.{name}: expected a positive bandwidth, got {getattr(self, name)!r}")


def _oserror(code: int, what: str) -> OSError:
    return OSError(code, f"{what}: {os.strerror(code)}")


class OpenFile:
    """An open file description: its inode, flags, path and readahead state (``file_ra_state``:
    start, size, async_size, prev_pos, ra_pages, FMODE_RANDOM and the folio order, the ``RA_*``
    fields; shared by the descriptors fork copies, as in Linux)."""
    __slots__ = ("ino", "flags", "path", "ra")

    def __init__(self, ino: int, flags: int, path: str):
        self.ino, self.flags, self.path = ino, flags, path
        self.ra = np.zeros(K.NR_RA_FIELDS, np.int64)          # file_ra_state (RA_* fields)
        self.ra[K.RA_PREV] = self.ra[K.RA_PAGES] = -1


class VFS:
    """The machine's file layer: mounts, paths, inodes, the page-cache arrays and their growth."""

    def __init__(self, machine) -> None:
        self.m = machine
        self.mounts: dict[str, int] = {}          # mount point -> fs index
        self.paths: dict[str, int] = {}           # path -> inode
        self.inode_paths: dict[int, str] = {}
        self.blk_used = 0
        self.fdtables: dict[int, dict[int, OpenFile]] = {}   # tgid -> fd -> open file
        self.drop_caches_stfu = 0
        self.orphans: set[int] = set()               # unlinked and closed, still mapped

    @staticmethod
    def new_arrays(config) -> dict:
        """The file layer's part of a new machine's ``State``."""
        fgs = np.zeros(K.NR_FG, np.int64)
        fgs[K.FG_NEXT_FLUSH] = NEVER
        fgs[K.FG_KSWAPD_CLOCK] = -1
        fgs[K.FG_WMARK_MIN], fgs[K.FG_WMARK_LOW], fgs[K.FG_WMARK_HIGH] = config.watermarks()
        lru = np.zeros((K.NR_LV_FIELDS, 1), np.int64)
        lru[K.LV_HEAD:K.LV_PAGES] = -1
        return dict(fs=np.zeros((K.NR_FS_FIELDS, 4), np.int64),
                    ino=np.zeros((K.NR_I_FIELDS, 16), np.int64),
                    blk=np.zeros(1 << 12, np.int8),
                    pc=np.full(1 << 12, -1, np.int32),
                    lru=lru, fgs=fgs,
                    wbq=np.zeros((2, 1 << 12), np.int64))

    @property
    def state(self):
        return self.m.state

    @state.setter
    def state(self, value) -> None:
        self.m.state = value

    # ---- growth ----------------------------------------------------------------------------
    def call(self, fn, *args):
        """Run a file kernel, growing the page-cache index and the writeback ring on NEED_GROW."""
        while True:
            st, val = fn(self.m.state, *args)
            if st != K.NEED_GROW:
                return int(st), int(val)
            self.m._grow()

    def grow_if_needed(self, reserve: int) -> None:
        """Room for what a kernel asked (``FG_NEED_PC``/``FG_NEED_WB``), and at least ``reserve``
        more page-cache entries and writeback of every dirty page plus ``reserve``."""
        f = self.state
        used = int(f.fgs[K.FG_PC_USED])
        inflight = int(f.fgs[K.FG_WB_TAIL] - f.fgs[K.FG_WB_HEAD])
        want_pc = max(used + reserve, int(f.fgs[K.FG_NEED_PC])) * 2
        want_wb = max(inflight + int(self.m.state.vmstat[K.VS_NR_DIRTY]) + reserve,
                      int(f.fgs[K.FG_NEED_WB]))
        size = f.pc.shape[0]
        while size < want_pc:
            size *= 2
        if size != f.pc.shape[0]:
            pc = np.full(size, -1, np.int32)
            FM.pc_rehash(f.pc, pc, f.fr32, f.fr_idx)
            self.state = f = f._replace(pc=pc)
        cap = new = f.wbq.shape[1]
        while new < want_wb:
            new *= 2
        if new != cap:
            wbq = np.zeros((2, new), np.int64)
            h, t = int(f.fgs[K.FG_WB_HEAD]), int(f.fgs[K.FG_WB_TAIL])
            idx = np.arange(h, t) % cap              # unwrap the ring, oldest first
            wbq[:, :t - h] = f.wbq[:, idx]
            f.fgs[K.FG_WB_HEAD], f.fgs[K.FG_WB_TAIL] = 0, t - h
            self.state = f._replace(wbq=wbq)

    def _new_inode(self, fsi: int) -> int:
        f = self.state
        n = int(f.fgs[K.FG_NR_INODES])
        if n >= f.ino.shape[1]:
            ino = np.zeros((K.NR_I_FIELDS, 2 * n), np.int64)
            ino[:, :n] = f.ino
            f = f._replace(ino=ino)
            self.state = f
        col = f.ino[:, n]
        col[:] = 0
        col[K.I_FS] = fsi
        col[K.I_NLINK] = 1
        col[K.I_DIRTIED_WHEN] = -1
        col[K.I_ALIVE] = 1
        col[K.I_DCACHE] = 1                      # a new file's dentry and inode are cached
        col[K.I_MRA + K.RA_PREV] = -1
        col[K.I_MRA + K.RA_PAGES] = -1
        f.fgs[K.FG_SLAB] += 1
        f.fgs[K.FG_NR_INODES] = n + 1
        return n

    def ensure_blocks(self, ii: int, npages: int) -> None:
        """Give inode ``ii`` block states for at least ``npages`` pages (new ones are holes)."""
        f = self.state
        cap = int(f.ino[K.I_BLKCAP, ii])
        if npages <= cap:
            return
        new_cap = max(npages, 2 * cap, 16)
        if self.blk_used + new_cap > f.blk.shape[0]:
            self._compact_blocks(new_cap)
            f = self.state
        base = self.blk_used
        old = int(f.ino[K.I_BLK, ii])
        f.blk[base:base + cap] = f.blk[old:old + cap]
        f.blk[base + cap:base + new_cap] = K.BLK_HOLE
        f.ino[K.I_BLK, ii] = base
        f.ino[K.I_BLKCAP, ii] = new_cap
        self.blk_used = base + new_cap

    def _compact_blocks(self, extra: int) -> None:
        f = self.state
        n = int(f.fgs[K.FG_NR_INODES])
        live = [i for i in range(n) if f.ino[K.I_ALIVE, i] and f.ino[K.I_BLKCAP, i]]
        need = sum(int(f.ino[K.I_BLKCAP, i]) for i in live) + extra
        size = f.blk.shape[0]
        while size < 2 * need:
            size *= 2
        blk = np.zeros(size, np.int8)
        pos = 0
        for i in live:
            cap, old = int(f.ino[K.I_BLKCAP, i]), int(f.ino[K.I_BLK, i])
            blk[pos:pos + cap] = f.blk[old:old + cap]
            f.ino[K.I_BLK, i] = pos
            pos += cap
        self.blk_used = pos
        self.state = f._replace(blk=blk)

    # ---- mounts and paths ------------------------------------------------------------------
    def mount(self, path: str, fstype: str, size, disk: Disk | dict | None) -> None:
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"path: expected an absolute path such as '/data', got {path!r}")
        path = "/" + path.strip("/") if path != "/" else "/"
        if fstype not in FSTYPES:
            raise ValueError(f"fstype: expected one of {sorted(FSTYPES)}, got {fstype!r}")
        if path in self.mounts:
            raise _oserror(_errno.EBUSY, f"mount {path}")
        nbytes = parse_size(size, "size")
        if fstype == "ramfs":
            nbytes = nbytes or (1 << 62)        # ramfs has no size limit
        if nbytes < PAGE:
            raise ConfigError(f"size: expected at least 4 KiB, got {size!r}")
        if disk is None:
            disk = Disk()
        elif isinstance(disk, dict):
            unknown = sorted(set(disk) - set(Disk.__dataclass_fields__))
            if unknown:
                raise ConfigError(f"disk: unknown key(s) {unknown}; known keys are "
                                  f"{sorted(Disk.__dataclass_fields__)}")
            disk = Disk(**disk)
        elif not isinstance(disk, Disk):
            raise TypeError(f"disk: expected a Disk or a dict, got {type(disk).__name__}")
        disk.validate()
        f = self.state
        fsi = len(self.mounts)
        if fsi >= f.fs.shape[1]:
            fs = np.zeros((K.NR_FS_FIELDS, 2 * fsi), np.int64)
            fs[:, :fsi] = f.fs
            self.state = f = f._replace(fs=fs)
        col = f.fs[:, fsi]
        col[K.FS_TYPE] = FSTYPES[fstype]
        col[K.FS_BLOCKS] = col[K.FS_FREE] = nbytes // PAGE
        col[K.FS_RD_LAT] = round(disk.read_latency_us * 1e6)
        col[K.FS_WR_LAT] = round(disk.write_latency_us * 1e6)
        col[K.FS_RD_PAGE] = round(PAGE / (disk.read_mb_s * 1e6) * 1e12)
        col[K.FS_WR_PAGE] = round(PAGE / (disk.write_mb_s * 1e6) * 1e12)
        self.mounts[path] = fsi

    def resolve(self, path: str) -> tuple[int, str]:
        """(filesystem index, normalised path) of a file path; ENOENT outside every mount."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"path: expected an absolute path, got {path!r}")
        norm = os.path.normpath(path)
        best = None
        for mp in self.mounts:
            if norm == mp or norm.startswith(mp.rstrip("/") + "/"):
                if best is None or len(mp) > len(best):
                    best = mp
        if best is None or norm == best:
            raise _oserror(_errno.ENOENT if best is None else _errno.EISDIR, f"open {path}")
        return self.mounts[best], norm

    def fdtable(self, tgid: int) -> dict[int, OpenFile]:
        return self.fdtables.setdefault(tgid, {})

    def mapped(self, ii: int) -> bool:
        """Whether any VMA of any live address space maps inode ``ii``."""
        s = self.m.state
        for mmi in range(int(s.gs[K.G_NR_MM])):
            if s.mm[K.MM_USERS, mmi] <= 0:
                continue
            b, c = int(s.mm[K.MM_VBASE, mmi]), int(s.mm[K.MM_VCOUNT, mmi])
            if np.any(s.vma[K.V_FILE, b:b + c] == ii):
                return True
        return False

    def release(self, ii: int) -> None:
        """Drop one open-file reference to inode ``ii``; an unlinked file goes when nothing holds
        it (no open file, no mapping)."""
        ino = self.state.ino
        ino[K.I_REFS, ii] -= 1
        if ino[K.I_REFS, ii] == 0 and ino[K.I_NLINK, ii] == 0:
            if self.mapped(ii):
                self.orphans.add(ii)
            else:
                self.call(RW.file_release, ii)

    def reap(self) -> None:
        """Free unlinked, closed files whose last mapping went."""
        for ii in list(self.orphans):
            if not self.mapped(ii):
                self.orphans.discard(ii)
                self.call(RW.file_release, ii)

    # ---- observables -----------------------------------------------------------------------
    def lru_pages(self, li: int) -> int:
        return int(self.state.lru[K.LV_PAGES + li].sum())

    def slab_pages(self) -> int:
        """Pages the reclaimable slab (cached dentries and inodes) occupies."""
        return (int(self.state.fgs[K.FG_SLAB]) * SLAB_BYTES_PER_FILE + 4095) // 4096

    def fs_stats(self, path: str) -> dict[str, int]:
        """A mounted filesystem's block counts and its disk's traffic (statfs plus diskstats)."""
        if path not in self.mounts:
            raise ValueError(f"path: {path!r} is not a mount point; mounted: {sorted(self.mounts)}")
        col = self.state.fs[:, self.mounts[path]]
        return {"fstype": K.FSTYPE_NAMES[int(col[K.FS_TYPE])], "blocks": int(col[K.FS_BLOCKS]),
                "free_blocks": int(col[K.FS_FREE]), "bytes_read": int(col[K.FS_BYTES_READ]),
                "bytes_written": int(col[K.FS_BYTES_WRITTEN]), "pages_lost": int(col[K.FS_ERR_LOST])}
