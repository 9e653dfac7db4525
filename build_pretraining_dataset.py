"""Turns a text corpus into the sharded TFRecords that pretraining reads.

  python build_pretraining_dataset.py --corpus-dir CORPUS --vocab-file VOCAB \\
      --output-dir DATA/pretrain_tfrecords --max-seq-length 128 --num-processes 2

Examples are built by the original ELECTRA algorithm (pretrain/example_builder.py),
one input line being one sentence; with --split-sentences rules (util/sentence_split.py)
lines holding paragraphs are first split into sentences.
The corpus, taken as one byte stream in file order, is cut into ~1 MB work units at
document boundaries; units are tokenized in parallel and written in order, a run of
consecutive units per shard. A unit's output depends only on the corpus, the options
and the seed, so the output is the same for any --num-processes. Shards appear under
their final name only when complete; a rerun resumes after the complete ones.

  python build_pretraining_dataset.py --inspect SHARD --vocab-file VOCAB [-n 3]

prints the first examples of a TFRecord file decoded back to text. See docs/corpus.md.
"""
import argparse
import collections
import dataclasses
import hashlib
import json
import math
import multiprocessing
import os
import random
import resource
import sys
import time
from typing import List, Optional, Sequence, Tuple

from model import tokenization
from pretrain import example_builder
from util import corpus
from util import errors
from util import fileio
from util import sentence_split
from util import tfrecord_writer

STATE_DIR = ".build"                    # config + one manifest per complete shard
SUMMARY = "summary.json"
UNIT_BYTES = 1 << 20
AUTO_SHARD_BYTES = 64 << 20             # default: one shard per 64 MB of input
MAX_AUTO_SHARDS = 1000                  # the original's fixed shard count
# Lines per tokenizer call: the numpy tokenizer's fixed cost per call is amortized by
# 4096 (1 process: 8.5k -> 9.6k ex/s over 1024; 16384 gained little more).
LINES_PER_BATCH = 4096
# Units in flight per process: results are written in order, so a slow unit at the
# head must not idle the other workers; each finished unit waits as ~1 MB of records.
WINDOW_PER_PROCESS = 8


class BuildError(errors.UserError):
  """A problem with the build's input, options or output; the message says what to do."""


@dataclasses.dataclass(frozen=True)
class BuildOptions:
  """Everything a build depends on (the CLI flags of the same names, docs/corpus.md).

  Raises BuildError on construction when a value is out of range.
  """
  corpus_dir: Tuple[str, ...]          # directories (read recursively, sorted) and/or files
  vocab_file: str                      # WordPiece vocab, one token a line
  output_dir: str                      # local directory or scheme:// (gs://) path
  max_seq_length: int = 128            # tokens per example, [CLS]/[SEP] included
  num_processes: int = 1               # worker processes (fork); output does not depend on it
  num_out_files: int = 0               # shards; 0: one per 64 MB of input, at most 1000
  seed: int = 12345                    # same corpus + options + seed: byte-identical shards
  text_field: Optional[str] = None     # JSON lines: the text is in this field
  blanks_separate_docs: bool = True    # a blank line ends a document
  do_lower_case: bool = False          # KoELECTRA vocabs are cased
  strip_accents: Optional[bool] = None  # None: follow do_lower_case, as BERT does
  tokenizer: str = "fast"              # "fast" (numpy) or "reference" (pure Python, same ids)
  shuffle_window: int = 10000          # mix each shard's records in a window; 0: corpus order
  original_sentence_order: bool = False  # the original's reordering of sentences into A/B
  split_sentences: str = "none"        # "none": a line is a sentence (the original);
                                       # "rules" / "kiwi": util/sentence_split.py
  # Sentences longer than this many tokens are cut into near-equal pieces at word starts
  # before example building. None: (max_seq_length - 3) // 2 (segment A's aim) when
  # splitting, 0 (never, the original) otherwise.
  max_sentence_tokens: Optional[int] = None
  overwrite: bool = False              # replace shards of another build in output_dir
  unit_mb: float = UNIT_BYTES / (1 << 20)  # work-unit size; also bounds reading past a unit

  def __post_init__(self):
    paths = self.corpus_dir
    paths = (paths,) if isinstance(paths, (str, os.PathLike)) else paths
    object.__setattr__(self, "corpus_dir", tuple(str(p) for p in paths))
    object.__setattr__(self, "vocab_file", str(self.vocab_file))
    object.__setattr__(self, "output_dir", str(self.output_dir))
    if self.max_seq_length < 5:
      raise BuildError(f"--max-seq-length must be at least 5, got {self.max_seq_length}")
    if self.shuffle_window < 0:
      raise BuildError(f"--shuffle-window must be 0 or more, got {self.shuffle_window}")
    if self.num_processes < 1:
      raise BuildError(f"--num-processes must be at least 1, got {self.num_processes}")
    if self.num_out_files < 0:
      raise BuildError(
          f"--num-out-files must be 0 (automatic) or more, got {self.num_out_files}")
    if self.unit_mb <= 0:
      raise BuildError(f"--unit-mb must be positive, got {self.unit_mb}")
    if self.split_sentences not in sentence_split.SPLITTERS:
      raise BuildError(f"--split-sentences must be one of "
                       f"{', '.join(sentence_split.SPLITTERS)}, got {self.split_sentences!r}")
    if self.max_sentence_tokens is not None and self.max_sentence_tokens < 0:
      raise BuildError(f"--max-sentence-tokens must be 0 (never cut) or more, got "
                       f"{self.max_sentence_tokens}")
    if self.tokenizer not in ("fast", "reference"):
      raise BuildError(f"--tokenizer must be fast or reference, got {self.tokenizer!r}")


