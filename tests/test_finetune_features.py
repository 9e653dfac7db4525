"""Sentence and tagging features with the v3 vocab; decoding and predictions files."""
import json

import numpy as np
import pytest

from finetune import features
from finetune import postprocess
from finetune import predictions
from finetune import readers
from finetune import scorers
from finetune import tasks
from model import tokenization
from tests import finetune_data


@pytest.fixture(scope="module")
def tok(vocab_v3):
  return tokenization.FastTokenizer(vocab_v3)


@pytest.fixture(scope="module")
def ref(vocab_v3):
  return tokenization.FullTokenizer(vocab_v3)


def _ex(a, b=None, label="1", line=2):
  return readers.SentenceExample(line, "f", a, b, label)


def test_seed_example_ids(tok):
  fs = features.convert_examples("nsmc", [_ex("한국어 ELECTRA를 공유합니다.")], tok, 16)
  f = fs.features[0]
  assert f["input_ids"].tolist() == [2, 11229, 29173, 13352, 25541, 4110, 7824, 17788,
                                     18, 3, 0, 0, 0, 0, 0, 0]
  assert f["input_mask"].tolist() == [1] * 10 + [0] * 6
  assert f["segment_ids"].tolist() == [0] * 16
  assert int(f["label_ids"]) == 1 and int(f["example_id"]) == 0


def test_pair_layout_and_longest_first_truncation(tok, ref):
  a = "한국어 ELECTRA를 공유합니다. 오늘은 날씨가 아주 맑고 좋습니다"
  b = "비가 온다"
  ids_a, ids_b = ref.encode(a), ref.encode(b)
  assert len(ids_a) > 8 and len(ids_b) == 3
  fs = features.convert_examples("paws", [_ex(a, b)], tok, 12)  # room for 9 tokens
  f = fs.features[0]
  # B (3) is the shorter side and stays whole; A is cut from its end to 6.
  expect = [2] + ids_a[:6] + [3] + ids_b + [3]
  assert f["input_ids"].tolist() == expect
  assert f["segment_ids"].tolist() == [0] * 8 + [1] * 4
  assert f["input_mask"].tolist() == [1] * 12
  assert fs.sequences_cut == 1


def test_truncate_pair_alternates_when_both_are_long():
  a, b = list(range(10)), list(range(100, 107))
  assert features.truncate_pair(a, b, 8)
  assert a == [0, 1, 2, 3] and b == [100, 101, 102, 103]  # ties cut B first
  a, b = [1, 2], [3]
  assert not features.truncate_pair(a, b, 3) and a == [1, 2] and b == [3]


@pytest.mark.parametrize("task", ["nsmc", "kornli", "korsts", "hate-speech"])
def test_features_on_shared_rows_match_the_reference(tmp_path, data_dir, tok, ref, task):
  d, _ = finetune_data.layout(tmp_path, task, rows=64)
  split = "train" if task != "kornli" else "dev"
  examples = readers.read_examples(task, d, split).examples
  L = 32
  fs = features.convert_examples(task, examples, tok, L)
  spec = features.feature_spec(task, L)
  assert len(fs.features) == len(examples) == fs.num_examples
  cut = 0
  for i, (e, f) in enumerate(zip(examples, fs.features)):
    assert set(f) == set(spec)
    for name, (dtype, shape) in spec.items():
      assert f[name].dtype == np.dtype(dtype) and f[name].shape == shape, name
    a = ref.encode(e.text_a)
    if e.text_b is None:
      cut += len(a) > L - 2
      expect, segments = [2] + a[:L - 2] + [3], None
    else:
      b = ref.encode(e.text_b)
      cut += len(a) + len(b) > L - 3
      features.truncate_pair(a, b, L - 3)
      expect = [2] + a + [3] + b + [3]
      segments = [0] * (len(a) + 2) + [1] * (len(b) + 1)
    n = len(expect)
    assert f["input_ids"][:n].tolist() == expect and not f["input_ids"][n:].any()
    assert f["input_mask"].sum() == n
    if segments:
      assert f["segment_ids"][:n].tolist() == segments
    assert int(f["example_id"]) == i
    if task == "korsts":
      assert float(f["targets"]) == pytest.approx(e.label)
    else:
      assert tasks.get_task(task).labels[int(f["label_ids"])] == e.label
  assert fs.sequences_cut == cut


