"""A user's own task (hparams "custom_tasks"): each file format and kind, labels in
first-seen order saved with the model, prediction-only test files, label names through the
Hugging Face export, and every bad input as one error line naming file and line.
"""
import json
import os
import subprocess
import sys

import pytest

import run_finetuning
from finetune import readers
from finetune import runner
from finetune import scorers
from finetune import tasks as tasks_lib
from finetune.config import FinetuningConfig
from tests.conftest import ROOT, shared_data_dir
from util import errors

TINY = {"max_seq_length": 32, "embedding_size": 16, "train_batch_size": 8,
        "predict_batch_size": 16, "allow_random_init": True, "seed": 3,
        "model_hparam_overrides": {"hidden_size": 32, "num_hidden_layers": 2,
                                   "num_attention_heads": 2, "intermediate_size": 64}}
GOOD = ["정말 재미있는 영화였다", "배우들의 연기가 좋았다", "다시 보고 싶은 작품"]
BAD = ["지루하고 재미없다", "시간 낭비였다", "돈이 아깝다, 최악"]


def _write(path, text):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_bytes(text.encode("utf-8") if isinstance(text, str) else text)
  return path


def _reviews_csv(n):
  """A CSV with a quoted field holding the delimiter, a doubled quote and a newline."""
  rows = ["review,sentiment"]
  for i in range(n):
    good = i % 3 != 1
    text = (GOOD if good else BAD)[i % 3]
    rows.append(f'"{text}, ""{i}""\n둘째 줄",{"좋음" if good else "나쁨"}' if i == 0
                else f'"{text}",{"좋음" if good else "나쁨"}')
  return "\n".join(rows) + "\n"


def _spec(kind="classification", **entry):
  return tasks_lib.custom_task("mine", dict(kind=kind, **entry))


def _read(spec, split="train"):
  return readers.read_examples(spec, "unused", split)


# ---------------------------------------------------------------- reading

def test_csv_quoted_fields_and_first_seen_labels(tmp_path):
  path = _write(tmp_path / "train.csv", _reviews_csv(6))
  spec = _spec(train_file=str(path), text_a="review", label="sentiment")
  from finetune import table_readers
  assert table_readers.collect_labels(spec) == ("좋음", "나쁨")
  spec = tasks_lib.with_labels(spec, ("좋음", "나쁨"))
  rows = [e for u in table_readers.read_units(spec, str(path), path.read_text("utf-8"),
                                              False) for e in u[0]]
  assert rows[0].text_a == f'{GOOD[0]}, "0"\n둘째 줄' and rows[0].line == 2
  assert rows[1].line == 4 and rows[1].label == "나쁨"  # the quoted newline moved it


def test_tsv_pairs_and_jsonl_regression(tmp_path):
  tsv = _write(tmp_path / "pairs.tsv", "a\tb\tsame\n하나\t둘\tyes\n셋\t넷\tno\n")
  spec = _spec(train_file=str(tsv), text_a="a", text_b="b", label="same", labels=["no", "yes"])
  got = _read(spec).examples  # no dev_file and no dev_slice_fraction: the whole file
  assert sorted((e.text_a, e.text_b, e.label) for e in got) == [
      ("셋", "넷", "no"), ("하나", "둘", "yes")]
  jsonl = _write(tmp_path / "scores.jsonl",
                 '{"s": "가나다", "y": 0.5}\n\n{"s": "라마", "y": 3}\n')
  spec = _spec("regression", train_file=str(jsonl), dev_file=str(jsonl), text_a="s",
               label="y")
  read = _read(spec, "dev")
  assert [(e.line, e.label) for e in read.examples] == [(1, 0.5), (3, 3.0)]
  assert [s.line for s in read.skipped] == [2]


def test_conll_tagging_scored_with_prefix_tags(tmp_path):
  conll = _write(tmp_path / "ner.conll", "-DOCSTART- O\n\n서울 B-LOC\n에 O\n\n"
                 "김철수 B-PER\n씨 I-PER\n가 O\n")
  spec = _spec("tagging", train_file=str(conll), dev_file=str(conll))
  from finetune import table_readers
  spec = tasks_lib.with_labels(spec, table_readers.collect_labels(spec))
  assert spec.labels == ("B-LOC", "O", "B-PER", "I-PER")
  examples = _read(spec, "dev").examples
  assert [(e.line, e.words) for e in examples] == [(3, ["서울", "에"]),
                                                   (6, ["김철수", "씨", "가"])]
  # seqeval reads B-PER as a prefix tag: one wrong entity of two is F1 50.
  metrics = scorers.score(spec, examples, [["B-LOC", "O"], ["B-PER", "O", "O"]])
  assert metrics["f1"] == pytest.approx(50.0)


