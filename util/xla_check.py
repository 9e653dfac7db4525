"""`--check-xla`: compile one TPU train step with XLA on the CPU before paying for a TPU.

A TPU runs each train step as one XLA program with static shapes; one op without an XLA
kernel (a py_function, a string op) or one shape XLA cannot fix at compile time fails the
run only once the TPU is up. This module builds the step the way TPUEstimator does on a TPU
and runs it once on the CPU's XLA backend:

- the model_fn is called inside one XLA compilation (`xla.compile`, the graph-mode
  equivalent of TPUEstimator's `tpu.rewrite`), in a one-shard TPU context, on a batch of
  static shape (the input_fn's first batch, `drop_remainder` as on the TPU);
- it returns the loss and the `host_call` tensors, with the train_op as a control
  dependency, and the `host_call` function runs outside the compiled part on the host, as
  TPUEstimator's outfeed does;
- one step runs: variables initialised, the compiled step executed, the summaries written.

The host_call writes its summaries wherever the model_fn tells it (the config's model_dir):
build the model_fn for a check from a config whose model_dir is a temporary directory.

One deliberate difference: `CrossReplicaSum` (the gradient all-reduce that
`CrossShardOptimizer` adds) has an XLA lowering only for TPUs. On a single core it returns its
input, so the check replaces it with `Identity`; every other op is compiled as built.

The runners call `check_train_step(model_fn, first_batch(input_fn, batch_size))` for
`--check-xla`; it returns an `XlaCheckResult` or raises `XlaCheckError` whose one-line
message names the op type, op name, output tensor and the line of Python that made it.
"""
import dataclasses
import os
import re
import time
import typing

from util import errors

# What one compiled train step cannot show, said with every result (and in the TPU guide).
NOT_CHECKED = ("Not checked: the infeed/outfeed between host and TPU, the evaluation step and "
               "its metric_fn, prediction, and whether a core's memory holds the batch "
               "(pretraining prints an estimate).")

# TPU-only collectives: no CPU XLA kernel; on one core each one passes its input through.
ONE_CORE_IDENTITY_OPS = ("CrossReplicaSum",)

# How TensorFlow names the node an XLA error is about, most specific first.
_NODE_PATTERNS = (
    re.compile(r"Detected unsupported operations when trying to compile graph \S+ on "
               r"XLA_\w+: (?P<type>[\w>]+) \((?P<why>[^)]*)\)\{\{node (?P<name>[^}]+)\}\}"),
    re.compile(r"\{\{node (?P<name>[^}]+)\}\}"),
    re.compile(r"[Nn]ode[: ]+['`](?P<name>[^'`]+)['`]"),
)


class XlaCheckError(errors.UserError):
  """The train step does not compile (or run) under XLA; the message names the op."""


@dataclasses.dataclass
class XlaCheckResult:
  """What one compiled step did.

  Attributes:
    loss: the step's loss (float32).
    compiled_ops: number of graph ops inside the XLA compilation.
    replaced_ops: TPU-only ops replaced by Identity (see ONE_CORE_IDENTITY_OPS).
    batch_shapes: {feature name: shape} of the batch the step ran on.
    seconds: building, compiling and running, in seconds.
  """
  loss: float
  compiled_ops: int
  replaced_ops: int
  batch_shapes: typing.Dict[str, typing.Tuple[int, ...]]
  seconds: float

  def summary(self) -> str:
    """Two lines for the console: what passed, and what the check does not cover."""
    shapes = ", ".join(f"{k} {list(v)}" for k, v in sorted(self.batch_shapes.items()))
    return (f"XLA check passed: the train step ({self.compiled_ops} ops, batch {shapes}) "
            f"compiled and ran one step on the CPU, loss {self.loss:.4f}, "
            f"{self.seconds:.1f}s\n{NOT_CHECKED}")


def first_batch(input_fn, batch_size: int) -> typing.Dict[str, "np.ndarray"]:
  """The first batch of a TPUEstimator-style input_fn, as numpy arrays.

  Args:
    input_fn: callable(params) -> tf.data.Dataset of feature dicts (or (features, labels));
      it receives params {"batch_size": batch_size} as TPUEstimator passes them.
    batch_size: per-core batch size (train_batch_size / number of TPU cores).

  Returns:
    {feature name: array of shape [batch_size, ...]}.

  Raises:
    XlaCheckError: a feature has an unknown (dynamic) dimension, which a TPU cannot take.
  """
  import tensorflow.compat.v1 as tf
  graph = tf.Graph()
  with graph.as_default():
    dataset = input_fn({"batch_size": batch_size})
    for name, spec in _features_only(dataset.element_spec).items():
      if not spec.shape.is_fully_defined():
        raise XlaCheckError(
            f"input feature {name!r} has shape {spec.shape}: a TPU needs static shapes "
            "(batch with drop_remainder=True and pad to a fixed length)")
    batch = _features_only(tf.data.make_one_shot_iterator(dataset).get_next())
    with tf.Session(graph=graph) as sess:
      return sess.run(batch)