# ---------------------------------------------------------------------------
# One work unit: byte ranges of the corpus -> framed records + counts.

COUNTS = ("examples", "single_segment", "tokens", "tokens_written", "tokens_trimmed",
          "unk_tokens",
          # Sentences given to the example builder (lines when not splitting), those of
          # them that tokenized to nothing, and lines whose splitter failed (kept whole).
          "sentences", "empty_sentences", "split_errors",
          # Sentences longer than max_sentence_tokens, cut into pieces.
          "long_sentences_cut",
          # The tokens a `none` build keeps: with splitting or cutting, from a second
          # example builder fed whole lines (the same random draws as a `none` build).
          "tokens_written_unsplit")

_WORKER = {}


def _make_tokenizer(opts, parallel=False):
  kw = dict(do_lower_case=opts["do_lower_case"], strip_accents=opts["strip_accents"])
  if opts["tokenizer"] == "fast":
    # Threads only when this is the one process: workers already fill every core.
    return tokenization.FastTokenizer(opts["vocab_file"], parallel=parallel, **kw)
  return tokenization.FullTokenizer(opts["vocab_file"], **kw)


def _init_worker(opts, tokenizer=None):
  tok = tokenizer or _make_tokenizer(opts)
  name = opts.get("split_sentences", "none")
  _WORKER.update(
      # Made here, in each worker after the fork: a library splitter's threads and
      # model are never shared across a fork.
      split=None if name == "none" else sentence_split.get_splitter(name),
      # Ids of WordPiece continuations (##...): a long sentence is never cut before one.
      continuation=bytes(t.startswith("##") for t in sorted(tok.vocab, key=tok.vocab.get)),
      opts=opts, tok=tok, unk=tok.vocab[tokenization.UNK],
      ser=example_builder.ExampleSerializer(
          opts["max_seq_length"], tok.vocab[tokenization.CLS],
          tok.vocab[tokenization.SEP], len(tok.vocab)))


