"""Metrics of the Korean benchmarks, x100 as KoELECTRA's table reports them.

- accuracy (NSMC, PAWS, KorNLI, Question Pair);
- Pearson and Spearman correlation (KorSTS; Spearman with average ranks for ties, as
  scipy.stats.spearmanr);
- macro F1 (Hate Speech; as scikit-learn's f1_score(average="macro"): the labels are
  those present in the gold labels or the predictions, so a gold label never
  predicted counts with F1 0);
- entity-level F1 / precision / recall and per-type F1 (Naver NER), computed by
  seqeval with suffix=True over whole sentences in file order;
- KorQuAD 1.0's official exact match and F1 (normalisation and character F1 as its
  evaluate-v1.0.py; written here from its definition, see `normalize_korquad_answer`).

`score(task, examples, predictions)` gives every metric of a task as a flat dict of
floats; the task's headline metric is `tasks.get_task(task).metric`.
"""
import collections
import re
import string
from typing import Dict, List, Sequence, Union

import numpy as np

from finetune import tasks as tasks_lib
from util import errors


def score(task: Union[str, tasks_lib.TaskSpec], examples: Sequence,
          predictions: Sequence) -> Dict[str, float]:
  """All metrics of one task on one split.

  Args:
    task: task name or spec.
    examples: the reader's examples of the split (gold labels), in file order.
    predictions: one prediction per example, same order: the label string
      (classification), float (regression), list of tags per word (tagging) or
      answer text (span).

  Returns:
    Flat dict of floats (x100) including the key `spec.metric` (the headline), and
    "num_examples".

  Raises:
    ValueError: predictions and examples differ in length.
  """
  spec = task if isinstance(task, tasks_lib.TaskSpec) else tasks_lib.get_task(task)
  if len(predictions) != len(examples):
    raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
  if spec.kind == tasks_lib.CLASSIFICATION:
    gold = [e.label for e in examples]
    out = {"accuracy": accuracy(predictions, gold)}
    if spec.metric == "macro_f1":
      out["macro_f1"] = macro_f1(predictions, gold)
  elif spec.kind == tasks_lib.REGRESSION:
    gold = [e.label for e in examples]
    out = {"pearson": pearson(predictions, gold), "spearman": spearman(predictions, gold)}
  elif spec.kind == tasks_lib.TAGGING:
    # Naver NER writes the type first (PER-B); CoNLL files usually the prefix (B-PER).
    suffix = not any(label[:2] in ("B-", "I-") for label in spec.labels)
    out = ner_scores([e.tags for e in examples], predictions, suffix=suffix)
  else:
    out = korquad_scores([[a for a, _ in e.answers] for e in examples], predictions)
  out["num_examples"] = float(len(examples))
  return out


# ---------------------------------------------------------------------------
# Sentence tasks


def accuracy(predictions: Sequence, gold: Sequence) -> float:
  """Percentage of predictions equal to the gold label (0 for no examples)."""
  if not gold:
    return 0.0
  return 100.0 * sum(p == g for p, g in zip(predictions, gold)) / len(gold)


def pearson(predictions: Sequence[float], gold: Sequence[float]) -> float:
  """Pearson's r x100 (NaN when either side is constant, as SciPy)."""
  x = np.asarray(predictions, dtype=np.float64)
  y = np.asarray(gold, dtype=np.float64)
  x = x - x.mean()
  y = y - y.mean()
  denom = np.sqrt(np.dot(x, x) * np.dot(y, y))
  if denom == 0:
    return float("nan")
  return float(100.0 * np.clip(np.dot(x, y) / denom, -1.0, 1.0))


def average_ranks(values: Sequence[float]) -> np.ndarray:
  """1-based ranks, ties sharing the mean of their ranks (scipy.stats.rankdata's
  default)."""
  v = np.asarray(values, dtype=np.float64)
  order = np.argsort(v, kind="mergesort")
  sorted_v = v[order]
  # Start of each run of equal values, in sorted order.
  starts = np.concatenate(([True], sorted_v[1:] != sorted_v[:-1]))
  run_id = np.cumsum(starts) - 1
  run_start = np.flatnonzero(starts)
  run_end = np.append(run_start[1:], len(v))  # exclusive
  mean_rank = (run_start + run_end + 1) / 2.0  # mean of 1-based ranks start+1..end
  ranks = np.empty(len(v))
  ranks[order] = mean_rank[run_id]
  return ranks


def spearman(predictions: Sequence[float], gold: Sequence[float]) -> float:
  """Spearman's rho x100: Pearson's r of the average ranks."""
  return pearson(average_ranks(predictions), average_ranks(gold))


def macro_f1(predictions: Sequence[str], gold: Sequence[str]) -> float:
  """Unweighted mean over labels of per-label F1, x100.

  The labels are the union of gold and predicted labels (scikit-learn's default), so
  a gold label the model never predicts contributes F1 0.
  """
  labels = sorted(set(gold) | set(predictions))
  if not labels:
    return 0.0
  f1s = []
  for label in labels:
    tp = sum(p == label and g == label for p, g in zip(predictions, gold))
    fp = sum(p == label and g != label for p, g in zip(predictions, gold))
    fn = sum(p != label and g == label for p, g in zip(predictions, gold))
    f1s.append(2.0 * tp / (2 * tp + fp + fn) if tp else 0.0)
  return 100.0 * float(np.mean(f1s))


