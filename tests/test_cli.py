"""The `softmax` command: the scores table, its options, errors, help.

The tests run the installed command in a subprocess, as a user would.
Expected numbers come from math.exp on the same scores, never from the
package.
"""

import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

SOFTMAX = Path(sys.executable).parent / "softmax"
CAT_DOG_RABBIT = ["cat=2.0", "dog=1.0", "rabbit=0.1"]


def run(*args, input=None, env=None):
    assert SOFTMAX.exists(), (
        f"{SOFTMAX} is missing: pip install --no-build-isolation -e <repo>"
    )
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("SOFTMAX_CLI_")}
    full_env.update(env or {})
    # Without input, stdin is /dev/null: the command reads a piped stdin
    # when no scores are given, and the test runner's own stdin may be a pipe.
    return subprocess.run(
        [str(SOFTMAX), *map(str, args)], input=input, capture_output=True,
        text=True, timeout=120, env=full_env,
        **({} if input is not None else {"stdin": subprocess.DEVNULL}),
    )


def ref_softmax(z, t=1.0):
    m = max(z)
    w = [math.exp((v - m) / t) for v in z]
    s = sum(w)
    return [v / s for v in w]


def table(stdout):
    """Rows of the table as {label: [score, probability, percent, bar]}."""
    lines = stdout.splitlines()
    assert lines[0].split()[:2] == ["label", "score"]
    rows = {}
    for line in lines[1:]:
        parts = line.split(None, 4)
        rows[parts[0]] = parts[1:] + [""] * (5 - len(parts))
    return rows


def test_cat_dog_rabbit_table():
    r = run(*CAT_DOG_RABBIT)
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    rows = table(r.stdout)
    assert list(rows) == ["cat", "dog", "rabbit"]  # order as given
    assert [rows[k][0] for k in rows] == ["2.0", "1.0", "0.1"]
    # The article's numbers.
    assert [rows[k][1] for k in rows] == ["0.6590", "0.2424", "0.0986"]
    assert [rows[k][2] for k in rows] == ["65.90%", "24.24%", "9.86%"]
    expected = ref_softmax([2.0, 1.0, 0.1])
    for (label, cells), p in zip(rows.items(), expected):
        assert abs(float(cells[1]) - p) < 5e-5
    # Bars: one full block per cell, the full width standing for p = 1.
    bars = [rows[k][3] for k in rows]
    widths = [b.count("█") for b in bars]
    assert widths[0] > widths[1] > widths[2] > 0
    full = widths[0] / expected[0]
    for w, p in zip(widths, expected):
        assert abs(w - p * full) <= 1.01
    assert all(len(line) <= 80 for line in r.stdout.splitlines())


def test_bare_numbers_are_labelled_by_position():
    r = run("2", "1", "0.1")
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    assert list(rows) == ["1", "2", "3"]
    assert [rows[k][1] for k in rows] == ["0.6590", "0.2424", "0.0986"]


@pytest.mark.parametrize(
    "args",
    [["--", "-1", "-2"], ["a=-1", "b=-2"], ["-1", "-2"], ["-1e0", "-2.0e0"], ["-.1e1", "-2"]],
)
def test_negative_scores(args):
    r = run(*args)
    assert r.returncode == 0, r.stderr
    probs = [float(cells[1]) for cells in table(r.stdout).values()]
    expected = ref_softmax([-1.0, -2.0])  # sigmoid(1), sigmoid(-1)
    assert probs == pytest.approx(expected, abs=5e-5)


def test_negative_infinity_gets_nothing():
    r = run("-1", "-inf", "-1")
    assert r.returncode == 0, r.stderr
    assert [c[1] for c in table(r.stdout).values()] == ["0.5000", "0.0000", "0.5000"]


def test_inf_and_nan_scores_follow_the_library_rules():
    r = run("a=inf", "b=1", "c=inf")
    assert [c[1] for c in table(r.stdout).values()] == ["0.5000", "0.0000", "0.5000"]
    r = run("a=nan", "b=1")
    assert r.returncode == 0, r.stderr
    assert [c[1] for c in table(r.stdout).values()] == ["nan", "nan"]


def test_sort_by_probability():
    r = run("a=0.1", "b=2", "c=1", "--sort")
    assert list(table(r.stdout)) == ["b", "c", "a"]


def test_options_may_come_anywhere():
    r1 = run("--sort", "a=0.1", "b=2", "c=1")
    r2 = run("a=0.1", "--sort", "b=2", "c=1")
    assert r1.returncode == r2.returncode == 0
    assert r1.stdout == r2.stdout


