"""Finetune and evaluate on a Korean benchmark under TPUEstimator, as the original command line:

  python run_finetuning.py --data-dir DIR --model-name NAME --hparams JSON_OR_FILE
                           [--preset koelectra|electra] [--verbose] [--check-xla]

Task data is read from DIR/finetuning_data/<task>/ (KoELECTRA's file names; see
docs/finetuning.md). The encoder starts from `init_checkpoint`, by default the newest
checkpoint in DIR/models/NAME (a model pretrained by run_pretraining.py, or an original
ELECTRA / KoELECTRA TF checkpoint put there). Each trial trains in
DIR/models/NAME/finetuning_models/<task>_model/trial_<t>; rerunning the command resumes an
unfinished trial. Results go to DIR/models/NAME/results/: <task>_results.{json,txt} (each
trial and the median), results.md (every task's headline metric beside KoELECTRA's
published numbers) and predictions/<task>.<split>.<trial>.jsonl.
"""
import hashlib
import json
import statistics
import sys
import time

import configure_finetuning
from util import errors
from util import fileio
from util import hparams as hparams_lib
from util import tf_logging

# Splits scored by do_eval / do_test.
EVAL_SPLITS = (("do_eval", "dev"), ("do_test", "test"))


class RunError(errors.UserError):
  """A setting or file that makes the run impossible; the message says which."""


# --- the starting checkpoint ----------------------------------------------------------------

def find_init_checkpoint(config, log=print):
  """The checkpoint the encoder starts from, or None (random, only if allowed).

  Raises:
    RunError: none found and allow_random_init off; the vocab does not match the
      checkpoint's embedding rows; the encoder's variables differ from the checkpoint's.
  """
  from model import checkpoint as ckpt_lib
  where = config.init_checkpoint or config.pretrained_model_dir
  try:
    prefix = ckpt_lib.resolve_checkpoint(where)
  except ckpt_lib.CheckpointError as e:
    if config.allow_random_init:
      log(f"no checkpoint at {where}: the encoder starts from random weights "
          "(allow_random_init)")
      return None
    raise RunError(f"no checkpoint to start from ({e}); pretrain a model with "
                   "run_pretraining.py, set init_checkpoint in --hparams, or set "
                   "\"allow_random_init\": true for a smoke run") from e
  variables = ckpt_lib.checkpoint_variables(prefix)
  table = variables.get("electra/embeddings/word_embeddings")
  if table is None:
    raise RunError(f"{prefix} has no electra/embeddings/word_embeddings: not an ELECTRA "
                   "checkpoint (or written under another scope)")
  vocab_size = config.bert_hparams()["vocab_size"]
  if table[0] != vocab_size:
    raise RunError(f"{prefix} has a {table[0]}-token embedding matrix but vocab_size is "
                   f"{vocab_size} ({config.vocab_file}); use the checkpoint's vocab and "
                   f"\"vocab_size\": {table[0]}")
  check_encoder_matches(config, prefix, variables)
  return prefix


def check_encoder_matches(config, prefix, variables):
  """Raises RunError unless the checkpoint's electra/ variables are exactly the encoder's.

  tf.train.init_from_checkpoint loads what it is given, so an encoder with more layers
  than the checkpoint would start its extra layers from random weights without a word;
  the message says which --hparams build the checkpoint's encoder.
  """
  from model import checkpoint as ckpt_lib
  from model import sizes
  ours = {n: s for n, s in ckpt_lib.variables_of(lambda: _build_for_variables(config)).items()
          if n.startswith("electra/")}
  theirs = {n: s for n, s in variables.items() if n.startswith("electra/")}
  diff = ckpt_lib.compare_variables(theirs, ours)
  if diff.ok:
    return
  raise RunError(f"{prefix} holds an encoder of another shape than this config "
                 f"(model_size {config.model_size!r}){sizes.hparams_hint(variables)}:\n"
                 f"{diff.describe('the checkpoint', 'this model')}")


# --- features, cached as TFRecords ----------------------------------------------------------

def _tokenizer(config):
  from model import tokenization
  return tokenization.FastTokenizer(config.vocab_file, do_lower_case=config.do_lower_case)


