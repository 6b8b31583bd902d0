"""``softmax ... --explain``: every key number against math.exp on the same scores."""

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

SOFTMAX = Path(sys.executable).parent / "softmax"
Z = [2.0, 1.0, 0.1]
LABELS = ["cat", "dog", "rabbit"]


def run(*args):
    assert SOFTMAX.exists(), f"{SOFTMAX} is missing: pip install --no-build-isolation -e <repo>"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOFTMAX_CLI_")}
    return subprocess.run([str(SOFTMAX), *map(str, args)], capture_output=True,
                          text=True, timeout=120, env=env)


def softmax_ref(z, t=1.0):
    m = max(z)
    w = [math.exp((v - m) / t) for v in z]
    return [v / sum(w) for v in w]


def numbers_after(text, start, *, count=None):
    """The numbers on the first line (after `start`) that begins with `start`."""
    for line in text.splitlines():
        if line.strip().startswith(start):
            rest = line.strip()[len(start):].replace("%", "").replace(",", " ").split()
            values = []
            for token in rest:
                try:
                    values.append(float(token))
                except ValueError:
                    pass
            return values[:count] if count else values
    raise AssertionError(f"no line starts with {start!r}")


@pytest.fixture(scope="module")
def explained():
    r = run("cat=2.0", "dog=1.0", "rabbit=0.1", "--explain")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    return r.stdout


def test_readable_at_80_columns_and_plain(explained):
    assert all(len(line) <= 80 for line in explained.splitlines())
    assert "\x1b" not in explained


def test_step1_shift_by_max(explained):
    assert "Subtract the largest score, m = 2" in explained
    step1 = explained[explained.index("Step 1."):explained.index("Step 2.")]
    assert numbers_after(step1, "cat") == [0.0]
    assert numbers_after(step1, "dog") == [-1.0]
    assert numbers_after(step1, "rabbit") == [-1.9]
    assert f"e^(-m) = {math.exp(-2):.4g}" in step1
    assert f"{math.log(sys.float_info.max):.2f}" in step1  # 709.78, where exp overflows
    # The unshifted exponentials, and their sum.
    raw = [math.exp(v) for v in Z]
    assert ", ".join(f"{v:.4g}" for v in raw) in " ".join(step1.split())
    assert f"sum {sum(raw):.4g}" in " ".join(step1.split())


def test_steps_2_to_4(explained):
    step2 = explained[explained.index("Step 2."):explained.index("Step 3.")]
    w = [math.exp(v - 2.0) for v in Z]
    for label, wi in zip(LABELS, w):
        assert numbers_after(step2, label) == pytest.approx([wi], abs=5e-5)
    step3 = explained[explained.index("Step 3."):explained.index("Step 4.")]
    s = sum(w)
    assert f"= {s:.4g}" in step3
    lse = 2.0 + math.log(s)
    assert f"logsumexp(z) = {lse:.4g}" in " ".join(step3.split())
    step4 = explained[explained.index("Step 4."):explained.index("Why not")]
    for label, p in zip(LABELS, softmax_ref(Z)):
        share, percent = numbers_after(step4, label)
        assert share == pytest.approx(p, abs=5e-5)
        assert percent == pytest.approx(100 * p, abs=5e-3)
    assert numbers_after(step4, "sum") == [1.0, 100.0]
    assert [f"{p:.4f}" for p in softmax_ref(Z)] == ["0.6590", "0.2424", "0.0986"]


def test_sum_normalization_contrast(explained):
    naive = explained[explained.index("Why not just divide"):explained.index("Soft max and")]
    blocks = naive.split("\n\n")
    p = softmax_ref(Z)
    # Four versions of the scores: as given, +100, minus the max, minus the mean.
    cases = [b for b in blocks if b.strip().startswith(("as given", "plus", "minus"))]
    assert len(cases) == 4
    shifts = [0.0, 100.0, -2.0, -sum(Z) / 3]
    for block, shift in zip(cases, shifts):
        s = [v + shift for v in Z]
        for label, si, pi in zip(LABELS, s, p):
            values = numbers_after(block, label)
            assert values[0] == pytest.approx(si, abs=5e-4)
            assert values[-1] == pytest.approx(pi, abs=5e-5)  # softmax never moves
            if block is not cases[3]:
                assert values[1] == pytest.approx(si / sum(s), abs=5e-5)
    assert "plausible" in cases[0]
    assert "moved" in cases[1]
    assert "largest score no longer gets the largest share" in cases[2]
    assert "undefined" in cases[3] and "sum is 0" in cases[3]


def test_temperature_table(explained):
    part = explained[explained.index("Soft max and"):explained.index("The base of")]
    assert numbers_after(part, "0 (hard max)") == [1.0, 0.0, 0.0]
    for t in (0.1, 0.5, 1, 2, 10):
        row = numbers_after(part, f"{t:g} ")
        assert row == pytest.approx(softmax_ref(Z, t), abs=5e-5)
    assert numbers_after(part, "inf (uniform)") == pytest.approx([1 / 3] * 3, abs=5e-5)


