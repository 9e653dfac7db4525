"""CLI: build a cased KoELECTRA WordPiece vocab (optionally Mecab-pretokenized, v3).

  python -m vocab.build_vocab --corpus FILES_OR_DIRS... --vocab-size 32000 \
      --limit-alphabet 6000 --unused 200 --output-dir DIR [--pretokenize mecab]

Layout as KoELECTRA's vocabs: [PAD] [UNK] [CLS] [SEP] [MASK] at ids 0-4, then the
character alphabet, then `##` characters and learned pieces, then [unused0..N-1] at
the end (v1: 32000 + 200 = 32200 lines). `--model sentencepiece` trains a unigram or
BPE model for comparison instead (its own model file; see docs/vocab.md).

Every `--holdout-every`-th corpus line is held out of training and used to measure
the [UNK] ratio and tokens per word; the report is printed and saved as JSON.
"""
import argparse
import os
import sys
import time

from tqdm import tqdm

from util import corpus
from util import errors
from util import fileio
from vocab import report as report_lib
from vocab import sentencepiece_vocab
from vocab import wordpiece

SPECIALS = wordpiece.SPECIALS
VocabError = wordpiece.VocabError
class CorpusReader:
  """Streams training lines; every `holdout_every`-th line goes to `heldout` instead."""

  def __init__(self, plan, holdout_every=100, max_heldout=20000, progress=True):
    self.plan = plan
    self.holdout_every = holdout_every
    self.max_heldout = max_heldout
    self.progress = progress
    self.stats = corpus.CorpusStats()
    self.heldout = []
    self.train_lines = 0
    self.heldout_lines = 0

  def _total_bytes(self):
    if any(p.endswith(".gz") or fileio.is_remote(p) for p, _ in self.plan):
      return None  # decompressed size unknown
    return sum(os.path.getsize(p) for p, _ in self.plan)

  def __iter__(self):
    bar = tqdm(total=self._total_bytes(), unit="B", unit_scale=True, desc="read",
               disable=not self.progress)
    seen = 0
    index = 0
    try:
      for path, field in self.plan:
        for line in self._lines(path, field):
          index += 1
          if index % 4096 == 0:
            bar.update(self.stats.bytes_read - seen)
            seen = self.stats.bytes_read
          if self.holdout_every and index % self.holdout_every == 0:
            self.heldout_lines += 1
            if len(self.heldout) < self.max_heldout:
              self.heldout.append(line)
            continue
          self.train_lines += 1
          yield line
      bar.update(self.stats.bytes_read - seen)
    finally:
      bar.close()

  def _lines(self, path, field):
    try:
      for line in corpus.iter_file(path, field, self.stats):
        if line is not None:
          yield line
    except (OSError, EOFError) as e:  # e.g. a truncated .gz
      raise corpus.CorpusError(f"cannot read corpus file {path}: {e}") from e

  def check_not_empty(self):
    if self.train_lines == 0:
      files = ", ".join(p for p, _ in self.plan)
      raise corpus.CorpusError(
          f"no text to train on in {files} ({self.stats.skipped_undecodable} lines not UTF-8, "
          f"{self.stats.skipped_bad_json} bad JSON lines skipped"
          + (f"; e.g. {self.stats.skipped_examples[0]})" if self.stats.skipped_examples else ")"))


# ---------------------------------------------------------------------------
# WordPiece training


def train_wordpiece(lines, args):
  """Count words (streamed), optionally split them with Mecab, train. Returns (tokens, info)."""
  word_counts = wordpiece.count_words(lines, args.workers)
  seg_counts = wordpiece.word_counts_to_training(word_counts, args.pretokenize, args.workers,
                                                 not args.quiet)
  tokens, info = wordpiece.train_from_counts(seg_counts, args.vocab_size, args.min_frequency,
                                             args.limit_alphabet, not args.quiet)
  info.update(unique_words=len(word_counts), words=sum(word_counts.values()))
  return tokens, info


# ---------------------------------------------------------------------------
# The run


def read_eval_file(path, text_field, max_lines):
  try:
    plan, _ = corpus.plan_corpus([path], text_field)
  except corpus.CorpusError as e:
    raise corpus.CorpusError(f"--eval-file: {e}") from e
  stats = corpus.CorpusStats()
  out = []
  for p, field in plan:
    for line in corpus.iter_file(p, field, stats):
      if line is not None:
        out.append(line)
        if len(out) >= max_lines:
          return out, stats
  if not out:
    raise corpus.CorpusError(f"eval file {path} has no text lines")
  return out, stats