def _cache_key(config, split, read, batch_size):
  """Features depend on the task, split, length, vocab and reading options; evaluation
  files are padded to a multiple of their batch size."""
  with fileio.open_file(config.vocab_file, "rb") as f:
    vocab = hashlib.sha1(f.read()).hexdigest()[:10]
  parts = [config.task_name, split, str(config.max_seq_length), vocab]
  if split != "train":
    parts.append(f"b{batch_size}")
    if _sort_by_length(config):
      parts.append("bylen")
  if config.task_name == "korquad":
    parts += [f"q{config.max_query_length}", f"s{config.doc_stride}"]
  if split == "train" and config.include_snli:
    parts.append("snli")
  if split == "train" and config.double_unordered and _unordered(config):
    parts.append("both-orders")
  if read.dev_slice:
    parts.append("slice")
  return ".".join(parts)


def _sort_by_length(config):
  """Evaluation features are cached shortest first when batches are trimmed."""
  from finetune import model as model_lib
  return config.trim_padding and not config.use_tpu and model_lib.can_trim(config, False)


def _unordered(config):
  # The original doubles MRPC and STS: the paraphrase and similarity tasks here.
  return config.task_name in ("korsts", "paws")


def _both_orders(examples):
  import dataclasses
  return list(examples) + [dataclasses.replace(e, text_a=e.text_b, text_b=e.text_a)
                           for e in examples if getattr(e, "text_b", None)]


class Split(object):
  """One split's examples, features (for decoding) and cached TFRecord file."""

  def __init__(self, name, read, feature_set, path, num_records):
    self.name, self.read, self.feature_set = name, read, feature_set
    self.path, self.num_records = path, num_records


