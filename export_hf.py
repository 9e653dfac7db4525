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
ElectraForQuestionAnswering). --hparams may then be the finetuning run's: only its size
keys (SIZE_KEYS) are read. A checkpoint of run_finetuning.py on one of this project's
tasks needs neither --task-kind (the task's kind gives it) nor --labels (config.json gets
the task's label names, e.g. Naver NER's tags).

Each folder: config.json, model.safetensors (from numpy; no torch needed), vocab.txt,
tokenizer.json, tokenizer_config.json, special_tokens_map.json and README.md. OUT is
written under a temporary name and renamed when complete. See docs/huggingface.md.
"""
import argparse
import os
import sys

import configure_pretraining
from finetune import tasks as tasks_lib
from model import checkpoint
from model import hf_format
from model import tokenization
from util import errors
from util import fileio
from util import gcs
from util import hparams as hparams_lib
from util import tf_logging

PRETRAINING_MODELS = ("discriminator", "generator")
# The hparams that give the encoder's sizes, the same in pretraining and finetuning
# configs (both derive them with model/sizes.py).
SIZE_KEYS = ("model_size", "embedding_size", "vocab_size", "model_hparam_overrides", "debug")
WORD_EMBEDDINGS = "electra/embeddings/word_embeddings"


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
  p.add_argument("--task-kind", choices=checkpoint.HEAD_MODELS,
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


def model_hparams(config, model):
  """(BertConfig fields, embedding size) of one exported model.

  Args:
    config: the PretrainingConfig the checkpoint was trained with.
    model: "discriminator" (also the encoder of finetuned models) or "generator".

  Returns:
    (dict of BertConfig fields, int embedding size).

  Raises:
    HFFormatError: a generator this layout cannot express as ElectraForMaskedLM.
  """
  if model != "generator":
    return config.bert_hparams(), config.embedding_dim()
  if not config.electra_objective or config.uniform_generator:
    raise hf_format.HFFormatError(
        "the hparams have no generator network (electra_objective false or "
        "uniform_generator true); export with --which discriminator")
  if not config.untied_generator:
    raise hf_format.HFFormatError(
        "untied_generator false: the generator shares the discriminator's encoder, which "
        "ElectraForMaskedLM cannot share; export with --which discriminator")
  gen = config.generator_hparams()
  return gen, (gen["hidden_size"] if config.untied_generator_embeddings
               else config.embedding_dim())


def _card_details(config, values, ckpt, data_description, finetuned):
  """The model card's "Training" lines."""
  step = values.get("global_step")
  if finetuned:
    return {"checkpoint": "`%s`" % ckpt,
            "finetuning steps": str(int(step)) if step is not None else "unknown"}
  return {
      "checkpoint": "`%s`" % ckpt,
      "training steps": "%s of %s" % (int(step) if step is not None else "unknown",
                                      config.num_train_steps),
      "batch size / sequence length": "%d / %d" % (config.train_batch_size,
                                                   config.max_seq_length),
      "learning rate": str(config.learning_rate),
      "preset": config.preset or "none",
      "data": data_description or "`%s`" % config.pretrain_tfrecords,
  }


def head_state(values, kind, task):
  """{HF name: array} of a finetuned model, after checking the head maps one-to-one.

  Args:
    values: {TF name: array} of the checkpoint.
    kind: one of checkpoint.HEAD_MODELS.
    task: the <task> of task_specific/<task>/, or None for the only one.

  Returns:
    ({HF name: array}, the task name).

  Raises:
    HFFormatError: no task, several tasks and no --task-name, or a head that does not map
      (the original ELECTRA classifier, KorQuAD's joint_prediction).
  """
  tasks = checkpoint.task_names(values)
  if not tasks:
    raise hf_format.HFFormatError("the checkpoint has no task_specific/<task>/ variables; "
                                  "it is not a finetuned model (drop --task-kind)")
  if task is None:
    if len(tasks) > 1:
      raise hf_format.HFFormatError("the checkpoint holds several tasks (%s); choose one with "
                                    "--task-name" % ", ".join(tasks))
    task = tasks[0]
  elif task not in tasks:
    raise hf_format.HFFormatError("no task %r in the checkpoint (it has: %s)" % (
        task, ", ".join(tasks)))
  scope = "%s/%s/" % (checkpoint.TASK_SCOPE, task)
  head = sorted(n for n in values if n.startswith(scope) and not checkpoint.is_optimizer_slot(n))
  unmapped = [n for n in head if checkpoint.tf_to_hf_name(n, kind, task) is None]
  if unmapped:
    why = {
        "sequence_classification":
            "the original ELECTRA classifier (one dense layer on [CLS]) is not one-to-one "
            "with ElectraForSequenceClassification's head (dense + gelu + out_proj); only "
            "KoELECTRA's HF-style head (classifier/dense, classifier/out_proj) exports",
        "token_classification": "ElectraForTokenClassification has one dense layer "
                                "(task_specific/<task>/dense)",
        "question_answering": "ElectraForQuestionAnswering has one start and one end layer "
                              "(joint_prediction off); joint_prediction's heads do not map",
    }[kind]
    raise hf_format.HFFormatError("task %r: variable(s) %s have no %s equivalent: %s" % (
        task, ", ".join(unmapped), hf_format.ARCHITECTURES[kind], why))
  return checkpoint.tf_to_hf_state(values, kind, task), task


