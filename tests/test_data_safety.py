"""Nothing a user trained is lost on a rerun (issue 23, items 1-3).

The CLIs run as subprocesses from a working directory outside the repository, with the
relative paths the README uses (`--data-dir data`): a rerun resumes instead of starting
over, a checkpoint whose bytes were overwritten is set aside (never deleted) and the
previous one is resumed from, and `--overwrite` refuses an output that holds its input.
"""
import json
import os
import subprocess
import sys

import pytest

from tests import test_run_pretraining
from tests.conftest import ROOT, write_comments_corpus

# The tiny model of tests/test_run_pretraining.py, saving every 2 of 4 steps.
TINY = dict(test_run_pretraining.TINY, num_train_steps=4, num_warmup_steps=1,
            save_checkpoints_steps=2, log_every_steps=2, num_eval_steps=2,
            iterations_per_loop=2, keep_checkpoint_max=10)
SEQ = TINY["max_seq_length"]


def _env():
  env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("KOELECTRA_DATA", None)
  return env


def _cli(cwd, script, *args):
  """Runs a top-level script as a user would, from `cwd`; returns the CompletedProcess."""
  return subprocess.run([sys.executable, str(ROOT / script), *args], cwd=cwd, env=_env(),
                        capture_output=True, text=True, timeout=300)


def _files(folder):
  """{relative path: bytes} of every file below `folder`."""
  out = {}
  for dirpath, _, names in os.walk(folder):
    for n in names:
      p = os.path.join(dirpath, n)
      with open(p, "rb") as f:
        out[os.path.relpath(p, folder)] = f.read()
  return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, data_dir, vocab_v3):
  """A user's folder (outside the repository) with data/pretrain_tfrecords and hp.json."""
  root = tmp_path_factory.mktemp("user")
  write_comments_corpus(root, 200)
  done = _cli(root, "build_pretraining_dataset.py", "--corpus-dir", "corpus",
              "--vocab-file", vocab_v3, "--output-dir", "data/pretrain_tfrecords",
              "--max-seq-length", str(SEQ), "--num-out-files", "2", "--no-progress")
  assert done.returncode == 0, done.stderr[-2000:]
  (root / "hp.json").write_text(json.dumps(dict(TINY, vocab_file=vocab_v3)), encoding="utf-8")
  return root


def _pretrain(root, name, **hp):
  return _cli(root, "run_pretraining.py", "--data-dir", "data", "--model-name", name,
              "--hparams", "hp.json", "--hparams", json.dumps(hp))