def prepare_split(config, split, tokenizer, batch_size, log=print, shuffle_seed=None):
  """Reads, converts and caches one split; reuses the cache when present.

  Evaluation splits are padded with padding features to a multiple of the batch size
  (TPUs need whole batches; decoding ignores the padding). The training split is written
  in a shuffled order (seeded) and read with a small shuffle buffer, as the original.
  """
  import numpy as np
  from finetune import features as features_lib
  from finetune import readers
  from util import tfrecord_writer
  read = readers.read_examples(config.task_name, config.data_dir, split,
                               snli=config.include_snli and split == "train",
                               skip_bad_answers=config.skip_bad_answers)
  log(read.summary())
  examples = read.examples
  if split == "train" and config.double_unordered and _unordered(config):
    examples = _both_orders(examples)
  path = fileio.join(config.preprocessed_data_dir, _cache_key(config, split, read, batch_size) +
                     ".tfrecord")
  meta_path = path + ".json"
  cached = (config.use_tfrecords_if_existing and fileio.exists(path)
            and fileio.exists(meta_path))
  if cached and split == "train":
    with fileio.open_file(meta_path) as f:
      meta = json.load(f)
    log(f"  reusing {path} ({meta['num_records']:,} features)")
    return Split(split, read, None, path, meta["num_records"])
  feature_set = features_lib.convert_examples(
      config.task_name, examples, tokenizer, config.max_seq_length,
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
    if _sort_by_length(config):
      # Batches of similar lengths, each run at its longest (finetune/model.py); _predict
      # puts the outputs back in feature order.
      lengths = [int(np.sum(r["input_mask"])) for r in records]
      records = [records[i] for i in np.argsort(lengths, kind="stable")]
    pad = features_lib.padding_feature(config.task_name, config.max_seq_length)
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


def _build_for_variables(config):
  """The finetuning graph on placeholders: what a checkpoint of `config` holds."""
  import tensorflow.compat.v1 as tf
  from finetune import features as features_lib
  from finetune import model as model_lib
  features = {
      name: tf.placeholder(tf.int32 if dtype == "int64" else tf.float32, [2] + list(shape),
                           name=name)
      for name, (dtype, shape) in features_lib.feature_spec(
          config.task_name, config.max_seq_length).items()}
  model_lib.FinetuningModel(config, features, is_training=True)


def check_architecture(config, checkpoint):
  """Raises RunError if a trial's checkpoint was written by another architecture."""
  from model import checkpoint as ckpt_lib
  try:
    ckpt_lib.check_checkpoint_matches(
        checkpoint, ckpt_lib.variables_of(lambda: _build_for_variables(config)),
        ignore=(r"^global_step$",))
  except ckpt_lib.CheckpointError as e:
    from model import sizes
    hint = sizes.hparams_hint(ckpt_lib.checkpoint_variables(checkpoint))
    raise RunError(f"{checkpoint} was written by a model of another architecture{hint}; "
                   f"use another model_dir or the hparams that wrote it.\n{e}") from e


def check_trials_to_evaluate(config):
  """With do_train off, every trial must have a finetuned checkpoint: the Estimator would
  otherwise predict from a fresh graph (the encoder under a random head) with only a
  warning in the log."""
  import tensorflow.compat.v1 as tf
  for trial in range(1, config.num_trials + 1):
    trial_dir = fileio.join(config.model_dir, f"trial_{trial}")
    if not tf.train.latest_checkpoint(trial_dir):
      raise RunError(f"do_train is off and {trial_dir} holds no finetuned checkpoint to "
                     "evaluate; train it first (do_train), or lower num_trials to the "
                     "trials kept (keep_all_models)")


def _name_to_features(config):
  import tensorflow.compat.v1 as tf
  from finetune import features as features_lib
  spec = features_lib.feature_spec(config.task_name, config.max_seq_length)
  return {name: tf.io.FixedLenFeature(list(shape), tf.int64 if dtype == "int64"
                                      else tf.float32)
          for name, (dtype, shape) in spec.items()}


# --- model_fn -------------------------------------------------------------------------------

def model_fn_builder(config, num_train_steps, init_checkpoint, model_dir):
  """The TPUEstimator model_fn: FinetuningModel + optimizer (train) or outputs (predict).

  Args:
    config: FinetuningConfig.
    num_train_steps: length of the learning-rate schedule.
    init_checkpoint: prefix whose electra/ variables initialise the encoder, or None.
    model_dir: where TensorBoard summaries go (the trial's directory).
  """
  import tensorflow.compat.v1 as tf
  from finetune import model as model_lib
  from model import checkpoint as ckpt_lib
  from model import optimization
  from util import estimator as estimator_lib

  fused = config.fused_kernels and not config.use_tpu
  trim = config.trim_padding and not config.use_tpu

  def model_fn(features, labels, mode, params):
    del labels, params
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    model = model_lib.FinetuningModel(config, features, is_training, fused=fused,
                                      trim=trim)
    scaffold_fn = None
    if init_checkpoint:
      assignment, _ = ckpt_lib.get_assignment_map(init_checkpoint,
                                                  tvars=tf.trainable_variables(),
                                                  prefixes=("electra/",))
      if not assignment:
        raise RunError(f"{init_checkpoint} has no variable of this encoder under electra/")
      if config.use_tpu:
        def tpu_scaffold():
          tf.train.init_from_checkpoint(init_checkpoint, dict(assignment))
          return tf.train.Scaffold()
        scaffold_fn = tpu_scaffold
      else:
        tf.train.init_from_checkpoint(init_checkpoint, dict(assignment))
    if is_training:
      train_op = optimization.create_optimizer(
          model.loss, config.learning_rate, num_train_steps,
          weight_decay_rate=config.weight_decay_rate, use_tpu=config.use_tpu,
          warmup_proportion=config.warmup_proportion,
          layerwise_lr_decay_power=config.layerwise_lr_decay,
          n_transformer_layers=model.bert_config.num_hidden_layers,
          legacy_layerwise_lr=config.legacy_layerwise_lr, fused=fused,
          epsilon=config.adam_epsilon, bias_correction=config.adam_bias_correction)
      lr = optimization.learning_rate_schedule(
          config.learning_rate, tf.train.get_or_create_global_step(), num_train_steps,
          warmup_proportion=config.warmup_proportion)
      return estimator_lib.train_spec(
          model.loss, train_op, {"loss": model.loss, "lr": lr}, model_dir=model_dir,
          num_train_steps=num_train_steps, batch_size=config.train_batch_size,
          log_every_steps=config.log_every_steps, use_tpu=config.use_tpu,
          scaffold_fn=scaffold_fn)
    if mode == tf.estimator.ModeKeys.PREDICT:
      return tf.estimator.tpu.TPUEstimatorSpec(mode=mode, predictions=model.outputs,
                                               scaffold_fn=scaffold_fn)
    raise RunError(f"finetuning has no {mode} mode (evaluation goes through predict)")

  return model_fn


# --- one trial ------------------------------------------------------------------------------

def _predict(estimator, config, split):
  """Runs the model over a split's cached features: {output name: stacked array}."""
  import numpy as np
  from util import tfrecord_input
  input_fn = tfrecord_input.get_input_fn(split.path, _name_to_features(config),
                                         is_training=False)
  rows = {}
  for out in estimator.predict(input_fn=input_fn, yield_single_examples=False):
    for k, v in out.items():
      rows.setdefault(k, []).append(v)
  outputs = {k: np.concatenate(v) for k, v in rows.items()}
  return in_feature_order(outputs)


def in_feature_order(outputs):
  """Output rows sorted back into feature order (the cache may hold them by length).

  A feature's index is its feature_id (KorQuAD) or example_id (one feature per example
  otherwise); padding features (example_id -1) go last.
  """
  import numpy as np
  ids = np.asarray(outputs.get("feature_id", outputs["example_id"])).astype(np.int64)
  ids = np.where(np.asarray(outputs["example_id"]) < 0, np.iinfo(np.int64).max, ids)
  order = np.argsort(ids, kind="stable")
  return {k: np.asarray(v)[order] for k, v in outputs.items()}


def _evaluate(estimator, config, split, trial, word_level_logits, log=print):
  from finetune import postprocess
  from finetune import predictions as predictions_lib
  from finetune import scorers
  start = time.time()
  outputs = _predict(estimator, config, split)
  examples = split.read.examples
  preds = postprocess.decode(config.task_name, examples, split.feature_set, outputs,
                             word_level_logits=word_level_logits,
                             n_best_size=config.n_best_size,
                             max_answer_length=config.max_answer_length,
                             final_text=config.qa_final_text)
  paths = predictions_lib.write_predictions(config.results_dir, config.task_name,
                                            split.name, trial, examples, preds)
  metrics = scorers.score(config.task_name, examples, preds)
  log(f"  {split.name}: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(metrics.items())
                                      if k != "num_examples") +
      f" ({len(split.feature_set.features):,} features in {time.time() - start:.1f}s) "
      f"-> {paths[0]}")
  return metrics


