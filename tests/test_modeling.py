"""The encoder: config I/O, exact checkpoint variable names, numerics, bf16."""
import json
import math

import numpy as np
import pytest
import tensorflow.compat.v1 as tf

from model import modeling
from model import checkpoint
from model.tokenization import FullTokenizer
from tests.conftest import head_lines


TINY = dict(vocab_size=None, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=128, embedding_size=32, max_position_embeddings=64)


def tiny_config(vocab_size, **kw):
  d = dict(TINY, vocab_size=vocab_size)
  d.update(kw)
  return modeling.BertConfig(**d)


@pytest.fixture(scope="module")
def korean_ids(data_dir, vocab_v3):
  """[8, 24] ids / mask of real NSMC reviews tokenized with the v3 vocab, [CLS] ... [SEP] pad."""
  tok = FullTokenizer(vocab_v3)
  rows = head_lines(str(data_dir / "nsmc" / "derived" / "nsmc_pool_train.tsv"), 9)[1:]
  seq = 24
  ids = np.zeros([len(rows), seq], np.int32)
  mask = np.zeros([len(rows), seq], np.int32)
  for i, row in enumerate(rows):
    text = row.split("\t")[1]
    toks = ["[CLS]"] + tok.tokenize(text)[:seq - 2] + ["[SEP]"]
    ids[i, :len(toks)] = tok.convert_tokens_to_ids(toks)
    mask[i, :len(toks)] = 1
  assert mask.sum(1).min() < seq, "want at least one padded row"
  return ids, mask, len(tok.vocab)


# ---------------------------------------------------------------- config


def test_config_json_round_trip(tmp_path):
  cfg = modeling.BertConfig(35000, hidden_size=256, num_hidden_layers=12,
                            num_attention_heads=4, intermediate_size=1024, embedding_size=128)
  path = tmp_path / "bert_config.json"
  path.write_text(cfg.to_json_string(), encoding="utf-8")
  back = modeling.BertConfig.from_json_file(str(path))
  assert back == cfg
  assert back.to_dict()["embedding_size"] == 128
  assert json.loads(cfg.to_json_string())["vocab_size"] == 35000


def test_config_errors_name_the_key_and_file(tmp_path):
  with pytest.raises(modeling.ConfigError, match="'hiden_size'"):
    modeling.BertConfig.from_dict({"vocab_size": 10, "hiden_size": 3})
  with pytest.raises(modeling.ConfigError, match="vocab_size"):
    modeling.BertConfig.from_dict({"hidden_size": 3})
  bad = tmp_path / "broken.json"
  bad.write_text('{"vocab_size": 10,', encoding="utf-8")
  with pytest.raises(modeling.ConfigError, match="broken.json"):
    modeling.BertConfig.from_json_file(str(bad))
  with pytest.raises(modeling.ConfigError, match="gelu_new"):
    modeling.get_activation("gelu_new")


# ---------------------------------------------------------------- variable names


def _build_pretraining_variables(vocab_size, hidden, layers, heads, embedding_size,
                                 gen_hidden, gen_heads):
  """Generator + discriminator encoders and the original's head variables, graph only."""
  g = tf.Graph()
  with g.as_default():
    ids = tf.zeros([2, 8], tf.int32)
    disc_cfg = modeling.BertConfig(vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                                   num_attention_heads=heads, intermediate_size=4 * hidden)
    gen_cfg = modeling.BertConfig(vocab_size, hidden_size=gen_hidden, num_hidden_layers=layers,
                                  num_attention_heads=gen_heads, intermediate_size=4 * gen_hidden)
    # The original builds the generator first; it then creates the shared embeddings.
    gen = modeling.BertModel(gen_cfg, True, ids, scope="generator",
                             embedding_size=embedding_size, use_one_hot_embeddings=False)
    disc = modeling.BertModel(disc_cfg, True, ids, embedding_size=embedding_size,
                              use_one_hot_embeddings=False)
    with tf.variable_scope("generator_predictions"):
      h = modeling.dense(gen.get_sequence_output(), embedding_size, name="dense",
                         activation=modeling.gelu)
      modeling.layer_norm(h, name="LayerNorm")
      tf.get_variable("output_bias", [vocab_size], initializer=tf.zeros_initializer())
    with tf.variable_scope("discriminator_predictions"):
      h = modeling.dense(disc.get_sequence_output(), hidden, name="dense",
                         activation=modeling.gelu)
      modeling.dense(h, 1, name="dense_1")
    tf.train.get_or_create_global_step()
    assert gen.get_embedding_table() is disc.get_embedding_table()
    return checkpoint.graph_variables(g)


