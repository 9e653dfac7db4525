"""Finetuning under TPUEstimator: the starting checkpoint, the model_fn, the trials loop and
the XLA check. run_finetuning.py is its command line.

`run` checks the vocab and the starting checkpoint, caches each split's features
(finetune/preprocessing.py), trains and scores every trial (trial t in
model_dir/trial_<t>, resumed when unfinished) and writes the results
(finetune/results.py). The feature names, dtypes and shapes are computed once per run
(`preprocessing.record_features`) and handed to everything that reads or builds features.
"""
import json
import time

import numpy as np
import tensorflow.compat.v1 as tf

from finetune import model as model_lib
from finetune import postprocess
from finetune import predictions as predictions_lib
from finetune import preprocessing
from finetune import results as results_lib
from finetune import scorers
from finetune import tasks as tasks_lib
from model import checkpoint as ckpt_lib
from model import optimization
from model import sizes
from model import tokenization
from util import distribute
from util import errors
from util import estimator as estimator_lib
from util import fileio
from util import run_guard
from util import tfrecord_input
from util import tpu as tpu_lib
from util import xla_check

RunError = errors.RunError

# Splits scored by do_eval / do_test.
EVAL_SPLITS = (("do_eval", "dev"), ("do_test", "test"))


# --- the starting checkpoint ----------------------------------------------------------------

def build_for_variables(config, features):
  """The finetuning graph on placeholders: what a checkpoint of `config` holds.

  Args:
    config: FinetuningConfig.
    features: preprocessing.record_features(config).
  """
  placeholders = {name: tf.placeholder(tf.int32 if f.dtype == tf.int64 else f.dtype,
                                       [2] + list(f.shape), name=name)
                  for name, f in features.items()}
  model_lib.FinetuningModel(config, placeholders, is_training=True)


def find_init_checkpoint(config, features, log=print):
  """The checkpoint the encoder starts from, or None (random, only if allowed).

  Args:
    config: FinetuningConfig (init_checkpoint, else pretrained_model_dir).
    features: preprocessing.record_features(config).
    log: where progress lines go.

  Returns:
    A checkpoint prefix, or None.

  Raises:
    RunError: none found and allow_random_init off; the vocab does not match the
      checkpoint's embedding rows; the encoder's variables differ from the checkpoint's.
  """
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
  table = variables.get(ckpt_lib.WORD_EMBEDDINGS)
  if table is None:
    raise RunError(f"{prefix} has no {ckpt_lib.WORD_EMBEDDINGS}: not an ELECTRA "
                   "checkpoint (or written under another scope)")
  vocab_size = config.bert_hparams()["vocab_size"]
  if table[0] != vocab_size:
    raise RunError(f"{prefix} has a {table[0]}-token embedding matrix but vocab_size is "
                   f"{vocab_size} ({config.vocab_file}); use the checkpoint's vocab and "
                   f"\"vocab_size\": {table[0]}")
  # tf.train.init_from_checkpoint loads what it is given, so an encoder with more layers
  # than the checkpoint would start its extra layers from random weights without a word.
  ours = {n: s for n, s in
          ckpt_lib.variables_of(lambda: build_for_variables(config, features)).items()
          if n.startswith("electra/")}
  theirs = {n: s for n, s in variables.items() if n.startswith("electra/")}
  diff = ckpt_lib.compare_variables(theirs, ours)
  if not diff.ok:
    raise RunError(f"{prefix} holds an encoder of another shape than this config "
                   f"(model_size {config.model_size!r}){sizes.hparams_hint(variables)}:\n"
                   f"{diff.describe('the checkpoint', 'this model')}")
  return prefix


def check_trials_to_evaluate(config):
  """With do_train off, every trial must have a finetuned checkpoint: the Estimator would
  otherwise predict from a fresh graph (the encoder under a random head) with only a
  warning in the log.

  Raises:
    RunError: naming the first trial directory without a checkpoint.
  """
  for trial in range(1, config.num_trials + 1):
    trial_dir = fileio.join(config.model_dir, f"trial_{trial}")
    if not tf.train.latest_checkpoint(trial_dir):
      raise RunError(f"do_train is off and {trial_dir} holds no finetuned checkpoint to "
                     "evaluate; train it first (do_train), or lower num_trials to the "
                     "trials kept (keep_all_models)")


