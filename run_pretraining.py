"""Pretrain (or evaluate) an ELECTRA model under TPUEstimator, as the original command line:

  python run_pretraining.py --data-dir DIR --model-name NAME [--hparams JSON_OR_FILE]
                            [--preset koelectra-small-v3]

DIR (local or gs://) holds `pretrain_tfrecords/pretrain_data.tfrecord*` and `vocab.txt`;
the model goes to DIR/models/NAME (all three can be moved with hparams). `use_tpu` off runs
the same model_fn on CPU/GPU. Rerunning the same command resumes from the newest complete
checkpoint. With `do_eval` the masked-LM and discriminator metrics are written to
<model_dir>/results/unsup_results.{txt,json}.
"""
import argparse
import json
import sys
import time

import configure_pretraining
from util import fileio
from util import tfrecord_input


class RunError(ValueError):
  """A setting or file that makes the run impossible; the message says which."""


# --- checks made before any graph is built ------------------------------------------------

def count_vocab(vocab_file):
  """Number of tokens in a vocab file, read (and checked) as the tokenizer reads it."""
  from model import tokenization
  try:
    return len(tokenization.load_vocab(vocab_file))
  except tokenization.VocabError as e:
    raise RunError(f"{e} (vocab_file; set it in --hparams)") from e


def expected_variables(config):
  """{name: shape} of the model variables the config builds, from a throwaway graph.

  Building the graph alone (no session, no initialisation) takes a second or two and gives
  the exact names and shapes, whatever options (tied embeddings, generator size) are set.
  """
  import tensorflow.compat.v1 as tf
  from pretrain import electra
  graph = tf.Graph()
  with graph.as_default():
    features = {name: tf.placeholder(tf.int32, [2, config.max_seq_length], name=name)
                for name in ("input_ids", "input_mask", "segment_ids")}
    electra.PretrainingModel(config, features, is_training=True)
    return {v.op.name: v.shape.as_list() for v in tf.global_variables()}


def check_architecture(config, checkpoint):
  """Raise RunError if `checkpoint` was written by a model of another architecture."""
  from model import checkpoint as ckpt_lib
  try:
    ckpt_lib.check_checkpoint_matches(checkpoint, expected_variables(config),
                                      ignore=(r"^global_step$",))
  except ckpt_lib.CheckpointError as e:
    raise RunError(f"{config.model_dir} holds a checkpoint of a different architecture; "
                   f"use another --model-name (or model_dir), or the hparams that wrote "
                   f"it.\n{e}") from e


