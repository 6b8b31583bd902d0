#!/usr/bin/env bash
# Ready to publish: build the sdist and the wheel as a release would
# (python -m build, isolated), check their metadata (twine check --strict),
# check that LICENSE and the sample data are inside, then install the wheel
# into a fresh venv and smoke-test it there, away from the source tree.
#
#   tools/check_dist.sh [PYTHON]     PYTHON: one with build and twine (default: python3)
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/softmax-dist.XXXXXX")
trap 'rm -rf "$work"' EXIT

"$py" -m build --outdir "$work/dist" . > "$work/build.log" 2>&1 || { cat "$work/build.log"; exit 1; }
"$py" -m twine check --strict "$work"/dist/*
sdist=$(ls "$work"/dist/*.tar.gz)
wheel=$(ls "$work"/dist/*.whl)
echo "built: $(basename "$sdist") $(basename "$wheel")"

# LICENSE in the sdist and in the wheel, the data and its notice in the wheel.
tar tzf "$sdist" > "$work/sdist.txt"   # (not piped into grep -q: pipefail and SIGPIPE)
grep -qx '[^/]*/LICENSE' "$work/sdist.txt" || { echo "LICENSE missing from the sdist"; exit 1; }
"$py" - "$wheel" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = [
    "softmax/datasets/resnet110_cifar10/logits_val.npy",
    "softmax/datasets/resnet110_cifar10/labels_val.npy",
    "softmax/datasets/resnet110_cifar10/logits_test.npy",
    "softmax/datasets/resnet110_cifar10/labels_test.npy",
    "softmax/datasets/resnet110_cifar10/LICENSE",
    "softmax/datasets/resnet110_cifar10/SOURCE.md",
]
missing = [n for n in need if n not in names]
missing += [] if any(n.endswith(".dist-info/licenses/LICENSE") for n in names) else ["LICENSE"]
if missing:
    sys.exit(f"missing from the wheel: {missing}")
PY

python3 -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet "$wheel"
cd "$work"   # not the checkout: the import must come from the installed wheel
"$work/venv/bin/python" - <<'PY'
import importlib.metadata
import numpy as np
import softmax as sm

assert "site-packages" in sm.__file__, sm.__file__
assert sm.__version__ == importlib.metadata.version("softmax"), sm.__version__
p = sm.softmax([2.0, 1.0, 0.1])  # cat, dog, rabbit
np.testing.assert_allclose(p, [0.6590011388859679, 0.24243297070471392, 0.09856589040931818], rtol=1e-15)
data = sm.datasets.load_logits()
assert data.logits_val.shape == (5000, 10) and data.logits_test.shape == (10000, 10)
accuracy = np.mean(data.logits_test.argmax(axis=1) == data.labels_test)
assert abs(accuracy - 0.9356) < 1e-9, accuracy  # the source's published number
sm.show_config()
print(f"smoke test: softmax {sm.__version__} imported from the wheel, ok")
PY
"$work/venv/bin/softmax" --help > /dev/null
"$work/venv/bin/softmax" cat=2.0 dog=1.0 rabbit=0.1
