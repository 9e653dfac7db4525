"""The export and import rules: TF checkpoint <-> Hugging Face hub folders.

Export (export_hf.py): a pretraining checkpoint becomes ElectraForPreTraining +
ElectraForMaskedLM folders, a finetuned one its head's class. Import (import_hf.py): hub
folders become a TF checkpoint with the original names, hparams.json and, for a
pretraining import, finetuning_hparams.json; a finetuned folder becomes a run_finetuning
trial of the "hf" head.

The caller gives what this package may not import: the PretrainingConfig (export: the
config the checkpoint was trained with; import: `build_config`, which builds and checks
one from hparams) and, for finetuned models, the task's labels (finetune/tasks.py).
"""
import json
import os
import shutil
from typing import Callable, Dict, List, Mapping, NamedTuple, Optional, Sequence

import numpy as np

from model import checkpoint
from model import tokenization
from model.hf import HFFormatError
from model.hf import files
from model.hf import names
from util import errors
from util import gcs

# The hparams that describe the encoder, with one meaning in pretraining and finetuning
# configs (both derive the sizes with model/sizes.py): what export reads of a finetuning
# run's hparams, and what import writes for run_finetuning. do_lower_case and
# max_seq_length are not sizes but belong to the encoder (its vocab, its positions).
SIZE_KEYS = ("model_size", "embedding_size", "vocab_size", "model_hparam_overrides", "debug",
             "do_lower_case", "max_seq_length")
CHECKPOINT_NAME = "model.ckpt-0"
HPARAMS_FILE = "hparams.json"
FINETUNING_HPARAMS_FILE = "finetuning_hparams.json"
# config.json fields carried into model_hparam_overrides as they are.
_OVERRIDES = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
              "hidden_act", "hidden_dropout_prob", "attention_probs_dropout_prob",
              "max_position_embeddings", "type_vocab_size", "initializer_range")
# Must agree between the two folders: the generator shares the discriminator's embeddings.
_SHARED = ("vocab_size", "max_position_embeddings", "type_vocab_size")


# ---------------------------------------------------------------- export


def export_hparams(hparams: dict, ckpt: str, finetuned: bool,
                   preset: Optional[str] = None) -> dict:
  """The hparams to build the checkpoint's PretrainingConfig from (its paths unused).

  Args:
    hparams: the --hparams given (pretraining hparams, or a finetuning run's).
    ckpt: the checkpoint (dir or prefix).
    finetuned: a finetuned checkpoint: only SIZE_KEYS are read, and max_seq_length is one
      that fits the position table (unused, but a PretrainingConfig checks it).
    preset: the --preset, if any.

  Returns:
    A new dict; vocab_size, when neither it nor a preset is given, is the checkpoint's
    (pretraining and finetuning configs default differently; the vocab file is checked
    against it all the same).

  Raises:
    CheckpointError: no such checkpoint.
  """
  hparams = dict(hparams)
  if finetuned:
    hparams = {k: v for k, v in hparams.items() if k in SIZE_KEYS}
    overrides = hparams.get("model_hparam_overrides")
    positions = overrides.get("max_position_embeddings", 512) \
        if isinstance(overrides, dict) else 512
    hparams["max_seq_length"] = min(128, positions)
  if "vocab_size" not in hparams and not (preset or hparams.get("preset")):
    shapes = checkpoint.checkpoint_variables(ckpt)
    if checkpoint.WORD_EMBEDDINGS in shapes:
      hparams["vocab_size"] = shapes[checkpoint.WORD_EMBEDDINGS][0]
  return hparams


def model_hparams(config, model: str):
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
    raise HFFormatError(
        "the hparams have no generator network (electra_objective false or "
        "uniform_generator true); export with --which discriminator")
  if not config.untied_generator:
    raise HFFormatError(
        "untied_generator false: the generator shares the discriminator's encoder, which "
        "ElectraForMaskedLM cannot share; export with --which discriminator")
  gen = config.generator_hparams()
  return gen, (gen["hidden_size"] if config.untied_generator_embeddings
               else config.embedding_dim())


