"""The XLA-fused GELU / LayerNorm / attention softmax+dropout (model/fused_ops.py) against
the plain TF ops they replace: same outputs and gradients up to float rounding; and the
explicit `fused` switch of model/modeling.py."""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from model import fused_ops
from model import modeling


def _tiny_config(vocab_size, dropout):
  return modeling.BertConfig(vocab_size=vocab_size, hidden_size=32, num_hidden_layers=2,
                             num_attention_heads=2, intermediate_size=64,
                             hidden_dropout_prob=dropout,
                             attention_probs_dropout_prob=dropout, embedding_size=16)


def _run_model(fused, ids, mask, vocab_size, use_bf16):
  """Sequence output and gradients of every variable, with fixed variable values."""
  with tf.Graph().as_default():
    model = modeling.BertModel(_tiny_config(vocab_size, 0.0), is_training=True,
                               input_ids=tf.constant(ids), input_mask=tf.constant(mask),
                               use_one_hot_embeddings=False, use_bf16=use_bf16,
                               fused=fused)
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

  def worst_error(out, grads, ref_out, ref_grads):
    assert set(grads) == set(ref_grads)
    errors = [np.abs(out - ref_out).max()]
    for name, g in ref_grads.items():
      g = np.asarray(g.values if hasattr(g, "values") else g)
      gf = np.asarray(grads[name].values if hasattr(grads[name], "values") else grads[name])
      errors.append(np.abs(gf - g).max() / max(np.abs(g).max(), 1e-3))
    return max(errors)

  if not use_bf16:
    assert worst_error(out_f, grads_f, out_p, grads_p) <= 2e-5
    return
  # bfloat16 keeps 8 mantissa bits: two bfloat16 graphs differ by their rounding (the
  # fused one adds biases in float32), so both are held against float32: the fused graph
  # must be as close to it as the plain bfloat16 graph it replaces.
  out_32, grads_32 = _run_model(False, ids, mask, vocab_size, False)
  fused_error = worst_error(out_f, grads_f, out_32, grads_32)
  plain_error = worst_error(out_p, grads_p, out_32, grads_32)
  assert fused_error <= 0.1 and plain_error <= 0.1
  assert fused_error <= 1.5 * plain_error, (fused_error, plain_error)


def test_fused_attention_dropout_keeps_rate_and_masks_gradient():
  with tf.Graph().as_default():
    tf.set_random_seed(7)
    scores = tf.constant(np.sin(np.arange(8 * 2 * 32 * 32)).reshape(8, 2, 32, 32),
                         tf.float32)
    dropped = fused_ops.softmax_dropout(scores, None, 0.5, 0.1, tf.float32)
    plain = tf.nn.softmax(scores * 0.5)
    grad = tf.gradients(tf.reduce_sum(dropped * tf.cos(scores)), scores)[0]
    with tf.Session() as sess:
      d, p, g = sess.run([dropped, plain, grad])
  zero = d == 0
  assert 0.08 < zero.mean() < 0.12  # rate 0.1 over 16k probabilities
  keep_scale = fused_ops.dropout_threshold(0.1)[1]  # 1 / (1 - 6554 / 65536)
  np.testing.assert_allclose(d[~zero], p[~zero] * keep_scale, rtol=1e-5)
  # A row's gradient only flows through its kept probabilities: rows with every entry
  # kept or dropped are rare, so check the gradient is finite and non-zero.
  assert np.isfinite(g).all() and np.abs(g).max() > 0


def _bits_and_draws(seed):
  with tf.Graph().as_default():
    tf.set_random_seed(seed)
    bits = fused_ops.dropout_bits([64, 129])  # odd size: the last uint32's half is cut
    with tf.Session() as sess:
      return sess.run(bits), sess.run(bits)


def test_dropout_bits_are_uniform_fresh_each_step_and_seeded():
  a1, a2 = _bits_and_draws(3)
  b1, _ = _bits_and_draws(3)
  c1, _ = _bits_and_draws(4)
  assert a1.dtype == np.uint16 and a1.shape == (64, 129)
  assert (a1 != a2).mean() > 0.99  # a new draw every run of the step
  np.testing.assert_array_equal(a1, b1)  # tf.set_random_seed makes it repeatable
  assert (a1 != c1).mean() > 0.99
  threshold, scale = fused_ops.dropout_threshold(0.1)
  assert threshold == 6554 and scale == pytest.approx(1 / (1 - 6554 / 65536))
  dropped = np.concatenate([a1, a2]).ravel() < threshold
  assert abs(dropped.mean() - 0.1) < 0.01  # 16.5k draws
  assert abs(np.concatenate([a1, a2]).mean() / 65535 - 0.5) < 0.01


def _plain_layer_norm(h, gamma, beta):
  mean = tf.reduce_mean(h, -1, keepdims=True)
  variance = tf.reduce_mean(tf.square(h - mean), -1, keepdims=True)
  return (h - mean) * tf.math.rsqrt(variance + modeling.LAYER_NORM_EPSILON) * gamma + beta


