"""TF checkpoints: their variables, optimizer slots, initialisation, numpy in and out.

- list a checkpoint's variables and compare them with a graph's (refuse a checkpoint of a
  different architecture with a message naming the variables);
- assignment maps for `tf.train.init_from_checkpoint` (e.g. finetuning loads `electra/*`
  from a pretraining checkpoint);
- reading a checkpoint's values and writing a checkpoint from numpy arrays (import).

The Hugging Face names of these variables are in model/hf/names.py.
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
# The word embedding table: its rows are the vocab the checkpoint was trained with.
WORD_EMBEDDINGS = "electra/embeddings/word_embeddings"


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
      raise CheckpointError(f"no checkpoint found in directory {path}")
    return latest
  if not tf.io.gfile.glob(path + ".index") and not tf.io.gfile.exists(path):
    raise CheckpointError(f"checkpoint {path} does not exist (no {path}.index)")
  return path


def checkpoint_variables(ckpt, include_optimizer=False):
  """{name: shape} of a checkpoint (dir or prefix), optimizer slots left out by default."""
  prefix = resolve_checkpoint(ckpt)
  try:
    listed = tf.train.list_variables(prefix)
  except (tf.errors.OpError, ValueError) as e:
    raise CheckpointError(f"cannot read checkpoint {prefix}: {e}")
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
      raise CheckpointError(f"variable list line {lineno}: cannot parse {line!r}")
    shape = () if len(parts) == 1 else tuple(int(d) for d in parts[1].split("x"))
    out[parts[0]] = shape
  return out


def format_variable_list(variables):
  """The inverse of parse_variable_list, sorted by name."""
  return "".join(f"{name} {'x'.join(str(d) for d in shape)}\n"
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
      more = "" if len(items) <= limit else f"\n    ... and {len(items) - limit} more"
      return "".join("\n    " + str(i) for i in items[:limit]) + more

    lines = []
    if self.missing:
      lines.append(f"{len(self.missing)} variable(s) in {expected_label} but not in "
                   f"{actual_label}:{listing(self.missing)}")
    if self.unexpected:
      lines.append(f"{len(self.unexpected)} variable(s) in {actual_label} but not in "
                   f"{expected_label}:{listing(self.unexpected)}")
    if self.mismatched:
      shapes = listing(f"{n} {e} vs {a}" for n, e, a in self.mismatched)
      lines.append(f"{len(self.mismatched)} variable(s) with different shapes "
                   f"({expected_label} vs {actual_label}):{shapes}")
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
    listing = "".join(f"\n    {n} {c} vs {m}" for n, c, m in mismatched)
    raise CheckpointMismatchError(
        f"checkpoint {ckpt}: {len(mismatched)} variable(s) with different shapes "
        f"(checkpoint vs model):{listing}")
  return assignment_map, sorted(assignment_map)


def init_from_checkpoint(ckpt, prefixes=("electra/",), tvars=None, require=True):
  """Initializes matching variables from a checkpoint; returns the initialized names.

  With require=True, a prefix that matches no variable of the model raises (a finetuning
  run would otherwise silently start from random weights).
  """
  prefix = resolve_checkpoint(ckpt)
  assignment_map, names = get_assignment_map(prefix, tvars=tvars, prefixes=prefixes)
  if require and not names:
    raise CheckpointMismatchError(f"checkpoint {prefix} has no variable of this model "
                                  f"under {', '.join(prefixes or ['any name'])}")
  tf.train.init_from_checkpoint(prefix, {n: v for n, v in assignment_map.items()})
  return names


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
    raise CheckpointError(f"cannot read checkpoint {prefix}: {e}")


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
    f.write(f'model_checkpoint_path: "{base}"\nall_model_checkpoint_paths: "{base}"\n')
  return prefix