def _card_details(config, values, ckpt, data_description, finetuned):
  """The model card's "Training" lines."""
  step = values.get("global_step")
  steps = str(int(step)) if step is not None else "unknown"
  if finetuned:
    return {"checkpoint": f"`{ckpt}`", "finetuning steps": steps}
  return {
      "checkpoint": f"`{ckpt}`",
      "training steps": f"{steps} of {config.num_train_steps}",
      "batch size / sequence length": f"{config.train_batch_size} / {config.max_seq_length}",
      "learning rate": str(config.learning_rate),
      "preset": config.preset or "none",
      "data": data_description or f"`{config.pretrain_tfrecords}`",
  }


def head_state(values: Dict[str, np.ndarray], kind: str, task: Optional[str]):
  """{HF name: array} of a finetuned model, after checking the head maps one-to-one.

  Args:
    values: {TF name: array} of the checkpoint.
    kind: one of names.HEAD_MODELS.
    task: the <task> of task_specific/<task>/, or None for the only one.

  Returns:
    ({HF name: array}, the task name).

  Raises:
    HFFormatError: no task, several tasks and no --task-name, or a head that does not map
      (the original ELECTRA classifier, KorQuAD's joint_prediction).
  """
  tasks = names.task_names(values)
  if not tasks:
    raise HFFormatError("the checkpoint has no task_specific/<task>/ variables; "
                        "it is not a finetuned model (drop --task-kind)")
  if task is None:
    if len(tasks) > 1:
      raise HFFormatError(f"the checkpoint holds several tasks ({', '.join(tasks)}); "
                          "choose one with --task-name")
    task = tasks[0]
  elif task not in tasks:
    raise HFFormatError(f"no task {task!r} in the checkpoint (it has: {', '.join(tasks)})")
  scope = f"{names.TASK_SCOPE}/{task}/"
  head = sorted(n for n in values if n.startswith(scope) and not checkpoint.is_optimizer_slot(n))
  unmapped = [n for n in head if names.tf_to_hf_name(n, kind, task) is None]
  if unmapped:
    raise HFFormatError(f"task {task!r}: variable(s) {', '.join(unmapped)} have no "
                        f"{names.KINDS[kind].architecture} equivalent: "
                        f"{names.KINDS[kind].mapped_head}")
  return names.tf_to_hf_state(values, kind, task), task


