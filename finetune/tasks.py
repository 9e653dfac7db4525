"""The finetuning task registry: each Korean benchmark's kind, labels, files, metric,
KoELECTRA's published numbers and KoELECTRA's per-task training defaults.

Everything about a task that is data (not code) lives here, once. Readers, features,
scorers and the runner look a task up with `get_task(name)`.

File names: KoELECTRA's names first, then plain `{train,dev,test}.<ext>`; the first
file that exists wins (docs/finetuning.md). A user's own task ("custom_tasks" in the
hparams) is a TaskSpec too, built by `custom_task` from its hparams entry: its files are
the paths given, read by name of column (CSV / TSV / JSONL) or as CoNLL (tagging) by
finetune/table_readers.py; its labels are the ones given, else those of the training file
in first-seen order, saved beside the model (`TASK_FILE`) so that prediction and export use
the same ids. Tasks without a dev file (NSMC, Hate Speech, Naver NER, KorQuAD, and a
custom task without dev_file) train on the whole training file; a fixed-seed slice of it
becomes dev only when the hparam `dev_slice_fraction` asks for one (finetune/readers.py).
"""
import dataclasses
import json
import os
from typing import Dict, Mapping, Optional, Tuple

from util import errors
from util import fileio
from util import hparams

CLASSIFICATION, REGRESSION, TAGGING, SPAN = "classification", "regression", "tagging", "span"
SPLITS = ("train", "dev", "test")

# Naver NER 2018: O and 14 entity types with -B / -I suffixes, in KoELECTRA's order.
NER_TYPES = ("PER", "FLD", "AFW", "ORG", "LOC", "CVL", "DAT", "TIM", "NUM", "EVT", "ANM",
             "PLT", "MAT", "TRM")
NER_LABELS = ("O",) + tuple(f"{t}-{s}" for t in NER_TYPES for s in ("B", "I"))


@dataclasses.dataclass(frozen=True)
class KoelectraDefaults:
  """KoELECTRA's published finetuning config for one task (base-v3 / small-v3).

  Shared by every task (the lead's `koelectra` preset sets these globally): weight
  decay 0, no warm-up, Adam epsilon 1e-8, gradient clip 1.0, no layer-wise decay,
  seed 42.
  """
  num_train_epochs: int
  train_batch_size_base: int
  train_batch_size_small: int
  learning_rate: float
  max_seq_length: int


@dataclasses.dataclass(frozen=True)
class Columns:
  """Where a custom task's data sits in its files (hparams "custom_tasks").

  Attributes:
    text_a: the text column (CSV / TSV header name or JSONL key).
    text_b: the second text of a pair task, or None.
    label: the label (or score) column; a test file without it is a prediction job.
  """
  text_a: str = "text"
  text_b: Optional[str] = None
  label: str = "label"


@dataclasses.dataclass(frozen=True)
class TaskSpec:
  """One finetuning task.

  Attributes:
    name: the task name used on the command line and in file names.
    kind: CLASSIFICATION, REGRESSION, TAGGING or SPAN.
    labels: label strings in a fixed order (the label id is the index); () for
      regression and span tasks.
    files: split -> candidate file names in DIR/finetuning_data/<name>/, first existing
      wins.
    dev_slice: the task's distribution has no dev file: when none of the dev names
      exists and a dev fraction is asked for, `dev` is a fixed-seed slice of train,
      and `train` then excludes it.
    extra_train_files: optional training files added only when asked for
      (KorNLI's SNLI translation).
    metric: the headline metric's key in the scorer's metrics dict.
    published: KoELECTRA's numbers, {"base-v3": {metric: value}, "small-v3": {...}}.
    koelectra: KoELECTRA's per-task training defaults.
    has_header: the first line of each file is a header (skipped).
    columns: a custom task's columns (None for the built-in tasks, read by position);
      its `files` are then the user's paths, one per split.
    score_range: (low, high) a regression score must lie in (the task's definition); a
      row outside it is an error naming file:line.
  """
  name: str
  kind: str
  labels: Tuple[str, ...]
  files: Dict[str, Tuple[str, ...]]
  metric: str
  published: Dict[str, Dict[str, float]]
  koelectra: KoelectraDefaults
  dev_slice: bool = False
  extra_train_files: Tuple[str, ...] = ()
  has_header: bool = True
  columns: Optional[Columns] = None
  score_range: Optional[Tuple[float, float]] = None

  @property
  def num_labels(self) -> int:
    """Output units of the head: the label count, 1 for regression, 0 for spans."""
    if self.kind == REGRESSION:
      return 1
    return len(self.labels)

  def label_id(self, label: str) -> Optional[int]:
    """The index of `label` in `labels`, or None when it is not a label of this task."""
    try:
      return self.labels.index(label)
    except ValueError:
      return None


def _plain(ext, train, dev, test):
  """Split -> names: KoELECTRA's names first, then plain train/dev/test.<ext>."""
  return {split: tuple(n for n in (name, f"{split}.{ext}") if n)
          for split, name in (("train", train), ("dev", dev), ("test", test))}


def _pub(base, small, metric):
  return {"base-v3": {metric: base}, "small-v3": {metric: small}}


