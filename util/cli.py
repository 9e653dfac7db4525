"""What the command lines share: the native-log filter installed before TensorFlow loads,
the runners' and the configs' arguments, and the runners' `main`.

The entry points import their package (and with it TensorFlow) only after the arguments
are parsed, so `--help` and argument errors answer at once. This module does not import
TensorFlow.
"""
import argparse
import sys
from typing import Callable, Iterable, Optional, Sequence

from util import errors
from util import tf_logging


def run_script(main: Callable[[], int]) -> None:
  """`if __name__ == "__main__": cli.run_script(main)`: keeps TensorFlow's native start-up
  lines off the console (util/tf_logging.py; `--verbose` shows them), then exits with
  main's status."""
  tf_logging.quiet(verbose="--verbose" in sys.argv[1:])
  sys.exit(main())


def config_parser(description: str, presets: Iterable[str]) -> argparse.ArgumentParser:
  """The configure_*.py command lines: --model-name, --data-dir, --preset, --hparams."""
  p = argparse.ArgumentParser(description=description)
  p.add_argument("--model-name", default="koelectra")
  p.add_argument("--data-dir", default=".")
  p.add_argument("--preset", choices=sorted(presets))
  p.add_argument("--hparams", action="append",
                 help="JSON object string or path to a JSON file (several: merged in order)")
  return p


def runner_parser(description: str, presets: Iterable[str], data_dir_help: str,
                  model_name_help: str, check_xla_writes: str):
  """The runners' shared command line, as the original's: --data-dir, --model-name,
  --hparams, plus ours: --preset, --verbose, --check-xla.

  Args:
    description: the parser's description (the runner's docstring).
    presets: the valid --preset names.
    data_dir_help, model_name_help: what DIR and NAME mean for this runner.
    check_xla_writes: what --check-xla leaves untouched, for its help text.

  Returns:
    argparse.ArgumentParser (a runner may add more arguments).
  """
  p = argparse.ArgumentParser(description=description,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--data-dir", required=True, help=data_dir_help)
  p.add_argument("--model-name", required=True, help=model_name_help)
  p.add_argument("--hparams", action="append",
                 help="JSON object, or a path to a JSON file; may be given several times, "
                      "later ones replacing earlier ones key by key")
  p.add_argument("--preset", choices=sorted(presets),
                 help="defaults applied before --hparams (the same as \"preset\" inside "
                      "--hparams; both given must agree)")
  p.add_argument("--verbose", action="store_true",
                 help="also show TensorFlow's own start-up and compiler log lines")
  p.add_argument("--check-xla", action="store_true",
                 help="build the train step as on a TPU, compile it with XLA on this "
                      f"machine's CPU, run it once and exit ({check_xla_writes})")
  return p


def runner_main(argv: Optional[Sequence[str]], parser: argparse.ArgumentParser, config_class,
                run: Callable[..., int]) -> int:
  """The runners' `main`: parse, resolve the config, run it.

  Args:
    argv: the arguments (None: sys.argv[1:]).
    parser: from runner_parser.
    config_class: a model/config.Config subclass (its from_hparams resolves the config).
    run: run(config, xla_check_only: bool (--check-xla)) -> exit status; imports the
      package that does the work (and TensorFlow).

  Returns:
    The exit status: run's, or 2 with one `error:` line for a UserError.
  """
  def parsed(argv):
    args = parser.parse_args(argv)
    config = config_class.from_hparams(args.model_name, args.data_dir, args.hparams,
                                       preset=args.preset)
    return run(config, args.check_xla)

  return errors.run_main(parsed, argv)