def export(ckpt: str, config, vocab_file: str, out_dir: str,
           which: Sequence[str] = names.PRETRAINING_MODELS, task_kind: Optional[str] = None,
           task_name: Optional[str] = None, labels: Optional[Sequence[str]] = None,
           task_labels: Optional[Mapping[str, Sequence[str]]] = None,
           problem_type: Optional[str] = None, data_description: Optional[str] = None,
           overwrite: bool = False, log: Callable[[str], None] = print) -> Dict[str, str]:
  """Exports a checkpoint as hub folders.

  Args:
    ckpt: model directory or checkpoint prefix.
    config: the PretrainingConfig it was trained with.
    vocab_file: its vocab.
    out_dir: the output folder (pretraining: one subfolder per model in `which`;
      finetuned: the folder itself); local or gs://.
    which: pretraining models to export.
    task_kind: one of names.HEAD_MODELS for a finetuned checkpoint.
    task_name, labels, problem_type: the finetuned head's task, label names, problem type.
    task_labels: {task: label names} of known tasks (finetune/tasks.py): a head on one of
      them gets its names when `labels` is None and the head's width fits.
    data_description: the model card's data line.
    overwrite: replace a non-empty out_dir.
    log: progress lines.

  Returns:
    {model kind: folder written}.

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
    layer = names.KINDS[task_kind].label_layer
    num_labels = None
    if layer and f"{layer}.weight" in state:
      num_labels = state[f"{layer}.weight"].shape[0]
    if task_kind != "question_answering" and num_labels is None:
      raise HFFormatError(f"task {task!r} has no {task_kind} head variables")
    known = list((task_labels or {}).get(task, ()))
    if labels is None and known and len(known) == num_labels:
      labels = known  # one of the project's tasks: its names, in the head's order
    details["finetuned task"] = f"`{task}` ({task_kind})"
    cfg = files.electra_config(hp, emb, task_kind, pad_id, num_labels=num_labels,
                               labels=labels, problem_type=problem_type)
    jobs.append((task_kind, "", state, cfg))
  else:
    for kind in which:
      if kind not in names.PRETRAINING_MODELS:
        raise HFFormatError(f"--which: unknown model {kind!r} (use "
                            f"{', '.join(names.PRETRAINING_MODELS)})")
      hp, emb = model_hparams(config, kind)
      state = names.tf_to_hf_state(values, kind)
      cfg = files.electra_config(hp, emb, kind, pad_id)
      jobs.append((kind, kind, state, cfg))
  written = {}
  remote = gcs.is_gs(out_dir)
  root = out_dir.rstrip("/") if remote else os.path.abspath(out_dir)
  # A gs:// folder gets each model's config.json last: a reader finds it complete.
  last = [f"{sub}/{files.CONFIG_FILE}" if sub else files.CONFIG_FILE for _, sub, _, _ in jobs]
  with files.staged_output(out_dir, overwrite=overwrite, last=last) as tmp:
    for kind, sub, state, cfg in jobs:
      folder = os.path.join(tmp, sub) if sub else tmp
      os.makedirs(folder, exist_ok=True)
      try:
        files.write_model_folder(folder, state, cfg, kind, vocab_file, details)
      except HFFormatError as e:
        raise HFFormatError(f"{prefix} ({kind}): {e}") from e
      written[kind] = f"{root}/{sub}" if sub else root
  for kind, folder in written.items():
    log(f"{kind}: {folder} ({names.KINDS[kind].architecture})")
  return written


def usage_lines(written: Mapping[str, str]) -> List[str]:
  """The Python lines that load each exported folder with transformers.

  Args:
    written: export()'s {model kind: folder}.

  Returns:
    list of str.
  """
  classes = sorted({names.KINDS[k].architecture for k in written})
  lines = ["from transformers import AutoTokenizer, " + ", ".join(classes)]
  for kind, folder in written.items():
    lines.append(f"{kind} = {names.KINDS[kind].architecture}.from_pretrained({folder!r})")
  lines.append(f"tokenizer = AutoTokenizer.from_pretrained({next(iter(written.values()))!r})")
  return lines


# ---------------------------------------------------------------- import


class FinetunedTask(NamedTuple):
  """What a finetuned import needs of its task (finetune/tasks.TaskSpec gives it)."""
  name: str
  kind: str                # the task's kind ("classification", "span", ...), for messages
  model: str               # its head's model kind, one of names.HEAD_MODELS
  labels: Sequence[str]    # label names in the task's order; () for regression and span


def pretraining_hparams(disc_cfg: dict, build_config: Callable[[dict], object],
                        gen_cfg: Optional[dict] = None,
                        untied_embeddings: bool = False, do_lower_case: bool = False) -> dict:
  """The PretrainingConfig hparams (dict) of an imported model, checked by building it.

  Args:
    disc_cfg: the discriminator's config.json fields.
    build_config: builds the PretrainingConfig of hparams (raises ConfigError).
    gen_cfg: the generator's, or None (discriminator only).
    untied_embeddings: the generator has its own embedding table.
    do_lower_case: the folder's tokenizer lower-cases (files.read_lower_case).

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
      "do_lower_case": do_lower_case,
      "model_hparam_overrides": {k: disc_cfg[k] for k in _OVERRIDES if k in disc_cfg},
  }
  if disc_cfg["max_position_embeddings"] < 128:  # the default max_seq_length would not fit
    hp["max_seq_length"] = disc_cfg["max_position_embeddings"]
  if gen_cfg is not None:
    hp["generator_hidden_size"] = gen_cfg["hidden_size"] / disc_cfg["hidden_size"]
    hp["generator_layers"] = gen_cfg["num_hidden_layers"] / disc_cfg["num_hidden_layers"]
    hp["untied_generator_embeddings"] = untied_embeddings
  try:
    config = build_config(hp)
  except errors.ConfigError as e:
    raise HFFormatError(f"the imported model's sizes are not a valid pretraining config: "
                        f"{e}") from e
  if gen_cfg is not None:
    built = config.generator_hparams()
    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size"):
      if built[key] != gen_cfg[key]:
        raise HFFormatError(
            f"generator {key} is {gen_cfg[key]} but this project's generator would have "
            f"{built[key]} (it derives heads = hidden // 64 and intermediate = 4 x hidden "
            "from the discriminator); import the discriminator alone")
  return hp


