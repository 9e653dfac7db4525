"""Training on several devices or machines with TensorFlow's own engine (tf.distribute).

`"distribution"` in both configs picks the strategy the Estimator trains under
(RunConfig(train_distribute=...), graph mode):

  "none"          one device, as before (the default).
  "mirrored"      MirroredStrategy: every GPU of this machine; on a machine without a GPU,
                  `num_cpu_devices` logical CPU devices (how the tests run it).
  "multi_worker"  MultiWorkerMirroredStrategy over the cluster in the TF_CONFIG environment
                  variable; one process per machine, each started with the same command.

TPUs keep their own path (`use_tpu`, TPUEstimator's shards); it refuses these.

What this module decides, so the runners only ask:
  - the global batch (`train_batch_size`) splits evenly over the replicas
    (`check_global_batch`); each replica gets its share (`per_replica_input`);
  - each worker reads a disjoint part of the TFRecords: whole files when there are at
    least as many files as workers, every n-th record otherwise (`shard`), and says which;
  - which process is the chief (`is_chief`): it alone writes checkpoints, summaries,
    results and predictions;
  - a worker that loses a peer stops with one clear line within `worker_timeout_secs`
    (`PeerLossHook`, collective timeouts) instead of retrying or waiting forever.

TF 2.15's Estimator runs MultiWorkerMirroredStrategy only through
tf.estimator.train_and_evaluate (its "independent worker" mode; Estimator.train refuses
it): `train` picks the call. TensorFlow is imported inside the functions: the configs
validate without it.
"""
import json
import os
import sys
from typing import Optional

from util import errors

KINDS = ("none", "mirrored", "multi_worker")


class DistributeError(errors.UserError):
  """A distribution setting that cannot work here; the message says what to set."""


def check_config(config):
  """Config-time checks of `distribution` and `num_cpu_devices` (no TensorFlow).

  Raises:
    errors.ConfigError: naming the key.
  """
  kind = config.distribution
  if kind not in KINDS:
    raise errors.ConfigError(f"distribution must be one of {', '.join(KINDS)}, got {kind!r}")
  if config.use_tpu and kind != "none":
    raise errors.ConfigError(
        f'distribution "{kind}" is for GPUs and CPUs; with use_tpu TPUEstimator shards over '
        'the TPU cores itself (num_tpu_cores): set "distribution": "none" '
        "(docs/distributed.md)")
  for key in ("num_cpu_devices", "worker_timeout_secs"):
    n = getattr(config, key)
    if not (isinstance(n, int) and not isinstance(n, bool) and n >= 1):
      raise errors.ConfigError(f"{key} must be a positive integer, got {n!r}")


# --- the cluster --------------------------------------------------------------------------

def cluster():
  """The cluster of TF_CONFIG.

  Returns:
    (number of workers (chief included), this task's rank among them (chief 0), is_chief).

  Raises:
    DistributeError: TF_CONFIG is missing, not JSON, or names no worker or this task.
  """
  raw = os.environ.get("TF_CONFIG")
  if not raw:
    raise DistributeError(
        'distribution "multi_worker" needs the TF_CONFIG environment variable (the cluster '
        "and this task); see docs/distributed.md")
  try:
    spec = json.loads(raw)
    jobs = spec["cluster"]
    task_type, index = spec["task"]["type"], int(spec["task"]["index"])
  except (ValueError, KeyError, TypeError) as e:
    raise DistributeError(f"TF_CONFIG is not a cluster spec with a task ({e}): {raw}") from e
  chiefs, workers = list(jobs.get("chief", [])), list(jobs.get("worker", []))
  if task_type not in ("chief", "worker") or index >= len(jobs.get(task_type, [])):
    raise DistributeError(f"TF_CONFIG task {task_type} {index} is not a chief or worker of "
                          f"its cluster: {raw}")
  rank = index if task_type == "chief" else len(chiefs) + index
  return len(chiefs) + len(workers), rank, rank == 0


def is_chief(kind):
  """True unless this process is a non-chief worker of a multi_worker cluster."""
  return kind != "multi_worker" or cluster()[2]


# --- devices and the strategy -------------------------------------------------------------

