"""Keeping TensorFlow's native start-up and compiler lines off the console.

TensorFlow 2.15 prints, from C++, a oneDNN notice, a CPU-feature notice, "Compiled cluster
using XLA!", "SetPriority unimplemented for this stream" and an absl initialisation
warning. The first two obey TF_CPP_MIN_LOG_LEVEL; the XLA ones go through absl logging,
which ignores it, and land between the progress lines. The command lines therefore set
the level and, unless --verbose is given or TF_CPP_MIN_LOG_LEVEL is set by the user, pass
the process's stderr through a filter that drops exactly those lines and forwards
everything else (Python warnings, errors, progress bars) unchanged and at once.
"""
import atexit
import os
import re
import sys
import threading

# The native lines dropped: each is informational and printed once per process or step.
NOISE = re.compile(
    rb"absl::InitializeLog\(\)|Compiled cluster using XLA|SetPriority unimplemented|"
    rb"oneDNN custom operations are on|cpu_feature_guard|This TensorFlow binary is "
    rb"optimized|To enable the following instructions|rebuild TensorFlow with the "
    rb"appropriate compiler flags|MLIR V1 optimization pass is not enabled")
# How a native log line starts: a timestamp, an absl prefix (I0000 00:00:...), or absl's
# warning. A partial line that starts otherwise (a progress bar) is forwarded at once.
_NATIVE_START = re.compile(rb"^(\d{4}-\d\d-\d\d \d|[IWEF]\d{4} |WARNING: All log)")
QUIET_LEVEL = "2"

_installed = False


def quiet(verbose=False):
  """Sets TensorFlow's native log level and filters stderr (call before importing TF).

  Args:
    verbose: show everything (level 0, no filter).
  """
  if verbose:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    return
  if "TF_CPP_MIN_LOG_LEVEL" in os.environ and os.environ["TF_CPP_MIN_LOG_LEVEL"] != \
      QUIET_LEVEL:
    return  # the user asked for a level: leave it, and the lines, alone
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_LEVEL
  filter_native_stderr()


def filter_native_stderr():
  """Routes file descriptor 2 through a thread that drops NOISE lines (once per process).

  The filter stops at exit, after flushing, so nothing written before is lost.
  """
  global _installed
  if _installed:
    return
  _installed = True
  sys.stderr.flush()
  real = os.dup(2)
  read_fd, write_fd = os.pipe()
  os.dup2(write_fd, 2)
  os.close(write_fd)

  def pump():
    pending = b""
    while True:
      chunk = os.read(read_fd, 65536)
      if not chunk:
        break
      pending += chunk
      *lines, pending = pending.split(b"\n")
      out = b"".join(line + b"\n" for line in lines if not NOISE.search(line))
      if pending and not _NATIVE_START.match(pending):
        out, pending = out + pending, b""
      if out:
        os.write(real, out)
    if pending and not NOISE.search(pending):
      os.write(real, pending)
    os.close(read_fd)

  thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
  thread.start()

  def stop():
    try:
      sys.stderr.flush()
    except (OSError, ValueError):
      pass
    os.dup2(real, 2)  # closes the pipe's last write end: the pump sees EOF
    thread.join(timeout=5)

  atexit.register(stop)
