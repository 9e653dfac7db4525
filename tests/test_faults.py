"""Faults a user meets, through the real command lines (issue 23, items 4-11).

Every case runs the CLIs as subprocesses from a user's folder outside the repository,
with relative paths, on a tiny model; it kills, corrupts, truncates, fills a disk or feeds
a bad input, then asserts the exit status, the one `error:` line (no traceback) and that
nothing written before is lost. One module-scoped folder holds the shared corpus,
TFRecords, a pretrained tiny model and a KorSTS copy; destructive cases work on copies.
docs/reliability.md lists each case and what a user sees.
"""
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import BUCKET, ROOT, write_comments_corpus
from tests.finetune_data import layout
from tests.test_data_safety import TINY, _files, _overwrite_middle

STEP = re.compile(r"model\.ckpt-(\d+)\.index$")
FINETUNE = {"task_names": ["korsts"], "max_seq_length": 32, "embedding_size": 16,
            "train_batch_size": 8, "predict_batch_size": 16, "log_every_steps": 2,
            "allow_random_init": True, "num_train_epochs": 1.0,
            "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 1,
                                       "num_attention_heads": 1, "intermediate_size": 64}}


def _env(**extra):
  env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", **extra)
  env.pop("KOELECTRA_DATA", None)
  return env


def _argv(command):
  """`script.py args` or `-m module args` -> the interpreter's argv."""
  head = command[0]
  return [sys.executable] + (list(command) if head == "-m" else
                             [str(ROOT / head)] + list(command[1:]))


def _run(cwd, *command, env=None):
  return subprocess.run(_argv(command), cwd=cwd, env=env or _env(), capture_output=True,
                        text=True, timeout=300)


def _start(cwd, *command):
  """The command in its own process group (a terminal's Ctrl-C reaches the whole group)."""
  return subprocess.Popen(_argv(command), cwd=cwd, env=_env(), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, start_new_session=True)


def _one_error(res, *needles, code=2):
  """The single `error:` line of a failed run; asserts the exit status, no traceback and
  each needle in the line."""
  assert res.returncode == code, res.stdout[-2000:] + res.stderr[-3000:]
  assert "Traceback" not in res.stderr, res.stderr[-3000:]
  lines = [l for l in res.stderr.splitlines() if l.startswith("error:")]
  assert len(lines) == 1, res.stderr[-3000:]
  for needle in needles:
    assert needle in lines[0], lines[0]
  return lines[0]


def _pretrain(name, *more):
  return ("run_pretraining.py", "--data-dir", "data", "--model-name", name,
          "--hparams", "hp.json") + tuple(a for m in more for a in ("--hparams", json.dumps(m)))


def _finetune(name, data="data", **hp):
  return ("run_finetuning.py", "--data-dir", data, "--model-name", name, "--hparams",
          json.dumps(dict(FINETUNE, **hp)))


def _checkpoints(model_dir, complete_only=False):
  """{step: {file name: bytes}} of the checkpoints' weights (index and data) in `model_dir`
  (not those moved aside); with complete_only, those the `checkpoint` state file lists (a
  save finished). The .meta graph is left out: the Estimator saves again at the step it
  resumes from, rewriting that graph with the same weights."""
  listed = None
  if complete_only:
    state = (model_dir / "checkpoint").read_text()
    listed = {int(s) for s in re.findall(r'model\.ckpt-(\d+)"', state)}
  out = {}
  for name in os.listdir(model_dir):
    m = re.match(r"model\.ckpt-(\d+)\.(index|data-)", name)
    if m and (listed is None or int(m.group(1)) in listed):
      with open(os.path.join(model_dir, name), "rb") as f:
        out.setdefault(int(m.group(1)), {})[name] = f.read()
  return out