def finetuned_kind(ckpt, task_name=None):
  """The head model kind of a checkpoint finetuned on one of the project's tasks (the
  task named, or the checkpoint's only one), else None (a pretraining checkpoint, or a
  task this project does not know: then --task-kind says it)."""
  tasks = checkpoint.task_names(checkpoint.checkpoint_variables(ckpt))
  name = task_name or (tasks[0] if len(tasks) == 1 else None)
  if name not in tasks or name not in tasks_lib.TASKS:
    return None
  return tasks_lib.HF_MODEL_KIND[tasks_lib.get_task(name).kind]


def export(ckpt, config, vocab_file, out_dir, which=PRETRAINING_MODELS, task_kind=None,
           task_name=None, labels=None, problem_type=None, data_description=None,
           overwrite=False, log=print):
  """Exports a checkpoint; returns {model kind: folder written}.

  Args:
    ckpt: model directory or checkpoint prefix.
    config: the PretrainingConfig it was trained with.
    vocab_file: its vocab.
    out_dir: the output folder (pretraining: one subfolder per model in `which`;
      finetuned: the folder itself).
    which: pretraining models to export.
    task_kind: one of checkpoint.HEAD_MODELS for a finetuned checkpoint.
    task_name, labels, problem_type: the finetuned head's task, label names, problem type.
    data_description: the model card's data line.
    overwrite: replace a non-empty out_dir.
    log: progress lines.

  Raises:
    HFFormatError: a checkpoint, vocab or option that does not fit (nothing is written).
  """
  pad_id = tokenization.load_vocab(vocab_file)[tokenization.PAD]  # VocabError first
  values = checkpoint.read_checkpoint_values(ckpt)
  prefix = checkpoint.resolve_checkpoint(ckpt)
  details = _card_details(config, values, prefix, data_description, bool(task_kind))
  jobs = []  # (kind, subfolder, state, hf config)
  if task_kind:
    state, task = head_state(values, task_kind, task_name)
    hp, emb = model_hparams(config, "discriminator")
    num_labels = None
    if task_kind == "sequence_classification":
      num_labels = state["classifier.out_proj.weight"].shape[0] \
          if "classifier.out_proj.weight" in state else None
    elif task_kind == "token_classification":
      num_labels = state["classifier.weight"].shape[0] if "classifier.weight" in state else None
    if task_kind != "question_answering" and num_labels is None:
      raise hf_format.HFFormatError("task %r has no %s head variables" % (task, task_kind))
    if labels is None and task in tasks_lib.TASKS:
      # One of the project's tasks: its label names, in the order the head was trained.
      known = list(tasks_lib.get_task(task).labels)
      if known and len(known) == num_labels:
        labels = known
    details["finetuned task"] = "`%s` (%s)" % (task, task_kind)
    cfg = hf_format.electra_config(hp, emb, task_kind, pad_id, num_labels=num_labels,
                                   labels=labels, problem_type=problem_type)
    jobs.append((task_kind, "", state, cfg))
  else:
    for kind in which:
      if kind not in PRETRAINING_MODELS:
        raise hf_format.HFFormatError("--which: unknown model %r (use %s)" % (
            kind, ", ".join(PRETRAINING_MODELS)))
      hp, emb = model_hparams(config, kind)
      state = checkpoint.tf_to_hf_state(values, kind)
      cfg = hf_format.electra_config(hp, emb, kind, pad_id)
      jobs.append((kind, kind, state, cfg))
  written = {}
  remote = gcs.is_gs(out_dir)
  root = out_dir.rstrip("/") if remote else os.path.abspath(out_dir)
  # A gs:// folder gets each model's config.json last: a reader finds it complete.
  last = [("%s/%s" % (sub, hf_format.CONFIG_FILE)) if sub else hf_format.CONFIG_FILE
          for _, sub, _, _ in jobs]
  with hf_format.staged_output(out_dir, overwrite=overwrite, last=last) as tmp:
    for kind, sub, state, cfg in jobs:
      folder = os.path.join(tmp, sub) if sub else tmp
      os.makedirs(folder, exist_ok=True)
      try:
        hf_format.write_model_folder(folder, state, cfg, kind, vocab_file, details)
      except hf_format.HFFormatError as e:
        raise hf_format.HFFormatError("%s (%s): %s" % (prefix, kind, e)) from e
      written[kind] = (root + "/" + sub) if sub else root
  for kind, folder in written.items():
    log("%s: %s (%s)" % (kind, folder, hf_format.ARCHITECTURES[kind]))
  return written


