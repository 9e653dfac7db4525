"""The vocab builder on real Korean text: layout, casing, Mecab recipe, report, bad input."""
import gzip
import json
import os
import unicodedata

import pytest

from model.tokenization import FastTokenizer
from tests.conftest import head_lines
from vocab import build_vocab
from vocab import mecab_pretokenize
from vocab import sentencepiece_vocab

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _read_vocab(path):
  with open(path, encoding="utf-8") as f:
    return f.read().splitlines()


@pytest.fixture(scope="module")
def corpus_dir(data_dir, tmp_path_factory):
  """2000 news comments + 600 wiki lines (Latin capitals) + 40 petitions (JSON lines)."""
  d = tmp_path_factory.mktemp("corpus")
  c = data_dir / "corpus"
  comments = head_lines(c / "hate-speech-unlabeled" / "unlabeled_comments_5.txt", 2000)
  wiki = head_lines(c / "namuwikitext" / "namuwikitext_20200302.train.sample", 600)
  (d / "comments.txt").write_text("\n".join(comments) + "\n", encoding="utf-8")
  (d / "wiki.txt").write_text("\n".join(wiki) + "\n", encoding="utf-8")
  (d / "petitions.jsonl").write_text(
      "\n".join(head_lines(c / "petitions" / "petitions_2017-08", 40)) + "\n", encoding="utf-8")
  return d


def _build(corpus, out, *extra, vocab_size=2600, alphabet=1000, unused=20):
  args = ["--corpus", *map(str, corpus), "--output-dir", str(out), "--quiet",
          "--vocab-size", str(vocab_size), "--limit-alphabet", str(alphabet),
          "--unused", str(unused), *map(str, extra)]
  assert build_vocab.main(args) == 0
  with open(out / "vocab_report.json", encoding="utf-8") as f:
    return _read_vocab(out / "vocab.txt") if (out / "vocab.txt").exists() else None, json.load(f)


@pytest.fixture(scope="module")
def wordpiece(corpus_dir, tmp_path_factory):
  out = tmp_path_factory.mktemp("wp")
  return _build([corpus_dir], out, "--text-field", "content") + (out,)


@pytest.fixture(scope="module")
def mecab_vocab(corpus_dir, tmp_path_factory):
  out = tmp_path_factory.mktemp("mecab")
  return _build([corpus_dir / "comments.txt", corpus_dir / "wiki.txt"], out,
                "--pretokenize", "mecab") + (out,)


def test_typed_options_build_what_the_command_line_builds(wordpiece, corpus_dir, tmp_path):
  """build_vocab(VocabOptions) is the CLI without an argv list: same vocab, same counts;
  the CLI's defaults are the dataclass's, and bad values fail when the options are made."""
  tokens, rep, _ = wordpiece
  options = build_vocab.VocabOptions(corpus=[corpus_dir], output_dir=tmp_path / "typed",
                                     text_field="content", vocab_size=2600,
                                     limit_alphabet=1000, unused=20, quiet=True)
  typed = build_vocab.build_vocab(options)
  assert _read_vocab(tmp_path / "typed" / "vocab.txt") == tokens
  assert typed["corpus"] == rep["corpus"] and typed["settings"] == rep["settings"]
  parsed = build_vocab.parse_args(["--corpus", "c", "--output-dir", "o"])
  assert parsed == build_vocab.VocabOptions(corpus=("c",), output_dir="o")
  with pytest.raises(build_vocab.VocabError, match="--unused must be >= 0"):
    build_vocab.VocabOptions(corpus="c", output_dir="o", unused=-1)


def test_layout_matches_koelectra(wordpiece, vocab_v1, vocab_v3):
  tokens, rep, _ = wordpiece
  for real, n_unused in ((_read_vocab(vocab_v1), 200), (_read_vocab(vocab_v3), 1000)):
    assert real[:5] == SPECIALS  # the layout we copy: specials first ...
    assert real[-n_unused:] == [f"[unused{i}]" for i in range(n_unused)]  # ... unused last
  assert tokens[:5] == SPECIALS
  assert tokens[-20:] == [f"[unused{i}]" for i in range(20)]
  assert len(tokens) == 2600 + 20 == rep["vocab"]["vocab_size"]
  assert len(set(tokens)) == len(tokens)
  assert not any(t.startswith("[unused") for t in tokens[:-20])