@pytest.mark.parametrize("ref_name,args", [
    ("electra_variables_koelectra_small.txt", (32200, 256, 12, 4, 128, 256, 4)),
    ("electra_variables_base_gen_one_third.txt", (32200, 768, 12, 12, 768, 256, 4)),
])
def test_variables_match_original_checkpoints(data_dir, ref_name, args):
  ref_path = data_dir.parent / "reference" / ref_name
  expected = checkpoint.parse_variable_list(ref_path.read_text(encoding="utf-8"))
  got = _build_pretraining_variables(*args)
  diff = checkpoint.compare_variables(expected, got)
  assert diff.ok, diff.describe()
  assert got == expected
  # Small: both models project 128 -> 256; Base: only the 256-wide generator projects.
  assert ("electra/embeddings_project/kernel" in got) == (args[4] != args[1])
  assert got["generator/embeddings_project/kernel"] == (args[4], args[5])
  assert sum(1 for n in got if n.endswith("word_embeddings")) == 1


def test_embeddings_project_is_glorot_uniform_as_the_original():
  """A fresh KoELECTRA-Small graph (vocab 35000, embedding 128, hidden 256, generator of
  the same width): both embeddings_project kernels follow tf.layers.dense's default,
  Glorot uniform on +-sqrt(6 / (fan_in + fan_out)), with zero biases; the transformer
  kernels keep truncated normal(0.02)."""
  g = tf.Graph()
  with g.as_default():
    tf.set_random_seed(0)
    ids = tf.zeros([2, 8], tf.int32)
    cfg = modeling.BertConfig(35000, hidden_size=256, num_hidden_layers=12,
                              num_attention_heads=4, intermediate_size=1024,
                              embedding_size=128)
    modeling.BertModel(cfg, True, ids, scope="generator", use_one_hot_embeddings=False)
    modeling.BertModel(cfg, True, ids, use_one_hot_embeddings=False)
    names = ["electra/embeddings_project/kernel", "electra/embeddings_project/bias",
             "generator/embeddings_project/kernel", "generator/embeddings_project/bias",
             "electra/encoder/layer_0/attention/self/query/kernel"]
    variables = {v.op.name: v for v in tf.global_variables()}
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      values = dict(zip(names, sess.run([variables[n] for n in names])))
  limit = math.sqrt(6.0 / (128 + 256))  # 0.125
  for scope in ("electra", "generator"):
    kernel = values[scope + "/embeddings_project/kernel"]
    assert kernel.shape == (128, 256)
    assert np.abs(kernel).max() <= limit
    assert np.abs(kernel).max() > 0.95 * limit  # spread over the whole interval
    # 32768 draws: the sample std is within ~0.3% of limit / sqrt(3) = 0.0722.
    assert kernel.std() == pytest.approx(limit / math.sqrt(3), rel=0.02)
    assert abs(kernel.mean()) < 0.002
    # Uniform, not normal: a quarter of the mass in each quarter of [-limit, limit].
    counts = np.histogram(kernel, bins=4, range=(-limit, limit))[0] / kernel.size
    np.testing.assert_allclose(counts, 0.25, atol=0.01)
    assert (values[scope + "/embeddings_project/bias"] == 0).all()
  assert not np.array_equal(values["electra/embeddings_project/kernel"],
                            values["generator/embeddings_project/kernel"])
  query = values["electra/encoder/layer_0/attention/self/query/kernel"]
  assert np.abs(query).max() <= 0.04 and query.std() == pytest.approx(0.0176, rel=0.05)


