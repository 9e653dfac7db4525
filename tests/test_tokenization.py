"""Tokenization: the seed example, reference vs fast path on real lines, bad input."""
import csv
import json
import tarfile
import unicodedata

import numpy as np
import pytest

from model import tokenization
from model.tokenization import FastTokenizer, FullTokenizer, VocabError
from util import corpus

SEED = "[CLS] 한국어 ELECTRA를 공유합니다. [SEP]"


# ---------------------------------------------------------------- real lines


def _tsv(path, columns, n):
  out = []
  with open(path, encoding="utf-8", newline="") as f:
    for i, row in enumerate(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)):
      if i >= n:
        break
      out.extend(row[c] for c in columns if row.get(c))
  return out


def _first(it, n):
  out = []
  for x in it:
    out.append(x)
    if len(out) >= n:
      break
  return out


@pytest.fixture(scope="module")
def real_lines(data_dir):
  """About 6,000 real lines: the first rows of a dozen corpus and benchmark files."""
  d = data_dir
  lines = []
  lines += _first(corpus.iter_texts(sorted((d / "corpus/petitions").iterdir()),
                                    text_field="content"), 1200)
  lines += _first(corpus.iter_texts(d / "corpus/hate-speech-unlabeled"), 1000)
  lines += _first(corpus.iter_texts(d / "corpus/namuwikitext"), 500)
  lines += _tsv(d / "nsmc/derived/nsmc_pool_train.tsv", ["document"], 600)
  lines += _tsv(d / "kornli/xnli.dev.ko.tsv", ["sentence1", "sentence2"], 250)
  lines += _tsv(d / "korsts/sts-train.tsv", ["sentence1", "sentence2"], 250)
  lines += _tsv(d / "paws/dev_2k.tsv", ["sentence1", "sentence2"], 250)
  lines += _tsv(d / "question-pair/train.tsv", ["question1", "question2"], 250)
  lines += _tsv(d / "hate-speech/koelectra/train.tsv", ["title", "comment"], 250)
  with open(d / "kornli/klue/klue-nli-v1.1_dev.json", encoding="utf-8") as f:
    for ex in json.load(f)[:250]:
      lines += [ex["premise"], ex["hypothesis"]]
  with open(d / "korquad/derived/korquad_dev_handover.json", encoding="utf-8") as f:
    data = json.load(f)["data"]
  lines += [p["context"] for a in data for p in a["paragraphs"]][:200]
  lines += [q["question"] for a in data for p in a["paragraphs"] for q in p["qas"]][:250]
  assert len(lines) >= 5000
  return lines


@pytest.fixture(scope="module")
def more_real_lines(data_dir):
  """About 3,500 more: news sentences in Korean and English (Latin words, digits,
  quotes), NER sentences, the original hate-speech release (emoji, jamo, odd spaces)."""
  d = data_dir
  lines = []
  with tarfile.open(d / "corpus/korean-parallel/korean-english-park.dev.tar.gz") as tar:
    for member in ("korean-english-park.dev.ko", "korean-english-park.dev.en"):
      text = tar.extractfile(member).read().decode("utf-8")
      lines += [l for l in text.split("\n") if l.strip()][:800]
  lines += [row[0] for row in csv.reader(
      open(d / "naver-ner/derived/train_pool.tsv", encoding="utf-8", newline=""),
      delimiter="\t", quoting=csv.QUOTE_NONE)][:1000]
  lines += _tsv(d / "hate-speech/kocohub/labeled/train.tsv", ["comments"], 1000)
  assert len(lines) >= 3000
  return lines


@pytest.fixture(scope="module")
def v3_full(vocab_v3):
  return FullTokenizer(vocab_v3)


@pytest.fixture(scope="module")
def v3_reference_ids(v3_full, real_lines):
  return [v3_full.encode(line) for line in real_lines]


# ---------------------------------------------------------------- seed example


