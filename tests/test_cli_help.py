"""Every runner and config CLI answers --help before TensorFlow is imported, and installs the
native-log filter of util/tf_logging.py first (run as scripts, from another directory)."""
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT

SCRIPTS = ("run_pretraining.py", "run_finetuning.py", "configure_pretraining.py",
           "configure_finetuning.py")

# Runs the script as `python SCRIPT --help` does, then reports what it imported and whether
# the stderr filter thread (util/tf_logging.filter_native_stderr) is running.
WRAPPER = """
import runpy, sys, threading
script = sys.argv[1]
sys.argv = [script, "--help"]
try:
  runpy.run_path(script, run_name="__main__")
except SystemExit as e:
  code = e.code
tf = sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow")
filtered = any(t.name == "stderr-filter" for t in threading.enumerate())
print(f"CHECK {code} {len(tf)} {filtered}")
"""


def _env():
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # a user's level switches the filter off
  return env


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_answers_without_tensorflow_and_with_the_log_filter(script, tmp_path):
  path = os.path.relpath(ROOT / script, tmp_path)
  start = time.time()
  plain = subprocess.run([sys.executable, path, "--help"], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=60)
  seconds = time.time() - start
  assert plain.returncode == 0 and plain.stdout.startswith("usage:"), plain.stderr
  assert plain.stderr == ""  # no native TensorFlow line (nor anything else)
  assert seconds < 2.0, f"{script} --help took {seconds:.1f}s"
  checked = subprocess.run([sys.executable, "-c", WRAPPER, path], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=60)
  last = checked.stdout.strip().splitlines()[-1]
  assert last == "CHECK 0 0 True", (last, checked.stderr[-2000:])