def test_untied_generator_embeddings_get_their_own_table():
  g = tf.Graph()
  with g.as_default():
    ids = tf.zeros([2, 8], tf.int32)
    cfg = tiny_config(100)
    gen = modeling.BertModel(cfg, False, ids, scope="generator", untied_embeddings=True)
    disc = modeling.BertModel(cfg, False, ids)
    names = checkpoint.graph_variables(g)
  assert gen.get_embedding_table() is not disc.get_embedding_table()
  assert "generator/embeddings/word_embeddings" in names
  assert "electra/embeddings/word_embeddings" in names


# ---------------------------------------------------------------- numerics


def _np_layer_norm(x, gamma, beta):
  mean = x.mean(-1, keepdims=True)
  var = ((x - mean) ** 2).mean(-1, keepdims=True)
  return (x - mean) / np.sqrt(var + 1e-12) * gamma + beta


def _np_gelu(x):
  erf = np.vectorize(math.erf)
  return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def _np_encoder(v, cfg, ids, mask, types, prefix="electra"):
  """Independent NumPy forward pass of the encoder from the variable values."""
  e = "electra/embeddings/"
  seq = ids.shape[1]
  x = (v[e + "word_embeddings"][ids] + v[e + "token_type_embeddings"][types]
       + v[e + "position_embeddings"][:seq][None])
  x = _np_layer_norm(x, v[e + "LayerNorm/gamma"], v[e + "LayerNorm/beta"])
  if prefix + "/embeddings_project/kernel" in v:
    x = x @ v[prefix + "/embeddings_project/kernel"] + v[prefix + "/embeddings_project/bias"]
  nh = cfg.num_attention_heads
  dh = cfg.hidden_size // nh
  b = ids.shape[0]
  for i in range(cfg.num_hidden_layers):
    p = "%s/encoder/layer_%d/" % (prefix, i)

    def lin(t, name):
      return t @ v[p + name + "/kernel"] + v[p + name + "/bias"]

    def heads(t):
      return t.reshape(b, seq, nh, dh).transpose(0, 2, 1, 3)

    q, k, val = (heads(lin(x, "attention/self/" + n)) for n in ("query", "key", "value"))
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh) + (1.0 - mask[:, None, None, :]) * -10000.0
    s = np.exp(s - s.max(-1, keepdims=True))
    s /= s.sum(-1, keepdims=True)
    ctx = (s @ val).transpose(0, 2, 1, 3).reshape(b, seq, cfg.hidden_size)
    a = _np_layer_norm(lin(ctx, "attention/output/dense") + x,
                       v[p + "attention/output/LayerNorm/gamma"],
                       v[p + "attention/output/LayerNorm/beta"])
    h = _np_gelu(lin(a, "intermediate/dense"))
    x = _np_layer_norm(lin(h, "output/dense") + a, v[p + "output/LayerNorm/gamma"],
                       v[p + "output/LayerNorm/beta"])
  return x


def _run(cfg, ids, mask, types, **model_kw):
  g = tf.Graph()
  with g.as_default():
    tf.set_random_seed(1)
    model = modeling.BertModel(cfg, False, tf.constant(ids), tf.constant(mask),
                               tf.constant(types), **model_kw)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      out, pooled, layers = sess.run([model.get_sequence_output(), model.get_pooled_output(),
                                      model.get_all_encoder_layers()])
      values = {var.op.name: val for var, val in
                zip(tf.global_variables(), sess.run(tf.global_variables()))}
  return out, pooled, layers, values


