"""Readers on the first rows of the shared task files; every bad-input case named."""
import json
import shutil

import pytest

from finetune import readers
from finetune import tasks
from tests import finetune_data
from tests.conftest import shared_data_dir
from util import errors

# task -> (text_a column, text_b column, label column) in the shared files
COLUMNS = {"nsmc": (1, None, 2), "paws": (1, 2, 3), "kornli": (0, 1, 2),
           "korsts": (5, 6, 4), "question-pair": (0, 1, 2), "hate-speech": (1, None, 3)}


@pytest.mark.parametrize("task", sorted(COLUMNS))
def test_sentence_reader_on_shared_rows(tmp_path, data_dir, task):
  d, copied = finetune_data.layout(tmp_path, task, rows=64)
  spec = tasks.get_task(task)
  split = "train"
  res = readers.read_examples(task, d, split)
  examples = res.examples  # the whole file: no dev slice unless asked for
  assert res.skipped == []
  assert len(examples) == 64
  a, b, lab = COLUMNS[task]
  lines = copied[spec.files["train"][0]]
  for e in examples:
    cols = lines[e.line - 1].split("\t")  # line is 1-based, header is line 1
    assert e.text_a == cols[a]
    assert e.text_b == (cols[b] if b is not None else None)
    if spec.kind == tasks.REGRESSION:
      assert e.label == float(cols[lab])
    else:
      assert e.label == cols[lab] and e.label in spec.labels
  assert examples[0].line == 2 and examples[-1].line == 65


@pytest.mark.parametrize("task,shared,rows", [
    ("hate-speech", "hate-speech/koelectra/train.tsv", 7896),
    ("nsmc", "nsmc/derived/nsmc_pool_train.tsv", 10000),
    ("naver-ner", "naver-ner/derived/train_pool.tsv", 8891),
])
def test_whole_training_file_without_a_slice(tmp_path, data_dir, task, shared, rows):
  """Tasks without a dev file train on every row of the shared file, as KoELECTRA."""
  d = finetune_data.write_task_file(
      tmp_path, task, tasks.get_task(task).files["train"][0],
      (data_dir / shared).read_bytes())
  train = readers.read_examples(task, d, "train")
  assert len(train.examples) == rows and not train.skipped and not train.dev_slice
  assert "slice" not in train.summary()
  with pytest.raises(errors.UserError, match=r'no dev file .*"dev_slice_fraction": 0\.1'):
    readers.read_examples(task, d, "dev")
  sliced = readers.read_examples(task, d, "train", dev_fraction=0.1)
  assert len(sliced.examples) == rows - round(rows * 0.1)


def test_dev_slice_is_deterministic_and_disjoint(tmp_path, data_dir):
  d, _ = finetune_data.layout(tmp_path, "nsmc", rows=200)
  train = readers.read_examples("nsmc", d, "train", dev_fraction=0.1)
  dev = readers.read_examples("nsmc", d, "dev", dev_fraction=0.1)
  dev2 = readers.read_examples("nsmc", d, "dev", dev_fraction=0.1)
  train_lines = [e.line for e in train.examples]
  dev_lines = [e.line for e in dev.examples]
  assert dev_lines == [e.line for e in dev2.examples]
  assert dev.dev_slice == train.dev_slice == 0.1
  assert dev.summary() == ("nsmc dev: 20 examples from ratings_train.txt "
                           "(the 10% dev slice of it), 0 skipped")
  assert len(dev_lines) == 20 and len(train_lines) == 180
  assert not set(dev_lines) & set(train_lines)
  assert sorted(dev_lines + train_lines) == list(range(2, 202))
  assert dev_lines == sorted(dev_lines)  # file order
  # Not simply the first or last rows.
  assert dev_lines != list(range(2, 22)) and dev_lines != list(range(182, 202))


def test_dev_file_wins_over_slice(tmp_path, data_dir):
  d, copied = finetune_data.layout(tmp_path, "nsmc", rows=30)
  shutil.copy(tmp_path / "finetuning_data/nsmc/ratings_test.txt",
              tmp_path / "finetuning_data/nsmc/dev.tsv")
  assert len(readers.read_examples("nsmc", d, "train").examples) == 30
  dev = readers.read_examples("nsmc", d, "dev")
  assert dev.paths[0].endswith("dev.tsv") and len(dev.examples) == 30


