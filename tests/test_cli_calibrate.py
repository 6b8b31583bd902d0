"""`softmax calibrate`: in process through `softmax.cli.main`, and as a real command."""

from __future__ import annotations

import io
import json
from pathlib import Path
import math
import re
import subprocess
import sys

import numpy as np
import pytest

scipy_special = pytest.importorskip("scipy.special")
scipy_optimize = pytest.importorskip("scipy.optimize")

from softmax.calibration import TemperatureScaling  # noqa: E402
from softmax.cli import main  # noqa: E402


def call(argv):
    """``softmax calibrate ARGV`` in-process: (status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    status = main(["calibrate", *map(str, argv)], stdin=io.StringIO(), stdout=out, stderr=err)
    return status, out.getvalue(), err.getvalue()


def scipy_temperature(z, y):
    def nll(u):
        lp = scipy_special.log_softmax(z.astype(np.float64) / math.exp(u), axis=1)
        return -lp[np.arange(len(y)), y].mean()

    res = scipy_optimize.minimize_scalar(nll, bounds=(-4.6, 4.6), method="bounded",
                                         options={"xatol": 1e-10})
    return math.exp(res.x)


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    z = (rng.normal(size=(600, 4)) * 3).astype(np.float32)
    p = scipy_special.softmax(z.astype(np.float64) / 2.0, axis=1)
    y = (rng.random((600, 1)) > p.cumsum(1)).sum(1).clip(0, 3)
    np.save(tmp_path / "z.npy", z)
    np.save(tmp_path / "y.npy", y)
    np.save(tmp_path / "zt.npy", z[:300])
    np.save(tmp_path / "yt.npy", y[:300])
    np.savez(tmp_path / "both.npz", logits=z, labels=y)
    np.savetxt(tmp_path / "z.csv", z, delimiter=",", header="a,b,c,d", comments="")
    np.savetxt(tmp_path / "y.csv", y, fmt="%d")
    return tmp_path, z, y


def test_table_and_temperature(files):
    d, z, y = files
    status, out, err = call([d / "z.npy", d / "y.npy"])
    assert status == 0 and err == ""
    t = float(out.split("T = ")[1].split()[0])
    assert t == pytest.approx(scipy_temperature(z, y), rel=1e-5)
    for word in ("accuracy", "NLL", "ECE (15 uniform bins)", "MCE", "Brier", "in-sample"):
        assert word in out


def test_json_test_split_and_save(files):
    d, z, y = files
    status, out, err = call([d / "z.npy", d / "y.npy", "--test", d / "zt.npy", d / "yt.npy",
                             "--json", "--save", d / "t.json", "--bins", 10, "--strategy",
                             "quantile"])
    assert status == 0
    res = json.loads(out)  # stdout holds the JSON alone
    assert err == f"temperature saved to {d / 't.json'}\n"  # the report goes to stderr
    assert res["temperature"] == pytest.approx(scipy_temperature(z, y), rel=1e-5)
    assert res["evaluated_on"]["n_samples"] == 300 and not res["evaluated_on"]["in_sample"]
    assert res["bins"] == 10 and res["strategy"] == "quantile"
    lp = scipy_special.log_softmax(z[:300].astype(np.float64), axis=1)
    assert res["before"]["nll"] == pytest.approx(-lp[np.arange(300), y[:300]].mean(), rel=1e-9)
    assert res["after"]["nll"] < res["before"]["nll"]
    assert TemperatureScaling.load(d / "t.json").temperature == res["temperature"]


def test_npz_keys_csv_and_val_fraction(files):
    d, z, y = files
    s1, out1, _ = call([d / "both.npz", d / "both.npz", "--key", "logits", "--labels-key", "labels", "--json"])
    s2, out2, _ = call([d / "z.csv", d / "y.csv", "--json"])
    assert s1 == s2 == 0
    t_ref = scipy_temperature(z, y)
    assert json.loads(out1)["temperature"] == pytest.approx(t_ref, rel=1e-5)
    assert json.loads(out2)["temperature"] == pytest.approx(t_ref, rel=1e-5)
    s3, out3, _ = call([d / "z.npy", d / "y.npy", "--val-fraction", 0.25, "--seed", 3, "--json"])
    res = json.loads(out3)
    assert s3 == 0 and res["fit"]["n_samples"] == 150 and res["evaluated_on"]["n_samples"] == 450
    idx = np.sort(np.random.default_rng(3).permutation(600)[:150])
    assert res["temperature"] == pytest.approx(scipy_temperature(z[idx], y[idx]), rel=1e-5)


def test_plot(files):
    pytest.importorskip("matplotlib")
    import matplotlib.image as mpimg

    d, _, _ = files
    status, out, err = call([d / "z.npy", d / "y.npy", "--plot", d / "rd.png"])
    assert status == 0 and "rd.png" in err and "rd.png" not in out
    img = mpimg.imread(d / "rd.png")
    assert img.shape[0] > 300 and img.shape[1] > 600 and img[..., :3].std() > 0.05


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda d: [d / "missing.npy", d / "y.npy"], "missing.npy: no such file"),
        (lambda d: [d / "z.npy", d / "bad_labels.npy"], r"bad_labels.npy: labels must be class indices in \[0, 4\).* got 7 at row 2"),
        (lambda d: [d / "z.npy", d / "short.npy"], "short.npy: 10 labels for 600 rows"),
        (lambda d: [d / "nan.npy", d / "y.npy"], "nan.npy: logits must be finite"),
        (lambda d: [d / "z.txt", d / "y.npy"], r"z.txt: unsupported file type '.txt'"),
        (lambda d: [d / "both.npz", d / "y.npy", "--key", "nope"], r"both.npz: no array named 'nope'"),
        (lambda d: [d / "y.npy", d / "y.npy"], r"y.npy: logits must be a 2-D numeric array"),
        (lambda d: [d / "garbage.csv", d / "y.npy"], r"garbage.csv, line 2: field 1 must be a number, got .x."),
        (lambda d: [d / "z.npy", d / "y.npy", "--test", d / "z3.npy", d / "y3.npy"], r"z3.npy: 3 classes, but .*z.npy has 4"),
    ],
)
def test_bad_input_files_exit_2(files, make, match):
    d, z, y = files
    bad = y.copy()
    bad[2] = 7
    np.save(d / "bad_labels.npy", bad)
    np.save(d / "short.npy", y[:10])
    zn = z.copy()
    zn[5, 1] = np.nan
    np.save(d / "nan.npy", zn)
    (d / "z.txt").write_text("1,2\n")
    (d / "garbage.csv").write_text("1,2\nx,y\n")
    np.save(d / "z3.npy", z[:, :3])
    np.save(d / "y3.npy", y % 3)
    status, out, err = call(make(d))
    assert status == 2 and out == ""
    assert err.startswith("softmax calibrate: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert re.search(match, err), err


def test_unwritable_output_exits_1(files):
    d, _, _ = files
    status, _, err = call([d / "z.npy", d / "y.npy", "--save", d / "no" / "dir" / "t.json"])
    assert status == 1 and "cannot write the temperature to" in err and "t.json" in err
    assert not (d / "no").exists()


def test_help_has_examples():
    out = io.StringIO()
    assert main(["calibrate", "--help"], stdout=out) == 0
    text = out.getvalue()
    assert "examples:" in text and "--val-fraction" in text and "--test" in text
    assert "--input probs" in text


def test_seed_must_be_nonnegative_and_is_named(files):
    d, _, _ = files
    status, _, err = call([d / "z.npy", d / "y.npy", "--val-fraction", 0.5, "--seed", -1])
    assert status == 2 and "--seed" in err and "must be >= 0, got -1" in err


def test_probabilities_are_not_read_as_logits(files):
    # issue 13: probabilities passed as logits gave a confident, wrong T.
    d, z, y = files
    p = scipy_special.softmax(z.astype(np.float64), axis=1)
    np.save(d / "p.npy", p)
    status, out, err = call([d / "p.npy", d / "y.npy"])
    assert status == 2 and "--input probs" in err and out == ""
    status, out, err = call([d / "p.npy", d / "y.npy", "--input", "probs", "--json"])
    assert status == 0, err
    res = json.loads(out)
    # log p are logits of the same model: the same T as from the logits.
    assert res["temperature"] == pytest.approx(scipy_temperature(z, y), rel=1e-5)
    lp = np.log(p)
    assert res["before"]["nll"] == pytest.approx(-lp[np.arange(600), y].mean(), rel=1e-9)
    # The reverse: logits given as probabilities.
    status, _, err = call([d / "z.npy", d / "y.npy", "--input", "probs"])
    assert status == 2 and "--input probs needs rows in [0, 1]" in err


def test_subprocess(files):
    # the command must exist: a missing `calibrate` fails here (exit 2), it is not skipped
    d, z, y = files
    run = subprocess.run([sys.executable, "-m", "softmax", "calibrate", str(d / "z.npy"),
                          str(d / "y.npy"), "--json"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["temperature"] == pytest.approx(scipy_temperature(z, y), rel=1e-5)
    bad = subprocess.run([sys.executable, "-m", "softmax", "calibrate", str(d / "nope.npy"),
                          str(d / "y.npy")], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "nope.npy: no such file" in bad.stderr
    assert "Traceback" not in bad.stderr


def test_a_shipped_data_set_by_name():
    """`softmax calibrate resnet110_cifar10`: fit on its validation split, report on its
    test split. The uncalibrated test numbers are the ones published with these logits
    (markus93/NN_calibration: ECE 0.047503518641 with 15 bins, NLL 0.358274134971,
    the latter computed in float32 there)."""
    softmax_cmd = str(Path(sys.executable).parent / "softmax")  # the installed command
    run = subprocess.run([softmax_cmd, "calibrate", "resnet110_cifar10", "--json"],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    res = json.loads(run.stdout)
    assert res["evaluated_on"]["n_samples"] == 10000 and not res["evaluated_on"]["in_sample"]
    assert res["before"]["ece"] == pytest.approx(0.047503518641, rel=1e-6)
    assert res["before"]["nll"] == pytest.approx(0.358274134971, rel=2e-7)
    assert res["before"]["accuracy"] == 0.9356 == res["after"]["accuracy"]
    assert res["after"]["ece"] < 0.012
    bad = subprocess.run([softmax_cmd, "calibrate", "no_such_set"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and "LABELS is required" in bad.stderr
    assert "Traceback" not in bad.stderr
