"""Exported Hugging Face folders and the outputs they must reproduce, for any transformers.

Two halves, so the same checks run under transformers 4.47.1 (the test environment, from
tests/test_hf_export.py) and the newest 5.x (its own venv, from .ci/check_transformers5.sh):

  python -m tests.hf_reference make WORK    # main env (TensorFlow): pretrain, export, refs
  python -m tests.hf_reference check WORK   # any env with transformers + torch: compare

`make` pretrains a tiny ELECTRA a few steps on real Korean comments, exports it with
model/hf/convert.py, and stores the TensorFlow graph's logits (dropout off) and the project
tokenizer's ids on real lines. `check` needs no TensorFlow: it loads the folders with
`from_pretrained` and compares.
"""
import json
import os
import sys
import unicodedata

import numpy as np

# Tiny, with the sizes that break careless converters: generator hidden 32 vs 64, both
# projecting a 24-wide embedding, a generator with half the layers.
SEQ = 32
TINY = {
    "model_size": "small", "embedding_size": 24, "max_seq_length": SEQ,
    "model_hparam_overrides": {"hidden_size": 64, "num_hidden_layers": 2,
                               "num_attention_heads": 2, "intermediate_size": 128,
                               "max_position_embeddings": 64},
    "generator_hidden_size": 0.5, "generator_layers": 0.5, "vocab_size": 35000,
    "train_batch_size": 8, "eval_batch_size": 8, "num_train_steps": 6,
    "num_warmup_steps": 1, "learning_rate": 1e-3, "save_checkpoints_steps": 6,
    "log_every_steps": 3, "iterations_per_loop": 3, "keep_checkpoint_max": 1,
}
N_SENTENCES = 64     # sentences whose logits are compared
N_GEN_STORED = 8     # sentences whose full generator logits are stored for `check`
N_TOKENIZER_LINES = 1000
SEED_TEXT = "한국어 ELECTRA를 공유합니다."
SEED_IDS = [2, 11229, 29173, 13352, 25541, 4110, 7824, 17788, 18, 3]
ATOL = 1e-5


def data_dir():
  from tests.conftest import shared_data_dir
  return shared_data_dir()


def tokenizer_lines(n=N_TOKENIZER_LINES):
  """The first n rows of KoELECTRA's hate-speech set: news title + comment, one line each.

  The titles are news headlines, the real text where compatibility ideographs (U+F90A)
  occur.
  """
  path = data_dir() / "hate-speech" / "koelectra" / "train.tsv"
  out = []
  with open(path, encoding="utf-8") as f:
    next(f)
    for line in f:
      cols = line.rstrip("\n").split("\t")
      out.append(cols[0] + " " + cols[1])
      if len(out) == n:
        break
  return out


def sentences(n=N_SENTENCES):
  """n KorSTS sentences (first sentence of each dev pair)."""
  path = data_dir() / "korsts" / "sts-dev.tsv"
  with open(path, encoding="utf-8") as f:
    rows = [l.rstrip("\n").split("\t") for l in f][1:n + 1]
  return [r[5] for r in rows]


def encode(tokenizer, texts, seq=SEQ):
  """(ids, mask, types) [len(texts), seq] int64 with the project tokenizer."""
  ids = np.zeros([len(texts), seq], np.int64)
  for i, text in enumerate(texts):
    toks = ["[CLS]"] + tokenizer.tokenize(text)[:seq - 2] + ["[SEP]"]
    ids[i, :len(toks)] = tokenizer.convert_tokens_to_ids(toks)
  mask = (ids > 0).astype(np.int64)
  return ids, mask, np.zeros_like(ids)


# ------------------------------------------------------------------ make (TensorFlow side)


def pretrain_tiny(root, vocab_file, n_lines=160):
  """Builds TFRecords from real comments under root and pretrains TINY; returns config."""
  import build_pretraining_dataset
  import configure_pretraining
  from pretrain import runner
  from tests.conftest import head_lines
  corpus = os.path.join(root, "corpus")
  os.makedirs(corpus, exist_ok=True)
  lines = head_lines(data_dir() / "corpus" / "hate-speech-unlabeled" /
                     "unlabeled_comments_5.txt", n_lines)
  with open(os.path.join(corpus, "comments.txt"), "w", encoding="utf-8") as f:
    f.write("\n\n".join("\n".join(lines[i:i + 10]) for i in range(0, len(lines), 10)) + "\n")
  rc = build_pretraining_dataset.main([
      "--corpus-dir", corpus, "--vocab-file", vocab_file,
      "--output-dir", os.path.join(root, "pretrain_tfrecords"), "--max-seq-length", str(SEQ),
      "--num-out-files", "1", "--no-progress"])
  assert rc in (0, None), rc
  config = configure_pretraining.PretrainingConfig("tiny", root, vocab_file=vocab_file, **TINY)
  runner.train_or_eval(config, log=lambda line: None)
  return config


