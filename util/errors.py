"""The one user-facing error base, and the one way every command line reports it.

Every problem a user can fix (a bad hparam, a missing file, a malformed row) raises a
subclass of `UserError` whose message names the key, file and line. Each CLI's `main`
goes through `run_main`, which prints such an error as one line `error: ...` and
returns exit status 2; anything else is a bug and keeps its traceback.
"""
import sys


class UserError(Exception):
  """A problem with the user's input or settings; the message says what to fix."""


def run_main(main, argv=None):
  """Runs `main(argv)`; a UserError becomes one `error:` line and exit status 2.

  Args:
    main: callable taking argv (list of str or None), returning an exit status.
    argv: passed through to main.

  Returns:
    main's exit status, or 2 after a UserError, 130 after Ctrl-C.
  """
  try:
    return main(argv)
  except UserError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    print("interrupted", file=sys.stderr)
    return 130


class ConfigError(UserError):
  """A bad hyperparameter, preset or model config; the message names the key (and file)."""


class RunError(UserError):
  """A setting or file that makes a run impossible; the message says which."""