def _encoder_state(folder, cfg, model):
  """A folder's {HF name: array}, every encoder parameter checked against config.json;
  also returns the head parameters that are absent (an ElectraModel has none)."""
  state = files.read_weights(folder)
  expected = names.expected_shapes(cfg, model)
  head = [n for n in expected if not n.startswith("electra.")]
  have = {n: tuple(a.shape) for n, a in state.items() if n in expected}
  missing_head = [n for n in head if n not in state]
  diff = checkpoint.compare_variables({n: s for n, s in expected.items() if n not in head
                                       or n in state}, have)
  if not diff.ok:
    raise HFFormatError(f"{folder} does not hold the {model} its config.json describes:\n"
                        f"{diff.describe('config.json', 'the weights')}")
  return state, missing_head


def _log_unmapped(log, folder, unmapped):
  if unmapped:
    log(f"{folder}: not imported (no TF variable): {', '.join(unmapped)}")


def import_folders(disc_dir: str, out_dir: str, build_config: Callable[[dict], object],
                   gen_dir: Optional[str] = None, overwrite: bool = False,
                   log: Callable[[str], None] = print) -> dict:
  """Writes the TF checkpoint, hparams.json, finetuning_hparams.json and vocab.txt.

  Args:
    disc_dir: hub folder of the discriminator (or any ELECTRA model: its encoder); local
      or gs://.
    out_dir: the checkpoint directory (written under a temporary name, then renamed).
    build_config: builds the PretrainingConfig of hparams (raises ConfigError).
    gen_dir: hub folder of the generator, for a complete pretraining checkpoint.
    overwrite: replace a non-empty out_dir.
    log: progress lines.

  Returns:
    The hparams written to hparams.json.

  Raises:
    HFFormatError: a folder that is not ELECTRA, weights that do not match their config,
      or a generator that does not fit the discriminator.
  """
  with files.local_folder(disc_dir) as disc_dir, files.local_folder(gen_dir) as gen_dir:
    values, vocab_file, hp = _read_pretraining(disc_dir, gen_dir, build_config, log)
    if gen_dir:
      # Fresh Adam slots (zeros, as a new run starts them) for every model variable, and
      # step 0: run_pretraining.py resumes from this as from its own step-0 checkpoint.
      for name, value in list(values.items()):
        values[name + checkpoint.ADAM_M] = np.zeros_like(value)
        values[name + checkpoint.ADAM_V] = np.zeros_like(value)
    # What run_finetuning needs to start from this import (add the task on the command line).
    finetuning = {k: hp[k] for k in SIZE_KEYS if k in hp}
    return _write(values, vocab_file, hp, out_dir, overwrite, log,
                  ", with zero Adam slots" if gen_dir else "", finetuning=finetuning)


