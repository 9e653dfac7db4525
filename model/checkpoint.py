"""The one place that knows checkpoint variable names.

- list a checkpoint's variables and compare them with a graph's (refuse a checkpoint of a
  different architecture with a message naming the variables);
- assignment maps for `tf.train.init_from_checkpoint` (e.g. finetuning loads `electra/*`
  from a pretraining checkpoint);
- the mapping between our (original ELECTRA) TF names and Hugging Face ELECTRA parameters,
  for the pretraining models and the finetuned heads that map one-to-one;
- reading a checkpoint's values and writing a checkpoint from numpy arrays (import).

Variable lists are dicts {name: shape tuple}; a scalar has shape ().
"""
import collections
import re

import numpy as np
import tensorflow.compat.v1 as tf

from model import sizes
from util import errors

# AdamWeightDecayOptimizer slots (model/optimization.py), named as the original names them.
ADAM_M, ADAM_V = "/adam_m", "/adam_v"
OPTIMIZER_SLOT_SUFFIXES = (ADAM_M, ADAM_V)


class CheckpointError(errors.UserError):
  """A checkpoint that cannot be found or used."""


class CheckpointMismatchError(CheckpointError):
  """A checkpoint whose variables do not match the model's."""


def is_optimizer_slot(name):
  return name.endswith(OPTIMIZER_SLOT_SUFFIXES)


def resolve_checkpoint(path):
  """A checkpoint prefix from a model dir (its latest checkpoint) or a prefix."""
  path = str(path)
  if tf.io.gfile.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      raise CheckpointError("no checkpoint found in directory %s" % path)
    return latest
  if not tf.io.gfile.glob(path + ".index") and not tf.io.gfile.exists(path):
    raise CheckpointError("checkpoint %s does not exist (no %s.index)" % (path, path))
  return path


def checkpoint_variables(ckpt, include_optimizer=False):
  """{name: shape} of a checkpoint (dir or prefix), optimizer slots left out by default."""
  prefix = resolve_checkpoint(ckpt)
  try:
    listed = tf.train.list_variables(prefix)
  except (tf.errors.OpError, ValueError) as e:
    raise CheckpointError("cannot read checkpoint %s: %s" % (prefix, e))
  return collections.OrderedDict(
      (name, tuple(shape)) for name, shape in sorted(listed)
      if include_optimizer or not is_optimizer_slot(name))


def graph_variables(graph=None, include_optimizer=False):
  """{name: shape} of a graph's global variables (what a Saver would write)."""
  graph = graph or tf.get_default_graph()
  with graph.as_default():
    variables = tf.global_variables()
  return collections.OrderedDict(
      (v.op.name, tuple(v.shape.as_list())) for v in sorted(variables, key=lambda v: v.op.name)
      if include_optimizer or not is_optimizer_slot(v.op.name))


def variables_of(build_fn):
  """{name: shape} of the variables `build_fn()` creates, built in a throwaway graph.

  Building a graph alone (no session, no initialisation) takes a second or two and gives
  the exact names and shapes whatever the options (tied embeddings, generator size, task
  heads), so a run can refuse a checkpoint of another architecture before it starts.
  """
  graph = tf.Graph()
  with graph.as_default():
    build_fn()
  return graph_variables(graph)


def parse_variable_list(text):
  """Parses lines "name 32200x128" (a scalar has no shape) into {name: shape}."""
  out = collections.OrderedDict()
  for lineno, line in enumerate(text.splitlines(), 1):
    if not line.strip():
      continue
    parts = line.split()
    if len(parts) > 2 or parts[0] in out:
      raise CheckpointError("variable list line %d: cannot parse %r" % (lineno, line))
    shape = () if len(parts) == 1 else tuple(int(d) for d in parts[1].split("x"))
    out[parts[0]] = shape
  return out


def format_variable_list(variables):
  """The inverse of parse_variable_list, sorted by name."""
  return "".join("%s %s\n" % (name, "x".join(str(d) for d in shape))
                 for name, shape in sorted(variables.items()))


