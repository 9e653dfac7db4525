"""Benchmark: FastTokenizer vs the pure-Python FullTokenizer on real Korean lines.

Both tokenize the same lines; the fast output is checked to equal the reference ids
line by line before any figure is printed. Each measurement starts from a fresh
FastTokenizer (empty word cache), so cache warm-up is included.

  PYTHONPATH=. .venv/bin/python benchmarks/bench_tokenizer.py [--lines 50000] [--repeats 3]
"""
import argparse
import csv
import json
import os
import pathlib
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
  t0 = time.perf_counter()
  result = fn()
  return time.perf_counter() - t0, result


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--lines", type=int, default=50000)
  p.add_argument("--repeats", type=int, default=3, help="timed runs of each path; best is kept")
  p.add_argument("--vocab", default=None, help="default: <data>/vocab/v3/vocab.txt")
  p.add_argument("--batch", type=int, default=10000, help="lines per encode_batch call")
  args = p.parse_args(argv)

  vocab = args.vocab or str(data_dir() / "vocab" / "v3" / "vocab.txt")
  lines = korean_lines(data_dir(), args.lines)
  chars = sum(map(len, lines))
  print(f"{len(lines)} real lines ({chars / len(lines):.0f} chars/line), vocab {vocab}")

  ref = tokenization.FullTokenizer(vocab)
  t_ref, ref_ids = min((_time(lambda: [ref.encode(l) for l in lines])
                        for _ in range(args.repeats)), key=lambda r: r[0])

  def run_fast():
    fast = tokenization.FastTokenizer(vocab)  # fresh, empty cache
    out = []
    for i in range(0, len(lines), args.batch):
      out.extend(fast.encode_batch(lines[i:i + args.batch]))
    return out

  fast_runs = [_time(run_fast) for _ in range(args.repeats)]
  t_fast, fast_ids = min(fast_runs, key=lambda r: r[0])
  bad = [i for i, (a, b) in enumerate(zip(ref_ids, fast_ids)) if a != b]
  if bad or len(ref_ids) != len(fast_ids):
    print(f"MISMATCH on {len(bad)} lines, first: {lines[bad[0]][:80]!r}" if bad else "MISMATCH")
    return 1
  tokens = sum(map(len, ref_ids))
  n = len(lines)
  print(f"identical ids on all {n} lines ({tokens} tokens)")
  print(f"{'path':<28}{'best s':>9}{'sentences/s':>14}{'tokens/s':>12}")
  print(f"{'FullTokenizer (Python)':<28}{t_ref:>9.2f}{n / t_ref:>14,.0f}{tokens / t_ref:>12,.0f}")
  print(f"{'FastTokenizer (cold cache)':<28}{t_fast:>9.2f}{n / t_fast:>14,.0f}{tokens / t_fast:>12,.0f}")
  print(f"fast runs (s): {', '.join(f'{t:.2f}' for t, _ in fast_runs)}")
  print(f"speed-up: {t_ref / t_fast:.1f}x")
  return 0


if __name__ == "__main__":
  sys.exit(main())
