"""`--help` of every command line answers before TensorFlow is imported.

The runner and config scripts also install the native-log filter of util/tf_logging.py
first. Each command runs as a user types it, from another working directory; the corpus,
vocab and Cloud Storage commands under `python -X importtime`, which lists every module the
process imported on stderr.
"""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

COMMANDS = {
    "build_pretraining_dataset.py": ["build_pretraining_dataset.py", "--help"],
    "run_demo.py": ["run_demo.py", "--help"],
    "vocab.build_vocab": ["-m", "vocab.build_vocab", "--help"],
    "util.gcs": ["-m", "util.gcs", "--help"],
    "util.gcs cp": ["-m", "util.gcs", "cp", "--help"],
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_does_not_import_tensorflow(name, tmp_path):
  args = COMMANDS[name]
  if args[0].endswith(".py"):  # a script: by its path relative to the working directory
    args = [os.path.relpath(ROOT / args[0], tmp_path)] + args[1:]
  env = dict(os.environ, PYTHONPATH=os.path.relpath(ROOT, tmp_path))
  env.pop("TF_CPP_MIN_LOG_LEVEL", None)
  run = subprocess.run([sys.executable, "-X", "importtime"] + args, cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=120)
  assert run.returncode == 0, run.stderr[-2000:]
  assert run.stdout.startswith("usage: ")
  modules = [line.rsplit("|", 1)[-1].strip() for line in run.stderr.splitlines()
             if line.startswith("import time:")]
  assert "argparse" in modules  # the listing is there, so its silence below means something
  assert not [m for m in modules if m.split(".")[0] in ("tensorflow", "google")], modules


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
  plain = subprocess.run([sys.executable, path, "--help"], cwd=tmp_path, env=_env(),
                         capture_output=True, text=True, timeout=60)
  assert plain.returncode == 0 and plain.stdout.startswith("usage:"), plain.stderr
  assert plain.stderr == ""  # no native TensorFlow line (nor anything else)
  checked = subprocess.run([sys.executable, "-c", WRAPPER, path], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=60)
  last = checked.stdout.strip().splitlines()[-1]
  assert last == "CHECK 0 0 True", (last, checked.stderr[-2000:])
