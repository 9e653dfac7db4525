"""Export a TensorFlow ELECTRA checkpoint as Hugging Face hub-ready folders.

Pretraining checkpoint (generator + discriminator):
  python export_hf.py --checkpoint DIR_OR_CKPT --hparams JSON_OR_FILE [--preset NAME] \\
      --vocab-file VOCAB --output-dir OUT [--which discriminator,generator] [--overwrite]
writes OUT/discriminator/ (ElectraForPreTraining) and OUT/generator/ (ElectraForMaskedLM).

Finetuned checkpoint (encoder under electra/, head under task_specific/<task>/):
  python export_hf.py --checkpoint DIR_OR_CKPT --hparams JSON_OR_FILE --vocab-file VOCAB \\
      --output-dir OUT --task-kind sequence_classification [--task-name nsmc] \\
      [--labels negative,positive]
writes OUT/ itself (ElectraForSequenceClassification, ElectraForTokenClassification or
ElectraForQuestionAnswering). --hparams may then be the finetuning run's: only the keys
that describe the encoder (model/hf/convert.SIZE_KEYS) are read. A checkpoint of
run_finetuning.py on one of this project's tasks needs neither --task-kind (the task's
kind gives it) nor --labels (config.json gets the task's label names, e.g. Naver NER's
tags).

Each folder: config.json, model.safetensors (from numpy; no torch needed), vocab.txt,
tokenizer.json, tokenizer_config.json, special_tokens_map.json and README.md. OUT is
written under a temporary name and renamed when complete. See docs/huggingface.md; the
format and the rules are in model/hf/.
"""
import argparse
import os
import sys

import configure_pretraining
from finetune import tasks as tasks_lib
from model.hf import names
from util import errors
from util import fileio
from util import gcs
from util import hparams as hparams_lib
from util import tf_logging


def build_parser() -> argparse.ArgumentParser:
  """The command line's parser."""
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog=__doc__.split("\n", 1)[1])
  p.add_argument("--checkpoint", required=True,
                 help="a model directory (its latest checkpoint) or a checkpoint prefix")
  p.add_argument("--hparams", default="{}",
                 help="the pretraining hparams the checkpoint was trained with: JSON object "
                      "or a path to a JSON file (with --task-kind, the finetuning run's "
                      "hparams also work: only the size keys are read)")
  p.add_argument("--preset", choices=sorted(configure_pretraining.PRESETS),
                 help="KoELECTRA preset applied before --hparams")
  p.add_argument("--vocab-file", required=True, help="the vocab the model was trained with")
  p.add_argument("--output-dir", required=True)
  p.add_argument("--which", default="discriminator,generator",
                 help="pretraining models to export, comma separated (default: both)")
  p.add_argument("--task-kind", choices=names.HEAD_MODELS,
                 help="export a finetuned model with this head instead (default for a "
                      "checkpoint finetuned on one of this project's tasks: its kind)")
  p.add_argument("--task-name", help="the <task> of task_specific/<task>/ (default: the "
                                     "only task in the checkpoint)")
  p.add_argument("--labels", help="label names in id order, comma separated "
                                  "(written to config.json's id2label / label2id; default "
                                  "for this project's tasks: the task's labels)")
  p.add_argument("--problem-type", choices=("single_label_classification",
                                            "multi_label_classification", "regression"),
                 help="sequence classification only (default: regression for one output, "
                      "else single_label_classification)")
  p.add_argument("--data-description", help="the pretraining data, for the model card")
  p.add_argument("--overwrite", action="store_true", help="replace a non-empty --output-dir")
  p.add_argument("--verbose", action="store_true",
                 help="also show TensorFlow's own start-up log lines")
  return p


def finetuned_kind(values, task_name=None):
  """The head model kind of a checkpoint finetuned on one of the project's tasks (the
  task named, or the checkpoint's only one), else None (a pretraining checkpoint, or a
  task this project does not know: then --task-kind says it).

  Args:
    values: the checkpoint's {variable name: shape}.
    task_name: --task-name.
  """
  tasks = names.task_names(values)
  name = task_name or (tasks[0] if len(tasks) == 1 else None)
  if name not in tasks or name not in tasks_lib.TASKS:
    return None
  return tasks_lib.HF_MODEL_KIND[tasks_lib.get_task(name).kind]


def main(argv=None):
  """The command line; returns the exit status."""
  args = build_parser().parse_args(argv)
  # TensorFlow loads here: after --help, and after the log filter (__main__).
  from model import checkpoint
  from model.hf import convert
  hparams = hparams_lib.parse_hparams(args.hparams)
  task_kind = args.task_kind or finetuned_kind(checkpoint.checkpoint_variables(args.checkpoint),
                                               args.task_name)
  hparams = convert.export_hparams(hparams, args.checkpoint, finetuned=bool(task_kind),
                                   preset=args.preset)
  # The checkpoint's model; its paths are not used.
  config = configure_pretraining.PretrainingConfig.from_hparams("export", ".", hparams,
                                                                preset=args.preset)
  labels = [l.strip() for l in args.labels.split(",")] if args.labels else None
  which = tuple(w.strip() for w in args.which.split(",") if w.strip())
  if task_kind is None and (args.task_name or labels or args.problem_type):
    raise errors.UserError("--task-name, --labels and --problem-type need --task-kind")
  fileio.check_output_apart(args.output_dir, {"--checkpoint": args.checkpoint,
                                             "--vocab-file": args.vocab_file})
  written = convert.export(
      args.checkpoint, config, args.vocab_file, args.output_dir, which=which,
      task_kind=task_kind, task_name=args.task_name, labels=labels,
      task_labels={name: spec.labels for name, spec in tasks_lib.TASKS.items()},
      problem_type=args.problem_type, data_description=args.data_description,
      overwrite=args.overwrite)
  out = args.output_dir.rstrip("/")
  if gcs.is_gs(out):
    local = os.path.basename(out)
    print(f"\ntransformers reads local folders: copy it down first with\n"
          f"  python -m util.gcs cp -r {out} {local}")
    written = {k: local + v[len(out):] for k, v in written.items()}
  print("\nload it with transformers:\n" +
        "\n".join("  " + l for l in convert.usage_lines(written)))
  return 0


if __name__ == "__main__":
  tf_logging.quiet(verbose="--verbose" in sys.argv[1:])  # before TensorFlow loads
  sys.exit(errors.run_main(main))