@pytest.mark.parametrize("cls", [FullTokenizer, FastTokenizer])
def test_seed_example_v3(cls, vocab_v3):
  tok = cls(vocab_v3)
  tokens = tok.tokenize(SEED)
  assert tokens == ["[CLS]", "한국어", "EL", "##EC", "##TRA", "##를", "공유", "##합니다",
                    ".", "[SEP]"]
  assert tok.convert_tokens_to_ids(tokens) == [2, 11229, 29173, 13352, 25541, 4110,
                                               7824, 17788, 18, 3]
  assert tok.convert_ids_to_tokens([2, 11229, 29173]) == ["[CLS]", "한국어", "EL"]


@pytest.mark.parametrize("cls", [FullTokenizer, FastTokenizer])
def test_seed_example_v1(cls, vocab_v1):
  tok = cls(vocab_v1)
  tokens = tok.tokenize(SEED)
  ids = dict(zip(tokens, tok.convert_tokens_to_ids(tokens)))
  assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
  assert {t: ids[t] for t in ["한국어", "##EC", "##를", "공유", "##합니다"]} == {
      "한국어": 18429, "##EC": 15229, "##를": 5689, "공유": 12622, "##합니다": 10690}
  assert ids["[CLS]"] == 2 and ids["[SEP]"] == 3


def test_build_tokenizer(vocab_v3):
  assert type(tokenization.build_tokenizer(vocab_v3)) is FastTokenizer
  assert type(tokenization.build_tokenizer(vocab_v3, fast=False)) is FullTokenizer


# ---------------------------------------------------------------- fast == reference


def test_fast_equals_reference_v3(vocab_v3, real_lines, v3_reference_ids):
  fast = FastTokenizer(vocab_v3)
  got = fast.encode_batch(real_lines[:3000]) + fast.encode_batch(real_lines[3000:])
  bad = [i for i, (a, b) in enumerate(zip(got, v3_reference_ids)) if a != b]
  assert not bad, f"{len(bad)} lines differ, first: {real_lines[bad[0]][:100]!r}"
  assert len(got) == len(real_lines)
  # Single-text calls agree too.
  for line, ids in zip(real_lines[:200], v3_reference_ids):
    assert fast.encode(line) == ids
    assert fast.tokenize(line) == fast.convert_ids_to_tokens(ids)


def test_fast_equals_reference_v1(vocab_v1, real_lines):
  full, fast = FullTokenizer(vocab_v1), FastTokenizer(vocab_v1, parallel=False)
  lines = real_lines[::2]  # half the lines keeps the suite inside its time budget
  want = [full.encode(l) for l in lines]
  got = fast.encode_batch(lines)
  bad = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
  assert not bad, f"{len(bad)} lines differ, first: {lines[bad[0]][:100]!r}"


def test_fast_equals_reference_more_sources(vocab_v3, v3_full, more_real_lines):
  fast = FastTokenizer(vocab_v3)
  got = fast.encode_batch(more_real_lines)
  want = [v3_full.encode(l) for l in more_real_lines]
  bad = [i for i, (a, b) in enumerate(zip(got, want)) if a != b]
  assert not bad, f"{len(bad)} lines differ, first: {more_real_lines[bad[0]][:100]!r}"
  assert len(got) == len(more_real_lines)


@pytest.mark.parametrize("parallel", [True, False])
def test_small_chunks_give_same_ids(vocab_v3, real_lines, v3_reference_ids, parallel):
  # 1,500-char passes: hundreds of chunks, some holding one text longer than a pass;
  # ids must not depend on where a batch is cut.
  lines = real_lines[:600]
  assert sum(len(l) > 1500 for l in lines) >= 3
  fast = FastTokenizer(vocab_v3, chunk_chars=1500, parallel=parallel)
  assert fast.encode_batch(lines) == v3_reference_ids[:600]
  assert fast.encode_batch(lines[::-1]) == v3_reference_ids[:600][::-1]


