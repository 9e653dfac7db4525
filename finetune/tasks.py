"""The finetuning task registry: each Korean benchmark's kind, labels, files, metric,
KoELECTRA's published numbers and KoELECTRA's per-task training defaults.

Everything about a task that is data (not code) lives here, once. Readers, features,
scorers and the runner look a task up with `get_task(name)`.

File names: KoELECTRA's names first, then plain `{train,dev,test}.<ext>`; the first
file that exists wins (docs/finetuning.md). Tasks distributed without a dev file
(NSMC, Hate Speech, Naver NER, KorQuAD) use a fixed-seed 10% slice of the training
file as dev when no dev file is present (finetune/readers.py).
"""
import dataclasses
from typing import Dict, Optional, Tuple

from util import errors
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
      exists, `dev` is a fixed-seed 10% slice of train, and `train` then excludes it.
    extra_train_files: optional training files added only when asked for
      (KorNLI's SNLI translation).
    metric: the headline metric's key in the scorer's metrics dict.
    published: KoELECTRA's numbers, {"base-v3": {metric: value}, "small-v3": {...}}.
    koelectra: KoELECTRA's per-task training defaults.
    has_header: the first line of each file is a header (skipped).
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
        # NSMC has no dev file: `dev` is the 10% slice of ratings_train.txt.
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
        # KoELECTRA's val.tsv is this task's test split; dev is the slice of train.
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


def get_task(name: str) -> TaskSpec:
  """The spec of task `name`.

  Raises:
    ConfigError: unknown name; the message lists the valid names and the closest ones.
  """
  if name in TASKS:
    return TASKS[name]
  raise errors.ConfigError(f"unknown task {name!r}{hparams.closest(name, TASK_NAMES)} "
                           f"(valid tasks: {', '.join(TASK_NAMES)})")