class VariableDiff(collections.namedtuple("VariableDiff",
                                          ["missing", "unexpected", "mismatched"])):
  """missing: in expected only; unexpected: in actual only; mismatched: (name, exp, act)."""

  @property
  def ok(self):
    return not (self.missing or self.unexpected or self.mismatched)

  def describe(self, expected_label="expected", actual_label="actual", limit=20):
    def listing(items):
      items = list(items)
      more = "" if len(items) <= limit else "\n    ... and %d more" % (len(items) - limit)
      return "".join("\n    " + str(i) for i in items[:limit]) + more

    lines = []
    if self.missing:
      lines.append("%d variable(s) in %s but not in %s:%s" % (
          len(self.missing), expected_label, actual_label, listing(self.missing)))
    if self.unexpected:
      lines.append("%d variable(s) in %s but not in %s:%s" % (
          len(self.unexpected), actual_label, expected_label, listing(self.unexpected)))
    if self.mismatched:
      lines.append("%d variable(s) with different shapes (%s vs %s):%s" % (
          len(self.mismatched), expected_label, actual_label,
          listing("%s %s vs %s" % m for m in self.mismatched)))
    return "\n".join(lines) if lines else "variables match"


def compare_variables(expected, actual, ignore=()):
  """Compares two {name: shape} dicts; names matching any regex in `ignore` are skipped."""
  pats = [re.compile(p) for p in ignore]

  def keep(name):
    return not any(p.search(name) for p in pats)

  exp = {n: tuple(s) for n, s in expected.items() if keep(n)}
  act = {n: tuple(s) for n, s in actual.items() if keep(n)}
  missing = sorted(set(exp) - set(act))
  unexpected = sorted(set(act) - set(exp))
  mismatched = sorted((n, exp[n], act[n]) for n in set(exp) & set(act) if exp[n] != act[n])
  return VariableDiff(missing, unexpected, mismatched)


def check_checkpoint_matches(ckpt, model_variables=None, ignore=(), advice=None):
  """Raises CheckpointMismatchError unless the checkpoint holds exactly the model's variables.

  model_variables: {name: shape} (default: the default graph's global variables); optimizer
  slots are left out on both sides. `advice({name: shape} of the checkpoint)` returns text
  for the message, before the variable list. Returns the resolved checkpoint prefix.
  """
  prefix = resolve_checkpoint(ckpt)
  if model_variables is None:
    model_variables = graph_variables()
  model_variables = {n: s for n, s in model_variables.items() if not is_optimizer_slot(n)}
  theirs = checkpoint_variables(prefix)
  diff = compare_variables(theirs, model_variables, ignore=ignore)
  if not diff.ok:
    raise CheckpointMismatchError(
        f"checkpoint {prefix} was written by a model of a different architecture"
        f"{advice(theirs) if advice else ''}:\n"
        f"{diff.describe('the checkpoint', 'this model')}")
  return prefix


def check_architecture(ckpt, build_fn, what="encoder"):
  """What both runners check before resuming from (or evaluating) their own checkpoint.

  Args:
    ckpt: a checkpoint prefix or directory.
    build_fn: builds the run's graph on placeholders (see variables_of).
    what: what the message calls the encoder ("discriminator" for pretraining).

  Returns:
    The resolved checkpoint prefix.

  Raises:
    CheckpointMismatchError: the checkpoint holds other variables than the graph (the step
      counter aside); the message names the size hparams that build the checkpoint's
      encoder (model/sizes.hparams_hint) and the variables that differ.
  """
  return check_checkpoint_matches(
      ckpt, variables_of(build_fn), ignore=(r"^global_step$",),
      advice=lambda theirs: f"{sizes.hparams_hint(theirs, what)}; use another model_dir "
                            "(--model-name) or the hparams that wrote it")


