"""``softmax apply``: files and pipes, checked against scipy.special.softmax."""

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

scipy_special = pytest.importorskip("scipy.special")

SOFTMAX = Path(sys.executable).parent / "softmax"
RNG = np.random.default_rng(20240601)


def run(*args, input=None, env=None, **kwargs):
    assert SOFTMAX.exists(), f"{SOFTMAX} is missing: pip install --no-build-isolation -e <repo>"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SOFTMAX_CLI_")}
    full_env.update(env or {})
    return subprocess.run([str(SOFTMAX), *map(str, args)], input=input, text=True,
                          timeout=120, env=full_env, **({"capture_output": True} | kwargs))


def parse_lines(text, sep=None):
    return [[float(v) for v in line.split(sep)] for line in text.splitlines()]


# stdin and stdout

def test_stdin_blank_separated_to_stdout():
    r = run("apply", "-", input="2 1 0.1\n0 0 0\n-1 -2 -3\n")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    x = np.array([[2, 1, 0.1], [0, 0, 0], [-1, -2, -3]])
    got = np.array(parse_lines(r.stdout))
    np.testing.assert_allclose(got, scipy_special.softmax(x, axis=-1), rtol=1e-15)
    assert "," not in r.stdout  # the input's separator is kept


def test_stdin_csv_with_header_comments_and_ragged_lines():
    text = "cat,dog,rabbit\n# a comment\n2.0,1.0,0.1\n\n1,3\n"
    r = run("apply", "-", "--log", input=text)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "cat,dog,rabbit"
    np.testing.assert_allclose(parse_lines(lines[1], ",")[0],
                               scipy_special.log_softmax([2.0, 1.0, 0.1]), rtol=1e-14)
    np.testing.assert_allclose(parse_lines(lines[2], ",")[0],
                               scipy_special.log_softmax([1.0, 3.0]), rtol=1e-14)


def test_stdin_round_trip_is_exact_text():
    # Shortest round-trip text: reading the output back gives the same doubles.
    x = RNG.normal(size=(5, 7))
    text = "\n".join("\t".join(repr(v) for v in row) for row in x.tolist()) + "\n"
    r = run("apply", "-", "--temperature", "1.5", input=text)
    assert r.returncode == 0, r.stderr
    got = np.array(parse_lines(r.stdout, "\t"))
    np.testing.assert_allclose(got, scipy_special.softmax(x / 1.5, axis=-1), rtol=1e-14)


def test_stdin_axis_0_is_columns():
    r = run("apply", "-", "--axis", "0", input="0 1\n0 3\n")
    got = np.array(parse_lines(r.stdout))
    np.testing.assert_allclose(got, scipy_special.softmax([[0, 1], [0, 3]], axis=0), rtol=1e-15)


# files

@pytest.mark.parametrize(
    "dtype, rtol, axis",
    [(np.float64, 1e-14, "-1"), (np.float32, 2e-6, "0"), (np.float64, 1e-14, "none"),
     (np.float32, 2e-6, "0,1")],
)
def test_npy_round_trip(tmp_path, dtype, rtol, axis):
    x = (RNG.normal(size=(6, 5)) * 4).astype(dtype)
    np.save(tmp_path / "x.npy", x)
    r = run("apply", tmp_path / "x.npy", "-o", tmp_path / "p.npy", "--axis", axis)
    assert r.returncode == 0, r.stderr
    p = np.load(tmp_path / "p.npy")
    assert p.dtype == dtype and p.shape == x.shape
    ax = {"-1": -1, "0": 0, "none": None, "0,1": (0, 1)}[axis]
    np.testing.assert_allclose(p, scipy_special.softmax(x.astype(np.float64), axis=ax), rtol=rtol)


def test_npy_log_temperature_base_and_ints(tmp_path):
    x = RNG.integers(-5, 5, size=(4, 3, 5))
    np.save(tmp_path / "x.npy", x)
    r = run("apply", tmp_path / "x.npy", "-o", tmp_path / "p.npy", "--axis", "1", "--log",
            "--base", "2", "-t", "0.5")
    assert r.returncode == 0, r.stderr
    p = np.load(tmp_path / "p.npy")
    assert p.dtype == np.float64  # integers promote
    c = np.log(2) / 0.5
    np.testing.assert_allclose(p, scipy_special.log_softmax(x * c, axis=1), rtol=1e-13)