# ---------------------------------------------------------------------------
# Naver NER


def ner_scores(gold_tags: Sequence[List[str]], predicted_tags: Sequence[List[str]],
               suffix: bool = True) -> Dict[str, float]:
  """seqeval's entity-level scores, x100.

  Args:
    gold_tags: per sentence, one tag per word.
    predicted_tags: same shape (words cut off by max length predicted "O").
    suffix: tags like `PER-B` (Naver NER); False: `B-PER` (CoNLL).

  Returns:
    {"f1", "precision", "recall", "f1_<TYPE>" for each entity type in the gold or
    predicted tags}.

  Raises:
    ValueError: a sentence's predicted tag count differs from its word count.
  """
  from seqeval import metrics  # imported here: only NER needs it
  for i, (g, p) in enumerate(zip(gold_tags, predicted_tags)):
    if len(g) != len(p):
      raise ValueError(f"sentence {i}: {len(p)} predicted tags for {len(g)} words")
  gold = [list(t) for t in gold_tags]
  pred = [list(t) for t in predicted_tags]
  out = {
      "f1": 100.0 * metrics.f1_score(gold, pred, suffix=suffix),
      "precision": 100.0 * metrics.precision_score(gold, pred, suffix=suffix),
      "recall": 100.0 * metrics.recall_score(gold, pred, suffix=suffix),
  }
  report = metrics.classification_report(gold, pred, suffix=suffix, output_dict=True,
                                         zero_division=0)
  for name, row in report.items():
    if name not in ("micro avg", "macro avg", "weighted avg"):
      out[f"f1_{name}"] = 100.0 * row["f1-score"]
  return out


# ---------------------------------------------------------------------------
# KorQuAD 1.0, as its official evaluate-v1.0.py

# Symbols the official script replaces by a space before anything else.
_KORQUAD_SYMBOLS = re.compile("['\"《》<>〈〉()‘’]")
_ASCII_PUNCTUATION = frozenset(string.punctuation)


def normalize_korquad_answer(text: str) -> str:
  """KorQuAD 1.0's answer normalisation.

  In the official order: the symbols ' " 《 》 < > 〈 〉 ( ) ‘ ’ become spaces, then
  lower-casing, then ASCII punctuation (Python's string.punctuation) is deleted, then
  runs of whitespace collapse to one space and the ends are stripped. Unlike SQuAD,
  English articles are not removed.
  """
  text = _KORQUAD_SYMBOLS.sub(" ", text).lower()
  text = "".join(ch for ch in text if ch not in _ASCII_PUNCTUATION)
  return " ".join(text.split())


def korquad_exact_match(prediction: str, truth: str) -> bool:
  """Normalised strings equal."""
  return normalize_korquad_answer(prediction) == normalize_korquad_answer(truth)


def korquad_f1(prediction: str, truth: str) -> float:
  """F1 (0-1) over the characters of the normalised strings, spaces removed."""
  pred_chars = list(normalize_korquad_answer(prediction).replace(" ", ""))
  truth_chars = list(normalize_korquad_answer(truth).replace(" ", ""))
  common = collections.Counter(pred_chars) & collections.Counter(truth_chars)
  same = sum(common.values())
  if same == 0:
    return 0.0
  precision = same / len(pred_chars)
  recall = same / len(truth_chars)
  return 2 * precision * recall / (precision + recall)


def korquad_scores(gold_answers: Sequence[List[str]], predictions: Sequence[str]
                   ) -> Dict[str, float]:
  """Official KorQuAD 1.0 EM and F1, x100: per question the best over its answers.

  Args:
    gold_answers: per question, its answer texts.
    predictions: per question, the predicted text (None counts as unanswered: 0, as
      the official script counts a question missing from the predictions file).

  Returns:
    {"exact_match", "f1"}.
  """
  if not gold_answers:
    return {"exact_match": 0.0, "f1": 0.0}
  em = f1 = 0.0
  for answers, pred in zip(gold_answers, predictions):
    if pred is None or not answers:
      continue
    em += max(float(korquad_exact_match(pred, a)) for a in answers)
    f1 += max(korquad_f1(pred, a) for a in answers)
  n = len(gold_answers)
  return {"exact_match": 100.0 * em / n, "f1": 100.0 * f1 / n}


def korquad_scores_by_id(dataset: dict, predictions: Dict[str, str]) -> Dict[str, float]:
  """The official script's interface: SQuAD JSON object + {question id: answer text}.

  Raises:
    UserError: the dataset is not SQuAD v1.1 JSON.
  """
  try:
    qas = [qa for article in dataset["data"] for p in article["paragraphs"]
           for qa in p["qas"]]
    gold = [[a["text"] for a in qa["answers"]] for qa in qas]
    preds = [predictions.get(qa["id"]) for qa in qas]
  except (KeyError, TypeError) as e:
    raise errors.UserError(f"not SQuAD v1.1 JSON: missing or malformed field {e}") from None
  return korquad_scores(gold, preds)
