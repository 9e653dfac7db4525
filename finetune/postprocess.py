"""Model outputs -> one prediction per example, in the form the scorers and the
predictions files use.

`decode(task, examples, feature_set, outputs)` takes the head's outputs for every
feature of a split, stacked in feature order (the runner concatenates the batches
that `Estimator.predict` yields; rows past the last real feature, e.g. TPU padding,
are ignored):

- classification: outputs["logits"] [N, num_labels] -> the label string as written
  in the file (argmax; ties go to the first label, as numpy's argmax);
- regression: outputs["predictions"] [N] (or [N, 1]) -> float score;
- tagging: outputs["logits"] [N, L, num_labels] over token positions -> one tag per
  word, read at each word's first sub-token; words cut off by max length -> "O".
  A head that already gathered the first-sub-token positions (the original ELECTRA
  tagging head: word j at row j) passes word_level_logits=True;
- span (KorQuAD): outputs["start_logits"], outputs["end_logits"] [N, L] ->
  answer text (finetune/span_postprocess.py).
"""
from typing import Dict, List, Sequence, Union

import numpy as np

from finetune import features as features_lib
from finetune import tasks as tasks_lib


def decode(task: Union[str, tasks_lib.TaskSpec], examples: Sequence,
           feature_set: features_lib.FeatureSet, outputs: Dict[str, np.ndarray], *,
           word_level_logits: bool = False, n_best_size: int = 20,
           max_answer_length: int = 30, final_text: str = "bert") -> List:
  """One prediction per example, in example order.

  Args:
    task: task name or spec.
    examples: the examples that were converted to feature_set.
    feature_set: features.convert_examples(...) of those examples.
    outputs: name -> array stacked over features (first dimension >= the number of
      features); see the module docstring for the names and shapes.
    word_level_logits: tagging only: logits row j is word j (already gathered).
    n_best_size, max_answer_length: KorQuAD decoding (SQuAD's 20 / 30).
    final_text: KorQuAD: "bert" (BERT's get_final_text), "offsets" or "koelectra"
      (span_postprocess.py).

  Returns:
    list of predictions: label string, float, list of tags, or answer text.

  Raises:
    ValueError: fewer output rows than features, or a missing output.
  """
  spec = task if isinstance(task, tasks_lib.TaskSpec) else tasks_lib.get_task(task)
  n = len(feature_set.features)
  if spec.kind == tasks_lib.SPAN:
    from finetune import span_postprocess
    joint = None
    if "end_logits_given_start" in outputs:  # the original's joint_prediction head
      joint = tuple(_rows(outputs, k, n) for k in (
          "start_top_index", "start_top_log_probs", "end_logits_given_start"))
    return span_postprocess.best_answers(
        examples, feature_set, _rows(outputs, "start_logits", n),
        _rows(outputs, "end_logits", n), n_best_size=n_best_size,
        max_answer_length=max_answer_length, final_text=final_text, joint=joint)
  if spec.kind == tasks_lib.REGRESSION:
    values = _rows(outputs, "predictions", n).reshape(n, -1)[:, 0]
    out = [None] * len(examples)
    for f, v in zip(feature_set.features, values):
      out[int(f["example_id"])] = float(v)
    return out
  logits = _rows(outputs, "logits", n)
  if spec.kind == tasks_lib.CLASSIFICATION:
    out = [None] * len(examples)
    for f, row in zip(feature_set.features, logits):
      out[int(f["example_id"])] = spec.labels[int(np.argmax(row))]
    return out
  return _decode_tags(spec, examples, feature_set, logits, word_level_logits)


def _rows(outputs, name, n):
  if name not in outputs:
    raise ValueError(f"model outputs lack {name!r} (have {', '.join(sorted(outputs))})")
  arr = np.asarray(outputs[name])
  if arr.shape[0] < n:
    raise ValueError(f"{arr.shape[0]} rows of {name!r} for {n} features")
  return arr[:n]


def _decode_tags(spec, examples, feature_set, logits, word_level_logits):
  out = [None] * len(examples)
  for f, row in zip(feature_set.features, logits):
    i = int(f["example_id"])
    words = len(examples[i].words)
    kept = int(f["label_weights"].sum())
    positions = np.arange(kept) if word_level_logits else f["labeled_positions"][:kept]
    ids = np.argmax(row[positions], axis=-1)
    out[i] = [spec.labels[int(t)] for t in ids] + ["O"] * (words - kept)
  return out