def _features_only(element):
  return element[0] if isinstance(element, tuple) else element


def check_train_step(model_fn, features, params=None, labels=None,
                     fast_compile=True) -> XlaCheckResult:
  """Compile the TRAIN step of `model_fn` whole with XLA on the CPU and run it once.

  Args:
    model_fn: TPUEstimator model_fn(features, labels, mode, params) returning a
      TPUEstimatorSpec with loss, train_op and optionally host_call.
    features: {name: numpy array} of static shape, e.g. from `first_batch`.
    params: passed to model_fn (default {"batch_size": batch size, "use_tpu": True}).
    labels: numpy array or None, passed to model_fn like features.
    fast_compile: compile the CPU code without LLVM optimisation (see
      `prefer_fast_compile`); the check needs the compilation, not fast CPU code.

  Returns:
    XlaCheckResult.

  Raises:
    XlaCheckError: an op cannot be compiled by XLA (message: op type, op name, tensor and
      the Python line that created it), or the step fails to build or run.
  """
  import numpy as np
  import tensorflow.compat.v1 as tf
  from tensorflow.python.compiler.xla import xla
  from tensorflow.python.ops import summary_ops_v2
  from tensorflow.python.tpu import tpu_function
  from tensorflow.python.util import deprecation

  if fast_compile:
    prefer_fast_compile()
  start = time.time()
  features = {k: np.asarray(v) for k, v in features.items()}
  names = sorted(features)
  batch_size = int(features[names[0]].shape[0]) if names else 0
  if params is None:
    params = {"batch_size": batch_size, "use_tpu": True}
  graph = tf.Graph()
  built = {}
  with graph.as_default():
    inputs = [tf.constant(features[n], name=f"feature_{n}") for n in names]
    if labels is not None:
      inputs.append(tf.constant(np.asarray(labels), name="labels"))

    def step(*args):
      spec = model_fn(dict(zip(names, args[:len(names)])),
                      args[len(names)] if labels is not None else None,
                      tf.estimator.ModeKeys.TRAIN, dict(params))
      if spec.train_op is None or spec.loss is None:
        raise XlaCheckError("model_fn returned no train_op or loss for TRAIN")
      host_fn, host_tensors = _host_call(spec.host_call)
      built["host_fn"] = host_fn
      # The step's outputs are ready only after the update, as in TPUEstimator's loop.
      with tf.control_dependencies([spec.train_op]):
        return [tf.identity(spec.loss)] + [tf.identity(t) for t in host_tensors]

    before = len(graph.get_operations())
    try:
      # xla.compile is deprecated for tf.function(jit_compile=True), which cannot hold
      # a TF1 model_fn's variables and collections; its warning is not the user's concern.
      with tpu_function.tpu_shard_context(1), deprecation.silence():
        outputs = xla.compile(step, inputs=inputs)
    except XlaCheckError:
      raise
    except Exception as e:  # noqa: BLE001 - any build failure is reported in one line
      raise XlaCheckError(f"the train step could not be built for XLA: "
                          f"{type(e).__name__}: {errors.first_line(e)}") from e
    compiled_ops = len(graph.get_operations()) - before
    host_ops = built["host_fn"](*outputs[1:]) if built["host_fn"] else []
    init = [tf.global_variables_initializer(), tf.local_variables_initializer(),
            summary_ops_v2.summary_writer_initializer_op()]
    fetch_names = {"loss": outputs[0].name,
                   "host": [t.name for t in tf.nest.flatten(host_ops) if t is not None],
                   "init": [op.name for op in tf.nest.flatten(init) if op is not None]}
    graph_def, replaced = _replace_one_core_identities(graph.as_graph_def())

  with tf.Graph().as_default() as run_graph:
    tf.import_graph_def(graph_def, name="")
    with tf.Session(graph=run_graph,
                    config=tf.ConfigProto(allow_soft_placement=True)) as sess:
      sess.run(fetch_names["init"])
      try:
        loss, _ = sess.run([fetch_names["loss"], fetch_names["host"]])
      except tf.errors.OpError as e:
        raise XlaCheckError(_describe_failure(e, graph)) from e
  if not np.isfinite(loss):
    raise XlaCheckError(f"the train step compiled and ran but its loss is {loss}")
  return XlaCheckResult(loss=float(loss), compiled_ops=compiled_ops, replaced_ops=replaced,
                        batch_shapes={k: tuple(features[k].shape) for k in names},
                        seconds=time.time() - start)


