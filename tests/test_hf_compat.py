"""Compatibility: checkpoints of this graph load into Hugging Face ELECTRA, and checkpoint.py.

A pretraining-style checkpoint (generator + discriminator + heads + Adam slots) is written by
this project's graph and loaded with transformers' own `load_tf_weights_in_electra` into
ElectraForPreTraining (discriminator) and ElectraForMaskedLM (generator). Every torch
parameter must come from the checkpoint, and both models must give the TF logits.
"""
import numpy as np
import pytest
import tensorflow.compat.v1 as tf
import torch
import transformers
from transformers.models.electra import modeling_electra

from model import checkpoint
from model import modeling
from model import optimization
from model.hf import names
from model.tokenization import FullTokenizer
from tests.conftest import head_lines


SEQ = 20
DISC = dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128)
EMBEDDING_SIZE = 32
MAX_POS = 64


@pytest.fixture(scope="module")
def korean_batch(data_dir, vocab_v3):
  tok = FullTokenizer(vocab_v3)
  rows = head_lines(str(data_dir / "korsts" / "sts-dev.tsv"), 5)[1:]
  ids = np.zeros([len(rows), SEQ], np.int64)
  mask = np.zeros_like(ids)
  types = np.zeros_like(ids)
  for i, row in enumerate(rows):
    cols = row.split("\t")
    a, b = tok.tokenize(cols[5])[:8], tok.tokenize(cols[6])[:8]
    toks = ["[CLS]"] + a + ["[SEP]"] + b + ["[SEP]"]
    ids[i, :len(toks)] = tok.convert_tokens_to_ids(toks)
    mask[i, :len(toks)] = 1
    types[i, len(a) + 2:len(toks)] = 1
  return ids, mask, types, len(tok.vocab)


def _build_and_save(path, vocab_size, gen_hidden, gen_heads, batch, with_optimizer):
  """Writes a checkpoint of generator + discriminator + heads; returns TF values/logits.

  with_optimizer adds the Adam slots and global_step, as a pretraining checkpoint has.
  """
  g = tf.Graph()
  with g.as_default():
    ids, mask, types = (tf.constant(x, tf.int32) for x in batch)
    disc_cfg = modeling.BertConfig(vocab_size, max_position_embeddings=MAX_POS, **DISC)
    gen_cfg = modeling.BertConfig(vocab_size, hidden_size=gen_hidden, num_hidden_layers=2,
                                  num_attention_heads=gen_heads, intermediate_size=4 * gen_hidden,
                                  max_position_embeddings=MAX_POS)
    gen = modeling.BertModel(gen_cfg, False, ids, mask, types, scope="generator",
                             embedding_size=EMBEDDING_SIZE, use_one_hot_embeddings=False)
    disc = modeling.BertModel(disc_cfg, False, ids, mask, types,
                              embedding_size=EMBEDDING_SIZE, use_one_hot_embeddings=False)
    # Heads as the original ELECTRA builds them (same variable names).
    with tf.variable_scope("generator_predictions"):
      h = modeling.dense(gen.get_sequence_output(), EMBEDDING_SIZE, name="dense",
                         activation=modeling.gelu)
      h = modeling.layer_norm(h, name="LayerNorm")
      bias = tf.get_variable("output_bias", [vocab_size],
                             initializer=tf.random_normal_initializer(stddev=0.5))
      gen_logits = tf.einsum("bsd,vd->bsv", h, gen.get_embedding_table()) + bias
    with tf.variable_scope("discriminator_predictions"):
      h = modeling.dense(disc.get_sequence_output(), DISC["hidden_size"], name="dense",
                         activation=modeling.gelu)
      disc_logits = tf.squeeze(modeling.dense(h, 1, name="dense_1"), -1)
    if with_optimizer:
      loss = tf.reduce_mean(gen_logits) + tf.reduce_mean(disc_logits)
      optimization.create_optimizer(loss, 1e-3, 10, weight_decay_rate=0.01)
    # LayerNorm params start at 1/0: randomize them so the check can tell them apart.
    randomize = [tf.assign(v, v + tf.random.normal(v.shape, stddev=0.1))
                 for v in tf.trainable_variables() if "LayerNorm" in v.op.name]
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(randomize)
      prefix = tf.train.Saver().save(sess, str(path / "model.ckpt"), global_step=0)
      d_logits, g_logits = sess.run([disc_logits, gen_logits])
      variables = tf.global_variables()
      values = dict(zip([v.op.name for v in variables], sess.run(variables)))
  return prefix, values, d_logits, g_logits