def prepare_devices(kind, num_cpu_devices):
  """Splits the CPU into `num_cpu_devices` logical devices for "mirrored" on a machine
  without a GPU. Must run before anything initialises TensorFlow's devices (an eager op,
  a session): the runners call it first.

  Raises:
    DistributeError: the devices were initialised already.
  """
  if kind != "mirrored" or num_cpu_devices <= 1:
    return
  import tensorflow as tf2
  if tf2.config.list_physical_devices("GPU"):
    return
  cpu = tf2.config.list_physical_devices("CPU")[0]
  if len(tf2.config.get_logical_device_configuration(cpu) or []) == num_cpu_devices:
    return
  try:
    tf2.config.set_logical_device_configuration(
        cpu, [tf2.config.LogicalDeviceConfiguration()] * num_cpu_devices)
  except RuntimeError as e:
    raise DistributeError(f"cannot split the CPU into {num_cpu_devices} devices: TensorFlow "
                          f"initialised its devices already ({e})") from e


def _mirrored_devices(num_cpu_devices):
  import tensorflow as tf2
  gpus = tf2.config.list_logical_devices("GPU")
  if gpus:
    return [d.name for d in gpus]
  return [d.name for d in tf2.config.list_logical_devices("CPU")][:num_cpu_devices]


def num_replicas(kind, num_cpu_devices):
  """How many replicas share the global batch (each worker of a cluster: its GPUs, or 1)."""
  if kind == "none":
    return 1
  if kind == "mirrored":
    return len(_mirrored_devices(num_cpu_devices))
  import tensorflow as tf2
  return cluster()[0] * max(1, len(tf2.config.list_physical_devices("GPU")))


def make_strategy(kind, num_cpu_devices, timeout_secs=600):
  """The tf.distribute strategy for `kind` (None for "none"); a multi_worker all-reduce
  fails after `timeout_secs`."""
  import tensorflow as tf2
  if kind == "none":
    return None
  if kind == "mirrored":
    devices = _mirrored_devices(num_cpu_devices)
    if tf2.config.list_logical_devices("GPU"):
      return tf2.distribute.MirroredStrategy(devices)  # NCCL all-reduce between GPUs
    # Logical CPU devices share one thread pool: TensorFlow's default there (collective
    # ops, each blocking a thread until its peer arrives) deadlocks on a 2-core machine.
    return tf2.distribute.MirroredStrategy(
        devices, cross_device_ops=tf2.distribute.ReductionToOneDevice())
  cluster()  # a clear error before TensorFlow's own on a missing or bad TF_CONFIG
  options = tf2.distribute.experimental.CommunicationOptions(
      timeout_seconds=timeout_secs)
  # In graph mode, as the Estimator trains: created eagerly the strategy configures the
  # process's eager collectives (allowed only at program start, and the runners have read a
  # record by now), and train_and_evaluate's copy of it fails on eager devices it has not
  # made. The rest of a multi_worker process runs Estimator calls only.
  tf2.compat.v1.disable_eager_execution()
  return tf2.distribute.MultiWorkerMirroredStrategy(communication_options=options)


def check_global_batch(batch_size, replicas, key="train_batch_size"):
  """Raises DistributeError unless `batch_size` splits evenly over `replicas`."""
  if batch_size % replicas:
    raise DistributeError(f"{key} {batch_size} does not split evenly over {replicas} "
                          f"replicas: use a multiple of {replicas}")


def device_line(kind, num_cpu_devices):
  """The devices a distributed run trains on, for its first log line ("" for "none")."""
  if kind == "none":
    return ""
  if kind == "mirrored":
    devices = _mirrored_devices(num_cpu_devices)
    return f"mirrored over {len(devices)} devices ({', '.join(devices)})"
  workers, rank, chief = cluster()
  return (f"multi_worker: worker {rank} of {workers}"
          + (" (chief: writes checkpoints, summaries and results)" if chief else ""))


# --- input --------------------------------------------------------------------------------

def shard(files, input_context, log=print):
  """This input pipeline's disjoint part of `files`.

  Args:
    files: the sorted TFRecord files.
    input_context: tf.distribute.InputContext or None (one pipeline).
    log: where the line saying which part goes.

  Returns:
    (files to read, (num_shards, index) to take every num_shards-th record from, or None).
    Whole files when there are at least as many files as pipelines (no record is read
    and dropped), else records.
  """
  if input_context is None or input_context.num_input_pipelines == 1:
    return files, None
  n, i = input_context.num_input_pipelines, input_context.input_pipeline_id
  if len(files) >= n:
    mine = files[i::n]
    log(f"input pipeline {i} of {n}: reads {len(mine)} of {len(files)} TFRecord files "
        "(sharded by file)")
    return mine, None
  log(f"input pipeline {i} of {n}: reads one record in {n}, from record {i}, of "
      f"{len(files)} TFRecord file(s) (fewer files than workers: sharded by record)")
  return files, (n, i)