def build(args):
  """Train, write vocab (or sentencepiece model) and report; return the report dict."""
  t0 = time.time()
  if args.vocab_size <= len(SPECIALS):
    raise VocabError(f"--vocab-size {args.vocab_size} must exceed the {len(SPECIALS)} specials")
  if args.unused < 0:
    raise VocabError(f"--unused must be >= 0, got {args.unused}")
  if args.holdout_every < 0 or args.max_eval_lines < 1:
    raise VocabError("--holdout-every must be >= 0 and --max-eval-lines >= 1")
  if args.limit_alphabet is not None and args.limit_alphabet < 1:
    raise VocabError(f"--limit-alphabet must be >= 1, got {args.limit_alphabet}")
  plan, skipped_files = corpus.plan_corpus(args.corpus, args.text_field)
  for s in skipped_files:
    print(f"skipping {s}", file=sys.stderr)
  eval_sets = [(p, read_eval_file(p, args.text_field, args.max_eval_lines))
               for p in (args.eval_file or [])]
  reader = CorpusReader(plan, args.holdout_every, args.max_eval_lines, not args.quiet)
  lines = iter(reader)

  info = {}
  if args.model == "sentencepiece":
    model_file = fileio.join(args.output_dir, "sp.model")
    try:
      sentencepiece_vocab.train(lines, model_file, args.vocab_size, args.sp_model_type,
                                args.unused, threads=args.workers)
    except sentencepiece_vocab.SentencePieceError:
      reader.check_not_empty()  # the clearer message when there was no text at all
      raise
    reader.check_not_empty()
    tokenizer = sentencepiece_vocab.SentencePieceTokenizer(model_file)
    tokens = [None] * len(tokenizer.vocab)
    for t, i in tokenizer.vocab.items():
      tokens[i] = t
    out_file, tok_name = model_file, "vocab.sentencepiece_vocab.SentencePieceTokenizer"
  else:
    tokens, info = train_wordpiece(lines, args)
    reader.check_not_empty()
    tokens = tokens + [f"[unused{i}]" for i in range(args.unused)]
    out_file = fileio.join(args.output_dir, "vocab.txt")
    fileio.makedirs(args.output_dir)
    with fileio.atomic_write(out_file) as f:
      f.write("".join(t + "\n" for t in tokens))
    tokenizer, tok_name = report_lib.load_eval_tokenizer(out_file)
  t_train = time.time() - t0

  unk_id = tokenizer.vocab[report_lib.UNK]
  evals = {}
  if reader.heldout:
    evals["heldout"] = report_lib.token_stats(tokenizer, reader.heldout, unk_id)
  for path, (texts, _) in eval_sets:
    evals[path] = report_lib.token_stats(tokenizer, texts, unk_id)

  s = reader.stats
  rep = {
      "vocab_file": out_file,
      "model": args.model if args.model == "wordpiece" else f"sentencepiece-{args.sp_model_type}",
      "pretokenize": args.pretokenize,
      "settings": {
          "vocab_size": args.vocab_size, "limit_alphabet": args.limit_alphabet,
          "unused": args.unused, "min_frequency": args.min_frequency,
          "lowercase": False, "strip_accents": False, "clean_text": True,
          "handle_chinese_chars": True, "holdout_every": args.holdout_every,
          "text_field": args.text_field},
      "vocab": report_lib.vocab_stats(tokens, SPECIALS),
      "corpus": {
          "files": s.files, "json_files": sum(1 for _, f in plan if f),
          "lines": s.lines, "train_lines": reader.train_lines,
          "heldout_lines": reader.heldout_lines, "bytes_read": s.bytes_read,
          "skipped_undecodable": s.skipped_undecodable, "skipped_bad_json": s.skipped_bad_json,
          "skipped_examples": s.skipped_examples, "skipped_files": skipped_files},
      "eval_tokenizer": tok_name,
      "eval": evals,
      "seconds": {"train": t_train, "total": time.time() - t0},
  }
  if info:
    rep["training"] = info
  report_lib.write_report(fileio.join(args.output_dir, "vocab_report.json"), rep)
  return rep


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--corpus", nargs="+", required=True, help="files or directories (recursive)")
  p.add_argument("--output-dir", required=True)
  p.add_argument("--vocab-size", type=int, default=32000,
                 help="pieces incl. the 5 specials, excl. [unused] (KoELECTRA v1: 32000)")
  p.add_argument("--limit-alphabet", type=int, default=6000)
  p.add_argument("--unused", type=int, default=200, help="[unusedN] tokens appended at the end")
  p.add_argument("--min-frequency", type=int, default=2)
  p.add_argument("--pretokenize", choices=["none", "mecab"], default="none",
                 help="mecab: the v3 recipe (morphemes after the first become ## pieces)")
  p.add_argument("--model", choices=["wordpiece", "sentencepiece"], default="wordpiece")
  p.add_argument("--sp-model-type", choices=["unigram", "bpe"], default="unigram")
  p.add_argument("--text-field", help="JSON-lines field holding the text (e.g. content); "
                 "files whose first line starts with '{' are read as JSON lines")
  p.add_argument("--eval-file", nargs="*", help="extra text to report [UNK] ratio on")
  p.add_argument("--holdout-every", type=int, default=100,
                 help="hold out every Nth corpus line for the report (0: none)")
  p.add_argument("--max-eval-lines", type=int, default=20000)
  p.add_argument("--workers", type=int, default=2, help="processes for Mecab")
  p.add_argument("--quiet", action="store_true", help="no progress bars")
  args = p.parse_args(argv)
  if args.model == "sentencepiece" and args.pretokenize != "none":
    p.error("--pretokenize applies to --model wordpiece only")
  return args


def main(argv=None):
  """The command line; returns the exit status (2 and one error line for a UserError)."""
  return errors.run_main(_main, argv)


def _main(argv):
  args = parse_args(argv)
  try:
    rep = build(args)
  except OSError as e:  # e.g. an output path that is a file, no permission, disk full
    raise errors.UserError(str(e)) from e
  print(report_lib.format_summary(rep))
  print(f"report: {fileio.join(args.output_dir, 'vocab_report.json')}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