def test_forward_matches_numpy_reference_on_korean_text(korean_ids):
  ids, mask, vocab_size = korean_ids
  types = np.zeros_like(ids)
  types[:, 12:] = 1
  cfg = tiny_config(vocab_size)
  out, pooled, layers, values = _run(cfg, ids, mask, types, use_one_hot_embeddings=False)
  assert out.shape == (8, 24, 64) and len(layers) == 2
  expected = _np_encoder(values, cfg, ids, mask.astype(np.float32), types)
  np.testing.assert_allclose(out, expected, atol=2e-4, rtol=1e-3)
  np.testing.assert_allclose(pooled, out[:, 0])
  # Variables follow the initializer: truncated normal(0.02) kernels, LayerNorm ones/zeros.
  w = values["electra/encoder/layer_0/intermediate/dense/kernel"]
  assert abs(w.std() - 0.0176) < 0.002 and np.abs(w).max() <= 0.04 + 1e-6
  assert (values["electra/encoder/layer_1/output/LayerNorm/gamma"] == 1).all()


def test_one_hot_lookup_equals_gather_and_padding_is_ignored(korean_ids):
  ids, mask, vocab_size = korean_ids
  types = np.zeros_like(ids)
  cfg = tiny_config(vocab_size)
  a = _run(cfg, ids, mask, types, use_one_hot_embeddings=True)[0]
  b = _run(cfg, ids, mask, types, use_one_hot_embeddings=False)[0]
  np.testing.assert_allclose(a, b, atol=1e-5)
  # Changing tokens at padded positions must not change any real position's output.
  ids2 = np.where(mask == 1, ids, 777).astype(np.int32)
  c = _run(cfg, ids2, mask, types, use_one_hot_embeddings=False)[0]
  real = mask == 1
  np.testing.assert_allclose(c[real], b[real], atol=1e-5)
  assert np.abs(c[~real] - b[~real]).max() > 1e-3


def test_dropout_only_in_training():
  cfg = tiny_config(100)
  g = tf.Graph()
  with g.as_default():
    ids = tf.constant(np.arange(32).reshape(2, 16) % 100, tf.int32)
    train = modeling.BertModel(cfg, True, ids)
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
      evalm = modeling.BertModel(cfg, False, ids)
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      t1, t2 = (sess.run(train.get_sequence_output()) for _ in range(2))
      e1, e2 = (sess.run(evalm.get_sequence_output()) for _ in range(2))
  np.testing.assert_array_equal(e1, e2)
  assert np.abs(t1 - t2).max() > 1e-3


def test_gelu_is_exact_erf():
  with tf.Graph().as_default(), tf.Session() as sess:
    xs = np.array([-3.0, -1.0, -0.1, 0.0, 0.5, 1.0, 2.5], np.float32)
    got = sess.run(modeling.gelu(tf.constant(xs)))
  np.testing.assert_allclose(got, _np_gelu(xs.astype(np.float64)), rtol=1e-6, atol=1e-7)
  # The tanh approximation differs by ~1e-4 at x=1: make sure that is not what we have.
  approx = 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * (1 + 0.044715)))
  assert abs(got[5] - approx) > 1e-5


def test_get_shape_list_mixes_static_and_dynamic():
  with tf.Graph().as_default():
    x = tf.placeholder(tf.float32, [None, 7, 3])
    shape = modeling.get_shape_list(x, expected_rank=3)
    assert shape[1:] == [7, 3] and isinstance(shape[0], tf.Tensor)
    with pytest.raises(ValueError, match="rank"):
      modeling.get_shape_list(x, expected_rank=2)


def test_sequence_longer_than_position_table_is_refused():
  cfg = tiny_config(100, max_position_embeddings=8)
  with tf.Graph().as_default():
    with pytest.raises(ValueError, match="max_position_embeddings"):
      modeling.BertModel(cfg, False, tf.zeros([1, 9], tf.int32))


# ---------------------------------------------------------------- bfloat16


