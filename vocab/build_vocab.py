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
import dataclasses
import os
import sys
import time
from typing import Optional, Tuple

from tqdm import tqdm

from util import corpus
from util import dataclass_args
from util import errors
from util import fileio
from util import tf_logging
from util.dataclass_args import option
from vocab import report as report_lib
from vocab import sentencepiece_vocab
from vocab import wordpiece

SPECIALS = wordpiece.SPECIALS
VocabError = wordpiece.VocabError



@dataclasses.dataclass(frozen=True)
class VocabOptions:
  """Everything a vocab build depends on; each field is the CLI flag of the same name.

  Raises VocabError on construction when a value is out of range.
  """
  corpus: Tuple[str, ...] = option(help="files or directories (recursive)")
  output_dir: str = option(help="where vocab.txt (or sp.model) and vocab_report.json go")
  vocab_size: int = option(
      32000, "pieces incl. the 5 specials, excl. [unused] (KoELECTRA v1: 32000)")
  limit_alphabet: Optional[int] = option(6000, "at most this many initial characters")
  unused: int = option(200, "[unusedN] tokens appended at the end")
  min_frequency: int = option(2, "a piece must occur this often to be learned")
  pretokenize: str = option(
      "none", "mecab: the v3 recipe (morphemes after the first become ## pieces)")
  model: str = option("wordpiece", "sentencepiece: a unigram or BPE model, to compare")
  sp_model_type: str = option("unigram", "--model sentencepiece: unigram or bpe")
  text_field: Optional[str] = option(
      None, "JSON-lines field holding the text (e.g. content); files whose first line "
            "starts with '{' are read as JSON lines")
  eval_file: Optional[Tuple[str, ...]] = option(None, "extra text to report [UNK] ratio on")
  holdout_every: int = option(
      100, "hold out every Nth corpus line for the report (0: none)")
  max_eval_lines: int = option(20000, "lines per evaluation set (held out, --eval-file)")
  workers: int = option(2, "processes for Mecab")
  quiet: bool = option(False, "no progress bars")
  overwrite: bool = option(False, "replace the vocab (and report) already in --output-dir")

  def __post_init__(self):
    paths = (self.corpus,) if isinstance(self.corpus, (str, os.PathLike)) else self.corpus
    object.__setattr__(self, "corpus", tuple(str(p) for p in paths))
    object.__setattr__(self, "output_dir", str(self.output_dir))
    if self.eval_file is not None:
      object.__setattr__(self, "eval_file", tuple(str(p) for p in self.eval_file))
    if self.vocab_size <= len(SPECIALS):
      raise VocabError(f"--vocab-size {self.vocab_size} must exceed the {len(SPECIALS)} "
                       "specials")
    if self.unused < 0:
      raise VocabError(f"--unused must be >= 0, got {self.unused}")
    if self.holdout_every < 0 or self.max_eval_lines < 1:
      raise VocabError("--holdout-every must be >= 0 and --max-eval-lines >= 1")
    if self.limit_alphabet is not None and self.limit_alphabet < 1:
      raise VocabError(f"--limit-alphabet must be >= 1, got {self.limit_alphabet}")
    if self.model == "sentencepiece" and self.pretokenize != "none":
      raise VocabError("--pretokenize applies to --model wordpiece only")

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
          f"{self.stats.skipped_binary} binary, "
          f"{self.stats.skipped_bad_json} bad JSON lines skipped"
          + (f"; e.g. {self.stats.skipped_examples[0]})" if self.stats.skipped_examples else ")"))


# ---------------------------------------------------------------------------
# WordPiece training


def train_wordpiece(lines, options):
  """Count words (streamed), optionally split them with Mecab, train. Returns (tokens, info).

  Args:
    lines: iterable of training lines.
    options: VocabOptions.
  """
  word_counts = wordpiece.count_words(lines, options.workers)
  seg_counts = wordpiece.word_counts_to_training(word_counts, options.pretokenize,
                                                 options.workers, not options.quiet)
  tokens, info = wordpiece.train_from_counts(seg_counts, options.vocab_size,
                                             options.min_frequency, options.limit_alphabet,
                                             not options.quiet)
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