def per_replica_batch(global_batch, input_context):
  """The batch one replica's input pipeline yields (the global batch without a context)."""
  if input_context is None:
    return global_batch
  return input_context.get_per_replica_batch_size(global_batch)


# --- training -----------------------------------------------------------------------------

def _peer_loss_hook_class():
  import tensorflow.compat.v1 as tf

  class PeerLossHook(tf.estimator.SessionRunHook):
    """Stops a worker of a cluster that has lost a peer, with one line, in bounded time.

    A collective (all-reduce) whose peer was killed fails after the strategy's timeout
    (DeadlineExceededError, which `train` turns into one line), or fails at once with
    UnavailableError, which MonitoredSession takes for a preemption and answers by
    re-creating the session forever. So: a second session in one train call raises
    RunError; and, should a step block anywhere else, a watchdog thread ends the process
    (exit status 2) when no step has finished for `timeout_secs` (twice the collective's),
    since a blocked step cannot be interrupted from Python.
    """

    def __init__(self, timeout_secs, log):
      self._timeout = timeout_secs
      self._log = log
      self._sessions = 0
      self._last = None
      self._done = None

    def after_create_session(self, session, coord):
      import threading
      import time
      self._sessions += 1
      if self._sessions > 1:
        raise errors.RunError(f"a worker of the cluster stopped (the all-reduce lost its "
                              f"peer); {RERUN}")
      self._last = time.time()
      self._done = threading.Event()
      threading.Thread(target=self._watch, daemon=True).start()

    def after_run(self, run_context, run_values):
      import time
      self._last = time.time()

    def end(self, session):
      if self._done is not None:
        self._done.set()

    def _watch(self):
      import time
      while not self._done.wait(1.0):
        if time.time() - self._last > self._timeout:
          self._log(f"error: no training step finished in {self._timeout} s (twice "
                    f"worker_timeout_secs): a worker of the cluster stopped or hangs; {RERUN}")
          sys.stdout.flush()
          sys.stderr.flush()
          os._exit(2)  # the main thread is blocked inside a collective: no exception reaches it

  return PeerLossHook


RERUN = ("stop every worker and start them all again: they resume from the chief's last "
         "checkpoint (docs/distributed.md)")


def train(estimator, input_fn, max_steps, kind, timeout_secs=600, hooks=None, log=print):
  """estimator.train, or under "multi_worker" train_and_evaluate (TF 2.15's Estimator takes
  MultiWorkerMirroredStrategy only there); evaluation is left to the caller (the chief).

  Args:
    estimator: the runner's TPUEstimator built with this `kind`'s strategy.
    input_fn: its training input_fn.
    max_steps: the global step to train to.
    kind: "none", "mirrored" or "multi_worker".
    timeout_secs: under "multi_worker", the longest a step (checkpoint saves included) may
      take before this worker gives up on its peers (PeerLossHook).
    hooks: more training hooks.
    log: where the line of a worker that gives up goes.
  """
  hooks = list(hooks or [])
  if kind != "multi_worker":
    estimator.train(input_fn=input_fn, max_steps=max_steps, hooks=hooks)
    return
  import tensorflow.compat.v1 as tf
  hooks.append(_peer_loss_hook_class()(2 * timeout_secs, log))
  try:
    # No evaluator task in TF_CONFIG: the EvalSpec is never run (the chief evaluates after).
    tf.estimator.train_and_evaluate(
        estimator, tf.estimator.TrainSpec(input_fn, max_steps=max_steps, hooks=hooks),
        tf.estimator.EvalSpec(input_fn, steps=1))
  except tf.errors.DeadlineExceededError:
    raise errors.RunError(f"a worker of the cluster stopped or hangs (an all-reduce waited "
                          f"{timeout_secs} s, worker_timeout_secs); {RERUN}") from None
  except tf.errors.UnavailableError:
    raise errors.RunError(f"a worker of the cluster stopped (the all-reduce lost its peer); "
                          f"{RERUN}") from None


def chief_only(kind) -> Optional[str]:
  """Why this process skips writing results, or None when it writes them (the chief)."""
  if is_chief(kind):
    return None
  return ("not the chief: evaluation, results and predictions are the chief's; this worker "
          "only trained")
