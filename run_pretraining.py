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

# build_parser() is the argparse parser (tests check the documented commands with it);
# main(argv=None) parses, resolves the PretrainingConfig and calls pretrain/runner.run_command.
build_parser, main = cli.runner_command(__doc__, PretrainingConfig, "pretrain.runner",
    data_dir_help="directory (local or gs://) with pretrain_tfrecords/ and vocab.txt",
    model_name_help="the model goes to DATA_DIR/models/NAME")

if __name__ == "__main__":
  cli.run_script(main)
