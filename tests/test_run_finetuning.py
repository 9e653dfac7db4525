"""run_finetuning.py end to end on the first rows of the shared task files, tiny encoders.

Each head type finetunes and its training loss falls; predictions files hold one line per
kept example; a SIGKILL mid-training resumes; bad input is one error line, exit 2, and
nothing half written.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import run_finetuning
from finetune import runner
from finetune.config import FinetuningConfig
from tests.conftest import ROOT, shared_data_dir
from tests.finetune_data import KORQUAD_SHARED, layout

TINY = {"max_seq_length": 48, "embedding_size": 16, "train_batch_size": 8,
        "predict_batch_size": 16, "log_every_steps": 2, "allow_random_init": True,
        "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2,
                                   "num_attention_heads": 2, "intermediate_size": 64}}


def _data(tmp_path, task, rows):
  if task == "korquad":
    d = tmp_path / "finetuning_data" / "korquad"
    d.mkdir(parents=True)
    with open(shared_data_dir() / KORQUAD_SHARED, encoding="utf-8") as f:
      squad = json.load(f)
    squad["data"] = squad["data"][:10]   # the 10% dev slice of train then has an article
    for name in ("KorQuAD_v1.0_train.json", "KorQuAD_v1.0_dev.json"):
      (d / name).write_text(json.dumps(squad, ensure_ascii=False), encoding="utf-8")
  else:
    layout(tmp_path, task, rows=rows)
  shutil.copy(shared_data_dir() / "vocab" / "v3" / "vocab.txt", tmp_path / "vocab.txt")
  return tmp_path


def _losses(text):
  return [float(m) for m in re.findall(r"^step \d+/\d+ .*?\| loss ([0-9.e+-]+)", text,
                                       flags=re.M)]


QA = {"max_seq_length": 128, "doc_stride": 64, "max_query_length": 32}


@pytest.mark.parametrize("task,head,extra,splits", [
    ("nsmc", "electra", {}, ("dev", "test")),
    # Each epoch in a new order: this pair task needs a few more steps to show its fall.
    ("question-pair", "hf", {"num_train_epochs": 10.0}, ("dev",)),
    ("korsts", "hf", {}, ("dev",)),
    ("naver-ner", "electra", {}, ("dev",)),
    ("naver-ner", "hf", {}, ("dev",)),
    ("korquad", "hf", QA, ("dev", "test")),
    ("korquad", "electra", dict(QA, joint_prediction=True, beam_size=4), ("test",)),
])
def test_each_head_learns_and_writes_one_prediction_per_example(tmp_path, capsys, task,
                                                                head, extra, splits):
  data = _data(tmp_path, task, rows=64)
  # About 20 steps on 64 rows: enough to see the loss fall, not to learn the task.
  hp = dict(TINY, task_names=[task], classifier_head=head, learning_rate=3e-3, seed=3,
            num_train_epochs=1.5 if task == "korquad" else 3.0, log_every_steps=1,
            do_eval="dev" in splits, do_test="test" in splits, dev_slice_fraction=0.1)
  hp.update(extra)
  config = FinetuningConfig("tiny", str(data), **hp)
  path, _ = runner.run(config)
  out = capsys.readouterr().out
  losses = _losses(out)
  third = len(losses) // 3
  assert third >= 5, out[-3000:]
  assert np.mean(losses[-third:]) < 0.9 * np.mean(losses[:third]), losses
  record = json.load(open(path, encoding="utf-8"))
  metric = record["metric"]
  for split in splits:
    assert metric in record["splits"][split], record["splits"][split]
    pred_file = os.path.join(config.results_dir, "predictions", f"{task}.{split}.1.jsonl")
    lines = [json.loads(l) for l in open(pred_file, encoding="utf-8")]
    assert len(lines) == int(record["splits"][split]["num_examples"]["median"]) > 0
    if task == "korquad":
      assert all(isinstance(l["prediction"], str) and l["id"] for l in lines)
      answers = json.load(open(pred_file[:-1], encoding="utf-8"))
      assert list(answers) == [l["id"] for l in lines]
    else:
      numbers = [l["line"] for l in lines]
      assert numbers == sorted(numbers) and numbers[0] >= 1
      if task == "naver-ner":
        assert all(isinstance(l["prediction"], list) for l in lines)
  table = open(os.path.join(config.results_dir, "results.md"), encoding="utf-8").read()
  assert "KoELECTRA-Base-v3" in table and f"| {task} (" in table


def _cli(data, name, hp):
  return [sys.executable, "run_finetuning.py", "--data-dir", str(data), "--model-name", name,
          "--hparams", json.dumps(hp)]


def _env():
  return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")


def test_sigkill_during_training_then_rerun_finishes(tmp_path):
  data = _data(tmp_path, "nsmc", rows=64)
  hp = dict(TINY, task_names=["nsmc"], num_train_epochs=8.0, save_checkpoints_steps=4,
            log_every_steps=20, dev_slice_fraction=0.1)
  trial_dir = data / "models" / "tiny" / "finetuning_models" / "nsmc_model" / "trial_1"
  proc = subprocess.Popen(_cli(data, "tiny", hp), cwd=ROOT, env=_env(),
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  try:
    deadline = time.time() + 180
    while not (trial_dir / "checkpoint").exists() and proc.poll() is None:
      assert time.time() < deadline, "no checkpoint written"
      time.sleep(0.05)
    time.sleep(0.3)
  finally:
    proc.send_signal(signal.SIGKILL)
    proc.wait()
  assert proc.returncode == -signal.SIGKILL, "finished before the kill: test proves nothing"
  done = subprocess.run(_cli(data, "tiny", hp), cwd=ROOT, env=_env(), capture_output=True,
                        text=True, timeout=300)
  assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
  assert "trial 1: resuming from" in done.stdout
  steps = -(-57 // 8) * 8    # 64 rows less the 10% dev slice, batch 8 (the last partial)
  assert os.path.exists(trial_dir / f"model.ckpt-{steps}.index")
  assert "Compiled cluster" not in done.stderr and "SetPriority" not in done.stderr
  # Evaluation alone (do_train off) scores the finetuned trial: the same dev numbers.
  results = data / "models" / "tiny" / "results" / "nsmc_results.json"
  trained = json.load(open(results, encoding="utf-8"))["splits"]["dev"]
  config = FinetuningConfig(
      "tiny", str(data), **dict(hp, do_train=False))
  runner.run(config, log=lambda *a: None)
  assert json.load(open(results, encoding="utf-8"))["splits"]["dev"] == trained


def _error(capsys, argv):
  rc = run_finetuning.main(argv)
  err = capsys.readouterr().err
  assert rc == 2, err
  assert err.startswith("error: ") and "Traceback" not in err
  return err


def test_bad_inputs_are_one_line_errors_and_write_nothing(tmp_path, capsys):
  data = _data(tmp_path, "nsmc", rows=16)
  base = dict(TINY, task_names=["nsmc"], num_train_epochs=1.0, dev_slice_fraction=0.1)
  argv = ["--data-dir", str(data), "--model-name", "tiny", "--hparams"]
  # NSMC has no dev file: do_eval without a slice says how to get one.
  err = _error(capsys, argv + [json.dumps(dict(base, dev_slice_fraction=0.0, do_eval=True))])
  assert "nsmc has no dev file" in err and '"dev_slice_fraction": 0.1' in err, err
  assert len(err.strip().splitlines()) == 1 and not (data / "models").exists()
  err = _error(capsys, argv + [json.dumps(dict(base, task_names=["nsmcc"]))])
  assert "unknown task 'nsmcc'" in err and "korquad" in err
  err = _error(capsys, argv + [json.dumps(dict(base, allow_random_init=False))])
  assert "no checkpoint" in err and "allow_random_init" in err
  err = _error(capsys, argv + [json.dumps(dict(base, vocab_size=32200))])
  assert "vocab_size is 32200" in err
  # Evaluation alone needs a finetuned checkpoint (not a random head on the encoder).
  err = _error(capsys, argv + [json.dumps(dict(base, do_train=False, do_eval=True))])
  assert "trial_1 holds no finetuned checkpoint" in err, err
  # A malformed row names its file and line.
  bad = data / "finetuning_data" / "nsmc" / "ratings_train.txt"
  lines = bad.read_text(encoding="utf-8").splitlines()
  lines[5] = lines[5].split("\t")[0] + "\tonly two columns"
  bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
  err = _error(capsys, argv + [json.dumps(base)])
  assert "ratings_train.txt:6" in err, err
  assert not (data / "models" / "tiny" / "results").exists()


def test_checkpoint_shapes_and_vocab_must_match(tmp_path, capsys):
  """A pretraining-style checkpoint of another width, or another vocab, is refused."""
  import tensorflow.compat.v1 as tf
  from model import modeling
  data = _data(tmp_path, "nsmc", rows=16)
  ckpt_dir = data / "models" / "tiny"
  ckpt_dir.mkdir(parents=True)

  def write(vocab, hidden, layers=2):
    for p in ckpt_dir.glob("model.ckpt*"):
      p.unlink()
    with tf.Graph().as_default():
      cfg = modeling.BertConfig(vocab, hidden_size=hidden, num_hidden_layers=layers,
                                num_attention_heads=2, intermediate_size=64)
      modeling.BertModel(cfg, False, tf.zeros([1, 8], tf.int32), embedding_size=16)
      with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        tf.train.Saver().save(sess, str(ckpt_dir / "model.ckpt"), global_step=1)

  hp = dict(TINY, task_names=["nsmc"], num_train_epochs=1.0, allow_random_init=False)
  argv = ["--data-dir", str(data), "--model-name", "tiny", "--hparams", json.dumps(hp)]
  write(35000, 64)
  err = _error(capsys, argv)
  assert "electra/encoder/layer_0/attention/self/query/kernel" in err, err
  assert '"hidden_size": 64' in err, err  # the hparams that build the checkpoint's encoder
  # Fewer layers than the config: init_from_checkpoint would leave layer_1 random silently.
  write(35000, 32, layers=1)
  err = _error(capsys, argv)
  assert "electra/encoder/layer_1/" in err and '"num_hidden_layers": 1' in err, err
  write(32200, 32)
  err = _error(capsys, argv)
  assert "32200-token embedding matrix but vocab_size is 35000" in err, err