def get_assignment_map(ckpt, tvars=None, prefixes=None):
  """An assignment map {checkpoint name: variable} for tf.train.init_from_checkpoint.

  Maps every variable in `tvars` (default: global variables, slots excluded) whose name is
  in the checkpoint, optionally only names starting with one of `prefixes`. A name present
  in both with a different shape raises CheckpointMismatchError.
  Returns (assignment_map, sorted list of initialized names).
  """
  ckpt_vars = checkpoint_variables(resolve_checkpoint(ckpt))
  if tvars is None:
    tvars = tf.global_variables()
  assignment_map = collections.OrderedDict()
  mismatched = []
  for var in sorted(tvars, key=lambda v: v.op.name):
    name = var.op.name
    if is_optimizer_slot(name) or name not in ckpt_vars:
      continue
    if prefixes and not name.startswith(tuple(prefixes)):
      continue
    if tuple(var.shape.as_list()) != ckpt_vars[name]:
      mismatched.append((name, ckpt_vars[name], tuple(var.shape.as_list())))
      continue
    assignment_map[name] = var
  if mismatched:
    raise CheckpointMismatchError(
        "checkpoint %s: %d variable(s) with different shapes (checkpoint vs model):%s" %
        (ckpt, len(mismatched), "".join("\n    %s %s vs %s" % m for m in mismatched)))
  return assignment_map, sorted(assignment_map)


def init_from_checkpoint(ckpt, prefixes=("electra/",), tvars=None, require=True):
  """Initializes matching variables from a checkpoint; returns the initialized names.

  With require=True, a prefix that matches no variable of the model raises (a finetuning
  run would otherwise silently start from random weights).
  """
  prefix = resolve_checkpoint(ckpt)
  assignment_map, names = get_assignment_map(prefix, tvars=tvars, prefixes=prefixes)
  if require and not names:
    raise CheckpointMismatchError("checkpoint %s has no variable of this model under %s" %
                                  (prefix, ", ".join(prefixes or ["any name"])))
  tf.train.init_from_checkpoint(prefix, {n: v for n, v in assignment_map.items()})
  return names


# ---------------------------------------------------------------- Hugging Face names

_HF_LEAF = {"kernel": "weight", "gamma": "weight", "beta": "bias", "bias": "bias"}


def _hf_path(parts):
  out = []
  for p in parts:
    m = re.fullmatch(r"layer_(\d+)", p)
    out.append("layer.%s" % m.group(1) if m else p)
  return out


# Finetuned models: the encoder under `electra/` (as in pretraining) and a head under
# `task_specific/<task>/`. Only heads that are one-to-one with a transformers class are
# here; the original ELECTRA classifier (`task_specific/<task>/dense` on [CLS]) is not:
# HF's ElectraClassificationHead is dense + gelu + out_proj, two layers where it has one.
HEAD_MODELS = ("sequence_classification", "token_classification", "question_answering")
MODELS = ("discriminator", "generator") + HEAD_MODELS

# {model: {TF scope under task_specific/<task>/: HF module}}.
_HEAD_SCOPES = {
    # KoELECTRA's HF-style classifier: dense [H, H] -> gelu -> out_proj [H, labels].
    "sequence_classification": {"classifier/dense": "classifier.dense",
                                "classifier/out_proj": "classifier.out_proj"},
    # Per-token tagging (Naver NER): one dense [H, labels].
    "token_classification": {"dense": "classifier"},
    # KorQuAD without joint_prediction: `dense` (start) and `dense_1` (end), [H, 1] each;
    # HF stacks them as qa_outputs [2, H]. (joint_prediction adds `qa_hidden` [2H, 512]
    # and makes `dense_1` [512, 1]: no HF equivalent.)
    "question_answering": {"dense": "qa_outputs", "dense_1": "qa_outputs"},
}
# The TF layers giving rows 0 (start) and 1 (end) of HF's qa_outputs.
QA_ROWS = ("dense", "dense_1")
TASK_SCOPE = "task_specific"


