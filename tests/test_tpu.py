"""The TPU settings a run cannot get wrong: the core count (given, read from the TPU system,
or refused in one line), batch sizes that split over the cores (debug mode's included), the
resolver's error, and the host_call cadence of the estimator the runners build.

This machine has no TPU. Where a test needs one, the TPU system's answer (a core count, or a
resolver that cannot reach the Cloud TPU API) is what stands in; the code deciding what to do
with the answer is the project's own. The refusal is also checked for real: "local" on this
machine is a TPU system with no cores.
"""
import pytest

import configure_finetuning
import configure_pretraining as cp
from util import errors
from util import estimator as estimator_lib
from util import tpu as tpu_lib


def _fails(message="Deadline exceeded"):
  def query():
    raise RuntimeError(message)
  return query


def test_core_count_given_is_used_without_asking_the_tpu():
  assert tpu_lib.decide_core_count(True, 8, "local", _fails()) == 8
  assert tpu_lib.decide_core_count(False, None, None, _fails()) is None


@pytest.mark.parametrize("cores", [8, 32])  # a v3-8; a v3-32 slice (4 hosts of 8)
def test_unset_core_count_is_read_from_the_tpu_system(cores):
  assert tpu_lib.decide_core_count(True, None, "local", lambda: cores) == cores


def test_unreadable_core_count_is_refused_naming_what_to_set():
  with pytest.raises(tpu_lib.TpuError) as e:
    tpu_lib.decide_core_count(True, None, "my-tpu", _fails("Failed to connect\nmore"))
  msg = str(e.value)
  assert "Failed to connect" in msg and "more" not in msg  # the cause's first line only
  assert '"num_tpu_cores"' in msg and '"tpu_name": "local"' in msg
  assert isinstance(e.value, errors.UserError)  # one error: line, exit status 2


def test_no_tpu_on_this_machine_is_refused_for_real(capsys):
  """The real resolver and query, tpu_name "local", on a machine without a TPU: the TPU
  system lists no TPU core, and the run stops before building anything."""
  config = cp.PretrainingConfig("m", "/d", use_tpu=True, tpu_name="local")
  assert config.num_tpu_cores is None
  with pytest.raises(tpu_lib.TpuError, match="shows no TPU core") as e:
    tpu_lib.settle_core_count(config)
  assert '"num_tpu_cores"' in str(e.value)
  assert config.num_tpu_cores is None


def test_resolver_failure_suggests_local():
  class UnreachableCloudTpuApi:
    def __init__(self, tpu, zone=None, project=None):
      raise ValueError(f"Could not lookup TPU metadata from name '{tpu}'.")

  with pytest.raises(tpu_lib.TpuError) as e:
    tpu_lib.cluster_resolver("my-tpu", "europe-west4-a", None, make=UnreachableCloudTpuApi)
  msg = str(e.value)
  assert "tpu_name='my-tpu'" in msg and "Could not lookup TPU metadata" in msg
  assert 'on a TPU VM' in msg and '"tpu_name": "local"' in msg


def test_found_core_count_fills_the_config_and_splits_the_debug_batches():
  config = cp.PretrainingConfig("m", "/d", use_tpu=True, tpu_name="local", debug=True)
  assert (config.train_batch_size, config.eval_batch_size) == (8, 4)  # the original's
  lines = []
  tpu_lib.settle_core_count(config, log=lines.append, query=lambda: 8)
  assert config.num_tpu_cores == 8
  # eval_batch_size 4 does not split over 8 cores: rounded up to one example per core.
  assert (config.train_batch_size, config.eval_batch_size) == (8, 8)
  assert lines == ["TPU local: 8 cores (found on the TPU system); train batch 8 = 1 per core"]


def test_debug_batches_with_a_given_core_count():
  config = cp.PretrainingConfig("m", "/d", use_tpu=True, num_tpu_cores=8, debug=True)
  assert (config.train_batch_size, config.eval_batch_size) == (8, 8)
  # Off TPU, and where given explicitly, the batch sizes stay.
  assert cp.PretrainingConfig("m", "/d", debug=True).eval_batch_size == 4
  config = cp.PretrainingConfig("m", "/d", use_tpu=True, num_tpu_cores=4, debug=True,
                                eval_batch_size=12)
  assert (config.train_batch_size, config.eval_batch_size) == (8, 12)


@pytest.mark.parametrize("key", ["train_batch_size", "eval_batch_size"])
def test_batch_size_that_does_not_split_over_the_cores_is_refused(key):
  with pytest.raises(errors.ConfigError, match=f"{key} 12 does not split over "
                                               "num_tpu_cores 8"):
    cp.PretrainingConfig("m", "/d", use_tpu=True, num_tpu_cores=8, **{key: 12})
  cp.PretrainingConfig("m", "/d", num_tpu_cores=8, **{key: 12})  # off TPU: not a rule


def test_finetuning_checks_the_same_rule():
  with pytest.raises(errors.ConfigError, match="predict_batch_size 100 does not split"):
    configure_finetuning.FinetuningConfig(
        "m", "/d", task_names=["nsmc"], use_tpu=True, num_tpu_cores=8,
        predict_batch_size=100)
  with pytest.raises(errors.ConfigError, match="num_tpu_cores must be a positive integer"):
    configure_finetuning.FinetuningConfig("m", "/d", task_names=["nsmc"], num_tpu_cores=0)


def _model_fn(features, labels, mode, params):
  raise AssertionError("not called: only the estimator's configuration is read")


@pytest.mark.parametrize("log_every_steps", [1, 50, 100])
def test_host_call_runs_every_log_every_steps(log_every_steps):
  """The TPUConfig of the estimator the runners build (use_tpu, "local"): host_call, the
  summaries' outfeed, every log_every_steps steps of a device loop, not every step."""
  config = cp.PretrainingConfig("m", "/tmp/unused", use_tpu=True, tpu_name="local",
                                num_tpu_cores=8, log_every_steps=log_every_steps)
  estimator = estimator_lib.from_config(config, _model_fn)
  tpu_config = estimator.config.tpu_config
  assert tpu_config.experimental_host_call_every_n_steps == log_every_steps
  assert tpu_config.num_shards == 8
  assert tpu_config.iterations_per_loop == config.iterations_per_loop


def test_num_shards_left_to_tpuestimator_only_on_a_tpu():
  config = cp.PretrainingConfig("m", "/tmp/unused")
  assert estimator_lib.from_config(config, _model_fn).config.tpu_config.num_shards == 1
  est = estimator_lib.build_estimator(_model_fn, "/tmp/unused", use_tpu=True,
                                      tpu_name="local", num_tpu_cores=None)
  assert est.config.tpu_config.num_shards is None  # TPUEstimator counts the cores
