"""Turning a text corpus into the sharded TFRecords that pretraining reads (docs/corpus.md).

`build(BuildOptions)` runs in four steps:

- plan: the corpus, taken as one byte stream in file order, is cut into ~1 MB work units
  at document boundaries, and the units into a run of consecutive units per shard;
- resume: the output directory is checked against the recorded options (config.json);
  shards that are complete (shard file + manifest) are kept;
- write: the remaining units are built in worker processes (pretrain/dataset_units.py)
  and written in order; a shard appears under its final name only when complete;
- summarise: the counts of every shard, times and options go to summary.json.

`inspect` prints the first examples of a shard decoded back to text.
"""
import dataclasses
import functools
import hashlib
import json
import math
import os
import random
import resource
import sys
import time
from typing import List, Optional, Tuple

from model import tokenization
from pretrain import dataset_units
from pretrain import example_builder
from pretrain import sentence_split
from util import corpus
from util import errors
from util import fileio
from util import tfrecord_writer
from util.dataclass_args import option

STATE_DIR = ".build"                    # config + one manifest per complete shard
SUMMARY = "summary.json"
MiB = 1 << 20
AUTO_SHARD_BYTES = 64 * MiB             # default: one shard per 64 MB of input
MAX_AUTO_SHARDS = 1000                  # the original's fixed shard count


class BuildError(errors.UserError):
  """A problem with the build's input, options or output; the message says what to do."""



@dataclasses.dataclass(frozen=True)
class BuildOptions:
  """Everything a build depends on; each field is the CLI flag of the same name.

  Raises BuildError on construction when a value is out of range.
  """
  corpus_dir: Tuple[str, ...] = option(
      help="corpus directories and/or files (read recursively, sorted)")
  vocab_file: str = option(help="WordPiece vocab, one token a line")
  output_dir: str = option(help="local directory or gs://bucket/dir")
  max_seq_length: int = option(128, "tokens per example, [CLS]/[SEP] included")
  num_processes: int = option(
      1, "worker processes (fork); the output does not depend on it")
  num_out_files: int = option(
      0, "number of shards (default: one per 64 MB of input, at most 1000)")
  seed: int = option(12345, "same corpus + options + seed: byte-identical shards")
  text_field: Optional[str] = option(
      None, "read JSON lines, text in this field (the petitions: 'content')")
  blanks_separate_docs: bool = option(True, "blank lines separate documents (default)")
  do_lower_case: bool = option(False, "lower-case the text (KoELECTRA vocabs are cased)")
  strip_accents: Optional[bool] = option(
      None, "strip accents (default: follow --do-lower-case, as BERT does)")
  tokenizer: str = option(
      "fast", "reference = the pure-Python FullTokenizer (same ids, slower)")
  shuffle_window: int = option(
      10000, "mix each shard's records within a window of N records (default 10000; 0 "
             "keeps corpus order; see docs/corpus.md)")
  original_sentence_order: bool = option(
      False, "reproduce the original's reordering of sentences (docs/corpus.md)")
  split_sentences: str = option(
      "none", "split each line into sentences first: none (default, the original: a "
              "line is a sentence), rules (built in), kiwi (needs kiwipiepy); see "
              "docs/corpus.md")
  max_sentence_tokens: Optional[int] = option(
      None, "cut longer sentences into pieces at word starts (default with "
            "--split-sentences: (max-seq-length - 3) // 2; 0 never; docs/corpus.md)")
  overwrite: bool = option(False, "replace shards already in --output-dir")
  unit_mb: float = option(1.0, "work-unit size in MB; also bounds reading past a unit")

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

  @property
  def sentence_cut(self) -> int:
    """max_sentence_tokens resolved: by default (max_seq_length - 3) // 2 (segment A's
    aim) when splitting, 0 (never cut, the original) otherwise."""
    if self.max_sentence_tokens is not None:
      return self.max_sentence_tokens
    return (self.max_seq_length - 3) // 2 if self.split_sentences != "none" else 0


# ---------------------------------------------------------------------------
# Plan: files -> work units -> shards.


@dataclasses.dataclass
class Plan:
  """The corpus cut into work units, and the units into shards.

  Attributes:
    files, sizes: the corpus files in reading order and their sizes in bytes.
    text_fields: {file: JSON field or None}.
    skipped_files: what util/corpus.plan_corpus left out, with the reason.
    num_out: shards; num_units: work units.
    parts: parts[u] = [(file, start, end or None)], the byte ranges of unit u.
    shard_units: shard_units[s] = range of the units written to shard s.
    max_overrun: bytes a document may run past its unit's end before it is cut there.
  """
  files: List[str]
  sizes: List[int]
  text_fields: dict
  skipped_files: list
  num_out: int
  num_units: int
  parts: list
  shard_units: List[range]
  max_overrun: int

  @functools.cached_property
  def _size_of(self):
    return dict(zip(self.files, self.sizes))

  def unit_bytes(self, unit):
    """Bytes of the corpus in unit `unit`."""
    return sum((self._size_of[p] if e is None else e) - a for p, a, e in self.parts[unit])