def test_cased_and_composed_hangul(wordpiece, corpus_dir):
  tokens, _, _ = wordpiece
  raw = "".join(p.read_text(encoding="utf-8") for p in corpus_dir.iterdir())
  vocab = set(tokens)
  assert {"F", "N", "M"} <= vocab  # capitals from the wiki text are kept, not lowercased
  assert any(any(c.isupper() for c in t) and len(t.strip("#")) > 1 for t in tokens)
  hangul = [t for t in tokens if any("\uac00" <= c <= "\ud7a3" for c in t)]
  assert len(hangul) > 1000
  jamo = {c for t in tokens for c in t if "\u1100" <= c <= "\u11ff"}
  assert jamo <= set(raw)  # only jamo written as such: no NFD decomposition (strip_accents off)
  assert all(unicodedata.normalize("NFC", t) == t for t in hangul)


def test_json_lines_and_plain_text_mixed(wordpiece, corpus_dir):
  _, rep, _ = wordpiece
  assert rep["corpus"]["files"] == 3 and rep["corpus"]["json_files"] == 1
  # Petition text lines were read from the `content` field, not the JSON syntax.
  pet_lines = sum(
      len([l for l in json.loads(row)["content"].splitlines() if l.strip()])
      for row in (corpus_dir / "petitions.jsonl").read_text(encoding="utf-8").splitlines())
  assert rep["corpus"]["lines"] == 2000 + 600 + pet_lines
  assert rep["corpus"]["skipped_bad_json"] == 0


def test_report_consistent_with_recount(wordpiece, corpus_dir):
  tokens, rep, out = wordpiece
  # Recompute the held-out slice: every 100th text line, files in sorted order.
  lines = []
  for name in ("comments.txt", "petitions.jsonl", "wiki.txt"):
    text = (corpus_dir / name).read_text(encoding="utf-8").splitlines()
    if name.endswith(".jsonl"):
      text = [l.strip() for row in text for l in json.loads(row)["content"].splitlines()]
    lines.extend(l.strip() for l in text if l.strip())
  heldout = lines[99::100]
  assert rep["corpus"]["heldout_lines"] == len(heldout)
  assert rep["corpus"]["train_lines"] == len(lines) - len(heldout)
  tok = FastTokenizer(str(out / "vocab.txt"))
  ids = [tok.encode(t) for t in heldout]
  n_tok = sum(map(len, ids))
  n_unk = sum(i == tokens.index("[UNK]") for x in ids for i in x)
  n_words = sum(len(t.split()) for t in heldout)
  h = rep["eval"]["heldout"]
  assert (h["lines"], h["tokens"], h["unk_tokens"], h["words"]) == (
      len(heldout), n_tok, n_unk, n_words)
  assert h["unk_ratio"] == pytest.approx(n_unk / n_tok)
  assert h["tokens_per_word"] == pytest.approx(n_tok / n_words)
  assert rep["vocab"]["alphabet_size"] == sum(
      1 for t in tokens if len(t) == 1)
  assert rep["vocab"]["unused_tokens"] == 20
  assert rep["eval_tokenizer"] == "model.tokenization.FastTokenizer"


def test_same_corpus_same_vocab(tmp_path, corpus_dir):
  # tokenizers alone breaks ties by hash-map order; our feed makes runs reproducible.
  a, _ = _build([corpus_dir / "wiki.txt"], tmp_path / "a", vocab_size=1500, alphabet=600)
  b, _ = _build([corpus_dir / "wiki.txt"], tmp_path / "b", vocab_size=1500, alphabet=600)
  assert a == b and len(a) == 1520


def test_mecab_splitter_and_marking():
  s = mecab_pretokenize.MorphemeSplitter()
  assert s.split("공유합니다") == ["공유", "합니다"]
  assert s.split("ELECTRA를") == ["ELECTRA", "를"]
  marked = mecab_pretokenize.mark_continuation("합니다")
  assert marked != "합니다" and mecab_pretokenize.decode_token(marked) == "##합니다"
  assert mecab_pretokenize.decode_token("##합") == "##합"


def test_mecab_learns_particles_as_continuations(mecab_vocab, wordpiece):
  tokens, rep, out = mecab_vocab
  assert tokens[:5] == SPECIALS and len(tokens) == 2620
  assert tokens[-20:] == [f"[unused{i}]" for i in range(20)]
  vocab = set(tokens)
  assert {"##를", "##은", "##는", "##이", "##가"} <= vocab
  assert not any(mecab_pretokenize.is_cont_char(c) for t in tokens for c in t)
  # Words that are noun+particle come out split at the morpheme boundary.
  tok = FastTokenizer(str(out / "vocab.txt"))
  assert tok.tokenize("드라마를") == ["드라마", "##를"]
  # Morpheme-aware pieces: more continuation pieces that are whole Mecab morphemes.
  wp_tokens = wordpiece[0]
  particles = {"##를", "##은", "##는", "##이", "##가", "##에", "##의", "##도", "##고", "##다"}
  assert len(particles & vocab) >= len(particles & set(wp_tokens))
  assert rep["training"]["unique_words"] > 1000