def test_test_split_and_plain_names(tmp_path, data_dir):
  d, _ = finetune_data.layout(tmp_path, "nsmc", rows=10)
  res = readers.read_examples("nsmc", d, "test")
  assert res.paths[0].endswith("ratings_test.txt") and len(res.examples) == 10
  with pytest.raises(errors.UserError, match=r"no test file .*val\.tsv or test\.tsv"):
    finetune_data.layout(tmp_path, "hate-speech", rows=10)
    readers.read_examples("hate-speech", d, "test")
  with pytest.raises(errors.UserError, match=r"unknown split 'valid'"):
    readers.read_examples("nsmc", d, "valid")


def test_bom_and_crlf_read_the_same(tmp_path, data_dir):
  d, copied = finetune_data.layout(tmp_path, "paws", rows=20)
  plain = readers.read_examples("paws", d, "dev").examples
  text = "\r\n".join(copied["dev_2k.tsv"]) + "\r\n"
  finetune_data.write_task_file(tmp_path, "paws", "dev_2k.tsv", "\ufeff" + text)
  bom_crlf = readers.read_examples("paws", d, "dev").examples
  assert bom_crlf == plain and len(plain) == 20
  assert not any(e.label.endswith("\r") or e.text_b.endswith("\r") for e in plain)


def test_cp949_file_is_named_with_a_conversion_hint(tmp_path):
  text = "id\tdocument\tlabel\n1\t재미있는 영화\t1\n2\t지루하다\t0\n"
  d = finetune_data.write_task_file(tmp_path, "nsmc", "ratings_test.txt", text,
                                    encoding="cp949")
  with pytest.raises(errors.UserError) as e:
    readers.read_examples("nsmc", d, "test")
  msg = str(e.value)
  assert "ratings_test.txt:2: not UTF-8" in msg and "CP949" in msg and "iconv" in msg


@pytest.mark.parametrize("task,name,rows,pattern", [
    ("nsmc", "ratings_test.txt", "1\t좋다\t1\n2\t별로\n",
     r"ratings_test.txt:3: expected 3 tab-separated columns for nsmc, found 2"),
    ("kornli", "xnli.dev.ko.tsv", "a\tb\tneutral\na\tb\tneural\n",
     r"xnli.dev.ko.tsv:3: unknown label 'neural' .*contradiction, entailment, neutral"),
    ("korsts", "sts-dev.tsv", "g\tf\ty\t1\t4.5\ta\tb\ng\tf\ty\t2\tn/a\ta\tb\n",
     r"sts-dev.tsv:3: score 'n/a' is not a number"),
    ("korsts", "sts-dev.tsv", "g\tf\ty\t1\tnan\ta\tb\n", r"sts-dev.tsv:2: score 'nan'"),
    ("question-pair", "dev.tsv", "q1\tq2\t1\tx\n", r"dev.tsv:2: expected 3"),
    ("hate-speech", "val.tsv", "x\ty\tz\n", r"hate-speech header"),
])
def test_bad_rows_name_file_and_line(tmp_path, task, name, rows, pattern):
  header = {"nsmc": "id\tdocument\tlabel", "kornli": "s1\ts2\tgold_label",
            "korsts": "genre\tfilename\tyear\tid\tscore\ts1\ts2",
            "question-pair": "question1\tquestion2\tis_duplicate",
            "hate-speech": "comments\tcontain_gender_bias\tbias\thate"}[task]
  d = finetune_data.write_task_file(tmp_path, task, name, header + "\n" + rows)
  split = "test" if name in ("ratings_test.txt", "val.tsv") else "dev"
  with pytest.raises(errors.UserError, match=pattern):
    readers.read_examples(task, d, split)


