"""What the command lines share: the native-log filter installed before TensorFlow loads,
the runners' and the configs' arguments, and the runners' `build_parser` and `main`.

The entry points import their package (and with it TensorFlow) only after the arguments
are parsed, so `--help` and argument errors answer at once. This module does not import
TensorFlow.
"""
import argparse
import importlib
import sys
from typing import Callable, Iterable

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
                  model_name_help: str, check_xla_writes: str = "writes nothing to model_dir"):
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


def runner_command(doc: str, config_class, runner: str, **help_texts):
  """The runners' command line: their `build_parser` and `main`.

  Args:
    doc: the runner's module docstring (its first line describes the parser).
    config_class: a model/config.Config subclass (its PRESETS; from_hparams resolves the
      config).
    runner: the module whose run_command(config, xla_check_only) does the work; imported
      only after the arguments are parsed, so that --help answers before TensorFlow loads.
    **help_texts: runner_parser's data_dir_help, model_name_help (, check_xla_writes).

  Returns:
    (build_parser() -> argparse.ArgumentParser, main(argv=None) -> exit status: 2 and one
    `error:` line for a UserError).
  """
  def build_parser():
    return runner_parser(doc.split("\n")[0], config_class.PRESETS, **help_texts)

  def parsed(argv):
    args = build_parser().parse_args(argv)
    config = config_class.from_hparams(args.model_name, args.data_dir, args.hparams,
                                       preset=args.preset)
    return importlib.import_module(runner).run_command(config, args.check_xla)

  return build_parser, lambda argv=None: errors.run_main(parsed, argv)
