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
uploaded last. See docs/huggingface.md.
"""
import argparse
import contextlib
import json
import os
import shutil
import sys
import tempfile

import numpy as np

import configure_pretraining
from finetune import tasks as tasks_lib
from model import checkpoint
from model import hf_format
from model import tokenization
from util import errors
from util import fileio
from util import gcs
from util import tf_logging

CHECKPOINT_NAME = "model.ckpt-0"
HPARAMS_FILE = "hparams.json"
FINETUNING_HPARAMS_FILE = "finetuning_hparams.json"
# config.json fields carried into model_hparam_overrides as they are.
_OVERRIDES = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
              "max_position_embeddings", "type_vocab_size", "initializer_range")
# Must agree between the two folders: the generator shares the discriminator's embeddings.
_SHARED = ("vocab_size", "max_position_embeddings", "type_vocab_size")


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


def pretraining_hparams(disc_cfg, gen_cfg=None, untied_embeddings=False):
  """The PretrainingConfig hparams (dict) of an imported model, checked by building it.

  Args:
    disc_cfg: the discriminator's config.json fields.
    gen_cfg: the generator's, or None (discriminator only).
    untied_embeddings: the generator has its own embedding table.

  Returns:
    dict of hparams (no paths).

  Raises:
    HFFormatError: a generator this project's generator rule (heads = hidden // 64,
      intermediate = 4 x hidden) cannot build, or sizes the config refuses.
  """
  hp = {
      "model_size": "base" if disc_cfg["hidden_size"] > 256 else "small",
      "embedding_size": disc_cfg["embedding_size"],
      "vocab_size": disc_cfg["vocab_size"],
      "do_lower_case": False,
      "model_hparam_overrides": {k: disc_cfg[k] for k in _OVERRIDES if k in disc_cfg},
  }
  if disc_cfg["max_position_embeddings"] < 128:  # the default max_seq_length would not fit
    hp["max_seq_length"] = disc_cfg["max_position_embeddings"]
  if gen_cfg is not None:
    hp["generator_hidden_size"] = gen_cfg["hidden_size"] / disc_cfg["hidden_size"]
    hp["generator_layers"] = gen_cfg["num_hidden_layers"] / disc_cfg["num_hidden_layers"]
    hp["untied_generator_embeddings"] = untied_embeddings
  try:
    config = configure_pretraining.PretrainingConfig("import", ".", **hp)
  except configure_pretraining.ConfigError as e:
    raise hf_format.HFFormatError("the imported model's sizes are not a valid pretraining "
                                  "config: %s" % e) from e
  if gen_cfg is not None:
    built = config.generator_hparams()
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
      if built[key] != gen_cfg[key]:
        raise hf_format.HFFormatError(
            "generator %s is %s but this project's generator would have %s (it derives "
            "heads = hidden // 64 and intermediate = 4 x hidden from the discriminator); "
            "import the discriminator alone" % (key, gen_cfg[key], built[key]))
  return hp


def _encoder_state(folder, cfg, model):
  """A folder's {HF name: array}, every encoder parameter checked against config.json;
  also returns the head parameters that are absent (an ElectraModel has none)."""
  state = hf_format.read_weights(folder)
  expected = hf_format.expected_shapes(cfg, model)
  head = [n for n in expected if not n.startswith("electra.")]
  have = {n: tuple(a.shape) for n, a in state.items() if n in expected}
  missing_head = [n for n in head if n not in state]
  diff = checkpoint.compare_variables({n: s for n, s in expected.items() if n not in head
                                       or n in state}, have)
  if not diff.ok:
    raise hf_format.HFFormatError("%s does not hold the %s its config.json describes:\n%s" % (
        folder, model, diff.describe("config.json", "the weights")))
  return state, missing_head


def import_folders(disc_dir, out_dir, gen_dir=None, overwrite=False, log=print):
  """Writes the TF checkpoint, hparams.json and vocab.txt; returns the hparams dict.

  Args:
    disc_dir: hub folder of the discriminator (or any ELECTRA model: its encoder).
    out_dir: the checkpoint directory (written under a temporary name, then renamed).
    gen_dir: hub folder of the generator, for a complete pretraining checkpoint.
    overwrite: replace a non-empty out_dir.
    log: progress lines.

  Raises:
    HFFormatError: a folder that is not ELECTRA, weights that do not match their config,
      or a generator that does not fit the discriminator.
  """
  disc_cfg = hf_format.read_config(disc_dir)
  disc_state, missing_head = _encoder_state(disc_dir, disc_cfg, "discriminator")
  if missing_head and gen_dir:
    raise hf_format.HFFormatError("%s has no discriminator head (%s): continued pretraining "
                                  "needs an ElectraForPreTraining folder" % (
                                      disc_dir, ", ".join(missing_head)))
  values, unmapped = checkpoint.hf_to_tf_state(disc_state, "discriminator")
  if unmapped:
    log("%s: not imported (no TF variable): %s" % (disc_dir, ", ".join(unmapped)))
  vocab_file = _vocab_file(disc_dir, disc_cfg)

  gen_cfg, untied = None, False
  if gen_dir:
    gen_cfg = hf_format.read_config(gen_dir)
    for key in _SHARED:
      if gen_cfg[key] != disc_cfg[key]:
        raise hf_format.HFFormatError("%s differs between %s (%s) and %s (%s)" % (
            key, gen_dir, gen_cfg[key], disc_dir, disc_cfg[key]))
    gen_state, missing = _encoder_state(gen_dir, gen_cfg, "generator")
    if missing:
      raise hf_format.HFFormatError("%s has no masked-LM head (%s): not an "
                                    "ElectraForMaskedLM folder" % (gen_dir, ", ".join(missing)))
    lm = gen_state.get("generator_lm_head.weight")
    emb = gen_state["electra.embeddings.word_embeddings.weight"]
    if lm is not None and not _same(lm, emb):
      raise hf_format.HFFormatError("%s: generator_lm_head.weight is not the word embedding "
                                    "table; ELECTRA's generator ties them" % gen_dir)
    shared = [n for n in gen_state if n.startswith("electra.embeddings.")]
    same = all(n in disc_state and _same(gen_state[n], disc_state[n]) for n in shared)
    if not same:
      # Different tables: the generator had its own (untied_generator_embeddings), which
      # this project builds with the generator's hidden size.
      if gen_cfg["embedding_size"] != gen_cfg["hidden_size"]:
        raise hf_format.HFFormatError(
            "the generator's embeddings differ from the discriminator's, so they were not "
            "shared; this project's untied generator embeddings have the generator's hidden "
            "size (%d), not %d" % (gen_cfg["hidden_size"], gen_cfg["embedding_size"]))
      untied = True
    elif gen_cfg["embedding_size"] != disc_cfg["embedding_size"]:
      raise hf_format.HFFormatError("embedding_size differs between %s and %s" % (
          gen_dir, disc_dir))
    gen_values, unmapped = checkpoint.hf_to_tf_state(gen_state, "generator",
                                                     untied_embeddings=untied)
    if unmapped:
      log("%s: not imported (no TF variable): %s" % (gen_dir, ", ".join(unmapped)))
    values.update({n: v for n, v in gen_values.items() if n not in values})
  hp = pretraining_hparams(disc_cfg, gen_cfg, untied)

  if gen_dir:
    # Fresh Adam slots (zeros, as a new run starts them) for every model variable, and
    # step 0: run_pretraining.py resumes from this as from its own step-0 checkpoint.
    for name, value in list(values.items()):
      values[name + "/adam_m"] = np.zeros_like(value)
      values[name + "/adam_v"] = np.zeros_like(value)
  # What run_finetuning needs to start from this import (add the task on the command line).
  finetuning = {k: hp[k] for k in _FINETUNING_SIZE_KEYS if k in hp}
  return _write(values, vocab_file, hp, out_dir, overwrite, log,
                ", with zero Adam slots" if gen_dir else "", finetuning=finetuning)


def _vocab_file(folder, cfg):
  """The folder's vocab.txt, checked against config.json's vocab_size."""
  vocab_file = os.path.join(folder, hf_format.VOCAB_FILE)
  if not os.path.isfile(vocab_file):
    raise hf_format.HFFormatError("%s: no vocab.txt" % folder)
  n_vocab = len(tokenization.load_vocab(vocab_file))
  if n_vocab != cfg["vocab_size"]:
    raise hf_format.HFFormatError("%s has %d tokens but config.json's vocab_size is %d" % (
        vocab_file, n_vocab, cfg["vocab_size"]))
  return vocab_file


def _write(values, vocab_file, hp, out_dir, overwrite, log, note="", finetuning=None):
  """The checkpoint (step 0), vocab.txt and hparams.json in out_dir, and with
  `finetuning` also finetuning_hparams.json (those keys, the vocab and init_checkpoint =
  out_dir); returns the hparams."""
  values = dict(values, global_step=np.int64(0))
  values = {n: np.asarray(v, np.int64 if n == "global_step" else np.float32)
            for n, v in values.items()}
  root = out_dir.rstrip("/") if gcs.is_gs(out_dir) else os.path.abspath(out_dir)
  # On gs:// the `checkpoint` state file goes up last: TensorFlow finds the checkpoint
  # only once its data and index are there.
  with hf_format.staged_output(out_dir, overwrite=overwrite, last=("checkpoint",)) as tmp:
    checkpoint.write_checkpoint(values, os.path.join(tmp, CHECKPOINT_NAME))
    shutil.copyfile(vocab_file, os.path.join(tmp, hf_format.VOCAB_FILE))
    hp_out = dict(hp, vocab_file=root + "/" + hf_format.VOCAB_FILE)
    files = {HPARAMS_FILE: hp_out}
    if finetuning is not None:
      files[FINETUNING_HPARAMS_FILE] = dict(finetuning, vocab_file=hp_out["vocab_file"],
                                            init_checkpoint=root)
    for name, content in files.items():
      with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
        json.dump(content, f, indent=2, sort_keys=True)
        f.write("\n")
  n_params = sum(v.size for n, v in values.items() if not checkpoint.is_optimizer_slot(n))
  log("wrote %s (%d variables, %.1fM parameters%s) and %s" % (
      root + "/" + CHECKPOINT_NAME, len(values), n_params / 1e6, note,
      root + "/" + HPARAMS_FILE))
  return hp_out


# --- finetuned models -----------------------------------------------------------------------

# The finetuning hparams that describe the encoder (the rest are the task's defaults).
_FINETUNING_SIZE_KEYS = ("model_size", "embedding_size", "vocab_size",
                         "model_hparam_overrides", "do_lower_case", "max_seq_length")


def label_order(cfg, spec, folder, log=print):
  """For each of the task's labels, the row of the folder's head that scores it.

  config.json's id2label names are matched to the task's labels (finetune/tasks.py) by
  name, in any order; names of the generic form LABEL_<i> (no names given) are taken to
  be in the task's order, with a log line saying so. Regression and span heads: None.

  Raises:
    HFFormatError: another number of labels, or names that are not the task's.
  """
  if spec.kind == tasks_lib.SPAN:
    return None
  id2label = cfg.get("id2label") or {}
  names = [str(id2label.get(str(i), id2label.get(i, ""))) for i in range(len(id2label))]
  if spec.kind == tasks_lib.REGRESSION:
    if len(names) != 1:
      raise hf_format.HFFormatError("%s: %s is a regression task (one output) but the head "
                                    "has %d" % (folder, spec.name, len(names)))
    return None
  want = list(spec.labels)
  if len(names) != len(want):
    raise hf_format.HFFormatError("%s: the head has %d labels (%s), %s has %d (%s)" % (
        folder, len(names), ", ".join(names), spec.name, len(want), ", ".join(want)))
  if sorted(names) == sorted(want):
    order = [names.index(label) for label in want]
    if order != list(range(len(want))):
      log("%s: head rows reordered by label name to %s's order" % (folder, spec.name))
    return order
  if names == ["LABEL_%d" % i for i in range(len(names))]:
    log("%s: config.json names no labels (LABEL_0 ...); rows taken in %s's order: %s" % (
        folder, spec.name, ", ".join(want)))
    return list(range(len(want)))
  raise hf_format.HFFormatError(
      "%s: id2label names %s are not %s's labels %s; rename them in config.json" % (
          folder, ", ".join(names), spec.name, ", ".join(want)))


def import_finetuned(folder, task_name, out_dir, overwrite=False, log=print):
  """A finetuned hub folder (ElectraForSequenceClassification / ...ForTokenClassification
  / ...ForQuestionAnswering) -> a finetuning checkpoint: the encoder under `electra/`, the
  head under `task_specific/<task>/` as run_finetuning's "hf" head names it, rows in the
  task's label order. hparams.json holds the run_finetuning hparams that evaluate it.

  Raises:
    HFFormatError: not the head class of the task's kind, weights that do not match
      config.json, labels that are not the task's.
    ConfigError: an unknown task.
  """
  spec = tasks_lib.get_task(task_name)
  model = tasks_lib.HF_MODEL_KIND[spec.kind]
  cfg = hf_format.read_config(folder)
  arch = (cfg.get("architectures") or [None])[0]
  if arch != hf_format.ARCHITECTURES[model]:
    raise hf_format.HFFormatError("%s holds %s; %s (a %s task) needs %s" % (
        folder, arch or "no architectures entry", task_name, spec.kind,
        hf_format.ARCHITECTURES[model]))
  state, missing_head = _encoder_state(folder, cfg, model)
  if missing_head:
    raise hf_format.HFFormatError("%s has no finetuned head (%s)" % (
        folder, ", ".join(missing_head)))
  order = label_order(cfg, spec, folder, log)
  if order is not None:  # the output layer's rows (not classifier.dense's)
    out_layer = "classifier.out_proj" if model == "sequence_classification" else "classifier"
    for leaf in ("weight", "bias"):
      state[out_layer + "." + leaf] = state[out_layer + "." + leaf][order]
  values, unmapped = checkpoint.hf_head_model_to_tf_state(state, model, task_name)
  if unmapped:
    log("%s: not imported (no TF variable): %s" % (folder, ", ".join(unmapped)))
  vocab_file = _vocab_file(folder, cfg)
  sizes = pretraining_hparams(cfg)
  hp = {k: sizes[k] for k in _FINETUNING_SIZE_KEYS if k in sizes}
  # Evaluate, not train: the dev split of tasks without one is a slice of train.
  hp.update(task_names=[task_name], classifier_head="hf", do_train=False, do_eval=False,
            do_test=True)
  return _write(values, vocab_file, hp, out_dir, overwrite, log)


def _same(a, b):
  return a.shape == b.shape and bool((a == b).all())


def main(argv=None):
  args = build_parser().parse_args(argv)
  if bool(args.finetuned) != bool(args.task):
    raise errors.UserError("--finetuned and --task go together")
  if args.finetuned and args.generator:
    raise errors.UserError("--generator goes with --discriminator, not --finetuned")
  fileio.check_output_apart(args.output_dir, {
      "--discriminator": args.discriminator, "--generator": args.generator,
      "--finetuned": args.finetuned})
  with contextlib.ExitStack() as stack:
    if args.finetuned:
      import_finetuned(_local(stack, args.finetuned), args.task, args.output_dir,
                       overwrite=args.overwrite)
      return 0
    disc, gen = (_local(stack, d) for d in (args.discriminator, args.generator))
    import_folders(disc, args.output_dir, gen_dir=gen, overwrite=args.overwrite)
  return 0


def _local(stack, folder):
  """A local copy of a gs:// hub folder (removed at exit), or the folder itself."""
  if not folder or not gcs.is_gs(folder):
    return folder
  tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix=".hub-"))
  gcs.copy(folder.rstrip("/"), tmp, recursive=True)
  return tmp


if __name__ == "__main__":
  tf_logging.quiet(verbose="--verbose" in sys.argv[1:])  # before TensorFlow loads
  sys.exit(errors.run_main(main))
