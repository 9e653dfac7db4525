"""The one TPUEstimator builder shared by the pretraining and finetuning runners.

TPUEstimator is used everywhere: with `use_tpu` off the same model_fn runs on CPU or GPU
(TPUEstimator then behaves as a plain Estimator and runs host_call / eval_metrics on the
host), so there is one code path to test. With use_tpu off TPUEstimator also takes a
tf.distribute strategy (`distribution`, util/distribute.py) as RunConfig(train_distribute=);
evaluation and prediction stay on one device.
"""
import os
import re

import numpy as np
import tensorflow.compat.v1 as tf

from util import distribute
from util import errors
from util import fileio
from util import tpu as tpu_lib


def _resolver(use_tpu, tpu_name, tpu_zone, gcp_project):
  return tpu_lib.cluster_resolver(tpu_name, tpu_zone, gcp_project) if use_tpu else None


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
                    iterations_per_loop=1000, host_call_every_n_steps=1,
                    save_checkpoints_steps=1000,
                    keep_checkpoint_max=5, train_batch_size=32, eval_batch_size=32,
                    predict_batch_size=None, log_step_count_steps=None,
                    save_summary_steps=None, intra_op_threads=0, inter_op_threads=0,
                    xla=False, session_config_proto=None, tf_random_seed=None, params=None,
                    distribution="none", num_cpu_devices=1, worker_timeout_secs=600):
  """A TPUEstimator with the original ELECTRA RunConfig.

  Checkpoints every `save_checkpoints_steps` (keep `keep_checkpoint_max`); on TPU,
  `iterations_per_loop` steps run on device between host round trips, with the input
  pipeline per host (PER_HOST_V2) as the original. Off TPU, thread pools and XLA come
  from intra_op_threads / inter_op_threads / xla, or a whole `session_config_proto`.
  `num_tpu_cores` None with use_tpu lets TPUEstimator count the cores (num_shards=None).
  On TPU the host_call (summaries) runs every `host_call_every_n_steps` steps of a device
  loop (TPUConfig.experimental_host_call_every_n_steps; from_config passes
  log_every_steps), not every step: an outfeed per step would be a host round trip the
  original, which had no host_call, never paid. `distribution` "mirrored" or
  "multi_worker" trains under that tf.distribute strategy (util/distribute.make_strategy;
  train through util/distribute.train).
  """
  if use_tpu and save_checkpoints_steps % iterations_per_loop:
    # TPUEstimator can only save at loop boundaries.
    tf.logging.warning("save_checkpoints_steps %d is not a multiple of iterations_per_loop %d; "
                       "checkpoints land on loop boundaries", save_checkpoints_steps,
                       iterations_per_loop)
  tpu_config = tf.estimator.tpu.TPUConfig(
      iterations_per_loop=iterations_per_loop,
      num_shards=num_tpu_cores or (None if use_tpu else 1),
      tpu_job_name=tpu_job_name,
      experimental_host_call_every_n_steps=max(1, int(host_call_every_n_steps)),
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
      train_distribute=distribute.make_strategy(distribution, num_cpu_devices,
                                                worker_timeout_secs),
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
                "predict_batch_size", "intra_op_threads", "inter_op_threads", "xla",
                "distribution", "num_cpu_devices", "worker_timeout_secs")


def device_line(use_tpu, num_tpu_cores=None, fused_kernels=False, distribution="none",
                num_cpu_devices=1):
  """What a run computes on, for its first log line: the TPU cores, or the GPUs TensorFlow
  sees (the Estimator uses the first unless `distribution` spreads the work) or the CPU,
  and whether the fused kernels are on."""
  if use_tpu:
    return (f"TPU, {num_tpu_cores or 'all'} cores; fused kernels off (XLA compiles the whole "
            "step)")
  gpus = tf.config.list_physical_devices("GPU")
  names = [tf.config.experimental.get_device_details(g).get("device_name", g.name)
           for g in gpus]
  where = f"GPU {names[0]}" if gpus else "CPU (TensorFlow sees no GPU)"
  if distribution != "none":
    where += f"; {distribute.device_line(distribution, num_cpu_devices)}"
  elif len(gpus) > 1:
    where += (f" (the first of {len(gpus)} GPUs: one device per run; all of them: "
              '"distribution": "mirrored", docs/distributed.md)')
  return f"{where}; fused kernels {'on' if fused_kernels else 'off'}"


