"""KorQuAD features and decoding: gold spans through the whole path score 100."""
import json

import numpy as np
import pytest

from finetune import features
from finetune import postprocess
from finetune import predictions
from finetune import readers
from finetune import scorers
from finetune import span_features
from finetune import span_postprocess
from model import tokenization
from tests import finetune_data
from tests.conftest import shared_data_dir


@pytest.fixture(scope="module")
def tok(vocab_v3):
  return tokenization.FastTokenizer(vocab_v3)


@pytest.fixture(scope="module")
def korquad(tmp_path_factory, data_dir):
  tmp = tmp_path_factory.mktemp("korquad")
  text = (shared_data_dir() / finetune_data.KORQUAD_SHARED).read_bytes()
  finetune_data.write_task_file(tmp, "korquad", "KorQuAD_v1.0_dev.json", text)
  return readers.read_examples("korquad", tmp, "test")


def _gold_logits(fs):
  """Start/end logits peaked at each feature's gold positions ([CLS] when absent)."""
  n, L = len(fs.features), fs.max_seq_length
  start, end = np.zeros((n, L), np.float32), np.zeros((n, L), np.float32)
  for i, f in enumerate(fs.features):
    start[i, int(f["start_positions"])] = 10.0
    end[i, int(f["end_positions"])] = 10.0
  return {"start_logits": start, "end_logits": end}


def _expressible(tok, e):
  """Whether the first answer is a run of whole sub-tokens of its context words.

  Decoding picks sub-tokens, so an answer that ends inside a vocab piece ("봄" of
  the piece "봄의") cannot be predicted exactly by any model (docs/finetuning.md).
  """
  words = [i for w in e.doc_tokens[e.start_word:e.end_word + 1] for i in tok.encode(w)]
  answer = tok.encode(e.answers[0][0])
  return any(words[k:k + len(answer)] == answer for k in range(len(words)))


@pytest.mark.parametrize("L,stride,query", [(512, 128, 64), (96, 32, 24)])
def test_gold_spans_through_the_whole_path(tmp_path, korquad, tok, L, stride, query):
  examples = korquad.examples
  assert len(examples) == 610
  fs = features.convert_examples("korquad", examples, tok, L, doc_stride=stride,
                                 max_query_length=query)
  if L < 512:  # short windows: questions span several features
    assert len(fs.features) > 2 * len(examples)
  outputs = _gold_logits(fs)
  expressible = [_expressible(tok, e) for e in examples]
  has_unk = [tok.vocab["[UNK]"] in tok.encode(e.answers[0][0]) for e in examples]
  for mode in ("offsets", "bert"):
    preds = postprocess.decode("korquad", examples, fs, outputs, final_text=mode)
    for e, p, ok, unk in zip(examples, preds, expressible, has_unk):
      gold = e.answers[0][0]
      whole_words = " ".join(e.doc_tokens[e.start_word:e.end_word + 1])
      if ok and (mode == "offsets" or not unk):
        assert p == gold, (mode, e.qid)  # the exact characters of the context
      else:
        # The answer widened to whole sub-tokens (BERT: whole words around [UNK]).
        assert p != gold and gold in p and p in whole_words, (mode, e.qid, p)
    kept = [(e, p) for e, p, ok, unk in zip(examples, preds, expressible, has_unk)
            if ok and (mode == "offsets" or not unk)]
    scores = scorers.score("korquad", [e for e, _ in kept], [p for _, p in kept])
    assert scores["exact_match"] == 100.0 and scores["f1"] == 100.0
  assert sum(expressible) > 0.97 * len(examples)
  paths = predictions.write_predictions(tmp_path, "korquad", "test", 0, examples, preds)
  official = json.load(open(paths[1], encoding="utf-8"))
  assert official == {e.qid: p for e, p in zip(examples, preds)}
  dataset = json.load(open(shared_data_dir() / finetune_data.KORQUAD_SHARED,
                           encoding="utf-8"))
  by_id = scorers.korquad_scores_by_id(dataset, official)
  in_order = scorers.score("korquad", examples, preds)
  assert by_id == {k: in_order[k] for k in ("exact_match", "f1")}
  assert 97.0 < by_id["exact_match"] < 100.0
  lines = [json.loads(x) for x in open(paths[0], encoding="utf-8")]
  assert len(lines) == 610 and lines[0] == {"id": "6548850-0-0", "article": 0,
                                            "prediction": "1989년 2월 15일"}