def test_hash_collisions_cost_probes_not_ids(tmp_path, vocab_v3, real_lines):
  """Every vocab piece in one probe chain (a hash that keeps 1 bit): lookups compare
  code points, so the ids stay the reference's."""
  from model import batch_wordpiece
  vocab = tmp_path / "vocab.txt"  # 3,000 tokens keep the chain's walks short enough
  vocab.write_text("\n".join(list(tokenization.load_vocab(vocab_v3))[:3000]) + "\n",
                   encoding="utf-8")
  full, fast = FullTokenizer(vocab), FastTokenizer(vocab, parallel=False)
  engine = fast._engine
  engine._shift = np.uint64(63)
  engine._table = batch_wordpiece._build(engine._piece_chars, engine._piece_start,
                                         engine._piece_len, engine._piece_cont,
                                         engine._shift, len(engine._table))
  used = len(engine._piece_len)
  assert (engine._table[:used] >= 0).all() and (engine._table[used:] < 0).all()  # one chain
  lines = real_lines[:200]
  assert fast.encode_batch(lines) == [full.encode(l) for l in lines]


@pytest.mark.parametrize("lower,strip", [(True, None), (True, False), (False, True)])
def test_fast_equals_reference_with_case_settings(vocab_v3, real_lines, lower, strip):
  kw = dict(do_lower_case=lower, strip_accents=strip, allow_korean_lowercase=True)
  full, fast = FullTokenizer(vocab_v3, **kw), FastTokenizer(vocab_v3, **kw)
  lines = real_lines[::12] + [
      "Ünïcödé ÇAFÉ naïve ΟΔΥΣΣΕΥΣ Σ. İstanbul ǅemal ŉ ẞ ﬁ",
      "한국어 ELECTRA를 [CLS] 공유합니다 [CLŚ] x[MASK]y",
      "é \u0301 \u0301\u0301 x\u0301 ́",  # words that strip to nothing: no ids
  ]
  assert fast.encode_batch(lines) == [full.encode(l) for l in lines]


def test_edge_cases_agree(vocab_v3, v3_full):
  fast = FastTokenizer(vocab_v3)
  cases = [
      "", "   ", "\t\n", "가" * 100, "가" * 101, "ab\x00cd", "공\u200b유", "\ufffd공유",
      "공유\u3000합니다\xa0요\u2028끝", "漢字와 한자", "𠀀𪜀𫝀𫠠𬺰 ex", "a[CLS]b[SEP]", "[CL\x00S]",
      "[cls] [MASK][MASK]", "$^`~|", "\x0b공\x0c유\x1c\x85끝", "\ue000공유 \U000f02ea제",
      "x" * 150 + ".", "😀😀", "한국", "é", "\u0301",
  ]
  for text in cases:
    assert fast.tokenize(text) == v3_full.tokenize(text), repr(text)
  assert fast.encode_batch(cases) == [v3_full.encode(t) for t in cases]
  assert fast.encode_batch([]) == []
  # A fresh tokenizer on a batch repeating them: misses and hits in one batch.
  big = cases * 3
  assert FastTokenizer(vocab_v3).encode_batch(big) == [v3_full.encode(t) for t in big]
  assert fast.encode("공유".encode("utf-8")) == v3_full.encode("공유")


# ---------------------------------------------------------------- reference behaviour


def test_reference_behaviour(v3_full):
  t = v3_full.tokenize
  assert t("") == [] and t(" \t\n ") == []
  assert t("가" * 101) == ["[UNK]"]            # over max_input_chars_per_word
  assert t("가" * 100)[0] != "[UNK]"
  assert t("공\x00유") == t("공유") == t("공\u200b유")  # control/format chars deleted
  assert t("공유\u3000합니다") == t("공유 합니다")      # Zs is whitespace
  assert t("[CLS]") == ["[CLS]"] and t("[MASK][MASK]") == ["[MASK]", "[MASK]"]
  assert t("[cls]")[0] == "["                  # only the exact special tokens stay whole
  assert t("[CL\x00S]")[0] == "["              # specials are matched before cleaning
  assert t("$^`") == ["$", "^", "`"]           # ASCII symbols count as punctuation
  assert t("漢字") == ["漢", "字"]              # CJK ideographs split apart
  # A word that WordPiece cannot cover becomes a single [UNK], not a partial piece.
  assert t("가\ue000나") == ["[UNK]"]


