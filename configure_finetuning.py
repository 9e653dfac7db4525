"""Print a resolved finetuning config:

  python configure_finetuning.py [--preset koelectra|electra] [--hparams JSON_OR_FILE]
                                 [--model-name NAME] [--data-dir DIR]

The config itself, `FinetuningConfig` (every hyperparameter of finetuning, the `koelectra`
and `electra` presets, `--hparams` overrides), lives in finetune/config.py; it is
importable from here too, as in the original. This module does not import TensorFlow.
"""
from finetune.config import ConfigError, DEBUG_SETTINGS, PRESETS, FinetuningConfig  # noqa: F401
from util import cli
from util import errors


def main(argv=None):
  """Prints the resolved config; returns the exit status."""
  parser = cli.config_parser("Print a resolved finetuning config.", PRESETS)

  def show(argv):
    args = parser.parse_args(argv)
    print(FinetuningConfig.from_hparams(args.model_name, args.data_dir, args.hparams,
                                        preset=args.preset).to_json())
    return 0

  return errors.run_main(show, argv)


if __name__ == "__main__":
  cli.run_script(main)