def tf_logits(config, ckpt, ids, mask, types, batch=16):
  """Discriminator [B, S] and generator MLM [B, S, V] logits of the TF graph, dropout off.

  The heads are built with the variable names of pretrain/electra.py, on every position
  (PretrainingModel computes the generator's only at masked positions).
  """
  import tensorflow.compat.v1 as tf
  from model import modeling
  from model import sizes
  disc_cfg = sizes.bert_config(config.bert_hparams())
  gen_cfg = sizes.bert_config(config.generator_hparams())
  e = config.embedding_dim()
  graph = tf.Graph()
  with graph.as_default():
    ph = [tf.placeholder(tf.int32, [None, ids.shape[1]]) for _ in range(3)]
    disc = modeling.BertModel(disc_cfg, False, *ph, use_one_hot_embeddings=False,
                              scope="electra", embedding_size=e)
    untied = config.untied_generator_embeddings  # the generator's own [V, hidden] table
    gen = modeling.BertModel(gen_cfg, False, *ph, use_one_hot_embeddings=False,
                             scope="generator", embedding_size=None if untied else e,
                             untied_embeddings=untied)
    with tf.variable_scope("discriminator_predictions"):
      h = modeling.dense(disc.get_sequence_output(), disc_cfg.hidden_size, name="dense",
                         activation=modeling.gelu)
      d_logits = tf.squeeze(modeling.dense(h, 1, name="dense_1"), -1)
    with tf.variable_scope("generator_predictions"):
      width = gen.get_embedding_table().shape[-1]
      h = modeling.dense(gen.get_sequence_output(), width, name="dense",
                         activation=modeling.gelu)
      h = modeling.layer_norm(h, name="LayerNorm")
      bias = tf.get_variable("output_bias", [disc_cfg.vocab_size])
      g_logits = tf.einsum("bsd,vd->bsv", h, gen.get_embedding_table()) + bias
    with tf.Session() as sess:
      tf.train.Saver().restore(sess, ckpt)
      out_d, out_g = [], []
      for i in range(0, len(ids), batch):
        feed = dict(zip(ph, (ids[i:i + batch], mask[i:i + batch], types[i:i + batch])))
        d, g = sess.run([d_logits, g_logits], feed)
        out_d.append(d)
        out_g.append(g)
  return np.concatenate(out_d), np.concatenate(out_g)


# Finetuned heads, built by finetune/heads.py under task_specific/<task>/ as the finetuning
# runner builds them: (task kind, task, label names) exported; "original" (the original
# ELECTRA classifier) and "korquad_joint" (joint_prediction) do not export.
HEAD_EXPORTS = (("sequence_classification", "nsmc", ["neg", "neu", "pos"]),
                ("token_classification", "ner", None),
                ("question_answering", "korquad", None))
NER_LABELS = 5


def _gelu(x):
  from scipy.special import erf
  return x * 0.5 * (1.0 + erf(x / np.sqrt(2.0)))


def head_outputs(kind, task, values, seq):
  """What each HF head computes, in numpy, from the TF encoder output seq [B, S, H]."""
  k = lambda s: values["task_specific/%s/%s/kernel" % (task, s)]
  b = lambda s: values["task_specific/%s/%s/bias" % (task, s)]
  if kind == "sequence_classification":  # dense -> gelu -> out_proj on [CLS]
    return _gelu(seq[:, 0] @ k("classifier/dense") + b("classifier/dense")) @ \
        k("classifier/out_proj") + b("classifier/out_proj")
  if kind == "token_classification":
    return seq @ k("dense") + b("dense")
  return np.stack([(seq @ k(n) + b(n))[..., 0] for n in ("dense", "dense_1")])  # [2, B, S]


