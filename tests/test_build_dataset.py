"""build_pretraining_dataset.py, pretrain/dataset_builder.py and pretrain/example_builder.py
on real shared text."""
import dataclasses
import json
import os
import random

import pytest

import build_pretraining_dataset as bpd
from model import tokenization
from pretrain import dataset_builder
from pretrain import dataset_units
from pretrain import example_builder
from pretrain.example_builder import SHARD_GLOB, SHARD_NAME
from pretrain.sentence_split import split_sentences
from util import corpus
from util import errors
from util import tfrecord_writer
from tests.conftest import head_lines

L = 128


def _write(path, lines):
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text("".join(l + "\n" for l in lines), encoding="utf-8")
  return path


@pytest.fixture(scope="session")
def small_corpus(data_dir, tmp_path_factory):
  """~650 real lines: news comments (one long document) and wiki text (blank lines
  between articles and sections, so many documents)."""
  d = tmp_path_factory.mktemp("corpus")
  _write(d / "a_comments.txt",
         head_lines(data_dir / "corpus/hate-speech-unlabeled/unlabeled_comments_5.txt", 250))
  wiki = (data_dir / "corpus/namuwikitext/namuwikitext_20200302.train.sample")
  with open(wiki, encoding="utf-8") as f:
    raw = [next(f).rstrip("\n") for _ in range(600)]
  _write(d / "b_wiki.txt", raw)
  return d


def _main(argv):
  """The CLI as the script runs it: a user error is one line and exit status 2."""
  return errors.run_main(bpd.main, argv)


def _build(corpus_dir, out, vocab, **options):
  return dataset_builder.build(dataset_builder.BuildOptions(corpus_dir, vocab, out, **options), progress=False)


@pytest.fixture(scope="module")
def ref_tok(vocab_v3):
  return tokenization.FullTokenizer(vocab_v3)


@pytest.fixture(scope="module")
def one_file_build(small_corpus, tmp_path_factory, vocab_v3):
  out = tmp_path_factory.mktemp("one")
  summary = _build(small_corpus, out, vocab_v3, num_processes=1, num_out_files=1,
                   max_seq_length=L, shuffle_window=0)
  shards = sorted(out.glob(SHARD_GLOB))
  return out, summary, shards


def _examples(shard):
  return [tfrecord_writer.decode_example(r) for r in tfrecord_writer.read_records(str(shard))]


def test_layout_and_tensorflow_reads_the_records(one_file_build, ref_tok):
  import tensorflow as tf
  out, summary, shards = one_file_build
  assert [s.name for s in shards] == [SHARD_NAME.format(0, 1)]
  spec = {k: tf.io.FixedLenFeature([L], tf.int64)
          for k in ("input_ids", "input_mask", "segment_ids")}
  cls, sep = ref_tok.vocab[tokenization.CLS], ref_tok.vocab[tokenization.SEP]
  n = 0
  two_segments = 0
  for record in tf.data.TFRecordDataset([str(s) for s in shards]):
    ex = {k: v.numpy().tolist() for k, v in tf.io.parse_single_example(record, spec).items()}
    ids, mask, seg = ex["input_ids"], ex["input_mask"], ex["segment_ids"]
    length = sum(mask)
    assert mask == [1] * length + [0] * (L - length)
    assert ids[length:] == [0] * (L - length) and seg[length:] == [0] * (L - length)
    assert ids[0] == cls and ids[length - 1] == sep
    seps = [i for i in range(length) if ids[i] == sep]
    assert len(seps) in (1, 2) and cls not in ids[1:length]
    a_end = seps[0]
    assert a_end >= 2  # segment A is never empty
    assert seg[:a_end + 1] == [0] * (a_end + 1)
    assert seg[a_end + 1:length] == [1] * (length - a_end - 1)
    if len(seps) == 2:
      assert seps[1] == length - 1 and seps[1] > a_end + 1  # B is never empty
      two_segments += 1
    n += 1
  assert n == summary["examples"] > 100
  assert two_segments == n - summary["single_segment_examples"] > 0