def _check_model(model):
  if model not in MODELS:
    raise ValueError("model must be one of %s, got %r" % (", ".join(MODELS), model))


def task_names(tf_names):
  """The task names <task> of `task_specific/<task>/...` variables, sorted."""
  return sorted({n.split("/")[1] for n in tf_names
                 if n.startswith(TASK_SCOPE + "/") and n.count("/") >= 2})


def _head_to_hf(rest, model):
  scope, leaf = "/".join(rest[:-1]), rest[-1]
  hf = _HEAD_SCOPES[model].get(scope)
  if hf is None or leaf not in ("kernel", "bias"):
    return None
  return "%s.%s" % (hf, _HF_LEAF[leaf]), leaf == "kernel"


def tf_to_hf_name(tf_name, model="discriminator", task=None):
  """Maps a TF variable name to (HF parameter name, transpose) or None.

  Args:
    tf_name: a checkpoint variable name, e.g. "electra/encoder/layer_0/output/dense/kernel".
    model: "discriminator" (ElectraForPreTraining / ElectraModel under `electra.`),
      "generator" (ElectraForMaskedLM), or a finetuned model of HEAD_MODELS
      (ElectraForSequenceClassification / ElectraForTokenClassification /
      ElectraForQuestionAnswering: `electra/` encoder + `task_specific/<task>/` head).
    task: for HEAD_MODELS, only this task's head maps (None: any task's).

  Returns:
    (HF parameter name, whether the array is transposed), or None when the variable is
    not part of that model (e.g. the generator's encoder for the discriminator,
    global_step, optimizer slots). Both QA kernels map to `qa_outputs.weight` (and both
    biases to `qa_outputs.bias`): tf_to_hf_state stacks them in QA_ROWS order.

  Raises:
    ValueError: an unknown model.
  """
  _check_model(model)
  if is_optimizer_slot(tf_name) or "/" not in tf_name:
    return None
  parts = tf_name.split("/")
  top, rest = parts[0], parts[1:]
  if model in HEAD_MODELS:
    if top == TASK_SCOPE and len(rest) >= 3 and task in (None, rest[0]):
      return _head_to_hf(rest[1:], model)
    if top != "electra":
      return None
    model = "discriminator"  # the same encoder names
  if top == "electra" and rest[0] == "embeddings":
    body = ["electra"] + rest   # shared by both models
  elif top == "generator" and model == "generator":
    body = ["electra"] + rest   # the generator's own encoder (and untied embeddings)
  elif top == "electra" and model == "discriminator":
    body = ["electra"] + rest
  elif top == "discriminator_predictions" and model == "discriminator":
    body = [top] + ["dense_prediction" if p == "dense_1" else p for p in rest]
  elif top == "generator_predictions" and model == "generator":
    if rest == ["output_bias"]:
      return "generator_lm_head.bias", False
    body = [top] + rest
  else:
    return None
  leaf = body[-1]
  if leaf.endswith("_embeddings"):
    return ".".join(_hf_path(body)) + ".weight", False
  if leaf not in _HF_LEAF:
    return None
  return ".".join(_hf_path(body[:-1]) + [_HF_LEAF[leaf]]), leaf == "kernel"


def tf_to_hf_state(tf_values, model="discriminator", task=None):
  """{tf name: array} -> {HF parameter name: array} (kernels transposed).

  The generator's output layer reuses the word embeddings (`generator_lm_head.weight`).
  When both shared and untied generator embeddings exist, the generator takes its own.
  For question_answering, the start and end layers ([H, 1] each) become the rows of
  qa_outputs ([2, H], bias [2]); with only one of them present neither is mapped.

  Args:
    tf_values: {TF variable name: numpy array}.
    model, task: as tf_to_hf_name.

  Returns:
    {HF parameter name: numpy array}.
  """
  out = {}
  qa = collections.defaultdict(dict)  # HF name -> {row index: [1, H] or [1]}
  for name in sorted(tf_values, key=lambda n: n.startswith("generator/")):
    mapped = tf_to_hf_name(name, model, task)
    if mapped is None:
      continue
    hf_name, transpose = mapped
    value = tf_values[name]
    value = value.T if transpose else value
    if hf_name.startswith("qa_outputs."):
      qa[hf_name][QA_ROWS.index(name.split("/")[2])] = value
      continue
    out[hf_name] = value
  for hf_name, rows in qa.items():
    if sorted(rows) == [0, 1]:
      out[hf_name] = np.concatenate([rows[0], rows[1]], axis=0)
  if model == "generator" and "electra.embeddings.word_embeddings.weight" in out:
    out["generator_lm_head.weight"] = out["electra.embeddings.word_embeddings.weight"]
  return out