def test_test_files_without_labels_are_read_for_prediction(tmp_path):
  csv_ = _write(tmp_path / "new.csv", "review\n좋은 영화\n")
  conll = _write(tmp_path / "new.txt", "서울\n에\n\n부산\n")
  got = _read(_spec(test_file=str(csv_), text_a="review", labels=["a", "b"]), "test")
  assert [(e.text_a, e.label) for e in got.examples] == [("좋은 영화", None)]
  got = _read(_spec("tagging", test_file=str(conll), labels=["O"]), "test")
  assert [(e.words, e.tags) for e in got.examples] == [(["서울", "에"], None), (["부산"], None)]
  # Training and dev files need their labels.
  with pytest.raises(errors.UserError, match=r"new.csv:1: no column 'label' \(columns "
                                             r"found: 'review'"):
    _read(_spec(train_file=str(csv_), text_a="review"))


@pytest.mark.parametrize("name,content,split,expect", [
    ("t.csv", "text,lab\n좋다,a\n", "train", r"t.csv:1: no column 'label' \(columns found: "
                                             r"'text', 'lab'"),
    ("t.jsonl", '{"text": "좋다", "label": "a"}\n{"txt": "x", "label": "a"}\n', "train",
     r"t.jsonl:2: no column 'text' \(columns found: 'txt', 'label'"),
    ("t.csv", "text,label\n좋다,a\n,a\n", "train", r"t.csv:3: empty text in column 'text'"),
    ("t.tsv", "text\tlabel\n좋다\ta\n싫다\tc\n", "dev",
     r"t.tsv:3: label 'c' is not one of mine's labels \(a, b\): training never saw it"),
    ("t.conll", "서울 B-LOC\n에 B-ORG\n", "dev", r"t.conll:2: label 'B-ORG' is not one"),
    ("t.csv", "text,label\n좋다,a\n".encode("cp949"), "train", r"t.csv:2: not UTF-8"),
    ("t.csv", 'text,label\n"좋다,a\n', "train", r"t.csv:2: malformed row"),
    ("t.csv", "text,label\n좋다,a,b\n", "train", r"t.csv:2: 3 fields but the header has 2"),
    ("t.txt", "text,label\n좋다,a\n", "train", r"t.txt: unknown file type '.txt'"),
])
def test_bad_input_names_file_and_line(tmp_path, name, content, split, expect):
  path = _write(tmp_path / name, content)
  kind = "tagging" if name.endswith(".conll") else "classification"
  spec = _spec(kind, labels=["B-LOC", "O"] if kind == "tagging" else ["a", "b"],
               **{f"{split}_file": str(path)})
  with pytest.raises(errors.UserError, match=expect):
    _read(spec, split)


@pytest.mark.parametrize("entry,expect", [
    ({"kind": "classify"}, "custom_tasks.mine.kind must be one of classification"),
    ({"kind": "classification", "text": "x"}, "unknown key of custom_tasks.mine 'text'"),
    ({"kind": "regression", "labels": ["a"]}, "a regression task has no labels"),
    ({"kind": "classification", "labels": ["a", "a"]}, "names a label twice"),
])
def test_bad_custom_task_entries(entry, expect):
  with pytest.raises(errors.ConfigError, match=expect):
    FinetuningConfig("m", "d", task_names=["mine"], custom_tasks={"mine": entry})
  with pytest.raises(errors.ConfigError, match="do_train needs custom_tasks.mine.train_file"):
    FinetuningConfig("m", "d", task_names=["mine"],
                     custom_tasks={"mine": {"kind": "classification"}})


# ---------------------------------------------------------------- end to end