def test_tokens_in_order_and_trimmed_share(one_file_build, small_corpus, ref_tok):
  """Examples' tokens, read in order, are a subsequence of the corpus's tokens."""
  out, summary, shards = one_file_build
  corpus_ids = []
  for line in corpus.iter_corpus(small_corpus):
    if line is not None:
      corpus_ids.extend(ref_tok.convert_tokens_to_ids(ref_tok.tokenize(line)))
  cls, sep = ref_tok.vocab[tokenization.CLS], ref_tok.vocab[tokenization.SEP]
  written = []
  for ex in _examples(shards[0]):
    n = sum(ex["input_mask"])
    written.extend(i for i in ex["input_ids"][:n] if i not in (cls, sep))
  pos = 0
  for tok_id in written:  # greedy subsequence match
    while corpus_ids[pos] != tok_id:
      pos += 1
    pos += 1
  assert summary["tokens"] == len(corpus_ids)
  assert summary["tokens_written"] == len(written)
  assert summary["trimmed_share"] == pytest.approx(1 - len(written) / len(corpus_ids))
  assert 0 < summary["trimmed_share"] < 1
  unk = ref_tok.vocab[tokenization.UNK]
  assert summary["unk_ratio"] == pytest.approx(corpus_ids.count(unk) / len(corpus_ids))
  saved = json.loads((out / "summary.json").read_text())
  assert saved == json.loads(json.dumps(summary))


def test_same_seed_same_bytes_any_process_count(small_corpus, tmp_path, vocab_v3):
  runs = {}
  for name, procs, seed in (("a", 2, 7), ("b", 2, 7), ("c", 1, 7), ("d", 2, 8)):
    out = tmp_path / name
    _build(small_corpus, out, vocab_v3, num_processes=procs, num_out_files=3, seed=seed,
           unit_mb=0.02)
    runs[name] = [p.read_bytes() for p in sorted(out.glob(SHARD_GLOB))]
  assert len(runs["a"]) == 3
  assert runs["a"] == runs["b"] == runs["c"]
  assert runs["a"] != runs["d"]


def test_fast_and_reference_tokenizers_write_identical_shards(small_corpus, tmp_path,
                                                              vocab_v3):
  outs = []
  for mode in ("fast", "reference"):
    out = tmp_path / mode
    _build(small_corpus, out, vocab_v3, tokenizer=mode, num_out_files=1)
    outs.append((out / SHARD_NAME.format(0, 1)).read_bytes())
  assert outs[0] == outs[1]