def test_empty_pair_side_and_blank_line_are_skipped_with_reasons(tmp_path):
  # KoELECTRA's processors skip a side equal to "" only: one of spaces is kept.
  rows = ("id\tsentence1\tsentence2\tlabel\n1\t가\t나\t1\n2\t\t나\t0\n\n"
          "4\t가\t\t1\n5\t다\t라\t0\n6\t \t나\t1\n")
  d = finetune_data.write_task_file(tmp_path, "paws", "dev_2k.tsv", rows)
  res = readers.read_examples("paws", d, "dev")
  assert [e.line for e in res.examples] == [2, 6, 7]
  assert res.examples[-1].text_a == " "
  assert [(s.line, s.reason) for s in res.skipped] == [
      (3, "empty first sentence (KoELECTRA skips it)"), (4, "empty line"),
      (5, "empty second sentence (KoELECTRA skips it)")]
  assert str(res.skipped[0]) == "dev_2k.tsv line 3: empty first sentence (KoELECTRA skips it)"
  assert res.summary(max_skipped=2).splitlines() == [
      "paws dev: 3 examples from dev_2k.tsv, 3 skipped",
      "  skipped dev_2k.tsv line 3: empty first sentence (KoELECTRA skips it)",
      "  skipped dev_2k.tsv line 4: empty line",
      "  ... and 1 more"]


def test_kornli_keeps_an_empty_side_as_koelectra(tmp_path):
  d = finetune_data.write_task_file(tmp_path, "kornli", "xnli.dev.ko.tsv",
                                    "s1\ts2\tgold_label\n가\t\tneutral\n")
  res = readers.read_examples("kornli", d, "dev")
  assert [(e.text_a, e.text_b) for e in res.examples] == [("가", "")] and not res.skipped


def test_kornli_adds_snli_only_when_asked(tmp_path, data_dir):
  d, copied = finetune_data.layout(tmp_path, "kornli", rows=8)
  snli = ["s1\ts2\tgold_label", "개가 뛴다\t동물이 움직인다\tentailment"]
  finetune_data.write_task_file(tmp_path, "kornli", "snli_1.0_train.ko.tsv",
                                "\n".join(snli) + "\n")
  assert len(readers.read_examples("kornli", d, "train").examples) == 8
  both = readers.read_examples("kornli", d, "train", snli=True)
  assert len(both.examples) == 9
  assert both.examples[-1].source == "snli_1.0_train.ko.tsv" and both.examples[-1].line == 2
  with pytest.raises(errors.UserError, match="snli applies to kornli only"):
    readers.read_examples("paws", d, "train", snli=True)


def test_unknown_task_lists_valid_names_with_suggestion():
  with pytest.raises(errors.ConfigError) as e:
    tasks.get_task("korquard")
  assert "did you mean korquad?" in str(e.value)
  for name in tasks.TASK_NAMES:
    assert name in str(e.value)


def test_task_registry_data():
  assert tasks.TASK_NAMES == ("nsmc", "paws", "kornli", "korsts", "question-pair",
                              "hate-speech", "naver-ner", "korquad")
  assert len(tasks.NER_LABELS) == 29 and tasks.NER_LABELS[:3] == ("O", "PER-B", "PER-I")
  paws = tasks.get_task("paws")
  assert (paws.koelectra.num_train_epochs, paws.koelectra.train_batch_size_base,
          paws.koelectra.train_batch_size_small, paws.koelectra.learning_rate) == (15, 32, 64, 3e-5)
  assert tasks.get_task("kornli").koelectra.train_batch_size_small == 128
  assert tasks.get_task("korsts").published["base-v3"] == {"spearman": 85.53}
  assert tasks.get_task("korquad").published["small-v3"] == {"exact_match": 82.11, "f1": 91.13}
  assert tasks.get_task("korsts").num_labels == 1
  assert tasks.get_task("hate-speech").labels == ("none", "offensive", "hate")


# ---------------------------------------------------------------------------
# Naver NER


def test_ner_reader_on_shared_rows(tmp_path, data_dir):
  d, copied = finetune_data.layout(tmp_path, "naver-ner", rows=100)
  train = readers.read_examples("naver-ner", d, "train", dev_fraction=0.1)
  dev = readers.read_examples("naver-ner", d, "dev", dev_fraction=0.1)
  assert len(train.examples) == 90 and len(dev.examples) == 10
  lines = copied["train.tsv"]
  for e in train.examples + dev.examples:
    words, tags = lines[e.line - 1].split("\t")  # no header: line 1 is the first row
    assert e.words == words.split() and e.tags == tags.split()
    assert len(e.words) == len(e.tags)


