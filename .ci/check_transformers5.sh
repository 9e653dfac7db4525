#!/usr/bin/env bash
# The Hugging Face loading checks under the newest transformers 5.x.
#
# transformers 5.x needs a tokenizers release that transformers 4.47.1 (the main test
# environment) refuses, so it gets its own venv (.venv-hf5, or $KOELECTRA_HF5_VENV),
# installed from requirements-hf5.txt once per change of that file (a stamp, as setup.sh).
# The main environment (.venv, or $KOELECTRA_VENV) exports a small pretrained model and
# the reference outputs; the 5.x venv loads the folders and compares.
#   bash .ci/check_transformers5.sh [work dir, default: a fresh temporary dir]
set -euo pipefail
cd "$(dirname "$0")/.."
MAIN_VENV=${KOELECTRA_VENV:-.venv}
VENV=${KOELECTRA_HF5_VENV:-.venv-hf5}
[ -x "$MAIN_VENV/bin/python" ] || { echo "error: $MAIN_VENV missing; run 'bash setup.sh test' first" >&2; exit 1; }
# The main venv's Python (3.9-3.11, checked by setup.sh): the torch pin's CPU wheel is
# there for it, where a newer python3 could send pip to the network for a CUDA build.
PY="$MAIN_VENV/bin/python"
stamp="$VENV/.installed-$(sha1sum requirements-hf5.txt | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV" || { echo "error: '$PY -m venv' failed" >&2; exit 1; }
fi
if [ ! -f "$stamp" ]; then
  echo "== installing requirements-hf5.txt into $VENV"
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  "$VENV/bin/python" -m pip install --quiet -r requirements-hf5.txt
  # A CUDA torch would mean pip went to the network for it: refuse rather than use it.
  "$VENV/bin/python" -c 'import sys, torch; sys.exit(0 if torch.version.cuda is None else "error: a CUDA torch was installed in '"$VENV"'")'
  touch "$stamp"
fi
work=${1:-}
if [ -z "$work" ]; then
  work=$(mktemp -d)
  trap 'rm -rf "$work"' EXIT
fi
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
t0=$(date +%s)
"$MAIN_VENV/bin/python" -m tests.hf_reference make "$work"
t1=$(date +%s)
"$VENV/bin/python" -m tests.hf_reference check "$work"
t2=$(date +%s)
echo "transformers 5.x check: fixture $((t1 - t0))s, check $((t2 - t1))s"
