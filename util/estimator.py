"""The one TPUEstimator builder shared by the pretraining and finetuning runners.

TPUEstimator is used everywhere: with `use_tpu` off the same model_fn runs on CPU or GPU
(TPUEstimator then behaves as a plain Estimator and runs host_call / eval_metrics on the
host), so there is one code path to test.
"""
import os

import tensorflow.compat.v1 as tf

from util import errors


class EstimatorConfigError(errors.UserError):
  """Inconsistent TPU / checkpoint settings."""


def _resolver(use_tpu, tpu_name, tpu_zone, gcp_project):
  if not use_tpu:
    return None
  if not tpu_name:
    # On a Cloud TPU VM the local TPU is found without a name.
    tpu_name = os.environ.get("TPU_NAME") or None
  try:
    return tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu_name, zone=tpu_zone, project=gcp_project)
  except (ValueError, RuntimeError) as e:
    raise EstimatorConfigError(
        f"use_tpu is on but the TPU could not be resolved (tpu_name={tpu_name!r}, "
        f"tpu_zone={tpu_zone!r}, gcp_project={gcp_project!r}): {e}") from e


def session_config(intra_op_threads=0, inter_op_threads=0, xla=False):
  """ConfigProto with thread pools (0 = TF's default: all cores) and optional XLA JIT."""
  cfg = tf.ConfigProto(allow_soft_placement=True,
                       intra_op_parallelism_threads=int(intra_op_threads or 0),
                       inter_op_parallelism_threads=int(inter_op_threads or 0))
  if xla:
    cfg.graph_options.optimizer_options.global_jit_level = tf.OptimizerOptions.ON_1
  return cfg


def build_estimator(model_fn, model_dir, *, use_tpu=False, tpu_name=None, tpu_zone=None,
                    gcp_project=None, num_tpu_cores=8, tpu_job_name=None,
                    iterations_per_loop=1000, save_checkpoints_steps=1000,
                    keep_checkpoint_max=5, train_batch_size=32, eval_batch_size=32,
                    predict_batch_size=None, log_step_count_steps=None,
                    save_summary_steps=None, intra_op_threads=0, inter_op_threads=0,
                    xla=False, session_config_proto=None, tf_random_seed=None, params=None):
  """A TPUEstimator with the original ELECTRA RunConfig.

  Checkpoints every `save_checkpoints_steps` (keep `keep_checkpoint_max`); on TPU,
  `iterations_per_loop` steps run on device between host round trips, with the input
  pipeline per host (PER_HOST_V2) as the original. Off TPU, thread pools and XLA come
  from intra_op_threads / inter_op_threads / xla, or a whole `session_config_proto`.
  """
  if use_tpu and save_checkpoints_steps % iterations_per_loop:
    # TPUEstimator can only save at loop boundaries.
    tf.logging.warning("save_checkpoints_steps %d is not a multiple of iterations_per_loop %d; "
                       "checkpoints land on loop boundaries", save_checkpoints_steps,
                       iterations_per_loop)
  tpu_config = tf.estimator.tpu.TPUConfig(
      iterations_per_loop=iterations_per_loop,
      num_shards=num_tpu_cores,
      tpu_job_name=tpu_job_name,
      per_host_input_for_training=tf.estimator.tpu.InputPipelineConfig.PER_HOST_V2)
  run_kwargs = {}
  if log_step_count_steps is not None:
    run_kwargs["log_step_count_steps"] = log_step_count_steps
  if save_summary_steps is not None:
    run_kwargs["save_summary_steps"] = save_summary_steps
  run_config = tf.estimator.tpu.RunConfig(
      cluster=_resolver(use_tpu, tpu_name, tpu_zone, gcp_project),
      model_dir=model_dir,
      save_checkpoints_steps=save_checkpoints_steps,
      keep_checkpoint_max=keep_checkpoint_max,
      session_config=None if use_tpu else (
          session_config_proto or session_config(intra_op_threads, inter_op_threads, xla)),
      tf_random_seed=tf_random_seed,
      tpu_config=tpu_config,
      **run_kwargs)
  return tf.estimator.tpu.TPUEstimator(
      use_tpu=use_tpu,
      model_fn=model_fn,
      config=run_config,
      params=params,
      train_batch_size=train_batch_size,
      eval_batch_size=eval_batch_size,
      predict_batch_size=predict_batch_size)


