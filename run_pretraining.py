"""Pretrain (or evaluate) an ELECTRA model under TPUEstimator, as the original command line:

  python run_pretraining.py --data-dir DIR --model-name NAME [--hparams JSON_OR_FILE]
                            [--preset koelectra-small-v3] [--verbose] [--check-xla]

DIR (local or gs://) holds `pretrain_tfrecords/pretrain_data.tfrecord*` and `vocab.txt`;
the model goes to DIR/models/NAME (all three can be moved with hparams). `use_tpu` off runs
the same model_fn on CPU/GPU. Rerunning the same command resumes from the newest complete
checkpoint. With `do_eval` the masked-LM and discriminator metrics are written to
<model_dir>/results/unsup_results.{txt,json}. The work is done by pretrain/runner.py.
"""
from pretrain.config import PretrainingConfig
from util import cli


def build_parser():
  """The command line's argparse parser (also used by tests that check documented commands)."""
  return cli.runner_parser(
      __doc__.split("\n")[0], PretrainingConfig.PRESETS,
      data_dir_help="directory (local or gs://) with pretrain_tfrecords/ and vocab.txt",
      model_name_help="the model goes to DATA_DIR/models/NAME",
      check_xla_writes="writes nothing to model_dir")


def main(argv=None):
  """The command line; returns the exit status (2 and one error line for a UserError)."""
  def run(config, xla_check_only):
    from pretrain import runner  # TensorFlow loads here, after the arguments are parsed
    return runner.run_command(config, xla_check_only)

  return cli.runner_main(argv, build_parser(), PretrainingConfig, run)


if __name__ == "__main__":
  cli.run_script(main)
