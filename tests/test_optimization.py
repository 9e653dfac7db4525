"""AdamW (no bias correction), weight-decay exclusions, clipping, LR schedule, layer-wise LR."""
import math

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from model import modeling
from model import optimization



def _values(sess, names):
  by_name = {v.op.name: v for v in tf.global_variables()}
  return {n: sess.run(by_name[n]) for n in names}


def _schedule(step, lr0, n, warmup, power=1.0):
  """The documented formula, written out independently."""
  decay = (1.0 - min(step, n) / n) ** power
  warm = min(1.0, step / warmup) if warmup else 1.0
  return lr0 * decay * warm


@pytest.mark.parametrize("warmup_steps,warmup_proportion,power", [
    (100, 0, 1.0), (0, 0.2, 1.0), (0, 0, 1.0), (50, 0, 0.5)])
def test_learning_rate_schedule(warmup_steps, warmup_proportion, power):
  n = 1000
  warmup = max(n * warmup_proportion, warmup_steps)
  with tf.Graph().as_default():
    step = tf.placeholder(tf.int64, [])
    lr = optimization.learning_rate_schedule(5e-4, step, n, warmup_steps=warmup_steps,
                                             warmup_proportion=warmup_proportion,
                                             lr_decay_power=power)
    with tf.Session() as sess:
      for t in [0, 1, 25, 50, 100, 200, 201, 500, 999, 1000, 1500]:
        got = sess.run(lr, {step: t})
        assert got == pytest.approx(_schedule(t, 5e-4, n, warmup, power), rel=1e-4, abs=1e-10)  # float32 near t = N
  if warmup:
    assert _schedule(0, 5e-4, n, warmup) == 0.0
  assert _schedule(n, 5e-4, n, warmup) == 0.0


def _one_step_graph(grads, weight_decay_rate, lr=0.1, **kw):
  """Variables with given initial values and loss = sum(grad * var) (gradient = grad)."""
  variables = {}
  loss = 0.0
  for name, (init, grad) in grads.items():
    scope, leaf = name.rsplit("/", 1)
    with tf.variable_scope(scope):
      var = tf.get_variable(leaf, initializer=tf.constant(init, tf.float32))
    variables[name] = var
    loss += tf.reduce_sum(var * tf.constant(grad, tf.float32))
  train_op = optimization.create_optimizer(loss, lr, num_train_steps=10,
                                           weight_decay_rate=weight_decay_rate, **kw)
  return variables, train_op


@pytest.mark.parametrize("fused", [True, False])
def test_weight_decay_skips_layer_norm_and_bias_and_no_bias_correction(fused):
  # fused: one XLA kernel per variable, or the plain ops; same formula.
  rng = np.random.RandomState(0)
  shapes = {"layer_0/dense/kernel": [3, 4], "layer_0/dense/bias": [4],
            "layer_0/LayerNorm/gamma": [4], "layer_0/LayerNorm/beta": [4],
            "electra/embeddings/word_embeddings": [5, 4], "gen/output_bias": [5]}
  grads = {}
  for name, shape in shapes.items():
    init = rng.uniform(0.5, 1.5, shape).astype(np.float32)
    g = np.zeros(shape, np.float32)
    if name.endswith(("kernel", "beta")):  # the others get no gradient: decay only
      g = (rng.choice([-1.0, 1.0], shape) * 0.05).astype(np.float32)
    grads[name] = (init, g)
  wd, lr = 0.01, 0.1
  with tf.Graph().as_default():
    variables, train_op = _one_step_graph(grads, wd, lr=lr, fused=fused)
    names = [v.op.name for v in tf.global_variables()]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(train_op)
      after = {n: sess.run(v) for n, v in variables.items()}
      assert sess.run(tf.train.get_global_step()) == 1
  # Slots are named as the original's, so its checkpoints resume here.
  for n in shapes:
    assert n + "/adam_m" in names and n + "/adam_v" in names
  total_norm = math.sqrt(sum(float((g ** 2).sum()) for _, g in grads.values()))
  assert total_norm < 1.0  # no clipping in this test
  for name, (init, g) in grads.items():
    decayed = not any(p in name for p in ("LayerNorm", "bias"))
    # First step, no bias correction: m = 0.1 g, v = 0.001 g^2, update = m / (sqrt(v) + eps).
    adam = 0.1 * g / (np.sqrt(0.001 * g * g) + 1e-6)
    expected = init - lr * (adam + (wd * init if decayed else 0.0))
    np.testing.assert_allclose(after[name], expected, rtol=1e-5, atol=1e-7, err_msg=name)
  # Without bias correction the first step is 0.1 / sqrt(0.001) = 3.16 x lr (Adam with
  # bias correction would move by ~1 x lr).
  beta_step = np.abs(after["layer_0/LayerNorm/beta"] - grads["layer_0/LayerNorm/beta"][0])
  np.testing.assert_allclose(beta_step / lr, 0.1 / math.sqrt(0.001), rtol=1e-3)
  # Zero-gradient bias / LayerNorm gamma did not move; zero-gradient embeddings decayed.
  np.testing.assert_array_equal(after["gen/output_bias"], grads["gen/output_bias"][0])
  np.testing.assert_array_equal(after["layer_0/LayerNorm/gamma"],
                                grads["layer_0/LayerNorm/gamma"][0])
  emb0 = grads["electra/embeddings/word_embeddings"][0]
  np.testing.assert_allclose(after["electra/embeddings/word_embeddings"],
                             emb0 * (1 - lr * wd), rtol=1e-6)