_CONFIG_KEYS = ("use_tpu", "tpu_name", "tpu_zone", "gcp_project", "num_tpu_cores",
                "tpu_job_name", "iterations_per_loop", "save_checkpoints_steps",
                "keep_checkpoint_max", "train_batch_size", "eval_batch_size",
                "predict_batch_size", "intra_op_threads", "inter_op_threads", "xla")


def from_config(config, model_fn, model_dir=None, **overrides):
  """build_estimator reading the settings off a config object (pretraining or finetuning).

  Attributes the config lacks keep build_estimator's defaults; `overrides` win.
  """
  kwargs = {k: getattr(config, k) for k in _CONFIG_KEYS if hasattr(config, k)}
  kwargs.update(overrides)
  return build_estimator(model_fn, model_dir or config.model_dir, **kwargs)


# --- resuming after a crash -------------------------------------------------------------

_CKPT_RE = r"^(?P<prefix>model\.ckpt-(?P<step>\d+))(?P<rest>.*)$"


def _checkpoint_complete(prefix):
  """True if the checkpoint at `prefix` opens and its data files hold every tensor's bytes.

  The index alone can open while a data shard is short; comparing sizes catches that
  without reading (possibly gigabytes of) tensor values.
  """
  import numpy as np
  try:
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    dtypes = reader.get_variable_to_dtype_map()
  except Exception:  # noqa: BLE001 - any failure to open means "not usable"
    return False
  need = 0
  for name, shape in shapes.items():
    dtype = dtypes[name]
    if dtype == tf.string:
      continue
    need += int(np.prod(shape, dtype=np.int64)) * dtype.size
  data = tf.io.gfile.glob(prefix + ".data-*")
  if not data:
    return False
  have = sum(tf.io.gfile.stat(f).length for f in data)
  return have >= need


def recover_model_dir(model_dir, log=print):
  """Make `model_dir` safe to resume from after a crash (e.g. SIGKILL) at any moment.

  TF writes the `checkpoint` state file atomically after a checkpoint's data and index,
  so it normally names a complete checkpoint. This defends the rest: if the newest listed
  checkpoint is unreadable or short it falls back to the newest complete one and rewrites
  the state file (atomically); it removes temporary files of an interrupted save and
  checkpoint files newer than the one resumed from (never tracked, so never deleted by
  keep_checkpoint_max); with no complete checkpoint at all it starts over. Returns the checkpoint prefix training will resume from, or None.
  """
  import re
  if not tf.io.gfile.isdir(model_dir):
    return None
  names = tf.io.gfile.listdir(model_dir)
  # Interrupted saves: sharded-save temp dirs and BundleWriter's temp files.
  for name in names:
    path = model_dir.rstrip("/") + "/" + name.rstrip("/")
    if re.match(r"^model\.ckpt-\d+_temp", name) or ".tempstate" in name:
      log(f"removing leftover of an interrupted checkpoint save: {path}")
      if tf.io.gfile.isdir(path):
        tf.io.gfile.rmtree(path)
      else:
        tf.io.gfile.remove(path)
  state = tf.train.get_checkpoint_state(model_dir)
  if state is None or not state.model_checkpoint_path:
    return None
  listed = list(state.all_model_checkpoint_paths) or [state.model_checkpoint_path]
  if state.model_checkpoint_path not in listed:
    listed.append(state.model_checkpoint_path)

  def full(p):
    return p if (p.startswith("/") or "://" in p) else model_dir.rstrip("/") + "/" + p

  def step_of(p):
    m = re.search(r"-(\d+)$", p)
    return int(m.group(1)) if m else -1

  listed.sort(key=step_of)
  good = [p for p in listed if _checkpoint_complete(full(p))]
  bad = [p for p in listed if p not in good]
  state_file = model_dir.rstrip("/") + "/checkpoint"
  if bad:
    log(f"incomplete or missing checkpoint(s): {', '.join(bad)}")
  if not good:
    # Nothing usable to resume from: start over rather than fail on every rerun.
    aside = state_file + ".incomplete"
    log(f"no complete checkpoint; starting from scratch (state file moved to {aside})")
    tf.io.gfile.rename(state_file, aside, overwrite=True)
    newest, newest_step = None, -1
  else:
    newest, newest_step = good[-1], step_of(good[-1])
    if bad:
      log(f"resuming from {newest}")
      tf.train.update_checkpoint_state(model_dir, newest, all_model_checkpoint_paths=good)
  # Files of incomplete checkpoints, and checkpoint files newer than the resume point (a
  # save that finished its files but not the state update): resuming retrains those steps,
  # and untracked files would never be deleted by keep_checkpoint_max.
  bad_steps = {step_of(p) for p in bad}
  for name in tf.io.gfile.listdir(model_dir):
    m = re.match(_CKPT_RE, name)
    if not (m and m.group("rest").startswith(".")):
      continue
    step = int(m.group("step"))
    if step > newest_step or step in bad_steps:
      path = model_dir.rstrip("/") + "/" + name
      log(f"removing unusable checkpoint file: {path}")
      tf.io.gfile.remove(path)
  return full(newest) if newest else None


