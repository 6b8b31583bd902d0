"""``softmax sweep``: shares against temperature, as a table, JSON and a PNG."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

SOFTMAX = Path(sys.executable).parent / "softmax"
Z = [2.0, 1.0, 0.1]


def run(*args, env=None):
    assert SOFTMAX.exists(), f"{SOFTMAX} is missing: pip install --no-build-isolation -e <repo>"
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SOFTMAX_CLI_")}
    full_env.update(env or {})
    return subprocess.run([str(SOFTMAX), *map(str, args)], capture_output=True,
                          text=True, timeout=120, env=full_env)


def softmax_ref(z, t):
    m = max(z)
    w = [math.exp((v - m) / t) for v in z]
    return [v / sum(w) for v in w]


def rows(stdout):
    lines = stdout.splitlines()
    return lines[0].split(), [[float(x) for x in line.split()] for line in lines[1:]]


def test_default_sweep_is_log_spaced_from_0_1_to_10():
    r = run("sweep", "cat=2", "dog=1", "rabbit=0.1")
    assert r.returncode == 0, r.stderr
    header, table = rows(r.stdout)
    assert header == ["T", "cat", "dog", "rabbit"]
    assert len(table) == 9
    temps = [row[0] for row in table]
    expected_t = [0.1 * 100 ** (k / 8) for k in range(9)]
    assert temps == pytest.approx(expected_t, rel=5e-4)
    for row, t in zip(table, expected_t):
        assert row[1:] == pytest.approx(softmax_ref(Z, t), abs=5e-5)
    # Small T: near the hard max; large T: near uniform.
    assert table[0][1] > 0.9999 and max(table[-1][1:]) - min(table[-1][1:]) < 0.07
    cat = [row[1] for row in table]
    assert cat == sorted(cat, reverse=True)


def test_steps_and_lists_with_limits():
    header, table = rows(run("sweep", "a=1", "b=2", "--temperatures", "0.5:2", "--steps", "3").stdout)
    assert [row[0] for row in table] == pytest.approx([0.5, 1.0, 2.0])
    r = run("sweep", "a=1", "b=2", "--temperatures", "0,1,inf")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[1].split() == ["0", "0.0000", "1.0000"]
    assert lines[3].split() == ["inf", "0.5000", "0.5000"]


def test_json():
    r = run("sweep", "2", "1", "0.1", "--temperatures", "0,0.5,inf", "--json")
    obj = json.loads(r.stdout)
    assert obj["labels"] == ["1", "2", "3"]
    assert obj["temperatures"] == [0.0, 0.5, "inf"]  # JSON has no inf
    assert obj["probabilities"][0] == [1.0, 0.0, 0.0]
    assert obj["probabilities"][1] == pytest.approx(softmax_ref(Z, 0.5), rel=1e-14)
    assert obj["probabilities"][2] == pytest.approx([1 / 3] * 3, rel=1e-15)


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "sweep.png"
    r = run("sweep", "cat=2", "dog=1", "rabbit=0.1", "--plot", png)
    assert r.returncode == 0, r.stderr
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert width > 300 and height > 200
    # The table is printed as well.
    assert rows(r.stdout)[0] == ["T", "cat", "dog", "rabbit"]


def test_plot_without_matplotlib_says_which_extra(tmp_path):
    # A matplotlib that cannot be imported, ahead of the real one on the path.
    fake = tmp_path / "fake" / "matplotlib"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no matplotlib here')\n")
    r = run("sweep", "a=1", "b=2", "--plot", tmp_path / "s.png",
            env={"PYTHONPATH": str(tmp_path / "fake")})
    assert r.returncode == 1
    assert "pip install matplotlib" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "s.png").exists()


def test_plot_to_unwritable_place_fails_with_1(tmp_path):
    pytest.importorskip("matplotlib")
    r = run("sweep", "a=1", "b=2", "--plot", tmp_path / "no" / "such" / "dir" / "s.png")
    assert r.returncode == 1
    assert "cannot write" in r.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["--temperatures", "3:1"], "0 < LO < HI < inf, got '3:1'"),
        (["--temperatures", "0:1"], "0 < LO < HI < inf"),
        (["--temperatures", "a:b"], "must be LO:HI or a comma-separated list"),
        (["--temperatures", "1,x"], "got 'x'"),
        (["--temperatures", "1,-2"], "temperature must be >= 0"),
        (["--steps", "0"], "must be >= 1, got 0"),
    ],
)
def test_sweep_errors(args, message):
    r = run("sweep", "a=1", "b=2", *args)
    assert r.returncode == 2
    assert message in r.stderr
    assert "Try 'softmax sweep --help'" in r.stderr


@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".pdf", b"%PDF"),
                                           (".png", b"\x89PNG")])
def test_plot_format_follows_the_suffix(tmp_path, suffix, magic):
    pytest.importorskip("matplotlib")
    path = tmp_path / f"s{suffix}"
    r = run("sweep", "a=1", "b=2", "--plot", path)
    assert r.returncode == 0, r.stderr
    assert path.read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]  # no temporary left


def test_plot_with_an_unknown_suffix_is_a_usage_error(tmp_path):
    r = run("sweep", "a=1", "b=2", "--plot", tmp_path / "s.gif")
    assert r.returncode == 2
    assert "--plot must end in .png, .svg, .pdf" in r.stderr
    assert not (tmp_path / "s.gif").exists()


def test_a_million_steps_in_one_library_call():
    # issue 15: one Python call per temperature took minutes for 1,000,000 steps.
    import io

    import numpy as np

    import softmax
    from softmax.cli import main, sweep

    calls = []
    real = softmax.softmax

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    z = np.array([2.0, 1.0, 0.1])
    temps = sweep.temperatures("0.1:10", 1_000_000)
    mp = pytest.MonkeyPatch()
    mp.setattr(softmax, "softmax", counting)
    try:
        p = sweep.sweep(z, temps)
    finally:
        mp.undo()
    assert len(calls) == 1 and p.shape == (1_000_000, 3)
    for i in (0, 1, 123_456, 999_999):
        assert p[i] == pytest.approx(softmax_ref(Z, temps[i]), rel=1e-13)
    out = io.StringIO()
    assert main(["sweep", *map(str, Z), "--steps", "1000000", "--json"], stdout=out) == 0
    assert len(json.loads(out.getvalue())["probabilities"]) == 1_000_000


def test_sweep_of_extreme_scores_and_temperatures():
    import numpy as np

    from softmax import softmax
    from softmax.cli import sweep

    z = np.array([1e308, -1e308, 0.0, 1e308 * 0.999])
    temps = np.array([0.0, 1e-300, 1e-3, 1.0, 1e300, np.inf])
    got = sweep.sweep(z, temps)
    for t, row in zip(temps, got):
        np.testing.assert_allclose(row, softmax(z, temperature=float(t)), rtol=1e-13, atol=0)


@pytest.mark.parametrize("steps", ["1000001", "9" * 400])
def test_steps_are_bounded(steps):
    r = run("sweep", "a=1", "b=2", "--steps", steps)
    assert r.returncode == 2
    assert "--steps must be at most 1,000,000" in r.stderr
    assert len(r.stderr) < 500


def test_sweep_agrees_with_softmax_beyond_the_float_range():
    """Differences beyond a double (T > 1 gives them a share) and 1/T beyond
    it (subnormal scores over a subnormal T): the library's answers."""
    import numpy as np

    import softmax as sm
    from softmax.cli.sweep import sweep

    for z, temps in (([1.7e308, -1.7e308, 0.0], [1.0, 2.0, 1e307, 1e308]),
                     ([3e-320, 0.0, -1e-320], [1e-320, 5e-324, 1.0])):
        z, temps = np.array(z), np.array(temps)
        got = sweep(z, temps)
        for t, row in zip(temps, got):
            np.testing.assert_allclose(row, sm.softmax(z, temperature=t), rtol=1e-14, atol=0)