def empty_for_debug(model_dir, overwrite=False, log=print):
  """Debug mode's fresh start: empty `model_dir`, as the original does.

  Args:
    model_dir: local or remote directory.
    overwrite: empty it even when it holds checkpoints (the `debug_overwrite` hparam).
    log: where the line saying so goes.

  Raises:
    errors.UserError: it holds checkpoints and `overwrite` is off; nothing is deleted.
  """
  if not fileio.exists(model_dir):
    return
  # Checkpoints recover_model_dir moved aside count too: the user has not decided on them.
  root = model_dir.rstrip("/")
  found = tf.io.gfile.glob(f"{root}/model.ckpt-*.index") + \
      tf.io.gfile.glob(f"{root}/{UNUSABLE_DIR}/*/model.ckpt-*.index")
  steps = sorted(int(m.group(1)) for m in (
      re.search(r"model\.ckpt-(\d+)\.index$", p) for p in found) if m)
  if steps and not overwrite:
    raise errors.UserError(
        f"debug mode empties model_dir, and {model_dir} holds checkpoints (newest "
        f"model.ckpt-{steps[-1]}): use another --model-name, or set "
        f'"debug_overwrite": true to empty it')
  log(f"debug: emptying {model_dir}")
  fileio.rmtree(model_dir)


def from_config(config, model_fn, model_dir=None, **overrides):
  """build_estimator reading the settings off a config object (pretraining or finetuning).

  Attributes the config lacks keep build_estimator's defaults; `overrides` win. The
  config's log_every_steps sets the host_call cadence.
  """
  kwargs = {k: getattr(config, k) for k in _CONFIG_KEYS if hasattr(config, k)}
  if hasattr(config, "log_every_steps"):
    kwargs["host_call_every_n_steps"] = config.log_every_steps
  kwargs.update(overrides)
  return build_estimator(model_fn, model_dir or config.model_dir, **kwargs)


# --- resuming after a crash -------------------------------------------------------------

_CKPT_RE = r"^(?P<prefix>model\.ckpt-(?P<step>\d+))(?P<rest>.*)$"
# Checkpoints that cannot be resumed from are moved here, never deleted: the user decides.
UNUSABLE_DIR = "unusable_checkpoints"


def checkpoint_problem(prefix):
  """Why the checkpoint at `prefix` cannot be restored, or None when it can.

  Reads every tensor back: TensorFlow's bundle reader checks each one against the CRC32C
  stored in the index, so bytes overwritten in place (same file size) are caught as well
  as short or missing files. A checkpoint holding NaN or infinite weights (saved after
  the loss diverged) cannot be trained on either. Costs one read of the checkpoint.
  """
  try:
    reader = tf.train.load_checkpoint(prefix)
    for name in sorted(reader.get_variable_to_shape_map()):
      value = reader.get_tensor(name)
      if getattr(value, "dtype", None) is not None and value.dtype.kind == "f" and \
          not np.isfinite(value).all():
        return f"{name} holds NaN or infinite values"
  except Exception as e:  # noqa: BLE001 - TF raises OpError, IndexError, ValueError...
    text = getattr(e, "message", None) or str(e)
    return text.strip().splitlines()[0] if text.strip() else type(e).__name__
  return None


def _step_of(prefix):
  m = re.search(r"-(\d+)$", prefix)
  return int(m.group(1)) if m else -1


def _move_aside(model_dir, names, log):
  """Moves checkpoint files `names` of `model_dir` into a fresh UNUSABLE_DIR subfolder."""
  import time
  if not names:
    return
  stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
  dest = f"{model_dir.rstrip('/')}/{UNUSABLE_DIR}/{stamp}"
  n = 1
  while tf.io.gfile.exists(dest):
    n += 1
    dest = f"{model_dir.rstrip('/')}/{UNUSABLE_DIR}/{stamp}-{n}"
  tf.io.gfile.makedirs(dest)
  for name in sorted(names):
    tf.io.gfile.rename(f"{model_dir.rstrip('/')}/{name}", f"{dest}/{name}")
  log(f"moved {len(names)} file(s) of unusable checkpoints to {dest} (nothing deleted)")


def _write_state_file(state_file, newest, kept):
  """The `checkpoint` state file naming `newest` and `kept`, relative to its folder (as
  the Estimator's own saver writes it), written atomically. Written by hand: TF's
  update_checkpoint_state is deprecated and turns relative model_dirs into '../' paths."""
  lines = [f'model_checkpoint_path: "{os.path.basename(newest)}"']
  lines += [f'all_model_checkpoint_paths: "{os.path.basename(p)}"' for p in kept]
  with fileio.atomic_write(state_file) as f:
    f.write("\n".join(lines) + "\n")