def preflight(config, log=print):
  """Every check that can fail fast, in the order a user would fix them.

  Returns (tfrecord files, checkpoint to resume from or None).
  """
  from util import estimator as estimator_lib
  if not (config.do_train or config.do_eval):
    raise RunError("nothing to do: set do_train and/or do_eval in --hparams")
  try:
    files = tfrecord_input.expand_patterns(config.pretrain_tfrecords)
  except tfrecord_input.InputError as e:
    raise RunError(f"{e} (pretrain_tfrecords; build them with build_pretraining_dataset.py "
                   "or set pretrain_tfrecords in --hparams)") from e
  tfrecord_input.check_feature_lengths(
      files, tfrecord_input.pretraining_features(config.max_seq_length))
  n_vocab = count_vocab(config.vocab_file)
  if n_vocab != config.vocab_size:
    raise RunError(f"vocab_size is {config.vocab_size} but {config.vocab_file} has {n_vocab} "
                   f"tokens; set \"vocab_size\": {n_vocab} in --hparams or use the matching "
                   "vocab file")
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
  from util import training_hooks

  from model import modeling
  # The fused CPU/GPU kernels are not used on TPU: XLA fuses the whole TPU program anyway,
  # and there the plain ops are the tested path.
  fused = config.fused_kernels and not config.use_tpu
  modeling.FUSED_ELEMENTWISE = fused
  optimization.FUSED_UPDATE = fused

  def model_fn(features, labels, mode, params):
    del labels, params
    is_training = mode == tf.estimator.ModeKeys.TRAIN
    model = electra.PretrainingModel(config, features, is_training)
    if is_training:
      train_op = optimization.create_optimizer(
          model.total_loss, config.learning_rate, config.num_train_steps,
          weight_decay_rate=config.weight_decay_rate, use_tpu=config.use_tpu,
          warmup_steps=config.num_warmup_steps, lr_decay_power=config.lr_decay_power)
      # The same schedule again, only to log it (a handful of scalar ops).
      learning_rate = optimization.learning_rate_schedule(
          config.learning_rate, tf.train.get_or_create_global_step(), config.num_train_steps,
          warmup_steps=config.num_warmup_steps, lr_decay_power=config.lr_decay_power)
      # Logged and summarised under short names: total, generator (MLM), discriminator.
      scalars = {"loss": model.total_loss, "gen_loss": model.mlm_loss}
      if model.disc_loss is not None:
        scalars["disc_loss"] = model.disc_loss
      scalars["lr"] = learning_rate
      hook = training_hooks.ProgressHook(
          {} if config.use_tpu else scalars, config.num_train_steps,
          config.train_batch_size, every_n_steps=config.log_every_steps)
      return tf.estimator.tpu.TPUEstimatorSpec(
          mode=mode, loss=model.total_loss, train_op=train_op, training_hooks=[hook],
          host_call=training_hooks.make_host_call(config.model_dir, scalars,
                                                  config.log_every_steps))
    if mode == tf.estimator.ModeKeys.EVAL:
      hook = training_hooks.ProgressHook(
          {} if config.use_tpu else {"loss": model.total_loss}, config.num_eval_steps,
          config.eval_batch_size, every_n_steps=max(1, config.num_eval_steps // 5),
          is_training=False)
      return tf.estimator.tpu.TPUEstimatorSpec(
          mode=mode, loss=model.total_loss, eval_metrics=model.eval_metrics,
          evaluation_hooks=[hook])
    raise RunError(f"pretraining has no {mode} mode")

  return model_fn


# --- results --------------------------------------------------------------------------------

def _plain(v):
  try:
    return v.item()
  except AttributeError:
    return v


def write_results(config, result):
  """Append this evaluation to unsup_results.json and rewrite unsup_results.txt (atomically).

  Both hold every evaluation of the model so far, keyed by global step.
  """
  result = {k: _plain(v) for k, v in result.items()}
  txt = config.results_txt
  json_path = txt[:-4] + ".json" if txt.endswith(".txt") else txt + ".json"
  history = {}
  if fileio.exists(json_path):
    with fileio.open_file(json_path) as f:
      history = json.load(f)
  history[str(result.get("global_step", 0))] = result
  fileio.makedirs(txt.rsplit("/", 1)[0])
  with fileio.atomic_write(json_path) as f:
    json.dump(history, f, indent=2, sort_keys=True)
  with fileio.atomic_write(txt) as f:
    for step in sorted(history, key=int):
      f.write(f"step {step}: " + ", ".join(
          f"{k} = {v:.6g}" if isinstance(v, float) else f"{k} = {v}"
          for k, v in sorted(history[step].items()) if k != "global_step") + "\n")
  return txt, json_path


# --- driver ---------------------------------------------------------------------------------

def train_or_eval(config, estimator_overrides=None, log=print):
  """Train for num_train_steps (resuming) and/or evaluate num_eval_steps batches.

  Returns {"global_step", "results" (eval dict or None), "results_txt", "seconds"}.
  """
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
  out = {"results": None, "results_txt": None}
  if config.do_train:
    log(f"training to step {config.num_train_steps} (batch {config.train_batch_size}, "
        f"length {config.max_seq_length}, {'TPU' if config.use_tpu else 'CPU/GPU'})")
    estimator.train(input_fn=tfrecord_input.get_input_fn(files, features, is_training=True),
                    max_steps=config.num_train_steps)
  if config.do_eval:
    log(f"evaluating {config.num_eval_steps} batches of {config.eval_batch_size}")
    # As the original: evaluation draws batches from the shuffled, repeated TFRecords.
    result = estimator.evaluate(
        input_fn=tfrecord_input.get_input_fn(files, features, is_training=False,
                                             shuffle=True, repeat=True),
        steps=config.num_eval_steps)
    for key in sorted(result):
      log(f"  {key} = {_plain(result[key])}")
    out["results"] = {k: _plain(v) for k, v in result.items()}
    out["results_txt"], out["results_json"] = write_results(config, result)
  out["global_step"] = estimator.get_variable_value("global_step")
  out["seconds"] = time.time() - start
  return out


def build_config(args):
  hparams = configure_pretraining.parse_hparams(args.hparams)
  if args.preset:
    hparams.setdefault("preset", args.preset)
  return configure_pretraining.PretrainingConfig(args.model_name, args.data_dir, **hparams)


def build_parser():
  """The command line's argparse parser (also used by tests that check documented commands)."""
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--data-dir", required=True,
                 help="directory (local or gs://) with pretrain_tfrecords/ and vocab.txt")
  p.add_argument("--model-name", required=True, help="the model goes to DATA_DIR/models/NAME")
  p.add_argument("--hparams", default="{}", help="JSON object, or a path to a JSON file")
  p.add_argument("--preset", choices=sorted(configure_pretraining.PRESETS),
                 help="KoELECTRA settings applied before --hparams")
  return p


def main(argv=None):
  args = build_parser().parse_args(argv)
  try:
    config = build_config(args)
    out = train_or_eval(config)
  except (configure_pretraining.ConfigError, tfrecord_input.InputError, RunError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except Exception as e:  # TPU resolution and similar: named, not a traceback
    from util import estimator as estimator_lib
    if isinstance(e, estimator_lib.EstimatorConfigError):
      print(f"error: {e}", file=sys.stderr)
      return 2
    raise
  print(f"done in {out['seconds']:.0f}s: global step {out['global_step']}, "
        f"model in {config.model_dir}"
        + (f", results in {out['results_txt']}" if out["results_txt"] else ""))
  return 0


if __name__ == "__main__":
  sys.exit(main())