def _read_pretraining(disc_dir, gen_dir, build_config, log):
  """({TF name: array}, vocab file, pretraining hparams) of local hub folders."""
  disc_cfg = files.read_config(disc_dir)
  disc_state, missing_head = _encoder_state(disc_dir, disc_cfg, "discriminator")
  if missing_head and gen_dir:
    raise HFFormatError(f"{disc_dir} has no discriminator head ({', '.join(missing_head)}): "
                        "continued pretraining needs an ElectraForPreTraining folder")
  values, unmapped = names.hf_to_tf_state(disc_state, "discriminator")
  _log_unmapped(log, disc_dir, unmapped)
  vocab_file = _vocab_file(disc_dir, disc_cfg)
  lower = _lower_case(disc_dir, log)
  if not gen_dir:
    return values, vocab_file, pretraining_hparams(disc_cfg, build_config,
                                                   do_lower_case=lower)

  gen_cfg = files.read_config(gen_dir)
  for key in _SHARED:
    if gen_cfg[key] != disc_cfg[key]:
      raise HFFormatError(f"{key} differs between {gen_dir} ({gen_cfg[key]}) and "
                          f"{disc_dir} ({disc_cfg[key]})")
  gen_state, missing = _encoder_state(gen_dir, gen_cfg, "generator")
  if missing:
    raise HFFormatError(f"{gen_dir} has no masked-LM head ({', '.join(missing)}): not an "
                        "ElectraForMaskedLM folder")
  lm = gen_state.get("generator_lm_head.weight")
  emb = gen_state["electra.embeddings.word_embeddings.weight"]
  if lm is not None and not _same(lm, emb):
    raise HFFormatError(f"{gen_dir}: generator_lm_head.weight is not the word embedding "
                        "table; ELECTRA's generator ties them")
  shared = [n for n in gen_state if n.startswith("electra.embeddings.")]
  untied = not all(n in disc_state and _same(gen_state[n], disc_state[n]) for n in shared)
  if untied:
    # Different tables: the generator had its own (untied_generator_embeddings), which
    # this project builds with the generator's hidden size.
    if gen_cfg["embedding_size"] != gen_cfg["hidden_size"]:
      raise HFFormatError(
          "the generator's embeddings differ from the discriminator's, so they were not "
          "shared; this project's untied generator embeddings have the generator's hidden "
          f"size ({gen_cfg['hidden_size']}), not {gen_cfg['embedding_size']}")
  elif gen_cfg["embedding_size"] != disc_cfg["embedding_size"]:
    raise HFFormatError(f"embedding_size differs between {gen_dir} and {disc_dir}")
  gen_values, unmapped = names.hf_to_tf_state(gen_state, "generator", untied_embeddings=untied)
  _log_unmapped(log, gen_dir, unmapped)
  values.update({n: v for n, v in gen_values.items() if n not in values})
  return values, vocab_file, pretraining_hparams(disc_cfg, build_config, gen_cfg, untied,
                                                 do_lower_case=lower)


def _lower_case(folder, log):
  """The folder's do_lower_case (tokenizer_config.json), its note logged."""
  lower, note = files.read_lower_case(folder)
  if note:
    log(note)
  return lower


def _vocab_file(folder, cfg):
  """The folder's vocab.txt, checked against config.json's vocab_size."""
  vocab_file = os.path.join(folder, files.VOCAB_FILE)
  if not os.path.isfile(vocab_file):
    raise HFFormatError(f"{folder}: no vocab.txt")
  n_vocab = len(tokenization.load_vocab(vocab_file))
  if n_vocab != cfg["vocab_size"]:
    raise HFFormatError(f"{vocab_file} has {n_vocab} tokens but config.json's vocab_size is "
                        f"{cfg['vocab_size']}")
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
  with files.staged_output(out_dir, overwrite=overwrite, last=("checkpoint",)) as tmp:
    checkpoint.write_checkpoint(values, os.path.join(tmp, CHECKPOINT_NAME))
    shutil.copyfile(vocab_file, os.path.join(tmp, files.VOCAB_FILE))
    hp_out = dict(hp, vocab_file=f"{root}/{files.VOCAB_FILE}")
    out = {HPARAMS_FILE: hp_out}
    if finetuning is not None:
      out[FINETUNING_HPARAMS_FILE] = dict(finetuning, vocab_file=hp_out["vocab_file"],
                                          init_checkpoint=root)
    for name, content in out.items():
      with open(os.path.join(tmp, name), "w", encoding="utf-8") as f:
        json.dump(content, f, indent=2, sort_keys=True)
        f.write("\n")
  n_params = sum(v.size for n, v in values.items() if not checkpoint.is_optimizer_slot(n))
  log(f"wrote {root}/{CHECKPOINT_NAME} ({len(values)} variables, {n_params / 1e6:.1f}M "
      f"parameters{note}) and {root}/{HPARAMS_FILE}")
  return hp_out