@pytest.mark.parametrize("t", [0.5, 2.0, 10.0])
def test_temperature(t):
    r = run(*CAT_DOG_RABBIT, "--temperature", t)
    assert r.returncode == 0, r.stderr
    probs = [float(c[1]) for c in table(r.stdout).values()]
    assert probs == pytest.approx(ref_softmax([2.0, 1.0, 0.1], t), abs=5e-5)


def test_base_is_a_power():
    r = run(*CAT_DOG_RABBIT, "--base", "2", "--precision", "8")
    z = [2.0, 1.0, 0.1]
    expected = [2**v / sum(2**u for u in z) for v in z]
    probs = [float(c[1]) for c in table(r.stdout).values()]
    assert probs == pytest.approx(expected, abs=5e-9)


def test_log_probabilities():
    r = run(*CAT_DOG_RABBIT, "--log", "--precision", "8")
    assert r.returncode == 0, r.stderr
    assert "log-probability" in r.stdout.splitlines()[0]
    z = [2.0, 1.0, 0.1]
    lse = math.log(sum(math.exp(v) for v in z))
    logs = [float(c[1]) for c in table(r.stdout).values()]
    assert logs == pytest.approx([v - lse for v in z], abs=5e-9)


def test_mask_leaves_labels_out():
    r = run(*CAT_DOG_RABBIT, "--mask", "dog")
    assert r.returncode == 0, r.stderr
    rows = table(r.stdout)
    pc, pr = ref_softmax([2.0, 0.1])
    assert float(rows["cat"][1]) == pytest.approx(pc, abs=5e-5)
    assert float(rows["rabbit"][1]) == pytest.approx(pr, abs=5e-5)
    assert rows["dog"][1] == "0.0000"
    assert rows["dog"][3] == "(masked)"
    # Several labels: comma-separated or repeated.
    for args in (["--mask", "dog,rabbit"], ["--mask", "dog", "--mask", "rabbit"]):
        rows = table(run(*CAT_DOG_RABBIT, *args).stdout)
        assert [rows[k][1] for k in rows] == ["1.0000", "0.0000", "0.0000"]


def test_mask_in_log_mode_is_minus_infinity():
    r = run("a=1", "b=2", "--mask", "b", "--log")
    rows = table(r.stdout)
    assert rows["a"][1] == "0.0000"
    assert rows["b"][1] == "-inf"


def test_hardmax_and_ties():
    rows = table(run(*CAT_DOG_RABBIT, "--hardmax").stdout)
    assert [rows[k][1] for k in rows] == ["1.0000", "0.0000", "0.0000"]
    rows = table(run("a=1", "b=3", "c=3", "--hardmax").stdout)
    assert [rows[k][1] for k in rows] == ["0.0000", "0.5000", "0.5000"]
    # Temperature 0 is the same thing.
    assert run("a=1", "b=3", "c=3", "-t", "0").stdout == run("a=1", "b=3", "c=3", "--hardmax").stdout


def test_precision():
    rows = table(run(*CAT_DOG_RABBIT, "--precision", "6").stdout)
    p = ref_softmax([2.0, 1.0, 0.1])
    assert rows["cat"][1] == f"{p[0]:.6f}"
    assert rows["cat"][2] == f"{100 * p[0]:.4f}%"
    rows = table(run(*CAT_DOG_RABBIT, "--precision", "0").stdout)
    assert rows["cat"][1] == "1"


def test_json():
    r = run(*CAT_DOG_RABBIT, "--json")
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["labels"] == ["cat", "dog", "rabbit"]
    assert obj["scores"] == [2.0, 1.0, 0.1]
    assert obj["temperature"] == 1.0 and obj["base"] is None and obj["masked"] == []
    assert obj["probabilities"] == pytest.approx(ref_softmax([2.0, 1.0, 0.1]), rel=1e-14)


def test_json_log_sort_mask_and_nonfinite():
    r = run("a=1", "b=3", "c=2", "--json", "--log", "--sort", "--mask", "c", "-t", "2")
    obj = json.loads(r.stdout)
    assert obj["labels"] == ["b", "a", "c"]
    assert obj["masked"] == ["c"]
    assert obj["temperature"] == 2.0
    lse = math.log(math.exp(1.5) + math.exp(0.5))
    assert obj["log_probabilities"][:2] == pytest.approx([1.5 - lse, 0.5 - lse], rel=1e-14)
    # JSON has no -inf: the string "-inf" keeps a masked label apart from NaN (null).
    assert obj["log_probabilities"][2] == "-inf"
    obj = json.loads(run("a=inf", "b=1", "--json").stdout)
    assert obj["scores"] == ["inf", 1.0]
    assert obj["probabilities"] == [1.0, 0.0]
    obj = json.loads(run("a=nan", "b=1", "c=2", "--mask", "c", "--log", "--json").stdout)
    assert obj["log_probabilities"] == [None, None, "-inf"]  # NaN row; masked -inf
    assert obj["scores"] == [None, 1.0, 2.0]