def test_reference_matches_independent_implementations(vocab_v3, real_lines, v3_reference_ids):
  """transformers' Python BertTokenizer and the stock tokenizer.json agree except where
  they knowingly differ from the original (NFC; all C* categories deleted)."""
  from tokenizers import Tokenizer
  from transformers import BertTokenizer

  def plain(line):
    return unicodedata.is_normalized("NFC", line) and not any(
        unicodedata.category(c) in ("Co", "Cn", "Cs") for c in line)

  slow = BertTokenizer(vocab_v3, do_lower_case=False)
  hub = Tokenizer.from_file(vocab_v3.replace("vocab.txt", "tokenizer.json"))
  idx = [i for i, l in enumerate(real_lines) if plain(l)][::3]
  assert len(idx) > 1500
  lines = [real_lines[i] for i in idx]
  hub_ids = [e.ids for e in hub.encode_batch(lines, add_special_tokens=False)]
  for i, line, h in zip(idx, lines, hub_ids):
    assert h == v3_reference_ids[i], line[:100]
  for i, line in list(zip(idx, lines))[:600]:
    assert slow.convert_tokens_to_ids(slow.tokenize(line)) == v3_reference_ids[i], line[:100]
  # ...and where they differ, the reference keeps private-use chars as the original does.
  assert v3_reference_ids and FullTokenizer(vocab_v3).tokenize("제\U000f02ea") == ["[UNK]"]
  assert hub.encode("제\U000f02ea", add_special_tokens=False).tokens == ["제"]


# ---------------------------------------------------------------- Korean lower-case pitfall


@pytest.mark.parametrize("cls", [FullTokenizer, FastTokenizer])
@pytest.mark.parametrize("kw", [dict(do_lower_case=True), dict(strip_accents=True),
                                dict(do_lower_case=True, strip_accents=False)])
def test_refuses_lowercasing_cased_korean_vocab(cls, kw, vocab_v3):
  with pytest.raises(tokenization.TokenizerConfigError) as e:
    cls(vocab_v3, **kw)
  assert "vocab.txt" in str(e.value) and "allow_korean_lowercase" in str(e.value)


def test_forced_lowercase_shows_the_damage(vocab_v3):
  tok = FullTokenizer(vocab_v3, do_lower_case=True, allow_korean_lowercase=True)
  tokens = tok.tokenize("한국어를 공유합니다")
  assert tokens == ["[UNK]", "[UNK]"]  # NFD jamo are not in a syllable vocab


def test_lowercase_allowed_for_uncased_vocab(tmp_path):
  vocab = tmp_path / "vocab.txt"
  vocab.write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "한국어",
                              "electra", "##를", "."]), encoding="utf-8")
  # Lower-casing without accent stripping keeps Hangul syllables intact.
  tok = FastTokenizer(vocab, do_lower_case=True, strip_accents=False)
  assert tok.tokenize("한국어 ELECTRA를.") == ["한국어", "electra", "##를", "."]
  ids = tok._engine.encode([tok._normalize("한국어 ELECTRA를.")])[0]  # the numpy path too
  assert tok.convert_ids_to_tokens(ids) == ["한국어", "electra", "##를", "."]
  with pytest.raises(tokenization.TokenizerConfigError):
    FullTokenizer(vocab, do_lower_case=True)  # strip_accents follows do_lower_case


# ---------------------------------------------------------------- bad vocab files


def _write(tmp_path, tokens, name="vocab.txt"):
  p = tmp_path / name
  p.write_text("\n".join(tokens) + "\n", encoding="utf-8")
  return str(p)


SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def test_load_vocab_ids_are_line_numbers(vocab_v1, vocab_v3):
  v1 = tokenization.load_vocab(vocab_v1)  # v1 has no final newline
  with open(vocab_v1, encoding="utf-8") as f:
    raw = f.read()
  assert not raw.endswith("\n") and len(v1) == raw.count("\n") + 1 == 32200
  assert list(v1)[-1] == raw.rsplit("\n", 1)[1]
  v3 = tokenization.load_vocab(vocab_v3)
  assert len(v3) == 35000 and v3["[PAD]"] == 0 and v3["[MASK]"] == 4


