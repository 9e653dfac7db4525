"""Task files -> cached TFRecord features, as the original ELECTRA's finetune/preprocessing.py.

Each split is read (finetune/readers.py), converted (finetune/features.py) and written once
to `preprocessed_data_dir` under a name that holds everything the features depend on
(`cache_key`); a rerun reuses the file (`use_tfrecords_if_existing`). The training split is
written in a seeded shuffled order; evaluation splits are padded with padding features to a
multiple of the batch size (TPUs need whole batches; decoding ignores the padding) and,
when batches are trimmed (finetune/model.py), ordered shortest first; `in_feature_order`
puts the model's outputs back in feature order.
"""
import dataclasses
import hashlib
import json
from typing import Optional

import numpy as np
import tensorflow.compat.v1 as tf

from finetune import features as features_lib
from finetune import model as model_lib
from finetune import readers
from model import tokenization
from util import fileio
from util import tfrecord_writer


def record_features(config):
  """{name: tf.io.FixedLenFeature} of the task's cached features (finetune/features.py's
  feature_spec at config.max_seq_length); the input pipeline reads int64 as int32."""
  spec = features_lib.feature_spec(config.task, config.max_seq_length)
  return {name: tf.io.FixedLenFeature(list(shape), tf.int64 if dtype == "int64"
                                      else tf.float32)
          for name, (dtype, shape) in spec.items()}


def tokenizer_for(config):
  """The task's tokenizer: config.vocab_file, config.do_lower_case."""
  return tokenization.FastTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)


def cache_key(config, split, read, batch_size):
  """The cache file's name: features depend on the task, split, length, vocab and reading
  options; evaluation files are padded to a multiple of their batch size."""
  with fileio.open_file(config.vocab_file, "rb") as f:
    vocab = hashlib.sha1(f.read()).hexdigest()[:10]
  parts = [config.task_name, split, str(config.max_seq_length), vocab]
  if split != "train":
    parts.append(f"b{batch_size}")
    if sort_by_length(config):
      parts.append("bylen")
  if config.task_name == "korquad":
    parts += [f"q{config.max_query_length}", f"s{config.doc_stride}"]
  if split == "train" and config.include_snli:
    parts.append("snli")
  if split == "train" and config.double_unordered and _unordered(config):
    parts.append("both-orders")
  if read.dev_slice:
    parts.append(f"slice{read.dev_slice:g}")
  if config.task.columns is not None:
    # A custom task's files are the user's and may change under the same name: the key
    # holds their contents and the label ids.
    digest = hashlib.sha1("\n".join(config.task.labels).encode("utf-8"))
    for path in read.paths:
      with fileio.open_file(path, "rb") as f:
        digest.update(f.read())
    parts.append(digest.hexdigest()[:10])
  return ".".join(parts)


def sort_by_length(config):
  """Evaluation features are cached shortest first when batches are trimmed."""
  return config.trim_padding and not config.use_tpu and model_lib.can_trim(config, False)


def _unordered(config):
  # The original doubles MRPC and STS: the paraphrase and similarity tasks here.
  return config.task_name in ("korsts", "paws")


def _both_orders(examples):
  return list(examples) + [dataclasses.replace(e, text_a=e.text_b, text_b=e.text_a)
                           for e in examples if getattr(e, "text_b", None)]


@dataclasses.dataclass
class Split:
  """One split's examples, features (for decoding; None when a training cache is reused)
  and cached TFRecord file."""
  name: str
  read: readers.ReadResult
  feature_set: Optional[features_lib.FeatureSet]
  path: str
  num_records: int


def prepare_split(config, split, tokenizer, batch_size, log=print, shuffle_seed=None):
  """Reads, converts and caches one split; reuses the cache when present.

  Args:
    config: FinetuningConfig.
    split: "train", "dev" or "test".
    tokenizer: from tokenizer_for.
    batch_size: evaluation splits are padded to a multiple of it.
    log: where progress lines go.
    shuffle_seed: the training split's write order (None: 0).

  Returns:
    Split.

  Raises:
    UserError subclasses (finetune/readers.py) naming the bad file and line.
  """
  read = readers.read_examples(config.task, config.data_dir, split,
                               snli=config.include_snli and split == "train",
                               skip_bad_answers=config.skip_bad_answers,
                               dev_fraction=config.dev_slice_fraction,
                               raw_data_dir=config.raw_data_dir)
  log(read.summary())
  examples = read.examples
  if split == "train" and config.double_unordered and _unordered(config):
    examples = _both_orders(examples)
  path = fileio.join(config.preprocessed_data_dir,
                     cache_key(config, split, read, batch_size) + ".tfrecord")
  meta_path = path + ".json"
  cached = (config.use_tfrecords_if_existing and fileio.exists(path)
            and fileio.exists(meta_path))
  if cached and split == "train":
    with fileio.open_file(meta_path) as f:
      meta = json.load(f)
    log(f"  reusing {path} ({meta['num_records']:,} features)")
    return Split(split, read, None, path, meta["num_records"])
  feature_set = features_lib.convert_examples(
      config.task, examples, tokenizer, config.max_seq_length,
      doc_stride=config.doc_stride, max_query_length=config.max_query_length)
  if feature_set.words_cut:
    log(f"  {feature_set.words_cut:,} word(s) cut off by max_seq_length "
        f"{config.max_seq_length}: predicted O and counted in the metric")
  if feature_set.sequences_cut:
    log(f"  {feature_set.sequences_cut:,} example(s) truncated to {config.max_seq_length}")
  records = list(feature_set.features)
  if split == "train":
    order = np.random.RandomState(shuffle_seed or 0).permutation(len(records))
    records = [records[i] for i in order]
  else:
    if sort_by_length(config):
      # Batches of similar lengths, each run at its longest (finetune/model.py);
      # in_feature_order puts the outputs back.
      lengths = [int(np.sum(r["input_mask"])) for r in records]
      records = [records[i] for i in np.argsort(lengths, kind="stable")]
    pad = features_lib.padding_feature(config.task, config.max_seq_length)
    records += [pad] * (-len(records) % batch_size)
  if not cached:
    fileio.makedirs(config.preprocessed_data_dir)
    tfrecord_writer.write_records(path, (tfrecord_writer.encode_example(
        {k: np.atleast_1d(v) for k, v in r.items()}) for r in records))
    with fileio.atomic_write(meta_path) as f:
      json.dump({"num_records": len(records), "num_features": len(feature_set.features),
                 "num_examples": len(examples)}, f)
    log(f"  wrote {len(records):,} features to {path}")
  return Split(split, read, feature_set, path, len(records))


def in_feature_order(outputs):
  """Output rows sorted back into feature order (the cache may hold them by length).

  A feature's index is its feature_id (KorQuAD) or example_id (one feature per example
  otherwise); padding features (example_id -1) go last.

  Args:
    outputs: {output name: array [N, ...]} with example_id (and feature_id) [N].

  Returns:
    The same arrays, rows reordered.
  """
  ids = np.asarray(outputs.get("feature_id", outputs["example_id"])).astype(np.int64)
  ids = np.where(np.asarray(outputs["example_id"]) < 0, np.iinfo(np.int64).max, ids)
  order = np.argsort(ids, kind="stable")
  return {k: np.asarray(v)[order] for k, v in outputs.items()}