def hf_to_tf_name(hf_name, model="discriminator", untied_embeddings=False):
  """Maps a Hugging Face ELECTRA parameter name to (TF variable name, transpose) or None.

  The inverse of tf_to_hf_name. `generator_lm_head.weight` is the (tied) word embedding
  table. untied_embeddings: the generator's embeddings live under `generator/embeddings`.
  """
  if model not in ("discriminator", "generator"):
    raise ValueError("model must be 'discriminator' or 'generator', got %r" % model)
  encoder_scope = "electra" if model == "discriminator" else "generator"
  embeddings_scope = encoder_scope if untied_embeddings else "electra"
  if model == "generator" and hf_name == "generator_lm_head.weight":
    return embeddings_scope + "/embeddings/word_embeddings", False
  if model == "generator" and hf_name == "generator_lm_head.bias":
    return "generator_predictions/output_bias", False
  parts = hf_name.split(".")
  if len(parts) < 2:
    return None
  top, body, leaf = parts[0], parts[1:-1], parts[-1]
  if top == "electra":
    scope = embeddings_scope if body[:1] == ["embeddings"] else encoder_scope
  elif top == "discriminator_predictions" and model == "discriminator":
    scope = top
    body = ["dense_1" if p == "dense_prediction" else p for p in body]
  elif top == "generator_predictions" and model == "generator":
    scope = top
  else:
    return None
  out = []
  i = 0
  while i < len(body):
    if body[i] == "layer" and i + 1 < len(body) and body[i + 1].isdigit():
      out.append("layer_" + body[i + 1])
      i += 2
    else:
      out.append(body[i])
      i += 1
  if out and out[-1].endswith("_embeddings") and leaf == "weight":
    return "/".join([scope] + out), False
  if out and out[-1] == "LayerNorm":
    tf_leaf = {"weight": "gamma", "bias": "beta"}.get(leaf)
  else:
    tf_leaf = {"weight": "kernel", "bias": "bias"}.get(leaf)
  if tf_leaf is None:
    return None
  return "/".join([scope] + out + [tf_leaf]), tf_leaf == "kernel"


def hf_to_tf_state(hf_state, model="discriminator", untied_embeddings=False):
  """{HF parameter name: array} -> ({TF variable name: array}, [HF names not mapped]).

  The inverse of tf_to_hf_state for the pretraining models (kernels transposed back).
  `generator_lm_head.weight` is the tied word-embedding table: it is not a variable of
  its own, so it is left out here when the embeddings themselves are present.

  Args:
    hf_state: {HF parameter name: numpy array}.
    model: "discriminator" or "generator".
    untied_embeddings: the generator's embeddings live under `generator/embeddings`.

  Returns:
    ({TF name: numpy array}, sorted list of HF names that map to no TF variable).
  """
  out, unmapped = {}, []
  for hf_name in sorted(hf_state):
    mapped = hf_to_tf_name(hf_name, model, untied_embeddings=untied_embeddings)
    if mapped is None:
      unmapped.append(hf_name)
      continue
    tf_name, transpose = mapped
    if hf_name == "generator_lm_head.weight" and tf_name in out:
      continue
    value = hf_state[hf_name]
    out[tf_name] = value.T if transpose else value
  return out, unmapped