def test_gradients_clipped_to_global_norm_one():
  g1 = np.full([4], 3.0, np.float32)
  g2 = np.full([2, 2], -4.0, np.float32)
  norm = math.sqrt((g1 ** 2).sum() + (g2 ** 2).sum())
  with tf.Graph().as_default():
    _, train_op = _one_step_graph({"a/kernel": (np.zeros(4, np.float32), g1),
                                   "b/kernel": (np.zeros([2, 2], np.float32), g2)}, 0.0)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(train_op)
      m_a, v_b = _values(sess, ["a/kernel/adam_m", "b/kernel/adam_v"]).values()
  np.testing.assert_allclose(m_a, 0.1 * g1 / norm, rtol=1e-5)
  np.testing.assert_allclose(v_b, 0.001 * (g2 / norm) ** 2, rtol=1e-5)


def test_layerwise_multipliers_fixed_top_layer():
  d, n = 0.8, 3
  got = optimization.layerwise_lr_multipliers(n, d)
  assert got["task_specific/"] == 1.0
  assert got["encoder/layer_2/"] == pytest.approx(d)
  assert got["encoder/layer_1/"] == pytest.approx(d ** 2)
  assert got["encoder/layer_0/"] == pytest.approx(d ** 3)
  assert got["/embeddings/"] == got["/embeddings_project/"] == pytest.approx(d ** 4)
  legacy = optimization.layerwise_lr_multipliers(n, d, legacy=True)
  assert legacy["task_specific/"] == 1.0
  assert legacy["encoder/layer_2/"] == pytest.approx(d ** 2)
  assert legacy["/embeddings/"] == pytest.approx(d ** 5)
  with pytest.raises(ValueError, match="n_transformer_layers"):
    optimization.layerwise_lr_multipliers(None, d)


def test_layerwise_decay_applied_to_encoder_variables():
  """One step on a real (tiny) encoder: each variable moves by lr x its layer's multiplier."""
  cfg = modeling.BertConfig(50, hidden_size=16, num_hidden_layers=3, num_attention_heads=2,
                            intermediate_size=32, embedding_size=8)
  d = 0.5
  with tf.Graph().as_default():
    ids = tf.constant(np.arange(20).reshape(2, 10), tf.int32)
    model = modeling.BertModel(cfg, False, ids, use_one_hot_embeddings=False)
    with tf.variable_scope("task_specific/cls"):
      modeling.dense(model.get_pooled_output(), 2, name="dense")
    # A loss whose gradient is 1e-3 for every element of every variable: with the same
    # gradient everywhere, the step sizes differ only by the learning-rate multiplier.
    tvars = tf.trainable_variables()
    loss = tf.add_n([1e-3 * tf.reduce_sum(v) for v in tvars])
    train_op = optimization.create_optimizer(loss, 1.0, num_train_steps=100,
                                             layerwise_lr_decay_power=d,
                                             n_transformer_layers=3)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      before = sess.run(tvars)
      sess.run(train_op)
      after = sess.run(tvars)
  steps = {v.op.name: float(np.abs(a - b).mean()) for v, a, b in zip(tvars, after, before)}
  base = steps["task_specific/cls/dense/kernel"]
  assert base > 0
  expect = {"electra/embeddings/word_embeddings": d ** 4,
            "electra/embeddings/LayerNorm/gamma": d ** 4,
            "electra/embeddings_project/kernel": d ** 4,
            "electra/encoder/layer_0/attention/self/query/kernel": d ** 3,
            "electra/encoder/layer_1/output/dense/bias": d ** 2,
            "electra/encoder/layer_2/intermediate/dense/kernel": d,
            "task_specific/cls/dense/bias": 1.0}
  for name, mult in expect.items():
    assert steps[name] / base == pytest.approx(mult, rel=1e-3), name


def test_layerwise_decay_refuses_variable_outside_known_scopes():
  with tf.Graph().as_default():
    v = tf.get_variable("head/kernel", [2], initializer=tf.ones_initializer())
    with pytest.raises(ValueError, match="head/kernel.*task_specific/"):
      optimization.create_optimizer(tf.reduce_sum(v), 1.0, 10, layerwise_lr_decay_power=0.8,
                                    n_transformer_layers=2)


