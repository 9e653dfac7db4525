"""`"distribution"`: one finetuning step gives the same variables under "none", "mirrored"
(2 logical CPU devices) and "multi_worker" (2 local processes, TF_CONFIG on free
127.0.0.1 ports); 2 workers pretrain to num_train_steps once, into one checkpoint set with
the original names that export_hf.py and run_finetuning.py read; a SIGKILLed worker stops
the other with one line in bounded time and a rerun of both finishes; bad settings stop
with one line. Every run is a process: a process splits its CPU, or joins a cluster, once."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from finetune.config import FinetuningConfig
from model import checkpoint as ckpt_lib
from pretrain import runner as pretrain_runner
from pretrain.config import PretrainingConfig
from tests.conftest import ROOT, free_port
from tests.finetune_data import layout
from tests.test_run_pretraining import TINY as PRETRAIN_TINY
from tests.test_run_pretraining import build_root
from util import errors

FINETUNE_TINY = {
    "task_names": ["nsmc"], "max_seq_length": 32, "embedding_size": 16,
    "train_batch_size": 8, "predict_batch_size": 8, "log_every_steps": 1,
    "allow_random_init": True, "seed": 3, "learning_rate": 1e-2,
    # Dropout off: the update must not depend on which replica drew which mask.
    "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 1,
                               "num_attention_heads": 2, "intermediate_size": 64,
                               "hidden_dropout_prob": 0.0,
                               "attention_probs_dropout_prob": 0.0}}


def _env(**extra):
  return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", **extra)


def _tf_configs(n=2):
  """TF_CONFIG of each of `n` local workers, on ports picked free now."""
  cluster = {"worker": [f"127.0.0.1:{free_port()}" for _ in range(n)]}
  return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}})
          for i in range(n)]


def _workers(cmd, cwd, timeout=240):
  """Runs `cmd` as 2 workers of one cluster; returns [(returncode, output)] by rank."""
  procs = [subprocess.Popen(cmd, cwd=cwd, env=_env(TF_CONFIG=c), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for c in _tf_configs()]
  try:
    return [(p.returncode, out) for p, (out, _) in
            ((p, p.communicate(timeout=timeout)) for p in procs)]
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()


def _variables(prefix):
  import tensorflow as tf
  reader = tf.train.load_checkpoint(str(prefix))
  return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


# --- settings -------------------------------------------------------------------------------

@pytest.mark.parametrize("hp,message", [
    ({"distribution": "ring"}, "distribution must be one of none, mirrored, multi_worker"),
    ({"distribution": "mirrored", "use_tpu": True, "num_tpu_cores": 8},
     'with use_tpu TPUEstimator shards over the TPU cores itself'),
    ({"num_cpu_devices": 0}, "num_cpu_devices must be a positive integer"),
    ({"worker_timeout_secs": -5}, "worker_timeout_secs must be a positive integer"),
])
def test_bad_distribution_settings_are_refused_naming_the_key(hp, message, vocab_v3):
  for make in (lambda: PretrainingConfig("m", "/tmp/x", vocab_file=vocab_v3, **hp),
               lambda: FinetuningConfig("m", "/tmp/x", task_names=["nsmc"], **hp)):
    with pytest.raises(errors.ConfigError, match=message):
      make()


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, data_dir, vocab_v3):
  """DIR with pretrain_tfrecords/ (2 shards), finetuning_data/nsmc/ (16 rows), vocab.txt."""
  root = build_root(tmp_path_factory.mktemp("distributed"), data_dir, vocab_v3)
  layout(root, "nsmc", rows=16)
  shutil.copy(vocab_v3, root / "vocab.txt")
  return root


def _pretrain_cli(root, name, hp):
  return [sys.executable, os.path.join(ROOT, "run_pretraining.py"), "--data-dir", str(root),
          "--model-name", name, "--hparams", json.dumps(hp)]


@pytest.mark.parametrize("hp,env,message", [
    ({"distribution": "mirrored", "num_cpu_devices": 3},
     {}, "error: train_batch_size 8 does not split evenly over 3 replicas"),
    ({"distribution": "multi_worker"}, {"TF_CONFIG": ""},
     'error: distribution "multi_worker" needs the TF_CONFIG environment variable'),
])
def test_a_run_that_cannot_split_stops_with_one_line(data_root, vocab_v3, tmp_path, hp, env,
                                                     message):
  done = subprocess.run(
      _pretrain_cli(os.path.relpath(data_root, tmp_path), "bad",
                    dict(PRETRAIN_TINY, vocab_file=vocab_v3, **hp)),
      cwd=tmp_path, env=_env(**env), capture_output=True, text=True, timeout=120)
  assert done.returncode == 2, done.stdout[-1500:] + done.stderr[-1500:]
  assert message in done.stderr, done.stderr[-1500:]
  assert not (data_root / "models" / "bad").exists()


# --- the same update ------------------------------------------------------------------------

def test_one_finetuning_step_is_the_same_update_under_every_distribution(data_root):
  """none, mirrored over 2 CPU devices and 2 workers from the same checkpoint, on the same
  8 examples (the cache in file order; 2 workers read every other record), end with the
  same variables."""
  def step(name, hp, to_step, workers=False):
    cmd = [sys.executable, "-m", "tests.distributed_step", str(data_root), name,
           json.dumps(dict(FINETUNE_TINY, **hp)), str(to_step)]
    if workers:
      results = _workers(cmd, ROOT)
    else:
      done = subprocess.run(cmd, cwd=ROOT, env=_env(), capture_output=True, text=True,
                            timeout=240)
      results = [(done.returncode, done.stdout + done.stderr)]
    for rc, out in results:
      assert rc == 0, out[-3000:]
    return results[0][1]

  trial = "models/{}/finetuning_models/nsmc_model/trial_1"
  step("start", {}, 1)
  start = data_root / trial.format("start")
  for name in ("none", "mirrored", "workers"):
    # The same starting point (variables and Adam slots): start's step-1 checkpoint.
    (data_root / trial.format(name)).mkdir(parents=True)
    for f in start.glob("model.ckpt-1.*"):
      shutil.copy(f, data_root / trial.format(name) / f.name)
    (data_root / trial.format(name) / "checkpoint").write_text(
        'model_checkpoint_path: "model.ckpt-1"\n')
  step("none", {}, 2)
  step("mirrored", {"distribution": "mirrored", "num_cpu_devices": 2}, 2)
  out_workers = step("workers", {"distribution": "multi_worker"}, 2, workers=True)
  assert "sharded by record" in out_workers, out_workers[-2000:]

  before = _variables(start / "model.ckpt-1")
  want = _variables(data_root / trial.format("none") / "model.ckpt-2")
  moved = [k for k in want if "adam" not in k and k != "global_step"
           and not np.array_equal(want[k], before[k])]
  assert len(moved) > 10, moved  # the step changed the encoder and the head
  for name in ("mirrored", "workers"):
    got = _variables(data_root / trial.format(name) / "model.ckpt-2")
    assert sorted(got) == sorted(want)
    for k in want:
      np.testing.assert_allclose(got[k], want[k], rtol=1e-4, atol=1e-6,
                                 err_msg=f"{name}: {k}")


# --- 2 workers end to end -------------------------------------------------------------------

def test_two_workers_pretrain_once_into_one_checkpoint_that_export_and_finetuning_read(
    data_root, vocab_v3, tmp_path):
  hp = dict(PRETRAIN_TINY, vocab_file=vocab_v3, num_train_steps=6, save_checkpoints_steps=3,
            log_every_steps=2, do_eval=True, num_eval_steps=2,
            distribution="multi_worker")
  chief, worker = _workers(_pretrain_cli(data_root, "two", hp), tmp_path)
  for rc, out in (chief, worker):
    assert rc == 0, out[-3000:]
    assert "global step 6," in out  # not 12: the workers share the steps
    assert "(sharded by file)" in out  # 2 shards, 2 workers: one file each
  assert "results in" in chief[1] and "not the chief" in worker[1]
  model_dir = data_root / "models" / "two"
  assert sorted(p.name for p in model_dir.glob("model.ckpt-*.index")) == [
      "model.ckpt-0.index", "model.ckpt-3.index", "model.ckpt-6.index"]
  results = (model_dir / "results" / "unsup_results.json").read_text()
  assert list(json.loads(results)) == ["6"]  # the chief evaluated, once
  # The original's names: the model's variables, their Adam slots and the global step.
  config = PretrainingConfig("two", str(data_root), **hp)
  model = ckpt_lib.variables_of(lambda: pretrain_runner.build_for_variables(config))
  names = set(_variables(model_dir / "model.ckpt-6"))
  assert names == set(model) | {f"{n}/adam_{s}" for n in model for s in "mv"} | {
      "global_step"}

  export = subprocess.run(
      [sys.executable, os.path.join(ROOT, "export_hf.py"), "--checkpoint", str(model_dir),
       "--hparams", json.dumps(hp), "--vocab-file", vocab_v3, "--output-dir", "hf"],
      cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=240)
  assert export.returncode == 0, export.stdout[-2000:] + export.stderr[-2000:]
  assert (tmp_path / "hf" / "discriminator" / "model.safetensors").exists()
  tune = subprocess.run(
      [sys.executable, os.path.join(ROOT, "run_finetuning.py"), "--data-dir", str(data_root),
       "--model-name", "two", "--hparams", json.dumps(dict(
           FINETUNE_TINY, vocab_file=vocab_v3, embedding_size=32, num_train_epochs=1.0,
           model_hparam_overrides=PRETRAIN_TINY["model_hparam_overrides"],
           model_size="small", do_eval=False, allow_random_init=False))],
      cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=240)
  assert tune.returncode == 0, tune.stdout[-2000:] + tune.stderr[-2000:]
  assert f"encoder initialised from {model_dir}/model.ckpt-6" in tune.stdout


def test_a_killed_worker_stops_the_other_with_one_line_and_a_rerun_finishes(data_root,
                                                                            vocab_v3,
                                                                            tmp_path):
  hp = dict(PRETRAIN_TINY, vocab_file=vocab_v3, num_train_steps=400,
            save_checkpoints_steps=3, log_every_steps=50, distribution="multi_worker",
            worker_timeout_secs=15)
  model_dir = data_root / "models" / "killed"
  cmd = _pretrain_cli(data_root, "killed", hp)
  configs = _tf_configs()
  procs = [subprocess.Popen(cmd, cwd=tmp_path, env=_env(TF_CONFIG=c), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True) for c in configs]
  try:
    deadline = time.time() + 180
    while not (model_dir / "model.ckpt-6.index").exists():
      assert time.time() < deadline and all(p.poll() is None for p in procs), "no checkpoint"
      time.sleep(0.2)
    procs[1].send_signal(signal.SIGKILL)
    killed_at = time.time()
    out, _ = procs[0].communicate(timeout=120)
    waited = time.time() - killed_at
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
  assert procs[1].returncode == -signal.SIGKILL
  assert procs[0].returncode == 2, out[-3000:]
  assert "error: a worker of the cluster stopped" in out, out[-3000:]
  assert "start them all again" in out
  assert waited < 2 * 15 + 60, waited  # bounded by worker_timeout_secs, not a hang
  hp["num_train_steps"] = 30
  for rc, out in _workers(_pretrain_cli(data_root, "killed", hp), tmp_path):
    assert rc == 0, out[-3000:]
    assert "resuming from" in out and "global step 30," in out
  assert (model_dir / "model.ckpt-30.index").exists()