def build_vocab(options: VocabOptions) -> dict:
  """Trains the vocab, writes vocab.txt (or sp.model) and vocab_report.json.

  Args:
    options: VocabOptions.

  Returns:
    the report dict (also in OUTPUT_DIR/vocab_report.json).

  Raises:
    errors.UserError (VocabError, corpus.CorpusError, ...): no text, bad files, a vocab
      already in output_dir without `overwrite`.
  """
  t0 = time.time()
  existing = fileio.join(options.output_dir,
                         "sp.model" if options.model == "sentencepiece" else "vocab.txt")
  if fileio.exists(existing) and not options.overwrite:
    raise VocabError(f"{existing} exists; pass --overwrite to replace it, or choose "
                     "another --output-dir")
  plan, skipped_files = corpus.plan_corpus(options.corpus, options.text_field)
  for s in skipped_files:
    print(f"skipping {s}", file=sys.stderr)
  eval_sets = [(p, read_eval_file(p, options.text_field, options.max_eval_lines))
               for p in (options.eval_file or [])]
  reader = CorpusReader(plan, options.holdout_every, options.max_eval_lines, not options.quiet)
  lines = iter(reader)

  info = {}
  if options.model == "sentencepiece":
    model_file = fileio.join(options.output_dir, "sp.model")
    try:
      sentencepiece_vocab.train(lines, model_file, options.vocab_size, options.sp_model_type,
                                options.unused, threads=options.workers)
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
    tokens, info = train_wordpiece(lines, options)
    reader.check_not_empty()
    tokens = tokens + [f"[unused{i}]" for i in range(options.unused)]
    out_file = fileio.join(options.output_dir, "vocab.txt")
    fileio.makedirs(options.output_dir)
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
      "model": (options.model if options.model == "wordpiece"
                else f"sentencepiece-{options.sp_model_type}"),
      "pretokenize": options.pretokenize,
      "settings": {
          "vocab_size": options.vocab_size, "limit_alphabet": options.limit_alphabet,
          "unused": options.unused, "min_frequency": options.min_frequency,
          "lowercase": False, "strip_accents": False, "clean_text": True,
          "handle_chinese_chars": True, "holdout_every": options.holdout_every,
          "text_field": options.text_field},
      "vocab": report_lib.vocab_stats(tokens, SPECIALS),
      "corpus": {
          "files": s.files, "json_files": sum(1 for _, f in plan if f),
          "lines": s.lines, "train_lines": reader.train_lines,
          "heldout_lines": reader.heldout_lines, "bytes_read": s.bytes_read,
          "skipped_undecodable": s.skipped_undecodable, "skipped_bad_json": s.skipped_bad_json,
          "skipped_binary": s.skipped_binary,
          "skipped_examples": s.skipped_examples, "skipped_files": skipped_files},
      "eval_tokenizer": tok_name,
      "eval": evals,
      "seconds": {"train": t_train, "total": time.time() - t0},
  }
  if info:
    rep["training"] = info
  report_lib.write_report(fileio.join(options.output_dir, "vocab_report.json"), rep)
  return rep


def build_parser() -> argparse.ArgumentParser:
  """The command line; defaults and help come from VocabOptions (parse_args)."""
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)

  def add(name, *flags, **kwargs):
    return dataclass_args.add_field(p, VocabOptions, name, *flags, **kwargs)

  add("corpus", nargs="+", required=True)
  add("output_dir", required=True)
  add("vocab_size", type=int)
  add("limit_alphabet", type=int)
  add("unused", type=int)
  add("min_frequency", type=int)
  add("pretokenize", choices=["none", "mecab"])
  add("model", choices=["wordpiece", "sentencepiece"])
  add("sp_model_type", choices=["unigram", "bpe"])
  add("text_field")
  add("eval_file", nargs="*")
  add("holdout_every", type=int)
  add("max_eval_lines", type=int)
  add("workers", type=int)
  add("quiet", action="store_true")
  add("overwrite", action="store_true")
  return p


def parse_args(argv=None) -> VocabOptions:
  """VocabOptions from a command line (argparse's usage error on a bad combination)."""
  parser = build_parser()
  args = parser.parse_args(argv)
  if args.model == "sentencepiece" and args.pretokenize != "none":
    parser.error("--pretokenize applies to --model wordpiece only")
  return dataclass_args.from_namespace(VocabOptions, args)


def main(argv=None):
  """The command line; returns the exit status (2 and one error line for a UserError)."""
  return errors.run_main(_main, argv)


def _main(argv):
  options = parse_args(argv)
  try:
    rep = build_vocab(options)
  except OSError as e:  # e.g. an output path that is a file, no permission, disk full
    raise errors.UserError(errors.os_error_line(e, f"writing to {options.output_dir}")) from e
  print(report_lib.format_summary(rep))
  print(f"report: {fileio.join(options.output_dir, 'vocab_report.json')}")
  return 0


if __name__ == "__main__":
  tf_logging.quiet()  # gs:// paths load TensorFlow (util/fileio): keep its native lines off
  sys.exit(main())
