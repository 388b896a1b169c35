"""The fidelity ledger (mmcore/ledger.py) stays complete and true to the code and the tests."""
from __future__ import annotations

import ast
import re
from functools import lru_cache
from pathlib import Path

import mmcore
from mmcore import ledger as L
from mmcore.config import PROFILES
from mmcore.kernels.consts import VMSTAT_NAMES

ROOT = Path(__file__).resolve().parent.parent


def kernel_modules() -> set[str]:
    return {p.stem for p in (ROOT / "kernels").glob("*.py")}


def vmstat_counters() -> set[str]:
    """Every counter /proc/vmstat shows: the kernels' array and what Machine.vmstat adds."""
    m = mmcore.Machine(mmcore.Config(memory="16MiB"))
    return set(VMSTAT_NAMES) | set(m.vmstat())


@lru_cache(maxsize=None)
def defined_tests(path: str) -> frozenset[str]:
    """Names of the module-level test functions of a test file."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    return frozenset(n.name for n in tree.body
                     if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                     and n.name.startswith("test_"))


def test_every_kernel_module_has_a_row_or_is_plumbing():
    covered = {k for r in L.LEDGER for k in r.kernels}
    missing = kernel_modules() - covered - set(L.INFRASTRUCTURE)
    assert not missing, f"kernels/ modules with no ledger row (add one, or to INFRASTRUCTURE): {sorted(missing)}"
    stale = (covered | set(L.INFRASTRUCTURE)) - kernel_modules()
    assert not stale, f"the ledger names kernels/ modules that do not exist: {sorted(stale)}"
    both = covered & set(L.INFRASTRUCTURE)
    assert not both, f"modules both in a row and listed as plumbing: {sorted(both)}"


def test_every_vmstat_counter_has_a_row():
    counters = vmstat_counters()
    covered = {c for r in L.LEDGER for c in r.counters}
    missing = counters - covered
    assert not missing, f"/proc/vmstat counters no ledger row covers: {sorted(missing)}"
    stale = covered - counters
    assert not stale, f"the ledger names counters /proc/vmstat does not have: {sorted(stale)}"


def test_every_named_test_exists():
    for r in L.LEDGER:
        for node in r.tests:
            path, sep, name = node.partition("::")
            assert sep and re.fullmatch(r"test_\w+", name), f"{r.name}: not a test node id: {node}"
            assert (ROOT / path).is_file(), f"{r.name}: no file {path} (for {node})"
            assert name in defined_tests(path), f"{r.name}: {path} has no test {name}"


def test_rows_are_marked_for_every_profile_and_sourced():
    names = [r.name for r in L.LEDGER]
    assert len(names) == len(set(names)), "two rows with one name"
    assert L.PROFILE_NAMES == tuple(PROFILES)
    for r in L.LEDGER:
        assert set(r.marks) == set(PROFILES), f"{r.name}: marks for {sorted(r.marks)}, profiles {sorted(PROFILES)}"
        assert set(r.marks.values()) <= set(L.MARKS), f"{r.name}: {r.marks}"
        assert r.source.strip(), f"{r.name}: no source"
        modelled = {"exact", "approximate"} & set(r.marks.values())
        if modelled:
            assert r.tests, f"{r.name}: marked {sorted(modelled)} but names no test that shows it"
            assert r.kernels, f"{r.name}: modelled but names no kernels/ module"
        if "approximate" in r.marks.values() or "absent" in r.marks.values():
            assert r.note.strip(), f"{r.name}: approximate or absent without a note saying how"


def test_the_generated_file_and_the_readme_summary_are_current():
    assert L.LEDGER_PATH.read_text(encoding="utf-8") == L.markdown(), \
        "mmcore/LEDGER.md is stale: python -m mmcore.ledger --write"
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- ledger:begin -->\n(.*?)\n<!-- ledger:end -->", readme, re.S)
    assert m, "README.md has no <!-- ledger:begin --> ... <!-- ledger:end --> block"
    assert m.group(1) == L.summary_markdown(), "the README's ledger summary is stale"


def test_the_ledger_marks_what_the_profiles_say():
    """Spot checks against the code: the marks follow the profile table, not the other way."""
    row = {r.name.split(":")[0].split(" (")[0]: r for r in L.LEDGER}
    prctl = row["PR_SET_THP_DISABLE semantics"]
    for name, p in PROFILES.items():
        from mmcore.kernels import consts as K
        assert (prctl.marks[name] == "n/a") == (p.thp_disable == K.THPDIS_NONE), name
        assert (row["MADV_COLLAPSE"].marks[name] == "n/a") == (not p.madv_collapse), name
        assert (row["kcompactd"].marks[name] == "n/a") == (p.version < 406), name
        assert (row["tmpfs huge= and shmem_enabled"].marks[name] == "n/a") == (p.version < 408), name
    assert all(m == "approximate" for m in row["Memory cgroups"].marks.values())
    assert all(m == "approximate" for m in row["Swap"].marks.values())