def test_bad_inputs_fail_cleanly(tmp_path, capsys, corpus_dir):
  out = tmp_path / "out"
  empty = tmp_path / "empty.txt"
  empty.write_bytes(b"\n\n")
  latin1 = tmp_path / "latin1.txt"
  latin1.write_bytes("caf\u00e9 na\u00efve\n".encode("latin-1") * 3)
  whole = gzip.compress((corpus_dir / "comments.txt").read_bytes())
  truncated = tmp_path / "truncated.txt.gz"
  truncated.write_bytes(whole[:len(whole) // 2])
  cases = [
      (["--corpus", str(truncated)], "cannot read corpus file " + str(truncated)),
      (["--corpus", str(tmp_path / "missing.txt")], "missing.txt"),
      (["--corpus", str(empty)], "empty.txt"),
      (["--corpus", str(latin1)], "latin1.txt:1: not UTF-8"),
      (["--corpus", str(corpus_dir / "petitions.jsonl")], "petitions.jsonl: looks like JSON"),
      (["--corpus", str(corpus_dir / "comments.txt"), "--vocab-size", "300"],
       "--vocab-size 300 is smaller than the specials and alphabet"),
      (["--corpus", str(corpus_dir / "comments.txt"), "--vocab-size", "300",
        "--pretokenize", "mecab"], "--vocab-size 300 is smaller"),
  ]
  for argv, expect in cases:
    rc = build_vocab.main(argv + ["--output-dir", str(out), "--quiet", "--vocab-size", "3000"]
                          if "--vocab-size" not in argv else
                          argv + ["--output-dir", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 2, argv
    assert expect in err and "Traceback" not in err, err
    assert not out.exists() or os.listdir(out) == [], os.listdir(out)


def test_undecodable_lines_are_skipped_and_counted(tmp_path, corpus_dir):
  lines = (corpus_dir / "comments.txt").read_bytes().splitlines()[:1500]
  mixed = tmp_path / "mixed.txt"
  bad = [b"\xff\xfe broken", b"caf\xe9"]
  mixed.write_bytes(b"\n".join(lines[:700] + bad + lines[700:]) + b"\n")
  _, rep = _build([mixed], tmp_path / "out", vocab_size=2600, alphabet=800)
  assert rep["corpus"]["skipped_undecodable"] == 2
  assert rep["corpus"]["lines"] == 1500
  assert rep["corpus"]["skipped_examples"][0].endswith("mixed.txt:701: not UTF-8")


def test_gzip_corpus(tmp_path, corpus_dir):
  gz = tmp_path / "comments.txt.gz"
  gz.write_bytes(gzip.compress((corpus_dir / "comments.txt").read_bytes()))
  tokens, rep = _build([gz], tmp_path / "out", vocab_size=2600, alphabet=800)
  plain, _ = _build([corpus_dir / "comments.txt"], tmp_path / "plain", vocab_size=2600,
                    alphabet=800)
  assert rep["corpus"]["lines"] == 2000 and tokens == plain


def test_eval_file_reported(tmp_path, corpus_dir, data_dir):
  ev = tmp_path / "nsmc_dev.txt"
  rows = head_lines(data_dir / "nsmc" / "derived" / "nsmc_pool_dev.tsv", 101)[1:]
  ev.write_text("\n".join(r.split("\t")[1] for r in rows) + "\n", encoding="utf-8")
  _, rep = _build([corpus_dir / "comments.txt"], tmp_path / "out", "--eval-file", ev,
                  vocab_size=2600, alphabet=800)
  e = rep["eval"][str(ev)]
  assert e["lines"] == 100 and e["tokens"] >= e["words"] > 0
  assert 0 <= e["unk_ratio"] < 0.2


def test_sentencepiece_model(tmp_path, corpus_dir):
  out = tmp_path / "sp"
  _, rep = _build([corpus_dir / "comments.txt"], out, "--model", "sentencepiece",
                  "--sp-model-type", "unigram", vocab_size=1500, unused=10)
  assert not (out / "vocab.txt").exists()  # its own model file, not a WordPiece vocab
  tok = sentencepiece_vocab.SentencePieceTokenizer(str(out / "sp.model"))
  pieces = sorted(tok.vocab, key=tok.vocab.get)
  assert pieces[:5] == SPECIALS and pieces[5] == "[unused0]"
  assert len(pieces) == rep["vocab"]["vocab_size"] <= 1510
  text = "이 드라마 너무 재밌어요"
  assert "".join(tok.tokenize(text)).replace("\u2581", " ").strip() == text
  assert tok.encode_batch([text])[0] == tok.encode(text)
  assert rep["model"] == "sentencepiece-unigram" and rep["eval"]["heldout"]["tokens"] > 0