def build_unit(task):
  """Build the examples of one unit: (unit index, framed records, counts)."""
  unit, pieces = task
  opts, tok, unk, ser, split, continuation = (
      _WORKER[k] for k in ("opts", "tok", "unk", "ser", "split", "continuation"))
  max_tokens = opts.get("max_sentence_tokens", 0)
  stats = corpus.CorpusStats()
  # Each unit has its own generator, seeded by (seed, unit): the output does not
  # depend on how units are spread over processes.
  seed = f"{opts['seed']}:{unit}"
  builder = example_builder.ExampleBuilder(
      opts["max_seq_length"], random.Random(seed),
      original_sentence_order=opts["original_sentence_order"])
  # With splitting or cutting, a second builder is fed whole lines (each line's ids are
  # the concatenation of its sentences' ids: util/sentence_split.py) with the same seed,
  # so the summary can say what `none` would have kept. It only counts.
  unsplit = None if split is None and not max_tokens else example_builder.ExampleBuilder(
      opts["max_seq_length"], random.Random(seed),
      original_sentence_order=opts["original_sentence_order"])
  out = []
  counts = dict.fromkeys(("unk_tokens", "sentences", "empty_sentences", "split_errors",
                          "long_sentences_cut"), 0)

  def emit(example):
    if example is not None:
      out.append(tfrecord_writer.frame(ser.serialize(*example)))

  def end_document():
    emit(builder.end_document())
    if unsplit is not None:
      unsplit.end_document()

  def flush(batch, line_ends):
    """Tokenize and build a batch: sentences and None (document ends)."""
    encoded = iter(tok.encode_batch([x for x in batch if x is not None]))
    ends = iter(line_ends)
    line_ids = []
    for item in batch:
      if item is None:
        end_document()
        continue
      ids = next(encoded)
      counts["sentences"] += 1
      counts["unk_tokens"] += ids.count(unk)
      counts["empty_sentences"] += not ids
      if max_tokens and len(ids) > max_tokens:
        counts["long_sentences_cut"] += 1
        for piece in cut_long_sentence(ids, max_tokens, continuation):
          emit(builder.add_sentence(piece))
      else:
        emit(builder.add_sentence(ids))
      if unsplit is not None:
        line_ids.extend(ids)
        if next(ends):
          unsplit.add_sentence(line_ids)
          line_ids = []

  for path, start, end in pieces:
    batch, line_ends = [], []
    for item in corpus.iter_file(path, opts["text_fields"][path], stats,
                                 opts["blanks_separate_docs"], start, end,
                                 align_docs=True, max_overrun=opts["max_overrun"]):
      if item is None:
        batch.append(item)
      elif split is None:
        batch.append(item)
        line_ends.append(True)
      else:
        try:
          sentences = split(item) or [item]
        except Exception:  # a library splitter's failure must not stop a long build
          counts["split_errors"] += 1
          sentences = [item]
        batch.extend(sentences)
        line_ends.extend([False] * (len(sentences) - 1) + [True])
      if len(batch) >= LINES_PER_BATCH:
        flush(batch, line_ends)
        batch, line_ends = [], []
    flush(batch, line_ends)
    end_document()  # a file (or range) end closes the document
  counts.update(examples=builder.examples, single_segment=builder.single_segment,
                tokens=builder.tokens_in, tokens_written=builder.tokens_kept,
                tokens_trimmed=builder.tokens_trimmed,
                tokens_written_unsplit=(builder.tokens_kept if unsplit is None
                                        else unsplit.tokens_kept))
  if not opts["shuffle_window"]:
    out = [b"".join(out)]  # one object is cheaper to send back than many
  return unit, out, {"corpus": stats.as_dict(), **counts}


