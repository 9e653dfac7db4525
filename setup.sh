#!/usr/bin/env bash
# One entry point for a fresh machine: creates .venv, installs the pinned
# requirements (only when they changed), then runs a job.
#   bash setup.sh demo [run_demo.py flags]   # whole pipeline on the built-in corpus
#   bash setup.sh test [pytest flags]        # the test suite (what CI runs)
#   bash setup.sh install [test]             # only install (with the test extra)
set -euo pipefail
cd "$(dirname "$0")"
job=${1:-}
shift || true

find_python() {
  # TensorFlow 2.15.1 publishes wheels for CPython 3.9-3.11 only.
  local c
  for c in ${PYTHON:-} python3.11 python3.10 python3.9 python3; do
    command -v "$c" >/dev/null 2>&1 || continue
    if "$c" -c 'import sys; sys.exit(0 if (3, 9) <= sys.version_info[:2] <= (3, 11) else 1)' 2>/dev/null; then
      echo "$c"; return 0
    fi
  done
  return 1
}

if ! PY=$(find_python); then
  found=$(python3 --version 2>&1 || echo "no python3")
  cat >&2 <<MSG
error: KoELECTRA needs Python 3.9, 3.10 or 3.11 (found: $found).
TensorFlow 2.15.1, the last release with tf.estimator and TPUEstimator, has no
wheels for newer Pythons. Install Python 3.11, for example
  sudo apt-get install python3.11 python3.11-venv     (Debian/Ubuntu)
  pyenv install 3.11 && pyenv local 3.11              (pyenv)
then rerun this command, or point PYTHON at it: PYTHON=/path/to/python3.11 bash setup.sh $job
MSG
  exit 1
fi

VENV=${KOELECTRA_VENV:-.venv}
reqs=requirements.txt
{ [ "$job" = test ] || { [ "$job" = install ] && [ "${1:-}" = test ]; }; } && reqs=requirements-test.txt
stamp="$VENV/.installed-$(cat requirements.txt "$reqs" | sha1sum | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV" || { echo "error: '$PY -m venv' failed; on Debian/Ubuntu install python3-venv" >&2; exit 1; }
fi
if [ ! -f "$stamp" ]; then
  echo "== installing $reqs into $VENV (first run takes a few minutes)"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r "$reqs"
  touch "$stamp"
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}

case "$job" in
  demo)    exec "$VENV/bin/python" run_demo.py "$@" ;;
  test)    exec "$VENV/bin/python" -m pytest "$@" ;;
  install) echo "installed into $VENV" ;;
  *) echo "usage: bash setup.sh demo|test|install [args]" >&2; exit 2 ;;
esac
