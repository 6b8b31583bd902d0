"""``softmax apply --group-by``: shares within groups of rows, checked against math.exp / math.fsum."""

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from test_cli_apply import SOFTMAX, run  # noqa: F401  (the installed command, in a subprocess)

RANKING = """\
query,doc,score
q2,d7,0.5
q1,d1,2.0
q3,d4,7
q1,d2,1.0
q2,d8,-1.25
q1,d3,0.1
"""


def reference(keys, scores, temperature=1.0, log=False):
    """Each row's share within its key's rows, from math.exp and math.fsum.

    (x - max) / T is taken exactly (fractions) as hi + lo, and exp(hi + lo)
    as exp(hi) * (1 + lo): at scores ~ 30 a rounded difference alone would
    be off by 1e-14 relative, more than the package's own error.
    """
    groups = {}
    for k, s in zip(keys, scores):
        groups.setdefault(k, []).append(s)
    top = {k: max(v) for k, v in groups.items()}

    def shifted(s, m):
        d = (Fraction(s) - Fraction(m)) / Fraction(temperature)
        hi = float(d)
        return hi, float(d - Fraction(hi))

    def term(s, m):
        hi, lo = shifted(s, m)
        return math.exp(hi) * (1 + lo)

    totals = {k: math.fsum(term(s, top[k]) for s in v) for k, v in groups.items()}
    if log:
        return [math.fsum([*shifted(s, top[k]), -math.log(totals[k])])
                for k, s in zip(keys, scores)]
    return [term(s, top[k]) / totals[k] for k, s in zip(keys, scores)]


def rows_of(text, sep=","):
    return [line.split(sep) for line in text.splitlines()]


def test_shares_within_each_query_in_the_rows_order(tmp_path):
    src = tmp_path / "scores.csv"
    src.write_text(RANKING)
    r = run("apply", src, "--group-by", "query")  # the score column: the only numeric one
    assert r.returncode == 0, r.stderr
    lines = rows_of(r.stdout)
    assert lines[0] == ["query", "doc", "score", "probability"]
    given = rows_of(RANKING)[1:]
    assert [line[:3] for line in lines[1:]] == given  # every field kept, rows in order
    keys = [row[0] for row in given]
    want = reference(keys, [float(row[2]) for row in given])
    got = [float(line[3]) for line in lines[1:]]
    np.testing.assert_allclose(got, want, rtol=1e-15)
    for key in set(keys):  # each query's shares sum to 1
        assert math.fsum(g for g, k in zip(got, keys) if k == key) == pytest.approx(1, abs=4e-16)
    assert got[2] == 1.0  # q3: a group of one row


def test_many_interleaved_keys_large_range_log_and_temperature(tmp_path):
    rng = np.random.default_rng(3)
    keys = [f"query {k}" for k in rng.integers(0, 40, size=500)]  # unsorted, interleaved
    scores = (rng.standard_normal(500) * 30).tolist()
    text = "".join(f"{k}\t{s!r}\tdoc{i}\n" for i, (k, s) in enumerate(zip(keys, scores)))
    src = tmp_path / "runs.tsv"
    src.write_text(text)  # no header: columns by index, the scores in the middle
    for extra, temperature, log in ((), 1.0, False), (("--log", "-t", "2.5"), 2.5, True):
        r = run("apply", src, "--group-by", "0", *extra, "-o", tmp_path / "out.tsv")
        assert r.returncode == 0, r.stderr
        lines = rows_of((tmp_path / "out.tsv").read_text(), "\t")
        assert [line[:3] for line in lines] == rows_of(text, "\t")
        got = [float(line[3]) for line in lines]
        want = reference(keys, scores, temperature, log)
        np.testing.assert_allclose(got, want, rtol=1e-15, atol=1e-14 if log else 0)