TASKS: Dict[str, TaskSpec] = {t.name: t for t in (
    TaskSpec(
        name="nsmc", kind=CLASSIFICATION, labels=("0", "1"),
        # NSMC has no dev file: `dev` is a slice of ratings_train.txt when asked for.
        files=_plain("tsv", "ratings_train.txt", None, "ratings_test.txt"), dev_slice=True,
        metric="accuracy", published=_pub(90.63, 89.36, "accuracy"),
        koelectra=KoelectraDefaults(10, 32, 32, 5e-5, 128)),
    TaskSpec(
        name="paws", kind=CLASSIFICATION, labels=("0", "1"),
        files=_plain("tsv", "translated_train.tsv", "dev_2k.tsv", "test_2k.tsv"),
        metric="accuracy", published=_pub(84.45, 77.45, "accuracy"),
        koelectra=KoelectraDefaults(15, 32, 64, 3e-5, 128)),
    TaskSpec(
        name="kornli", kind=CLASSIFICATION,
        labels=("contradiction", "entailment", "neutral"),
        files=_plain("tsv", "multinli.train.ko.tsv", "xnli.dev.ko.tsv", "xnli.test.ko.tsv"),
        extra_train_files=("snli_1.0_train.ko.tsv",),
        metric="accuracy", published=_pub(82.24, 78.60, "accuracy"),
        koelectra=KoelectraDefaults(15, 64, 128, 5e-5, 128)),
    TaskSpec(
        name="korsts", kind=REGRESSION, labels=(),
        files=_plain("tsv", "sts-train.tsv", "sts-dev.tsv", "sts-test.tsv"),
        metric="spearman", published=_pub(85.53, 80.79, "spearman"),
        koelectra=KoelectraDefaults(10, 32, 32, 5e-5, 128),
        score_range=(0.0, 5.0)),  # STS-B's similarity scale
    TaskSpec(
        name="question-pair", kind=CLASSIFICATION, labels=("0", "1"),
        files=_plain("tsv", None, None, None),
        metric="accuracy", published=_pub(95.25, 94.85, "accuracy"),
        koelectra=KoelectraDefaults(10, 32, 32, 5e-5, 128)),
    TaskSpec(
        # KoELECTRA's val.tsv is this task's test split; dev a slice of train if asked.
        name="hate-speech", kind=CLASSIFICATION, labels=("none", "offensive", "hate"),
        files=_plain("tsv", None, None, "val.tsv"), dev_slice=True,
        metric="macro_f1", published=_pub(67.61, 63.07, "macro_f1"),
        koelectra=KoelectraDefaults(10, 32, 32, 5e-5, 128)),
    TaskSpec(
        name="naver-ner", kind=TAGGING, labels=NER_LABELS,
        files=_plain("tsv", None, None, None), dev_slice=True,
        metric="f1", published=_pub(88.11, 85.40, "f1"), has_header=False,
        koelectra=KoelectraDefaults(20, 32, 32, 5e-5, 128)),
    TaskSpec(
        # KorQuAD's dev file is the test split (do_test), as in KoELECTRA.
        name="korquad", kind=SPAN, labels=(),
        files=_plain("json", "KorQuAD_v1.0_train.json", None, "KorQuAD_v1.0_dev.json"),
        dev_slice=True,
        metric="f1",
        published={"base-v3": {"exact_match": 84.83, "f1": 93.45},
                   "small-v3": {"exact_match": 82.11, "f1": 91.13}},
        has_header=False,
        koelectra=KoelectraDefaults(7, 8, 32, 5e-5, 512)),
)}

# The seed's column order of the results table.
TASK_NAMES = tuple(TASKS)

# The Hugging Face model class kind (model/hf/names.HEAD_MODELS) of each task kind:
# what export_hf.py writes a finetuned checkpoint as and import_hf.py --finetuned reads.
HF_MODEL_KIND = {CLASSIFICATION: "sequence_classification",
                 REGRESSION: "sequence_classification",
                 TAGGING: "token_classification",
                 SPAN: "question_answering"}


def get_task(name: str, custom_tasks: Optional[Mapping[str, dict]] = None) -> TaskSpec:
  """The spec of task `name`: a built-in task, or one of the hparams' "custom_tasks".

  Raises:
    ConfigError: unknown name (the message lists the valid names and the closest ones),
      or a malformed custom task entry.
  """
  if name in TASKS:
    return TASKS[name]
  if custom_tasks and name in custom_tasks:
    return custom_task(name, custom_tasks[name])
  valid = TASK_NAMES + tuple(custom_tasks or ())
  raise errors.ConfigError(f"unknown task {name!r}{hparams.closest(name, valid)} "
                           f"(valid tasks: {', '.join(valid)}, or a task of "
                           f"\"custom_tasks\")")


# ---------------------------------------------------------------------------
# The user's own tasks

# Keys of one "custom_tasks" entry (docs/finetuning.md, "Your own data").
CUSTOM_KEYS = ("kind", "train_file", "dev_file", "test_file", "text_a", "text_b", "label",
               "labels")