def test_gold_logits_decode_to_gold_labels_and_predictions_file(tmp_path, data_dir, tok):
  d, _ = finetune_data.layout(tmp_path, "kornli", rows=64)
  res = readers.read_examples("kornli", d, "dev")
  fs = features.convert_examples("kornli", res.examples, tok, 64)
  gold = np.array([int(f["label_ids"]) for f in fs.features])
  logits = np.eye(3)[gold] * 5.0
  logits = np.concatenate([logits, np.zeros((4, 3))])  # TPU padding rows are ignored
  preds = postprocess.decode("kornli", res.examples, fs, {"logits": logits})
  assert preds == [e.label for e in res.examples]
  assert scorers.score("kornli", res.examples, preds)["accuracy"] == 100.0
  paths = predictions.write_predictions(tmp_path / "results", "kornli", "dev", 0,
                                        res.examples, preds)
  assert [p.rsplit("/", 1)[-1] for p in paths] == ["kornli.dev.0.jsonl"]
  lines = open(paths[0], encoding="utf-8").read().splitlines()
  assert len(lines) == 64
  assert json.loads(lines[0]) == {"line": 2, "prediction": res.examples[0].label}
  assert [json.loads(x)["line"] for x in lines] == list(range(2, 66))
  assert not list((tmp_path / "results" / "predictions").glob(".tmp*"))


def test_regression_decode_and_file(tmp_path):
  ex = [_ex("가", "나", 0.5, line=2), _ex("다", "라", 4.0, line=4)]
  fs = features.FeatureSet("korsts", 8, [{"example_id": np.array(i)} for i in range(2)], 2)
  preds = postprocess.decode("korsts", ex, fs, {"predictions": np.array([[1.25], [3.5]])})
  assert preds == [1.25, 3.5]
  path = predictions.write_predictions(str(tmp_path), "korsts", "test", 2, ex, preds)[0]
  assert path.endswith("predictions/korsts.test.2.jsonl")
  assert [json.loads(x) for x in open(path)] == [{"line": 2, "prediction": 1.25},
                                                 {"line": 4, "prediction": 3.5}]
  with pytest.raises(ValueError, match="lack 'predictions'"):
    postprocess.decode("korsts", ex, fs, {"logits": np.zeros((2, 1))})


def test_padding_feature_matches_spec():
  f = features.padding_feature("korquad", 16)
  spec = features.feature_spec("korquad", 16)
  assert set(f) == set(spec) and int(f["example_id"]) == -1
  assert all(f[k].shape == s and f[k].dtype == np.dtype(t) for k, (t, s) in spec.items())


# ---------------------------------------------------------------------------
# Tagging


def _ner(words, tags, line=1):
  return readers.TaggingExample(line, "train.tsv", words.split(), tags.split())


def test_tagging_first_subtoken_carries_the_label(tok, ref):
  e = _ner("한국어 ELECTRA를 공유합니다 .", "ORG-B ORG-I O O")
  fs = features.convert_examples("naver-ner", [e], tok, 16)
  f = fs.features[0]
  pieces = [ref.encode(w) for w in e.words]
  expect = [2] + [i for p in pieces for i in p] + [3]
  assert f["input_ids"][:len(expect)].tolist() == expect
  firsts = np.cumsum([1] + [len(p) for p in pieces[:-1]]).tolist()
  assert firsts == [1, 2, 6, 8]
  assert f["labeled_positions"].tolist() == firsts + [0] * 12
  assert np.flatnonzero(f["label_weights"]).tolist() == firsts
  labels = tasks.NER_LABELS
  assert [labels[i] for i in f["label_ids"][firsts]] == e.tags
  assert f["label_ids"].sum() == f["label_ids"][firsts].sum()  # 0 where excluded
  assert fs.words_cut == 0


def test_word_that_tokenizes_to_nothing_becomes_unk(tok):
  e = _ner("가 \u200b 나", "O PER-B O")  # a zero-width space: removed by cleaning
  assert tok.encode("\u200b") == []
  f = features.convert_examples("naver-ner", [e], tok, 8).features[0]
  assert f["input_ids"][2] == tok.vocab["[UNK]"]
  assert tasks.NER_LABELS[f["label_ids"][2]] == "PER-B"