def test_feature_layout_and_windows(korquad, tok):
  e = korquad.examples[0]
  L, stride, query_len = 64, 16, 12
  fs = features.convert_examples("korquad", [e], tok, L, doc_stride=stride,
                                 max_query_length=query_len)
  query = tok.encode(e.question)[:query_len]
  doc = [i for w in e.doc_tokens for i in tok.encode(w)]
  room = L - len(query) - 3
  windows = span_features.doc_windows(len(doc), room, stride)
  assert len(fs.features) == len(windows) > 1
  assert windows[0] == (0, room) and windows[1][0] == stride
  assert sum(windows[-1]) == len(doc)
  spec = features.feature_spec("korquad", L)
  for w, (f, (start, length)) in enumerate(zip(fs.features, windows)):
    assert {k: (str(v.dtype), v.shape) for k, v in f.items()} == spec
    expect = [2] + query + [3] + doc[start:start + length] + [3]
    assert f["input_ids"][:len(expect)].tolist() == expect
    assert f["segment_ids"][:len(expect)].tolist() == (
        [0] * (len(query) + 2) + [1] * (length + 1))
    assert int(f["feature_id"]) == w and int(f["example_id"]) == 0
    t2o = fs.spans.feature_maps(w, L)[0]
    assert (t2o[:len(query) + 2] == -1).all() and (t2o[len(expect) - 1:] == -1).all()
  # The answer "1989년 2월 15일" opens the context: window 0 holds it.
  f0 = fs.features[0]
  s, t = int(f0["start_positions"]), int(f0["end_positions"])
  assert s == len(query) + 2
  assert tok.convert_ids_to_tokens(f0["input_ids"][s:t + 1].tolist()) == tok.tokenize(
      "1989년 2월 15일")
  assert int(fs.features[-1]["start_positions"]) == 0  # not in the last window
  # Each document position has most context in exactly one window.
  owners = np.zeros(len(doc), int)
  for w, (start, length) in enumerate(windows):
    owners[start:start + length] += fs.spans.feature_maps(w, L)[1][
        len(query) + 2:len(query) + 2 + length]
  assert (owners == 1).all()


def test_answer_inside_a_word_is_tightened():
  # doc ids: "1989" "##년" "##에" as one whitespace token; the answer is "1989년".
  assert span_features.improve_answer_span([7, 11, 12, 13, 9], 1, 3, [11, 12]) == (1, 2)
  assert span_features.improve_answer_span([7, 11, 12], 1, 2, [99]) == (1, 2)


def test_max_context_prefers_the_centred_window():
  windows = [(0, 10), (4, 10), (8, 10)]
  owners = span_features.max_context_owners(windows, 18)
  assert owners[2] == 0
  assert owners[9] == 1   # window 1: 5 left, 4 right; window 2: 1 left
  assert owners[15] == 2
  # Brute force over the definition.
  for p in range(18):
    scores = [min(p - s, s + n - 1 - p) + 0.01 * n if s <= p < s + n else -1
              for s, n in windows]
    assert owners[p] == scores.index(max(scores))


@pytest.mark.parametrize("word,pieces", [
    ("(임수경)을", None),
    ("《CLICHÈ》를", ["《", "CLICHÈ", "》", "를"]),
    ("1989년에", None),
])
def test_piece_offsets_spell_the_word(tok, word, pieces):
  spans = span_features.piece_offsets(tok, word)
  ids = tok.encode(word)
  assert len(spans) == len(ids)
  texts = [word[a:b] for a, b in spans]
  assert "".join(texts) == word
  if pieces is not None:  # [UNK] spans its whole punctuation-split piece
    assert texts == pieces and "[UNK]" in tok.convert_ids_to_tokens(ids)
  else:  # "1989" "##년" "##에"-style pieces: each piece's text without "##"
    assert texts == [t[2:] if t.startswith("##") else t
                     for t in tok.convert_ids_to_tokens(ids)]


def test_fast_offsets_equal_the_reference_on_shared_contexts(korquad, tok):
  words = sorted({w for e in korquad.examples for w in e.doc_tokens})
  fast_used = 0
  for w, ids in zip(words, tok.encode_batch(words)):
    fast = span_features._offsets_from_pieces(w, ids, tok.inv_vocab)
    if fast is not None:
      fast_used += 1
      assert fast == span_features.piece_offsets(tok, w), w
  assert fast_used > 0.8 * len(words)