def recover_model_dir(model_dir, log=print):
  """Make `model_dir` safe to resume from after a crash (e.g. SIGKILL) at any moment.

  TF writes the `checkpoint` state file atomically after a checkpoint's data and index, so
  it normally names a complete checkpoint. This defends the rest. Going from the newest
  listed checkpoint down, each is verified by reading it whole (`checkpoint_problem`);
  the first that reads back is the one training resumes from. Files of checkpoints that
  fail, and checkpoint files newer than the resume point (a save that finished its files
  but not the state update), are moved into `UNUSABLE_DIR/<time>/` and the state file is
  rewritten (atomically) to name the good ones: nothing a user trained is deleted.
  Temporary files of an interrupted save (TF's own, never a checkpoint) are removed.
  With no usable checkpoint the state file is moved aside and training starts over.

  The state file's paths are used as `tf.train.get_checkpoint_state` returns them
  (already joined with `model_dir`, relative or absolute as `model_dir` is).

  Args:
    model_dir: the model directory (local, relative or absolute, or `gs://`).
    log: where one line per action goes.

  Returns:
    The checkpoint prefix training resumes from, or None.
  """
  if not tf.io.gfile.isdir(model_dir):
    return None
  root = model_dir.rstrip("/")
  for name in tf.io.gfile.listdir(model_dir):
    name = name.rstrip("/")
    if re.match(r"^model\.ckpt-\d+_temp", name) or ".tempstate" in name:
      path = f"{root}/{name}"
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

  def here(prefix):
    # A state file written elsewhere (a copied or moved model_dir) may name absolute paths
    # of the old place: the files beside the state file are the ones to judge.
    local = f"{root}/{os.path.basename(prefix)}"
    if local != prefix and not tf.io.gfile.exists(prefix + ".index") and \
        tf.io.gfile.exists(local + ".index"):
      return local
    return prefix

  listed = sorted({here(p) for p in listed}, key=_step_of)
  newest, bad = None, []
  for prefix in reversed(listed):
    problem = checkpoint_problem(prefix)
    if problem is None:
      newest = prefix
      break
    log(f"checkpoint {prefix} cannot be restored: {problem}")
    bad.append(prefix)
  # Older checkpoints stay listed unverified: reading each at every start would cost a full
  # pass over the model per kept checkpoint, and the newest is the one resumed from.
  good = [p for p in listed if p not in bad and (newest is None or _step_of(p) <= _step_of(newest))]
  state_file = f"{root}/checkpoint"
  if newest is None:
    aside = state_file + ".incomplete"
    log(f"no usable checkpoint in {model_dir}; starting from scratch "
        f"(state file moved to {aside})")
    tf.io.gfile.rename(state_file, aside, overwrite=True)
    newest_step = -1
  else:
    newest_step = _step_of(newest)
    if bad:
      log(f"resuming from {newest}")
      _write_state_file(state_file, newest, good)
  bad_steps = {_step_of(p) for p in bad}
  unusable = []
  for name in tf.io.gfile.listdir(model_dir):
    m = re.match(_CKPT_RE, name.rstrip("/"))
    if m and m.group("rest").startswith(".") and (
        int(m.group("step")) > newest_step or int(m.group("step")) in bad_steps):
      unusable.append(name.rstrip("/"))
  _move_aside(model_dir, unusable, log)
  return newest


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
  # Under a tf.distribute strategy the model_fn runs once per replica: the first replica
  # (the chief's) alone writes the summaries.
  replica = tf.distribute.get_replica_context()
  first = not (replica and tf.get_static_value(replica.replica_id_in_sync_group))
  # On TPU, TPUEstimator runs the host_call only every log_every_steps steps of a loop
  # (build_estimator), so it writes whatever reaches it; off TPU it runs every step and
  # keeps the steps that are multiples of log_every_steps.
  return tf.estimator.tpu.TPUEstimatorSpec(
      mode=tf.estimator.ModeKeys.TRAIN, loss=loss, train_op=train_op,
      training_hooks=[hook], scaffold_fn=scaffold_fn,
      host_call=training_hooks.make_host_call(model_dir, scalars,
                                              1 if use_tpu else log_every_steps, write=first))


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
