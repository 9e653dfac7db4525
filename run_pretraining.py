"""Pretrain (or evaluate) an ELECTRA model under TPUEstimator, as the original command line:

  python run_pretraining.py --data-dir DIR --model-name NAME [--hparams JSON_OR_FILE]
                            [--preset koelectra-small-v3] [--verbose]

DIR (local or gs://) holds `pretrain_tfrecords/pretrain_data.tfrecord*` and `vocab.txt`;
the model goes to DIR/models/NAME (all three can be moved with hparams). `use_tpu` off runs
the same model_fn on CPU/GPU. Rerunning the same command resumes from the newest complete
checkpoint. With `do_eval` the masked-LM and discriminator metrics are written to
<model_dir>/results/unsup_results.{txt,json}.
"""
import sys
import time

import configure_pretraining
from util import errors
from util import hparams as hparams_lib
from util import tf_logging
from util import tfrecord_input


class RunError(errors.UserError):
  """A setting or file that makes the run impossible; the message says which."""


# --- checks made before any graph is built ------------------------------------------------

def _build_for_variables(config):
  """The pretraining graph on placeholders: what a checkpoint of `config` holds."""
  import tensorflow.compat.v1 as tf
  from pretrain import electra
  features = {name: tf.placeholder(tf.int32, [2, config.max_seq_length], name=name)
              for name in ("input_ids", "input_mask", "segment_ids")}
  electra.PretrainingModel(config, features, is_training=True)


def check_architecture(config, checkpoint):
  """Raises RunError if `checkpoint` was written by a model of another architecture."""
  from model import checkpoint as ckpt_lib
  try:
    ckpt_lib.check_checkpoint_matches(
        checkpoint, ckpt_lib.variables_of(lambda: _build_for_variables(config)),
        ignore=(r"^global_step$",))
  except ckpt_lib.CheckpointError as e:
    from model import sizes
    hint = sizes.hparams_hint(ckpt_lib.checkpoint_variables(checkpoint), "discriminator")
    raise RunError(f"{config.model_dir} holds a checkpoint of a different architecture"
                   f"{hint}; use another "
                   f"--model-name (or model_dir), or the hparams that wrote it.\n{e}") from e


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
  from model import memory
  from model import tokenization
  from util import estimator as estimator_lib
  from util import tpu as tpu_lib
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
  if config.use_tpu:
    for line in memory.tpu_lines(config):
      log(line)
  if config.debug and config.do_train:
    estimator_lib.empty_for_debug(config.model_dir, config.debug_overwrite, log=log)
  resume = estimator_lib.recover_model_dir(config.model_dir, log=log)
  if resume:
    check_architecture(config, resume)
  elif config.do_eval and not config.do_train:
    raise RunError(f"do_eval: no checkpoint to evaluate in {config.model_dir}")
  return files, resume


# --- model_fn -------------------------------------------------------------------------------

def model_fn_builder(config):
  """The TPUEstimator model_fn: PretrainingModel + optimizer + logging + metrics."""
  import tensorflow.compat.v1 as tf
  from model import optimization
  from pretrain import electra
  from util import estimator as estimator_lib

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
          model.total_loss, train_op, scalars, model_dir=config.model_dir,
          num_train_steps=config.num_train_steps, batch_size=config.train_batch_size,
          log_every_steps=config.log_every_steps, use_tpu=config.use_tpu)
    if mode == tf.estimator.ModeKeys.EVAL:
      return estimator_lib.eval_spec(
          model.total_loss, model.eval_metrics, num_eval_steps=config.num_eval_steps,
          batch_size=config.eval_batch_size, use_tpu=config.use_tpu)
    raise RunError(f"pretraining has no {mode} mode")

  return model_fn


# --- TPU readiness -------------------------------------------------------------------------

# Rows of the batch the XLA check compiles: whether a graph compiles does not depend on the
# batch size, and a per-core Base batch of 32 x 512 would only cost CPU time and memory.
XLA_CHECK_ROWS = 2


def check_xla(config):
  """--check-xla: one train step built as use_tpu builds it (plain ops, use_bf16 as set,
  drop_remainder, host_call summaries), compiled whole by XLA on the CPU and run once.

  Returns:
    util.xla_check.XlaCheckResult.

  Raises:
    util.xla_check.XlaCheckError: naming the op and tensor that blocked compilation.
  """
  import copy
  import tempfile
  from util import xla_check
  files = tfrecord_input.expand_patterns(config.pretrain_tfrecords)
  input_fn = tfrecord_input.get_input_fn(
      files, tfrecord_input.pretraining_features(config.max_seq_length), is_training=True)
  batch = xla_check.first_batch(input_fn, XLA_CHECK_ROWS)
  with tempfile.TemporaryDirectory() as tmp:
    # host_call writes summaries into model_dir: a throwaway one, never the real (gs://) one.
    tpu = copy.deepcopy(config)
    tpu.update({"use_tpu": True, "fused_kernels": False, "model_dir": tmp})
    return xla_check.check_train_step(model_fn_builder(tpu), batch)


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
  """
  from util import results as results_lib
  start = time.time()
  files, resume = preflight(config, log=log)
  import tensorflow.compat.v1 as tf
  from util import estimator as estimator_lib
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
                                    config.fused_kernels and not config.use_tpu))
    estimator.train(input_fn=tfrecord_input.get_input_fn(files, features, is_training=True),
                    max_steps=config.num_train_steps)
  if config.do_eval:
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
  out["global_step"] = estimator.get_variable_value("global_step")
  out["seconds"] = time.time() - start
  return out


def build_parser():
  """The command line's argparse parser (also used by tests that check documented commands)."""
  return hparams_lib.runner_parser(
      __doc__.split("\n")[0], configure_pretraining.PRESETS,
      data_dir_help="directory (local or gs://) with pretrain_tfrecords/ and vocab.txt",
      model_name_help="the model goes to DATA_DIR/models/NAME",
      check_xla_writes="writes nothing to model_dir")


def main(argv=None):
  """The command line; returns the exit status (2 and one error line for a UserError)."""
  return errors.run_main(_main, argv)


def _main(argv):
  args = build_parser().parse_args(argv)
  config = configure_pretraining.PretrainingConfig.from_hparams(
      args.model_name, args.data_dir, args.hparams, preset=args.preset)
  if args.check_xla:
    from model import memory
    print("\n".join([check_xla(config).summary()] + memory.tpu_lines(config)))
    return 0
  out = train_or_eval(config)
  print(f"done in {out['seconds']:.0f}s: global step {out['global_step']}, "
        f"model in {config.model_dir}"
        + (f", results in {out['results_txt']}" if out["results_txt"] else ""))
  return 0


if __name__ == "__main__":
  tf_logging.quiet(verbose="--verbose" in sys.argv[1:])  # before TensorFlow loads
  sys.exit(main())
