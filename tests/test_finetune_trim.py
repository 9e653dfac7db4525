"""Trimmed padding (finetune/model.py): the same outputs, losses and gradients as the
full-length graph, on real Korean features; evaluation caches sorted by length and put
back in feature order."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from finetune import preprocessing
from finetune import runner
from finetune.config import FinetuningConfig
from finetune import features as features_lib
from finetune import model as model_lib
from finetune import readers
from model import tokenization
from tests import finetune_data

TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
        "intermediate_size": 64}
NO_DROPOUT = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}


def _config(tmp_path, vocab, task, **kw):
  hp = dict(task_names=[task], vocab_file=vocab, allow_random_init=True,
            model_hparam_overrides=dict(TINY, **NO_DROPOUT), embedding_size=16)
  hp.update(kw)
  return FinetuningConfig("m", str(tmp_path), **hp)


def _batch(tmp_path, vocab, task, length, n=6):
  """The first n features of a task's shared rows, stacked [n, ...]."""
  if task == "korquad":
    import shutil
    from tests.conftest import shared_data_dir
    (tmp_path / "finetuning_data" / "korquad").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shared_data_dir() / finetune_data.KORQUAD_SHARED,
                    tmp_path / "finetuning_data" / "korquad" / "KorQuAD_v1.0_train.json")
  else:
    finetune_data.layout(tmp_path, task, rows=32)
  read = readers.read_examples(task, str(tmp_path), "train")
  tok = tokenization.FastTokenizer(vocab)
  fs = features_lib.convert_examples(task, read.examples, tok, length)
  feats = fs.features[:n]
  return {k: np.stack([f[k] for f in feats]).astype(
      np.float32 if np.asarray(feats[0][k]).dtype.kind == "f" else np.int32)
      for k in feats[0]}


def _run_both(config, batch, is_training, fused):
  """(full-length results, trimmed results, trimmed length) of one set of weights."""
  with tf.Graph().as_default():
    tf.set_random_seed(3)
    feats = {k: tf.constant(v) for k, v in batch.items()}
    results = []
    models = []
    for trim in (False, True):
      with tf.variable_scope(tf.get_variable_scope(), reuse=tf.AUTO_REUSE):
        m = model_lib.FinetuningModel(config, feats, is_training, fused=fused, trim=trim)
      models.append(m)
      grads = tf.gradients(m.loss, tf.trainable_variables())
      results.append({"loss": m.loss, "per_example": m.per_example_loss,
                      "outputs": m.outputs,
                      "grads": [tf.convert_to_tensor(g) for g in grads if g is not None]})
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      full, trimmed, length = sess.run([results[0], results[1], models[1].length])
  assert models[1].trimmed and not models[0].trimmed
  return full, trimmed, length


def _close(a, b, tol=2e-5):
  np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


