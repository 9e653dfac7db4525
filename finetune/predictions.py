"""Writing predictions files: JSON lines per split and trial, and KorQuAD's official
`{question id: answer}` JSON.

Layout (issue 11): `<results_dir>/predictions/<task>.<split>.<trial>.jsonl`, one line
per kept example in file order:
- sentence tasks: `{"line": n, "prediction": "label as in the file"}` (KorSTS: float);
- naver-ner: `{"line": n, "prediction": ["tag per word", ...]}`;
- korquad: `{"id": "question id", "article": i, "prediction": "answer text"}`, and
  beside it `korquad.<split>.<trial>.json`, the `{question id: answer text}` object
  the official evaluate-v1.0.py reads.
Files are written under a temporary name and renamed when complete.
"""
import json
from typing import List, Sequence, Union

from finetune import tasks as tasks_lib
from util import fileio


def prediction_records(task: Union[str, tasks_lib.TaskSpec], examples: Sequence,
                       predictions: Sequence) -> List[dict]:
  """One JSON-able record per example (the lines of the .jsonl file).

  Raises:
    ValueError: predictions and examples differ in length.
  """
  spec = task if isinstance(task, tasks_lib.TaskSpec) else tasks_lib.get_task(task)
  if len(predictions) != len(examples):
    raise ValueError(f"{len(predictions)} predictions for {len(examples)} examples")
  if spec.kind == tasks_lib.SPAN:
    return [{"id": e.qid, "article": e.article, "prediction": p}
            for e, p in zip(examples, predictions)]
  if spec.kind == tasks_lib.REGRESSION:
    predictions = [float(p) for p in predictions]
  return [{"line": e.line, "prediction": p} for e, p in zip(examples, predictions)]


def predictions_paths(results_dir: str, task: Union[str, tasks_lib.TaskSpec], split: str,
                      trial: int) -> List[str]:
  """The files write_predictions writes: the .jsonl, and for korquad also the .json."""
  spec = task if isinstance(task, tasks_lib.TaskSpec) else tasks_lib.get_task(task)
  base = fileio.join(str(results_dir), "predictions", f"{spec.name}.{split}.{trial}")
  paths = [base + ".jsonl"]
  if spec.kind == tasks_lib.SPAN:
    paths.append(base + ".json")
  return paths


def write_predictions(results_dir: str, task: Union[str, tasks_lib.TaskSpec], split: str,
                      trial: int,
                      examples: Sequence, predictions: Sequence) -> List[str]:
  """Writes the predictions files of one split and trial (atomically).

  Args:
    results_dir: DIR/models/NAME/results (local or gs://).
    task, split, trial: name parts of the files (task: name or spec).
    examples: the split's examples in file order.
    predictions: one per example (postprocess.decode).

  Returns:
    the paths written.
  """
  records = prediction_records(task, examples, predictions)
  paths = predictions_paths(results_dir, task, split, trial)
  fileio.makedirs(fileio.join(str(results_dir), "predictions"))
  with fileio.atomic_write(paths[0]) as f:
    for r in records:
      f.write(json.dumps(r, ensure_ascii=False) + "\n")
  if len(paths) > 1:
    with fileio.atomic_write(paths[1]) as f:
      json.dump({r["id"]: r["prediction"] for r in records}, f, ensure_ascii=False,
                indent=1)
      f.write("\n")
  return paths