def test_duplicate_token_names_file_and_lines(tmp_path):
  path = _write(tmp_path, SPECIALS + ["가", "나", "가"])
  with pytest.raises(VocabError, match=r"vocab.txt:8: duplicate token '가' \(first at line 6\)"):
    tokenization.load_vocab(path)


def test_missing_specials_named(tmp_path):
  path = _write(tmp_path, ["[PAD]", "[UNK]", "[SEP]", "가"])
  with pytest.raises(VocabError) as e:
    FullTokenizer(path)
  assert path in str(e.value) and "[CLS]" in str(e.value) and "[MASK]" in str(e.value)
  assert "[SEP]" not in str(e.value).split("missing")[1].split("(")[0]


def test_missing_and_empty_vocab_lines(tmp_path):
  with pytest.raises(VocabError, match="not found: .*nope.txt"):
    FastTokenizer(str(tmp_path / "nope.txt"))
  path = _write(tmp_path, SPECIALS[:2] + [""] + SPECIALS[2:])
  with pytest.raises(VocabError, match=r"vocab.txt:3: empty token"):
    tokenization.load_vocab(path)


def test_unknown_token_and_id_conversion_errors(v3_full):
  with pytest.raises(KeyError, match="not in the vocab"):
    v3_full.convert_tokens_to_ids(["no-such-token"])
  with pytest.raises(KeyError):
    v3_full.convert_ids_to_tokens([10 ** 6])


def test_fast_tokenizer_threads_and_pickle(vocab_v3, real_lines, v3_reference_ids):
  import pickle
  import threading
  fast = FastTokenizer(vocab_v3)
  got = {}

  def work(k):
    got[k] = [fast.encode(line) for line in real_lines[k:1600:4]]

  threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
  for t in threads:
    t.start()
  for t in threads:
    t.join()
  for k in range(4):
    assert got[k] == v3_reference_ids[k:1600:4]
  clone = pickle.loads(pickle.dumps(fast))  # e.g. handed to multiprocessing workers
  assert clone.encode_batch(real_lines[1600:1800]) == v3_reference_ids[1600:1800]


def test_fast_tokenizer_in_forked_workers(vocab_v3, real_lines, v3_reference_ids):
  """The thread pool of a parent that tokenized is not inherited dead by a fork."""
  import multiprocessing
  fast = FastTokenizer(vocab_v3, chunk_chars=20000)  # several chunks: the pool is used
  assert fast.encode_batch(real_lines[:200]) == v3_reference_ids[:200]
  with multiprocessing.get_context("fork").Pool(2) as pool:
    got = pool.map(fast.encode_batch, [real_lines[200:300], real_lines[300:400]])
  assert got == [v3_reference_ids[200:300], v3_reference_ids[300:400]]


def test_char_class_cache_is_the_computed_table_and_survives_damage(tmp_path, monkeypatch):
  """The Unicode class ranges are cached on disk (start-up); what the cache gives equals
  the computation, a damaged cache is replaced, an unwritable place is not used."""
  computed = tokenization._compute_char_ranges()
  cache = tmp_path / "cache" / "char_ranges-test.json"
  monkeypatch.setattr(tokenization, "_ranges_cache_path", lambda: str(cache))
  for damage in (None, "{not json", '{"space": 5}', '{"space": []}', '[1, 2]'):
    if damage is not None:
      cache.write_text(damage, encoding="utf-8")
    tokenization._char_ranges.cache_clear()
    assert tokenization._char_ranges() == computed, damage
    assert json.loads(cache.read_text(encoding="utf-8")) == json.loads(json.dumps(computed))
  tokenization._char_ranges.cache_clear()
  assert tokenization._char_ranges() == computed  # read back from the cache
  blocker = tmp_path / "a_file"
  blocker.write_text("x")
  monkeypatch.setattr(tokenization, "_ranges_cache_path",
                      lambda: str(blocker / "sub" / "char_ranges.json"))
  tokenization._char_ranges.cache_clear()
  assert tokenization._char_ranges() == computed
  tokenization._char_ranges.cache_clear()