@pytest.fixture(scope="module")
def user(tmp_path_factory, data_dir, vocab_v3):
  """A user's folder: corpus/, data/pretrain_tfrecords (2 shards), hp.json, a pretrained
  tiny model data/models/base (checkpoints 0, 2, 4), data/finetuning_data/korsts (40 rows)
  and data/vocab.txt."""
  root = tmp_path_factory.mktemp("faults")
  write_comments_corpus(root, 200)
  done = _run(root, "build_pretraining_dataset.py", "--corpus-dir", "corpus", "--vocab-file",
              vocab_v3, "--output-dir", "data/pretrain_tfrecords", "--max-seq-length", "32",
              "--num-out-files", "2", "--no-progress")
  assert done.returncode == 0, done.stderr[-2000:]
  (root / "hp.json").write_text(json.dumps(dict(TINY, vocab_file=vocab_v3)), encoding="utf-8")
  done = _run(root, *_pretrain("base"))
  assert done.returncode == 0, done.stderr[-2000:]
  layout(root / "data", "korsts", rows=40)
  shutil.copy(vocab_v3, root / "data" / "vocab.txt")
  return root


def _copy_model(user, name):
  shutil.copytree(user / "data/models/base", user / "data/models" / name)
  return user / "data/models" / name


@contextlib.contextmanager
def _mounted(path, *how):
  """`mount ... path` for the body (a small tmpfs, a read-only bind), unmounted after;
  skips the test, saying why, where this machine does not allow mounting."""
  os.makedirs(path, exist_ok=True)
  res = subprocess.run(["mount", *how, str(path)], capture_output=True, text=True)
  if res.returncode != 0:
    pytest.skip(f"cannot mount here ({(res.stderr or res.stdout).strip()}); needs root")
  try:
    yield path
  finally:
    subprocess.run(["umount", "-l", str(path)], check=False)


# --- item 8: hparams of the wrong type ------------------------------------------------------

@pytest.mark.parametrize("hp,needles", [
    ({"learning_rate": "1e-3"}, ("learning_rate expects a number, got a string '1e-3'",)),
    ({"num_train_steps": None}, ("num_train_steps expects an integer, got null",)),
    ({"model_hparam_overrides": {"hidden_size": "32"}},
     ("model_hparam_overrides: hidden_size expects an integer, got a string '32'",)),
    ({"use_bf16": "false"}, ("use_bf16 expects true/false",)),
])
def test_pretraining_hparams_of_the_wrong_type(user, hp, needles):
  _one_error(_run(user, *_pretrain("typed", hp)), *needles)
  assert not (user / "data/models/typed").exists()


def test_finetuning_hparams_of_the_wrong_type(user):
  _one_error(_run(user, *_finetune("typed", num_train_epochs="3")),
             "num_train_epochs expects a number, got a string '3'")
  _one_error(_run(user, *_finetune("typed", train_batch_size=8.0)),
             "train_batch_size expects an integer, got a number 8.0")


# --- item 5: binary corpus files and NUL bytes ----------------------------------------------