def label_order(cfg: dict, task: FinetunedTask, folder: str,
                log: Callable[[str], None] = print) -> Optional[List[int]]:
  """For each of the task's labels, the row of the folder's head that scores it.

  config.json's id2label names are matched to the task's labels by name, in any order;
  names of the generic form LABEL_<i> (no names given) are taken to be in the task's
  order, with a log line saying so.

  Args:
    cfg: the folder's config.json fields.
    task: the task it was finetuned on.
    folder: the folder, for messages.
    log: progress lines.

  Returns:
    Row indices in the task's label order; None for regression and span heads.

  Raises:
    HFFormatError: another number of labels, or names that are not the task's.
  """
  if task.model == "question_answering":
    return None
  id2label = cfg.get("id2label") or {}
  got = [str(id2label.get(str(i), id2label.get(i, ""))) for i in range(len(id2label))]
  want = list(task.labels)
  if not want:  # regression: one output
    if len(got) != 1:
      raise HFFormatError(f"{folder}: {task.name} is a regression task (one output) but the "
                          f"head has {len(got)}")
    return None
  if len(got) != len(want):
    raise HFFormatError(f"{folder}: the head has {len(got)} labels ({', '.join(got)}), "
                        f"{task.name} has {len(want)} ({', '.join(want)})")
  if sorted(got) == sorted(want):
    order = [got.index(label) for label in want]
    if order != list(range(len(want))):
      log(f"{folder}: head rows reordered by label name to {task.name}'s order")
    return order
  if got == [f"LABEL_{i}" for i in range(len(got))]:
    log(f"{folder}: config.json names no labels (LABEL_0 ...); rows taken in {task.name}'s "
        f"order: {', '.join(want)}")
    return list(range(len(want)))
  raise HFFormatError(f"{folder}: id2label names {', '.join(got)} are not {task.name}'s "
                      f"labels {', '.join(want)}; rename them in config.json")


def import_finetuned(folder: str, task: FinetunedTask, out_dir: str,
                     build_config: Callable[[dict], object], overwrite: bool = False,
                     log: Callable[[str], None] = print) -> dict:
  """A finetuned hub folder -> a run_finetuning trial checkpoint of the "hf" head.

  ElectraForSequenceClassification / ...ForTokenClassification / ...ForQuestionAnswering
  become the encoder under `electra/` and the head under `task_specific/<task>/` as
  run_finetuning's "hf" head names it, rows in the task's label order.

  Args:
    folder: the hub folder (local or gs://).
    task: the task it was finetuned on.
    out_dir: the trial directory to write.
    build_config: builds the PretrainingConfig of hparams (raises ConfigError): checks
      the sizes.
    overwrite: replace a non-empty out_dir.
    log: progress lines.

  Returns:
    The run_finetuning hparams written to hparams.json (evaluation only).

  Raises:
    HFFormatError: not the head class of the task's kind, weights that do not match
      config.json, labels that are not the task's.
  """
  with files.local_folder(folder) as local:
    cfg = files.read_config(local)
    arch = (cfg.get("architectures") or [None])[0]
    want = names.KINDS[task.model].architecture
    if arch != want:
      raise HFFormatError(f"{local} holds {arch or 'no architectures entry'}; {task.name} "
                          f"(a {task.kind} task) needs {want}")
    state, missing_head = _encoder_state(local, cfg, task.model)
    if missing_head:
      raise HFFormatError(f"{local} has no finetuned head ({', '.join(missing_head)})")
    order = label_order(cfg, task, local, log)
    if order is not None:  # the output layer's rows (not classifier.dense's)
      for leaf in ("weight", "bias"):
        name = f"{names.KINDS[task.model].label_layer}.{leaf}"
        state[name] = state[name][order]
    values, unmapped = names.hf_head_model_to_tf_state(state, task.model, task.name)
    _log_unmapped(log, local, unmapped)
    vocab_file = _vocab_file(local, cfg)
    sizes = pretraining_hparams(cfg, build_config, do_lower_case=_lower_case(local, log))
    hp = {k: sizes[k] for k in SIZE_KEYS if k in sizes}
    # Evaluate, not train: the dev split of tasks without one is a slice of train.
    hp.update(task_names=[task.name], classifier_head="hf", do_train=False, do_eval=False,
              do_test=True)
    return _write(values, vocab_file, hp, out_dir, overwrite, log)


def _same(a, b):
  return a.shape == b.shape and bool((a == b).all())