def test_slots_named_from_root_scope_and_tpu_wrapper():
  with tf.Graph().as_default():
    v = tf.get_variable("electra/x/kernel", [2], initializer=tf.ones_initializer())
    with tf.variable_scope("some_outer_scope"):
      optimization.create_optimizer(tf.reduce_sum(v), 1.0, 10)
    names = {x.op.name for x in tf.global_variables()}
  assert {"electra/x/kernel/adam_m", "electra/x/kernel/adam_v"} <= names
  opt = optimization.make_optimizer(0.1, use_tpu=True)
  assert isinstance(opt, tf.tpu.CrossShardOptimizer)
  assert isinstance(opt._opt, optimization.AdamWeightDecayOptimizer)


def test_fused_update_is_an_explicit_argument():
  """Default plain ops; fused=True compiles the update (a function call in the graph);
  on TPU fused is refused rather than silently ignored."""
  def update_ops(**kw):
    g = tf.Graph()
    with g.as_default():
      v = tf.get_variable("electra/x/kernel", [3], initializer=tf.ones_initializer())
      optimization.create_optimizer(tf.reduce_sum(v * v), 1.0, 10, **kw)
    return [op for op in g.get_operations()
            if op.type in ("PartitionedCall", "StatefulPartitionedCall")]
  assert update_ops() == []
  assert len(update_ops(fused=True)) == 1
  assert not optimization.make_optimizer(0.1).fused
  with pytest.raises(ValueError, match="use_tpu"):
    optimization.make_optimizer(0.1, use_tpu=True, fused=True)
  assert not hasattr(optimization, "FUSED_UPDATE")


def test_fused_update_equals_plain_ops_over_steps():
  """The XLA-fused AdamW step and the plain ops agree over several steps (weight decay,
  decayed learning rate, moments carried over)."""
  rng = np.random.RandomState(1)
  init = rng.randn(6, 5).astype(np.float32)
  grads = [rng.randn(6, 5).astype(np.float32) * 0.1 for _ in range(4)]
  results = []
  for fused in (True, False):
    with tf.Graph().as_default():
      param = tf.get_variable("layer_0/dense/kernel", initializer=init)
      g = tf.placeholder(tf.float32, [6, 5])
      step = tf.train.get_or_create_global_step()
      lr = 0.05 / (1.0 + tf.cast(step, tf.float32))
      opt = optimization.AdamWeightDecayOptimizer(lr, weight_decay_rate=0.01, fused=fused)
      # Increment after the update, as create_optimizer does: in one tf.group the
      # increment may run before the learning rate reads the step (a flaky test).
      with tf.control_dependencies([opt.apply_gradients([(g, param)])]):
        train = step.assign_add(1)
      with tf.Session() as sess:
        sess.run(tf.global_variables_initializer())
        for grad in grads:
          sess.run(train, {g: grad})
        adam_v = [v for v in tf.global_variables() if v.op.name.endswith("/adam_v")]
        results.append(sess.run([param] + adam_v))
  np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-6, atol=1e-7)
  np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-6)
  assert np.abs(results[0][0] - init).max() > 0.01  # it moved


@pytest.mark.parametrize("fused", [False, True])
def test_bias_correction_matches_hugging_face_adamw(fused):
  """bias_correction (KoELECTRA's finetuning used Hugging Face's AdamW): over three steps
  each parameter moves by lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps), with
  t counted from 1, restated here in numpy; the default (the original) has no factor."""
  rng = np.random.RandomState(4)
  init = rng.randn(5).astype(np.float32)
  grads = [rng.randn(5).astype(np.float32) * 0.1 for _ in range(3)]
  lr, eps, b1, b2 = 1e-3, 1e-8, 0.9, 0.999
  want, m, v = init.astype(np.float64), np.zeros(5), np.zeros(5)
  for t, g in enumerate(grads, start=1):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g.astype(np.float64) ** 2
    want = want - lr * math.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
  with tf.Graph().as_default():
    w = tf.get_variable("w/kernel", initializer=init)
    g = tf.placeholder(tf.float32, [5])
    step = tf.train.get_or_create_global_step()
    opt = optimization.make_optimizer(lr, fused=fused, epsilon=eps, bias_correction=True)
    update = opt.apply_gradients([(g, w)], global_step=step)
    with tf.control_dependencies([update]):
      train_op = step.assign_add(1)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for grad in grads:
        sess.run(train_op, {g: grad})
      got = sess.run(w)
  np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-7)
  # The first step of the corrected optimizer is lr * sign(g) (up to eps).
  assert abs(abs(want[0] - init[0]) - 0) > 0