def cut_long_sentence(ids: List[int], max_tokens: int,
                      continuation: bytes) -> List[List[int]]:
  """Cut a sentence's token ids into near-equal pieces of about max_tokens or fewer.

  The original trims a sentence that overflows an example; a long sentence overflows
  by much, and on paragraph corpora long sentences carry much of the text
  (docs/corpus.md). Each cut moves back to the nearest word start, so no piece begins
  with a ## continuation (a single word longer than a piece is cut where it falls).

  Args:
    ids: token ids, len(ids) > max_tokens > 0.
    max_tokens: the aimed-at piece length.
    continuation: continuation[i] is 1 when id i is a ## piece.

  Returns:
    ceil(len(ids) / max_tokens) pieces whose concatenation is ids.
  """
  n = -(-len(ids) // max_tokens)
  cuts = [0]
  for k in range(1, n):
    cut = len(ids) * k // n
    back = cut
    while back > cuts[-1] + 1 and continuation[ids[back]]:
      back -= 1
    cuts.append(back if not continuation[ids[back]] else cut)
  cuts.append(len(ids))
  return [ids[a:b] for a, b in zip(cuts, cuts[1:])]


def _unit_results(tasks, opts, tokenizer, num_processes):
  """Results of build_unit in task order, a bounded number of units in flight."""
  if num_processes == 1 or len(tasks) <= 1:
    _init_worker(opts, tokenizer)
    yield from map(build_unit, tasks)
    return
  # fork: workers inherit the tokenizer already built here (no TF in this process).
  ctx = multiprocessing.get_context("fork")
  with ctx.Pool(num_processes, initializer=_init_worker, initargs=(opts, tokenizer)) as pool:
    pending = collections.deque()
    todo = iter(tasks)
    for task in todo:
      pending.append(pool.apply_async(build_unit, (task,)))
      if len(pending) >= WINDOW_PER_PROCESS * num_processes:
        break
    while pending:
      result = pending.popleft().get()
      task = next(todo, None)
      if task is not None:
        pending.append(pool.apply_async(build_unit, (task,)))
      yield result


# ---------------------------------------------------------------------------
# Totals, output directory state, summary.


class Shuffler:
  """Optional bounded shuffle of a shard's records (a window of `size` records).

  Off (size 0) the records keep corpus order, as the original writes a single output
  file. On, records are mixed within a shard like a tf.data shuffle buffer; the
  generator is seeded per shard, so the output stays deterministic and resumable.
  """

  def __init__(self, size, seed):
    self.size = size
    self.rng = random.Random(seed)
    self.buf = []

  def push(self, records):
    if not self.size:
      return b"".join(records)
    out = []
    for r in records:
      if len(self.buf) < self.size:
        self.buf.append(r)
      else:
        j = self.rng.randrange(self.size)
        out.append(self.buf[j])
        self.buf[j] = r
    return b"".join(out)

  def drain(self):
    self.rng.shuffle(self.buf)
    out, self.buf = b"".join(self.buf), []
    return out


class Totals:
  def __init__(self):
    self.corpus = corpus.CorpusStats()
    self.counts = dict.fromkeys(COUNTS, 0)

  def add(self, record):
    self.corpus.merge(corpus.CorpusStats(**record["corpus"]))
    for k in COUNTS:
      # Manifests of older builds (always `none`) lack the newer counts.
      self.counts[k] += record.get(
          k, record["tokens_written"] if k == "tokens_written_unsplit" else 0)

  def as_record(self):
    return {"corpus": self.corpus.as_dict(), **self.counts}


def _sha1(path):
  h = hashlib.sha1()
  with fileio.open_file(path, "rb") as f:
    h.update(f.read())
  return h.hexdigest()


def _prepare_output(out_dir, config, overwrite):
  """Make the output directory ready; returns the set of complete shard indices."""
  fileio.makedirs(out_dir)
  state = fileio.join(out_dir, STATE_DIR)
  shards = fileio.glob(fileio.join(out_dir, example_builder.SHARD_GLOB))
  config_path = fileio.join(state, "config.json")
  summary_path = fileio.join(out_dir, SUMMARY)
  old = None
  if fileio.exists(config_path):
    with fileio.open_file(config_path) as f:
      old = json.load(f)
  if overwrite:
    for p in shards + fileio.glob(fileio.join(state, "*")):
      fileio.remove(p)
    if fileio.exists(summary_path):
      fileio.remove(summary_path)
    old, shards = None, []
  # Temporary files of an interrupted run (util/fileio names them .tmp-*).
  for p in fileio.glob(fileio.join(out_dir, ".tmp-*")):
    fileio.remove(p)
  if shards:
    if old != config:
      raise BuildError(
          f"{out_dir} already holds {len(shards)} shard(s) from another build "
          f"(e.g. {os.path.basename(shards[0])}); pass --overwrite to replace them, "
          "or choose another --output-dir")
    if fileio.exists(summary_path):
      raise BuildError(f"{out_dir} already holds a complete build ({SUMMARY}); "
                       "pass --overwrite to rebuild it")
  fileio.makedirs(state)
  with fileio.atomic_write(config_path) as f:
    json.dump(config, f, indent=1, ensure_ascii=False)
  done = set()
  n = config["num_out_files"]
  for i in range(n):
    shard = fileio.join(out_dir, example_builder.SHARD_NAME.format(i, n))
    if fileio.exists(shard) and fileio.exists(_manifest_path(out_dir, i)):
      done.add(i)
  return done


def _manifest_path(out_dir, shard):
  return fileio.join(out_dir, STATE_DIR, f"shard-{shard:05d}.json")


def build(args: BuildOptions, progress: bool = True) -> dict:
  """Build the shards described by `args`; returns the summary (also in summary.json).

  Args:
    args: the build's options.
    progress: show a progress bar on stderr.

  Returns:
    the summary dict (counts, times, options); see print_summary.

  Raises:
    errors.UserError (BuildError, corpus.CorpusError, tokenization.VocabError, ...):
      bad options, input or output directory, with a message naming it.
  """
  t0 = time.time()
  plan, skipped_files = corpus.plan_corpus(args.corpus_dir, args.text_field)
  files = [f for f, _ in plan]
  sizes = [corpus.file_size(f) for f in files]
  total = sum(sizes)
  if not total:
    raise BuildError(f"every corpus file is empty: {', '.join(files[:5])}")
  opts = dict(vocab_file=args.vocab_file, do_lower_case=args.do_lower_case,
              strip_accents=args.strip_accents, tokenizer=args.tokenizer,
              max_seq_length=args.max_seq_length, seed=args.seed,
              text_fields=dict(plan), blanks_separate_docs=args.blanks_separate_docs,
              original_sentence_order=args.original_sentence_order,
              shuffle_window=args.shuffle_window,
              # A document longer than this past a unit boundary is cut there
              # (bounded memory and balance on files without blank lines).
              max_overrun=int(args.unit_mb * (1 << 20)))
  max_tokens = args.max_sentence_tokens
  if max_tokens is None:
    max_tokens = (args.max_seq_length - 3) // 2 if args.split_sentences != "none" else 0
  # Recorded only when used: the options (config.json) of a `none` build stay those of
  # before, so its output directory still resumes.
  if args.split_sentences != "none":
    opts["split_sentences"] = args.split_sentences
    sentence_split.check_splitter(args.split_sentences)  # e.g. kiwi not installed
  if max_tokens:
    opts["max_sentence_tokens"] = max_tokens
  # Checks the vocab and case settings up front; workers inherit it.
  tokenizer = _make_tokenizer(opts, parallel=args.num_processes == 1)

  num_out = args.num_out_files or min(MAX_AUTO_SHARDS,
                                      max(1, math.ceil(total / AUTO_SHARD_BYTES)))
  num_units = max(num_out, math.ceil(total / (args.unit_mb * (1 << 20))))
  parts = corpus.split_ranges(files, num_units)
  shard_units = [range(s * num_units // num_out, (s + 1) * num_units // num_out)
                 for s in range(num_out)]
  config = {k: v for k, v in opts.items() if k not in ("tokenizer", "vocab_file")}
  config.update(vocab_sha1=_sha1(args.vocab_file), num_out_files=num_out,
                num_units=num_units, files=[[f, s] for f, s in zip(files, sizes)])
  out_dir = args.output_dir
  done = _prepare_output(out_dir, config, args.overwrite)

  totals = Totals()
  for s in sorted(done):
    with fileio.open_file(_manifest_path(out_dir, s)) as f:
      totals.add(json.load(f))
  resumed_examples = totals.counts["examples"]
  todo = [s for s in range(num_out) if s not in done]
  tasks = [(u, parts[u]) for s in todo for u in shard_units[s]]
  size_of = dict(zip(files, sizes))

  def unit_bytes(pieces):
    return sum((size_of[p] if e is None else e) - a for p, a, e in pieces)

  todo_bytes = sum(unit_bytes(pieces) for _, pieces in tasks)
  if done:
    print(f"resuming: {len(done)} of {num_out} shards already complete", file=sys.stderr)

  bar = None
  if progress:
    from tqdm import tqdm
    bar = tqdm(total=todo_bytes, unit="B", unit_scale=True, desc="reading",
               file=sys.stderr, dynamic_ncols=True)
  results = _unit_results(tasks, opts, tokenizer, args.num_processes)
  t_start = time.time()
  cpu_start = _cpu_seconds()
  try:
    for s in todo:
      shard = fileio.join(out_dir, example_builder.SHARD_NAME.format(s, num_out))
      shard_totals = Totals()
      window = Shuffler(args.shuffle_window, f"{args.seed}:shard:{s}")
      with tfrecord_writer.open_writer(shard) as writer:
        for u in shard_units[s]:
          unit, records, record = next(results)
          assert unit == u, (unit, u)
          writer.write_framed(window.push(records))
          shard_totals.add(record)
          if bar is not None:
            bar.update(unit_bytes(parts[u]))
            bar.set_postfix(examples=totals.counts["examples"] +
                            shard_totals.counts["examples"], refresh=False)
        writer.write_framed(window.drain())
      with fileio.atomic_write(_manifest_path(out_dir, s)) as f:
        json.dump(shard_totals.as_record(), f)
      totals.add(shard_totals.as_record())
  finally:
    results.close()  # stops the worker pool, also on Ctrl-C
    if bar is not None:
      bar.close()

  elapsed = time.time() - t_start
  cpu = _cpu_seconds() - cpu_start  # workers are reaped by now: their CPU is included
  c, k = totals.corpus, totals.counts
  new_examples = k["examples"] - resumed_examples
  summary = {
      "output_dir": out_dir,
      "shards": num_out,
      "resumed_shards": len(done),
      "files": len(files),
      "empty_files": [f for f, s in zip(files, sizes) if s == 0],
      "skipped_files": skipped_files,
      "documents": c.documents,
      "lines": c.lines,
      "bytes_read": c.bytes_read,
      "skipped_lines": c.skipped_undecodable + c.skipped_bad_json,
      "skipped_undecodable": c.skipped_undecodable,
      "skipped_bad_json": c.skipped_bad_json,
      "skipped_examples": c.skipped_examples,
      "examples": k["examples"],
      "single_segment_examples": k["single_segment"],
      "tokens": k["tokens"],
      "tokens_written": k["tokens_written"],
      "tokens_trimmed": k["tokens_trimmed"],
      "trimmed_share": k["tokens_trimmed"] / k["tokens"] if k["tokens"] else 0.0,
      "unk_tokens": k["unk_tokens"],
      "unk_ratio": k["unk_tokens"] / k["tokens"] if k["tokens"] else 0.0,
      "split_sentences": args.split_sentences,
      "sentences": k["sentences"],
      "sentences_per_line": k["sentences"] / c.lines if c.lines else 0.0,
      "empty_sentences": k["empty_sentences"],
      "split_errors": k["split_errors"],
      "long_sentences_cut": k["long_sentences_cut"],
      # Shares of all tokens that reach an example, with this build's splitting and
      # (from the second builder) without any.
      "kept_share": k["tokens_written"] / k["tokens"] if k["tokens"] else 0.0,
      "kept_share_unsplit": (k["tokens_written_unsplit"] / k["tokens"]
                             if k["tokens"] else 0.0),
      "wall_time_s": round(time.time() - t0, 3),
      "build_time_s": round(elapsed, 3),
      "build_cpu_s": round(cpu, 3),
      "examples_per_s": round(new_examples / elapsed, 1) if elapsed > 0 else 0.0,
      "num_processes": args.num_processes,
      "options": {k2: v for k2, v in config.items() if k2 not in ("files", "text_fields")},
      "text_field": args.text_field,
  }
  with fileio.atomic_write(fileio.join(out_dir, SUMMARY)) as f:
    json.dump(summary, f, indent=1, ensure_ascii=False)
  return summary


def _cpu_seconds():
  """CPU time of this process and its reaped children (the workers)."""
  me = resource.getrusage(resource.RUSAGE_SELF)
  kids = resource.getrusage(resource.RUSAGE_CHILDREN)
  return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def print_summary(s, out=None):
  out = out or sys.stdout
  print(f"wrote {s['examples']:,} examples to {s['shards']} shard(s) in {s['output_dir']}"
        + (f" ({s['resumed_shards']} resumed)" if s["resumed_shards"] else ""), file=out)
  print(f"  files {s['files']:,} ({len(s['empty_files'])} empty), documents "
        f"{s['documents']:,}, lines {s['lines']:,}, skipped lines {s['skipped_lines']:,}",
        file=out)
  for ex in s["skipped_examples"][:3]:
    print(f"    skipped {ex}", file=out)
  print(f"  tokens {s['tokens']:,}, written {s['tokens_written']:,}, trimmed "
        f"{s['trimmed_share']:.2%}, [UNK] {s['unk_ratio']:.3%}, single-segment "
        f"examples {s['single_segment_examples']:,}", file=out)
  if s["split_sentences"] != "none" or s["long_sentences_cut"]:
    print(f"  sentences ({s['split_sentences']}) {s['sentences']:,}, "
          f"{s['sentences_per_line']:.2f} per line; tokens kept {s['kept_share']:.1%} "
          f"(without splitting {s['kept_share_unsplit']:.1%})"
          + (f"; {s['long_sentences_cut']:,} sentences over "
             f"{s['options']['max_sentence_tokens']} tokens cut"
             if s["options"].get("max_sentence_tokens") else "")
          + (f"; splitter failed on {s['split_errors']:,} lines (kept whole)"
             if s["split_errors"] else ""), file=out)
  print(f"  wall time {s['wall_time_s']:.1f}s, {s['examples_per_s']:,.0f} examples/s "
        f"with {s['num_processes']} process(es); summary in {SUMMARY}", file=out)


# ---------------------------------------------------------------------------
# Inspection.


def inspect(path, vocab_file, num_examples, out=None):
  """Print the first examples of a TFRecord file as text."""
  out = out or sys.stdout
  if not fileio.exists(path):
    raise BuildError(f"no such file: {path}")
  inv = {i: t for t, i in tokenization.load_vocab(vocab_file).items()}

  def text(ids):
    tokens = [inv.get(i, f"<id {i}>") for i in ids]
    return " ".join(tokens).replace(" ##", "")

  n = 0
  for n, record in enumerate(tfrecord_writer.read_records(path, num_examples), 1):
    try:
      ex = tfrecord_writer.decode_example(record)
      ids, mask, seg = ex["input_ids"], ex["input_mask"], ex["segment_ids"]
    except (ValueError, KeyError, IndexError) as e:
      raise BuildError(f"{path}: record {n} is not a pretraining example ({e})") from None
    length = sum(mask)
    a = [i for i, s, m in zip(ids, seg, mask) if m and s == 0]
    b = [i for i, s, m in zip(ids, seg, mask) if m and s == 1]
    print(f"--- example {n}: {length}/{len(ids)} tokens, segment A {len(a) - 2}, "
          f"segment B {max(len(b) - 1, 0)}", file=out)
    print("A: " + text(a), file=out)
    if b:
      print("B: " + text(b), file=out)
  if not n:
    print(f"{path}: no examples", file=out)


# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
  """The command line; `options_from_args` turns its result into BuildOptions."""
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--corpus-dir", nargs="+", metavar="PATH",
                 help="corpus directories and/or files (read recursively, sorted)")
  p.add_argument("--vocab-file", required=True)
  p.add_argument("--output-dir", help="local directory or gs://bucket/dir")
  p.add_argument("--max-seq-length", type=int, default=128)
  p.add_argument("--num-processes", type=int, default=1)
  p.add_argument("--num-out-files", type=int, default=0,
                 help="number of shards (default: one per 64 MB of input, at most 1000)")
  p.add_argument("--seed", type=int, default=12345)
  p.add_argument("--text-field", default=None,
                 help="read JSON lines, text in this field (the petitions: 'content')")
  p.add_argument("--blanks-separate-docs", dest="blanks_separate_docs",
                 action="store_true", default=True,
                 help="blank lines separate documents (default)")
  p.add_argument("--no-blanks-separate-docs", dest="blanks_separate_docs",
                 action="store_false")
  p.add_argument("--do-lower-case", dest="do_lower_case", action="store_true", default=False)
  p.add_argument("--no-lower-case", dest="do_lower_case", action="store_false",
                 help="keep case (default; KoELECTRA vocabs are cased)")
  p.add_argument("--strip-accents", dest="strip_accents", action="store_true", default=None)
  p.add_argument("--no-strip-accents", dest="strip_accents", action="store_false")
  p.add_argument("--tokenizer", choices=("fast", "reference"), default="fast",
                 help="reference = the pure-Python FullTokenizer (same ids, slower)")
  p.add_argument("--shuffle-window", type=int, default=10000, metavar="N",
                 help="mix each shard's records within a window of N records (default "
                      "10000; 0 keeps corpus order; see docs/corpus.md)")
  p.add_argument("--split-sentences", choices=sentence_split.SPLITTERS, default="none",
                 help="split each line into sentences first: none (default, the "
                      "original: a line is a sentence), rules (built in), kiwi (needs "
                      "kiwipiepy); see docs/corpus.md")
  p.add_argument("--max-sentence-tokens", type=int, default=None, metavar="N",
                 help="cut longer sentences into pieces at word starts (default with "
                      "--split-sentences: (max-seq-length - 3) // 2; 0 never; "
                      "docs/corpus.md)")
  p.add_argument("--original-sentence-order", action="store_true",
                 help="reproduce the original's reordering of sentences (docs/corpus.md)")
  p.add_argument("--overwrite", action="store_true",
                 help="replace shards already in --output-dir")
  p.add_argument("--unit-mb", type=float, default=UNIT_BYTES / (1 << 20),
                 help=argparse.SUPPRESS)
  p.add_argument("--no-progress", action="store_true")
  p.add_argument("--inspect", metavar="TFRECORD",
                 help="print the first examples of this file as text, then exit")
  p.add_argument("-n", "--num-examples", type=int, default=3)
  return p


def options_from_args(args: argparse.Namespace) -> BuildOptions:
  """BuildOptions from parsed command-line flags (same names)."""
  fields = {f.name for f in dataclasses.fields(BuildOptions)}
  return BuildOptions(**{k: v for k, v in vars(args).items() if k in fields})


def main(argv: Optional[Sequence[str]] = None) -> int:
  """The command line; returns the exit status (2 and one error line for a UserError)."""
  return errors.run_main(_main, argv)


def _main(argv):
  parser = build_parser()
  args = parser.parse_args(argv)
  if not args.inspect:
    missing = [f for f, v in (("--corpus-dir", args.corpus_dir),
                              ("--output-dir", args.output_dir)) if not v]
    if missing:
      parser.error(f"the following arguments are required: {', '.join(missing)}")
  try:
    if args.inspect:
      inspect(args.inspect, args.vocab_file, args.num_examples)
      return 0
    summary = build(options_from_args(args), progress=not args.no_progress)
  except OSError as e:  # e.g. an output path that is a file, no permission, disk full
    raise BuildError(str(e)) from e
  except KeyboardInterrupt:
    print("interrupted: complete shards are kept; rerun the same command to resume",
          file=sys.stderr)
    return 130
  print_summary(summary)
  if not summary["examples"]:
    print("error: no examples were produced (is the text in another field or format?)",
          file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