def run_trial(config, trial, splits, num_train_steps, init_checkpoint,
              estimator_overrides=None, log=print):
  """Trains trial `trial` (resuming) and scores its evaluation splits."""
  from util import estimator as estimator_lib
  from util import tfrecord_input
  from finetune import tasks as tasks_lib
  trial_dir = fileio.join(config.model_dir, f"trial_{trial}")
  resume = estimator_lib.recover_model_dir(trial_dir, log=log)
  if resume:
    check_architecture(config, resume)
    log(f"trial {trial}: resuming from {resume}")
  model_fn = model_fn_builder(config, num_train_steps, init_checkpoint, trial_dir)
  seed = None if config.seed is None else config.seed + trial - 1
  estimator = estimator_lib.from_config(
      config, model_fn, model_dir=trial_dir, tf_random_seed=seed,
      **(estimator_overrides or {}))
  out = {"trial": trial, "model_dir": trial_dir}
  if config.do_train:
    train = splits["train"]
    log(f"trial {trial}: training to step {num_train_steps} ({train.num_records:,} "
        f"features, batch {config.train_batch_size}, {config.num_train_epochs:g} epochs)")
    start = time.time()
    estimator.train(input_fn=tfrecord_input.get_input_fn(
        train.path, _name_to_features(config), is_training=True, seed=seed),
        max_steps=num_train_steps)
    out["train_seconds"] = time.time() - start
    out["global_step"] = int(estimator.get_variable_value("global_step"))
  spec = tasks_lib.get_task(config.task_name)
  word_level = spec.kind == tasks_lib.TAGGING and config.classifier_head == "electra"
  for key, split_name in EVAL_SPLITS:
    if getattr(config, key):
      out[split_name] = _evaluate(estimator, config, splits[split_name], trial, word_level,
                                  log=log)
  return out


