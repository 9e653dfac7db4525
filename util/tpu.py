"""Which TPU, how many cores, and the settings that must agree with the core count.

Both runners call `settle_core_count` before anything else touches the TPU. With `use_tpu`
on and `num_tpu_cores` left unset (null), the core count is read from the TPU system the
way TPUEstimator reads it for `num_shards=None` (a session on the TPU master lists its
devices); if that fails, the run stops with one line saying what to set. The original
defaulted to 1 core, which on a v3-8 puts the whole global batch on one core: out of
memory, or an eighth of the speed, without a word.

`check_batch_sizes` is the config-time rule TPUEstimator enforces later and less clearly:
every batch size splits evenly over the cores. `debug_batch_size` rounds the original's
debug batches (8 and 4) up to a multiple of the core count.

Imports TensorFlow only inside the functions that talk to a TPU.
"""
from typing import Callable, Optional

from util import errors

# What to write in --hparams on the usual machine, for the error lines below.
_SET_CORES = 'set "num_tpu_cores" in --hparams (8 for a v2-8 or v3-8)'
_LOCAL_HINT = ('on a TPU VM the TPU is attached to the machine: use "tpu_name": "local" '
               '(tpu_zone and gcp_project are then not needed)')


class TpuError(errors.UserError):
  """The TPU cannot be found or its core count cannot be read; the message says what to set."""


def cluster_resolver(tpu_name: Optional[str], tpu_zone: Optional[str] = None,
                     gcp_project: Optional[str] = None, make: Optional[Callable] = None):
  """The TPUClusterResolver for these settings.

  Args:
    tpu_name: "local" on a TPU VM; a TPU Node's name; None reads $TPU_NAME.
    tpu_zone, gcp_project: only for a TPU Node reached by name.
    make: the resolver class (TPUClusterResolver; another only in tests, standing in for
      the Cloud TPU API this machine cannot reach).

  Returns:
    the resolver.

  Raises:
    TpuError: the TPU could not be resolved; the message suggests "local" on a TPU VM.
  """
  import os
  if make is None:
    import tensorflow.compat.v1 as tf
    make = tf.distribute.cluster_resolver.TPUClusterResolver
  if not tpu_name:
    tpu_name = os.environ.get("TPU_NAME") or None
  try:
    return make(tpu_name, zone=tpu_zone, project=gcp_project)
  except Exception as e:  # noqa: BLE001 - resolver errors come as several types
    raise TpuError(f"use_tpu is on but the TPU could not be resolved (tpu_name={tpu_name!r}, "
                   f"tpu_zone={tpu_zone!r}, gcp_project={gcp_project!r}): {errors.first_line(e)}; "
                   f"{_LOCAL_HINT}") from e


def system_core_count(resolver) -> int:
  """Total TPU cores the TPU system behind `resolver` reports (all hosts).

  The same query TPUEstimator makes when num_shards is None: a session on the resolver's
  master lists its devices and the TPU cores are counted.

  Raises:
    any error of the query (the caller turns it into one line).
  """
  import tensorflow.compat.v1 as tf
  from tensorflow.python.tpu import tpu_system_metadata
  spec = resolver.cluster_spec()
  cluster_def = spec.as_cluster_def() if spec and spec.jobs else None
  with tf.Graph().as_default():  # a session query, as in TPUEstimator's graph mode
    metadata = tpu_system_metadata._query_tpu_system_metadata(  # noqa: SLF001
        resolver.master(), cluster_def=cluster_def, query_topology=False)
  return int(metadata.num_cores)


def decide_core_count(use_tpu: bool, num_tpu_cores: Optional[int], tpu_name: Optional[str],
                      query: Callable[[], int]) -> Optional[int]:
  """The number of TPU cores a run uses.

  Args:
    use_tpu: off: `num_tpu_cores` is returned unchanged (nothing is asked).
    num_tpu_cores: a positive count is used as given; None asks the TPU system.
    tpu_name: for the error message.
    query: callable returning the TPU system's total core count (system_core_count of the
      resolver); it may raise.

  Returns:
    the core count (None only with use_tpu off and no count given).

  Raises:
    TpuError: the query failed or found no TPU core; the message names num_tpu_cores.
  """
  if not use_tpu or num_tpu_cores is not None:
    return num_tpu_cores
  try:
    cores = query()
  except TpuError:
    raise
  except Exception as e:  # noqa: BLE001 - a failed query is reported in one line
    raise TpuError(f"use_tpu: could not read the TPU core count from tpu_name {tpu_name!r} "
                   f"({errors.first_line(e)}); {_SET_CORES}, and check tpu_name: "
                   f"{_LOCAL_HINT}") from e
  if not cores:
    raise TpuError(f"use_tpu: the TPU system at tpu_name {tpu_name!r} shows no TPU core "
                   f"(is this a TPU VM?); {_SET_CORES}, and check tpu_name: {_LOCAL_HINT}")
  return int(cores)


def settle_core_count(config, log=print, query: Optional[Callable[[], int]] = None) -> None:
  """Fill in `config.num_tpu_cores` from the TPU system when use_tpu is on and it is unset.

  Args:
    config: a runner config (pretraining or finetuning) with use_tpu, num_tpu_cores,
      tpu_name, tpu_zone, gcp_project and update(dict) (which re-derives and re-validates:
      batch sizes are then checked against the core count).
    log: where the line naming the core count goes.
    query: the TPU system's core count (default: ask it through the resolver).

  Raises:
    TpuError: as decide_core_count / cluster_resolver; ConfigError from config.update.
  """
  if not config.use_tpu:
    return
  given = config.num_tpu_cores
  if query is None:
    def query():
      return system_core_count(cluster_resolver(config.tpu_name, config.tpu_zone,
                                                config.gcp_project))
  cores = decide_core_count(True, given, config.tpu_name, query)
  if given is None:
    if hasattr(config, "update"):  # re-derives (debug batch sizes) and re-validates
      config.update({"num_tpu_cores": cores})
    else:
      config.num_tpu_cores = cores
      config.validate()
  log(f"TPU {config.tpu_name or '$TPU_NAME'}: {cores} cores "
      f"({'found on the TPU system' if given is None else 'num_tpu_cores'}); "
      f"train batch {config.train_batch_size} = {config.train_batch_size // cores} per core")


def check_batch_sizes(config) -> None:
  """Config-time checks of the TPU keys: num_tpu_cores null or a positive integer, and with
  use_tpu each of train/eval/predict_batch_size (those the config has) a multiple of it.

  Raises:
    errors.ConfigError naming the key.
  """
  cores = config.num_tpu_cores
  if cores is not None and (isinstance(cores, bool) or not isinstance(cores, int) or
                            cores < 1):
    raise errors.ConfigError(f"num_tpu_cores must be a positive integer or null (read from "
                             f"the TPU system), got {cores!r}")
  if not (config.use_tpu and cores):
    return
  for key in ("train_batch_size", "eval_batch_size", "predict_batch_size"):
    size = getattr(config, key, None)
    if isinstance(size, int) and size % cores:
      raise errors.ConfigError(
          f"{key} {size} does not split over num_tpu_cores {cores} (TPUEstimator gives each "
          f"core an equal share); use a multiple of {cores}")


def debug_batch_size(size: int, use_tpu: bool, num_tpu_cores: Optional[int]) -> int:
  """A debug-mode batch size, rounded up to a multiple of the core count on a TPU."""
  if not (use_tpu and num_tpu_cores):
    return size
  return -(-size // num_tpu_cores) * num_tpu_cores