def make_heads(work, config, ckpt, ids, mask, types):
  """The pretrained encoder plus the heads of finetune/heads.py (random weights, biases
  too) as a checkpoint under work/heads; each exportable head exported to
  work/export_heads/<kind>; heads_reference.npz holds the numpy head outputs on the TF
  encoder output (what HF must give) and the TF heads' own outputs. Returns the prefix."""
  import tensorflow.compat.v1 as tf
  from finetune import heads
  from model import checkpoint
  from model import modeling
  from model import sizes
  from model.hf import convert
  rng = np.random.RandomState(0)
  with tf.Graph().as_default():
    ids_t, mask_t, types_t = (tf.constant(x, tf.int32) for x in (ids, mask, types))
    bert = modeling.BertModel(sizes.bert_config(config.bert_hparams()), False,
                              ids_t, mask_t, types_t, use_one_hot_embeddings=False,
                              embedding_size=config.embedding_dim())
    seq_t = bert.get_sequence_output()
    tf_out = {}
    with tf.variable_scope("task_specific/nsmc"):
      tf_out["sequence_classification"] = heads.sentence_logits(seq_t, 3, False, "hf")
    with tf.variable_scope("task_specific/ner"):
      tf_out["token_classification"] = heads.tagging_logits(seq_t, NER_LABELS, False, "hf")
    with tf.variable_scope("task_specific/korquad"):
      span = heads.span_logits(seq_t, mask_t, types_t, False, style="hf")
      tf_out["question_answering"] = tf.stack([span["start_logits"], span["end_logits"]])
    with tf.variable_scope("task_specific/original"):
      heads.sentence_logits(seq_t, 2, False, "electra")
    with tf.variable_scope("task_specific/korquad_joint"):
      heads.span_logits(seq_t, mask_t, types_t, False, style="electra", joint=True)
    head_vars = [v for v in tf.global_variables() if v.op.name.startswith("task_specific/")]
    randomize = [tf.assign(v, rng.normal(0, 0.2, v.shape.as_list()).astype(np.float32))
                 for v in head_vars]
    tf.train.get_or_create_global_step()
    checkpoint.init_from_checkpoint(ckpt, prefixes=("electra/",))
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      sess.run(randomize)
      prefix = tf.train.Saver().save(sess, os.path.join(work, "heads", "model.ckpt"),
                                     global_step=9)
      seq, tf_values = sess.run([seq_t, tf_out])
  values = checkpoint.read_checkpoint_values(prefix)
  vocab = str(data_dir() / "vocab" / "v3" / "vocab.txt")
  expected = {}
  for kind, task, labels in HEAD_EXPORTS:
    convert.export(prefix, config, vocab, os.path.join(work, "export_heads", kind),
                     task_kind=kind, task_name=task, labels=labels, log=lambda l: None)
    expected[kind] = head_outputs(kind, task, values, seq)
    expected["tf_" + kind] = tf_values[kind]
  np.savez(os.path.join(work, "heads_reference.npz"), ids=ids, mask=mask, types=types,
           **expected)
  return prefix


def make(work):
  """Pretrain, export (discriminator + generator, finetuned heads) and store the
  references under work. Returns (config, checkpoint prefix)."""
  import tensorflow.compat.v1 as tf
  from model import tokenization
  from model.hf import convert
  vocab = str(data_dir() / "vocab" / "v3" / "vocab.txt")
  config = pretrain_tiny(os.path.join(work, "pretrain"), vocab)
  ckpt = tf.train.latest_checkpoint(config.model_dir)
  convert.export(ckpt, config, vocab, os.path.join(work, "export"), log=lambda l: None)
  tok = tokenization.FullTokenizer(vocab)
  ids, mask, types = encode(tok, sentences())
  d, g = tf_logits(config, ckpt, ids, mask, types)
  lines = tokenizer_lines()
  np.savez(os.path.join(work, "reference.npz"), ids=ids, mask=mask, types=types,
           disc_logits=d, gen_logits=g[:N_GEN_STORED])
  with open(os.path.join(work, "tokenizer_reference.json"), "w", encoding="utf-8") as f:
    json.dump({"lines": lines + [SEED_TEXT],
               "ids": [tok.convert_tokens_to_ids(["[CLS]"] + tok.tokenize(t) + ["[SEP]"])
                       for t in lines + [SEED_TEXT]]}, f, ensure_ascii=False)
  make_heads(work, config, ckpt, ids[:16], mask[:16], types[:16])
  return config, ckpt


# ------------------------------------------------------------------ check (transformers side)


def load_clean(cls, folder):
  """cls.from_pretrained(folder) in eval mode; fails if any weight is missing, unexpected,
  of another shape, or newly initialised."""
  model, info = cls.from_pretrained(folder, output_loading_info=True)
  problems = {k: list(v) for k, v in info.items() if v}
  if problems:
    raise AssertionError("%s from %s: %s" % (cls.__name__, folder, problems))
  return model.eval()