def test_splitting_one_file_reads_every_document_once(data_dir, tmp_path):
  """Byte ranges cut anywhere: the aligned readers together yield the whole file."""
  wiki = data_dir / "corpus/namuwikitext/namuwikitext_20200302.dev.sample"
  raw = wiki.read_bytes()
  raw = raw[:raw.rfind(b"\n", 0, 60000)]
  # Real text plus the awkward cases: undecodable bytes, whitespace-only lines,
  # runs of blank lines, no final newline.
  raw = raw.replace(b"\n\n", b"\n \n\n", 3).replace(b"\n", b"\n\xff\xfe bad\n", 2)
  path = tmp_path / "wiki.txt"
  path.write_bytes(raw.rstrip(b"\n"))
  whole_stats = corpus.CorpusStats()
  whole = list(corpus.iter_file(str(path), stats=whole_stats))
  for parts in (7, 31):
    got, stats = [], corpus.CorpusStats()
    for pieces in corpus.split_ranges([str(path)], parts):
      for p, start, end in pieces:
        got.extend(corpus.iter_file(p, stats=stats, start=start, end=end, align_docs=True))
    assert got == whole
    # Same counts (mid-file readers name a byte offset instead of a line number).
    counts = lambda st: {k: v for k, v in st.as_dict().items() if k != "skipped_examples"}
    assert counts(stats) == counts(whole_stats)
  assert whole_stats.skipped_undecodable == 2 and whole_stats.documents > 20
  # A bound on reading past a boundary: long documents are cut (more documents), but
  # every line is still read exactly once, in order.
  # The news comments have no blank line: the whole file is one document.
  comments = tmp_path / "comments.txt"
  comments.write_text("\n".join(head_lines(
      data_dir / "corpus/hate-speech-unlabeled/unlabeled_comments_5.txt", 500)) + "\n",
      encoding="utf-8")
  for path in (path, comments):
    whole_stats = corpus.CorpusStats()
    lines = [l for l in corpus.iter_file(str(path), stats=whole_stats) if l is not None]
    for parts, overrun in ((7, 300), (31, 300), (31, 1000), (31, 5000)):
      got, stats = [], corpus.CorpusStats()
      for pieces in corpus.split_ranges([str(path)], parts):
        for p, start, end in pieces:
          got.extend(corpus.iter_file(p, stats=stats, start=start, end=end, align_docs=True,
                                      max_overrun=overrun))
      assert [l for l in got if l is not None] == lines
      assert counts(stats)["documents"] > whole_stats.documents
      assert {k: v for k, v in counts(stats).items() if k != "documents"} == \
          {k: v for k, v in counts(whole_stats).items() if k != "documents"}