def test_base_is_temperature(explained):
    part = explained[explained.index("The base of"):explained.index("Two classes")]
    for a in (2, 10):
        expected = [a**v / sum(a**u for u in Z) for v in Z]
        direct = numbers_after(part, f"{a}^z / sum {a}^z")
        assert direct[-3:] == pytest.approx(expected, abs=5e-5)
        assert numbers_after(part, f"softmax(z, base={a})")[-3:] == pytest.approx(expected, abs=5e-5)
        t = 1 / math.log(a)
        via_t = numbers_after(part, f"softmax(z / {t:.4g})")
        assert via_t[-3:] == pytest.approx(expected, abs=5e-5)
    p = softmax_ref(Z)[0]
    assert f"= {p * (1 - p):.4f}" in part  # the Jacobian's diagonal term


def test_sigmoid_identity_for_a_pair(explained):
    part = " ".join(explained[explained.index("Two classes"):].split())
    sig = 1 / (1 + math.exp(-(1.0 - 2.0)))
    assert f"= {sig:.4f} = sigmoid(1 - 2) = {sig:.4f}" in part
    assert "calibrate" in part


def test_two_scores_sigmoid():
    r = run("no=0.5", "yes=2", "--explain")
    assert r.returncode == 0, r.stderr
    sig = 1 / (1 + math.exp(-(2 - 0.5)))
    assert f"p(yes) = {sig:.4f} = sigmoid(2 - 0.5) = {sig:.4f}" in r.stdout


def test_negative_scores_break_sum_normalization():
    r = run("a=1", "b=-2", "--explain")
    assert r.returncode == 0, r.stderr
    naive = r.stdout[r.stdout.index("Why not"):]
    first = naive[naive.index("as given"):].split("\n\n")[0]
    assert "below 0 or above 1" in first
    assert numbers_after(first, "a ")[1] == pytest.approx(1 / (1 - 2), abs=5e-5)   # -1
    assert numbers_after(first, "b ")[1] == pytest.approx(-2 / (1 - 2), abs=5e-5)  # 2


def test_overflowing_scores_are_explained():
    r = run("a=1000", "b=999", "--explain")
    assert r.returncode == 0, r.stderr
    assert "overflows" in r.stdout
    step4 = r.stdout[r.stdout.index("Step 4."):r.stdout.index("Why not")]
    assert numbers_after(step4, "a ")[0] == pytest.approx(1 / (1 + math.exp(-1)), abs=5e-5)


def test_temperature_base_mask_and_log_are_followed():
    r = run("cat=2", "dog=1", "rabbit=0.1", "bird=3", "--mask", "bird", "-t", "2",
            "--base", "10", "--log", "--explain")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Left out by --mask" in out and "bird" in out
    c = math.log(10) / 2
    y = [v * c for v in Z]
    assert "y = " + ", ".join(f"{v:.4g}" for v in y) in " ".join(out.split())
    step4 = out[out.index("Step 4."):out.index("Why not")]
    lse = math.log(sum(math.exp(v) for v in y))
    for label, yi in zip(LABELS, y):
        share, percent, logp = numbers_after(step4, label)
        assert share == pytest.approx(math.exp(yi - lse), abs=5e-5)
        assert logp == pytest.approx(yi - lse, abs=5e-5)
    # The chosen base joins the base table, the chosen temperature the T table.
    assert "softmax(z, base=10)" in out
    assert all(len(line) <= 80 for line in out.splitlines())


@pytest.mark.parametrize(
    "args, message",
    [
        (["a=1", "b=2", "--explain", "--hardmax"], "--explain needs a finite temperature"),
        (["a=1", "b=2", "--explain", "-t", "0"], "--explain needs a finite temperature"),
        (["a=1", "b=2", "--explain", "-t", "inf"], "--explain needs a finite temperature"),
        (["a=inf", "b=2", "--explain"], "--explain needs finite scores, got a=inf"),
        (["a=1", "--explain", "--mask", "a"], "at least one label that is not masked"),
    ],
)
def test_explain_errors(args, message):
    r = run(*args)
    assert r.returncode == 2
    assert message in r.stderr
    assert r.stdout == ""


def test_many_and_long_labels_still_fit_80_columns():
    labels = [f"a_rather_long_label_number_{k}={k}" for k in range(9)]
    r = run(*labels, "--explain", "--precision", "6")
    assert r.returncode == 0, r.stderr
    assert all(len(line) <= 80 for line in r.stdout.splitlines())
    assert "largest of 9 scores)" in r.stdout


@pytest.mark.parametrize("args, want", [
    # 1/T beyond a double: y = x / T is [3, 0] all the same
    (["a=3e-320", "b=0", "-t", "1e-320"], softmax_ref([3.0, 0.0])),
    # a difference beyond a double, divided by T > 1: not a share of 0
    (["a=1.7e308", "b=-1.7e308", "-t", "1e308"], softmax_ref([1.7, -1.7])),
])
def test_steps_agree_with_softmax_beyond_the_float_range(args, want):
    r = run(*args, "--explain")
    assert r.returncode == 0, r.stderr
    step2 = r.stdout[r.stdout.index("Step 2."):r.stdout.index("Step 3.")]
    w = [numbers_after(step2, lab)[0] for lab in ("a", "b")]
    assert [v / sum(w) for v in w] == pytest.approx(want, rel=1e-3)
    text = " ".join(r.stdout.split())
    said = text.split("the four steps above give the same numbers (largest difference: ")[1]
    assert float(said.split(")")[0]) < 1e-12