def test_bf16_computes_in_bfloat16_and_stays_close(korean_ids):
  ids, mask, vocab_size = korean_ids
  types = np.zeros_like(ids)
  cfg = tiny_config(vocab_size)
  f32, _, _, f32_values = _run(cfg, ids, mask, types, use_one_hot_embeddings=False)
  g = tf.Graph()
  with g.as_default():
    model = modeling.BertModel(cfg, True, tf.constant(ids), tf.constant(mask),
                               tf.constant(types), use_one_hot_embeddings=False, use_bf16=True)
    out = model.get_sequence_output()
    assert out.dtype == tf.float32
    assert all(v.dtype.base_dtype == tf.float32 for v in tf.global_variables())
    bf16_matmuls = [op for op in g.get_operations()
                    if op.type in ("MatMul", "BatchMatMulV2")
                    and op.outputs[0].dtype == tf.bfloat16]
    # q, k, v, attention-out, intermediate, output, 2 attention matmuls per layer + project.
    assert len(bf16_matmuls) == 2 * 8 + 1
    loss = tf.reduce_mean(tf.square(out))
    grads = [tf.convert_to_tensor(g) for g in tf.gradients(loss, tf.trainable_variables())]
    with tf.variable_scope(tf.get_variable_scope(), reuse=True):
      evalm = modeling.BertModel(cfg, False, tf.constant(ids), tf.constant(mask),
                                 tf.constant(types), use_one_hot_embeddings=False, use_bf16=True)
    with tf.Session() as sess:
      for var in tf.global_variables():
        var.load(f32_values[var.op.name], sess)
      bf, grad_vals = sess.run([evalm.get_sequence_output(), grads])
  # Same variable values as the float32 run: outputs agree to bf16 precision.
  err = np.abs(bf - f32)
  assert err.max() < 0.1 and err.mean() < 0.02
  assert np.abs(bf - f32).max() > 0  # really a different (lower) precision path
  assert all(np.isfinite(gv).all() for gv in grad_vals)


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("use_bf16", [False, True])
def test_last_layer_positions_give_the_same_cls(fused, use_bf16):
  """last_layer_positions=1 (sentence heads): the [CLS] output and every gradient of a loss
  on it equal those of the whole last layer; the other variables' names are unchanged."""
  rng = np.random.RandomState(0)
  ids = rng.randint(5, 99, size=(3, 12)).astype(np.int32)
  mask = np.ones_like(ids)
  mask[0, 7:] = 0
  mask[2, 3:] = 0
  results, names = [], []
  for positions in (None, 1):
    with tf.Graph().as_default():
      tf.set_random_seed(4)
      cfg = modeling.BertConfig(100, hidden_size=32, num_hidden_layers=2,
                                num_attention_heads=2, intermediate_size=64,
                                hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                embedding_size=16)
      model = modeling.BertModel(cfg, True, tf.constant(ids), tf.constant(mask),
                                 use_one_hot_embeddings=False, use_bf16=use_bf16,
                                 fused=fused, last_layer_positions=positions)
      cls = model.get_pooled_output()                                        # [B, W]
      loss = tf.reduce_sum(cls * tf.cos(tf.range(32, dtype=tf.float32)))
      tvars = sorted(tf.trainable_variables(), key=lambda v: v.name)
      grads = [tf.convert_to_tensor(g) for g in tf.gradients(loss, tvars)]
      # The same values in both graphs, whatever the op-level seeds.
      assigns = [v.assign(0.05 * tf.sin(tf.reshape(
          tf.range(int(np.prod(v.shape)), dtype=tf.float32) * (i + 1.3), v.shape)) +
          (1.0 if v.name.endswith("gamma:0") else 0.0)) for i, v in enumerate(tvars)]
      with tf.Session() as sess:
        sess.run(assigns)
        results.append(sess.run([cls] + grads))
      names.append([v.name for v in tvars])
      if positions:
        assert model.get_sequence_output().shape.as_list() == [3, 1, 32]
  assert names[0] == names[1]
  tol = 2e-2 if use_bf16 else 1e-5
  for a, b in zip(*results):
    np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