@pytest.mark.parametrize("task,head,joint,fused", [
    ("nsmc", "hf", False, True),
    ("nsmc", "electra", False, False),
    ("korsts", "electra", False, True),
    ("naver-ner", "hf", False, True),
    ("naver-ner", "electra", False, True),
    ("korquad", "electra", False, True),
    ("korquad", "electra", True, False),
])
@pytest.mark.parametrize("is_training", [False, True])
def test_trimmed_equals_full_length(tmp_path, vocab_v3, task, head, joint, fused,
                                    is_training):
  length = 512 if task == "korquad" else 128
  batch = _batch(tmp_path, vocab_v3, task, length)
  real = batch["input_mask"].sum(1).max()
  config = _config(tmp_path, vocab_v3, task, classifier_head=head, joint_prediction=joint,
                   max_seq_length=length)
  full, trimmed, cut = _run_both(config, batch, is_training, fused)
  step = model_lib.trim_multiple(length)
  assert cut == min(length, -(-real // step) * step) and cut < length
  _close(full["loss"], trimmed["loss"])
  _close(full["per_example"], trimmed["per_example"])
  for k, v in full["outputs"].items():
    w = trimmed["outputs"][k]
    assert v.shape == w.shape, k
    if k in ("start_logits", "end_logits", "end_logits_given_start"):
      # Past the trimmed length the full graph has its masked scores; the trimmed one
      # puts a lower constant there. Both are below every allowed position.
      v, w = v[..., :cut], w[..., :cut]
      if k == "start_logits":
        assert full["outputs"][k][..., cut:].max() < -500
    elif k == "logits" and v.ndim == 3 and head == "hf":
      v, w = v[:, :cut], w[:, :cut]                 # per position: padding not decoded
    _close(v, w, 1e-4)
  if is_training:
    for g_full, g_trim in zip(full["grads"], trimmed["grads"]):
      _close(np.asarray(g_full), np.asarray(g_trim), 1e-4)


def test_hf_span_head_is_never_trimmed(tmp_path, vocab_v3):
  config = _config(tmp_path, vocab_v3, "korquad", classifier_head="hf", max_seq_length=256)
  assert not model_lib.can_trim(config, True)
  batch = _batch(tmp_path, vocab_v3, "korquad", 256, n=2)
  with tf.Graph().as_default():
    m = model_lib.FinetuningModel(config, {k: tf.constant(v) for k, v in batch.items()},
                                  False, trim=True)
  assert not m.trimmed


def test_trim_multiple_bounds_the_shapes():
  for length in (32, 64, 128, 256, 384, 512):
    step = model_lib.trim_multiple(length)
    assert step >= model_lib.MIN_TRIM_MULTIPLE
    assert -(-length // step) <= model_lib.TRIM_SHAPES


def test_in_feature_order_restores_rows():
  ids = np.array([3, 0, 2, 1, -1, -1])
  outputs = {"example_id": ids, "logits": np.arange(12.0).reshape(6, 2)}
  back = preprocessing.in_feature_order(outputs)
  np.testing.assert_array_equal(back["example_id"], [0, 1, 2, 3, -1, -1])
  np.testing.assert_array_equal(back["logits"][:4], outputs["logits"][[1, 3, 2, 0]])
  # KorQuAD: several features per question, ordered by feature_id.
  span = {"example_id": np.array([1, 0, 0, -1]), "feature_id": np.array([2, 1, 0, 0]),
          "start_logits": np.arange(4.0)}
  back = preprocessing.in_feature_order(span)
  np.testing.assert_array_equal(back["feature_id"], [0, 1, 2, 0])
  np.testing.assert_array_equal(back["start_logits"], [2.0, 1.0, 0.0, 3.0])


def test_eval_cache_is_sorted_by_length(tmp_path, vocab_v3):
  from util import tfrecord_writer
  finetune_data.layout(tmp_path, "nsmc", rows=64)
  config = _config(tmp_path, vocab_v3, "nsmc", max_seq_length=64, do_eval=True,
                   dev_slice_fraction=0.1)
  tok = tokenization.FastTokenizer(vocab_v3)
  split = preprocessing.prepare_split(config, "dev", tok, 4, log=lambda *a: None)
  records = [tfrecord_writer.decode_example(r)
             for r in tfrecord_writer.read_records(split.path)]
  n = len(split.feature_set.features)
  lengths = [sum(r["input_mask"]) for r in records[:n]]
  assert lengths == sorted(lengths) and len(set(lengths)) > 1
  assert sorted(r["example_id"][0] for r in records[:n]) == list(range(n))
  assert all(r["example_id"][0] == -1 for r in records[n:])
  assert len(records) % 4 == 0
  unsorted = _config(tmp_path, vocab_v3, "nsmc", max_seq_length=64, do_eval=True,
                     dev_slice_fraction=0.1,
                     trim_padding=False, preprocessed_data_dir=str(tmp_path / "plain"))
  plain = preprocessing.prepare_split(unsorted, "dev", tok, 4, log=lambda *a: None)
  ids = [tfrecord_writer.decode_example(r)["example_id"][0]
         for r in tfrecord_writer.read_records(plain.path)]
  assert ids[:n] == list(range(n))


def test_predictions_identical_with_and_without_trimming(tmp_path, vocab_v3, monkeypatch):
  """The whole runner: train a tiny model with trimmed batches, then predict the dev
  slice from that checkpoint with and without trimming (length-ordered cache vs file
  order): the same predictions file, logits equal to float rounding."""
  import json
  finetune_data.layout(tmp_path, "nsmc", rows=96)
  base = dict(task_names=["nsmc"], vocab_file=vocab_v3, allow_random_init=True,
              model_hparam_overrides=TINY, embedding_size=16, max_seq_length=128,
              train_batch_size=8, predict_batch_size=8, num_train_epochs=1.0, seed=5,
              save_checkpoints_steps=1000, dev_slice_fraction=0.1)
  captured = []
  real_predict = runner.predict

  def capture(estimator, split, features):
    out = real_predict(estimator, split, features)
    captured.append(out)
    return out

  monkeypatch.setattr(runner, "predict", capture)
  lines = {}
  for trim in (True, False):   # the second run finds training done: it only predicts
    config = FinetuningConfig("m", str(tmp_path), trim_padding=trim,
                                                   **base)
    runner.run(config, log=lambda *a: None)
    pred = tmp_path / "models/m/results/predictions/nsmc.dev.1.jsonl"
    lines[trim] = [json.loads(x) for x in pred.read_text(encoding="utf-8").splitlines()]
  assert lines[True] == lines[False] and len(lines[True]) > 5
  n = len(lines[True])
  trimmed, full = captured
  np.testing.assert_array_equal(trimmed["example_id"][:n], np.arange(n))
  np.testing.assert_array_equal(full["example_id"][:n], np.arange(n))
  assert np.ptp(trimmed["logits"][:n]) > 0
  np.testing.assert_allclose(trimmed["logits"][:n], full["logits"][:n], rtol=1e-4,
                             atol=1e-5)