def test_npz_keys(tmp_path):
    a, b = RNG.normal(size=(3, 4)), RNG.normal(size=(2, 2))
    np.savez(tmp_path / "in.npz", val=a, test=b)
    r = run("apply", tmp_path / "in.npz", "--key", "test", "-o", tmp_path / "out.npz")
    assert r.returncode == 0, r.stderr
    with np.load(tmp_path / "out.npz") as out:
        assert out.files == ["test"]  # the output keeps the array's name
        np.testing.assert_allclose(out["test"], scipy_special.softmax(b, axis=-1), rtol=1e-14)
    # A single array needs no --key; .npz to .npy works too.
    np.savez(tmp_path / "one.npz", a)
    r = run("apply", tmp_path / "one.npz", "-o", tmp_path / "one.npy")
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "one.npy"),
                               scipy_special.softmax(a, axis=-1), rtol=1e-14)
    # Several arrays and no --key: a usage error listing them.
    r = run("apply", tmp_path / "in.npz", "-o", tmp_path / "x.npz")
    assert r.returncode == 2
    assert "holds 2 arrays (val, test): choose one with --key" in r.stderr
    r = run("apply", tmp_path / "in.npz", "--key", "nope", "-o", tmp_path / "x.npz")
    assert r.returncode == 2
    assert "--key must name one of the arrays" in r.stderr and "'nope'" in r.stderr


@pytest.mark.parametrize("suffix, sep", [(".csv", ","), (".tsv", "\t"), (".txt", None)])
def test_text_files(tmp_path, suffix, sep):
    x = RNG.normal(size=(4, 3))
    src = tmp_path / f"x{suffix}"
    np.savetxt(src, x, delimiter=sep or " ", fmt="%.17g", header="a b c" if sep is None else "")
    dst = tmp_path / f"p{suffix}"
    r = run("apply", src, "-o", dst)
    assert r.returncode == 0, r.stderr
    got = np.loadtxt(dst, delimiter=sep)
    np.testing.assert_allclose(got, scipy_special.softmax(x, axis=-1), rtol=1e-14)
    # Text to .npy.
    r = run("apply", src, "-o", tmp_path / "p.npy")
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), scipy_special.softmax(x, axis=-1),
                               rtol=1e-14)


def test_npy_to_stdout_is_csv(tmp_path):
    x = RNG.normal(size=(2, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    r = run("apply", tmp_path / "x.npy")
    assert r.returncode == 0, r.stderr
    got = np.array(parse_lines(r.stdout, ","), dtype=np.float32)
    np.testing.assert_allclose(got, scipy_special.softmax(x.astype(np.float64), axis=-1),
                               rtol=2e-6)


def test_temperature_file(tmp_path):
    x = RNG.normal(size=(3, 4))
    np.save(tmp_path / "x.npy", x)
    path = tmp_path / "temperature.json"
    path.write_text(json.dumps({"temperature": 1.5, "nll_before": 0.9}))
    r = run("apply", tmp_path / "x.npy", "-o", tmp_path / "p.npy", "--temperature-file", path)
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"),
                               scipy_special.softmax(x / 1.5, axis=-1), rtol=1e-14)


def test_temperature_file_saved_by_calibration(tmp_path):
    calibration = pytest.importorskip("softmax.calibration")
    x = RNG.normal(size=(3, 4))
    np.save(tmp_path / "x.npy", x)
    calibration.TemperatureScaling(0.7).save(tmp_path / "t.json")
    r = run("apply", tmp_path / "x.npy", "-o", "-", "--temperature-file", tmp_path / "t.json")
    assert r.returncode == 0, r.stderr
    np.testing.assert_allclose(parse_lines(r.stdout, ","),
                               scipy_special.softmax(x / 0.7, axis=-1), rtol=1e-14)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file"),
        ("{not json", "cannot read a temperature from"),
        ('{"t": 2}', "cannot read a temperature from"),
        ('{"temperature": "hot"}', "cannot read a temperature from"),
    ],
)
def test_bad_temperature_file(tmp_path, content, message):
    path = tmp_path / "t.json"
    if content is not None:
        path.write_text(content)
    r = run("apply", "-", "--temperature-file", path, input="1 2\n")
    assert r.returncode == 2
    assert message in r.stderr and str(path) in r.stderr
    assert "Traceback" not in r.stderr


