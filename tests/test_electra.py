"""PretrainingModel: variables vs the original checkpoints, sharing, labels, sampling
options, metrics and a short training run on real Korean text."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

import configure_pretraining as cp
from model import optimization
from pretrain import electra
from tests.test_masking import korean_sequences

REFERENCE = {"koelectra-small-v1": "electra_variables_koelectra_small.txt",
             "koelectra-base-v1": "electra_variables_base_gen_one_third.txt"}
TINY = dict(model_size="small", embedding_size=32, generator_hidden_size=0.5,
            model_hparam_overrides={"hidden_size": 64, "num_hidden_layers": 2,
                                    "num_attention_heads": 2, "intermediate_size": 256},
            max_seq_length=64, train_batch_size=8, learning_rate=1e-3, num_warmup_steps=0,
            num_train_steps=1000, vocab_size=35000)


def _features(batch, seq_len):
  return {k: tf.placeholder(tf.int32, [batch, seq_len], name=k)
          for k in ("input_ids", "input_mask", "segment_ids")}


def _feed(feats, ids, mask, seg):
  return {feats["input_ids"]: ids, feats["input_mask"]: mask, feats["segment_ids"]: seg}


def _variables():
  return {v.op.name: v.shape.as_list() for v in tf.global_variables()}


@pytest.fixture(scope="module")
def korean(data_dir, vocab_v3):
  return korean_sequences(data_dir, vocab_v3, 32, 64)


@pytest.mark.parametrize("preset", sorted(REFERENCE))
def test_variables_equal_original_checkpoint(preset, data_dir, vocab_v1):
  ref_file = data_dir.parent / "reference" / REFERENCE[preset]
  expected = {}
  for line in ref_file.read_text().splitlines():
    name, _, shape = line.strip().partition(" ")
    if name and name != "global_step":
      expected[name] = [int(x) for x in shape.split("x")] if shape else []
  with tf.Graph().as_default():
    c = cp.PretrainingConfig("m", "/d", preset=preset, vocab_file=vocab_v1,
                             max_seq_length=128)
    m = electra.PretrainingModel(c, _features(2, 128), is_training=True)
    got = _variables()
    # Exactly one token-embedding table, used by both generator and discriminator.
    tables = [n for n in got if n.endswith("word_embeddings")]
    assert tables == ["electra/embeddings/word_embeddings"]
    assert m.generator.get_embedding_table() is m.discriminator.get_embedding_table()
  assert got == expected


def test_untied_generator_embeddings_make_a_second_table(vocab_v3):
  with tf.Graph().as_default():
    c = cp.PretrainingConfig("m", "/d", vocab_file=vocab_v3, untied_generator_embeddings=True,
                             **TINY)
    m = electra.PretrainingModel(c, _features(8, 64), is_training=True)
    tables = sorted(n for n in _variables() if n.endswith("word_embeddings"))
    assert tables == ["electra/embeddings/word_embeddings",
                      "generator/embeddings/word_embeddings"]
    assert m.generator.get_embedding_table() is not m.discriminator.get_embedding_table()


def test_loss_falls_on_real_korean_text(korean, vocab_v3):
  ids, mask, seg = korean
  with tf.Graph().as_default():
    tf.set_random_seed(0)
    c = cp.PretrainingConfig("m", "/d", vocab_file=vocab_v3, **TINY)
    feats = _features(8, 64)
    m = electra.PretrainingModel(c, feats, is_training=True)
    train_op = optimization.create_optimizer(
        m.total_loss, c.learning_rate, c.num_train_steps,
        weight_decay_rate=c.weight_decay_rate, use_tpu=False,
        warmup_steps=c.num_warmup_steps, lr_decay_power=c.lr_decay_power)
    fetch = [m.total_loss, m.mlm_loss, m.disc_loss]
    hist = []
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for step in range(30):
        b = slice(8 * (step % 4), 8 * (step % 4) + 8)
        hist.append(sess.run(fetch + [train_op], _feed(feats, ids[b], mask[b], seg[b]))[:3])
  hist = np.array(hist)
  assert np.all(np.isfinite(hist))
  np.testing.assert_allclose(hist[:, 0], hist[:, 1] + 50.0 * hist[:, 2], rtol=1e-5)
  first, last = hist[:3].mean(0), hist[-5:].mean(0)
  assert first[1] > 9.0  # ~ln(35000) for an untrained generator
  assert last[0] < 0.75 * first[0], hist[:, 0]
  assert last[1] < first[1] - 1.0, hist[:, 1]
  assert last[2] < first[2], hist[:, 2]


def test_labels_fake_inputs_and_metrics(korean, vocab_v3):
  ids, mask, seg = korean
  with tf.Graph().as_default():
    tf.set_random_seed(1)
    c = cp.PretrainingConfig("m", "/d", vocab_file=vocab_v3, **TINY)
    feats = _features(8, 64)
    m = electra.PretrainingModel(c, feats, is_training=False)
    metrics = m.metric_fn(**m.metric_fn_inputs)
    assert fn_shapes_have_batch_first(m.metric_fn_inputs, 8)
    with tf.Session() as sess:
      sess.run([tf.global_variables_initializer(), tf.local_variables_initializer()])
      feed = _feed(feats, ids[:8], mask[:8], seg[:8])
      vals, _ = sess.run([(m.fake_input_ids, m.disc_labels, m.sampled_ids,
                           m.masked_inputs._asdict(), m.metric_fn_inputs),
                          {k: v[1] for k, v in metrics.items()}], feed)
      results = sess.run({k: v[0] for k, v in metrics.items()})
  fake, labels, sampled, masked, d = vals
  pos, w = masked["masked_lm_positions"], masked["masked_lm_weights"]
  written = np.zeros_like(ids[:8], bool)
  for r in range(8):
    written[r, pos[r][w[r] > 0]] = True
    np.testing.assert_array_equal(fake[r, pos[r][w[r] > 0]], sampled[r][w[r] > 0])
  np.testing.assert_array_equal(fake[~written], ids[:8][~written])
  np.testing.assert_array_equal(labels, (fake != ids[:8]).astype(np.int32))
  # Metrics against numpy on the same tensors.
  mw = d["masked_lm_weights"] > 0
  np.testing.assert_allclose(results["masked_lm_accuracy"],
                             np.mean(d["masked_lm_preds"][mw] == d["masked_lm_ids"][mw]),
                             atol=1e-6)
  np.testing.assert_allclose(results["masked_lm_loss"], d["mlm_loss"][mw].mean(), rtol=1e-5)
  np.testing.assert_allclose(results["sampled_masked_lm_accuracy"],
                             np.mean(d["sampled_tokids"][mw] == d["masked_lm_ids"][mw]),
                             atol=1e-6)
  im = d["input_mask"] > 0
  lab, pred, prob = d["disc_labels"][im], d["disc_preds"][im], d["disc_probs"][im]
  np.testing.assert_allclose(results["disc_accuracy"], np.mean(lab == pred), atol=1e-6)
  np.testing.assert_allclose(results["disc_loss"], d["disc_loss"].mean(), rtol=1e-5)
  if pred.sum():
    np.testing.assert_allclose(results["disc_precision"], lab[pred == 1].mean(), atol=1e-6)
  np.testing.assert_allclose(results["disc_recall"], pred[lab == 1].mean(), atol=1e-6)
  pos_s, neg_s = prob[lab == 1], prob[lab == 0]
  auc = np.mean((pos_s[:, None] > neg_s[None]) + 0.5 * (pos_s[:, None] == neg_s[None]))
  assert abs(results["disc_auc"] - auc) < 0.03


def fn_shapes_have_batch_first(inputs, batch):
  """TPUEstimator concatenates metric inputs across cores on axis 0."""
  return all(t.shape.as_list()[0] == batch for t in inputs.values())


@pytest.mark.parametrize("disallow", [False, True])
def test_uniform_generator_and_disallow_correct(disallow, korean, vocab_v3, tmp_path):
  # A 100-token vocabulary (the first lines of the real v3 vocab) makes a uniform sample
  # hit the original token ~1% of the time, so the check below can fail.
  vocab = tmp_path / "vocab.txt"
  with open(vocab_v3, encoding="utf-8") as f:
    vocab.write_text("".join(next(f) for _ in range(100)), encoding="utf-8")
  ids, mask, seg = korean
  ids = np.where(ids >= 100, ids % 95 + 5, ids).astype(np.int32)
  with tf.Graph().as_default():
    tf.set_random_seed(2)
    c = cp.PretrainingConfig("m", "/d", vocab_file=str(vocab), uniform_generator=True,
                             disallow_correct=disallow, **dict(TINY, vocab_size=100))
    feats = _features(8, 64)
    m = electra.PretrainingModel(c, feats, is_training=True)
    assert not [n for n in _variables() if n.startswith(("generator/", "generator_pred"))]
    same = 0
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for i in range(16):
        b = slice(8 * (i % 4), 8 * (i % 4) + 8)
        s, t, w = sess.run([m.sampled_ids, m.masked_inputs.masked_lm_ids,
                            m.masked_inputs.masked_lm_weights],
                           _feed(feats, ids[b], mask[b], seg[b]))
        same += int(((s == t) & (w > 0)).sum())
  if disallow:
    assert same == 0
  else:
    assert same > 0


def test_mlm_only_objective_and_bf16(vocab_v3):
  with tf.Graph().as_default():
    c = cp.PretrainingConfig("m", "/d", vocab_file=vocab_v3, electra_objective=False,
                             use_bf16=True, **TINY)
    m = electra.PretrainingModel(c, _features(8, 64), is_training=True)
    names = _variables()
    assert m.disc_loss is None and m.discriminator is None
    assert m.total_loss is not None and set(m.losses) == {"mlm_loss", "total_loss"}
    assert not [n for n in names if n.startswith(("generator/", "discriminator_"))]
    assert "electra/encoder/layer_1/output/dense/kernel" in names
    assert names["generator_predictions/dense/kernel"] == [64, 32]
    assert set(m.metric_fn(**m.metric_fn_inputs)) == {"masked_lm_accuracy", "masked_lm_loss"}
    # use_bf16 reaches the encoder: its matmuls run in bfloat16.
    ops = tf.get_default_graph().get_operations()
    assert any(op.type in ("MatMul", "BatchMatMulV2") and op.outputs[0].dtype == tf.bfloat16
               for op in ops if op.name.startswith("electra/encoder"))


def _losses_and_grads(fused, korean, vocab_v3):
  """Losses, samples and gradients of every variable, fixed variable values and seed."""
  ids, mask, seg = korean
  # No dropout: the fused kernels draw their dropout bits differently (fused_ops.py).
  tiny = dict(TINY, model_hparam_overrides=dict(
      TINY["model_hparam_overrides"], hidden_dropout_prob=0.0,
      attention_probs_dropout_prob=0.0))
  with tf.Graph().as_default():
    c = cp.PretrainingConfig("m", "/d", vocab_file=vocab_v3, fused_kernels=fused, **tiny)
    feats = _features(8, 64)
    m = electra.PretrainingModel(c, feats, is_training=True, seed=7)
    tvars = sorted(tf.trainable_variables(), key=lambda v: v.name)
    grads = tf.gradients(m.total_loss, tvars)
    assigns = [v.assign(0.05 * tf.sin(tf.reshape(
        tf.range(int(np.prod(v.shape)), dtype=tf.float32) * (i + 1.3), v.shape)) +
        (1.0 if v.name.endswith("gamma:0") else 0.0)) for i, v in enumerate(tvars)]
    with tf.Session() as sess:
      sess.run(assigns)
      out = sess.run([m.mlm_loss, m.disc_loss, m.sampled_ids, m.mlm_output.per_example_loss]
                     + grads, _feed(feats, ids[:8], mask[:8], seg[:8]))
  return out[:4], dict(zip([v.name for v in tvars], out[4:]))


def test_fused_pretraining_graph_equals_plain(korean, vocab_v3):
  """fused_kernels (the CPU/GPU graph) against the plain one (the original's, TPU's):
  the same losses, samples and gradients to float rounding."""
  (mlm_f, disc_f, samples_f, per_f), grads_f = _losses_and_grads(True, korean, vocab_v3)
  (mlm_p, disc_p, samples_p, per_p), grads_p = _losses_and_grads(False, korean, vocab_v3)
  np.testing.assert_allclose(per_f, per_p, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose([mlm_f, disc_f], [mlm_p, disc_p], rtol=1e-5)
  assert np.array_equal(samples_f, samples_p)
  assert grads_f.keys() == grads_p.keys()
  # Relative to each gradient's size, but at least 1% of the largest: the attention key
  # biases' exact gradient is 0 (softmax ignores a constant per row), so both graphs
  # give only rounding noise there.
  floor = 0.01 * max(np.abs(g).max() for g in grads_p.values())
  errors = {name: np.abs(grads_f[name] - g).max() / max(np.abs(g).max(), floor)
            for name, g in grads_p.items()}
  worst = max(errors, key=errors.get)
  assert errors[worst] < 1e-4, (worst, errors[worst])