def hf_head_model_to_tf_state(hf_state, model, task):
  """{HF name: array} of a finetuned model -> ({TF name: array}, [HF names not mapped]).

  The inverse of tf_to_hf_state for HEAD_MODELS: the `electra.` encoder as the
  discriminator's, the head under `task_specific/<task>/` (qa_outputs [2, H] split back
  into the start `dense` and end `dense_1` layers, [H, 1] each).

  Args:
    hf_state: {HF parameter name: numpy array}.
    model: one of HEAD_MODELS.
    task: the <task> of `task_specific/<task>/`.
  """
  if model not in HEAD_MODELS:
    raise ValueError("model must be one of %s, got %r" % (", ".join(HEAD_MODELS), model))
  encoder = {n: v for n, v in hf_state.items() if n.startswith("electra.")}
  out, unmapped = hf_to_tf_state(encoder, "discriminator")
  scope = "%s/%s/" % (TASK_SCOPE, task)
  modules = {hf: tf_scope for tf_scope, hf in _HEAD_SCOPES[model].items()}
  for name in sorted(set(hf_state) - set(encoder)):
    module, _, leaf = name.rpartition(".")
    if module not in modules or leaf not in ("weight", "bias"):
      unmapped.append(name)
      continue
    value = hf_state[name]
    tf_leaf = "kernel" if leaf == "weight" else "bias"
    if model == "question_answering":
      parts = [(layer, value[row:row + 1]) for row, layer in enumerate(QA_ROWS)]
    else:
      parts = [(modules[module], value)]
    for tf_scope, part in parts:
      out[scope + tf_scope + "/" + tf_leaf] = part.T if leaf == "weight" else part
  return out, sorted(unmapped)


def read_checkpoint_values(ckpt, include_optimizer=False):
  """{name: numpy array} of every variable in a checkpoint (dir or prefix).

  Args:
    ckpt: a model directory (its latest checkpoint) or a checkpoint prefix.
    include_optimizer: also read the Adam slots.

  Returns:
    collections.OrderedDict sorted by name.

  Raises:
    CheckpointError: no such checkpoint, or it cannot be read.
  """
  prefix = resolve_checkpoint(ckpt)
  names = checkpoint_variables(prefix, include_optimizer=include_optimizer)
  try:
    reader = tf.train.load_checkpoint(prefix)
    return collections.OrderedDict((n, reader.get_tensor(n)) for n in names)
  except (tf.errors.OpError, ValueError) as e:
    raise CheckpointError("cannot read checkpoint %s: %s" % (prefix, e))


def write_checkpoint(values, prefix):
  """Writes {name: numpy array} as a TF checkpoint `prefix` and points the dir's
  `checkpoint` file at it (so tf.train.latest_checkpoint and Estimators find it).

  Runs SaveV2 in a throwaway graph fed from placeholders: no variables are built and no
  array is embedded in a GraphDef (whose 2 GB limit a large model would hit).

  Args:
    values: {variable name: numpy array}; dtypes are kept (global_step is int64).
    prefix: e.g. "DIR/model.ckpt-0" (local or any scheme:// path TF can write).

  Returns:
    prefix.
  """
  names = sorted(values)
  with tf.Graph().as_default():
    placeholders = [tf.placeholder(tf.as_dtype(np.asarray(values[n]).dtype),
                                   np.shape(values[n])) for n in names]
    save = tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                             shape_and_slices=[""] * len(names), tensors=placeholders)
    with tf.Session() as sess:
      sess.run(save, feed_dict={p: np.asarray(values[n])
                                for p, n in zip(placeholders, names)})
  directory, base = prefix.rsplit("/", 1) if "/" in prefix else (".", prefix)
  # The `checkpoint` state file, with a relative path: the directory may be renamed.
  with tf.io.gfile.GFile(directory + "/checkpoint", "w") as f:
    f.write('model_checkpoint_path: "%s"\nall_model_checkpoint_paths: "%s"\n' % (base, base))
  return prefix
