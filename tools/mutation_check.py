"""Mutation check: can the test suite tell a broken softmax from a working one?

    python tools/mutation_check.py                  # both parts, default sample
    python tools/mutation_check.py --c              # the scripted C-core mutants only
    python tools/mutation_check.py --python 40      # 40 sampled Python-layer mutants only
    python tools/mutation_check.py --list           # print the mutants, run nothing

Every mutant is applied to a scratch copy of the checkout (``--scratch``,
default a fresh temporary directory); the working tree is never modified.

Python layer (`_arguments.py`, `_plan.py`, `_backends/merge.py`,
`_backends/numpy.py`): mutmut's classic operator set, one change per mutant
(``==``/``!=``, ``<``/``<=``, ``>``/``>=``, ``and``/``or``, ``not x`` -> ``x``,
``+``/``-``, ``True``/``False``, ``-inf``/``inf``, ``return x`` -> ``return None``),
a seeded sample of them run against FAST_TESTS with the scratch ``src/``
first on the path and the built extension copied beside it.

C core: the scripted list C_MUTANTS (the long-row merge's 1/T scaling, the
+inf sharing rule, the log1p path, the TwoSum low part, the one rounding of
subnormal terms); the scratch copy is built once with meson (as the package's
own build does), each mutant recompiled incrementally, its tests run.

Prints killed / survived per mutant and the kill rate; exit status 1 if a C
mutant survives. Takes minutes (each mutant runs a test subset).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY_MODULES = ["_arguments.py", "_plan.py", "_backends/merge.py", "_backends/numpy.py"]
FAST_TESTS = [
    "tests/test_edges.py", "tests/test_errors.py", "tests/test_columns.py",
    "tests/test_hostile_inputs.py", "tests/test_conformance.py",
    "tests/test_differential.py::test_seeded_run",
    "tests/test_differential.py::test_issue_15_item_2_overflowing_differences_every_path",
    "tests/test_accuracy.py::test_scale_multiplier_is_exact_to_100_bits",
    "tests/test_stream.py::test_edge_semantics", "tests/test_stream.py::test_where_masks_entries",
]
C_TESTS = [
    "tests/test_edges.py",
    "tests/test_accuracy.py::test_banned_entries_in_segmented_rows",
    "tests/test_accuracy.py::test_dominant_log_softmax_keeps_tiny_negative",
    "tests/test_accuracy.py::test_subnormal_rest_sum_in_float64",
    "tests/test_accuracy.py::test_family_within_bound",
    "tests/test_differential.py::test_issue_15_item_1_long_row_banned_tail_every_path",
    "tests/test_differential.py::test_seeded_run",
]

# (name, file under src/softmax/_core, exact text, replacement)
C_MUTANTS = [
    ("merge drops the 1/T scaling", "driver.c",
     "        if (job->sc.scaled) {\n            dd_mul(d_h, d_l, job->sc.c_hi, job->sc.c_lo, &d_h, &d_l);",
     "        if (0) {\n            dd_mul(d_h, d_l, job->sc.c_hi, job->sc.c_lo, &d_h, &d_l);"),
    ("+inf entries do not share (each gets 1)", "driver.c",
     "log_mode ? 0.0 - log(n_posinf) : 1.0 / n_posinf;",
     "log_mode ? 0.0 : 1.0;"),
    ("log1p(s) computed as log(1 + s)", "driver.c",
     "*l_hi = log1p(r_hi);", "*l_hi = log(1.0 + r_hi);"),
    ("TwoSum loses its low part", "driver.c",
     "*e = (a - (t - z)) + (b - z);", "*e = 0.0;"),
    ("subnormal terms dropped from the sum", "driver.c",
     "c += ldexp(t, -128);", "c += 0.0 * t;"),
]

PY_OPERATORS = [
    (r" == ", " != "), (r" != ", " == "), (r" <= ", " < "), (r" < ", " <= "),
    (r" >= ", " > "), (r" > ", " >= "), (r" and ", " or "), (r" or ", " and "),
    (r"\bnot ", ""), (r" \+ ", " - "), (r" - ", " + "), (r"\bTrue\b", "False"),
    (r"\bFalse\b", "True"), (r"-np\.inf\b", "np.inf"), (r"(?<![-\w])np\.inf\b", "-np.inf"),
    (r"^(\s*)return (?!None\b).+$", r"\1return None"),
]


def python_mutants():
    """(module, line number, description, new source) for every operator site."""
    out = []
    for mod in PY_MODULES:
        path = ROOT / "src" / "softmax" / mod
        lines = path.read_text().splitlines(keepends=True)
        in_doc = False
        for i, line in enumerate(lines):
            stripped = line.strip()
            if stripped.count('"""') == 1:
                in_doc = not in_doc
                continue
            if in_doc or stripped.startswith(("#", '"""', "import ", "from ", "raise ", "def ",
                                              "@", "class ")):
                continue
            code = line.split("  #")[0]
            for pat, rep in PY_OPERATORS:
                m = re.search(pat, code, flags=re.M)
                if not m or "f\"" in code or "f'" in code:
                    continue
                new_line = code[:m.start()] + m.expand(rep) + code[m.end():]
                if not new_line.endswith("\n"):
                    new_line += "\n"
                src = "".join(lines[:i] + [new_line] + lines[i + 1:])
                out.append((mod, i + 1, f"{pat!r} -> {rep!r}: {stripped[:70]}", src))
    return out