# --- a trial's hparams -----------------------------------------------------------------------

# The record of the hparams a trial was trained with, in its directory.
TRIAL_HPARAMS = "trial_hparams.json"  # not hparams.json: import_hf.py writes that one
# Keys that do not change the trained model (paths, evaluation, logging, devices): a rerun
# may change them and still reuse a trial. Every other key, also one added later, must
# match the record.
NOT_TRAINING_KEYS = frozenset((
    "model_name", "data_dir", "raw_data_dir", "pretrained_model_dir", "model_dir",
    "results_dir", "preprocessed_data_dir", "vocab_file", "init_checkpoint",
    "allow_random_init", "retrain", "do_train", "do_eval", "do_test", "num_trials",
    "keep_all_models", "eval_batch_size", "predict_batch_size", "n_best_size",
    "max_answer_length", "qa_final_text", "beam_size", "log_every_steps",
    "save_checkpoints_steps", "keep_checkpoint_max", "iterations_per_loop",
    "use_tfrecords_if_existing", "fused_kernels", "trim_padding", "use_tpu",
    "num_tpu_cores", "tpu_job_name", "tpu_name", "tpu_zone", "gcp_project"))


def _training_hparams(config_dict):
  return {k: v for k, v in json.loads(json.dumps(config_dict, default=str)).items()
          if k not in NOT_TRAINING_KEYS}


def check_trial_hparams(config, trial_dir, log=print):
  """A trial directory is reused (resumed, or its finished model scored) only with the
  hparams it was trained with: a rerun with another learning_rate would otherwise score
  the old model under the new value. Records them on the trial's first run.

  Args:
    config: FinetuningConfig.
    trial_dir: the trial's directory.
    log: where the line about a retrained trial goes.

  Raises:
    RunError: the record differs in a key that changes the trained model, naming the
      keys; with `"retrain": true` the old trial is moved aside instead (never deleted).
  """
  if not config.do_train:
    # Scoring or predicting with a finished model (a new test file, say) trains nothing:
    # the hparams of this run do not describe the model, and check_trials_to_evaluate
    # and the architecture check judge the trial.
    return
  path = fileio.join(trial_dir, TRIAL_HPARAMS)
  ours = _training_hparams(config.to_dict())
  if fileio.exists(path):
    with fileio.open_file(path) as f:
      theirs = _training_hparams(json.load(f))
    changed = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
    if not changed:
      return
    if not config.retrain:
      shown = "; ".join(f"{k} {theirs.get(k)!r} -> {ours.get(k)!r}" for k in changed[:5])
      raise RunError(f"{trial_dir} was trained with other hparams ({shown}); use another "
                     "--model-name (or model_dir), or set \"retrain\": true to move it aside "
                     "and train again")
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    parent = fileio.join(config.model_dir, "replaced_trials", stamp)
    aside = fileio.join(parent, trial_dir.rstrip("/").rsplit("/", 1)[-1])
    fileio.makedirs(parent)
    fileio.rename(trial_dir, aside)
    log(f"retrain: {trial_dir} (trained with other {', '.join(changed)}) moved to {aside}")
  fileio.makedirs(trial_dir)
  with fileio.atomic_write(path) as f:
    json.dump(config.to_dict(), f, indent=2, sort_keys=True, ensure_ascii=False,
              default=str)


# --- model_fn -------------------------------------------------------------------------------