def _overwrite_middle(path):
  """Overwrites 64 bytes in the middle of `path`, keeping its size."""
  size = os.path.getsize(path)
  with open(path, "r+b") as f:
    f.seek(size // 2)
    f.write(b"\xa5" * 64)
  assert os.path.getsize(path) == size


def test_relative_data_dir_resumes_and_keeps_every_checkpoint(workdir):
  first = _pretrain(workdir, "rel", num_train_steps=4)
  assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
  model_dir = workdir / "data" / "models" / "rel"
  before = _files(model_dir)
  assert {"model.ckpt-2.index", "model.ckpt-4.index"} <= set(before)

  again = _pretrain(workdir, "rel", num_train_steps=6)
  out = again.stdout + again.stderr
  assert again.returncode == 0, out[-3000:]
  assert "resuming from data/models/rel/model.ckpt-4" in out, out[-3000:]
  assert "starting from scratch" not in out and "cannot be restored" not in out
  assert "global step 6" in again.stdout
  after = _files(model_dir)
  for name, data in before.items():
    assert name in after, f"{name} vanished"
    # The saver writes step 4 again on resuming (same values; its .meta graph may differ).
    if name.startswith("model.ckpt-") and not name.endswith(".meta"):
      assert after[name] == data, f"{name} changed"
  assert not (model_dir / "unusable_checkpoints").exists()

  # Evaluation only, still relative: evaluates step 6 and removes nothing.
  evaluated = _pretrain(workdir, "rel", num_train_steps=6, do_train=False, do_eval=True)
  assert evaluated.returncode == 0, (evaluated.stdout + evaluated.stderr)[-3000:]
  assert "no checkpoint to evaluate" not in evaluated.stdout + evaluated.stderr
  assert set(_files(model_dir)) >= set(after)
  assert "disc_auc" in evaluated.stdout, evaluated.stdout[-2000:]


def test_overwritten_checkpoint_bytes_fall_back_to_the_previous_one(workdir):
  first = _pretrain(workdir, "corrupt", num_train_steps=4)
  assert first.returncode == 0, first.stderr[-2000:]
  model_dir = workdir / "data" / "models" / "corrupt"
  data_file = model_dir / "model.ckpt-4.data-00000-of-00001"
  _overwrite_middle(data_file)
  damaged = data_file.read_bytes()

  again = _pretrain(workdir, "corrupt", num_train_steps=6)
  out = again.stdout + again.stderr
  assert again.returncode == 0, out[-3000:]
  assert "data/models/corrupt/model.ckpt-4 cannot be restored" in out, out[-3000:]
  assert "Checksum does not match" in out
  assert "resuming from data/models/corrupt/model.ckpt-2" in out
  assert "Traceback" not in out and "deprecated" not in out
  assert "global step 6" in again.stdout
  # The damaged checkpoint was set aside whole, not deleted.
  aside = list((model_dir / "unusable_checkpoints").glob("*/model.ckpt-4.*"))
  assert sorted(p.name for p in aside) == [
      "model.ckpt-4.data-00000-of-00001", "model.ckpt-4.index", "model.ckpt-4.meta"]
  assert [p for p in aside if p.name.startswith("model.ckpt-4.data")][0].read_bytes() == damaged
  # Steps 3-4 were trained again and saved under their usual names.
  assert (model_dir / "model.ckpt-4.index").exists() and (model_dir / "model.ckpt-6.index").exists()


def test_recovery_reads_a_relative_model_dir_in_place(workdir, monkeypatch):
  """What run_finetuning's evaluation-only path calls on each trial folder."""
  from util import estimator as estimator_lib
  done = _pretrain(workdir, "inplace", num_train_steps=2)
  assert done.returncode == 0, done.stderr[-2000:]
  monkeypatch.chdir(workdir)
  before = _files("data/models/inplace")
  logged = []
  resume = estimator_lib.recover_model_dir("data/models/inplace", log=logged.append)
  assert resume == "data/models/inplace/model.ckpt-2"
  assert logged == []
  assert _files("data/models/inplace") == before


@pytest.mark.parametrize("output", ["data/models/exp", "data/models", "data/models/exp/hf"])
def test_export_refuses_to_overwrite_its_input(workdir, vocab_v3, output):
  done = _pretrain(workdir, "exp", num_train_steps=2)
  assert done.returncode == 0, done.stderr[-2000:]
  before = _files(workdir / "data" / "models")
  res = _cli(workdir, "export_hf.py", "--checkpoint", "data/models/exp", "--vocab-file",
             vocab_v3, "--output-dir", output, "--overwrite", "--hparams", "hp.json")
  assert res.returncode == 2, res.stdout[-2000:] + res.stderr[-2000:]
  err = [l for l in res.stderr.splitlines() if l.startswith("error: ")]
  assert len(err) == 1 and "--checkpoint data/models/exp" in err[0], res.stderr[-2000:]
  assert "Traceback" not in res.stderr
  assert _files(workdir / "data" / "models") == before


@pytest.mark.parametrize("output", ["hub", "hub/discriminator", "."])
def test_import_refuses_to_overwrite_its_input(tmp_path, output):
  for sub in ("discriminator", "generator"):
    (tmp_path / "hub" / sub).mkdir(parents=True)
    (tmp_path / "hub" / sub / "config.json").write_text("{}")
  before = _files(tmp_path / "hub")
  res = _cli(tmp_path, "import_hf.py", "--discriminator", "hub/discriminator",
             "--generator", "hub/generator", "--output-dir", output, "--overwrite")
  assert res.returncode == 2, res.stderr[-2000:]
  assert res.stderr.startswith("error: --output-dir ") and "Traceback" not in res.stderr
  assert _files(tmp_path / "hub") == before