@pytest.mark.parametrize("row,pattern", [
    ("가 나 다\tO O\n", r"train.tsv:2: 3 words but 2 tags"),
    ("가 나\tO PER-X\n", r"train.tsv:2: unknown tag 'PER-X'"),
    ("가 나 O O\n", r"train.tsv:2: expected 'words<TAB>tags'"),
])
def test_ner_bad_rows(tmp_path, row, pattern):
  d = finetune_data.write_task_file(tmp_path, "naver-ner", "train.tsv",
                                    "철수 가다\tPER-B O\n" + row)
  with pytest.raises(errors.UserError, match=pattern):
    readers.read_examples("naver-ner", d, "train")


# ---------------------------------------------------------------------------
# KorQuAD


def _korquad(tmp_path, name="KorQuAD_v1.0_dev.json", mutate=None):
  data = json.loads((shared_data_dir() / finetune_data.KORQUAD_SHARED).read_text("utf-8"))
  if mutate:
    mutate(data)
  return finetune_data.write_task_file(tmp_path, "korquad", name,
                                       json.dumps(data, ensure_ascii=False, indent=1))


def test_korquad_reader_counts_and_spans(tmp_path, data_dir):
  d = _korquad(tmp_path)
  res = readers.read_examples("korquad", d, "test")
  assert len(res.examples) == 610 and res.skipped == []
  assert len({e.article for e in res.examples}) == 20
  first = res.examples[0]
  assert first.qid == "6548850-0-0" and first.answers == [("1989년 2월 15일", 0)]
  for e in res.examples:
    text, start = e.answers[0]
    words = " ".join(e.doc_tokens[e.start_word:e.end_word + 1])
    assert " ".join(text.split()) in words


def test_korquad_train_dev_slice_by_article(tmp_path, data_dir):
  d = _korquad(tmp_path, name="KorQuAD_v1.0_train.json")
  train = readers.read_examples("korquad", d, "train", dev_fraction=0.1)
  dev = readers.read_examples("korquad", d, "dev", dev_fraction=0.1)
  assert len({e.article for e in dev.examples}) == 2
  assert not {e.article for e in dev.examples} & {e.article for e in train.examples}
  assert len(train.examples) + len(dev.examples) == 610


def _first_qa(data):
  return data["data"][0]["paragraphs"][0]["qas"][0]


def test_korquad_bad_answer_is_an_error_or_a_counted_skip(tmp_path, data_dir):
  def shift(data):
    _first_qa(data)["answers"][0]["answer_start"] = 3
  d = _korquad(tmp_path, mutate=shift)
  with pytest.raises(errors.UserError,
                     match=r"article 0, question 6548850-0-0: answer '1989년 2월 15일' "
                           r"does not match the context at answer_start 3"):
    readers.read_examples("korquad", d, "test")
  res = readers.read_examples("korquad", d, "test", skip_bad_answers=True)
  assert len(res.examples) == 609 and len(res.skipped) == 1
  assert res.skipped[0].qid == "6548850-0-0"


@pytest.mark.parametrize("mutate,pattern", [
    (lambda data: _first_qa(data)["answers"][0].update(answer_start=10 ** 6),
     r"question 6548850-0-0: answer .* ends past the context"),
    (lambda data: _first_qa(data).update(answers=[]),
     r"question 6548850-0-0: a training question without answers"),
    (lambda data: data["data"][1]["paragraphs"][0].pop("context"),
     r"article 1: missing or malformed field 'context'"),
])
def test_korquad_bad_input(tmp_path, data_dir, mutate, pattern):
  d = _korquad(tmp_path, name="KorQuAD_v1.0_train.json", mutate=mutate)
  with pytest.raises(errors.UserError, match=pattern):
    readers.read_examples("korquad", d, "train")


def test_korquad_malformed_json_names_line(tmp_path):
  d = finetune_data.write_task_file(tmp_path, "korquad", "KorQuAD_v1.0_dev.json",
                                    '{"data": [\n {"paragraphs": [}\n]}')
  with pytest.raises(errors.UserError, match=r"KorQuAD_v1.0_dev.json:2: malformed JSON"):
    readers.read_examples("korquad", d, "test")