@pytest.mark.parametrize("with_bias", [False, True])
def test_fused_dropout_residual_layer_norm_matches_plain_math(with_bias):
  """LayerNorm(dropout(x + bias) + residual) in one kernel: output and gradients equal the
  plain ops' computed with the same keep mask (read back from the kernel's own gradient,
  which is exactly zero where an input was dropped)."""
  rng = np.random.RandomState(0)
  x = rng.randn(64, 8).astype(np.float32)
  res = rng.randn(64, 8).astype(np.float32)
  gamma = (1 + 0.1 * rng.randn(8)).astype(np.float32)
  beta = (0.1 * rng.randn(8)).astype(np.float32)
  bias = (0.3 * rng.randn(8)).astype(np.float32)
  w = rng.randn(64, 8).astype(np.float32)
  threshold, scale = fused_ops.dropout_threshold(0.25)
  with tf.Graph().as_default():
    tf.set_random_seed(11)
    xs, rs, gs, bs, bias_t = (tf.constant(v) for v in (x, res, gamma, beta, bias))
    inputs = [xs, rs, gs, bs] + ([bias_t] if with_bias else [])
    out_f = fused_ops.residual_layer_norm(xs, rs, gs, bs, modeling.LAYER_NORM_EPSILON,
                                          0.25, bias_t if with_bias else None)
    grads_f = tf.gradients(tf.reduce_sum(out_f * w), inputs)
    keep = tf.placeholder(tf.float32, [64, 8])
    h = (xs + (bias_t if with_bias else 0.0)) * keep * scale + rs
    plain = _plain_layer_norm(h, gs, bs)
    grads_p = tf.gradients(tf.reduce_sum(plain * w), inputs)
    with tf.Session() as sess:
      of, gf = sess.run([out_f, grads_f])  # one run: one mask for output and gradients
      kept = gf[0] != 0
      op, gp = sess.run([plain, grads_p], {keep: kept.astype(np.float32)})
  assert 0.15 < 1 - kept.mean() < 0.35  # rate 0.25 over 512 inputs
  np.testing.assert_allclose(of, op, rtol=1e-5, atol=1e-5)
  for a, b in zip(gf, gp):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_fused_dropout_keeps_rate_and_masks_gradient():
  with tf.Graph().as_default():
    tf.set_random_seed(5)
    x = tf.constant(np.linspace(1, 2, 64 * 256).reshape(64, 256), tf.bfloat16)
    y = modeling.dropout(x, 0.1, fused=True)
    g = tf.gradients(tf.reduce_sum(tf.cast(y, tf.float32) * 3.0), x)[0]
    with tf.Session() as sess:
      xv, yv, gv = sess.run([tf.cast(x, tf.float32), tf.cast(y, tf.float32),
                             tf.cast(g, tf.float32)])
  zero = yv == 0
  assert abs(zero.mean() - 0.1) < 0.01
  scale = fused_ops.dropout_threshold(0.1)[1]
  # Kept values are scaled in float32, then rounded once to bfloat16.
  np.testing.assert_allclose(yv[~zero], xv[~zero] * scale, rtol=2 ** -8)
  np.testing.assert_array_equal(gv == 0, zero)
  np.testing.assert_allclose(gv[~zero], 3.0 * scale, rtol=2 ** -8)


def test_fused_switch_is_an_argument_and_plain_graph_has_no_kernels():
  """fused=False builds only plain TF ops (the original graph, what TPU runs); fused=True
  calls the compiled kernels. Two models in one process, no global state between them."""
  def function_calls(fused, use_bf16):
    g = tf.Graph()
    with g.as_default():
      modeling.BertModel(_tiny_config(100, 0.1), True, tf.zeros([2, 8], tf.int32),
                         use_one_hot_embeddings=False, use_bf16=use_bf16, fused=fused)
    return [op for op in g.get_operations()
            if op.type in ("PartitionedCall", "StatefulPartitionedCall")]
  assert function_calls(False, True) == []
  assert function_calls(False, False) == []
  assert len(function_calls(True, True)) > 0
  assert function_calls(False, False) == []  # building a fused model changed nothing
  assert not hasattr(modeling, "FUSED_ELEMENTWISE")


def test_dense_defer_bias_returns_the_bias_instead_of_adding_it():
  x = np.arange(12, dtype=np.float32).reshape(2, 3, 2) / 10
  with tf.Graph().as_default():
    xt = tf.constant(x)
    added = modeling.dense(xt, 4, name="dense", kernel_initializer=tf.ones_initializer())
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
      deferred, bias = modeling.dense(xt, 4, name="dense", defer_bias=True)
      bias_var = tf.get_variable("dense/bias")
    with pytest.raises(ValueError, match="defer_bias"):
      modeling.dense(xt, 4, name="other", activation=tf.nn.relu, defer_bias=True)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(bias_var.assign([1.0, 2.0, 3.0, 4.0]))
      a, d, b = sess.run([added, deferred, bias])
  assert bias.dtype == tf.float32 and d.shape == (2, 3, 4)
  np.testing.assert_allclose(b, [1, 2, 3, 4])
  # Kernel of ones: every output unit is the row sum; the bias only in `added`.
  np.testing.assert_allclose(d, np.repeat(x.sum(-1, keepdims=True), 4, -1), rtol=1e-6)
  np.testing.assert_allclose(a, d + b, rtol=1e-6)
