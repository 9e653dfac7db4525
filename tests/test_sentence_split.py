"""pretrain/sentence_split.py: where it splits Korean text, and what the builder relies on."""
import json
import random

import pytest

from benchmarks import bench_sentence_split as bench
from model import tokenization
from tests.conftest import head_lines
from pretrain import sentence_split
from pretrain.sentence_split import split_sentences


def test_paragraph_splits_where_a_korean_reader_would():
  # Written for this test: quotes, a number with a decimal point and a percent sign,
  # a Korean date, Latin abbreviations, ellipses after an ending and after a
  # conjunction, a question inside a quotation, a parenthesis, endings without a
  # period, a comma used as a period, emoticons, and a missing space after a period.
  paragraph = (
      '한국은행은 기준금리를 3.5%로 올렸다고 2023. 1. 13. 발표했습니다. '
      '총재는 "물가가 아직 높다. 긴장을 늦출 수 없다."라고 말했다. '
      '시장에서는 "언제 내리나요?" 하고 묻는 목소리가 커졌습니다… '
      '그런데... 사실은 아무도 모릅니다. '
      'Mr. Kim은 U.S. 연준의 결정도 지켜봐야 한다고 했다(자세한 내용은 3.2절 참고). '
      '정말 그럴까요?! 두고 보면 알겠죠.. '
      '대출 이자가 또 오르네요 ㅠㅠ 걱정입니다. '
      '다들 힘내세요 이번 달만 버티면 됩니다,  월급날이 곧 옵니다.감사합니다')
  assert split_sentences(paragraph) == [
      '한국은행은 기준금리를 3.5%로 올렸다고 2023. 1. 13. 발표했습니다.',
      '총재는 "물가가 아직 높다. 긴장을 늦출 수 없다."라고 말했다.',
      '시장에서는 "언제 내리나요?" 하고 묻는 목소리가 커졌습니다…',
      '그런데... 사실은 아무도 모릅니다.',
      'Mr. Kim은 U.S. 연준의 결정도 지켜봐야 한다고 했다(자세한 내용은 3.2절 참고).',
      '정말 그럴까요?!',
      '두고 보면 알겠죠..',
      '대출 이자가 또 오르네요 ㅠㅠ',
      '걱정입니다.',
      '다들 힘내세요',
      '이번 달만 버티면 됩니다,',
      '월급날이 곧 옵니다.',
      '감사합니다',
  ]


@pytest.mark.parametrize("text,want", [
    ("", []),
    ("   ", []),
    ("한 문장입니다", ["한 문장입니다"]),
    ("1. 서론 2. 본론 3. 결론", ["1. 서론 2. 본론 3. 결론"]),      # list numbers
    ("가격은 1,000.5원이다. 끝.", ["가격은 1,000.5원이다.", "끝."]),
    ("필요 없어요 중요 주요 작물", ["필요 없어요", "중요 주요 작물"]),  # nouns in 요 stay
    ("왜 그러니까 그렇지", ["왜 그러니까 그렇지"]),             # -니까 "because"
    ("맞습니까 아닙니까 모르겠다", ["맞습니까", "아닙니까", "모르겠다"]),
    ("e.g. 예를 들면 이렇다.", ["e.g. 예를 들면 이렇다."]),
    ("(괄호가 닫히지 않은 문장입니다. 다음 문장.", ["(괄호가 닫히지 않은 문장입니다.", "다음 문장."]),
    ("...", ["..."]), ("?!?!", ["?!?!"]), ("ㅋㅋㅋ", ["ㅋㅋㅋ"]),
    ("좋아요~ 또 봐요~", ["좋아요~", "또 봐요~"]),
    ("2~3명이 왔다", ["2~3명이 왔다"]),
])
def test_small_cases(text, want):
  assert split_sentences(text) == want


def _pieces_of(text, sentences):
  """Whether the sentences are consecutive pieces of text with only whitespace between."""
  pos = 0
  for s in sentences:
    i = text.find(s, pos)
    if i < 0 or text[pos:i].strip():
      return False
    pos = i + len(s)
  return not text[pos:].strip()


def test_real_lines_keep_their_text_and_token_ids(data_dir, vocab_v3):
  """On real petitions and comments: no character is lost or moved, and the token ids
  of a line are the concatenation of its sentences' ids (the builder's "kept without
  splitting" count depends on it)."""
  lines = []
  with open(data_dir / "corpus/petitions/petitions_2019-05", encoding="utf-8") as f:
    for row in (next(f) for _ in range(60)):
      lines += [l.strip() for l in json.loads(row)["content"].splitlines() if l.strip()]
  lines += head_lines(data_dir / "corpus/hate-speech-unlabeled/unlabeled_comments_5.txt", 150)
  tok = tokenization.FullTokenizer(vocab_v3)
  split_lines = 0
  for line in lines:
    sentences = split_sentences(line)
    assert sentences == split_sentences(line)  # deterministic
    assert all(s and s == s.strip() for s in sentences)
    assert _pieces_of(line, sentences)
    ids = tok.convert_tokens_to_ids(tok.tokenize(line))
    assert [i for s in sentences for i in tok.convert_tokens_to_ids(tok.tokenize(s))] == ids
    split_lines += len(sentences) > 1
  assert split_lines > len(lines) // 4  # petitions are paragraphs: many lines split


def test_odd_input_never_raises_and_loses_nothing():
  rng = random.Random(0)
  alphabet = list('.?!…~"\'“”‘’()[]{}<>「」 ,;^ㅋㅎㅠ가다요니까죠임 \t') + ["습니다", "Mr.", "3.5"]
  for _ in range(3000):
    text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 40)))
    sentences = split_sentences(text)
    assert all(s and s == s.strip() for s in sentences)
    assert _pieces_of(text, sentences)
  long_line = "가나다 " * 20000  # no ending anywhere: one sentence, in linear time
  assert split_sentences(long_line) == [long_line.strip()]


def test_boundary_quality_on_the_labelled_samples(data_dir):
  """Boundary F1 against the hand labels (benchmarks/sentence_boundaries*.tsv)."""
  min_f1 = {"development": 0.95, "held-out": 0.9, "blind": 0.93}
  assert [name for name, _ in bench.LABELS] == list(min_f1)
  for name, path in bench.LABELS:
    rows = bench.load_labels(data_dir, path)
    assert len(rows) >= 20 and sum(len(gold) for _, _, gold in rows) >= 100
    precision, recall, f1, *_ = bench.score(rows, split_sentences)
    assert f1 >= min_f1[name], (name, precision, recall, f1)


def test_splitter_names():
  assert sentence_split.get_splitter("none")("  한 줄 그대로. 입니다 ") == ["한 줄 그대로. 입니다"]
  assert sentence_split.get_splitter("rules") is split_sentences
  with pytest.raises(sentence_split.SplitterError, match="one of none, rules, kiwi"):
    sentence_split.get_splitter("spacy")