def hf_logits(model, ids, mask, types, batch=16):
  import torch
  out = []
  with torch.no_grad():
    for i in range(0, len(ids), batch):
      out.append(model(input_ids=torch.tensor(ids[i:i + batch]),
                       attention_mask=torch.tensor(mask[i:i + batch]),
                       token_type_ids=torch.tensor(types[i:i + batch])).logits.numpy())
  return np.concatenate(out)


def tokenizer_mismatches(tokenizer, lines, expected):
  """Indices of lines whose ids differ from the expected ones."""
  return [i for i, (line, ids) in enumerate(zip(lines, expected))
          # verbose=False: lines longer than the tiny model's 64 positions are fine here
          if tokenizer(line, verbose=False)["input_ids"] != ids]


def check(work, log=print):
  """Loads the exported folders with the installed transformers and compares everything.

  Returns a report dict; raises AssertionError on any difference beyond ATOL or any
  loading problem.
  """
  import transformers
  ref = np.load(os.path.join(work, "reference.npz"))
  with open(os.path.join(work, "tokenizer_reference.json"), encoding="utf-8") as f:
    toks = json.load(f)
  export = os.path.join(work, "export")
  report = {"transformers": transformers.__version__}
  disc = load_clean(transformers.ElectraForPreTraining, os.path.join(export, "discriminator"))
  d = hf_logits(disc, ref["ids"], ref["mask"], ref["types"])
  report["disc_max_abs_diff"] = float(np.abs(d - ref["disc_logits"]).max())
  gen = load_clean(transformers.ElectraForMaskedLM, os.path.join(export, "generator"))
  n = len(ref["gen_logits"])
  g = hf_logits(gen, ref["ids"][:n], ref["mask"][:n], ref["types"][:n])
  report["gen_max_abs_diff"] = float(np.abs(g - ref["gen_logits"]).max())
  assert gen.generator_lm_head.weight.data_ptr() == \
      gen.electra.embeddings.word_embeddings.weight.data_ptr(), "output layer not tied"
  lines, expected = toks["lines"], toks["ids"]
  for folder in ("discriminator", "generator"):
    fast = transformers.AutoTokenizer.from_pretrained(os.path.join(export, folder))
    report["fast_tokenizer_class"] = type(fast).__name__
    bad = tokenizer_mismatches(fast, lines, expected)
    assert not bad, "fast tokenizer differs on %d lines, first: %r" % (len(bad), lines[bad[0]])
  report["fast_tokenizer_lines"] = len(lines)
  if transformers.__version__.startswith("4."):  # 5.x has no slow BertTokenizer
    slow = transformers.AutoTokenizer.from_pretrained(os.path.join(export, "discriminator"),
                                                      use_fast=False)
    report["slow_tokenizer_class"] = type(slow).__name__
    bad = tokenizer_mismatches(slow, lines, expected)
    report["slow_tokenizer_mismatches"] = bad
    report["slow_mismatches_nfc_explained"] = all(
        unicodedata.normalize("NFC", lines[i]) != lines[i] for i in bad)
  heads = np.load(os.path.join(work, "heads_reference.npz"))
  batch = [heads[k] for k in ("ids", "mask", "types")]
  for kind, _, labels in HEAD_EXPORTS:
    cls = getattr(transformers, "ElectraFor" + {
        "sequence_classification": "SequenceClassification",
        "token_classification": "TokenClassification",
        "question_answering": "QuestionAnswering"}[kind])
    model = load_clean(cls, os.path.join(work, "export_heads", kind))
    if labels:
      assert [model.config.id2label[i] for i in range(len(labels))] == labels
    import torch
    with torch.no_grad():
      out = model(**{k: torch.tensor(v) for k, v in zip(
          ("input_ids", "attention_mask", "token_type_ids"), batch)})
    got = np.stack([out.start_logits.numpy(), out.end_logits.numpy()]) \
        if kind == "question_answering" else out.logits.numpy()
    report[kind + "_max_abs_diff"] = float(np.abs(got - heads[kind]).max())
    assert report[kind + "_max_abs_diff"] <= ATOL, report
  assert report["disc_max_abs_diff"] <= ATOL, report
  assert report["gen_max_abs_diff"] <= ATOL, report
  log(json.dumps(report, ensure_ascii=False))
  return report


def main(argv):
  if len(argv) != 2 or argv[0] not in ("make", "check"):
    print("usage: python -m tests.hf_reference make|check WORK_DIR", file=sys.stderr)
    return 2
  if argv[0] == "make":
    from util import tf_logging
    tf_logging.quiet()  # before TensorFlow loads
    make(argv[1])
  else:
    check(argv[1])
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