def model_fn_builder(config, num_train_steps, init_checkpoint, model_dir):
  """The TPUEstimator model_fn: FinetuningModel + optimizer (train) or outputs (predict).

  Args:
    config: FinetuningConfig.
    num_train_steps: length of the learning-rate schedule.
    init_checkpoint: prefix whose electra/ variables initialise the encoder, or None.
    model_dir: where TensorBoard summaries go (the trial's directory).

  Returns:
    model_fn(features, labels, mode, params) -> TPUEstimatorSpec; features as
    preprocessing.record_features names them, int32 / float32 [B, ...].
  """
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
          epsilon=config.adam_epsilon, bias_correction=config.adam_bias_correction,
          replica_reduce="sum" if config.loss_reduction == "sum" else "mean")
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

def predict(estimator, split, features):
  """Runs the model over a split's cached features.

  Returns:
    {output name: array stacked over the split's features}, in feature order.
  """
  input_fn = tfrecord_input.get_input_fn(split.path, features, is_training=False)
  rows = {}
  for out in estimator.predict(input_fn=input_fn, yield_single_examples=False):
    for k, v in out.items():
      rows.setdefault(k, []).append(v)
  return preprocessing.in_feature_order({k: np.concatenate(v) for k, v in rows.items()})


def evaluate(estimator, config, split, trial, features, log=print):
  """Predicts, decodes, writes the predictions files and scores one split.

  Returns:
    {metric: value x100} (finetune/scorers.py).
  """
  start = time.time()
  outputs = predict(estimator, split, features)
  examples = split.read.examples
  spec = config.task
  word_level = spec.kind == tasks_lib.TAGGING and config.classifier_head == "electra"
  preds = postprocess.decode(spec, examples, split.feature_set, outputs,
                             word_level_logits=word_level,
                             n_best_size=config.n_best_size,
                             max_answer_length=config.max_answer_length,
                             final_text=config.qa_final_text)
  paths = predictions_lib.write_predictions(config.results_dir, spec, split.name, trial,
                                            examples, preds)
  took = (f" ({len(split.feature_set.features):,} features in {time.time() - start:.1f}s) "
          f"-> {paths[0]}")
  # A custom task's test file without the label column: predicted, not scored.
  if examples and (getattr(examples[0], "label", "") is None
                   or getattr(examples[0], "tags", "") is None):
    log(f"  {split.name}: {len(examples):,} predictions (no labels to score){took}")
    return {"num_examples": float(len(examples))}
  metrics = scorers.score(spec, examples, preds)
  log(f"  {split.name}: " + ", ".join(f"{k} {v:.2f}" for k, v in sorted(metrics.items())
                                      if k != "num_examples") + took)
  return metrics


def train_steps_per_epoch(config, num_records):
  """Steps in one pass over `num_records` training features: ceil(N / batch) with
  keep_partial_batch (KoELECTRA's DataLoader), floor(N / batch) without it (the original)
  and on TPU, whose batches are all full (each epoch leaves N mod batch features out)."""
  full = config.use_tpu or not config.keep_partial_batch
  batch = config.train_batch_size
  return num_records // batch if full else -(-num_records // batch)


def train_input_fn(config, train, features, seed, log=print):
  """The training input_fn: a new order of the whole split every epoch
  (reshuffle_each_epoch, util/tfrecord_input.epochs_input_fn), else the original's stream
  of the once-shuffled file through a 100-record buffer, full batches only.

  Args:
    config: FinetuningConfig.
    train: the training preprocessing.Split.
    features: preprocessing.record_features(config).
    seed: the trial's seed (None: unseeded).
    log: under a strategy, where the line saying which part a worker reads goes.
  """
  if not config.reshuffle_each_epoch:
    return tfrecord_input.get_input_fn(train.path, features, is_training=True, seed=seed,
                                       log=log)
  return tfrecord_input.epochs_input_fn(
      train.path, features, train.num_records, seed=seed,
      drop_remainder=config.use_tpu or not config.keep_partial_batch, log=log)