def test_in_process_with_injected_stdin(tmp_path):
    import io

    from softmax.cli import main

    out = io.StringIO()
    assert main(["apply", "-", "--log"], stdin=io.StringIO("0,0\n"), stdout=out) == 0
    np.testing.assert_allclose(parse_lines(out.getvalue(), ","), [[np.log(0.5)] * 2], rtol=1e-15)


# errors

def test_bad_inputs(tmp_path):
    np.save(tmp_path / "words.npy", np.array(["a", "b"]))
    (tmp_path / "garbage.npy").write_bytes(b"this is not an npy file at all")
    (tmp_path / "bad.csv").write_text("1,2,3\n4,five,6\n")
    np.save(tmp_path / "cube.npy", np.zeros((2, 2, 2)))
    np.save(tmp_path / "ok.npy", np.zeros((2, 3)))
    hint, no_hint = True, False
    cases = [
        (["apply", tmp_path / "missing.npy", "-o", tmp_path / "p.npy"], 2, no_hint,
         ["cannot read", "missing.npy", "No such file"]),
        (["apply", tmp_path / "words.npy", "-o", tmp_path / "p.npy"], 2, no_hint,
         ["words.npy must hold real numbers, got dtype <U1"]),
        (["apply", tmp_path / "garbage.npy", "-o", tmp_path / "p.npy"], 2, no_hint,
         ["cannot read", "garbage.npy", "not a valid .npy file"]),
        (["apply", tmp_path / "bad.csv", "-o", "-"], 2, no_hint,
         ["bad.csv, line 2: field 2 must be a number, got 'five'"]),
        (["apply", tmp_path / "cube.npy", "-o", "-"], 2, hint,
         ["text OUTPUT holds 1-D or 2-D arrays, got shape (2, 2, 2)"]),
        (["apply", tmp_path / "ok.npy", "-o", tmp_path / "p.npy", "--axis", "2"], 2, hint,
         ["axis 2 is out of bounds", "ok.npy has shape (2, 3)"]),
        (["apply", tmp_path / "ok.dat", "-o", "-"], 2, hint,
         ["INPUT must be a .npy, .npz, .csv, .tsv or .txt file, or '-', got"]),
        (["apply", tmp_path / "ok.npy", "-o", tmp_path / "p.xlsx"], 2, hint, ["OUTPUT must be"]),
        (["apply", tmp_path / "ok.npy", "-o", tmp_path / "p.npy", "--axis", "x"], 2, hint,
         ["--axis: must be an integer"]),
        (["apply", tmp_path / "ok.npy", "-o", tmp_path / "p.npy", "-t", "-1"], 2, hint,
         ["temperature must be >= 0"]),
        (["apply", tmp_path / "ok.npy", "-o", "-", "--key", "a"], 2, hint,
         ["--key is for .npz"]),
        (["apply", tmp_path / "ok.npy", "-t", "2", "--temperature-file", "t.json"], 2, hint,
         ["not allowed with"]),
        (["apply", tmp_path / "ok.npy", "-o", tmp_path / "no" / "dir" / "p.npy"], 1, no_hint,
         ["cannot write", "p.npy"]),
    ]
    for args, status, with_hint, messages in cases:
        r = run(*args)
        assert r.returncode == status, (args, r.stderr)
        for message in messages:
            assert message in r.stderr, (message, r.stderr)
        assert ("Try 'softmax apply --help'" in r.stderr) == with_hint, r.stderr
        assert "softmax apply: error: " in r.stderr
        assert "Traceback" not in r.stderr
        assert r.stdout == ""


def test_stdin_errors():
    r = run("apply", "-", input="1 2\n3 x\n")
    assert r.returncode == 2
    assert "<stdin>, line 2: field 2 must be a number, got 'x'" in r.stderr
    r = run("apply", "-", input="\n# nothing\n")
    assert r.returncode == 2 and "<stdin> holds no numbers" in r.stderr
    r = run("apply", "-", "-o", "-", "--axis", "0", input="1 2 3\n1 2\n")
    assert r.returncode == 2
    assert "--axis 0 needs lines of equal length" in r.stderr


