"""Print a resolved pretraining config, its FLOPs-per-step estimate and its memory per device
(model/memory.py):

  python configure_pretraining.py [--preset koelectra-small-v3] [--hparams JSON_OR_FILE]
                                  [--model-name NAME] [--data-dir DIR]

The config itself, `PretrainingConfig` (every hyperparameter of ELECTRA pretraining, the
KoELECTRA presets, `--hparams` overrides), lives in pretrain/config.py; it is importable
from here too, as in the original. This module does not import TensorFlow.
"""
from model import flops
from model import memory
from pretrain.config import ConfigError, DEBUG_SETTINGS, PRESETS, PretrainingConfig  # noqa: F401
from util import cli
from util import errors


def main(argv=None):
  """The command line; returns the exit status (2 and one error line for a UserError)."""
  parser = cli.config_parser("Print a resolved pretraining config and its FLOPs-per-step "
                             "estimate.", PRESETS)

  def show(argv):
    args = parser.parse_args(argv)
    cfg = PretrainingConfig.from_hparams(args.model_name, args.data_dir, args.hparams,
                                         preset=args.preset)
    print(cfg.to_json())
    fl = flops.estimate_train_flops(cfg)
    print(f"discriminator: {cfg.bert_hparams()}")
    if cfg.has_generator_transformer():
      print(f"generator: {cfg.generator_hparams()}")
    print(f"train FLOPs per step: {fl['train_per_step']:.4g} "
          f"({fl['train_per_seq']:.4g} per sequence, batch {cfg.train_batch_size})")
    print(f"memory: {memory.estimate(cfg).summary()}")
    return 0

  return errors.run_main(show, argv)


if __name__ == "__main__":
  cli.run_script(main)