def test_column_base_stdin_json_and_npy(tmp_path):
    text = "q,doc,score\n1,10,3\n2,11,1\n1,12,1\n"  # numeric keys and doc ids
    r = run("apply", "-", "--group-by", "q", input=text)
    assert r.returncode == 2
    assert "several columns of numbers besides --group-by 'q' (doc, score)" in r.stderr
    assert "--column" in r.stderr and "Traceback" not in r.stderr
    r = run("apply", "-", "--group-by", "q", "--column", "score", "--base", "2", "--json",
            input=text)
    assert r.returncode == 0, r.stderr
    obj = json.loads(r.stdout)
    assert obj["keys"] == ["1", "2", "1"] and obj["column"] == "score"
    np.testing.assert_allclose(obj["probabilities"],
                               reference(["1", "2", "1"], [3.0, 1.0, 1.0], 1 / math.log(2)),
                               rtol=1e-15)
    assert obj["probabilities"][:3:2] == pytest.approx([0.8, 0.2], rel=1e-15)
    r = run("apply", "-", "--group-by", "q", "--column", "2", "--log", "-o",
            tmp_path / "p.npy", input=text)
    assert r.returncode == 0, r.stderr
    got = np.load(tmp_path / "p.npy")
    np.testing.assert_allclose(got, reference(["1", "2", "1"], [3.0, 1.0, 1.0], log=True),
                               rtol=1e-15)
    assert got[1] == 0.0  # log 1: the group of one row


def test_accuracy_fast(tmp_path):
    r = run("apply", "-", "--group-by", "0", "--accuracy", "fast", input="a 1\nb 2\na 1\n")
    assert r.returncode == 0, r.stderr
    assert rows_of(r.stdout, " ") == [["a", "1", "0.5"], ["b", "2", "1.0"], ["a", "1", "0.5"]]


@pytest.mark.parametrize("args, text, messages", [
    (["--group-by", "nope"], RANKING,
     ["--group-by must be a column index or one of the header's names (query, doc, score), "
      "got 'nope'"]),
    (["--group-by", "query", "--column", "rank"], RANKING,
     ["--column must be a column index or one of the header's names", "'rank'"]),
    (["--group-by", "query"], "query,doc,score\nq1,d1,2.0\nq1,d2,high\n",
     ["<stdin>, line 3: field 3 (score) must be a number, got 'high'"]),
    (["--group-by", "query"], "", ["<stdin> holds no rows of data"]),
    (["--group-by", "query"], "query,doc,score\n", ["<stdin> holds no rows of data"]),
    (["--group-by", "query"], "query,doc\nq1,d1\n",
     ["no column of numbers besides --group-by 'query'", "--column"]),
    (["--group-by", "3"], "q1,d1,2.0\n", ["--group-by '3' needs field 4; the line has 3 fields"]),
    (["--group-by", "query"], "query,doc,score\nq1,d1,2.0\nq2\n",
     ["line 3: the score column needs field 3; the line has 1 field"]),
    (["--group-by", "query"], "query,score,probability\nq1,2.0,0.5\n",
     ["already has a column 'probability'"]),
    (["--group-by", "query", "--column", "query"], RANKING, ["must be different columns"]),
    (["--group-by", "query", "--axis", "0"], RANKING, ["--axis does not apply"]),
    (["--group-by", "query", "--label-column", "0"], RANKING, ["--label-column does not apply"]),
    (["--column", "score"], RANKING, ["--column names the scores for --group-by"]),
])
def test_bad_inputs(args, text, messages):
    r = run("apply", "-", *args, input=text)
    assert r.returncode == 2, r.stderr
    for message in messages:
        assert message in r.stderr, (message, r.stderr)
    assert r.stderr.startswith("softmax apply: error: ") or "usage:" in r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_group_by_needs_a_text_table(tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(3))
    r = run("apply", tmp_path / "x.npy", "--group-by", "0")
    assert r.returncode == 2
    assert "--group-by is for text tables (.csv, .tsv, .txt or -), got INPUT" in r.stderr