@pytest.mark.parametrize("pred,orig,expect", [
    ("1989년", "1989년에", "1989년"),          # sub-word answer cut from the word
    ("임수경", "(임수경)", "임수경"),           # punctuation split off by the tokenizer
    ("ELECTRA", "ELECTRA를", "ELECTRA"),
    ("missing", "임수경", "임수경"),            # not found: the whole span
])
def test_get_final_text(pred, orig, expect):
  assert span_postprocess.get_final_text(pred, orig, False) == expect


def test_koelectra_final_text_is_hugging_faces_decoding(korquad, tok, vocab_v3):
  """qa_final_text "koelectra" = Hugging Face's compute_predictions_logits step (slow
  tokenizer's convert_tokens_to_string, then get_final_text), which KoELECTRA's
  run_squad.py uses: a span starting mid-word returns the whole words."""
  from transformers import ElectraTokenizer
  from transformers.data.metrics.squad_metrics import get_final_text as hf_final_text
  hf = ElectraTokenizer(vocab_v3, do_lower_case=False)
  fs = features.convert_examples("korquad", korquad.examples, tok, 512, doc_stride=128,
                                 max_query_length=64)
  one = {}   # questions answered by a single feature: its span is the decoded one
  for i, f in enumerate(fs.features):
    one.setdefault(int(f["example_id"]), []).append(i)
  ids = [k for k, v in sorted(one.items()) if len(v) == 1][:150]
  examples = [korquad.examples[k] for k in ids]
  sub = features.convert_examples("korquad", examples, tok, 512, doc_stride=128,
                                  max_query_length=64)
  out = _gold_logits(sub)
  spans, shifted = [], 0
  for i, f in enumerate(sub.features):
    s, t = int(f["start_positions"]), int(f["end_positions"])
    if s < t and sub.spans.id_to_token[int(f["input_ids"][s + 1])].startswith("##"):
      out["start_logits"][i, s], out["start_logits"][i, s + 1] = 0.0, 10.0   # mid-word
      s, shifted = s + 1, shifted + 1
    spans.append((s, t))
  assert shifted >= 10
  got = {mode: postprocess.decode("korquad", examples, sub, out, final_text=mode)
         for mode in ("bert", "koelectra")}
  differ = 0
  for i, (e, (s, t)) in enumerate(zip(examples, spans)):
    t2o = sub.spans.feature_maps(i, 512)[0]
    pieces = [sub.spans.id_to_token[int(x)] for x in sub.features[i]["input_ids"][s:t + 1]]
    text = " ".join(hf.convert_tokens_to_string(pieces).strip().split())
    orig = " ".join(e.doc_tokens[t2o[s]:t2o[t] + 1])
    assert got["koelectra"][i] == hf_final_text(text, orig, False), e.qid
    differ += got["koelectra"][i] != got["bert"][i]
    if pieces[0].startswith("##"):
      assert got["koelectra"][i] == orig and got["bert"][i] in orig
  assert 0 < differ <= shifted


def test_decoding_picks_best_valid_span_across_features(korquad, tok):
  e = korquad.examples[0]  # "1989년 2월 15일": several sub-tokens
  assert len(tok.encode(e.answers[0][0])) > 1
  fs = features.convert_examples("korquad", [e], tok, 64, doc_stride=16,
                                 max_query_length=16)
  out = _gold_logits(fs)
  gold_feature = next(i for i, f in enumerate(fs.features) if int(f["start_positions"]))
  # A higher-scoring but invalid span (end before start) elsewhere is not chosen.
  other = (gold_feature + 1) % len(fs.features)
  s = int(np.flatnonzero(fs.spans.feature_maps(other, 64)[0] >= 0)[5])
  out["start_logits"][other, s] = 50.0
  out["end_logits"][other, s - 1] = 50.0
  assert postprocess.decode("korquad", [e], fs, out) == [e.answers[0][0]]
  # An answer longer than max_answer_length is not chosen either.
  short = postprocess.decode("korquad", [e], fs, out, max_answer_length=1)[0]
  assert short != e.answers[0][0] and len(tok.encode(short)) == 1
  nbest = span_postprocess.n_best([e], fs, out["start_logits"], out["end_logits"])[0]
  assert nbest[0] == e.answers[0][0] and len(nbest) == len(set(nbest)) <= 20


def test_query_too_long_for_length_is_an_error(korquad, tok):
  with pytest.raises(ValueError, match="no room for the context"):
    features.convert_examples("korquad", korquad.examples[:1], tok, 66,
                              max_query_length=64)
