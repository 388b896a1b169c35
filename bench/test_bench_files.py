"""File-backed fault throughput: faults on page-cache hits (the file is cached; every fault maps a
cached page), and the read path.

A 1 GiB ext4 file is written, synced and kept cached; a task maps it MAP_SHARED read-only and
touches one byte per page. ``fault_around_bytes`` is 4096 here, so every page takes its own fault
(with the default 64 KiB, one fault maps 16 pages and the fault count is 1/16 of the pages). The
6.18 profile's ext4 caches the file in PMD-sized folios, which a read fault at a 2 MiB-aligned
address maps whole by one PMD: the mapping sits 4 KiB past such an address, so every fault maps
one page by a PTE (as it would on Linux).
"""
from __future__ import annotations

import os

import pytest

import mmcore

GiB = 1 << 30
SIZE = 1 * GiB
ROUNDS = 3
MAP_AT = (1 << 40) + 4096                            # 4 KiB past a 2 MiB boundary: no PMD fits


class FileWorld:
    def __init__(self):
        self.m = mmcore.Machine(mmcore.Config(memory="4GiB", fault_around_bytes=4096))
        self.m.mount("/data", "ext4", size="2GiB")
        self.t = self.m.spawn("bench")
        self.fd = self.t.open("/data/f", os.O_CREAT | os.O_RDWR)
        self.t.pwrite(self.fd, 0, SIZE)
        self.t.fsync(self.fd)

    def map_fresh(self):
        """pedantic setup: unmap the previous pass's mapping, map the file afresh (untimed)."""
        if getattr(self, "addr", None) is not None:
            self.t.munmap(self.addr, SIZE)
        self.addr = self.t.mmap(SIZE, mmcore.PROT_READ, mmcore.MAP_SHARED | mmcore.MAP_FIXED,
                                fd=self.fd, addr=MAP_AT)
        return (self.addr,), {}

    def touch(self, a):
        f0 = self.t.counters()["min_flt"]
        self.t.touch(a, SIZE, write=False)
        return self.t.counters()["min_flt"] - f0


@pytest.fixture(scope="module")
def world():
    w = FileWorld()
    w.touch(*w.map_fresh()[0])                       # kernels loaded, tables grown
    return w


@pytest.mark.benchmark(group="files")
def test_file_fault_pagecache_hit(benchmark, rates, world):
    n = benchmark.pedantic(world.touch, setup=world.map_fresh, rounds=ROUNDS, iterations=1)
    assert n == SIZE // 4096
    assert world.t.counters()["maj_flt"] == 0
    rates.record(benchmark, "file-fault", n, "faults_per_s")


@pytest.mark.benchmark(group="files")
def test_pread_cached(benchmark, rates, world):
    def run():
        return world.t.pread(world.fd, 0, SIZE)
    assert benchmark.pedantic(run, rounds=ROUNDS, iterations=1) == SIZE
    rates.record(benchmark, "pread-cached", SIZE // 4096, "pages_per_s")