def _copy_tree(dst: Path):
    ignore = shutil.ignore_patterns("build", ".git", "__pycache__", "*.so", ".venv", "mutants")
    shutil.copytree(ROOT, dst, ignore=ignore)


def _run_tests(scratch: Path, pkg_root: Path, tests, timeout: float) -> tuple[bool, float]:
    """True if the tests fail (the mutant is killed)."""
    boot = (
        "import sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in type(f).__module__.lower()"
        " and 'Editable' not in type(f).__name__]\n"
        f"sys.path.insert(0, {str(pkg_root)!r})\n"
        "import softmax\n"
        f"assert softmax.__file__.startswith({str(pkg_root)!r}), softmax.__file__\n"
        "import pytest\n"
        "sys.exit(pytest.main(['-q', '-x', '-p', 'no:cacheprovider', '--no-header', "
        "'-W', 'ignore::pytest.PytestUnraisableExceptionWarning'] + sys.argv[1:]))\n"
    )
    env = dict(os.environ, HYPOTHESIS_PROFILE="default", SOFTMAX_DIFFERENTIAL_SECONDS="0")
    start = time.monotonic()
    try:
        res = subprocess.run([sys.executable, "-c", boot, *tests], cwd=scratch, env=env,
                             capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return True, time.monotonic() - start  # a hang counts as detected
    if res.returncode not in (0, 1):
        tail = (res.stdout + res.stderr)[-800:]
        if "assert softmax.__file__" in tail or "ModuleNotFoundError" in tail:
            raise RuntimeError(f"scratch package not importable:\n{tail}")
    return res.returncode != 0, time.monotonic() - start


def _built_extension(build: Path) -> Path:
    (so,) = list(build.rglob("_core.cpython-*.so")) or [None]
    if so is None:
        raise RuntimeError(f"no _core extension under {build}")
    return so


def _env():
    # the build's python is this interpreter (numpy's headers come from it)
    return dict(os.environ, PATH=f"{Path(sys.executable).parent}:{os.environ['PATH']}")


def _setup_build(scratch: Path) -> Path:
    build = scratch / "build-mut"
    subprocess.run(["meson", "setup", str(build), str(scratch), "-Dbuildtype=release"],
                   check=True, capture_output=True, text=True, env=_env())
    return build


def _compile(build: Path):
    res = subprocess.run(["meson", "compile", "-C", str(build)], capture_output=True, text=True,
                         env=_env())
    if res.returncode != 0:
        raise RuntimeError("compile failed:\n" + res.stdout[-2000:] + res.stderr[-2000:])


def _install_so(so: Path, pkg: Path):
    for old in (pkg / "softmax").glob("_core.cpython-*.so"):
        old.unlink()
    shutil.copy2(so, pkg / "softmax" / so.name)


def run_c(scratch: Path, timeout: float) -> list[tuple[str, bool, float]]:
    pkg = scratch / "pkg"
    shutil.copytree(scratch / "src" / "softmax", pkg / "softmax",
                    ignore=shutil.ignore_patterns("_core"))
    # (softmax/_core/ holds only C sources: the package imports the extension module)
    build = _setup_build(scratch)
    _compile(build)
    _install_so(_built_extension(build), pkg)
    killed, _ = _run_tests(scratch, pkg, C_TESTS, timeout)
    if killed:
        raise RuntimeError("the C tests fail on the unmutated scratch build")
    results = []
    for name, fname, old, new in C_MUTANTS:
        path = scratch / "src" / "softmax" / "_core" / fname
        original = path.read_text()
        if original.count(old) != 1:
            raise RuntimeError(f"mutant {name!r}: text not found exactly once in {fname}")
        path.write_text(original.replace(old, new))
        try:
            _compile(build)
            _install_so(_built_extension(build), pkg)
            killed, secs = _run_tests(scratch, pkg, C_TESTS, timeout)
        finally:
            path.write_text(original)
        results.append((name, killed, secs))
        print(f"  C  {'KILLED  ' if killed else 'SURVIVED'} {name} ({secs:.0f} s)", flush=True)
    _compile(build)
    return results


def run_python(scratch: Path, sample: int, seed: int, timeout: float):
    from importlib.machinery import EXTENSION_SUFFIXES  # noqa: F401

    import softmax._core as core  # the built extension of this checkout

    pkg = scratch / "pkg-py"
    shutil.copytree(ROOT / "src" / "softmax", pkg / "softmax",
                    ignore=shutil.ignore_patterns("_core", "__pycache__"))
    shutil.copy2(core.__file__, pkg / "softmax" / Path(core.__file__).name)
    killed, _ = _run_tests(scratch, pkg, FAST_TESTS, timeout)
    if killed:
        raise RuntimeError("the fast tests fail on the unmutated scratch copy")
    mutants = python_mutants()
    random.Random(seed).shuffle(mutants)
    results = []
    for mod, line, desc, src in mutants[:sample]:
        path = pkg / "softmax" / mod
        original = path.read_text()
        path.write_text(src)
        try:
            killed, secs = _run_tests(scratch, pkg, FAST_TESTS, timeout)
        finally:
            path.write_text(original)
        results.append((f"{mod}:{line} {desc}", killed, secs))
        print(f"  py {'KILLED  ' if killed else 'SURVIVED'} {mod}:{line} {desc} ({secs:.0f} s)",
              flush=True)
    return results, len(mutants)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--c", action="store_true", help="only the C-core mutants")
    ap.add_argument("--python", type=int, metavar="N", help="only N sampled Python mutants")
    ap.add_argument("--seed", type=int, default=15)
    ap.add_argument("--timeout", type=float, default=600, help="seconds per mutant's tests")
    ap.add_argument("--scratch", type=Path, help="scratch directory (default: a temporary one)")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        for m in C_MUTANTS:
            print("C ", m[0])
        for mod, line, desc, _ in python_mutants():
            print("py", f"{mod}:{line}", desc)
        return 0
    do_c = args.c or args.python is None
    do_py = args.python is not None or not args.c
    sample = args.python if args.python is not None else 30
    tmp = Path(tempfile.mkdtemp(prefix="softmax-mutants-")) if args.scratch is None else args.scratch
    scratch = tmp / "tree"
    _copy_tree(scratch)
    status = 0
    try:
        if do_py:
            res, total = run_python(scratch, sample, args.seed, args.timeout)
            k = sum(1 for _, killed, _ in res if killed)
            print(f"Python: {k}/{len(res)} killed ({100 * k / max(len(res), 1):.0f}%), "
                  f"sampled from {total} mutants; survivors:")
            for name, killed, _ in res:
                if not killed:
                    print("   ", name)
        if do_c:
            res = run_c(scratch, args.timeout)
            k = sum(1 for _, killed, _ in res if killed)
            print(f"C core: {k}/{len(res)} killed; survivors: "
                  f"{[n for n, killed, _ in res if not killed]}")
            status = 0 if k == len(res) else 1
    finally:
        if args.scratch is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