def usage_lines(written):
  """The Python lines that load each exported folder with transformers.

  Args:
    written: export()'s {model kind: folder}.

  Returns:
    list of str.
  """
  lines = ["from transformers import AutoTokenizer, " +
           ", ".join(sorted({hf_format.ARCHITECTURES[k] for k in written}))]
  for kind, folder in written.items():
    cls = hf_format.ARCHITECTURES[kind]
    lines.append("%s = %s.from_pretrained(%r)" % (kind, cls, folder))
  lines.append("tokenizer = AutoTokenizer.from_pretrained(%r)" % next(iter(written.values())))
  return lines


def main(argv=None):
  args = build_parser().parse_args(argv)
  hparams = hparams_lib.parse_hparams(args.hparams)
  task_kind = args.task_kind or finetuned_kind(args.checkpoint, args.task_name)
  if task_kind:
    hparams = {k: v for k, v in hparams.items() if k in SIZE_KEYS}
    # Unused here, but a PretrainingConfig checks it against the position table.
    overrides = hparams.get("model_hparam_overrides")
    positions = overrides.get("max_position_embeddings", 512) \
        if isinstance(overrides, dict) else 512
    hparams["max_seq_length"] = min(128, positions)
  if "vocab_size" not in hparams and not (args.preset or hparams.get("preset")):
    # Not given: the checkpoint's (pretraining and finetuning configs default differently);
    # the vocab file is checked against it all the same.
    shapes = checkpoint.checkpoint_variables(args.checkpoint)
    if WORD_EMBEDDINGS in shapes:
      hparams["vocab_size"] = shapes[WORD_EMBEDDINGS][0]
  # The checkpoint's model; its paths are not used.
  config = configure_pretraining.PretrainingConfig.from_hparams("export", ".", hparams,
                                                                preset=args.preset)
  labels = [l.strip() for l in args.labels.split(",")] if args.labels else None
  which = tuple(w.strip() for w in args.which.split(",") if w.strip())
  if task_kind is None and (args.task_name or labels or args.problem_type):
    raise hf_format.HFFormatError("--task-name, --labels and --problem-type need --task-kind")
  fileio.check_output_apart(args.output_dir, {"--checkpoint": args.checkpoint,
                                             "--vocab-file": args.vocab_file})
  written = export(args.checkpoint, config, args.vocab_file, args.output_dir, which=which,
                   task_kind=task_kind, task_name=args.task_name, labels=labels,
                   problem_type=args.problem_type, data_description=args.data_description,
                   overwrite=args.overwrite)
  if gcs.is_gs(args.output_dir):
    local = os.path.basename(args.output_dir.rstrip("/"))
    print("\ntransformers reads local folders: copy it down first with\n"
          f"  python -m util.gcs cp -r {args.output_dir.rstrip('/')} {local}")
    written = {k: local + v[len(args.output_dir.rstrip("/")):] for k, v in written.items()}
  print("\nload it with transformers:\n" + "\n".join("  " + l for l in usage_lines(written)))
  return 0


if __name__ == "__main__":
  tf_logging.quiet(verbose="--verbose" in sys.argv[1:])  # before TensorFlow loads
  sys.exit(errors.run_main(main))
