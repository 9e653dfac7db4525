"""What a run that stops for a reason outside the code tells the user: one line.

The runners do their work inside `explained_failures`, which turns the failures a user
can act on into a `errors.RunError` (one `error:` line, exit status 2; util/errors.py):

- a non-finite training loss (the Estimator's own NanTensorHook raises it: off TPU it
  reads the loss every step, on TPU the loss the device loop already returns, so this adds
  no host synchronisation): the checkpoints holding non-finite weights are moved aside by
  util/estimator.recover_model_dir, which names the last good one;
- a damaged TFRecord file (TensorFlow's DataLossError names no file): each input file's
  framing and checksums are verified (util/tfrecord_writer.read_records, one read of the
  data, only after the failure) and the first bad one is named, with how to check and
  rebuild it;
- the environment: no space left, no permission, a read-only file system, a path whose
  parent is a file, as TensorFlow's file layer reports them (its OpError subclasses; an
  OSError of Python's own becomes one line in util/errors.run_main): the path and the
  cause.

Anything else keeps its traceback: it is a bug.
"""
import contextlib
import re

import tensorflow.compat.v1 as tf

from util import errors
from util import estimator as estimator_lib
from util import fileio
from util import tfrecord_writer

# The words TensorFlow's file-system layer uses for util/errors.ENVIRONMENT_ERRNOS (its
# OpError carries no errno; Python's OSErrors reach util/errors.run_main as they are).
_ENV_WORDS = re.compile(r"No space left|Disk quota|Permission denied|Read-only file system|"
                        r"Not a directory|is not a directory|File exists|Is a directory",
                        re.IGNORECASE)


def find_damaged_file(patterns):
  """(path, reason) of the first TFRecord file matching `patterns` whose framing or
  checksums are wrong, or (None, None). Reads every file whole."""
  for pattern in patterns:
    for path in sorted(fileio.glob(pattern.strip())):
      try:
        for _ in tfrecord_writer.read_records(path):
          pass
      except tfrecord_writer.RecordError as e:
        return path, str(e).split(": ", 1)[-1]
  return None, None


def environment_problem(exc):
  """One line naming the path and the cause when TensorFlow's `exc` is an environment
  failure (disk full, permissions, a file where a directory should be), else None."""
  if _ENV_WORDS.search(exc.message or ""):
    return errors.first_line(exc)
  return None


@contextlib.contextmanager
def explained_failures(model_dir, data_patterns=(), data_hint="", log=print):
  """Runs the body; the failures listed in the module docstring become a RunError.

  Args:
    model_dir: the run's model directory (its checkpoints are checked after a
      non-finite loss).
    data_patterns: file patterns of the TFRecords the run reads, searched after a
      DataLossError.
    data_hint: what to do about a damaged file, appended to the error ("{path}" is
      replaced by its path).
    log: where recovery lines go.

  Raises:
    errors.RunError: naming the cause (and path); the original exception is chained.
  """
  try:
    yield
  except tf.train.NanLossDuringTrainingError as e:
    # Checkpoints saved at or after the step that went non-finite hold NaN/inf weights:
    # recover_model_dir reads them back, moves them aside and names the last good one.
    good = estimator_lib.recover_model_dir(model_dir, log=log)
    keep = (f"the last good checkpoint, {good}, is kept and a rerun resumes from it"
            if good else "no checkpoint before it was saved")
    raise errors.RunError(
        "the training loss became NaN or infinite; " + keep + ": lower learning_rate, "
        "or check the labels and inputs (a value far outside the task's range)") from e
  except tf.errors.DataLossError as e:
    path, why = find_damaged_file(data_patterns)
    if path is None:
      raise errors.RunError(f"data loss while reading: {errors.first_line(e)}") from e
    raise errors.RunError(f"{path} is damaged ({why}); "
                          + data_hint.replace("{path}", path)) from e
  except tf.errors.OpError as e:
    problem = environment_problem(e)
    if problem is None:
      raise
    raise errors.RunError(f"cannot write or read: {problem}") from e
