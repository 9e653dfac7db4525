"""Finetune and evaluate on a Korean benchmark under TPUEstimator, as the original command line:

  python run_finetuning.py --data-dir DIR --model-name NAME --hparams JSON_OR_FILE
                           [--preset koelectra|electra] [--verbose] [--check-xla]

Task data is read from DIR/finetuning_data/<task>/ (KoELECTRA's file names; see
docs/finetuning.md). The encoder starts from `init_checkpoint`, by default the newest
checkpoint in DIR/models/NAME (a model pretrained by run_pretraining.py, or an original
ELECTRA / KoELECTRA TF checkpoint put there). Each trial trains in
DIR/models/NAME/finetuning_models/<task>_model/trial_<t>; rerunning the command resumes an
unfinished trial. Results go to DIR/models/NAME/results/: <task>_results.{json,txt} (each
trial and the median), results.md (every task's headline metric beside KoELECTRA's
published numbers) and predictions/<task>.<split>.<trial>.jsonl. The work is done by
finetune/runner.py.
"""
from finetune.config import FinetuningConfig
from util import cli


def build_parser():
  """The command line's argparse parser (also used by tests that check documented commands)."""
  return cli.runner_parser(
      __doc__.split("\n")[0], FinetuningConfig.PRESETS,
      data_dir_help="directory (local or gs://) with finetuning_data/ and vocab.txt",
      model_name_help="the pretrained model in DATA_DIR/models/NAME",
      check_xla_writes="writes no checkpoint")


def main(argv=None):
  """The command line; returns the exit status (2 and one error line for a UserError)."""
  def run(config, xla_check_only):
    from finetune import runner  # TensorFlow loads here, after the arguments are parsed
    return runner.run_command(config, xla_check_only)

  return cli.runner_main(argv, build_parser(), FinetuningConfig, run)


if __name__ == "__main__":
  cli.run_script(main)
