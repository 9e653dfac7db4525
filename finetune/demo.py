"""The demo's finetuning stage (run_demo.py): a labelled task derived from the demo's own
text, finetuned from the pretrained model and from random weights, beside the majority
class.

The task ("source"): which of konlpy's bundled documents (the constitution, ten bills) a
line comes from. Training rows are the lines pretraining saw, test rows the held-out lines
pretraining did not; both are written as CSV and read as any user's custom task
(finetune/tasks.custom_task), so the demo runs the same code a user's own files do.
"""
import collections
import csv
import pathlib
from typing import Dict, List

from finetune import runner
from finetune.config import FinetuningConfig
from util import fileio

TASK = "source"


def write_source_task(corpus_dir: str, out_dir: str) -> Dict[str, str]:
  """Writes out_dir/{train,test}.csv (columns text, label; label = the document's name)
  from corpus_dir/train/<document> and corpus_dir/heldout/<document>.

  Returns:
    {"train_file", "test_file"} paths.
  """
  out = pathlib.Path(out_dir)
  out.mkdir(parents=True, exist_ok=True)
  paths = {}
  for split, sub in (("train", "train"), ("test", "heldout")):
    path = out / f"{split}.csv"
    with fileio.atomic_write(str(path)) as f:
      writer = csv.writer(f, lineterminator="\n")
      writer.writerow(["text", "label"])
      for doc in sorted(pathlib.Path(corpus_dir, sub).iterdir()):
        label = doc.stem  # e.g. kolaw-constitution, kobill-1809890
        for line in doc.read_text(encoding="utf-8").splitlines():
          if line.strip():
            writer.writerow([line, label])
    paths[f"{split}_file"] = str(path)
  return paths


def _labels(path: str) -> List[str]:
  with open(path, encoding="utf-8", newline="") as f:
    return [row["label"] for row in csv.DictReader(f)]


def majority_baseline(train_file: str, test_file: str) -> float:
  """Test accuracy (x100) of always answering the training file's most common label."""
  majority = collections.Counter(_labels(train_file)).most_common(1)[0][0]
  test = _labels(test_file)
  return 100.0 * sum(label == majority for label in test) / len(test)


def finetune_source(data_dir: str, model_name: str, files: Dict[str, str], hparams: dict,
                    random_init: bool = False, log=print) -> dict:
  """Finetunes the source task and predicts its test file.

  Args:
    data_dir: the demo's DIR; the encoder starts from DIR/models/<model_name>.
    model_name: the pretrained model's name.
    files: write_source_task's paths.
    hparams: finetuning hparams (the encoder's sizes, vocab, training lengths).
    random_init: start from random weights instead (the comparison run, under
      <model_name>-random-init).
    log: progress lines.

  Returns:
    {"test_accuracy", "dev_accuracy" (x100), "trial_dir", "labels"}.
  """
  name = f"{model_name}-random-init" if random_init else model_name
  task = dict(kind="classification", **files)
  config = FinetuningConfig(name, data_dir, task_names=[TASK], custom_tasks={TASK: task},
                            do_test=True, allow_random_init=random_init,
                            # 10% of the training lines held out as dev, as measured in docs
                            dev_slice_fraction=0.1,
                            # demo_options.json already refuses other demo options, so a
                            # trial trained with other hparams is from an older version of
                            # the code: train it again (the old one is moved aside)
                            retrain=True, **hparams)
  _, trials = runner.run(config, log=log)
  return {"test_accuracy": trials[0]["test"]["accuracy"],
          "dev_accuracy": trials[0]["dev"]["accuracy"], "trial_dir": trials[0]["model_dir"],
          "labels": list(config.task.labels)}


def two_examples(test_file: str) -> List[tuple]:
  """(text, label) of two test rows for the pipeline: the first line of the first and of
  the last label whose text no other document has (bills share boilerplate lines)."""
  with open(test_file, encoding="utf-8", newline="") as f:
    rows = [(row["text"], row["label"]) for row in csv.DictReader(f)]
  owners = collections.defaultdict(set)
  for text, label in rows:
    owners[text].add(label)
  unique = [(t, l) for t, l in rows if len(owners[t]) == 1 and len(t) >= 20]
  return [unique[0], next(r for r in reversed(unique) if r[1] != unique[0][1])][::-1]


def source_task_stage(corpus, data_dir, pretraining_hparams, batch_size, epochs):
  """The demo's stage 6: the source task from the pretrained model, from random weights,
  and the majority class.

  Args:
    corpus: the demo corpus folder (pathlib.Path; train/ and heldout/ documents).
    data_dir: the demo's data folder (pathlib.Path); the task's CSV files go below it.
    pretraining_hparams: the pretraining hparams whose encoder sizes and vocab are reused.
    batch_size, epochs: training batch and epochs of the task.

  Returns:
    the demo summary's `finetuning` entry (accuracies, labels, the trial dir, files).
  """
  files = write_source_task(str(corpus), str(data_dir / "source_task"))
  keys = ("model_size", "embedding_size", "model_hparam_overrides", "vocab_size",
          "vocab_file")
  hp = {k: pretraining_hparams[k] for k in keys}
  hp.update(max_seq_length=64, train_batch_size=batch_size,
            num_train_epochs=epochs, learning_rate=3e-4,
            log_every_steps=50, save_checkpoints_steps=10000)
  pretrained = finetune_source(str(data_dir), "demo", files, hp)
  random_init = finetune_source(str(data_dir), "demo", files, hp, random_init=True)
  return {"task": TASK, "num_labels": len(pretrained["labels"]),
          "test_accuracy": pretrained["test_accuracy"],
          "random_init_test_accuracy": random_init["test_accuracy"],
          "majority_baseline": majority_baseline(files["train_file"], files["test_file"]),
          "epochs": epochs, "trial_dir": pretrained["trial_dir"],
          "labels": pretrained["labels"], "files": files}


def show_pipeline(folder, test_file):
  """The exported classifier answering through transformers' pipeline, when installed."""
  try:
    import transformers  # noqa: F401 (the test extra; with torch)
  except ImportError:
    # Not installed by the demo: transformers needs torch (a ~200 MB CPU wheel), which
    # only the test extra brings; the export above needs neither.
    print("transformers is not installed (it comes with the test extra): run "
          "`bash setup.sh install test`, then `bash setup.sh demo` again (finished stages "
          f"are reused) to see pipeline(\"text-classification\", model={folder!r}) answer")
    return
  classify = transformers.pipeline("text-classification", model=folder)
  for text, label in two_examples(test_file):
    answer = classify(text)[0]
    print(f"  {text[:40]!r}: {answer['label']} ({answer['score']:.2f}); true: {label}")