# large files: blocks through a memory map, bounded memory

PEAK_RSS = (
    "import resource, subprocess, sys\n"
    "r = subprocess.run(sys.argv[1:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)\n"
    "sys.exit(r.returncode)\n"
)


def _write_big(path, rows, cols):
    rng = np.random.default_rng(7)
    a = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(rows, cols))
    for i in range(0, rows, 50_000):
        a[i:i + 50_000] = rng.normal(scale=4.0, size=(min(50_000, rows - i), cols))
    a.flush()
    del a


@pytest.mark.skipif(
    "libasan" in os.environ.get("LD_PRELOAD", "") or bool(os.environ.get("SOFTMAX_UNDER_ASAN")),
    reason="ASan keeps freed memory resident: peak RSS does not measure this code there",
)
def test_large_npy_runs_in_bounded_memory(tmp_path):
    src, dst = tmp_path / "big.npy", tmp_path / "p.npy"
    _write_big(src, 400_000, 64)  # 205 MB
    size = src.stat().st_size
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOFTMAX_CLI_")}
    env["SOFTMAX_CLI_BLOCK_THRESHOLD"] = "1M"
    r = subprocess.run([sys.executable, "-c", PEAK_RSS, str(SOFTMAX), "apply", str(src),
                        "-o", str(dst)], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""  # no progress bar: stderr is not a terminal
    peak = int(r.stdout.split()[-1])
    print(f"peak RSS {peak / 2**20:.1f} MiB for a {size / 2**20:.1f} MiB file")
    assert peak < 0.4 * size, (peak, size)
    x = np.load(src, mmap_mode="r")
    p = np.load(dst, mmap_mode="r")
    assert p.shape == x.shape and p.dtype == np.float64
    for i in range(0, x.shape[0], 100_000):
        np.testing.assert_allclose(p[i:i + 100_000],
                                   scipy_special.softmax(x[i:i + 100_000], axis=-1), rtol=1e-13)


def _small_block_run(tmp_path, *extra, stderr_tty):
    pty = pytest.importorskip("pty")  # a terminal for stderr: POSIX only
    fcntl = pytest.importorskip("fcntl")
    termios = pytest.importorskip("termios")
    x = RNG.normal(size=(3000, 20))
    np.save(tmp_path / "x.npy", x)
    master, slave = pty.openpty()
    # A terminal of 80 columns: with the pty's default 0 columns tqdm draws nothing.
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOFTMAX_CLI_")}
    try:
        r = subprocess.run(
            [str(SOFTMAX), "apply", str(tmp_path / "x.npy"), "-o", str(tmp_path / "p.npy"),
             "--block-threshold", "1K", "--block-bytes", "64K", *extra],
            stdout=subprocess.PIPE, stderr=slave if stderr_tty else subprocess.PIPE,
            env=env, timeout=120,
        )
    finally:
        os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    tty_text = b"".join(chunks).decode(errors="replace")
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), scipy_special.softmax(x, axis=-1),
                               rtol=1e-14)
    return r, tty_text


def test_progress_bar_on_a_terminal(tmp_path):
    pytest.importorskip("tqdm")
    r, tty_text = _small_block_run(tmp_path, stderr_tty=True)
    assert r.returncode == 0
    assert "softmax:" in tty_text and "%|" in tty_text
    assert r.stdout == b""


def test_quiet_hides_the_progress_bar(tmp_path):
    r, tty_text = _small_block_run(tmp_path, "--quiet", stderr_tty=True)
    assert r.returncode == 0
    assert tty_text == ""


def test_large_mode_refuses_to_overwrite_its_input(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((40, 40)))
    r = run("apply", tmp_path / "x.npy", "-o", tmp_path / "x.npy", "--block-threshold", "1K")
    assert r.returncode == 2
    assert "OUTPUT must be another file than INPUT" in r.stderr


def test_threshold_environment_variable_is_checked(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros((2, 2)))
    r = run("apply", tmp_path / "x.npy", "-o", tmp_path / "p.npy",
            env={"SOFTMAX_CLI_BLOCK_THRESHOLD": "lots"})
    assert r.returncode == 2
    assert "SOFTMAX_CLI_BLOCK_THRESHOLD must be a size in bytes" in r.stderr


