"""One work unit of the pretraining-data build: byte ranges of the corpus -> framed records.

The builder (pretrain/dataset_builder.py) cuts the corpus into ~1 MB units at document
boundaries. A unit is read, optionally split into sentences (pretrain/sentence_split.py),
tokenized in batches and fed to the original example algorithm
(pretrain/example_builder.py). Its output depends only on the corpus, the options and
(seed, unit index), so it is the same whichever process builds it. `unit_results` runs
the units in forked worker processes and yields them in order.
"""
import collections
import multiprocessing
import random
from typing import List

from model import tokenization
from pretrain import example_builder
from pretrain import sentence_split
from util import corpus
from util import errors
from util import tfrecord_writer

# Lines per tokenizer call: the numpy tokenizer's fixed cost per call is amortized by
# 4096 (1 process: 8.5k -> 9.6k ex/s over 1024; 16384 gained little more).
LINES_PER_BATCH = 4096
# Units in flight per process: results are written in order, so a slow unit at the
# head must not idle the other workers; each finished unit waits as ~1 MB of records.
WINDOW_PER_PROCESS = 8

# What a unit counts, summed per shard (manifests) and over the build (summary.json).
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


def make_tokenizer(options, parallel=False):
  """The build's tokenizer (checks the vocab and the case settings).

  Args:
    options: BuildOptions (vocab_file, do_lower_case, strip_accents, tokenizer).
    parallel: let the fast tokenizer use threads (only when it is the one process:
      workers already fill every core).

  Returns:
    tokenization.FastTokenizer or FullTokenizer; both give the same ids.
  """
  kw = dict(do_lower_case=options.do_lower_case, strip_accents=options.strip_accents)
  if options.tokenizer == "fast":
    return tokenization.FastTokenizer(options.vocab_file, parallel=parallel, **kw)
  return tokenization.FullTokenizer(options.vocab_file, **kw)


class UnitWorker:
  """Builds units in one process; the tokenizer, splitter and serializer are made once.

  Args:
    options: BuildOptions.
    plan: dataset_builder.Plan (its text_fields: {corpus file: JSON field or None};
      max_overrun: bytes a document may run past a unit's end).
    tokenizer: an already built tokenizer (inherited across the fork), or None.
  """

  def __init__(self, options, plan, tokenizer=None):
    self.options = options
    self.text_fields = plan.text_fields
    self.tok = tokenizer or make_tokenizer(options)
    name = options.split_sentences
    # Made here, in each worker after the fork: a library splitter's threads and
    # model are never shared across a fork.
    self.split = None if name == "none" else sentence_split.get_splitter(name)
    self.max_tokens = options.sentence_cut
    # A document longer than this past a unit boundary is cut there (bounded memory
    # and balance on files without blank lines).
    self.max_overrun = plan.max_overrun
    # Ids of WordPiece continuations (##...): a long sentence is never cut before one.
    self.continuation = bytes(t.startswith("##")
                              for t in sorted(self.tok.vocab, key=self.tok.vocab.get))
    self.unk = self.tok.vocab[tokenization.UNK]
    self.ser = example_builder.ExampleSerializer(
        options.max_seq_length, self.tok.vocab[tokenization.CLS],
        self.tok.vocab[tokenization.SEP], len(self.tok.vocab))

  def build(self, task):
    """The examples of one unit.

    Args:
      task: (unit index, [(file, start byte, end byte or None)]).

    Returns:
      (unit index, [framed records], {"corpus": CorpusStats dict, **COUNTS}).
    """
    unit, pieces = task
    run = _UnitRun(self, unit)
    stats = corpus.CorpusStats()
    for path, start, end in pieces:
      batch, line_ends = [], []
      for item in corpus.iter_file(path, self.text_fields[path], stats,
                                   self.options.blanks_separate_docs, start, end,
                                   align_docs=True, max_overrun=self.max_overrun):
        if item is None:
          batch.append(item)
        elif self.split is None:
          batch.append(item)
          line_ends.append(True)
        else:
          try:
            sentences = self.split(item) or [item]
          except Exception:  # a library splitter's failure must not stop a long build
            run.counts["split_errors"] += 1
            sentences = [item]
          batch.extend(sentences)
          line_ends.extend([False] * (len(sentences) - 1) + [True])
        if len(batch) >= LINES_PER_BATCH:
          run.add_batch(batch, line_ends)
          batch, line_ends = [], []
      run.add_batch(batch, line_ends)
      run.end_document()  # a file (or range) end closes the document
    return unit, run.records(), {"corpus": stats.as_dict(), **run.final_counts()}