def test_json_encoding_is_documented():
    from softmax.cli import main

    assert '"-inf"' in main.__doc__ and "null" in main.__doc__
    for command in ([], ["apply"], ["sweep"]):
        out = io.StringIO()
        assert main([*command, "--help"], stdout=out) == 0
        assert '"-inf"' in out.getvalue() or '"inf"' in out.getvalue(), command


def test_labels_may_be_named_like_commands():
    r = run("sweep=1", "apply=2")
    assert list(table(r.stdout)) == ["sweep", "apply"]


def test_version():
    import softmax

    r = run("--version")
    assert r.returncode == 0
    assert r.stdout.strip() == f"softmax {softmax.__version__}"


def test_help_lists_forms_commands_and_examples():
    r = run("--help", env={"COLUMNS": "80"})
    assert r.returncode == 0
    assert r.stderr == ""
    assert all(len(line) <= 80 for line in r.stdout.splitlines())
    out = r.stdout
    for text in ("usage: softmax", "SCORE", "sweep", "apply", "--temperature", "--base",
                 "--log", "--mask", "--hardmax", "--precision", "--json", "--explain",
                 "--sort", "examples:", "softmax cat=2.0 dog=1.0 rabbit=0.1"):
        assert text in out, text


@pytest.mark.parametrize("command", ["sweep", "apply", "calibrate"])
def test_every_command_has_help_with_examples(command):
    r = run(command, "--help", env={"COLUMNS": "80"})
    assert r.returncode == 0, r.stderr
    assert all(len(line) <= 80 for line in r.stdout.splitlines())
    assert f"usage: softmax {command}" in r.stdout
    assert "examples:" in r.stdout
    assert f"softmax {command} " in r.stdout.split("examples:")[1]


def test_python_dash_m_is_the_same_command():
    r = subprocess.run([sys.executable, "-m", "softmax", *CAT_DOG_RABBIT],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0
    assert r.stdout == run(*CAT_DOG_RABBIT).stdout


def test_ascii_output_draws_hashes_and_no_escape_codes():
    r = run(*CAT_DOG_RABBIT, env={"PYTHONIOENCODING": "ascii"})
    assert r.returncode == 0, r.stderr
    bars = [c[3] for c in table(r.stdout).values()]
    assert bars[0].startswith("###") and set("".join(bars)) == {"#"}
    r = run(*CAT_DOG_RABBIT, "--explain")
    assert "\x1b" not in r.stdout + run(*CAT_DOG_RABBIT).stdout


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "no scores given"),
        (["cat=x"], "the score of 'cat' must be a number, got 'x'"),
        (["cat"], "a score must be NUMBER or LABEL=NUMBER, got 'cat'"),
        (["=1"], "empty label"),
        (["a=1", "a=2"], "labels must be unique, got 'a' at positions 1 and 2"),
        (["a=1", "--temperature", "-1"], "temperature must be >= 0"),
        (["a=1", "--temperature", "warm"], "must be a number, got 'warm'"),
        (["a=1", "--base", "1"], "base must be finite, > 0 and != 1, got 1.0"),
        (["a=1", "--base", "-2"], "base must be finite, > 0 and != 1, got -2.0"),
        (["a=1", "--mask", "zebra"], "--mask must name given labels (a), got 'zebra'"),
        (["a=1", "--bogus"], "unrecognized arguments: --bogus"),
        (["a=1", "--hardmax", "-t", "2"], "not allowed with"),
        (["a=1", "--precision", "x"], "must be a whole number, got 'x'"),
        (["a=1", "--precision", "99"], "must be between 0 and 17, got 99"),
        (["a=1", "--json", "--explain"], "not allowed with"),
    ],
)
def test_usage_errors(args, message):
    r = run(*args)
    assert r.returncode == 2, r.stdout
    assert r.stdout == ""
    assert message in r.stderr
    assert "Try 'softmax --help'" in r.stderr
    assert "Traceback" not in r.stderr