def test_builder_probabilities_match_the_original(ref_tok):
  """One-token sentences make the split points deterministic except for the draws:
  10% single-segment examples, 5% random target lengths (original constants)."""
  ids = ref_tok.convert_tokens_to_ids(ref_tok.tokenize("한국어 문장을 토큰으로 나눕니다"))
  builder = example_builder.ExampleBuilder(L, random.Random(0))
  single = short = n = 0
  while n < 3000:
    target = builder._target_length  # the target of the example being gathered
    ex = builder.add_sentence([ids[n % len(ids)]])
    if ex:
      first, second = ex
      n += 1
      single += not second
      short += target < L
      # Trimmed to L - 2 tokens for [CLS] A [SEP], to L - 3 with a B segment.
      assert len(first) + len(second) == min(target, L - 3 if second else L - 2)
      if second:  # A aims at (target - 3) // 2: it stops one short, or takes one more (50%)
        assert len(first) in ((target - 3) // 2 - 1, (target - 3) // 2)
  assert 0.085 < single / n < 0.115
  assert 0.035 < short / n < 0.065


def test_sentence_order_fix_changes_only_placement(ref_tok, data_dir):
  lines = head_lines(data_dir / "corpus/hate-speech-unlabeled/unlabeled_comments_5.txt", 400)
  sentences = [ref_tok.convert_tokens_to_ids(ref_tok.tokenize(l)) for l in lines]
  outs = {}
  for original in (False, True):
    b = example_builder.ExampleBuilder(64, random.Random(3), original_sentence_order=original)
    outs[original] = [ex for s in sentences for ex in [b.add_sentence(s)] if ex]
  # The random draws are the same, so the examples gather the same sentences.
  assert len(outs[False]) == len(outs[True]) > 50
  differ = 0
  for (a1, b1), (a2, b2) in zip(outs[False], outs[True]):
    if len(a1 + b1) < 61 and len(a2 + b2) < 61:  # nothing trimmed in either
      assert sorted(a1 + b1) == sorted(a2 + b2)
    differ += (a1, b1) != (a2, b2)
  assert differ > 0  # the original really does reorder sentences on this text


def test_resume_after_interruption(small_corpus, tmp_path, vocab_v3):
  ref = tmp_path / "ref"
  _build(small_corpus, ref, vocab_v3, num_out_files=3, unit_mb=0.02)
  out = tmp_path / "out"
  _build(small_corpus, out, vocab_v3, num_out_files=3, unit_mb=0.02)
  # Interrupted run: the last shard never got its final name, no summary yet.
  last = out / SHARD_NAME.format(2, 3)
  last.rename(out / (".tmp-1234abcd-" + SHARD_NAME.format(2, 3)))
  (out / "summary.json").unlink()
  first = out / SHARD_NAME.format(0, 3)
  mtime = first.stat().st_mtime_ns
  # The complete shards' manifests as the builder wrote them before it counted sentences:
  # a build started with that version resumes with this one.
  for manifest in (out / ".build").glob("shard-*.json"):
    record = json.loads(manifest.read_text())
    for key in ("sentences", "empty_sentences", "split_errors", "long_sentences_cut",
                "tokens_written_unsplit"):
      del record[key]
    manifest.write_text(json.dumps(record))
  summary = _build(small_corpus, out, vocab_v3, num_out_files=3, unit_mb=0.02)
  assert summary["resumed_shards"] == 2
  assert first.stat().st_mtime_ns == mtime  # complete shards are not rebuilt
  assert not list(out.glob(".tmp-*"))
  for p in sorted(ref.glob(SHARD_GLOB)):
    assert (out / p.name).read_bytes() == p.read_bytes()
  ref_summary = json.loads((ref / "summary.json").read_text())
  for k in ("examples", "tokens", "documents", "lines", "tokens_trimmed", "kept_share",
            "kept_share_unsplit"):
    assert summary[k] == ref_summary[k]


def test_existing_shards_refused_unless_overwrite(small_corpus, tmp_path, capsys, vocab_v3):
  out = tmp_path / "out"
  _build(small_corpus, out, vocab_v3, num_out_files=1)
  argv = ["--corpus-dir", str(small_corpus), "--vocab-file", vocab_v3, "--output-dir",
          str(out), "--no-progress", "--num-out-files", "1"]
  assert _main(argv) == 2
  assert "already holds" in capsys.readouterr().err
  assert _main(argv + ["--max-seq-length", "64"]) == 2  # another build's shards
  assert "--overwrite" in capsys.readouterr().err
  assert _main(argv + ["--overwrite", "--max-seq-length", "64"]) == 0
  assert json.loads((out / "summary.json").read_text())["options"]["max_seq_length"] == 64


def test_bad_input_messages(small_corpus, tmp_path, capsys, vocab_v3):
  def run(*argv):
    code = _main([*map(str, argv), "--no-progress"])
    return code, capsys.readouterr()

  code, cap = run("--corpus-dir", tmp_path / "nope", "--vocab-file", vocab_v3,
                  "--output-dir", tmp_path / "o1")
  assert code == 2 and "not found" in cap.err and "nope" in cap.err
  (tmp_path / "emptydir").mkdir()
  code, cap = run("--corpus-dir", tmp_path / "emptydir", "--vocab-file", vocab_v3,
                  "--output-dir", tmp_path / "o2")
  assert code == 2 and "no corpus files" in cap.err
  (tmp_path / "empties").mkdir()
  (tmp_path / "empties/a.txt").write_text("")
  code, cap = run("--corpus-dir", tmp_path / "empties", "--vocab-file", vocab_v3,
                  "--output-dir", tmp_path / "o3")
  assert code == 2 and "empty" in cap.err
  # A vocab without the special tokens.
  bad_vocab = tmp_path / "vocab.txt"
  bad_vocab.write_text("\n".join(l for l in open(vocab_v3, encoding="utf-8").read().split("\n")
                                 if l and l not in (tokenization.CLS, tokenization.SEP)) + "\n")
  code, cap = run("--corpus-dir", small_corpus, "--vocab-file", bad_vocab,
                  "--output-dir", tmp_path / "o4")
  assert code == 2 and tokenization.CLS in cap.err and str(bad_vocab) in cap.err
  assert not (tmp_path / "o4").exists() or not list((tmp_path / "o4").glob("pretrain*"))
  # Lower-casing would break the cased Korean vocab: refused before any work.
  code, cap = run("--corpus-dir", small_corpus, "--vocab-file", vocab_v3, "--output-dir",
                  tmp_path / "o6", "--do-lower-case")
  assert code == 2 and "do_lower_case" in cap.err
  # Undecodable bytes: the line is skipped and counted, the rest is built.
  mixed = tmp_path / "mixed"
  mixed.mkdir()
  good = (small_corpus / "a_comments.txt").read_bytes()
  (mixed / "m.txt").write_bytes(b"\xff\xfe\xfa broken\n" + good + b"\xc3\x28\n")
  (mixed / "zero.txt").write_bytes(b"")
  code, cap = run("--corpus-dir", mixed, "--vocab-file", vocab_v3, "--output-dir",
                  tmp_path / "o5")
  assert code == 0, cap.err
  summary = json.loads((tmp_path / "o5/summary.json").read_text())
  assert summary["skipped_undecodable"] == summary["skipped_lines"] == 2
  assert summary["skipped_examples"][0].startswith(str(mixed / "m.txt") + ":1")
  assert summary["empty_files"] == [str(mixed / "zero.txt")]
  assert "skipped lines 2" in cap.out
  # An OSError (the output directory is a file) is one line and exit status 2 too.
  (tmp_path / "a_file").write_text("x")
  code, cap = run("--corpus-dir", small_corpus, "--vocab-file", vocab_v3, "--output-dir",
                  tmp_path / "a_file")
  assert code == 2 and cap.err.count("\n") == 1 and cap.err.startswith("error: ")
  assert str(tmp_path / "a_file") in cap.err
  # Options out of range, from the command line or from Python.
  code, cap = run("--corpus-dir", small_corpus, "--vocab-file", vocab_v3, "--output-dir",
                  tmp_path / "o7", "--max-seq-length", "4")
  assert code == 2 and "--max-seq-length must be at least 5, got 4" in cap.err
  with pytest.raises(dataset_builder.BuildError, match="--num-processes"):
    dataset_builder.BuildOptions(small_corpus, vocab_v3, tmp_path / "o8", num_processes=0)


def test_command_line_maps_onto_build_options(tmp_path):
  """Every BuildOptions field is a flag with the same default, and flags set them."""
  parser = bpd.build_parser()
  base = ["--corpus-dir", "c1", "c2", "--vocab-file", "v.txt", "--output-dir", "out"]
  opts = bpd.options_from_args(parser.parse_args(base))
  assert opts == dataset_builder.BuildOptions(("c1", "c2"), "v.txt", "out")
  opts = bpd.options_from_args(parser.parse_args(base + [
      "--max-seq-length", "512", "--num-processes", "3", "--num-out-files", "7", "--seed", "1",
      "--text-field", "content", "--no-blanks-separate-docs", "--tokenizer", "reference",
      "--shuffle-window", "0", "--original-sentence-order", "--overwrite"]))
  assert opts == dataset_builder.BuildOptions(
      ("c1", "c2"), "v.txt", "out", max_seq_length=512, num_processes=3, num_out_files=7,
      seed=1, text_field="content", blanks_separate_docs=False, tokenizer="reference",
      shuffle_window=0, original_sentence_order=True, overwrite=True)


def test_json_lines_and_inspection(data_dir, tmp_path, capsys, vocab_v3):
  src = data_dir / "corpus/petitions/petitions_2017-08"
  with open(src, encoding="utf-8") as f:
    rows = [next(f) for _ in range(30)]
  d = tmp_path / "petitions"
  d.mkdir()
  (d / "p.jsonl").write_text("".join(rows) + '{"title": "no content"}\n', encoding="utf-8")
  out = tmp_path / "out"
  assert _main(["--corpus-dir", str(d), "--vocab-file", vocab_v3, "--output-dir", str(out),
                   "--text-field", "content", "--max-seq-length", "64", "--shuffle-window", "0",
                   "--no-progress"]) == 0
  capsys.readouterr()
  summary = json.loads((out / "summary.json").read_text())
  assert summary["documents"] == 30 and summary["skipped_bad_json"] == 1
  shard = out / SHARD_NAME.format(0, 1)
  assert _main(["--inspect", str(shard), "--vocab-file", vocab_v3, "-n", "2"]) == 0
  printed = capsys.readouterr().out
  assert printed.count("--- example") == 2
  first_word = json.loads(rows[0])["content"].split()[0]
  tokens = tokenization.FullTokenizer(vocab_v3).tokenize(first_word)
  assert printed.split("\n")[1].startswith("A: [CLS] " + " ".join(tokens).replace(" ##", ""))


def test_gzip_input_reads_like_plain_text(small_corpus, tmp_path, vocab_v3):
  import gzip
  gz_dir = tmp_path / "gz"
  gz_dir.mkdir()
  for p in sorted(small_corpus.iterdir()):
    (gz_dir / (p.name + ".gz")).write_bytes(gzip.compress(p.read_bytes()))
  outs = []
  for d in (small_corpus, gz_dir):
    out = tmp_path / ("out-" + d.name)
    # One work unit each, so both runs draw the same random numbers.
    summary = _build(d, out, vocab_v3, num_out_files=1, unit_mb=100)
    outs.append(((out / SHARD_NAME.format(0, 1)).read_bytes(),
                 summary["lines"], summary["documents"]))
  assert outs[0] == outs[1]


def test_shuffle_window_mixes_records_deterministically(small_corpus, tmp_path, vocab_v3):
  outs = {}
  for name, window in (("plain", 0), ("mixed", 64), ("again", 64)):
    out = tmp_path / name
    _build(small_corpus, out, vocab_v3, num_out_files=2, unit_mb=0.05, shuffle_window=window)
    outs[name] = [list(tfrecord_writer.read_records(str(p)))
                  for p in sorted(out.glob(SHARD_GLOB))]
  assert outs["mixed"] == outs["again"]
  for plain, mixed in zip(outs["plain"], outs["mixed"]):
    assert sorted(plain) == sorted(mixed) and plain != mixed  # same records, each shard


def test_no_blanks_separate_docs_makes_one_document_per_file(small_corpus, tmp_path,
                                                             vocab_v3, one_file_build):
  out = tmp_path / "out"
  summary = _build(small_corpus, out, vocab_v3, blanks_separate_docs=False, num_out_files=1,
                   unit_mb=100)
  assert summary["documents"] == 2  # two files, blank lines ignored
  assert summary["lines"] == one_file_build[1]["lines"]
  assert summary["examples"] < one_file_build[1]["examples"]  # fewer short documents


@pytest.fixture(scope="module")
def paragraph_corpus(data_dir, tmp_path_factory):
  """Petition paragraphs (JSON lines, a paragraph a line) and news comments."""
  d = tmp_path_factory.mktemp("paragraphs")
  with open(data_dir / "corpus/petitions/petitions_2019-06", encoding="utf-8") as f:
    (d / "p.jsonl").write_text("".join(next(f) for _ in range(60)), encoding="utf-8")
  _write(d / "q_comments.txt",
         head_lines(data_dir / "corpus/hate-speech-unlabeled/unlabeled_comments_5.txt", 200))
  return d


def test_split_none_is_the_original_algorithm_byte_for_byte(paragraph_corpus, tmp_path,
                                                              vocab_v3, ref_tok):
  """`none` writes what the original algorithm gives for one line = one sentence,
  rebuilt here from the corpus reader, the reference tokenizer and ExampleBuilder."""
  out = tmp_path / "none"
  summary = _build(paragraph_corpus, out, vocab_v3, split_sentences="none", num_out_files=1,
                   unit_mb=100, shuffle_window=0, text_field="content", max_seq_length=64)
  builder = example_builder.ExampleBuilder(64, random.Random("12345:0"))  # seed:unit
  ser = example_builder.ExampleSerializer(64, ref_tok.vocab[tokenization.CLS],
                                          ref_tok.vocab[tokenization.SEP], len(ref_tok.vocab))
  want = []
  for path in sorted(paragraph_corpus.iterdir()):
    field = "content" if path.suffix == ".jsonl" else None
    for line in [*corpus.iter_file(str(path), field), None]:  # None: the file's end
      if line is None:
        example = builder.end_document()
      else:
        example = builder.add_sentence(ref_tok.convert_tokens_to_ids(ref_tok.tokenize(line)))
      if example:
        want.append(tfrecord_writer.frame(ser.serialize(*example)))
  assert (out / SHARD_NAME.format(0, 1)).read_bytes() == b"".join(want)
  assert summary["examples"] == len(want) > 100
  assert summary["sentences"] == summary["lines"] and summary["sentences_per_line"] == 1
  assert summary["kept_share"] == summary["kept_share_unsplit"] < 0.7


def test_splitting_keeps_tokens_and_is_deterministic(paragraph_corpus, tmp_path, vocab_v3):
  common = dict(num_out_files=3, unit_mb=0.02, text_field="content", max_seq_length=128)
  none = _build(paragraph_corpus, tmp_path / "none", vocab_v3, **common)
  runs = {}
  for procs in (1, 2):
    out = tmp_path / f"rules-{procs}"
    runs[procs] = _build(paragraph_corpus, out, vocab_v3, split_sentences="rules",
                         num_processes=procs, **common)
    runs[procs]["bytes"] = [p.read_bytes() for p in sorted(out.glob(SHARD_GLOB))]
  assert runs[1]["bytes"] == runs[2]["bytes"]
  split = runs[1]
  assert split["bytes"] != [p.read_bytes() for p in sorted((tmp_path / "none").glob(SHARD_GLOB))]
  # The same tokens go in; many more of them reach an example.
  assert split["tokens"] == none["tokens"] and split["lines"] == none["lines"]
  assert split["sentences_per_line"] > 1.5
  assert split["kept_share"] > 0.85 > none["kept_share"]
  # The second builder inside the split build counts exactly what `none` keeps.
  assert split["kept_share_unsplit"] == none["kept_share"]
  assert split["examples"] > none["examples"] and split["split_errors"] == 0
  # Cutting sentences longer than (128 - 3) // 2 tokens is part of that gain.
  assert split["options"]["max_sentence_tokens"] == 62 and split["long_sentences_cut"] > 0
  uncut = _build(paragraph_corpus, tmp_path / "uncut", vocab_v3, split_sentences="rules",
                 max_sentence_tokens=0, **common)
  assert none["kept_share"] < uncut["kept_share"] < split["kept_share"]
  assert uncut["long_sentences_cut"] == 0 and "max_sentence_tokens" not in uncut["options"]


def test_bad_and_empty_lines_are_counted_not_fatal(tmp_path, capsys, vocab_v3, ref_tok):
  lines = ["정상적인 문장입니다. 두 번째 문장입니다.",
           "\x01\x02\x03", "\ufeff\u200b", "...", "?!", "ㅋㅋㅋ ㅠㅠ", "(((", '"""',
           "닫히지 않은 따옴표 \"로 시작해서 끝나지 않는다. 그래도 문장이다.",
           "끝나지 않는 " * 30000,  # one 180k-character line without any ending
           "Mr. Dr. e.g. U.S. 1. 2. 3.", "😀😀😀", "\u0301\u0301"]
  d = tmp_path / "odd"
  _write(d / "odd.txt", lines)
  code = _main(["--corpus-dir", str(d), "--vocab-file", vocab_v3, "--output-dir",
                str(tmp_path / "out"), "--split-sentences", "rules", "--no-progress"])
  assert code == 0, capsys.readouterr().err
  summary = json.loads((tmp_path / "out/summary.json").read_text())
  sentences = [s for l in lines for s in split_sentences(l)]
  empty = [s for s in sentences if not ref_tok.tokenize(s)]
  assert len(empty) >= 2  # the control and zero-width lines
  assert summary["lines"] == len(lines) and summary["sentences"] == len(sentences)
  assert summary["empty_sentences"] == len(empty) and summary["split_errors"] == 0
  assert summary["examples"] > 0
  assert "sentences (rules)" in capsys.readouterr().out
  with pytest.raises(dataset_builder.BuildError, match="--split-sentences must be one of"):
    dataset_builder.BuildOptions(d, vocab_v3, tmp_path / "o", split_sentences="spacy")


def test_long_sentences_are_cut_at_word_starts(vocab_v3, ref_tok, data_dir):
  continuation = bytes(t.startswith("##") for t in sorted(ref_tok.vocab, key=ref_tok.vocab.get))
  text = " ".join(head_lines(data_dir / "corpus/namuwikitext/namuwikitext_20200302.dev.sample",
                             40))
  ids = ref_tok.convert_tokens_to_ids(ref_tok.tokenize(text))
  assert len(ids) > 1000
  for limit in (5, 62, 300):
    pieces = dataset_units.cut_long_sentence(ids, limit, continuation)
    assert [i for p in pieces for i in p] == ids
    assert len(pieces) == -(-len(ids) // limit) and all(pieces)
    assert not any(continuation[p[0]] for p in pieces)  # no piece starts inside a word
    assert max(map(len, pieces)) <= limit + 10  # cuts move back by a few tokens at most
  # A single "word" longer than a piece is cut where it falls.
  word = [ids[0]] + [ref_tok.vocab["##다"]] * 20
  assert dataset_units.cut_long_sentence(word, 8, continuation) == [word[:7], word[7:14], word[14:]]


def test_cutting_without_splitting_counts_the_uncut_share(paragraph_corpus, tmp_path,
                                                          vocab_v3):
  common = dict(num_out_files=1, text_field="content", max_seq_length=128)
  none = _build(paragraph_corpus, tmp_path / "none", vocab_v3, **common)
  cut = _build(paragraph_corpus, tmp_path / "cut", vocab_v3, max_sentence_tokens=40, **common)
  assert cut["long_sentences_cut"] > 0 and cut["kept_share"] > none["kept_share"]
  assert cut["kept_share_unsplit"] == none["kept_share"] == none["kept_share_unsplit"]


def test_many_small_shards_bound_the_overrun_by_the_unit(small_corpus, tmp_path, vocab_v3):
  """More shards than MBs (the original's 1,000 files on a small corpus) make units
  smaller than unit_mb: a reader starting inside a long document then skips at most one
  unit of it, not unit_mb (with 1,000 files on 16 MB it read the news comments ~60 times)."""
  total = sum(p.stat().st_size for p in small_corpus.iterdir())
  options = dataset_builder.BuildOptions(small_corpus, vocab_v3, tmp_path / "x",
                                         num_out_files=40)
  plan = dataset_builder.plan_build(options)
  assert plan.num_units == 40 and plan.max_overrun == -(-total // 40)
  # The default layout keeps unit_mb as the bound (its builds still resume).
  plan = dataset_builder.plan_build(dataclasses.replace(options, num_out_files=0,
                                                        unit_mb=0.02))
  assert plan.num_units == -(-total // int(0.02 * dataset_builder.MiB))
  assert plan.max_overrun == int(0.02 * dataset_builder.MiB)
  # Every line is still read once: 40 shards hold the tokens of one.
  one = _build(small_corpus, tmp_path / "one", vocab_v3, num_out_files=1)
  many = _build(small_corpus, tmp_path / "many", vocab_v3, num_out_files=40,
                num_processes=2)
  assert many["lines"] == one["lines"] and many["tokens"] == one["tokens"]
  assert many["documents"] > one["documents"]  # the comments are cut into pieces
  assert len(list((tmp_path / "many").glob(SHARD_GLOB))) == 40