def prefer_fast_compile():
  """Ask XLA's CPU backend for no LLVM optimisation (adds it to XLA_FLAGS unless set).

  Optimising the generated CPU code is most of the check's time: one KoELECTRA-Small-v3
  step (31,697 ops, batch 2 x 512) took 131 s instead of 979 s (two shared, loaded cores;
  docs/tpu_training.md). XLA reads its flags once per process, at its first compilation, so
  this helps when the check comes first, as in `--check-xla`, and otherwise changes nothing.
  An XLA_FLAGS that already sets the level is left alone.
  """
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_backend_optimization_level" not in flags:
    os.environ["XLA_FLAGS"] = (flags + " --xla_backend_optimization_level=0").strip()


def _host_call(host_call):
  """(fn, tensors) of a TPUEstimatorSpec host_call (dict form is named tensors)."""
  if host_call is None:
    return None, []
  fn, tensors = host_call
  if isinstance(tensors, dict):
    keys = sorted(tensors)
    return (lambda *vals: fn(**dict(zip(keys, vals)))), [tensors[k] for k in keys]
  return fn, list(tensors)


def _replace_one_core_identities(graph_def):
  """GraphDef with each ONE_CORE_IDENTITY_OPS node turned into Identity of its first input."""
  replaced = 0
  for node in graph_def.node:
    if node.op in ONE_CORE_IDENTITY_OPS:
      data_input = node.input[0]
      control = [i for i in node.input if i.startswith("^")]
      del node.input[:]
      node.input.extend([data_input] + control)
      node.op = "Identity"
      for key in list(node.attr):
        if key != "T" and not key.startswith("_"):
          del node.attr[key]
      replaced += 1
  return graph_def, replaced


def _describe_failure(error, graph):
  """One line naming the op (type, name), its output tensor and where Python created it."""
  text = getattr(error, "message", None) or str(error)
  for pattern in _NODE_PATTERNS:
    m = pattern.search(text)
    if not m:
      continue
    name = m.group("name")
    op = _find_op(graph, name)
    op_type = m.groupdict().get("type") or (op.type if op is not None else "?")
    why = m.groupdict().get("why")
    where = ""
    tensor = ""
    if op is not None:
      if op.outputs:
        out = op.outputs[0]
        tensor = f", tensor {out.name} {out.dtype.name}{out.shape.as_list()}"
      site = _creation_site(op)
      if site:
        where = f", created at {site}"
    reason = (f"XLA has no kernel for {op_type}" if why and why.startswith("No registered")
              else why or _xla_reason(text))
    return (f"XLA cannot compile the train step: op {op_type} named {name!r}{tensor}"
            f"{where} ({reason})")
  return f"XLA could not compile or run the train step: {_xla_reason(text)}"


def _find_op(graph, name):
  try:
    return graph.get_operation_by_name(name)
  except KeyError:
    return None


def _xla_reason(text):
  for line in text.splitlines():
    line = line.strip()
    if line and not line.startswith(("Graph execution error", "Detected at node", "File ",
                                      "Node:")):
      return line[:300]
  return text.strip()[:300]


def _creation_site(op):
  """file:line of the innermost frame outside TensorFlow and this module, or ''."""
  this = os.path.abspath(__file__)
  for frame in reversed(op.traceback):
    path = os.path.abspath(frame.filename)
    if path == this or f"{os.sep}tensorflow{os.sep}" in path or \
        f"{os.sep}keras{os.sep}" in path:
      continue
    return f"{os.path.basename(path)}:{frame.lineno} ({frame.name})"
  return ""


# Rows of the batch a runner's check compiles: whether a graph compiles does not depend on
# the batch size, and a per-core Base batch of 32 x 512 would only cost CPU time and memory.
CHECK_ROWS = 2


def check_config(config, input_fn, model_fn_builder) -> XlaCheckResult:
  """A runner's --check-xla: one train step of `config` built as use_tpu builds it (plain
  ops, use_bf16 as set, drop_remainder, host_call summaries), compiled whole by XLA on the
  CPU and run once on the first CHECK_ROWS rows of `input_fn`.

  Args:
    config: the run's config (model/config.Config); a copy gets use_tpu on and
      fused_kernels off.
    input_fn: the training input_fn.
    model_fn_builder: (tpu_config, model_dir) -> model_fn. model_dir is a throwaway
      directory: host_call writes summaries there, never into the real (gs://) one.

  Returns:
    XlaCheckResult.

  Raises:
    XlaCheckError: naming the op and tensor that blocked compilation.
  """
  import copy
  import tempfile
  batch = first_batch(input_fn, CHECK_ROWS)
  tpu = copy.deepcopy(config)
  tpu.update({"use_tpu": True, "fused_kernels": False})
  with tempfile.TemporaryDirectory() as tmp:
    return check_train_step(model_fn_builder(tpu, tmp), batch)
