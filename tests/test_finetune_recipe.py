"""KoELECTRA's training recipe, step for step: every epoch a new seeded order of the whole
training set, ceil(N / batch) steps per epoch with the last partial batch (full batches only
on TPU), and the whole training file when no dev slice is asked for."""
import json
import math

import pytest
import tensorflow.compat.v1 as tf

from finetune import preprocessing
from finetune import runner
from finetune.config import FinetuningConfig
from tests.conftest import shared_data_dir
from tests.finetune_data import layout, write_task_file
from util import tfrecord_input

TINY = {"max_seq_length": 32, "embedding_size": 16, "train_batch_size": 8,
        "allow_random_init": True, "log_every_steps": 1000,
        "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 1,
                                   "num_attention_heads": 2, "intermediate_size": 64}}


def _train_split(tmp_path, rows, **hp):
  """The cached training split of the first `rows` NSMC rows, and its config."""
  layout(tmp_path, "nsmc", rows=rows)
  (tmp_path / "vocab.txt").write_bytes(
      (shared_data_dir() / "vocab" / "v3" / "vocab.txt").read_bytes())
  config = FinetuningConfig("m", str(tmp_path), **dict(TINY, task_names=["nsmc"], **hp))
  split = preprocessing.prepare_split(config, "train", preprocessing.tokenizer_for(config),
                                      config.train_batch_size, log=lambda *a: None)
  return config, split


def _epochs(config, split, seed, num_epochs):
  """The example ids of each epoch's batches, read from the training input_fn."""
  with tf.Graph().as_default():
    input_fn = runner.train_input_fn(config, split, preprocessing.record_features(config),
                                     seed)
    batches = tf.data.make_one_shot_iterator(
        input_fn({"batch_size": config.train_batch_size})).get_next()
    per_epoch = runner.train_steps_per_epoch(config, split.num_records)
    with tf.Session() as sess:
      return [[sess.run(batches)["example_id"].tolist() for _ in range(per_epoch)]
              for _ in range(num_epochs)]


def test_each_epoch_is_a_new_order_and_the_seed_repeats_them(tmp_path):
  config, split = _train_split(tmp_path, rows=21)
  assert split.num_records == 21
  first = _epochs(config, split, seed=7, num_epochs=3)
  for epoch in first:   # ceil(21 / 8) = 3 batches: 8, 8 and the 5 left over
    assert [len(b) for b in epoch] == [8, 8, 5]
    assert sorted(sum(epoch, [])) == list(range(21))
  orders = [sum(epoch, []) for epoch in first]
  assert orders[0] != orders[1] != orders[2] != orders[0]
  assert _epochs(config, split, seed=7, num_epochs=3) == first
  assert _epochs(config, split, seed=8, num_epochs=1)[0] != first[0]


def test_tpu_batches_stay_full_and_the_original_streams(tmp_path):
  config, split = _train_split(tmp_path, rows=21)
  config.use_tpu = True   # only the input side: full batches, 21 mod 8 = 5 left out
  assert runner.train_steps_per_epoch(config, 21) == 2
  epochs = _epochs(config, split, seed=7, num_epochs=2)
  for epoch in epochs:
    assert [len(b) for b in epoch] == [8, 8] and len(set(sum(epoch, []))) == 16
  assert set(sum(epochs[0], [])) != set(sum(epochs[1], []))   # other 5 left out
  electra, _ = _train_split(tmp_path, rows=21, preset="electra")
  assert not electra.reshuffle_each_epoch and not electra.keep_partial_batch
  assert runner.train_steps_per_epoch(electra, 21) == 2
  stream = _epochs(electra, split, seed=7, num_epochs=3)
  assert all(len(b) == 8 for epoch in stream for b in epoch)


def test_steps_are_ceil_n_over_batch_times_epochs_on_the_whole_file(tmp_path):
  """run: 37 NSMC rows (the whole file: no dev slice), batch 8, 2 epochs -> 5 x 2 steps."""
  layout(tmp_path, "nsmc", rows=37)
  (tmp_path / "vocab.txt").write_bytes(
      (shared_data_dir() / "vocab" / "v3" / "vocab.txt").read_bytes())
  config = FinetuningConfig("m", str(tmp_path), **dict(
      TINY, task_names=["nsmc"], num_train_epochs=2.0, do_eval=False, do_test=True,
      seed=3))
  lines = []
  _, trials = runner.run(config, log=lines.append)
  assert any("nsmc train: 37 examples from ratings_train.txt, 0 skipped" in l
             for l in lines), lines
  assert trials[0]["global_step"] == math.ceil(37 / 8) * 2 == 10
  with open(config.results_dir + "/nsmc_results.json", encoding="utf-8") as f:
    assert json.load(f)["splits"]["test"]


def test_do_eval_without_a_dev_file_or_slice_is_an_error(tmp_path):
  from util import errors
  data = shared_data_dir() / "hate-speech" / "koelectra" / "train.tsv"
  write_task_file(tmp_path, "hate-speech", "train.tsv", data.read_bytes())
  (tmp_path / "vocab.txt").write_bytes(
      (shared_data_dir() / "vocab" / "v3" / "vocab.txt").read_bytes())
  config = FinetuningConfig("m", str(tmp_path), **dict(TINY, task_names=["hate-speech"]))
  tok = preprocessing.tokenizer_for(config)
  with pytest.raises(errors.UserError, match="hate-speech has no dev file"):
    preprocessing.prepare_split(config, "dev", tok, 8, log=lambda *a: None)
  train = preprocessing.prepare_split(config, "train", tok, 8, log=lambda *a: None)
  assert train.num_records == 7896   # the whole file: 7,896 rows


def test_raw_data_dir_is_where_the_task_files_are_read(tmp_path):
  """The hparam raw_data_dir replaces DIR/finetuning_data (it used to be ignored)."""
  from util import errors
  elsewhere = tmp_path / "elsewhere"
  layout(elsewhere, "nsmc", rows=20)
  run_dir = tmp_path / "run"
  run_dir.mkdir()
  (run_dir / "vocab.txt").write_bytes(
      (shared_data_dir() / "vocab" / "v3" / "vocab.txt").read_bytes())
  config = FinetuningConfig("m", str(run_dir), **dict(
      TINY, task_names=["nsmc"], raw_data_dir=str(elsewhere / "finetuning_data")))
  tok = preprocessing.tokenizer_for(config)
  split = preprocessing.prepare_split(config, "train", tok, 8, log=lambda *a: None)
  assert split.num_records == 20
  default = FinetuningConfig("m", str(run_dir), **dict(TINY, task_names=["nsmc"]))
  with pytest.raises(errors.UserError, match=str(run_dir / "finetuning_data" / "nsmc")):
    preprocessing.prepare_split(default, "train", tok, 8, log=lambda *a: None)
