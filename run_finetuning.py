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

# build_parser() is the argparse parser (tests check the documented commands with it);
# main(argv=None) parses, resolves the FinetuningConfig and calls finetune/runner.run_command.
build_parser, main = cli.runner_command(__doc__, FinetuningConfig, "finetune.runner",
    data_dir_help="directory (local or gs://) with finetuning_data/ and vocab.txt",
    model_name_help="the pretrained model in DATA_DIR/models/NAME")

if __name__ == "__main__":
  cli.run_script(main)