def run_trial(config, trial, splits, features, num_train_steps, init_checkpoint,
              estimator_overrides=None, log=print):
  """Trains trial `trial` (resuming) and scores its evaluation splits.

  Returns:
    {"trial", "model_dir", "train_seconds", "global_step", "dev" / "test": metrics}.

  Raises:
    CheckpointMismatchError: the trial's checkpoint was written by another architecture.
    RunError: the trial was trained with other hparams (check_trial_hparams).
  """
  trial_dir = fileio.join(config.model_dir, f"trial_{trial}")
  check_trial_hparams(config, trial_dir, log=log)
  chief = distribute.is_chief(config.distribution)
  # A worker that is not the chief leaves the chief's directory as it is.
  resume = estimator_lib.recover_model_dir(trial_dir, log=log) if chief else \
      tf.train.latest_checkpoint(trial_dir)
  if resume:
    ckpt_lib.check_architecture(resume, lambda: build_for_variables(config, features))
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
    distribute.train(estimator, train_input_fn(config, train, features, seed, log=log),
                     num_train_steps, config.distribution,
                     timeout_secs=config.worker_timeout_secs, log=log)
    out["train_seconds"] = time.time() - start
    out["global_step"] = int(estimator.get_variable_value("global_step"))
  for key, split_name in EVAL_SPLITS:
    if getattr(config, key) and chief:
      out[split_name] = evaluate(estimator, config, splits[split_name], trial, features,
                                 log=log)
  return out


def check_xla(config, log=print):
  """--check-xla: one train step of this task built as use_tpu builds it, compiled whole by
  XLA on the CPU and run once on the first features of the training split (random
  encoder weights: the check is about the graph, not the checkpoint).

  Returns:
    util.xla_check.XlaCheckResult.

  Raises:
    util.xla_check.XlaCheckError: naming the op and tensor that blocked compilation.
  """
  settle_custom_task(config, log=log)
  train = preprocessing.prepare_split(config, "train", preprocessing.tokenizer_for(config),
                                      config.train_batch_size, log=log,
                                      shuffle_seed=config.seed)
  input_fn = tfrecord_input.get_input_fn(train.path, preprocessing.record_features(config),
                                         is_training=True)
  return xla_check.check_config(
      config, input_fn, lambda tpu, model_dir: model_fn_builder(tpu, 10, None, model_dir))


# --- driver ---------------------------------------------------------------------------------

def settle_custom_task(config, log=print):
  """Fixes a custom task's labels in config (id order) before anything reads its files.

  The labels are the ones given in custom_tasks, else (training) those of the training
  file in first-seen order, else (prediction with do_train off) the ones saved with the
  model (tasks.TASK_FILE in model_dir). Built-in tasks are left as they are.

  Raises:
    RunError: the model's saved labels differ from this run's, or do_train is off and
      no labels are given or saved.
    UserError: the training file cannot be read (file and line).
  """
  spec = config.task
  if spec.columns is None:
    return
  saved = tasks_lib.read_task_file(config.model_dir)
  labels = spec.labels
  if spec.kind != tasks_lib.REGRESSION and not labels:
    if config.do_train:
      from finetune import table_readers
      labels = table_readers.collect_labels(spec)
      log(f"{spec.name}: {len(labels)} labels in first-seen order of "
          f"{spec.files['train'][0]}: {', '.join(labels)}")
    elif saved:
      labels = tuple(saved["labels"])
    else:
      raise RunError(f"do_train is off and {config.model_dir} holds no "
                     f"{tasks_lib.TASK_FILE} with {spec.name}'s labels; train first, or "
                     f"give custom_tasks.{spec.name}.labels in id order")
  if saved and (saved["kind"], list(saved["labels"])) != (spec.kind, list(labels)):
    raise RunError(f"{fileio.join(config.model_dir, tasks_lib.TASK_FILE)}: the model was "
                   f"trained as a {saved['kind']} task with labels "
                   f"{saved['labels']}, this run has {spec.kind} {list(labels)}; use "
                   f"another model_dir for a changed task")
  config.custom_tasks = dict(config.custom_tasks,
                             **{spec.name: dict(config.custom_tasks[spec.name],
                                                labels=list(labels) or None)})


