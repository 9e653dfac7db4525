"""Benchmark: FastTokenizer vs the pure-Python FullTokenizer on real Korean lines.

Every path tokenizes the same lines, interleaved round by round (the order reversed
every other round, so no path always follows the same one); FastTokenizer's
output is checked to equal the reference ids line by line before any figure is
printed. For scale it also times the `tokenizers` library's own BERT pipeline
(BertWordPieceTokenizer.encode_batch, Rust, all cores), whose ids differ from the
original's on a few lines (docs/tokenization.md); those are counted, not hidden.

  PYTHONPATH=. .venv/bin/python benchmarks/bench_tokenizer.py [--lines 50000] [--repeats 3]
"""
import argparse
import csv
import gc
import json
import os
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model import tokenization  # noqa: E402
from util import corpus  # noqa: E402


def data_dir():
  env = os.environ.get("KOELECTRA_DATA")
  return pathlib.Path(env) if env else ROOT.parent / "shared" / "data"


def _tsv_column(path, columns):
  with open(path, encoding="utf-8", newline="") as f:
    for row in csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE):
      for c in columns:
        if row.get(c):
          yield row[c]


def korean_lines(root, limit):
  """Up to `limit` real lines, interleaved across sources so any prefix is a mix."""
  root = pathlib.Path(root)
  sources = [
      corpus.iter_texts(sorted((root / "corpus" / "petitions").iterdir()), text_field="content"),
      corpus.iter_texts(root / "corpus" / "hate-speech-unlabeled"),
      _tsv_column(root / "nsmc/derived/nsmc_pool_train.tsv", ["document"]),
      _tsv_column(root / "nsmc/derived/nsmc_pool_dev.tsv", ["document"]),
      _tsv_column(root / "kornli/xnli.dev.ko.tsv", ["sentence1", "sentence2"]),
      _tsv_column(root / "korsts/sts-train.tsv", ["sentence1", "sentence2"]),
      _tsv_column(root / "paws/dev_2k.tsv", ["sentence1", "sentence2"]),
      _tsv_column(root / "question-pair/train.tsv", ["question1", "question2"]),
      _tsv_column(root / "hate-speech/koelectra/train.tsv", ["title", "comment"]),
      corpus.iter_texts(root / "corpus" / "namuwikitext"),
      (s for d in json.load(open(root / "kornli/klue/klue-nli-v1.1_dev.json", encoding="utf-8"))
       for s in (d["premise"], d["hypothesis"])),
      (p["context"] for a in json.load(open(root / "korquad/derived/korquad_dev_handover.json",
                                            encoding="utf-8"))["data"]
       for p in a["paragraphs"]),
  ]
  out = []
  while sources and len(out) < limit:
    for src in list(sources):
      line = next(src, None)
      if line is None:
        sources.remove(src)
      elif line.strip():
        out.append(line)
        if len(out) >= limit:
          break
  return out


def _time(fn):
  """Wall seconds, CPU seconds of this process (all threads), result."""
  # Start every path from the same garbage-collector state: leftovers of the previous
  # path's millions of objects otherwise slow down whichever path runs next.
  gc.collect()
  t0, c0 = time.perf_counter(), time.process_time()
  result = fn()
  return time.perf_counter() - t0, time.process_time() - c0, result


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--lines", type=int, default=50000)
  p.add_argument("--repeats", type=int, default=3,
                 help="rounds; each round times every path once (interleaved, order "
                 "reversed every other round); best and median printed")
  p.add_argument("--vocab", default=None, help="default: <data>/vocab/v3/vocab.txt")
  p.add_argument("--batch", type=int, default=10000, help="lines per encode_batch call")
  args = p.parse_args(argv)

  vocab = args.vocab or str(data_dir() / "vocab" / "v3" / "vocab.txt")
  lines = korean_lines(data_dir(), args.lines)
  n = len(lines)
  print(f"{n} real lines ({sum(map(len, lines)) / n:.0f} chars/line), vocab {vocab}")

  ref = tokenization.FullTokenizer(vocab)
  fast = tokenization.FastTokenizer(vocab)
  one_core = tokenization.FastTokenizer(vocab, parallel=False)
  from tokenizers import BertWordPieceTokenizer
  library = BertWordPieceTokenizer(vocab, lowercase=False, strip_accents=False)
  # Load the compiled kernel (or compile it, on a fresh checkout) before any timing.
  fast.encode_batch(lines[:100])

  def batched(encode):
    out = []
    for i in range(0, n, args.batch):
      out.extend(encode(lines[i:i + args.batch]))
    return out

  def library_batch(texts):
    return [e.ids for e in library.encode_batch(texts, add_special_tokens=False)]

  paths = {
      "FullTokenizer (Python)": lambda: [ref.encode(l) for l in lines],
      f"FastTokenizer ({tokenization._cores()} threads)": lambda: batched(fast.encode_batch),
      "FastTokenizer (parallel=False)": lambda: batched(one_core.encode_batch),
      "tokenizers BertWordPiece": lambda: batched(library_batch),
  }
  exact = list(paths)[:3]

  times = {k: [] for k in paths}
  cpus = {k: [] for k in paths}
  want = None
  differ = {}
  for r in range(args.repeats):
    for name, fn in (list(paths.items()) if r % 2 == 0 else list(paths.items())[::-1]):
      t, c, got = _time(fn)
      times[name].append(t)
      cpus[name].append(c)
      # Checked and dropped at once: holding every path's 50,000 lists would make
      # Python's garbage collector slow down whichever path runs next.
      want = got if want is None else want  # round 0 runs the reference first
      bad = [i for i, (a, b) in enumerate(zip(want, got)) if a != b]
      differ[name] = len(bad)
      if name in exact and (bad or len(got) != n):
        print(f"MISMATCH in {name}: {len(bad)} lines, first {lines[bad[0]][:80]!r}"
              if bad else f"MISMATCH in {name}: {len(got)} results")
        return 1
      del got
  tokens = sum(map(len, want))
  print(f"identical ids from {', '.join(exact)} on all {n} lines ({tokens} tokens)")
  # Wall time is what a user waits for; CPU time (summed over threads) is steadier
  # when other jobs share the cores, so both are shown.
  ref_name = "FullTokenizer (Python)"
  t_ref, c_ref = min(times[ref_name]), min(cpus[ref_name])
  tm_ref, cm_ref = statistics.median(times[ref_name]), statistics.median(cpus[ref_name])
  print(f"{'path':<32}{'best s':>7}{'sent/s':>9}{'vs Python':>10}{'median':>8}"
        f"{'cpu s':>8}{'vs Python':>10}{'median':>8}   all runs wall (s)")
  for name, ts in times.items():
    t, c = min(ts), min(cpus[name])
    tm, cm = statistics.median(ts), statistics.median(cpus[name])
    runs = ", ".join(f"{x:.2f}" for x in ts)
    note = f"   ({differ[name]} lines differ)" if differ[name] else ""
    print(f"{name:<32}{t:>7.2f}{n / t:>9,.0f}{t_ref / t:>9.1f}x{tm_ref / tm:>7.1f}x"
          f"{c:>8.2f}{c_ref / c:>9.1f}x{cm_ref / cm:>7.1f}x   {runs}{note}")
  print("vs Python: best against best; median: median against median (wall, then CPU)")
  if hasattr(os, "getloadavg"):
    print(f"load average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
  return 0


if __name__ == "__main__":
  sys.exit(main())