def _hf_config(vocab_size, hidden, heads, intermediate, layers=2):
  return transformers.ElectraConfig(
      vocab_size=vocab_size, embedding_size=EMBEDDING_SIZE, hidden_size=hidden,
      num_hidden_layers=layers, num_attention_heads=heads, intermediate_size=intermediate,
      hidden_act="gelu", hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
      max_position_embeddings=MAX_POS, type_vocab_size=2, layer_norm_eps=1e-12)


def _load_and_check(model, config, prefix, which, values):
  modeling_electra.load_tf_weights_in_electra(model, config, prefix,
                                              discriminator_or_generator=which)
  expected = names.tf_to_hf_state(values, which)
  params = dict(model.named_parameters(remove_duplicate=False))
  assert sorted(params) == sorted(expected), "parameters without a TF variable or vice versa"
  for name, param in params.items():
    np.testing.assert_array_equal(param.detach().numpy(), expected[name], err_msg=name)
  model.eval()
  return model


@pytest.fixture(scope="module")
def pretraining_ckpt(tmp_path_factory, korean_batch):
  """Generator hidden 48 (own embeddings_project 32 -> 48), with Adam slots."""
  ids, mask, types, vocab_size = korean_batch
  path = tmp_path_factory.mktemp("ckpt")
  return _build_and_save(path, vocab_size, 48, 4, (ids, mask, types), True) + (path,)


def _check_transformers_loading(korean_batch, gen_hidden, gen_heads, prefix, values,
                                d_logits, g_logits):
  ids, mask, types, vocab_size = korean_batch
  assert ("generator/embeddings_project/kernel" in values) == (gen_hidden != EMBEDDING_SIZE)
  torch.manual_seed(0)
  inputs = dict(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask),
                token_type_ids=torch.tensor(types))

  d_cfg = _hf_config(vocab_size, DISC["hidden_size"], DISC["num_attention_heads"],
                     DISC["intermediate_size"])
  disc = _load_and_check(transformers.ElectraForPreTraining(d_cfg), d_cfg, prefix,
                         "discriminator", values)
  with torch.no_grad():
    hf_d = disc(**inputs).logits.numpy()
  np.testing.assert_allclose(hf_d, d_logits, atol=1e-4, rtol=1e-4)

  g_cfg = _hf_config(vocab_size, gen_hidden, gen_heads, 4 * gen_hidden)
  gen = _load_and_check(transformers.ElectraForMaskedLM(g_cfg), g_cfg, prefix, "generator",
                        values)
  assert gen.generator_lm_head.weight is gen.electra.embeddings.word_embeddings.weight
  with torch.no_grad():
    hf_g = gen(**inputs).logits.numpy()
  np.testing.assert_allclose(hf_g, g_logits, atol=1e-4, rtol=1e-4)
  # The TF logits are not degenerate: positions are told apart.
  assert np.abs(d_logits - d_logits.mean()).max() > 1e-3
  assert np.abs(g_logits - g_logits[:, :1]).max() > 1e-2


def test_pretraining_checkpoint_loads_into_transformers(korean_batch, pretraining_ckpt):
  _check_transformers_loading(korean_batch, 48, 4, *pretraining_ckpt[:4])


def test_generator_without_projection_loads_into_transformers(tmp_path, korean_batch):
  """Generator hidden 32 = embedding size: no generator/embeddings_project at all."""
  ids, mask, types, vocab_size = korean_batch
  saved = _build_and_save(tmp_path, vocab_size, 32, 2, (ids, mask, types), False)
  _check_transformers_loading(korean_batch, 32, 2, *saved)


def test_hf_name_mapping():
  m = names.tf_to_hf_name
  assert m("electra/encoder/layer_11/attention/self/query/kernel") == (
      "electra.encoder.layer.11.attention.self.query.weight", True)
  assert m("electra/embeddings/LayerNorm/gamma", "generator") == (
      "electra.embeddings.LayerNorm.weight", False)
  assert m("generator/encoder/layer_0/output/LayerNorm/beta", "generator") == (
      "electra.encoder.layer.0.output.LayerNorm.bias", False)
  assert m("generator/encoder/layer_0/output/dense/bias") is None
  assert m("discriminator_predictions/dense_1/kernel") == (
      "discriminator_predictions.dense_prediction.weight", True)
  assert m("generator_predictions/output_bias", "generator") == ("generator_lm_head.bias", False)
  assert m("electra/encoder/layer_0/output/dense/kernel/adam_m") is None
  assert m("global_step") is None


