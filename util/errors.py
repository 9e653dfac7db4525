"""The one user-facing error base, and the one way every command line reports it.

Every problem a user can fix (a bad hparam, a missing file, a malformed row) raises a
subclass of `UserError` whose message names the key, file and line. Each CLI's `main`
goes through `run_main`, which prints such an error as one line `error: ...` and
returns exit status 2; anything else is a bug and keeps its traceback. Ctrl-C and
SIGTERM (a scheduler's stop, `kill`) end with one line too: every command's outputs are
safe to resume from at any moment (docs/reliability.md).
"""
import errno
import os
import signal
import sys
import threading

# OSErrors a user fixes outside the program (disk full, permissions, a read-only file
# system, a file where a directory should be): one line naming the path, not a traceback.
ENVIRONMENT_ERRNOS = frozenset((errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM,
                                errno.EROFS, errno.ENOTDIR, errno.EEXIST, errno.EISDIR))


class UserError(Exception):
  """A problem with the user's input or settings; the message says what to fix."""


def run_main(main, argv=None):
  """Runs `main(argv)`; a UserError becomes one `error:` line and exit status 2.

  Args:
    main: callable taking argv (list of str or None), returning an exit status.
    argv: passed through to main.

  Returns:
    main's exit status, or 2 after a UserError or an environment OSError
    (ENVIRONMENT_ERRNOS), 130 after Ctrl-C, 143 after SIGTERM.
  """
  # SIGTERM becomes an exception in the main thread, so a run stops between two Python
  # statements (a training step finishes) and says so, instead of dying without a word.
  previous = None
  if threading.current_thread() is threading.main_thread():
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
  try:
    return main(argv)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except OSError as e:
    if e.errno not in ENVIRONMENT_ERRNOS:
      raise
    print(f"error: {os_error_line(e, '')}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("interrupted: resume with the same command", file=sys.stderr)
    return 130
  except Terminated:
    print("terminated: resume with the same command", file=sys.stderr)
    return 143
  finally:
    if previous is not None:
      signal.signal(signal.SIGTERM, previous)


class Terminated(BaseException):
  """SIGTERM arrived (a BaseException, like KeyboardInterrupt: no `except Exception`
  swallows it)."""


# Seconds after SIGTERM before the process ends itself: where Python swallows the
# exception (raised inside an at-fork or a __del__ callback) it would otherwise run on.
# Every command's outputs are safe to resume from at any moment, as after a SIGKILL.
TERMINATE_GRACE_SECONDS = 20


def _raise_terminated(signum, frame):
  del signum, frame
  timer = threading.Timer(TERMINATE_GRACE_SECONDS, _exit_terminated)
  timer.daemon = True
  timer.start()
  raise Terminated()


def _exit_terminated():
  print("terminated: resume with the same command", file=sys.stderr, flush=True)
  os._exit(143)


def init_worker_signals():
  """For worker processes (multiprocessing initializers): Ctrl-C and SIGTERM are the
  parent's to report, so a worker neither prints a traceback on Ctrl-C nor inherits the
  parent's SIGTERM handler (the pool stops its workers with SIGTERM)."""
  signal.signal(signal.SIGINT, signal.SIG_IGN)
  signal.signal(signal.SIGTERM, signal.SIG_DFL)


def first_line(e) -> str:
  """The first line of an exception's message (TensorFlow's and gRPC's run to many lines
  of detail), or its class name when it has none."""
  text = (getattr(e, "message", None) or str(e)).strip()
  return text.splitlines()[0].strip() if text else type(e).__name__


def os_error_line(e: OSError, where: str) -> str:
  """"path: cause" for an OSError; `where` names the path when the error carries none (a
  write() that fills the disk reports no file name)."""
  cause = e.strerror or str(e)
  path = e.filename if e.filename is not None else where
  return f"{path}: {cause}" if path else cause


class ConfigError(UserError):
  """A bad hyperparameter, preset or model config; the message names the key (and file)."""


class RunError(UserError):
  """A setting or file that makes a run impossible; the message says which."""
