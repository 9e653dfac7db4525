"""Import a Hugging Face ELECTRA (e.g. monologg/koelectra-*-v3-*) as a TensorFlow checkpoint.

  python import_hf.py --discriminator HF_DIR [--generator HF_DIR] --output-dir CKPT_DIR
                      [--overwrite]
  python import_hf.py --finetuned HF_DIR --task TASK --output-dir TRIAL_DIR [--overwrite]

Reads each hub folder's config.json and weights (model.safetensors, sharded safetensors,
or pytorch_model.bin read without torch) and writes to CKPT_DIR:
  model.ckpt-0.*, checkpoint   variables with the original ELECTRA names (global_step 0)
  hparams.json                 the pretraining hparams describing this model
  finetuning_hparams.json      its size keys, vocab_file and init_checkpoint: give it to
                               run_finetuning.py --hparams, then a second --hparams with
                               the task
  vocab.txt                    the discriminator folder's vocab
With --generator the checkpoint is a complete pretraining checkpoint (generator,
discriminator, both heads, zero Adam slots, step 0): run_pretraining.py with
`model_dir` = CKPT_DIR continues pretraining from it. Without it, the discriminator alone is
written: what finetuning loads (`electra/...`). With --finetuned, a finetuned model
(ElectraForSequenceClassification, ...ForTokenClassification, ...ForQuestionAnswering)
becomes a checkpoint of run_finetuning's "hf" head for TASK, its rows in the task's label
order, and hparams.json the run_finetuning hparams that evaluate it (do_train off):
write it to DATA_DIR/models/NAME/finetuning_models/TASK_model/trial_1. HF_DIR and CKPT_DIR may be gs:// (a Cloud
TPU reads checkpoints from Cloud Storage only); on gs:// the `checkpoint` state file is
uploaded last. See docs/huggingface.md; the format and the rules are in model/hf/.
"""
import argparse
import sys

import configure_pretraining
from finetune import tasks as tasks_lib
from util import errors
from util import fileio
from util import tf_logging


def build_parser() -> argparse.ArgumentParser:
  """The command line's parser."""
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=__doc__.split("\n", 1)[1])
  source = p.add_mutually_exclusive_group(required=True)
  source.add_argument("--discriminator",
                      help="hub folder of the discriminator (ElectraForPreTraining, or any "
                           "ELECTRA model whose encoder you want)")
  source.add_argument("--finetuned",
                      help="hub folder of a finetuned model (ElectraForSequenceClassification,"
                           " ...ForTokenClassification, ...ForQuestionAnswering), with --task")
  p.add_argument("--generator", help="hub folder of the generator (ElectraForMaskedLM)")
  p.add_argument("--task", help="with --finetuned: the task it was finetuned on (nsmc, "
                                "naver-ner, korquad, ...)")
  p.add_argument("--output-dir", required=True)
  p.add_argument("--overwrite", action="store_true", help="replace a non-empty --output-dir")
  p.add_argument("--verbose", action="store_true",
                 help="also show TensorFlow's own start-up log lines")
  return p


def finetuned_task(name):
  """The task a finetuned folder is imported for, as model/hf/convert takes it.

  Raises:
    ConfigError: an unknown task.
  """
  from model.hf import convert
  spec = tasks_lib.get_task(name)
  return convert.FinetunedTask(spec.name, spec.kind, tasks_lib.HF_MODEL_KIND[spec.kind],
                               tuple(spec.labels))


def build_config(hparams):
  """The PretrainingConfig of an imported model's hparams (its paths unused)."""
  return configure_pretraining.PretrainingConfig("import", ".", **hparams)


def main(argv=None):
  """The command line; returns the exit status."""
  args = build_parser().parse_args(argv)
  if bool(args.finetuned) != bool(args.task):
    raise errors.UserError("--finetuned and --task go together")
  if args.finetuned and args.generator:
    raise errors.UserError("--generator goes with --discriminator, not --finetuned")
  fileio.check_output_apart(args.output_dir, {
      "--discriminator": args.discriminator, "--generator": args.generator,
      "--finetuned": args.finetuned})
  # TensorFlow loads here: after --help, and after the log filter (__main__).
  from model.hf import convert
  if args.finetuned:
    convert.import_finetuned(args.finetuned, finetuned_task(args.task), args.output_dir,
                             build_config, overwrite=args.overwrite)
  else:
    convert.import_folders(args.discriminator, args.output_dir, build_config,
                           gen_dir=args.generator, overwrite=args.overwrite)
  return 0


if __name__ == "__main__":
  tf_logging.quiet(verbose="--verbose" in sys.argv[1:])  # before TensorFlow loads
  sys.exit(errors.run_main(main))