def test_words_cut_off_are_counted_and_predicted_o(tok):
  e = _ner("서울 부산 대구 광주 대전 울산", "LOC-B LOC-B LOC-B LOC-B LOC-B LOC-B")
  fs = features.convert_examples("naver-ner", [e], tok, 6)  # room for 4 sub-tokens
  assert fs.words_cut == 2 and fs.sequences_cut == 1
  f = fs.features[0]
  assert f["label_weights"].sum() == 4
  logits = np.zeros((1, 6, 29))
  logits[0, :, tasks.NER_LABELS.index("LOC-B")] = 1.0
  preds = postprocess.decode("naver-ner", [e], fs, {"logits": logits})
  assert preds == [["LOC-B"] * 4 + ["O", "O"]]
  assert scorers.score("naver-ner", [e], preds)["recall"] == pytest.approx(100 * 4 / 6)


@pytest.mark.parametrize("L", [32, 128])
def test_ner_gold_logits_through_the_path(tmp_path, data_dir, tok, L):
  d, _ = finetune_data.layout(tmp_path, "naver-ner", rows=64)
  res = readers.read_examples("naver-ner", d, "train")
  fs = features.convert_examples("naver-ner", res.examples, tok, L)
  token_logits = np.eye(29)[np.stack([f["label_ids"] for f in fs.features])]
  preds = postprocess.decode("naver-ner", res.examples, fs, {"logits": token_logits})
  word_logits = np.zeros_like(token_logits)
  for k, f in enumerate(fs.features):
    n = int(f["label_weights"].sum())
    word_logits[k, :n] = token_logits[k, f["labeled_positions"][:n]]
  assert postprocess.decode("naver-ner", res.examples, fs, {"logits": word_logits},
                            word_level_logits=True) == preds
  for e, p, f in zip(res.examples, preds, fs.features):
    n = int(f["label_weights"].sum())
    assert p[:n] == e.tags[:n] and p[n:] == ["O"] * (len(e.words) - n)
  out = scorers.score("naver-ner", res.examples, preds)
  assert out["precision"] == 100.0
  if L == 128:  # every word fits
    assert fs.words_cut == 0 and out["f1"] == 100.0
  else:  # words cut off count as missed entities
    assert fs.words_cut > 0 and out["recall"] < 100.0
  path = predictions.write_predictions(tmp_path, "naver-ner", "train", 0, res.examples,
                                       preds)[0]
  rows = [json.loads(x) for x in open(path, encoding="utf-8")]
  assert len(rows) == len(res.examples)
  assert rows[0] == {"line": res.examples[0].line, "prediction": preds[0]}


def test_finetune_data_modules_do_not_import_tensorflow():
  import os
  import subprocess
  import sys
  code = ("import sys\n"
          "from finetune import tasks, readers, features, span_features, scorers, "
          "postprocess, span_postprocess, predictions\n"
          "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n"
          "assert not any(m.startswith('pretrain') for m in sys.modules)\n")
  from tests.conftest import ROOT
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env)


def test_features_round_trip_through_tf_example_with_the_spec(tok):
  """What the runner's cache does: tf.train.Example out, FixedLenFeature in."""
  import tensorflow as tf
  cases = [
      ("korsts", [_ex("한국어 ELECTRA를", "공유합니다.", 3.8)]),
      ("naver-ner", [_ner("한국어 ELECTRA를 공유합니다 .", "ORG-B ORG-I O O")]),
      ("korquad", [readers.QAExample(
          "q1", 0, "f", "누가?", "임수경이 갔다", [("임수경", 0)],
          *readers.split_context("임수경이 갔다"), 0, 0)]),
  ]
  for task, examples in cases:
    L = 24
    f = features.convert_examples(task, examples, tok, L, max_query_length=8).features[0]
    spec = features.feature_spec(task, L)
    proto = {}
    for name, value in f.items():
      flat = np.asarray(value).reshape(-1).tolist()
      proto[name] = (tf.train.Feature(float_list=tf.train.FloatList(value=flat))
                     if spec[name][0] == "float32" else
                     tf.train.Feature(int64_list=tf.train.Int64List(value=flat)))
    data = tf.train.Example(features=tf.train.Features(feature=proto)).SerializeToString()
    parsed = tf.io.parse_single_example(data, {
        name: tf.io.FixedLenFeature(shape, tf.as_dtype(dtype))
        for name, (dtype, shape) in spec.items()})
    for name in spec:
      np.testing.assert_allclose(parsed[name].numpy(), f[name], err_msg=f"{task} {name}")