def _prepare_splits(config, log):
  """{split name: preprocessing.Split} of the splits this run trains on and scores."""
  tokenizer = preprocessing.tokenizer_for(config)
  splits = {}
  # Evaluation splits first: a dev split the task lacks fails before any cache is written.
  for key, split_name in EVAL_SPLITS:
    if getattr(config, key) and distribute.is_chief(config.distribution):
      splits[split_name] = preprocessing.prepare_split(
          config, split_name, tokenizer, config.predict_batch_size, log=log)
  if config.do_train:
    splits["train"] = preprocessing.prepare_split(
        config, "train", tokenizer, config.train_batch_size, log=log,
        shuffle_seed=config.seed)
  return splits


def run(config, estimator_overrides=None, log=print):
  """Preflight, features, every trial, results.

  Args:
    config: FinetuningConfig.
    estimator_overrides: keyword arguments for util/estimator.build_estimator (tests,
      benchmarks).
    log: where progress lines go.

  Returns:
    (path of <task>_results.json, or None on a worker that is not the chief (the chief
    evaluates and writes the results), [per-trial output of run_trial]).

  Raises:
    UserError subclasses naming the hparam or file to fix, before any training.
  """
  start = time.time()
  distribute.prepare_devices(config.distribution, config.num_cpu_devices)
  tokenization.check_vocab_size(config.vocab_file, config.bert_hparams()["vocab_size"])
  settle_custom_task(config, log=log)
  tpu_lib.settle_core_count(config, log=log)
  log("running on " + estimator_lib.device_line(config.use_tpu, config.num_tpu_cores,
                                                config.fused_kernels and not config.use_tpu,
                                                config.distribution, config.num_cpu_devices))
  features = preprocessing.record_features(config)
  if config.do_train:
    init_checkpoint = find_init_checkpoint(config, features, log=log)
    if init_checkpoint:
      log(f"encoder initialised from {init_checkpoint}")
  else:  # evaluation only: the trials' own checkpoints hold the encoder and the head
    init_checkpoint = None
    check_trials_to_evaluate(config)
  splits = _prepare_splits(config, log)
  num_train_steps = 0
  if config.do_train:
    num_train_steps = int(train_steps_per_epoch(config, splits["train"].num_records) *
                          config.num_train_epochs)
    if not splits["train"].num_records:
      raise RunError(f"no training examples in {', '.join(splits['train'].read.paths)} "
                     "(the file is empty, or holds only its header)")
    if num_train_steps < 1:
      raise RunError(f"{splits['train'].num_records} training features make no whole "
                     f"batch of {config.train_batch_size}; lower train_batch_size")
    distribute.check_global_batch(
        config.train_batch_size, distribute.num_replicas(config.distribution,
                                                         config.num_cpu_devices))
  if config.do_train and config.task.columns is not None:
    # Saved with the model: prediction (do_train off) and export_hf.py read the ids.
    tasks_lib.write_task_file(config.model_dir, config.task)
  tf.get_logger().setLevel("ERROR")
  skip = distribute.chief_only(config.distribution)
  trials = []
  for trial in range(1, config.num_trials + 1):
    trials.append(run_trial(config, trial, splits, features, num_train_steps,
                            init_checkpoint, estimator_overrides=estimator_overrides,
                            log=log))
    if skip:
      continue
    if not config.keep_all_models and trial > 1:
      fileio.rmtree(fileio.join(config.model_dir, f"trial_{trial - 1}"))
  if skip:
    log(skip)
    return None, trials
  skipped = {name: [str(s) for s in sp.read.skipped] for name, sp in splits.items()}
  path = results_lib.write_results(config, trials, skipped, log=log)
  log(f"done in {time.time() - start:.0f}s; results in {path}")
  return path, trials


def run_command(config, xla_check_only=False):
  """What `python run_finetuning.py` does: the XLA check (--check-xla) or run. Returns the
  exit status (0)."""
  if xla_check_only:
    print(check_xla(config).summary())
    return 0
  with run_guard.explained_failures(
      config.model_dir, [fileio.join(config.preprocessed_data_dir, "*.tfrecord")],
      "delete it and rerun: the features are cached again from the task files"):
    run(config)
  return 0
