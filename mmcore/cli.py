"""The ``mmcore`` command."""
from __future__ import annotations

import argparse
import sys
import time

from . import __version__


def _thp_story(args: argparse.Namespace) -> int:
    from .scenarios import thp_story
    t0 = time.perf_counter()
    rows = thp_story(memory=args.memory, size=args.size, accesses=args.accesses, seed=args.seed)
    print(f"mmcore {__version__}: the THP story, kernel 6.18 profile, {args.size} touched then "
          f"{args.accesses:,} random reads (seed {args.seed})\n")
    hdr = ("enabled", "prctl", "Rss kB", "AnonHugePages kB", "VmPTE kB", "faults",
           "dTLB misses", "STLB misses", "sim time ms")
    print("  ".join(f"{h:>16}" for h in hdr))
    for r in rows:
        print("  ".join(f"{v:>16}" if isinstance(v, str) else f"{v:>16,}" for v in (
            r["enabled"], r["prctl"], r["Rss"], r["AnonHugePages"], r["VmPTE"], r["faults"],
            r["dtlb_misses"], r["stlb_misses"], r["time_ns"] // 1_000_000)))
    print(f"\n(wall time {time.perf_counter() - t0:.1f} s)")
    return 0


def _info() -> int:
    import os

    import llvmlite
    import numba
    import numpy

    from .config import PROFILES
    from .kernels.jit import CACHE_DIR
    cached = sum(f.endswith(".nbi") for _, _, files in os.walk(CACHE_DIR) for f in files)
    print(f"mmcore {__version__}  numba {numba.__version__}  llvmlite {llvmlite.__version__}  "
          f"numpy {numpy.__version__}")
    print(f"kernel cache: {CACHE_DIR} ({cached} cached kernel index files)")
    print("kernel profiles (Config.kernel): THP defrag default, defrag modes")
    for name, p in PROFILES.items():
        print(f"  {name:5}  {p.thp_defrag_default:8}  {', '.join(p.defrag_modes)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="mmcore", description=__doc__)
    p.add_argument("--version", action="version", version=f"mmcore {__version__}")
    sub = p.add_subparsers(dest="cmd")
    r = sub.add_parser("run", help="run the example scenario (the THP story)")
    r.add_argument("--memory", default="4GiB")
    r.add_argument("--size", default="512MiB")
    r.add_argument("--accesses", type=int, default=2_000_000)
    r.add_argument("--seed", type=int, default=0)
    sub.add_parser("warmup", help="compile and cache every kernel")
    sub.add_parser("info", help="versions, the kernel cache, the kernel profiles")
    args = p.parse_args(argv)
    try:
        if args.cmd in (None, "run"):
            if args.cmd is None:
                args = p.parse_args(["run"])
            return _thp_story(args)
        if args.cmd == "info":
            return _info()
        if args.cmd == "warmup":
            from .scenarios import warmup
            warmup()
            print("kernels compiled and cached")
            return 0
    except (ValueError, TypeError) as e:
        print(f"mmcore: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
