#!/usr/bin/env bash
# Build softmax with AddressSanitizer + UndefinedBehaviorSanitizer into its
# own venv and run the whole test suite against that build.
#
#   tools/sanitize.sh [VENV] [-- PYTEST_ARGS...]
#
# PYTEST_ARGS default to "tests -q" (the whole suite), read from the repo root.
# VENV defaults to /tmp/venv-asan; it is created on first use and reused
# (the meson build dir lives inside it, so a re-run only recompiles what
# changed). Exit status: pytest's, or 1 if any sanitizer report was written,
# even one from a subprocess whose failure a test might not have noticed.
#
# Environment: PYTHON (interpreter for the venv, default python3),
# SANITIZE_EXTRAS (pip extras to install, default "test").
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=/tmp/venv-asan
if [[ $# -gt 0 && $1 != "--" ]]; then
  VENV=$1
  shift
fi
if [[ ${1:-} == "--" ]]; then
  shift
fi
PYTHON=${PYTHON:-python3}
EXTRAS=${SANITIZE_EXTRAS:-test}

# The interpreter is not instrumented, so the sanitizer runtimes must be
# loaded before anything else: LD_PRELOAD of the same gcc's libraries that
# the extension is compiled against.
CC=${CC:-gcc}
LIBASAN=$("$CC" -print-file-name=libasan.so)
LIBUBSAN=$("$CC" -print-file-name=libubsan.so)
for lib in "$LIBASAN" "$LIBUBSAN"; do
  if [[ $lib != /* || ! -e $lib ]]; then
    echo "sanitize.sh: $CC has no $(basename "$lib"); install gcc's libasan/libubsan" >&2
    exit 2
  fi
done

start=$SECONDS
if [[ ! -x $VENV/bin/python ]]; then
  "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --upgrade pip
# --no-build-isolation: the build requirements live in the venv itself, so
# the meson build dir can be kept and reused between runs.
"$VENV/bin/pip" install --quiet "meson-python>=0.15" "meson>=1.2" ninja "numpy>=2.0"
# b_lundef=false: the sanitizer runtime comes from LD_PRELOAD at run time, so
# the extension must be allowed to link with its symbols undefined.
# debugoptimized: -O2 -g, so the reports carry file:line.
"$VENV/bin/pip" install --quiet --no-build-isolation \
  -Cbuild-dir="$VENV/meson-build" \
  -Csetup-args=-Db_sanitize=address,undefined \
  -Csetup-args=-Db_lundef=false \
  -Csetup-args=-Dbuildtype=debugoptimized \
  "$ROOT[$EXTRAS]"
build_s=$((SECONDS - start))
echo "sanitize.sh: build + install: ${build_s} s"

LOGDIR=$(mktemp -d "${TMPDIR:-/tmp}/softmax-sanitize.XXXXXX")
export LD_PRELOAD="$LIBASAN:$LIBUBSAN${LD_PRELOAD:+:$LD_PRELOAD}"
# detect_leaks=0: CPython does not free everything at exit.
# allocator_may_return_null=1: a huge request must become NumPy's
# MemoryError (tested), not an ASan abort.
# log_path: every report, from pytest or from any subprocess a test starts,
# lands in LOGDIR, which is checked below.
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:abort_on_error=0:print_summary=1:log_path=$LOGDIR/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$LOGDIR/ubsan"
# Tests that meter memory by RSS skip that meter here: ASan's quarantine keeps
# freed memory resident, so RSS growth is not a leak under this build.
export SOFTMAX_UNDER_ASAN=1

# Run from outside the source tree so `import softmax` is the instrumented
# install, and prove it before spending time on the tests.
cd "$VENV"
"$VENV/bin/python" - <<'EOF'
import softmax._core as core
path = core.__file__
with open(path, "rb") as f:
    blob = f.read()
if b"__asan_init" not in blob or b"__ubsan_handle" not in blob:
    raise SystemExit(f"sanitize.sh: {path} is not an ASan+UBSan build")
print("sanitize.sh: testing", path)
EOF

test_start=$SECONDS
set +e
# From the repository root (src layout: no `softmax` package there to shadow
# the install), so PYTEST_ARGS paths read as in a normal run.
cd "$ROOT"
if [[ $# -eq 0 ]]; then
  set -- tests -q
fi
"$VENV/bin/python" -m pytest -p no:cacheprovider "$@"
status=$?
set -e
echo "sanitize.sh: test suite: $((SECONDS - test_start)) s (total $((SECONDS - start)) s)"

# A report is an error; ASan's "failed to allocate" warnings (the MemoryError
# tests asking for TiBs, allowed by allocator_may_return_null) are not.
pattern='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: [A-Za-z]*Sanitizer'
reports=$(grep -l -E "$pattern" -r "$LOGDIR" 2>/dev/null | sort || true)
notes=$(find "$LOGDIR" -type f -size +0c | wc -l)
if [[ -n $reports ]]; then
  echo "sanitize.sh: SANITIZER REPORTS:" >&2
  for r in $reports; do
    echo "==== $r" >&2
    cat "$r" >&2
  done
  status=1
else
  echo "sanitize.sh: no sanitizer reports ($notes log file(s) with warnings only)"
fi
rm -rf "$LOGDIR"
exit "$status"
