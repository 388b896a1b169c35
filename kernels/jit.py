"""The one decorator every kernel uses."""
import functools

import numba

# cache=True: compiled code is reused across processes (key NUMBA_CACHE_DIR on the kernels' hash);
# nogil=True: sweeps may run kernels from several threads. No fastmath: all state is integer.
kernel = functools.partial(numba.njit, cache=True, nogil=True)