def test_hf_names_map_back_to_every_tf_variable(pretraining_ckpt):
  values = pretraining_ckpt[1]
  mapped = 0
  for name in values:
    for which in ("discriminator", "generator"):
      hf = names.tf_to_hf_name(name, which)
      if hf is not None:
        assert names.hf_to_tf_name(hf[0], which) == (name, hf[1]), (name, which)
        mapped += 1
  # Every model variable belongs to at least one of the two HF models.
  model_vars = [n for n in values if n != "global_step" and not checkpoint.is_optimizer_slot(n)]
  assert all(names.tf_to_hf_name(n, "discriminator") or
             names.tf_to_hf_name(n, "generator") for n in model_vars)
  assert mapped == len(model_vars) + 5  # shared: 3 embedding tables + embedding LayerNorm
  assert names.hf_to_tf_name("generator_lm_head.weight", "generator") == (
      "electra/embeddings/word_embeddings", False)
  assert names.hf_to_tf_name("electra.embeddings.word_embeddings.weight", "generator",
                                  untied_embeddings=True) == (
      "generator/embeddings/word_embeddings", False)


# ---------------------------------------------------------------- checkpoint.py


def test_checkpoint_variables_and_architecture_check(pretraining_ckpt, korean_batch):
  prefix, values, model_dir = pretraining_ckpt[0], pretraining_ckpt[1], pretraining_ckpt[4]
  vocab_size = korean_batch[3]
  listed = checkpoint.checkpoint_variables(str(model_dir))  # a model dir resolves to latest
  assert listed["electra/embeddings/word_embeddings"] == (vocab_size, EMBEDDING_SIZE)
  assert not any(n.endswith("/adam_m") for n in listed)
  with_slots = checkpoint.checkpoint_variables(prefix, include_optimizer=True)
  assert "generator/embeddings_project/kernel/adam_v" in with_slots
  same = {n: tuple(v.shape) for n, v in values.items()}
  assert checkpoint.check_checkpoint_matches(str(model_dir), same) == prefix
  # A model with a different discriminator width and one more layer is refused by name.
  other = dict(same)
  other["electra/encoder/layer_0/intermediate/dense/kernel"] = (64, 256)
  other["electra/encoder/layer_2/output/dense/bias"] = (64,)
  del other["discriminator_predictions/dense_1/bias"]
  with pytest.raises(checkpoint.CheckpointMismatchError) as err:
    checkpoint.check_checkpoint_matches(prefix, other)
  msg = str(err.value)
  assert prefix in msg
  assert "electra/encoder/layer_0/intermediate/dense/kernel (64, 128) vs (64, 256)" in msg
  assert "electra/encoder/layer_2/output/dense/bias" in msg
  assert "discriminator_predictions/dense_1/bias" in msg
  (model_dir / "empty").mkdir()
  with pytest.raises(checkpoint.CheckpointError, match="no checkpoint found in directory"):
    checkpoint.checkpoint_variables(str(model_dir / "empty"))
  with pytest.raises(checkpoint.CheckpointError, match="model.ckpt-7 does not exist"):
    checkpoint.checkpoint_variables(str(model_dir / "model.ckpt-7"))


def test_variable_list_round_trip(pretraining_ckpt):
  prefix = pretraining_ckpt[0]
  listed = checkpoint.checkpoint_variables(prefix)
  text = checkpoint.format_variable_list(listed)
  assert "global_step \n" in text
  assert checkpoint.parse_variable_list(text) == listed


def test_finetuning_init_loads_only_the_discriminator(pretraining_ckpt, korean_batch):
  prefix, values = pretraining_ckpt[:2]
  vocab_size = korean_batch[3]
  with tf.Graph().as_default():
    cfg = modeling.BertConfig(vocab_size, max_position_embeddings=MAX_POS, **DISC)
    model = modeling.BertModel(cfg, True, tf.zeros([2, 8], tf.int32),
                               embedding_size=EMBEDDING_SIZE, use_one_hot_embeddings=False)
    with tf.variable_scope("task_specific/classify"):
      modeling.dense(model.get_pooled_output(), 3, name="dense")
    names = checkpoint.init_from_checkpoint(prefix, prefixes=("electra/",))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      got = {v.op.name: sess.run(v) for v in tf.global_variables()}
  assert names == sorted(n for n in got if n.startswith("electra/"))
  assert len(names) == len([n for n in values if n.startswith("electra/")
                            and not checkpoint.is_optimizer_slot(n)])
  for n in names:
    np.testing.assert_array_equal(got[n], values[n], err_msg=n)
  assert "task_specific/classify/dense/kernel" not in names
  # Shape mismatch (a different vocab) is refused, naming the variable.
  with tf.Graph().as_default():
    cfg = modeling.BertConfig(vocab_size - 1, max_position_embeddings=MAX_POS, **DISC)
    modeling.BertModel(cfg, True, tf.zeros([2, 8], tf.int32), embedding_size=EMBEDDING_SIZE)
    with pytest.raises(checkpoint.CheckpointMismatchError, match="word_embeddings"):
      checkpoint.init_from_checkpoint(prefix)