class _UnitRun:
  """One unit being built: its example builder(s), records and counts."""

  def __init__(self, worker, unit):
    self.worker = worker
    options = worker.options
    # Each unit has its own generator, seeded by (seed, unit): the output does not
    # depend on how units are spread over processes.
    seed = f"{options.seed}:{unit}"
    self.builder = example_builder.ExampleBuilder(
        options.max_seq_length, random.Random(seed),
        original_sentence_order=options.original_sentence_order)
    # With splitting or cutting, a second builder is fed whole lines (each line's ids
    # are the concatenation of its sentences' ids: pretrain/sentence_split.py) with the
    # same seed, so the summary can say what `none` would have kept. It only counts.
    self.unsplit = None
    if worker.split is not None or worker.max_tokens:
      self.unsplit = example_builder.ExampleBuilder(
          options.max_seq_length, random.Random(seed),
          original_sentence_order=options.original_sentence_order)
    self.out = []
    self.counts = dict.fromkeys(("unk_tokens", "sentences", "empty_sentences",
                                 "split_errors", "long_sentences_cut"), 0)

  def emit(self, example):
    if example is not None:
      self.out.append(tfrecord_writer.frame(self.worker.ser.serialize(*example)))

  def end_document(self):
    self.emit(self.builder.end_document())
    if self.unsplit is not None:
      self.unsplit.end_document()

  def add_batch(self, batch, line_ends):
    """Tokenize and build a batch: sentences and None (document ends).

    Args:
      batch: sentences (str) and None for each document end, in corpus order.
      line_ends: per sentence, True when it is the last one of its line.
    """
    w, counts = self.worker, self.counts
    encoded = iter(w.tok.encode_batch([x for x in batch if x is not None]))
    ends = iter(line_ends)
    line_ids = []
    for item in batch:
      if item is None:
        self.end_document()
        continue
      ids = next(encoded)
      counts["sentences"] += 1
      counts["unk_tokens"] += ids.count(w.unk)
      counts["empty_sentences"] += not ids
      if w.max_tokens and len(ids) > w.max_tokens:
        counts["long_sentences_cut"] += 1
        for piece in cut_long_sentence(ids, w.max_tokens, w.continuation):
          self.emit(self.builder.add_sentence(piece))
      else:
        self.emit(self.builder.add_sentence(ids))
      if self.unsplit is not None:
        line_ids.extend(ids)
        if next(ends):
          self.unsplit.add_sentence(line_ids)
          line_ids = []

  def records(self):
    if not self.worker.options.shuffle_window:
      return [b"".join(self.out)]  # one object is cheaper to send back than many
    return self.out

  def final_counts(self):
    b = self.builder
    return dict(self.counts, examples=b.examples, single_segment=b.single_segment,
                tokens=b.tokens_in, tokens_written=b.tokens_kept,
                tokens_trimmed=b.tokens_trimmed,
                tokens_written_unsplit=(b.tokens_kept if self.unsplit is None
                                        else self.unsplit.tokens_kept))


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


# The worker process's UnitWorker, made by the pool's initializer after the fork.
_worker = None


def _init_worker(options, plan, tokenizer):
  global _worker
  errors.init_worker_signals()
  _worker = UnitWorker(options, plan, tokenizer)


def _build_unit(task):
  return _worker.build(task)


def unit_results(tasks, options, plan, tokenizer):
  """UnitWorker.build results in task order, a bounded number of units in flight.

  Args:
    tasks: [(unit index, pieces)], see UnitWorker.build.
    options: BuildOptions (num_processes: worker processes, forked).
    plan: dataset_builder.Plan (see UnitWorker).
    tokenizer: the tokenizer the workers inherit.

  Yields:
    (unit index, [framed records], counts), in the order of `tasks`. Closing the
    generator stops the worker pool.
  """
  if options.num_processes == 1 or len(tasks) <= 1:
    yield from map(UnitWorker(options, plan, tokenizer).build, tasks)
    return
  # fork: workers inherit the tokenizer already built here (no TF in this process).
  ctx = multiprocessing.get_context("fork")
  with ctx.Pool(options.num_processes, initializer=_init_worker,
                initargs=(options, plan, tokenizer)) as pool:
    pending = collections.deque()
    todo = iter(tasks)
    for task in todo:
      pending.append(pool.apply_async(_build_unit, (task,)))
      if len(pending) >= WINDOW_PER_PROCESS * options.num_processes:
        break
    while pending:
      result = pending.popleft().get()
      task = next(todo, None)
      if task is not None:
        pending.append(pool.apply_async(_build_unit, (task,)))
      yield result