def test_binary_files_and_nul_lines_are_skipped_and_counted(user, vocab_v3):
  corpus = user / "mixed"
  corpus.mkdir()
  shutil.copy(user / "corpus/comments.txt", corpus / "comments.txt")
  with open(sys.executable, "rb") as f:  # a real binary: the interpreter's first 64 KiB
    (corpus / "python.bin").write_bytes(f.read(65536))
  lines = (user / "corpus/comments.txt").read_text(encoding="utf-8").splitlines()[:30]
  lines[3] = "NUL\x00in the middle"
  (corpus / "nul.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
  done = _run(user, "build_pretraining_dataset.py", "--corpus-dir", "mixed", "--vocab-file",
              vocab_v3, "--output-dir", "mixed_tfrecords", "--max-seq-length", "32",
              "--num-out-files", "1", "--no-progress")
  assert done.returncode == 0, done.stderr[-2000:]
  summary = json.loads((user / "mixed_tfrecords/summary.json").read_text(encoding="utf-8"))
  assert summary["skipped_files"] == ["mixed/python.bin: binary content (NUL bytes)"]
  assert summary["skipped_binary"] == 1 and summary["files"] == 2
  assert "mixed/nul.txt:4: binary content (NUL bytes)" in summary["skipped_examples"]
  assert "skipped file mixed/python.bin: binary content" in done.stdout
  # The vocab builder reads corpora through the same code: the same file and line skipped.
  vocab = ("-m", "vocab.build_vocab", "--corpus", "mixed", "--output-dir", "mixed_vocab",
           "--vocab-size", "3000", "--limit-alphabet", "1000", "--unused", "0", "--quiet",
           "--holdout-every", "0")
  done = _run(user, *vocab)
  assert done.returncode == 0, done.stderr[-2000:]
  assert "skipping mixed/python.bin: binary content (NUL bytes)" in done.stderr
  report = json.loads((user / "mixed_vocab/vocab_report.json").read_text(encoding="utf-8"))
  assert report["corpus"]["skipped_binary"] == 1 and report["corpus"]["files"] == 2
  # item 7: an existing vocab is not replaced without --overwrite.
  before = _files(user / "mixed_vocab")
  _one_error(_run(user, *vocab), "mixed_vocab/vocab.txt exists", "--overwrite")
  assert _files(user / "mixed_vocab") == before
  assert _run(user, *vocab, "--overwrite").returncode == 0


# --- item 7: run_demo.py with other options on an existing output --------------------------

def test_demo_refuses_changed_options(user):
  pytest.importorskip("konlpy")
  proc = _start(user, "run_demo.py", "--output-dir", "demo", "--steps", "5")
  deadline = time.time() + 120
  while not (user / "demo/corpus").exists() and proc.poll() is None:
    assert time.time() < deadline, "demo corpus not written"
    time.sleep(0.05)
  os.killpg(proc.pid, signal.SIGKILL)
  proc.communicate()
  assert (user / "demo/demo_options.json").exists()
  before = _files(user / "demo")
  _one_error(_run(user, "run_demo.py", "--output-dir", "demo", "--steps", "5",
                  "--vocab-size", "5000"), "vocab_size 6000 -> 5000", "--fresh")
  assert _files(user / "demo") == before


# --- items 11 and the suite: SIGTERM, then SIGKILL at a random point, then the same command --

def test_terminated_and_killed_pretraining_resumes(user):
  model_dir = _copy_model(user, "killed")
  command = _pretrain("killed", {"num_train_steps": 60, "save_checkpoints_steps": 10,
                                 "keep_checkpoint_max": 0, "log_every_steps": 10})
  proc = _start(user, *command)
  deadline = time.time() + 180
  while max(_checkpoints(model_dir)) <= 4 and proc.poll() is None:
    assert time.time() < deadline, "no new checkpoint"
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 143, "finished before SIGTERM: the test proves nothing"
  assert err.strip().splitlines()[-1] == "terminated: resume with the same command"
  assert "Traceback" not in err
  kept = _checkpoints(model_dir, complete_only=True)
  # SIGKILL at a random moment of the same command's rerun (start-up, training or a save).
  proc = _start(user, *command)
  time.sleep(random.uniform(0.5, 6.0))
  os.killpg(proc.pid, signal.SIGKILL)
  proc.communicate()
  kept.update(_checkpoints(model_dir, complete_only=True))
  done = _run(user, *command)
  assert done.returncode == 0, done.stderr[-3000:]
  assert "global step 60" in done.stdout
  now = _checkpoints(model_dir)
  for step, files in kept.items():  # every checkpoint written before is still there
    assert now[step] == files


# --- item 6: a non-finite loss; item 11: no deprecation warning on the fallback ------------

def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(user):
  model_dir = _copy_model(user, "diverged")
  before = _checkpoints(model_dir)
  res = _run(user, *_pretrain("diverged", {"num_train_steps": 12,
                                                 "learning_rate": 1e30}))
  _one_error(res, "the training loss became NaN or infinite",
             "the last good checkpoint, data/models/diverged/model.ckpt-4, is kept",
             "lower learning_rate")
  assert "deprecat" not in res.stderr.lower()  # the fallback's state file is written by hand
  now = _checkpoints(model_dir)
  assert max(now) == 4 and all(now[s] == before[s] for s in before)
  moved = os.listdir(model_dir / "unusable_checkpoints")
  assert moved, "the checkpoint with NaN weights is kept aside, not deleted"
  done = _run(user, *_pretrain("diverged", {"num_train_steps": 6}))
  assert done.returncode == 0, done.stderr[-3000:]
  assert "deprecat" not in done.stderr.lower()
  assert 6 in _checkpoints(model_dir)


# --- item 9: a damaged TFRecord shard ------------------------------------------------------

@pytest.mark.parametrize("damage", ["overwrite", "truncate"])
def test_damaged_shard_is_named(user, vocab_v3, damage):
  folder = user / f"shards_{damage}"
  shutil.copytree(user / "data/pretrain_tfrecords", folder)
  shard = sorted(folder.glob("pretrain_data.tfrecord-*"))[0]
  if damage == "overwrite":
    _overwrite_middle(shard)
  else:
    with open(shard, "r+b") as f:
      f.truncate(os.path.getsize(shard) - 100)
  rel = f"shards_{damage}/{shard.name}"
  res = _run(user, *_pretrain(f"shards_{damage}",
                              {"pretrain_tfrecords": f"shards_{damage}/pretrain_data.tfrecord-*"}))
  _one_error(res, f"{rel} is damaged", f"--inspect {rel}")
  _one_error(_run(user, "build_pretraining_dataset.py", "--inspect", rel, "--vocab-file",
                  vocab_v3), rel, "record")


# --- item 10: the environment --------------------------------------------------------------

def test_model_dir_under_a_file(user):
  (user / "a_file").write_text("not a folder\n")
  _one_error(_run(user, *_pretrain("x", {"model_dir": "a_file/model"})),
             "a_file", "ot a directory")
  _one_error(_run(user, *_finetune("x", model_dir="a_file/model")), "a_file", "ot a directory")
  assert (user / "a_file").read_text() == "not a folder\n"


def _no_final_names(folder, patterns):
  names = [n for _, _, files in os.walk(folder) for n in files]
  return [n for n in names if any(re.fullmatch(p, n) for p in patterns)]


def test_full_disk(user, vocab_v3):
  with _mounted(user / "small", "-t", "tmpfs", "-o", "size=2m", "tmpfs"):
    _one_error(_run(user, *_pretrain("x", {"model_dir": "small/model"})),
               "small/model", "No space left on device")
    assert not _no_final_names(user / "small", [r"model\.ckpt-\d+\.(index|data.*|meta)"])
    _one_error(_run(user, "export_hf.py", "--checkpoint", "data/models/base", "--vocab-file",
                    vocab_v3, "--output-dir", "small/hf", "--hparams", "hp.json"),
               "No space left on device")
    assert not (user / "small/hf").exists()
  with _mounted(user / "tiny", "-t", "tmpfs", "-o", "size=16k", "tmpfs"):
    _one_error(_run(user, "build_pretraining_dataset.py", "--corpus-dir", "corpus",
                    "--vocab-file", vocab_v3, "--output-dir", "tiny/tf", "--max-seq-length",
                    "32", "--num-out-files", "2", "--no-progress"),
               "tiny/tf", "No space left on device")
    assert not (user / "tiny/tf/summary.json").exists()
    for shard in (user / "tiny/tf").glob("pretrain_data.tfrecord-*"):  # complete or absent
      assert shard.stat().st_size == (user / "data/pretrain_tfrecords" / shard.name).stat().st_size


def test_read_only_output(user):
  (user / "frozen").mkdir()
  with _mounted(user / "frozen", "--bind", str(user / "frozen")):
    res = subprocess.run(["mount", "-o", "remount,ro,bind", str(user / "frozen")],
                         capture_output=True, text=True)
    if res.returncode:
      pytest.skip(f"cannot remount read-only here: {res.stderr.strip()}")
    _one_error(_run(user, *_pretrain("x", {"model_dir": "frozen/model"})),
               "frozen/model", "Read-only file system")
    _one_error(_run(user, *_finetune("x", model_dir="frozen/model")), "frozen/model",
               "Read-only file system")


def test_gcs_download_under_a_file(user, emulator):
  env = _env(STORAGE_EMULATOR_HOST=emulator[0], XDG_CACHE_HOME=str(user / "cache"))
  up = _run(user, "-m", "util.gcs", "cp", "--no-progress", "hp.json", f"gs://{BUCKET}/hp.json",
            env=env)
  assert up.returncode == 0, up.stderr
  (user / "b_file").write_text("keep me\n")
  _one_error(_run(user, "-m", "util.gcs", "cp", "--no-progress", f"gs://{BUCKET}/hp.json",
                  "b_file/hp.json", env=env), "b_file")
  assert (user / "b_file").read_text() == "keep me\n"


# --- items 4, 6, 9, 11: finetuning reruns and task files -----------------------------------

def test_finetuning_rerun_with_other_hparams(user):
  assert _run(user, *_finetune("ft")).returncode == 0
  results = user / "data/models/ft/results/korsts_results.json"
  trial = user / "data/models/ft/finetuning_models/korsts_model/trial_1"
  before, trained = results.read_bytes(), _files(trial)
  # Only evaluation settings changed: the finished trial is reused.
  assert _run(user, *_finetune("ft", predict_batch_size=8)).returncode == 0
  _one_error(_run(user, *_finetune("ft", learning_rate=1e-3)),
             "trial_1 was trained with other hparams (learning_rate 5e-05 -> 0.001)",
             "another --model-name", "\"retrain\": true")
  assert json.loads(results.read_bytes())["hparams"]["learning_rate"] == 5e-05
  done = _run(user, *_finetune("ft", learning_rate=1e-3, retrain=True))
  assert done.returncode == 0, done.stderr[-3000:]
  assert "retrain: " in done.stdout
  aside = list((trial.parent / "replaced_trials").glob("*/trial_1"))
  assert len(aside) == 1 and _files(aside[0]) == trained
  assert json.loads(results.read_bytes())["hparams"]["learning_rate"] == 1e-3
  assert results.read_bytes() != before
  # A damaged features cache is named, with what to do.
  cache = sorted((user / "data/models/ft/finetuning_tfrecords").glob("korsts.train.*.tfrecord"))
  _overwrite_middle(cache[0])
  rel = os.path.relpath(cache[0], user)
  _one_error(_run(user, *_finetune("ft", model_dir="ft_elsewhere")), f"{rel} is damaged",
             "delete it and rerun")


def test_bad_task_files(user):
  task_dir = user / "bad_task/finetuning_data/korsts"
  shutil.copytree(user / "data/finetuning_data/korsts", task_dir)
  shutil.copy(user / "data/vocab.txt", user / "bad_task/vocab.txt")
  train = task_dir / "sts-train.tsv"
  rows = train.read_text(encoding="utf-8").splitlines()
  cols = rows[7].split("\t")
  cols[4] = "-7"
  train.write_text("\n".join(rows[:7] + ["\t".join(cols)] + rows[8:]) + "\n", encoding="utf-8")
  _one_error(_run(user, *_finetune("x", data="bad_task")),
             "bad_task/finetuning_data/korsts/sts-train.tsv:8: score -7 lies outside "
             "korsts's range [0, 5]")
  train.write_text("")
  _one_error(_run(user, *_finetune("x", data="bad_task")),
             "no training examples in bad_task/finetuning_data/korsts/sts-train.tsv",
             "empty")
  assert not (user / "bad_task/models/x/results").exists()


# --- item 11: Ctrl-C of the builder with worker processes ----------------------------------

def test_ctrl_c_of_the_builder_is_one_line_and_resumes(user, data_dir, vocab_v3):
  corpus = user / "big"
  corpus.mkdir()
  comments = data_dir / "corpus/hate-speech-unlabeled/unlabeled_comments_5.txt"
  for i in range(6):
    shutil.copy(comments, corpus / f"part{i}.txt")
  command = ("build_pretraining_dataset.py", "--corpus-dir", "big", "--vocab-file", vocab_v3,
             "--output-dir", "big_tfrecords", "--max-seq-length", "32", "--num-out-files", "8",
             "--num-processes", "2", "--no-progress")
  proc = _start(user, *command)
  while not (user / "big_tfrecords/.build/config.json").exists() and proc.poll() is None:
    time.sleep(0.01)
  time.sleep(0.3)
  os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole process group
  out, err = proc.communicate(timeout=120)
  assert proc.returncode == 130, "finished before Ctrl-C: the test proves nothing"
  assert err.strip().splitlines() == [
      "interrupted: complete shards are kept; rerun the same command to resume"], err
  done = _run(user, *command)
  assert done.returncode == 0, done.stderr[-2000:]
  assert len(list((user / "big_tfrecords").glob("pretrain_data.tfrecord-*"))) == 8