def test_typo_of_a_command_names_the_commands():
    r = run("swep", "a=1")
    assert r.returncode == 2
    assert "did you mean 'sweep'?" in r.stderr
    assert "(commands: sweep, apply" in r.stderr
    r = run("calibrat", "x.npy", "y.npy")
    assert "did you mean 'calibrate'?" in r.stderr


@pytest.mark.parametrize(
    "args",
    [["a=1", "b=2", "--temp", "2"], ["a=1", "--prec", "2"], ["sweep", "a=1", "--step", "3"],
     ["apply", "-", "--temp", "2"], ["calibrate", "z.npy", "y.npy", "--val", "0.5"]],
)
def test_option_prefixes_are_refused(args):
    r = run(*args, input="1 2\n")
    assert r.returncode == 2, r.stdout
    assert "unrecognized arguments" in r.stderr


def test_scores_from_a_pipe():
    r = run(input="1 2 3\n")
    assert r.returncode == 0, r.stderr
    assert [c[1] for c in table(r.stdout).values()] == ["0.0900", "0.2447", "0.6652"]
    assert run(input="cat=2,dog=1\n").stdout == run("cat=2", "dog=1").stdout
    assert run(input="1\n2\n3\n").stdout == r.stdout  # one score per line
    r = run(input="1 2\n3 4\n")
    assert r.returncode == 2
    assert "softmax apply -" in r.stderr
    r = run(input="")
    assert r.returncode == 2 and "no scores given" in r.stderr


def test_a_huge_bad_token_is_not_echoed_whole():
    token = "x" * 10_000_000
    r = run(input=token)
    assert r.returncode == 2
    assert len(r.stderr) < 1000 and "10000000 characters" in r.stderr
    r = run("apply", "-", input="1 " + token + "\n")
    assert r.returncode == 2
    assert len(r.stderr) < 1000 and "<stdin>" in r.stderr


def test_command_after_options_is_found():
    r = run("--precision", "2", "sweep", "a=1", "b=2", "--temperatures", "1,2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[1].split() == ["1", "0.27", "0.73"]


# In-process: main() with injected streams (how embedding and doctests use it).

def test_main_in_process_with_injected_streams():
    from softmax.cli import ExitStatus, main

    out, err = io.StringIO(), io.StringIO()
    assert main(CAT_DOG_RABBIT, stdout=out, stderr=err) == ExitStatus.SUCCESS == 0
    assert "0.6590" in out.getvalue() and err.getvalue() == ""
    out, err = io.StringIO(), io.StringIO()
    assert main(["cat=x"], stdout=out, stderr=err) == ExitStatus.USAGE == 2
    assert out.getvalue() == "" and "must be a number" in err.getvalue()
    out = io.StringIO()
    assert main(["--help"], stdout=out, stderr=io.StringIO()) == 0
    assert "examples:" in out.getvalue()
    out = io.StringIO()
    assert main(["apply", "-"], stdin=io.StringIO("0 0\n"), stdout=out) == 0
    assert out.getvalue() == "0.5 0.5\n"
    assert [int(s) for s in ExitStatus] == [0, 1, 2, 130, 143]


def test_one_command_table_of_modules():
    from softmax.cli import core, scores

    assert list(core.COMMANDS) == ["sweep", "apply", "calibrate"]
    for module in [scores, *core.COMMANDS.values()]:
        assert callable(module.add_arguments) and callable(module.run)
        assert module.DESCRIPTION
    for module in core.COMMANDS.values():
        assert "examples:" in module.EPILOG and module.HELP


def test_cli_imports_only_the_public_library():
    # softmax.cli is a client of the library: softmax, softmax.stream,
    # softmax.calibration, never a private module.
    import ast

    import softmax.cli

    folder = Path(softmax.cli.__file__).parent
    for path in sorted(folder.glob("*.py")):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level == 0:
                    assert module in ("softmax", "softmax.stream", "softmax.calibration",
                                      "softmax.datasets") or \
                        not module.startswith("softmax"), (path.name, module)
                    names = [a.name for a in node.names]
                    assert not any(n.startswith("_") and n != "__version__" for n in names), \
                        (path.name, names)
                else:
                    assert node.level == 1, (path.name, module)  # only softmax.cli's own
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name in ("softmax",) or not alias.name.startswith("softmax"), \
                        (path.name, alias.name)
            elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
                if node.value.id in ("lib", "cal", "softmax"):
                    assert not node.attr.startswith("_"), (path.name, node.attr)
