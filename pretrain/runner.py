"""Pretraining under TPUEstimator: the checks made before any graph, the model_fn, the XLA
check and the train / eval driver. run_pretraining.py is its command line.

`use_tpu` off runs the same model_fn on CPU/GPU. A rerun resumes from the newest complete
checkpoint; with `do_eval` the masked-LM and discriminator metrics go to
<model_dir>/results/unsup_results.{txt,json}.
"""
import time

import tensorflow.compat.v1 as tf

from model import checkpoint as ckpt_lib
from model import memory
from model import optimization
from model import tokenization
from pretrain import electra
from util import distribute
from util import errors
from util import estimator as estimator_lib
from util import results as results_lib
from util import run_guard
from util import tfrecord_input
from util import tpu as tpu_lib
from util import xla_check

RunError = errors.RunError


# --- checks made before any graph is built ------------------------------------------------

def build_for_variables(config):
  """The pretraining graph on placeholders: what a checkpoint of `config` holds."""
  features = {name: tf.placeholder(tf.int32, [2, config.max_seq_length], name=name)
              for name in ("input_ids", "input_mask", "segment_ids")}
  electra.PretrainingModel(config, features, is_training=True)


def preflight(config, log=print):
  """Every check that can fail fast, in the order a user would fix them.

  Args:
    config: PretrainingConfig.
    log: where progress lines go.

  Returns:
    (tfrecord files, checkpoint prefix to resume from or None).

  Raises:
    UserError subclasses naming the hparam or file to fix.
  """
  if not (config.do_train or config.do_eval):
    raise RunError("nothing to do: set do_train and/or do_eval in --hparams")
  try:
    files = tfrecord_input.expand_patterns(config.pretrain_tfrecords)
  except tfrecord_input.InputError as e:
    raise RunError(f"{e} (pretrain_tfrecords; build them with build_pretraining_dataset.py "
                   "or set pretrain_tfrecords in --hparams)") from e
  tfrecord_input.check_feature_lengths(
      files, tfrecord_input.pretraining_features(config.max_seq_length))
  tokenization.check_vocab_size(config.vocab_file, config.bert_hparams()["vocab_size"])
  tpu_lib.settle_core_count(config, log=log)
  if config.do_train:
    distribute.check_global_batch(
        config.train_batch_size, distribute.num_replicas(config.distribution,
                                                         config.num_cpu_devices))
  if config.use_tpu:
    for line in memory.tpu_lines(config):
      log(line)
  if not distribute.is_chief(config.distribution):
    # model_dir is the chief's: a worker only reads the checkpoint every worker restores.
    return files, tf.train.latest_checkpoint(config.model_dir)
  if config.debug and config.do_train:
    estimator_lib.empty_for_debug(config.model_dir, config.debug_overwrite, log=log)
  resume = estimator_lib.recover_model_dir(config.model_dir, log=log)
  if resume:
    ckpt_lib.check_architecture(resume, lambda: build_for_variables(config),
                                what="discriminator")
  elif config.do_eval and not config.do_train:
    raise RunError(f"do_eval: no checkpoint to evaluate in {config.model_dir}")
  return files, resume


# --- model_fn -------------------------------------------------------------------------------

def model_fn_builder(config, model_dir=None):
  """The TPUEstimator model_fn: PretrainingModel + optimizer + logging + metrics.

  Args:
    config: PretrainingConfig.
    model_dir: where TensorBoard summaries go (default: config.model_dir).

  Returns:
    model_fn(features, labels, mode, params) -> TPUEstimatorSpec; features are int32
    [B, max_seq_length] input_ids, input_mask, segment_ids.
  """
  # Off TPU, fused XLA kernels (element-wise ops in the model, the AdamW update); on TPU
  # XLA compiles the whole program and the plain ops (the original graph) run.
  fused = config.fused_kernels and not config.use_tpu

  def model_fn(features, labels, mode, params):
    del labels, params
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    model = electra.PretrainingModel(config, features, is_training)
    if is_training:
      train_op = optimization.create_optimizer(
          model.total_loss, config.learning_rate, config.num_train_steps,
          weight_decay_rate=config.weight_decay_rate, use_tpu=config.use_tpu,
          warmup_steps=config.num_warmup_steps, lr_decay_power=config.lr_decay_power,
          fused=fused)
      # The same schedule again, only to log it (a handful of scalar ops).
      learning_rate = optimization.learning_rate_schedule(
          config.learning_rate, tf.train.get_or_create_global_step(), config.num_train_steps,
          warmup_steps=config.num_warmup_steps, lr_decay_power=config.lr_decay_power)
      # Logged and summarised under short names: total, generator (MLM), discriminator.
      scalars = {"loss": model.total_loss, "gen_loss": model.mlm_loss}
      if model.disc_loss is not None:
        scalars["disc_loss"] = model.disc_loss
      scalars["lr"] = learning_rate
      return estimator_lib.train_spec(
          model.total_loss, train_op, scalars, model_dir=model_dir or config.model_dir,
          num_train_steps=config.num_train_steps, batch_size=config.train_batch_size,
          log_every_steps=config.log_every_steps, use_tpu=config.use_tpu)
    if mode == tf.estimator.ModeKeys.EVAL:
      return estimator_lib.eval_spec(
          model.total_loss, model.eval_metrics, num_eval_steps=config.num_eval_steps,
          batch_size=config.eval_batch_size, use_tpu=config.use_tpu)
    raise RunError(f"pretraining has no {mode} mode")

  return model_fn