# --- results --------------------------------------------------------------------------------

def summarize(config, trials):
  """{split: {metric: {"trials": [...], "median": m}}} over the trials."""
  summary = {}
  for split in ("dev", "test"):
    per = [t[split] for t in trials if split in t]
    if not per:
      continue
    summary[split] = {k: {"trials": [p[k] for p in per],
                          "median": statistics.median(p[k] for p in per)}
                      for k in per[0]}
  return summary


def write_results(config, trials, skipped, log=print):
  """<task>_results.{json,txt} and the Markdown table over every task in results_dir."""
  from finetune import tasks as tasks_lib
  spec = tasks_lib.get_task(config.task_name)
  summary = summarize(config, trials)
  record = {"task": config.task_name, "metric": spec.metric, "model_name": config.model_name,
            "model_size": config.model_size, "preset": config.preset,
            "num_trials": len(trials), "splits": summary, "skipped_rows": skipped,
            "trials": trials, "hparams": config.to_dict()}
  fileio.makedirs(config.results_dir)
  base = fileio.join(config.results_dir, f"{config.task_name}_results")
  with fileio.atomic_write(base + ".json") as f:
    json.dump(record, f, indent=2, sort_keys=True, ensure_ascii=False, default=str)
  with fileio.atomic_write(base + ".txt") as f:
    for split, metrics in summary.items():
      for k, v in sorted(metrics.items()):
        trials_str = ", ".join(f"{x:.2f}" for x in v["trials"])
        f.write(f"{config.task_name} {split} {k}: median {v['median']:.2f} "
                f"(trials: {trials_str})\n")
  table = results_table(config.results_dir, config.model_size)
  with fileio.atomic_write(fileio.join(config.results_dir, "results.md")) as f:
    f.write(table)
  log(table)
  return base + ".json"


def results_table(results_dir, model_size):
  """Markdown: each task's headline metric (median over trials; test split when scored,
  else dev) beside KoELECTRA's published Base-v3 / Small-v3 numbers, tasks in the
  published table's order."""
  from finetune import tasks as tasks_lib
  head = ["", "model"] + [f"{n} ({tasks_lib.get_task(n).metric})"
                          for n in tasks_lib.TASK_NAMES]
  ours = ["ours", model_size]
  for name in tasks_lib.TASK_NAMES:
    path = fileio.join(results_dir, f"{name}_results.json")
    cell = "-"
    if fileio.exists(path):
      with fileio.open_file(path) as f:
        rec = json.load(f)
      for split in ("test", "dev"):
        m = rec["splits"].get(split, {}).get(rec["metric"])
        if m is not None:
          cell = f"{m['median']:.2f} ({split}, {rec['num_trials']} trial"
          cell += "s)" if rec["num_trials"] > 1 else ")"
          break
    ours.append(cell)
  rows = [ours]
  for key, label in (("base-v3", "KoELECTRA-Base-v3"), ("small-v3", "KoELECTRA-Small-v3")):
    rows.append(["published", label] + [
        "/".join(f"{v:.2f}" for v in tasks_lib.get_task(n).published.get(key, {}).values())
        or "-" for n in tasks_lib.TASK_NAMES])
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  lines += ["| " + " | ".join(r) + " |" for r in rows]
  return "\n".join(lines) + "\n"


# --- TPU readiness -------------------------------------------------------------------------

# Rows of the batch the XLA check compiles (compilation does not depend on the batch size).
XLA_CHECK_ROWS = 2


