"""Parser for Valgrind lackey ``--trace-mem=yes`` logs, over a byte buffer.

Lackey (``lackey/lk_main.c`` in the Valgrind tree) prints one memory access per line::

    I  0023C790,2        instruction fetch: address, size
     L 0022E500,4        load
     S 04222CAC,1        store
     M 0421BD10,4        modify: a load and a store to the same address

The address is hexadecimal without ``0x``, the size decimal. Valgrind's own messages
(``==1234== ...``, and ``--1234-- ...`` with ``-v``) and blank lines are skipped.

An ``M`` line becomes two records, a load then a store, at the same address and size: what a
cache simulator expects of a read-modify-write instruction (the CS:APP cache-lab convention), and
what the engine's access path needs to take the read fault first and then the write-protect fault.

``parse_lackey`` works on whole lines only: a line that the buffer's end cuts is left for the next
call (unless ``final``), so the caller can feed a file in chunks of any size. Arrays in, arrays out,
no I/O; an integer status back (``LK_*``).
"""
import numpy as np

from .jit import kernel

LK_OK = 0
LK_BAD_OP = 1            # the first character is not I, L, S or M
LK_NO_SPACE = 2          # no blank after the access kind
LK_BAD_ADDRESS = 3       # no hexadecimal digit where the address belongs
LK_ADDRESS_RANGE = 4     # more than 16 hex digits, or >= 2**63
LK_NO_COMMA = 5          # the address is not followed by ','
LK_BAD_SIZE = 6          # no decimal size after ',', or more than 9 digits
LK_TRAILING = 7          # something other than blanks after the size
LK_FULL = 8              # the output arrays are too short (a caller's sizing bug)

LK_REASONS = (
    "ok",
    "expected an access kind I, L, S or M",
    "expected a blank after the access kind",
    "expected a hexadecimal address",
    "address does not fit in 63 bits",
    "expected ',' after the address",
    "expected a decimal size (at most 9 digits) after ','",
    "unexpected text after the size",
    "output arrays full",
)

_NL = 10
_CR = 13
_SP = 32
_TAB = 9
_COMMA = 44

# hex digit values by byte, -1 for anything else (a global array: Numba freezes it as a constant)
_HEX = np.full(256, -1, np.int8)
_HEX[48:58] = np.arange(10)
_HEX[65:71] = np.arange(10, 16)
_HEX[97:103] = np.arange(10, 16)


@kernel
def parse_lackey(buf, n, final, include_instructions, addr, is_write, size):
    """Parse the complete lines of ``buf[:n]`` into ``addr``/``is_write``/``size``.

    Parameters
    ----------
    buf : uint8[:]
    n : int
        Bytes of ``buf`` that hold data.
    final : bool
        The data ends here: a last line without a newline is parsed too.
    include_instructions : bool
        Emit ``I`` lines as reads; otherwise skip them.
    addr, is_write, size : int64[:], int8[:], int32[:]
        Output; room for ``n // 3 + 2`` records always suffices (a line that yields records has
        at least 5 characters and a newline, and yields at most 2).

    Returns
    -------
    (status, records, consumed, lines, line_end)
        ``consumed``: bytes parsed (whole lines); ``lines``: newlines consumed. On an error,
        ``consumed`` is the start of the offending line, ``lines`` the number of lines before it
        and ``line_end`` its end, so the caller can quote it.
    """
    cap = addr.shape[0]
    nrec = 0
    nlines = 0
    pos = 0                                  # start of the current line
    while pos < n:
        # One pass over the line; the first fault breaks out with ``st`` set. A line the buffer
        # cuts short looks faulty or unfinished here: it is only judged once its newline is in.
        j = pos
        st = LK_OK
        kind = 0
        a = 0
        s = 0
        while True:
            while j < n and (buf[j] == _SP or buf[j] == _TAB):
                j += 1
            if j == n or buf[j] == _NL:                       # blank
                break
            c = buf[j]
            if c == _CR and (j + 1 == n or buf[j + 1] == _NL):
                j += 1
                break
            if (c == 61 or c == 45) and j + 1 < n and buf[j + 1] == c:    # ==PID== or --PID--
                while j < n and buf[j] != _NL:
                    j += 1
                break
            if c != 73 and c != 76 and c != 83 and c != 77:     # I L S M
                st = LK_BAD_OP
                break
            kind = c
            j += 1
            if j == n or (buf[j] != _SP and buf[j] != _TAB):
                st = LK_NO_SPACE
                break
            while j < n and (buf[j] == _SP or buf[j] == _TAB):
                j += 1
            nd = 0
            first = 0
            while j < n:
                d = _HEX[buf[j]]
                if d < 0:
                    break
                if nd == 0:
                    first = d
                a = (a << 4) | d
                nd += 1
                j += 1
            if nd == 0:
                st = LK_BAD_ADDRESS
                break
            if nd > 16 or (nd == 16 and first >= 8):
                st = LK_ADDRESS_RANGE
                break
            if j == n or buf[j] != _COMMA:
                st = LK_NO_COMMA
                break
            j += 1
            nd = 0
            while j < n and 48 <= buf[j] <= 57:
                s = s * 10 + (buf[j] - 48)
                nd += 1
                j += 1
            if nd == 0 or nd > 9:
                st = LK_BAD_SIZE
                break
            while j < n and (buf[j] == _SP or buf[j] == _TAB):
                j += 1
            if j < n and buf[j] == _CR:
                j += 1
            if j < n and buf[j] != _NL:
                st = LK_TRAILING
            break
        if st != LK_OK or j == n:
            e = j
            while e < n and buf[e] != _NL:
                e += 1
            if e == n and not final:
                break                        # not all here yet: the next call parses it
            if st != LK_OK:
                return st, nrec, pos, nlines, e
        if kind != 0:
            if nrec + 2 > cap:
                return LK_FULL, nrec, pos, nlines, j
            if kind == 77:                   # M: load, then store
                addr[nrec] = a
                is_write[nrec] = 0
                size[nrec] = s
                nrec += 1
                addr[nrec] = a
                is_write[nrec] = 1
                size[nrec] = s
                nrec += 1
            elif kind != 73 or include_instructions:
                addr[nrec] = a
                is_write[nrec] = 1 if kind == 83 else 0
                size[nrec] = s
                nrec += 1
        if j < n:
            nlines += 1
            pos = j + 1
        else:
            pos = n
    return LK_OK, nrec, pos, nlines, -1
