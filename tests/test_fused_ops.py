"""The XLA-fused GELU / LayerNorm / attention softmax+dropout (model/modeling.py) against
the plain TF ops they replace: same outputs and gradients up to float rounding."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from model import modeling


def _tiny_config(vocab_size, dropout):
  return modeling.BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                             num_attention_heads=2, intermediate_size=64,
                             hidden_dropout_prob=dropout,
                             attention_probs_dropout_prob=dropout, embedding_size=16)


def _run_model(fused, ids, mask, vocab_size, use_bf16):
  """Sequence output and gradients of every variable, with fixed variable values."""
  modeling.FUSED_ELEMENTWISE = fused
  try:
    with tf.Graph().as_default():
      model = modeling.BertModel(_tiny_config(vocab_size, 0.0), is_training=True,
                                 input_ids=tf.constant(ids), input_mask=tf.constant(mask),
                                 use_one_hot_embeddings=False, use_bf16=use_bf16)
      out = model.get_sequence_output()
      weights = tf.cos(tf.reshape(tf.range(tf.size(out), dtype=tf.float32), out.shape))
      loss = tf.reduce_sum(out * weights)
      tvars = sorted(tf.trainable_variables(), key=lambda v: v.name)
      grads = tf.gradients(loss, tvars)
      # Deterministic, non-trivial values (LayerNorm gamma/beta away from 1/0).
      assigns = [v.assign(0.05 * tf.sin(tf.reshape(
          tf.range(int(np.prod(v.shape)), dtype=tf.float32) * (i + 1.3), v.shape)) +
          (1.0 if v.name.endswith("gamma:0") else 0.0)) for i, v in enumerate(tvars)]
      with tf.Session() as sess:
        sess.run(assigns)
        return sess.run(out), dict(zip([v.name for v in tvars], sess.run(grads)))
  finally:
    modeling.FUSED_ELEMENTWISE = True


@pytest.mark.parametrize("use_bf16", [False, True])
def test_fused_model_matches_plain_ops(vocab_v3, use_bf16):
  from model import tokenization
  tok = tokenization.FullTokenizer(vocab_v3)
  texts = ["대한민국 헌법 제1조 대한민국은 민주공화국이다.", "모든 권력은 국민으로부터 나온다."]
  seq = 12
  ids = np.zeros([2, seq], np.int32)
  mask = np.zeros([2, seq], np.int32)
  for row, text in enumerate(texts):
    pieces = tok.convert_tokens_to_ids(["[CLS]"] + tok.tokenize(text)[:seq - 2] + ["[SEP]"])
    ids[row, :len(pieces)] = pieces
    mask[row, :len(pieces)] = 1
  assert mask[1].sum() < seq  # one row is padded, so the attention mask matters
  vocab_size = len(tok.vocab)
  out_f, grads_f = _run_model(True, ids, mask, vocab_size, use_bf16)
  out_p, grads_p = _run_model(False, ids, mask, vocab_size, use_bf16)
  # bfloat16 keeps 8 mantissa bits: a few ulps of rounding accumulate over two layers.
  tol = 5e-2 if use_bf16 else 2e-5
  np.testing.assert_allclose(out_f, out_p, rtol=tol, atol=tol)
  assert set(grads_f) == set(grads_p)
  for name, g in grads_p.items():
    g = np.asarray(g.values if hasattr(g, "values") else g)
    gf = np.asarray(grads_f[name].values if hasattr(grads_f[name], "values")
                    else grads_f[name])
    scale = max(np.abs(g).max(), 1e-3)
    assert np.abs(gf - g).max() <= tol * scale, name


def test_fused_attention_dropout_keeps_rate_and_masks_gradient():
  with tf.Graph().as_default():
    tf.set_random_seed(7)
    scores = tf.constant(np.sin(np.arange(8 * 2 * 32 * 32)).reshape(8, 2, 32, 32),
                         tf.float32)
    dropped = modeling._softmax_dropout_fused(scores, None, 0.5, 0.1, tf.float32)
    plain = tf.nn.softmax(scores * 0.5)
    grad = tf.gradients(tf.reduce_sum(dropped * tf.cos(scores)), scores)[0]
    with tf.Session() as sess:
      d, p, g = sess.run([dropped, plain, grad])
  zero = d == 0
  assert 0.08 < zero.mean() < 0.12  # rate 0.1 over 16k probabilities
  np.testing.assert_allclose(d[~zero], p[~zero] / 0.9, rtol=1e-5)
  # A row's gradient only flows through its kept probabilities: rows with every entry
  # kept or dropped are rare, so check the gradient is finite and non-zero.
  assert np.isfinite(g).all() and np.abs(g).max() > 0