def check_xla(config, log=print):
  """--check-xla: one train step of this task built as use_tpu builds it, compiled whole by
  XLA on the CPU and run once, on the first features of the training split (random
  encoder weights: the check is about the graph, not the checkpoint).

  Returns:
    util.xla_check.XlaCheckResult.

  Raises:
    util.xla_check.XlaCheckError: naming the op and tensor that blocked compilation.
  """
  import copy
  import tempfile
  from util import tfrecord_input
  from util import xla_check
  train = prepare_split(config, "train", _tokenizer(config), config.train_batch_size,
                        log=log, shuffle_seed=config.seed)
  input_fn = tfrecord_input.get_input_fn(train.path, _name_to_features(config),
                                         is_training=True)
  batch = xla_check.first_batch(input_fn, XLA_CHECK_ROWS)
  tpu = copy.deepcopy(config)
  tpu.use_tpu, tpu.fused_kernels = True, False
  with tempfile.TemporaryDirectory() as tmp:
    return xla_check.check_train_step(model_fn_builder(tpu, 10, None, tmp), batch)


# --- driver ---------------------------------------------------------------------------------

def run(config, estimator_overrides=None, log=print):
  """Preflight, features, every trial, results. Returns the results record path and the
  per-trial outputs."""
  from model import tokenization
  from util import estimator as estimator_lib
  from util import tpu as tpu_lib
  start = time.time()
  tokenization.check_vocab_size(config.vocab_file, config.bert_hparams()["vocab_size"])
  tpu_lib.settle_core_count(config, log=log)
  log("running on " + estimator_lib.device_line(config.use_tpu, config.num_tpu_cores,
                                                config.fused_kernels and not config.use_tpu))
  if config.do_train:
    init_checkpoint = find_init_checkpoint(config, log=log)
    if init_checkpoint:
      log(f"encoder initialised from {init_checkpoint}")
  else:  # evaluation only: the trials' own checkpoints hold the encoder and the head
    init_checkpoint = None
    check_trials_to_evaluate(config)
  tokenizer = _tokenizer(config)
  splits = {}
  if config.do_train:
    splits["train"] = prepare_split(config, "train", tokenizer, config.train_batch_size,
                                    log=log, shuffle_seed=config.seed)
  for key, split_name in EVAL_SPLITS:
    if getattr(config, key):
      splits[split_name] = prepare_split(config, split_name, tokenizer,
                                         config.predict_batch_size, log=log)
  num_train_steps = 0
  if config.do_train:
    num_train_steps = int(splits["train"].num_records // config.train_batch_size *
                          config.num_train_epochs)
    if num_train_steps < 1:
      raise RunError(f"{splits['train'].num_records} training features make no whole "
                     f"batch of {config.train_batch_size}; lower train_batch_size")
  import tensorflow.compat.v1 as tf
  tf.get_logger().setLevel("ERROR")
  trials = []
  for trial in range(1, config.num_trials + 1):
    trials.append(run_trial(config, trial, splits, num_train_steps, init_checkpoint,
                            estimator_overrides=estimator_overrides, log=log))
    if not config.keep_all_models and trial > 1:
      fileio.rmtree(fileio.join(config.model_dir, f"trial_{trial - 1}"))
  skipped = {name: [str(s) for s in sp.read.skipped] for name, sp in splits.items()}
  path = write_results(config, trials, skipped, log=log)
  log(f"done in {time.time() - start:.0f}s; results in {path}")
  return path, trials


def build_parser():
  """The command line's argparse parser (also used by tests that check documented commands)."""
  return hparams_lib.runner_parser(
      __doc__.split("\n")[0], configure_finetuning.PRESETS,
      data_dir_help="directory (local or gs://) with finetuning_data/ and vocab.txt",
      model_name_help="the pretrained model in DATA_DIR/models/NAME",
      check_xla_writes="writes no checkpoint")


def main(argv=None):
  """The command line; returns the exit status (2 and one error line for a UserError)."""
  return errors.run_main(_main, argv)


def _main(argv):
  args = build_parser().parse_args(argv)
  config = configure_finetuning.FinetuningConfig.from_hparams(
      args.model_name, args.data_dir, args.hparams, preset=args.preset)
  if args.check_xla:
    print(check_xla(config).summary())
    return 0
  run(config)
  return 0


if __name__ == "__main__":
  tf_logging.quiet(verbose="--verbose" in sys.argv[1:])  # before TensorFlow loads
  sys.exit(main())
