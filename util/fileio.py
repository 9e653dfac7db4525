"""Paths that may be local or gs://: one place for opening, listing and atomic writes.

TensorFlow's gfile understands gs:// (and local paths), so graph-side code and these
helpers agree on what a path means. Any `scheme://` path goes through gfile, not only
gs://: the tests run the remote code path on TF's in-memory ram:// filesystem. Atomic
writes go to a temporary name in the same
directory and are renamed when complete, so an interrupted job never leaves a
half-written file under its final name.
"""
import contextlib
import os
import re
import uuid

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_remote(path):
  """True for gs:// and every other `scheme://` path (handled by TF's gfile)."""
  return bool(_URL_RE.match(str(path)))


def _gfile():
  import tensorflow as tf  # imported lazily: tokenizer/vocab tools must not pay for TF
  return tf.io.gfile


def exists(path):
  return _gfile().exists(path) if is_remote(path) else os.path.exists(path)


def makedirs(path):
  if is_remote(path):
    _gfile().makedirs(path)
  else:
    os.makedirs(path, exist_ok=True)


def glob(pattern):
  if is_remote(pattern):
    return sorted(_gfile().glob(pattern))
  import glob as _glob
  return sorted(_glob.glob(pattern))


def join(*parts):
  if is_remote(parts[0]):
    return "/".join(p.rstrip("/") for p in parts[:-1]) + "/" + parts[-1]
  return os.path.join(*parts)


def open_file(path, mode="r"):
  if is_remote(path):
    return _gfile().GFile(path, mode)
  if "b" in mode:
    return open(path, mode)
  return open(path, mode, encoding="utf-8")


def remove(path):
  if is_remote(path):
    _gfile().remove(path)
  else:
    os.remove(path)


def rmtree(path):
  """Removes a directory and everything in it (local or remote)."""
  if is_remote(path):
    _gfile().rmtree(path)
  else:
    import shutil
    shutil.rmtree(path)


def tmp_name(path):
  """A temporary sibling of path; never matches the final name's glob patterns."""
  d, base = os.path.split(str(path))
  name = f".tmp-{uuid.uuid4().hex[:8]}-{base}"
  return join(d, name) if d else name


def rename(src, dst):
  if is_remote(src) or is_remote(dst):
    _gfile().rename(src, dst, overwrite=True)
  else:
    os.replace(src, dst)


@contextlib.contextmanager
def atomic_path(path):
  """Yield a temporary path for a writer that wants a filename (e.g. TFRecordWriter)."""
  tmp = tmp_name(path)
  try:
    yield tmp
    rename(tmp, path)
  except BaseException:
    with contextlib.suppress(Exception):
      remove(tmp)
    raise


@contextlib.contextmanager
def atomic_write(path, mode="w"):
  """Yield a file object; it appears at `path` only if the block finishes."""
  # The file is closed (inner context) before atomic_path renames or removes it.
  with atomic_path(path) as tmp, open_file(tmp, mode) as f:
    yield f


def _comparable(path):
  """`path` as a list of components to compare folders by: local paths resolved (relative
  paths, `..` and links), remote ones as written without a trailing slash."""
  if is_remote(path):
    scheme, rest = str(path).split("://", 1)
    return [scheme + "://"] + [p for p in rest.split("/") if p]
  return [p for p in os.path.realpath(os.path.expanduser(str(path))).split(os.sep) if p]


def check_output_apart(output, inputs, flag="--output-dir"):
  """Refuses an output folder that would replace something the command reads: one that
  equals or contains an input, or lies inside an input folder.

  A command that replaces its output (`--overwrite`) must never delete what it reads.

  Args:
    output: the output folder (local or `scheme://`).
    inputs: {flag name: path} of everything the command reads; None values are skipped.
      A folder is compared as a folder; a file or a checkpoint prefix (`model.ckpt-N`)
      only counts when the output equals or contains it.
    flag: the output's flag, for the message.

  Raises:
    UserError: naming both flags and paths.
  """
  from util import errors
  out = _comparable(output)
  for name, path in inputs.items():
    if not path:
      continue
    src = _comparable(path)
    is_folder = (_gfile().isdir(path) if is_remote(path) else os.path.isdir(path))
    if src[:len(out)] == out:
      relation = "is" if len(src) == len(out) else "contains"
    elif is_folder and out[:len(src)] == src:
      relation = "lies inside"
    else:
      continue
    raise errors.UserError(
        f"{flag} {output} {relation} the input {name} {path}: replacing it would delete "
        f"what this command reads; choose an output folder apart from every input")


def check_recorded_options(path, options, how_to_change):
  """Records `options` in `path` (JSON) on the first run; later runs must match it.

  For commands that skip the stages whose output exists: without this, a rerun with other
  options would report success on outputs built with the old ones.

  Args:
    path: the record file beside the outputs.
    options: {name: JSON-able value} that the outputs depend on.
    how_to_change: what the user can do instead, for the error ("rerun with --fresh").

  Raises:
    errors.UserError: the record differs, naming each option's recorded and given value.
  """
  import json
  from util import errors
  if exists(path):
    with open_file(path) as f:
      recorded = json.load(f)
    changed = [f"{k} {recorded.get(k)!r} -> {v!r}" for k, v in sorted(options.items())
               if recorded.get(k) != v]
    if changed:
      raise errors.UserError(f"{os.path.dirname(path) or '.'} was built with other options "
                             f"({'; '.join(changed)}); {how_to_change}")
    return
  with atomic_write(path) as f:
    json.dump(options, f, indent=1, sort_keys=True)