def plan_build(options: BuildOptions) -> Plan:
  """Reads the corpus listing and cuts it into units and shards.

  Raises:
    BuildError, corpus.CorpusError: no corpus file, or every one empty.
  """
  listing, skipped_files = corpus.plan_corpus(options.corpus_dir, options.text_field)
  files = [f for f, _ in listing]
  sizes = [corpus.file_size(f) for f in files]
  total = sum(sizes)
  if not total:
    raise BuildError(f"every corpus file is empty: {', '.join(files[:5])}")
  num_out = options.num_out_files or min(MAX_AUTO_SHARDS,
                                         max(1, math.ceil(total / AUTO_SHARD_BYTES)))
  unit_bytes = int(options.unit_mb * MiB)
  num_units = max(num_out, math.ceil(total / unit_bytes))
  shard_units = [range(s * num_units // num_out, (s + 1) * num_units // num_out)
                 for s in range(num_out)]
  # A reader that starts inside a document skips up to max_overrun bytes of it: with
  # more shards than MBs (the original's 1,000 files) the units are smaller than
  # unit_mb, and skipping unit_mb each would read the corpus many times over.
  max_overrun = unit_bytes if num_units == math.ceil(total / unit_bytes) else \
      math.ceil(total / num_units)
  return Plan(files, sizes, dict(listing), skipped_files, num_out, num_units,
              corpus.split_ranges(files, num_units), shard_units, max_overrun)


def recorded_options(options: BuildOptions, plan: Plan) -> dict:
  """What the output depends on, as .build/config.json records it for resuming.

  The splitting keys are recorded only when used: the record of a `none` build stays
  what it was before they existed, so its output directory still resumes.
  """
  record = dict(do_lower_case=options.do_lower_case, strip_accents=options.strip_accents,
                max_seq_length=options.max_seq_length, seed=options.seed,
                text_fields=plan.text_fields,
                blanks_separate_docs=options.blanks_separate_docs,
                original_sentence_order=options.original_sentence_order,
                shuffle_window=options.shuffle_window, max_overrun=plan.max_overrun)
  if options.split_sentences != "none":
    record["split_sentences"] = options.split_sentences
  if options.sentence_cut:
    record["max_sentence_tokens"] = options.sentence_cut
  record.update(vocab_sha1=_sha1(options.vocab_file), num_out_files=plan.num_out,
                num_units=plan.num_units, files=[[f, s] for f, s in zip(plan.files, plan.sizes)])
  return record


def _sha1(path):
  h = hashlib.sha1()
  with fileio.open_file(path, "rb") as f:
    h.update(f.read())
  return h.hexdigest()


# ---------------------------------------------------------------------------
# Resume: the output directory's state.


class Totals:
  """Sums of the corpus statistics and unit counts (dataset_units.COUNTS)."""

  def __init__(self):
    self.corpus = corpus.CorpusStats()
    self.counts = dict.fromkeys(dataset_units.COUNTS, 0)

  def add(self, record):
    self.corpus.merge(corpus.CorpusStats(**record["corpus"]))
    for k in dataset_units.COUNTS:
      # Manifests of older builds (always `none`) lack the newer counts.
      self.counts[k] += record.get(
          k, record["tokens_written"] if k == "tokens_written_unsplit" else 0)

  def as_record(self):
    return {"corpus": self.corpus.as_dict(), **self.counts}


def resume(output_dir: str, record: dict, overwrite: bool):
  """Makes the output directory ready and reads the manifests of its complete shards.

  Args:
    output_dir: the build's output directory (local or scheme://).
    record: recorded_options(); must equal the directory's config.json to resume.
    overwrite: delete the shards, state and summary of an earlier build first.

  Returns:
    (set of complete shard indices, Totals of those shards).

  Raises:
    BuildError: the directory holds shards of another build, or a finished build.
  """
  fileio.makedirs(output_dir)
  state = fileio.join(output_dir, STATE_DIR)
  shards = fileio.glob(fileio.join(output_dir, example_builder.SHARD_GLOB))
  config_path = fileio.join(state, "config.json")
  summary_path = fileio.join(output_dir, SUMMARY)
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
  for p in fileio.glob(fileio.join(output_dir, ".tmp-*")):
    fileio.remove(p)
  if shards:
    if old != record:
      raise BuildError(
          f"{output_dir} already holds {len(shards)} shard(s) from another build "
          f"(e.g. {os.path.basename(shards[0])}); pass --overwrite to replace them, "
          "or choose another --output-dir")
    if fileio.exists(summary_path):
      raise BuildError(f"{output_dir} already holds a complete build ({SUMMARY}); "
                       "pass --overwrite to rebuild it")
  fileio.makedirs(state)
  with fileio.atomic_write(config_path) as f:
    json.dump(record, f, indent=1, ensure_ascii=False)
  n = record["num_out_files"]
  done = {i for i in range(n)
          if fileio.exists(fileio.join(output_dir, example_builder.SHARD_NAME.format(i, n)))
          and fileio.exists(_manifest_path(output_dir, i))}
  totals = Totals()
  for s in sorted(done):
    with fileio.open_file(_manifest_path(output_dir, s)) as f:
      totals.add(json.load(f))
  return done, totals


def _manifest_path(output_dir, shard):
  return fileio.join(output_dir, STATE_DIR, f"shard-{shard:05d}.json")


# ---------------------------------------------------------------------------
# Write: units -> shards.


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


def write_shards(options, plan, todo, tokenizer, totals, progress):
  """Builds the units of the shards in `todo` and writes each shard and its manifest.

  Args:
    options: BuildOptions.
    plan: Plan.
    todo: indices of the shards to write, ascending.
    tokenizer: the tokenizer the workers inherit.
    totals: Totals, updated with each shard as it completes.
    progress: show a progress bar (bytes read) on stderr.
  """
  tasks = [(u, plan.parts[u]) for s in todo for u in plan.shard_units[s]]
  bar = None
  if progress:
    from tqdm import tqdm
    bar = tqdm(total=sum(plan.unit_bytes(u) for u, _ in tasks), unit="B",
               unit_scale=True, desc="reading", file=sys.stderr, dynamic_ncols=True)
  results = dataset_units.unit_results(tasks, options, plan, tokenizer)
  try:
    for s in todo:
      shard = fileio.join(options.output_dir,
                          example_builder.SHARD_NAME.format(s, plan.num_out))
      shard_totals = Totals()
      window = Shuffler(options.shuffle_window, f"{options.seed}:shard:{s}")
      with tfrecord_writer.open_writer(shard) as writer:
        for u in plan.shard_units[s]:
          unit, records, counts = next(results)
          assert unit == u, (unit, u)
          writer.write_framed(window.push(records))
          shard_totals.add(counts)
          if bar is not None:
            bar.update(plan.unit_bytes(u))
            bar.set_postfix(examples=totals.counts["examples"] +
                            shard_totals.counts["examples"], refresh=False)
        writer.write_framed(window.drain())
      with fileio.atomic_write(_manifest_path(options.output_dir, s)) as f:
        json.dump(shard_totals.as_record(), f)
      totals.add(shard_totals.as_record())
  finally:
    results.close()  # stops the worker pool, also on Ctrl-C
    if bar is not None:
      bar.close()


def _cpu_seconds():
  """CPU time of this process and its reaped children (the workers)."""
  me = resource.getrusage(resource.RUSAGE_SELF)
  kids = resource.getrusage(resource.RUSAGE_CHILDREN)
  return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# ---------------------------------------------------------------------------
# The build.


def build(options: BuildOptions, progress: bool = True) -> dict:
  """Builds the shards described by `options`; returns the summary (also in summary.json).

  Args:
    options: the build's options.
    progress: show a progress bar on stderr.

  Returns:
    the summary dict (counts, times, options); see summarise and print_summary.

  Raises:
    errors.UserError (BuildError, corpus.CorpusError, tokenization.VocabError, ...):
      bad options, input or output directory, with a message naming it.
  """
  t0 = time.time()
  plan = plan_build(options)
  if options.split_sentences != "none":
    sentence_split.check_splitter(options.split_sentences)  # e.g. kiwi not installed
  # Checks the vocab and case settings up front; workers inherit it.
  tokenizer = dataset_units.make_tokenizer(options, parallel=options.num_processes == 1)
  record = recorded_options(options, plan)
  done, totals = resume(options.output_dir, record, options.overwrite)
  resumed_examples = totals.counts["examples"]
  if done:
    print(f"resuming: {len(done)} of {plan.num_out} shards already complete",
          file=sys.stderr)
  t_start = time.time()
  cpu_start = _cpu_seconds()
  write_shards(options, plan, [s for s in range(plan.num_out) if s not in done],
               tokenizer, totals, progress)
  times = dict(wall=time.time() - t0, build=time.time() - t_start,
               cpu=_cpu_seconds() - cpu_start)  # workers are reaped: their CPU counts
  summary = summarise(options, plan, record, len(done), totals,
                      totals.counts["examples"] - resumed_examples, times)
  with fileio.atomic_write(fileio.join(options.output_dir, SUMMARY)) as f:
    json.dump(summary, f, indent=1, ensure_ascii=False)
  return summary


def summarise(options, plan, record, resumed_shards, totals, new_examples, times):
  """The build's summary (summary.json): files, documents, tokens, sentences, times.

  Args:
    options: BuildOptions; plan: Plan; record: recorded_options().
    resumed_shards: shards an earlier run had completed.
    totals: Totals over every shard.
    new_examples: examples written by this run.
    times: {"wall", "build", "cpu"} seconds.

  Returns:
    dict, in the key order of summary.json.
  """
  c, k = totals.corpus, totals.counts

  def share(n, of):
    return n / of if of else 0.0

  return {
      "output_dir": options.output_dir,
      "shards": plan.num_out,
      "resumed_shards": resumed_shards,
      "files": len(plan.files),
      "empty_files": [f for f, s in zip(plan.files, plan.sizes) if s == 0],
      "skipped_files": plan.skipped_files,
      "documents": c.documents,
      "lines": c.lines,
      "bytes_read": c.bytes_read,
      "skipped_lines": c.skipped_undecodable + c.skipped_bad_json + c.skipped_binary,
      "skipped_undecodable": c.skipped_undecodable,
      "skipped_binary": c.skipped_binary,
      "skipped_bad_json": c.skipped_bad_json,
      "skipped_examples": c.skipped_examples,
      "examples": k["examples"],
      "single_segment_examples": k["single_segment"],
      "tokens": k["tokens"],
      "tokens_written": k["tokens_written"],
      "tokens_trimmed": k["tokens_trimmed"],
      "trimmed_share": share(k["tokens_trimmed"], k["tokens"]),
      "unk_tokens": k["unk_tokens"],
      "unk_ratio": share(k["unk_tokens"], k["tokens"]),
      "split_sentences": options.split_sentences,
      "sentences": k["sentences"],
      "sentences_per_line": share(k["sentences"], c.lines),
      "empty_sentences": k["empty_sentences"],
      "split_errors": k["split_errors"],
      "long_sentences_cut": k["long_sentences_cut"],
      # Shares of all tokens that reach an example, with this build's splitting and
      # (from the second builder) without any.
      "kept_share": share(k["tokens_written"], k["tokens"]),
      "kept_share_unsplit": share(k["tokens_written_unsplit"], k["tokens"]),
      "wall_time_s": round(times["wall"], 3),
      "build_time_s": round(times["build"], 3),
      "build_cpu_s": round(times["cpu"], 3),
      "examples_per_s": (round(new_examples / times["build"], 1) if times["build"] > 0
                         else 0.0),
      "num_processes": options.num_processes,
      "options": {key: v for key, v in record.items() if key not in ("files", "text_fields")},
      "text_field": options.text_field,
  }


def print_summary(s, out=None):
  """Prints a summary (build's return value) in a few lines.

  Args:
    s: the summary dict.
    out: a text stream (default sys.stdout).
  """
  out = out or sys.stdout
  print(f"wrote {s['examples']:,} examples to {s['shards']} shard(s) in {s['output_dir']}"
        + (f" ({s['resumed_shards']} resumed)" if s["resumed_shards"] else ""), file=out)
  print(f"  files {s['files']:,} ({len(s['empty_files'])} empty), documents "
        f"{s['documents']:,}, lines {s['lines']:,}, skipped lines {s['skipped_lines']:,}",
        file=out)
  for ex in s["skipped_examples"][:3]:
    print(f"    skipped {ex}", file=out)
  for ex in s["skipped_files"][:3]:
    print(f"    skipped file {ex}", file=out)
  if len(s["skipped_files"]) > 3:
    print(f"    ... {len(s['skipped_files'])} files skipped in all ({SUMMARY})", file=out)
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
  """Prints the first examples of a TFRecord file as text and verifies every record.

  Args:
    path: a shard (local or scheme://).
    vocab_file: the vocab it was built with.
    num_examples: how many examples to print.
    out: a text stream (default sys.stdout).

  Raises:
    BuildError: no such file, or a record that is not a pretraining example.
    tfrecord_writer.RecordError: a truncated record or a bad checksum anywhere in the file.
  """
  out = out or sys.stdout
  if not fileio.exists(path):
    raise BuildError(f"no such file: {path}")
  inv = {i: t for t, i in tokenization.load_vocab(vocab_file).items()}

  def text(ids):
    tokens = [inv.get(i, f"<id {i}>") for i in ids]
    return " ".join(tokens).replace(" ##", "")

  n = 0
  # Every record is read (its checksums verified), the first num_examples printed: this is
  # where an error about a damaged shard sends the user (util/run_guard.py).
  for n, record in enumerate(tfrecord_writer.read_records(path), 1):
    if n > num_examples:
      continue
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
  print(f"{path}: {n} records, checksums verified" if n else f"{path}: no examples",
        file=out)
