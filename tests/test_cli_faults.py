"""Outputs are never half-written (issue 15, section 4).

``softmax apply big.npy -o out.npy --axis 0`` and `softmax.stream.softmax_file`
are started in a subprocess, interrupted mid-run by SIGINT or SIGTERM, and
must leave neither the output file nor the temporary file beside it; an
existing output must stay as it was. A truncated input is refused with an
error that names the file, before anything is written.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

SOFTMAX = Path(sys.executable).parent / "softmax"

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# Two passes over 100,000 x 16 float64 (12.8 MB) with 64 KiB blocks: a few
# seconds, long enough to be interrupted in the middle.
ROWS, COLS = 100_000, 16
SLOW = ["--axis", "0", "--block-threshold", "1K", "--block-bytes", "64K", "--quiet"]

LIBRARY_SCRIPT = """\
import sys
from softmax.stream import softmax_file
softmax_file(sys.argv[1], sys.argv[2], axis=0, block_bytes=65536, progress=False)
"""


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    path = tmp_path_factory.mktemp("fault") / "big.npy"
    a = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(ROWS, COLS))
    a[:] = np.random.default_rng(3).normal(size=(ROWS, COLS))
    a.flush()
    del a
    return path


def _env():
    return {k: v for k, v in os.environ.items() if not k.startswith("SOFTMAX_CLI_")}


def _leftovers(folder: Path, name: str):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{Path(name).stem}"))


def _interrupt(cmd, folder: Path, out_name: str, signum) -> subprocess.CompletedProcess:
    """Start `cmd`, wait until its temporary output exists, send `signum`."""
    # SIGINT back to its default in the child: a test run started in the
    # background by a non-interactive shell inherits SIGINT ignored, and
    # Python then installs no KeyboardInterrupt handler.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, env=_env(),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not _leftovers(folder, out_name):
        if proc.poll() is not None or time.monotonic() > deadline:
            out, err = proc.communicate()
            pytest.fail(f"no temporary output appeared (status {proc.returncode}): {err!r}")
        time.sleep(0.005)
    time.sleep(0.3)  # well inside the run: blocks are being written
    assert proc.poll() is None, "finished before the signal: make the input bigger"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(cmd, proc.returncode, out.decode(), err.decode())


@pytest.mark.parametrize("signum, status, word", [(signal.SIGINT, 130, "interrupted"),
                                                  (signal.SIGTERM, 143, "terminated")])
def test_apply_interrupted_leaves_no_output(big, tmp_path, signum, status, word):
    out = tmp_path / "out.npy"
    r = _interrupt([str(SOFTMAX), "apply", str(big), "-o", str(out), *SLOW], tmp_path,
                   out.name, signum)
    assert r.returncode == status, r.stderr
    assert r.stderr == f"softmax: {word}\n"
    assert "Traceback" not in r.stderr
    assert not out.exists()
    assert _leftovers(tmp_path, out.name) == []


def test_apply_interrupted_keeps_an_existing_output(big, tmp_path):
    out = tmp_path / "out.npy"
    np.save(out, np.arange(3.0))
    before = out.read_bytes()
    r = _interrupt([str(SOFTMAX), "apply", str(big), "-o", str(out), *SLOW], tmp_path,
                   out.name, signal.SIGTERM)
    assert r.returncode == 143
    assert out.read_bytes() == before
    assert _leftovers(tmp_path, out.name) == []


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_softmax_file_interrupted_leaves_no_output(big, tmp_path, signum):
    out = tmp_path / "p.npy"
    r = _interrupt([sys.executable, "-c", LIBRARY_SCRIPT, str(big), str(out)], tmp_path,
                   out.name, signum)
    # SIGTERM: the default action still ends the process, after the cleanup.
    # SIGINT: KeyboardInterrupt unwinds; Python then exits by SIGINT too.
    assert r.returncode == -signum, r.stderr
    if signum == signal.SIGINT:
        assert "KeyboardInterrupt" in r.stderr
    assert not out.exists()
    assert _leftovers(tmp_path, out.name) == []


def test_completed_run_leaves_only_the_output(big, tmp_path):
    out = tmp_path / "out.npy"
    r = subprocess.run([str(SOFTMAX), "apply", str(big), "-o", str(out), "--block-threshold",
                        "1K", "--quiet"], capture_output=True, text=True, env=_env(), timeout=300)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.npy"]
    x = np.load(big, mmap_mode="r")
    p = np.load(out, mmap_mode="r")
    e = np.exp(x[:1000])
    np.testing.assert_allclose(p[:1000], e / e.sum(axis=1, keepdims=True), rtol=1e-13)
    # The permissions of any new file (the umask applies), not a private 0o600.
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


@pytest.fixture
def truncated(big, tmp_path):
    path = tmp_path / "cut.npy"
    data = big.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("extra", [SLOW, []])
def test_apply_truncated_input_names_the_file(truncated, tmp_path, extra):
    out = tmp_path / "out.npy"
    r = subprocess.run([str(SOFTMAX), "apply", str(truncated), "-o", str(out), *extra],
                       capture_output=True, text=True, env=_env(), timeout=120)
    assert r.returncode == 2, r.stderr
    assert "cut.npy is truncated" in r.stderr and "bytes" in r.stderr
    assert "mmap length" not in r.stderr and "Traceback" not in r.stderr
    assert r.stderr.count("\n") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.npy"]


def test_softmax_file_truncated_input_names_the_file(truncated, tmp_path):
    from softmax.stream import softmax_file

    out = tmp_path / "p.npy"
    with pytest.raises(ValueError, match=r"cut\.npy' is truncated: its header promises"):
        softmax_file(truncated, out, progress=False)
    header_only = tmp_path / "h.npy"
    header_only.write_bytes(truncated.read_bytes()[:40])
    with pytest.raises(ValueError, match=r"h\.npy' is not a complete \.npy file"):
        softmax_file(header_only, out, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.npy", "h.npy"]


def test_failure_while_writing_removes_the_temporary_file(tmp_path, monkeypatch):
    # In-process: np.save fails half-way (a full disk, an exception); nothing is left.
    from softmax.cli import main

    src = tmp_path / "x.npy"
    np.save(src, np.zeros((3, 4)))
    real_save = np.save

    def failing_save(path, arr, *args, **kwargs):
        real_save(path, arr[:1])  # part of the data reaches the disk
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", failing_save)
    err = io.StringIO()
    assert main(["apply", str(src), "-o", str(tmp_path / "p.npy")], stderr=err) == 1
    assert "cannot write" in err.getvalue() and "No space left" in err.getvalue()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]
