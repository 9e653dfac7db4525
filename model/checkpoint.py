"""The one place that knows checkpoint variable names.

- list a checkpoint's variables and compare them with a graph's (refuse a checkpoint of a
  different architecture with a message naming the variables);
- assignment maps for `tf.train.init_from_checkpoint` (e.g. finetuning loads `electra/*`
  from a pretraining checkpoint);
- the mapping between our (original ELECTRA) TF names and Hugging Face ELECTRA parameters.

Variable lists are dicts {name: shape tuple}; a scalar has shape ().
"""
import collections
import re

import tensorflow.compat.v1 as tf

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


def check_checkpoint_matches(ckpt, model_variables=None, ignore=()):
  """Raises CheckpointMismatchError unless the checkpoint holds exactly the model's variables.

  model_variables: {name: shape} (default: the default graph's global variables); optimizer
  slots are left out on both sides. Returns the resolved checkpoint prefix.
  """
  prefix = resolve_checkpoint(ckpt)
  if model_variables is None:
    model_variables = graph_variables()
  model_variables = {n: s for n, s in model_variables.items() if not is_optimizer_slot(n)}
  diff = compare_variables(checkpoint_variables(prefix), model_variables, ignore=ignore)
  if not diff.ok:
    raise CheckpointMismatchError(
        "checkpoint %s was written by a model of a different architecture:\n%s" %
        (prefix, diff.describe("the checkpoint", "this model")))
  return prefix


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


def tf_to_hf_name(tf_name, model="discriminator"):
  """Maps a TF variable name to (HF parameter name, transpose) or None.

  model: "discriminator" (ElectraForPreTraining / ElectraModel under `electra.`) or
  "generator" (ElectraForMaskedLM). None means the variable is not part of that model
  (e.g. the generator's encoder for the discriminator, global_step, optimizer slots).
  """
  if model not in ("discriminator", "generator"):
    raise ValueError("model must be 'discriminator' or 'generator', got %r" % model)
  if is_optimizer_slot(tf_name) or "/" not in tf_name:
    return None
  parts = tf_name.split("/")
  top, rest = parts[0], parts[1:]
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


def tf_to_hf_state(tf_values, model="discriminator"):
  """{tf name: array} -> {HF parameter name: array} (kernels transposed).

  The generator's output layer reuses the word embeddings (`generator_lm_head.weight`).
  When both shared and untied generator embeddings exist, the generator takes its own.
  """
  out = {}
  for name in sorted(tf_values, key=lambda n: n.startswith("generator/")):
    mapped = tf_to_hf_name(name, model)
    if mapped is None:
      continue
    hf_name, transpose = mapped
    value = tf_values[name]
    out[hf_name] = value.T if transpose else value
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