def _cli(cwd, hp, *args):
  return subprocess.run(
      [sys.executable, str(ROOT / "run_finetuning.py"), "--data-dir", ".", "--model-name",
       "tiny", "--hparams", json.dumps(hp), *args], cwd=cwd, capture_output=True, text=True,
      timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2"))


def _jsonl(path):
  return [json.loads(l) for l in path.read_text(encoding="utf-8").splitlines()]


def test_classifier_trains_predicts_and_exports_its_label_names(tmp_path):
  """From another directory with relative paths: train on a CSV, predict an unlabelled
  test file, predict a new file with do_train off, export, and transformers' pipeline
  answers with the label names."""
  work = tmp_path / "work"
  _write(work / "data" / "train.csv", _reviews_csv(40))
  _write(work / "data" / "test.csv", "review\n" + "".join(f'"{t}"\n' for t in GOOD + BAD))
  _write(work / "data" / "new.csv", "review\n최고의 작품\n")
  _write(work / "vocab.txt", (shared_data_dir() / "vocab" / "v3" / "vocab.txt").read_bytes())
  task = {"kind": "classification", "train_file": "data/train.csv",
          "test_file": "data/test.csv", "text_a": "review", "label": "sentiment"}
  hp = dict(TINY, task_names=["reviews"], custom_tasks={"reviews": task}, do_test=True,
            num_train_epochs=2.0, dev_slice_fraction=0.1)
  done = _cli(work, hp)
  assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
  assert "2 labels in first-seen order" in done.stdout and "좋음, 나쁨" in done.stdout
  model_dir = work / "models" / "tiny" / "finetuning_models" / "reviews_model"
  saved = json.loads((model_dir / "task.json").read_text(encoding="utf-8"))
  assert saved == {"name": "reviews", "kind": "classification", "labels": ["좋음", "나쁨"]}
  results = work / "models" / "tiny" / "results"
  record = json.loads((results / "reviews_results.json").read_text(encoding="utf-8"))
  assert "accuracy" in record["splits"]["dev"]
  assert set(record["splits"]["test"]) == {"num_examples"}  # predicted, not scored
  preds = _jsonl(results / "predictions" / "reviews.test.1.jsonl")
  assert [p["line"] for p in preds] == list(range(2, 8))
  assert {p["prediction"] for p in preds} <= {"좋음", "나쁨"}

  # One command predicts on a new file with the finetuned trial; labels from task.json.
  new = dict(hp, do_train=False, do_eval=False,
             custom_tasks={"reviews": dict(task, train_file=None, test_file="data/new.csv")})
  done = _cli(work, new)
  assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
  preds = _jsonl(results / "predictions" / "reviews.test.1.jsonl")
  assert len(preds) == 1 and preds[0]["prediction"] in ("좋음", "나쁨")
  # Other labels than the model's are refused, naming both.
  done = _cli(work, dict(new, custom_tasks={"reviews": dict(new["custom_tasks"]["reviews"],
                                                            labels=["나쁨", "좋음"])}))
  assert done.returncode == 2 and "task.json: the model was trained" in done.stderr

  # Export without --task-kind / --labels: task.json gives both.
  out = subprocess.run(
      [sys.executable, str(ROOT / "export_hf.py"), "--checkpoint",
       "models/tiny/finetuning_models/reviews_model/trial_1", "--hparams", json.dumps(TINY),
       "--vocab-file", "vocab.txt", "--output-dir", "hf"], cwd=work, capture_output=True,
      text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(ROOT)))
  assert out.returncode == 0, out.stderr[-2000:]
  cfg = json.loads((work / "hf" / "config.json").read_text(encoding="utf-8"))
  assert cfg["id2label"] == {"0": "좋음", "1": "나쁨"}
  assert cfg["label2id"] == {"좋음": 0, "나쁨": 1}
  # In a child process: transformers loaded here would change what TensorFlow's lazy
  # Keras import finds for the tests after this one.
  ask = ("import json, sys, transformers\n"
         "classify = transformers.pipeline('text-classification', model='hf')\n"
         "print(json.dumps(classify(['최고의 작품', '최악의 영화']), ensure_ascii=False))\n")
  out = subprocess.run([sys.executable, "-c", ask], cwd=work, capture_output=True,
                       text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  answers = json.loads(out.stdout.strip().splitlines()[-1])
  assert len(answers) == 2 and all(a["label"] in ("좋음", "나쁨") for a in answers), answers


@pytest.mark.parametrize("kind,files,entry", [
    ("tagging", {"train.conll": "서울 B-LOC\n에 O\n가다 O\n\n김철수 B-PER\n씨 I-PER\n\n" * 12,
                 "test.conll": "서울\n에\n\n부산\n"},
     {"train_file": "train.conll", "test_file": "test.conll"}),
    ("regression", {"train.jsonl": "".join(json.dumps({"text": t, "label": i % 5})
                                           + "\n" for i, t in enumerate((GOOD + BAD) * 8)),
                    "test.jsonl": '{"text": "좋다"}\n'},
     {"train_file": "train.jsonl", "test_file": "test.jsonl"}),
])
def test_tagging_and_regression_train_and_predict(tmp_path, monkeypatch, kind, files, entry):
  for name, text in files.items():
    _write(tmp_path / name, text)
  _write(tmp_path / "vocab.txt", (shared_data_dir() / "vocab" / "v3" / "vocab.txt").read_bytes())
  monkeypatch.chdir(tmp_path)  # relative paths are taken from the current directory
  hp = dict(TINY, task_names=["mine"], custom_tasks={"mine": dict(entry, kind=kind)},
            do_test=True, num_train_epochs=1.0, dev_slice_fraction=0.1)
  path, trials = runner.run(FinetuningConfig("tiny", ".", **hp), log=lambda l: None)
  metric = "f1" if kind == "tagging" else "spearman"
  assert metric in trials[0]["dev"]
  assert trials[0]["test"] == {"num_examples": 2.0 if kind == "tagging" else 1.0}
  preds = _jsonl(tmp_path / "models" / "tiny" / "results" / "predictions" / "mine.test.1.jsonl")
  if kind == "tagging":
    assert [len(p["prediction"]) for p in preds] == [2, 1]
    assert {t for p in preds for t in p["prediction"]} <= {"B-LOC", "O", "B-PER", "I-PER"}
  else:
    assert isinstance(preds[0]["prediction"], float)


def test_bad_training_file_is_one_error_line_and_writes_nothing(tmp_path, capsys,
                                                                monkeypatch):
  _write(tmp_path / "train.csv", "text,label\n좋다,a\n싫다,b\n,a\n")
  _write(tmp_path / "vocab.txt", (shared_data_dir() / "vocab" / "v3" / "vocab.txt").read_bytes())
  monkeypatch.chdir(tmp_path)
  hp = dict(TINY, task_names=["mine"],
            custom_tasks={"mine": {"kind": "classification", "train_file": "train.csv"}})
  rc = run_finetuning.main(["--data-dir", ".", "--model-name", "tiny", "--hparams",
                            json.dumps(hp)])
  err = capsys.readouterr().err
  assert rc == 2 and err.startswith("error: ") and err.count("\n") == 1, err
  assert "train.csv:4: empty text in column 'text'" in err
  assert not (tmp_path / "models").exists()


def test_demo_source_task_files(tmp_path):
  """The demo's task: one CSV row per non-blank line, labelled by document; the majority
  baseline; two pipeline examples from different documents, each text unique to it."""
  from finetune import demo
  for sub, lines in (("train", {"kolaw-a": "가나다라마바사아자차\n\n하나 둘 셋 넷 다섯 여섯 일곱\n",
                                "kobill-b": "공통 줄입니다, 쉼표도 있음\n"}),
                     ("heldout", {"kolaw-a": "공통 줄입니다, 쉼표도 있음\n헌법 제1조 대한민국은 민주공화국이다\n",
                                  "kobill-b": "공통 줄입니다, 쉼표도 있음\n의안 제출 이유와 주요 내용은 다음과 같다\n"})):
    for name, text in lines.items():
      _write(tmp_path / "corpus" / sub / name, text)
  files = demo.write_source_task(str(tmp_path / "corpus"), str(tmp_path / "task"))
  spec = tasks_lib.custom_task("source", dict(kind="classification", **files))
  assert [e.label for e in _read(spec).examples].count("kolaw-a") == 2
  assert demo.majority_baseline(files["train_file"], files["test_file"]) == 50.0
  assert demo.two_examples(files["test_file"]) == [
      ("헌법 제1조 대한민국은 민주공화국이다", "kolaw-a"),
      ("의안 제출 이유와 주요 내용은 다음과 같다", "kobill-b")]