def check_xla(config):
  """--check-xla: one train step built as use_tpu builds it, compiled whole by XLA on the
  CPU and run once on the first rows of the TFRecords (util/xla_check.check_config).

  Returns:
    util.xla_check.XlaCheckResult.

  Raises:
    util.xla_check.XlaCheckError: naming the op and tensor that blocked compilation.
  """
  files = tfrecord_input.expand_patterns(config.pretrain_tfrecords)
  input_fn = tfrecord_input.get_input_fn(
      files, tfrecord_input.pretraining_features(config.max_seq_length), is_training=True)
  return xla_check.check_config(config, input_fn, model_fn_builder)


# --- driver ---------------------------------------------------------------------------------

def train_or_eval(config, estimator_overrides=None, log=print):
  """Train for num_train_steps (resuming) and/or evaluate num_eval_steps batches.

  Args:
    config: PretrainingConfig.
    estimator_overrides: keyword arguments for util/estimator.build_estimator (tests,
      benchmarks: thread counts, XLA, seeds).
    log: where progress lines go.

  Returns:
    {"global_step", "results" (eval dict or None), "results_txt", "results_json",
     "seconds"}.

  Raises:
    UserError subclasses (preflight) before any graph is built.
  """
  start = time.time()
  distribute.prepare_devices(config.distribution, config.num_cpu_devices)
  files, resume = preflight(config, log=log)
  tf.get_logger().setLevel("ERROR")
  log(f"model_dir {config.model_dir}; {len(files)} TFRecord file(s); "
      + (f"resuming from {resume}" if resume else "starting from scratch"))
  estimator = estimator_lib.from_config(config, model_fn_builder(config),
                                        **(estimator_overrides or {}))
  features = tfrecord_input.pretraining_features(config.max_seq_length)
  out = {"results": None, "results_txt": None, "results_json": None}
  if config.do_train:
    log(f"training to step {config.num_train_steps} (batch {config.train_batch_size}, "
        f"length {config.max_seq_length}) on "
        + estimator_lib.device_line(config.use_tpu, config.num_tpu_cores,
                                    config.fused_kernels and not config.use_tpu,
                                    config.distribution, config.num_cpu_devices))
    distribute.train(estimator, tfrecord_input.get_input_fn(files, features, is_training=True,
                                                            log=log),
                     config.num_train_steps, config.distribution,
                     timeout_secs=config.worker_timeout_secs, log=log)
  skip = distribute.chief_only(config.distribution)
  if config.do_eval and skip:
    log(skip)
  elif config.do_eval:
    log(f"evaluating {config.num_eval_steps} batches of {config.eval_batch_size}")
    # As the original: evaluation draws batches from the shuffled, repeated TFRecords.
    result = estimator.evaluate(
        input_fn=tfrecord_input.get_input_fn(files, features, is_training=False,
                                             shuffle=True, repeat=True),
        steps=config.num_eval_steps)
    result = {k: results_lib.plain(v) for k, v in result.items()}
    for key in sorted(result):
      log(f"  {key} = {result[key]}")
    out["results"] = result
    out["results_txt"], out["results_json"] = results_lib.append_results(
        config.results_txt, result)
  out["global_step"] = int(estimator.get_variable_value("global_step"))
  out["seconds"] = time.time() - start
  return out


def run_command(config, xla_check_only=False):
  """What `python run_pretraining.py` does: the XLA check (--check-xla), or train_or_eval
  and a summary line. Returns the exit status (0)."""
  if xla_check_only:
    print("\n".join([check_xla(config).summary()] + memory.tpu_lines(config)))
    return 0
  with run_guard.explained_failures(
      config.model_dir, config.pretrain_tfrecords.split(","),
      "check it with `python build_pretraining_dataset.py --inspect {path} --vocab-file "
      "VOCAB` and rebuild the TFRecords (build_pretraining_dataset.py --overwrite)"):
    out = train_or_eval(config)
  print(f"done in {out['seconds']:.0f}s: global step {out['global_step']}, "
        f"model in {config.model_dir}"
        + (f", results in {out['results_txt']}" if out["results_txt"] else ""))
  return 0
