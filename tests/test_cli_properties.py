"""No tracebacks, ever (issue 13; issue 15, section 5): every command, hostile input.

Hypothesis drives each subcommand in-process through
``softmax.cli.main(argv, stdin=..., stdout=..., stderr=...)`` with generated
arguments and inputs (±1e308, inf, nan, 400-digit counts, unicode labels,
binary garbage on stdin) and requires what the documentation promises: exit
status 0, 1 or 2; nothing on stderr but diagnostics, and a diagnostic when
the status is not 0; never a traceback, never an "internal error" (the
guard's last resort, which would be a bug). A handful of the same cases run
the installed ``softmax`` command in a subprocess.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from softmax.cli import main

SOFTMAX = Path(sys.executable).parent / "softmax"

# ------------------------------------------------------------- strategies

EXTREME = ["1e308", "-1e308", "1.7976931348623157e308", "inf", "-inf", "nan", "0", "-0",
           "5e-324", "710", "709.79", "-1000", "1000", "1e-300", "-745.2", "3"]
huge_int = st.integers(-(10**400), 10**400).map(str)
number_text = st.one_of(
    st.sampled_from(EXTREME),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**6), 10**6).map(str),
    huge_int,
)
# Unicode labels, "=" and blanks included (a label is what precedes the last "=").
label = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
                min_size=0, max_size=8)
junk = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
               max_size=12)
value = st.one_of(number_text, junk)
score = st.one_of(
    number_text,
    st.builds(lambda lab, num: f"{lab}={num}", label, number_text),
    junk,
)
scores = st.lists(score, min_size=0, max_size=6)


def options(table):
    """A list of option fragments: ``[flag]`` or ``[flag, value]`` from `table`."""
    def fragment(item):
        flag, values = item
        return st.just([flag]) if values is None else values.map(lambda v: [flag, v])
    return st.lists(st.sampled_from(table).flatmap(fragment), max_size=5).map(
        lambda parts: [token for part in parts for token in part])


SCALE = [("--temperature", value), ("-t", number_text), ("--base", value)]
SCORES_OPTIONS = SCALE + [
    ("--hardmax", None), ("--log", None), ("--mask", label), ("--sort", None),
    ("--precision", st.one_of(huge_int, st.integers(-3, 20).map(str))), ("--json", None),
    ("--explain", None), ("--explain", None),
]
SWEEP_OPTIONS = [
    ("--temperatures", st.one_of(
        st.builds(lambda a, b: f"{a}:{b}", number_text, number_text),
        st.lists(number_text, min_size=1, max_size=4).map(",".join), junk)),
    ("--steps", st.one_of(huge_int, st.integers(-2, 3000).map(str),
                          st.sampled_from(["1000000", "1000001"]))),
    ("--precision", st.integers(-1, 18).map(str)), ("--json", None),
    ("--plot", st.sampled_from(["plot.gif", "plot"])),
]
APPLY_OPTIONS = SCALE + [
    ("--axis", st.one_of(st.sampled_from(["0", "1", "-1", "none", "0,1", "2", "-3"]), huge_int,
                         junk)),
    ("--log", None), ("--json", None), ("--label-column", st.one_of(
        st.sampled_from(["0", "1", "none", "id", ""]), junk)),
    ("--key", label), ("--block-bytes", st.one_of(huge_int, junk)),
    ("--block-threshold", st.one_of(huge_int, st.sampled_from(["1", "1K", "0"]))),
]
CALIBRATE_OPTIONS = [
    ("--val-fraction", st.one_of(number_text, st.sampled_from(["0.5", "0.01", "0.99"]))),
    ("--seed", st.one_of(huge_int, st.integers(-5, 5).map(str))),
    ("--bins", st.one_of(huge_int, st.integers(-1, 50).map(str))),
    ("--strategy", st.sampled_from(["uniform", "quantile", "median"])),
    ("--input", st.sampled_from(["logits", "probs", "odds"])), ("--json", None),
    ("--key", label),
]

delimiter = st.sampled_from([",", "\t", " ", "  ", ";", ", "])
line_end = st.sampled_from(["\n", "\r\n", "\r"])
table_text = st.builds(
    lambda rows, d, end, header: (header + end if header else "")
    + end.join(d.join(row) for row in rows) + end,
    st.lists(st.lists(st.one_of(number_text, st.just('"1,5"'), junk), min_size=1, max_size=5),
             min_size=0, max_size=6),
    delimiter, line_end,
    st.sampled_from(["", ",a,b,c", "id,a,b", "# comment"]),
)
stdin_bytes = st.one_of(
    table_text.map(lambda t: t.encode("utf-8")),
    st.binary(max_size=200),
    st.sampled_from([b"\xff\xfe\x00garbage", b"1 2\r3 4\r", b"\x00\x00", b'"unclosed,1\n',
                     b"\xef\xbb\xbf1,2\n"]),
)


def stdin_of(data: bytes):
    """A text stream over `data` with a ``.buffer``, not a terminal (a pipe)."""
    return io.TextIOWrapper(io.BytesIO(data), encoding="utf-8", newline="")


# --------------------------------------------------------------- the check


def check(argv, data: bytes = b"", *, output=True):
    out, err = io.StringIO(), io.StringIO()
    status = main(argv, stdin=stdin_of(data), stdout=out, stderr=err)
    text = err.getvalue()
    where = f"argv={argv!r} stdin={data[:80]!r}\nstderr={text[-2000:]!r}"
    assert status in (0, 1, 2), where
    assert "Traceback" not in text, where
    assert "internal error" not in text, where
    if status == 0:
        assert out.getvalue() or not output, where  # an empty array is empty text
    else:
        assert text.strip(), where
        last = text.rstrip("\n").splitlines()[-1]
        if last.startswith("Try '"):
            last = text.rstrip("\n").splitlines()[-2]
        assert ": error: " in last, where
        assert len(last) < 2000, where  # a bad token is never echoed whole
    return status


SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                           HealthCheck.data_too_large])


@SETTINGS
@given(scores, options(SCORES_OPTIONS))
def test_scores_command(tokens, opts):
    check([*tokens, *opts])


@SETTINGS
@given(stdin_bytes, options(SCORES_OPTIONS))
def test_scores_from_stdin(data, opts):
    check(opts, data)


@SETTINGS
@given(scores, options(SWEEP_OPTIONS))
def test_sweep_command(tokens, opts):
    check(["sweep", *tokens, *opts])


@SETTINGS
@given(stdin_bytes, options(APPLY_OPTIONS), st.sampled_from([["-"], []]))
def test_apply_command_from_stdin(data, opts, source):
    check(["apply", *source, *opts], data, output=False)


@pytest.fixture(scope="module")
def files():
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        rng = np.random.default_rng(0)
        z = rng.normal(size=(40, 3)) * 3
        y = rng.integers(0, 3, size=40)
        np.save(d / "z.npy", z)
        np.save(d / "y.npy", y)
        e = np.exp(z - z.max(1, keepdims=True))
        np.save(d / "p.npy", e / e.sum(1, keepdims=True))
        np.save(d / "big.npy", np.full((4, 3), 1e308) * np.array([1, -1, 0.5]))
        np.save(d / "nan.npy", np.full((4, 3), np.nan))
        np.save(d / "one.npy", np.zeros((40, 1)))
        np.save(d / "yf.npy", np.full(40, 1e300))
        np.save(d / "words.npy", np.array(["a", "b"]))
        np.save(d / "empty.npy", np.zeros((0, 3)))
        (d / "garbage.npy").write_bytes(b"\x93NUMPY garbage")
        (d / "cut.npy").write_bytes((d / "z.npy").read_bytes()[:200])
        (d / "t.csv").write_text('"a, b",1.0,2\nc,3,inf\n')
        (d / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
        (d / "t.json").write_text('{"temperature": 1e400}')
        np.savez(d / "two.npz", a=z, b=y)
        yield d


npy = st.sampled_from(["z.npy", "y.npy", "p.npy", "big.npy", "nan.npy", "one.npy", "yf.npy",
                       "words.npy", "empty.npy", "garbage.npy", "cut.npy", "missing.npy",
                       "t.csv", "two.npz", "deep.json"])


@SETTINGS
@given(npy, npy, options(CALIBRATE_OPTIONS))
def test_calibrate_command(files, logits, labels, opts):
    check(["calibrate", str(files / logits), str(files / labels), *opts])


@SETTINGS
@given(npy, options(APPLY_OPTIONS + [("--temperature-file", st.sampled_from(
    ["deep.json", "t.json", "missing.json", "z.npy"]))]),
    st.sampled_from(["-", "out.npy", "out.csv", "out.json", "out.npz", "out.xlsx"]))
def test_apply_command_on_files(files, source, opts, output):
    opts = [str(files / v) if v.endswith((".json", ".npy")) and prev == "--temperature-file"
            else v for prev, v in zip([None, *opts], opts)]
    with tempfile.TemporaryDirectory() as out_dir:
        target = output if output == "-" else str(Path(out_dir) / output)
        check(["apply", str(files / source), "-o", target, *opts], output=False)
        # Whatever happened, no temporary file is left beside the output.
        assert not [p for p in os.listdir(out_dir) if p.endswith(".tmp") or ".tmp." in p]


# ------------------------------------------------------ named regressions


@pytest.mark.parametrize("argv", [
    ["1000", "0", "--explain"], ["710", "0", "--explain"], ["0", "-1000", "--explain"],
    ["1e308", "-1e308", "--explain"], ["-1e308", "1e308", "--explain", "-t", "1e-300"],
    ["a=1", "b=2", "--explain", "--base", "0.5"], ["a=1e308", "b=1e308", "c=0", "--explain"],
    ["-2000", "-1000", "--explain"], ["1", "--explain", "-t", "1e308"],
])
def test_explain_regimes_that_used_to_overflow(argv):
    out, err = io.StringIO(), io.StringIO()
    assert main(argv, stdin=stdin_of(b""), stdout=out, stderr=err) == 0, err.getvalue()
    assert err.getvalue() == ""
    assert "Step 4." in out.getvalue()
    assert all(len(line) <= 80 for line in out.getvalue().splitlines())


def test_explain_sigmoid_beyond_the_overflow_point():
    out = io.StringIO()
    assert main(["1000", "0", "--explain"], stdout=out) == 0
    text = " ".join(out.getvalue().split())
    assert "p(2) = 0.0000 = sigmoid(0 - 1000) = 0.0000" in text
    assert "overflows a double" in text and "e^d / (1 + e^d)" in text


def test_explain_base_below_one_is_a_negative_temperature():
    out, err = io.StringIO(), io.StringIO()
    assert main(["a=1", "b=2", "--explain", "--base", "0.5"], stdout=out, stderr=err) == 0
    assert "temperature" not in err.getvalue()
    assert "softmax(-z / 1.443)" in out.getvalue()


@pytest.mark.parametrize("argv, env, message", [
    (["apply", "-", "--block-bytes", "9" * 400], {}, "--block-bytes: must be at most 8E"),
    (["apply", "x.npy", "-o", "y.npy"], {"SOFTMAX_CLI_BLOCK_THRESHOLD": "9" * 400},
     "SOFTMAX_CLI_BLOCK_THRESHOLD must be at most 8E"),
    (["sweep", "1", "2", "--steps", "9" * 400], {}, "--steps must be at most 1,000,000"),
    (["sweep", "1", "2", "--steps", "1000001"], {}, "--steps must be at most 1,000,000"),
    (["calibrate", "z.npy", "y.npy", "--seed", "-1"], {}, "--seed: must be >= 0, got -1"),
    (["a=1", "--precision", "9" * 5000], {}, "--precision: must be a whole number"),
    (["apply", "-", "--axis", "9" * 400], {}, "--axis: must be between -64 and 64"),
])
def test_huge_and_negative_counts_name_the_option(tmp_path, monkeypatch, argv, env, message):
    monkeypatch.chdir(tmp_path)
    np.save("x.npy", np.zeros((2, 2)))
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    err = io.StringIO()
    assert main(argv, stdin=stdin_of(b"1 2\n"), stdout=io.StringIO(), stderr=err) == 2
    assert message in err.getvalue(), err.getvalue()
    assert len(err.getvalue()) < 1000


def test_deeply_nested_temperature_file(tmp_path):
    deep = tmp_path / "t.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    err = io.StringIO()
    assert main(["apply", "-", "--temperature-file", str(deep)], stdin=stdin_of(b"1 2\n"),
                stdout=io.StringIO(), stderr=err) == 2
    assert "cannot read a temperature from" in err.getvalue() and str(deep) in err.getvalue()


def test_the_guard_turns_a_bug_into_one_line(monkeypatch):
    from softmax.cli import scores

    def broken(args, env):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(scores, "run", broken)
    err = io.StringIO()
    assert main(["1", "2"], stdout=io.StringIO(), stderr=err) == 1
    lines = err.getvalue().splitlines()
    assert lines[0] == "softmax: internal error: ZeroDivisionError: a bug"
    assert "report" in lines[1] and len(lines) == 2


# ------------------------------------------------ the installed command


@pytest.mark.parametrize("args, data", [
    (["1000", "0", "--explain"], None),
    (["1e308", "-1e308", "--explain"], None),
    (["apply", "-"], b"\xff\xfe\x00\x01binary garbage\x80"),
    ([], b"\xff\xfe garbage"),
    (["apply", "-", "--json"], b"1 -inf nan\n"),
    (["apply"], b"1 2\r3 4\r"),
    (["sweep", "a=1e308", "b=-1e308", "--steps", "5", "--temperatures", "1e-300:1e300"], None),
    (["apply", "-", "--block-bytes", "9" * 400], b"1\n"),
    (["caf\u00e9=1", "\u732b=2", "--json"], None),
    (["--temp", "2", "1"], None),
])
def test_installed_command_never_prints_a_traceback(args, data):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOFTMAX_CLI_")}
    r = subprocess.run([str(SOFTMAX), *args], input=data, capture_output=True, timeout=120,
                       env=env, **({} if data is not None else {"stdin": subprocess.DEVNULL}))
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode in (0, 1, 2), err
    assert "Traceback" not in err and "internal error" not in err
    assert (r.returncode == 0) == (err == ""), err


@pytest.mark.parametrize("token", ["0\r0=0", "0\x0c0=0", "a\nb=x", "\x1b[31m", "\u2028=1"])
def test_an_error_is_one_line_whatever_a_label_holds(token):
    # Found by this file's property test: a label with a line break split
    # the error message over two lines (and \x1b could drive the terminal).
    err = io.StringIO()
    main([token, "--mask", "zebra"], stdout=io.StringIO(), stderr=err)
    line = [x for x in err.getvalue().split("\n") if ": error: " in x][0]
    assert line.isprintable()