def test_reader_leaving_early_is_not_an_error_message():
    # softmax apply ... | head -1: the rest of the output has nowhere to go.
    text = "1 2 3\n" * 50_000
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOFTMAX_CLI_")}
    proc = subprocess.Popen([str(SOFTMAX), "apply", "-"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    proc.stdin.write(text.encode())
    proc.stdin.close()
    first = proc.stdout.readline()
    proc.stdout.close()
    err = proc.stderr.read()
    proc.wait(timeout=60)
    assert first.split()[0].startswith(b"0.09")
    assert err == b""
    assert proc.returncode == 1


# text tables through the csv module (issue 15, section 5) and small things (issue 13)

def test_classic_mac_line_endings_from_stdin_and_from_a_file(tmp_path):
    data = "1 2\r3 4\r"
    (tmp_path / "mac.txt").write_bytes(data.encode())
    from_pipe = run("apply", "-", input=data)
    from_file = run("apply", tmp_path / "mac.txt")
    assert from_pipe.returncode == from_file.returncode == 0, from_pipe.stderr
    assert from_pipe.stdout == from_file.stdout
    got = np.array(parse_lines(from_pipe.stdout))
    assert got.shape == (2, 2)  # two rows, not one distribution of four
    np.testing.assert_allclose(got, scipy_special.softmax([[1, 2], [3, 4]], axis=-1), rtol=1e-15)
    for ending in ("\n", "\r\n"):
        assert run("apply", "-", input=data.replace("\r", ending)).stdout == from_pipe.stdout


def test_quoted_fields_and_sniffed_delimiters(tmp_path):
    # A quoted label with a comma inside stays one field.
    r = run("apply", "-", "--label-column", "0", input='"a, b",1.0,2.0\nc,0,0\n')
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith('"a, b",') and lines[1].startswith("c,")
    np.testing.assert_allclose(parse_lines(lines[0].split('",', 1)[1], ",")[0],
                               scipy_special.softmax([1.0, 2.0]), rtol=1e-15)
    expected = scipy_special.softmax([[1.0, 2.0, 3.0], [0.0, 0.0, 1.0]], axis=-1)
    for sep in (",", "\t", " ", "   ", ", "):
        text = "\n".join(sep.join(map(str, row)) for row in [[1, 2, 3], [0, 0, 1]]) + "\n"
        r = run("apply", "-", "--json", input=text)
        assert r.returncode == 0, (sep, r.stderr)
        np.testing.assert_allclose(json.loads(r.stdout)["probabilities"], expected, rtol=1e-15)
        # The same bytes from a .txt file give the same answer.
        (tmp_path / "t.txt").write_text(text)
        assert run("apply", tmp_path / "t.txt", "--json").stdout == r.stdout


def test_label_column_keeps_the_pandas_index(tmp_path):
    # What pandas.DataFrame({"cat": [2.0, 0.0], "dog": [1.0, 0.0]},
    # index=["img1", "img2"]).to_csv() writes: the index has an empty header.
    (tmp_path / "df.csv").write_text(",cat,dog\nimg1,2.0,1.0\nimg2,0.0,0.0\n")
    # Without --label-column the index would join every distribution: refused.
    r = run("apply", tmp_path / "df.csv")
    assert r.returncode == 2 and "--label-column 0" in r.stderr and "pandas" in r.stderr
    r = run("apply", tmp_path / "df.csv", "--label-column", "0", "-o", tmp_path / "p.csv")
    assert r.returncode == 0, r.stderr
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[0] == ",cat,dog"
    assert [line.split(",")[0] for line in lines[1:]] == ["img1", "img2"]
    got = np.array([[float(v) for v in line.split(",")[1:]] for line in lines[1:]])
    np.testing.assert_allclose(got, scipy_special.softmax([[2.0, 1.0], [0.0, 0.0]], axis=1),
                               rtol=1e-15)
    # pandas' default: a numeric index and numeric column names.
    (tmp_path / "n.csv").write_text(",0,1\n0,1.0,2.0\n1,3.0,3.0\n")
    r = run("apply", tmp_path / "n.csv", "--label-column", "0", "--json")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["labels"] == ["0", "1"]
    np.testing.assert_allclose(obj["probabilities"], [scipy_special.softmax([1.0, 2.0]),
                                                      [0.5, 0.5]], rtol=1e-15)
    (tmp_path / "id.csv").write_text("id,a,b\nx,1,2\n")
    r = run("apply", tmp_path / "id.csv", "--label-column", "id")
    assert r.returncode == 0 and r.stdout.splitlines()[0] == "id,a,b"
    assert r.stdout.splitlines()[1].startswith("x,")
    r = run("apply", tmp_path / "id.csv", "--label-column", "nope")
    assert r.returncode == 2 and "--label-column must be a column index or one of" in r.stderr
    # 'none': read that first column as numbers, on purpose.
    (tmp_path / "ab.csv").write_text(",a,b\n0,1.0,2.0\n1,3.0,3.0\n")
    r = run("apply", tmp_path / "ab.csv", "--label-column", "none", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["shape"] == [2, 3]
    # A pandas round trip, where pandas is installed.
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({"cat": [2.0, 0.0], "dog": [1.0, 0.0]}, index=["img1", "img2"])
    df.to_csv(tmp_path / "pd.csv")
    assert run("apply", tmp_path / "pd.csv", "--label-column", "0", "-o",
               tmp_path / "pp.csv").returncode == 0
    out = pd.read_csv(tmp_path / "pp.csv", index_col=0)
    assert list(out.index) == ["img1", "img2"]
    np.testing.assert_allclose(out.to_numpy(), got, rtol=1e-15)


def test_apply_reads_a_piped_stdin_without_input():
    r = run("apply", input="0 0\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "0.5 0.5\n"
    # With stdin a terminal there is nothing to read: say what to give.
    import io

    from softmax.cli import main

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    err = io.StringIO()
    assert main(["apply"], stdin=Terminal(), stdout=io.StringIO(), stderr=err) == 2
    assert "INPUT is required" in err.getvalue()


def test_apply_json(tmp_path):
    r = run("apply", "-", "--json", "--log", input="0 -inf nan\n1 1 1\n")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["shape"] == [2, 3] and obj["axis"] == -1
    assert obj["log_probabilities"][0] == [None, None, None]  # a NaN row is NaN
    np.testing.assert_allclose(obj["log_probabilities"][1], [-np.log(3)] * 3, rtol=1e-15)
    r = run("apply", "-", "--json", "--log", input="0 -inf\n")
    assert json.loads(r.stdout)["log_probabilities"] == [[0.0, "-inf"]]
    # Ragged rows, and a .json OUTPUT file written whole.
    r = run("apply", "-", "-o", tmp_path / "p.json", input="0 0\n0 0 0 0\n")
    assert r.returncode == 0, r.stderr
    obj = json.loads((tmp_path / "p.json").read_text())
    assert obj["shape"] is None and obj["probabilities"] == [[0.5, 0.5], [0.25] * 4]
    r = run("apply", "-", "--json", "-o", tmp_path / "p.npy", input="1\n")
    assert r.returncode == 2 and "--json writes JSON" in r.stderr


def test_binary_garbage_on_stdin():
    r = subprocess.run([str(SOFTMAX), "apply", "-"], input=b"\x89PNG\r\n\x1a\n\x00\xff",
                       capture_output=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.decode() == ("softmax apply: error: <stdin> is not UTF-8 text "
                                 "(byte 0x89 at offset 0)\n")


def test_accuracy_flag_selects_the_mode(tmp_path):
    """--accuracy fast runs the float32-lane kernels: within 4 ulp of the default
    (float32 .npy in and out), and an unknown mode is a usage error."""
    import ulp_reference as ur

    x = np.random.default_rng(5).normal(size=(64, 300)).astype(np.float32) * 8
    src = tmp_path / "x.npy"
    np.save(src, x)
    outs = {}
    for mode in ("high", "fast"):
        dst = tmp_path / f"{mode}.npy"
        run = subprocess.run([str(SOFTMAX), "apply", str(src), "-o", str(dst), "--accuracy", mode],
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        outs[mode] = np.load(dst)
    assert outs["high"].dtype == outs["fast"].dtype == np.float32
    assert ur.ulp_distance(outs["fast"], outs["high"]).max() <= 5
    bad = subprocess.run([str(SOFTMAX), "--accuracy", "turbo", "1", "2"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "--accuracy" in bad.stderr and "Traceback" not in bad.stderr