# --- model_fn outputs shared by the runners ------------------------------------------------

def train_spec(loss, train_op, scalars, *, model_dir, num_train_steps, batch_size,
               log_every_steps, use_tpu, scaffold_fn=None):
  """The TRAIN-mode TPUEstimatorSpec: progress lines and TensorBoard scalars.

  Args:
    loss: scalar training loss.
    train_op: the optimizer's update op.
    scalars: {short name: scalar tensor} to log and summarise (loss, lr, ...).
    model_dir: where TensorBoard event files go.
    num_train_steps, batch_size: for the progress line's percentage, ex/s and ETA.
    log_every_steps: interval of both the progress lines and the summaries.
    use_tpu: on TPU the hook cannot fetch the device loop's tensors, so it logs step,
      speed and ETA only; the scalars still reach TensorBoard through host_call.
    scaffold_fn: TPUEstimator's scaffold_fn (initialisation from a checkpoint on TPU).

  Returns:
    tf.estimator.tpu.TPUEstimatorSpec.
  """
  from util import training_hooks
  hook = training_hooks.ProgressHook({} if use_tpu else scalars, num_train_steps, batch_size,
                                     every_n_steps=log_every_steps)
  return tf.estimator.tpu.TPUEstimatorSpec(
      mode=tf.estimator.ModeKeys.TRAIN, loss=loss, train_op=train_op,
      training_hooks=[hook], scaffold_fn=scaffold_fn,
      host_call=training_hooks.make_host_call(model_dir, scalars, log_every_steps))


def eval_spec(loss, eval_metrics, *, num_eval_steps, batch_size, use_tpu):
  """The EVAL-mode TPUEstimatorSpec with a progress line every fifth of the evaluation.

  Args:
    loss: scalar loss (averaged over batches by the Estimator).
    eval_metrics: (metric_fn, {name: [batch, ...] tensor}) as TPUEstimatorSpec takes it.
    num_eval_steps: batches evaluated (None: until the input ends; progress then counts up).
    batch_size: for ex/s.
    use_tpu: as in train_spec.

  Returns:
    tf.estimator.tpu.TPUEstimatorSpec.
  """
  from util import training_hooks
  total = num_eval_steps or 0
  hook = training_hooks.ProgressHook({} if use_tpu else {"loss": loss}, total, batch_size,
                                     every_n_steps=max(1, total // 5) if total else 10,
                                     is_training=False)
  return tf.estimator.tpu.TPUEstimatorSpec(
      mode=tf.estimator.ModeKeys.EVAL, loss=loss, eval_metrics=eval_metrics,
      evaluation_hooks=[hook])