CUSTOM_KINDS = (CLASSIFICATION, REGRESSION, TAGGING)
# Written beside a custom task's trials: its name, kind and labels in id order.
TASK_FILE = "task.json"
# Training defaults of a custom task under the koelectra preset (explicit hparams win):
# KoELECTRA's most common per-task values, with Hugging Face's 3 epochs (user data sets
# are often small; more epochs are one hparam away).
CUSTOM_DEFAULTS = KoelectraDefaults(3, 32, 32, 5e-5, 128)


def custom_task(name: str, entry: Mapping) -> TaskSpec:
  """The TaskSpec of one "custom_tasks" entry.

  Args:
    name: the task's name (must not be a built-in task's).
    entry: {"kind", "train_file", "dev_file", "test_file", "text_a", "text_b", "label",
      "labels"}; kind is required, the rest optional (a run checks that the files it
      needs are given). Relative local paths are taken from the current directory.

  Returns:
    TaskSpec with `columns` set; labels () until given or collected (labels_from).

  Raises:
    ConfigError: naming the entry's bad key or value.
  """
  where = f"custom_tasks.{name}"
  if name in TASKS:
    raise errors.ConfigError(f"{where}: {name!r} is a built-in task; choose another name")
  if not isinstance(entry, Mapping):
    raise errors.ConfigError(f"{where} must be an object, got {entry!r}")
  hparams.check_keys(entry, CUSTOM_KEYS, what=f"key of {where}")
  kind = entry.get("kind")
  if kind not in CUSTOM_KINDS:
    raise errors.ConfigError(f"{where}.kind must be one of {', '.join(CUSTOM_KINDS)}, "
                             f"got {kind!r}")
  for key in ("train_file", "dev_file", "test_file", "text_a", "text_b", "label"):
    value = entry.get(key)
    if value is not None and (not isinstance(value, str) or not value):
      raise errors.ConfigError(f"{where}.{key} must be a non-empty string or null, "
                               f"got {value!r}")
  labels = entry.get("labels")
  if labels is not None:
    if (not isinstance(labels, (list, tuple)) or not labels
        or not all(isinstance(l, (str, int)) and not isinstance(l, bool) for l in labels)):
      raise errors.ConfigError(f"{where}.labels must be a list of label names, got "
                               f"{labels!r}")
    labels = tuple(str(l) for l in labels)
    if len(set(labels)) != len(labels):
      raise errors.ConfigError(f"{where}.labels names a label twice: {list(labels)}")
    if kind == REGRESSION:
      raise errors.ConfigError(f"{where}.labels: a regression task has no labels")

  def path(key):
    value = entry.get(key)
    if not value:
      return ()
    return (value if fileio.is_remote(value) else os.path.abspath(value),)

  metric = {CLASSIFICATION: "accuracy", REGRESSION: "spearman", TAGGING: "f1"}[kind]
  return TaskSpec(
      name=name, kind=kind, labels=labels or (),
      files={"train": path("train_file"), "dev": path("dev_file"),
             "test": path("test_file")},
      # No dev_file: as NSMC, a slice of the training file only with dev_slice_fraction.
      dev_slice=True, metric=metric, published={}, koelectra=CUSTOM_DEFAULTS,
      columns=Columns(entry.get("text_a") or "text", entry.get("text_b"),
                      entry.get("label") or "label"))


def with_labels(spec: TaskSpec, labels) -> TaskSpec:
  """`spec` with its labels in id order (collected from the training file or saved)."""
  return dataclasses.replace(spec, labels=tuple(labels))


def write_task_file(model_dir: str, spec: TaskSpec) -> str:
  """Saves a custom task's name, kind and labels in model_dir (atomically).

  Returns:
    the path written.
  """
  fileio.makedirs(model_dir)
  path = fileio.join(model_dir, TASK_FILE)
  with fileio.atomic_write(path) as f:
    json.dump({"name": spec.name, "kind": spec.kind, "labels": list(spec.labels)}, f,
              ensure_ascii=False, indent=1)
    f.write("\n")
  return path


def read_task_file(model_dir: str) -> Optional[dict]:
  """The {"name", "kind", "labels"} write_task_file saved in model_dir, or None."""
  path = fileio.join(model_dir, TASK_FILE)
  if not fileio.exists(path):
    return None
  with fileio.open_file(path) as f:
    try:
      saved = json.load(f)
    except json.JSONDecodeError as e:
      raise errors.UserError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
  if not isinstance(saved, dict) or not {"name", "kind", "labels"} <= set(saved):
    raise errors.UserError(f"{path}: expected an object with name, kind and labels")
  return saved


def saved_task_near(checkpoint: str) -> Optional[dict]:
  """The task file of a finetuned checkpoint: in its trial directory's parent (the task's
  model_dir), given the trial directory or a checkpoint prefix in it; else None."""
  def parent(p):
    return p.rsplit("/", 1)[0] if "/" in p else "."

  path = str(checkpoint).rstrip("/")
  trial_dir = parent(path) if fileio.exists(path + ".index") else path
  for folder in (trial_dir, parent(trial_dir)):
    saved = read_task_file(folder)
    if saved:
      return saved
  return None
