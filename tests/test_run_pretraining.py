"""run_pretraining end to end on TFRecords built from real Korean text, with a tiny model:
training lowers the loss, evaluation writes every metric, a rerun resumes, a SIGKILL at any
moment is followed by a clean rerun, and each bad input stops with its message first."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

import pytest

import build_pretraining_dataset
import run_pretraining
from pretrain import runner
from pretrain.config import PretrainingConfig
from tests.conftest import ROOT, write_comments_corpus
from util import errors
from util import estimator as estimator_lib

SEQ = 32
TINY = {
    "model_size": "small", "embedding_size": 32, "max_seq_length": SEQ,
    "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 1,
                               "num_attention_heads": 1, "intermediate_size": 64},
    "generator_hidden_size": 1.0, "vocab_size": 35000,
    "train_batch_size": 8, "eval_batch_size": 8, "num_train_steps": 20,
    "num_warmup_steps": 2, "learning_rate": 1e-3, "save_checkpoints_steps": 10,
    "log_every_steps": 5, "num_eval_steps": 4, "iterations_per_loop": 5,
}
METRICS = ("masked_lm_accuracy", "masked_lm_loss", "sampled_masked_lm_accuracy", "disc_loss",
           "disc_auc", "disc_accuracy", "disc_precision", "disc_recall")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory, data_dir, vocab_v3):
  """DIR with pretrain_tfrecords/ built from 300 news comments (2 shards, length 32)."""
  return build_root(tmp_path_factory.mktemp("pretrain"), data_dir, vocab_v3)


def build_root(root, data_dir, vocab_v3):
  """Writes root/pretrain_tfrecords/ (data_root's) and returns root."""
  corpus = write_comments_corpus(root, 300)
  rc = build_pretraining_dataset.main([
      "--corpus-dir", str(corpus), "--vocab-file", vocab_v3,
      "--output-dir", str(root / "pretrain_tfrecords"), "--max-seq-length", str(SEQ),
      "--num-out-files", "2", "--no-progress"])
  assert rc in (0, None)
  return root


def hparams(vocab_v3, **kw):
  h = dict(TINY, vocab_file=vocab_v3)
  h.update(kw)
  return h


def run(root, name, hp):
  """pretrain/runner.train_or_eval in-process; returns (output dict, log lines)."""
  config = PretrainingConfig(name, str(root), **hp)
  lines = []
  out = runner.train_or_eval(config, log=lines.append)
  return config, out, lines


def scalar_summaries(model_dir):
  """{tag: [(step, value)]} from the host_call event files (.v2) in model_dir."""
  import tensorflow as tf
  out = {}
  for name in sorted(os.listdir(model_dir)):
    if not (name.startswith("events.") and name.endswith(".v2")):
      continue
    for event in tf.compat.v1.train.summary_iterator(os.path.join(model_dir, name)):
      for v in event.summary.value:
        value = tf.make_ndarray(v.tensor) if v.HasField("tensor") else v.simple_value
        out.setdefault(v.tag, []).append((event.step, float(value)))
  return {k: sorted(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def trained(data_root, vocab_v3):
  """20 training steps then evaluation, in one run."""
  return run(data_root, "tiny", hparams(vocab_v3, do_eval=True))


def test_training_lowers_loss_and_writes_summaries(trained):
  config, out, _ = trained
  assert out["global_step"] == 20
  assert os.path.exists(os.path.join(config.model_dir, "model.ckpt-20.index"))
  s = scalar_summaries(config.model_dir)
  for tag in ("loss", "gen_loss", "disc_loss", "lr"):
    assert [step for step, _ in s[tag]] == [0, 5, 10, 15], tag
  loss = [v for _, v in s["loss"]]
  # Initially the discriminator guesses (0.69 x disc_weight 50 dominates); it learns fast.
  assert loss[-1] < loss[0] - 5, loss
  lr = dict(s["lr"])
  assert lr[0] == 0.0 and lr[5] > lr[15] > 0  # warm-up from 0, then linear decay


def test_the_run_says_which_device_and_whether_the_fused_kernels_are_on(trained):
  _, _, lines = trained
  # This machine has no GPU; the fused XLA kernels are on by default off TPU.
  assert "training to step 20 (batch 8, length 32) on CPU (TensorFlow sees no GPU); fused " \
         "kernels on" in lines, lines


def test_eval_writes_every_metric(trained):
  config, out, _ = trained
  for key in METRICS:
    assert key in out["results"], key
    assert 0.0 <= out["results"][key] <= (100.0 if key.endswith("loss") else 1.0)
  assert out["results"]["disc_auc"] > 0.5  # better than chance already after 20 steps
  text = open(config.results_txt, encoding="utf-8").read()
  assert text.startswith("step 20: ")
  for key in METRICS:
    assert f"{key} = " in text
  with open(out["results_json"], encoding="utf-8") as f:
    saved = json.load(f)
  assert saved["20"]["disc_auc"] == pytest.approx(out["results"]["disc_auc"])


def test_rerun_resumes_from_the_checkpoint(trained, data_root, vocab_v3, tmp_path):
  config, _, _ = trained
  model_dir = tmp_path / "model"
  shutil.copytree(config.model_dir, model_dir)
  for name in os.listdir(model_dir):  # only this run's summaries below
    if name.startswith("events."):
      os.remove(model_dir / name)
  _, out, lines = run(data_root, "tiny", hparams(vocab_v3, num_train_steps=30,
                                                  model_dir=str(model_dir)))
  assert any("resuming from" in l and l.endswith("model.ckpt-20") for l in lines), lines
  assert out["global_step"] == 30
  steps = [step for step, _ in scalar_summaries(str(model_dir))["loss"]]
  assert steps == [20, 25]  # the global step went on from 20, not from 0


def _cli(root, name, hp):
  return [sys.executable, "run_pretraining.py", "--data-dir", str(root), "--model-name", name,
          "--hparams", json.dumps(hp)]


def _env():
  return dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")


def test_sigkill_during_training_then_rerun_finishes(data_root, vocab_v3):
  hp = hparams(vocab_v3, num_train_steps=60, save_checkpoints_steps=3, log_every_steps=20)
  model_dir = data_root / "models" / "killed"
  rng = random.Random(7)
  for _ in range(2):
    proc = subprocess.Popen(_cli(data_root, "killed", hp), cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
      # Kill once a checkpoint exists, at a random moment while checkpoints are being saved.
      deadline = time.time() + 120
      while not (model_dir / "checkpoint").exists() and proc.poll() is None:
        assert time.time() < deadline, "no checkpoint written"
        time.sleep(0.05)
      time.sleep(rng.uniform(0.0, 1.5))
    finally:
      proc.send_signal(signal.SIGKILL)
      proc.wait()
  assert proc.returncode == -signal.SIGKILL, "finished before the kill: test proves nothing"
  done = subprocess.run(_cli(data_root, "killed", hp), cwd=ROOT, env=_env(),
                        capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
  assert "resuming from" in done.stdout
  assert "global step 60" in done.stdout
  assert os.path.exists(model_dir / "model.ckpt-60.index")


def test_debug_mode_refuses_to_empty_a_model_dir_with_checkpoints(trained, data_root,
                                                                  vocab_v3, tmp_path):
  """Debug mode empties model_dir (as the original); one holding checkpoints only when
  asked with debug_overwrite. The CLI from another directory, with relative paths."""
  config, _, _ = trained
  work = tmp_path / "work"
  shutil.copytree(data_root / "pretrain_tfrecords", work / "data" / "pretrain_tfrecords")
  model_dir = _copy_model(config.model_dir, work / "data" / "models" / "tiny")
  before = sorted(os.listdir(model_dir))
  cmd = [sys.executable, str(ROOT / "run_pretraining.py"), "--data-dir", "data",
         "--model-name", "tiny", "--hparams", json.dumps(hparams(vocab_v3, debug=True))]
  done = subprocess.run(cmd, cwd=work, env=_env(), capture_output=True, text=True,
                        timeout=300)
  assert done.returncode == 2, done.stdout[-2000:] + done.stderr[-2000:]
  assert done.stderr.startswith("error: debug mode empties model_dir, and data/models/tiny "
                                "holds checkpoints (newest model.ckpt-20)"), done.stderr
  assert '"debug_overwrite": true' in done.stderr and "Traceback" not in done.stderr
  assert sorted(os.listdir(model_dir)) == before
  # Checkpoints recovery moved aside (never deleted) are kept from debug mode too.
  aside = tmp_path / "aside"
  os.makedirs(aside / estimator_lib.UNUSABLE_DIR / "20261204T000000Z")
  shutil.copy(os.path.join(model_dir, "model.ckpt-20.index"),
              aside / estimator_lib.UNUSABLE_DIR / "20261204T000000Z")
  with pytest.raises(errors.UserError, match=r"holds checkpoints \(newest model.ckpt-20\)"):
    estimator_lib.empty_for_debug(str(aside))
  assert (aside / estimator_lib.UNUSABLE_DIR).is_dir()
  logged = []
  estimator_lib.empty_for_debug(model_dir, overwrite=True, log=logged.append)
  assert not os.path.exists(model_dir) and logged == [f"debug: emptying {model_dir}"]


def _copy_model(src, dst):
  shutil.copytree(src, dst)
  return str(dst)


def test_recovery_skips_a_half_written_checkpoint(trained, tmp_path):
  """What a kill mid-save can leave: temp files and a short newest checkpoint."""
  config, _, _ = trained
  model_dir = _copy_model(config.model_dir, tmp_path / "model")
  data = os.path.join(model_dir, "model.ckpt-20.data-00000-of-00001")
  with open(data, "r+b") as f:
    f.truncate(os.path.getsize(data) // 2)
  os.makedirs(os.path.join(model_dir, "model.ckpt-30_temp"))
  open(os.path.join(model_dir, "model.ckpt-30_temp", "part-00000-of-00001.index"), "w").close()
  open(os.path.join(model_dir, "model.ckpt-30.index"), "w").close()
  logged = []
  resume = estimator_lib.recover_model_dir(model_dir, log=logged.append)
  assert resume == os.path.join(model_dir, "model.ckpt-10")
  import tensorflow as tf
  assert tf.train.latest_checkpoint(model_dir) == resume
  left = set(os.listdir(model_dir))
  assert not any(n.startswith(("model.ckpt-20", "model.ckpt-30")) for n in left), left
  assert "model.ckpt-10.index" in left


@pytest.mark.parametrize("case", ["no_data", "seq_length", "vocab_size", "vocab_missing"])
def test_bad_input_stops_before_any_graph(case, data_root, vocab_v3, capsys):
  hp = hparams(vocab_v3)
  expect = {
      "no_data": "no TFRecord files match",
      "seq_length": f"has length {SEQ} but max_seq_length is 64",
      "vocab_size": "vocab_size is 32200 but",
      "vocab_missing": "vocab file not found: ",
  }[case]
  if case == "no_data":
    hp["pretrain_tfrecords"] = str(data_root / "nowhere" / "pretrain_data.tfrecord*")
  elif case == "seq_length":
    hp["max_seq_length"] = 64
  elif case == "vocab_size":
    hp["vocab_size"] = 32200
  else:
    hp["vocab_file"] = str(data_root / "no-vocab.txt")
  name = f"bad-{case}"
  rc = run_pretraining.main(["--data-dir", str(data_root), "--model-name", name,
                             "--hparams", json.dumps(hp)])
  err = capsys.readouterr().err
  assert rc == 2
  assert err.startswith("error: ") and expect in err, err
  assert "Traceback" not in err
  assert not (data_root / "models" / name).exists()  # nothing written


def test_use_tpu_without_a_core_count_on_a_machine_without_a_tpu(data_root, vocab_v3,
                                                                 capsys):
  """The real TPU query on this machine ("local", no TPU core): one line naming the key."""
  hp = hparams(vocab_v3, use_tpu=True, tpu_name="local")
  rc = run_pretraining.main(["--data-dir", str(data_root), "--model-name", "no-tpu",
                             "--hparams", json.dumps(hp)])
  err = capsys.readouterr().err
  assert rc == 2 and len(err.strip().splitlines()) == 1, err
  assert err.startswith("error: use_tpu: the TPU system at tpu_name 'local' shows no TPU "
                        "core") and '"num_tpu_cores"' in err, err
  assert not (data_root / "models" / "no-tpu").exists()


def test_checkpoint_of_another_architecture_is_refused(trained, data_root, vocab_v3, capsys,
                                                       tmp_path):
  config, _, _ = trained
  model_dir = _copy_model(config.model_dir, tmp_path / "model")
  before = sorted(os.listdir(model_dir))
  overrides = dict(TINY["model_hparam_overrides"], hidden_size=64, intermediate_size=128)
  hp = hparams(vocab_v3, model_dir=model_dir, num_train_steps=40,
               model_hparam_overrides=overrides)
  rc = run_pretraining.main(["--data-dir", str(data_root), "--model-name", "tiny",
                             "--hparams", json.dumps(hp)])
  err = capsys.readouterr().err
  assert rc == 2
  assert "different architecture" in err
  assert "electra/encoder/layer_0/attention/self/query/kernel (32, 32) vs (64, 64)" in err, err
  # ... and says which sizes wrote it (read from the checkpoint's shapes).
  assert "its discriminator is built by --hparams" in err and '"hidden_size": 32' in err, err
  assert sorted(os.listdir(model_dir)) == before


def test_remote_paths_end_to_end(data_root, vocab_v3, tmp_path, monkeypatch):
  """DIR, the hparams file and the model_dir as URLs: TF's in-memory ram:// filesystem takes
  the code path gs:// takes (util/fileio + gfile), so no local-only call may touch them."""
  import tensorflow as tf
  monkeypatch.chdir(tmp_path)  # anything written to a local "ram:" path would land here
  remote = f"ram://koelectra-test-{os.getpid()}-{time.time_ns()}/data"  # fresh each run
  tf.io.gfile.makedirs(remote + "/pretrain_tfrecords")
  for name in os.listdir(data_root / "pretrain_tfrecords"):
    if (data_root / "pretrain_tfrecords" / name).is_dir():  # the builder's state dir
      continue
    tf.io.gfile.copy(str(data_root / "pretrain_tfrecords" / name),
                     f"{remote}/pretrain_tfrecords/{name}", overwrite=True)
  tf.io.gfile.copy(vocab_v3, remote + "/vocab.txt", overwrite=True)
  hp = dict(TINY, num_train_steps=10, do_eval=True)
  with tf.io.gfile.GFile(remote + "/hparams.json", "w") as f:
    f.write(json.dumps(hp))
  args = ["--data-dir", remote, "--model-name", "remote", "--hparams", remote + "/hparams.json"]
  assert run_pretraining.main(args) in (0, None)
  model_dir = remote + "/models/remote"
  assert tf.io.gfile.exists(model_dir + "/model.ckpt-10.index")
  with tf.io.gfile.GFile(model_dir + "/results/unsup_results.json") as f:
    assert set(METRICS) <= set(json.load(f)["10"])
  assert os.listdir(tmp_path) == []
  # A rerun with more steps resumes from the remote checkpoint.
  hp["num_train_steps"] = 15
  # A new name: ram:// appends when a file is opened for writing again (gs:// replaces).
  with tf.io.gfile.GFile(remote + "/hparams15.json", "w") as f:
    f.write(json.dumps(hp))
  assert run_pretraining.main(args[:-1] + [remote + "/hparams15.json"]) in (0, None)
  assert tf.io.gfile.exists(model_dir + "/model.ckpt-15.index")
  with tf.io.gfile.GFile(model_dir + "/results/unsup_results.json") as f:
    assert {"10", "15"} <= set(json.load(f))


@pytest.mark.parametrize("fused_kernels,use_tpu,expected", [
    (True, False, True), (False, False, False), (True, True, False)])
def test_fused_kernels_hparam_decides_the_graph(vocab_v3, data_root, fused_kernels, use_tpu,
                                                expected):
  """The hparam decides whether the train graph calls the XLA-compiled kernels (the
  benchmark's plain-ops variants once ran fused because the runner reset a module flag);
  use_tpu always means the plain ops."""
  import tensorflow.compat.v1 as tf
  config = PretrainingConfig(
      "flags", str(data_root), **hparams(vocab_v3, fused_kernels=fused_kernels,
                                         use_tpu=use_tpu))
  model_fn = runner.model_fn_builder(config)
  graph = tf.Graph()
  with graph.as_default():
    features = {k: tf.zeros([2, config.max_seq_length], tf.int32)
                for k in ("input_ids", "input_mask", "segment_ids")}
    model_fn(features, None, tf.estimator.ModeKeys.TRAIN, {})
  calls = [op for op in graph.get_operations()
           if op.type in ("PartitionedCall", "StatefulPartitionedCall")]
  assert bool(calls) is expected, len(calls)
