"""`--help` of the corpus, vocab and Cloud Storage command lines answers without TensorFlow.

Each command runs as a user types it, from another working directory, under
`python -X importtime`, which lists every module the process imported on stderr.
"""
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

COMMANDS = {
    "build_pretraining_dataset.py": ["build_pretraining_dataset.py", "--help"],
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
