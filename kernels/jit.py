"""The one decorator every kernel uses, and where compiled kernels are cached.

Numba's cache notices when a function's own file changes, but not when a callee in another file
does: a kernel that inlined an old callee would keep running the old code. So, unless the user
sets ``NUMBA_CACHE_DIR``, the cache lives in a directory keyed on the content of every kernel file
and the Numba version: any change to any kernel starts a fresh cache.
"""
import functools
import hashlib
import os
from pathlib import Path

import numba


def _cache_dir() -> str:
    h = hashlib.sha256(numba.__version__.encode())
    for p in sorted(Path(__file__).parent.glob("*.py")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "mmcore"
    return str(base / f"numba-{numba.__version__}-{h.hexdigest()[:16]}")


if not os.environ.get("NUMBA_CACHE_DIR"):
    numba.config.CACHE_DIR = _cache_dir()

CACHE_DIR = numba.config.CACHE_DIR

# cache=True: compiled code is reused across processes; nogil=True: sweeps may run kernels from
# several threads. No fastmath: all state is integer.
kernel = functools.partial(numba.njit, cache=True, nogil=True)
