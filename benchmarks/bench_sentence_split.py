"""Sentence splitters compared on real shared text: boundary quality and speed.

  PYTHONPATH=. .venv/bin/python benchmarks/bench_sentence_split.py [--speed-mb 2]

Quality: two labelled samples of the shared corpus, labelled by eye as a Korean reader
splits them: `benchmarks/sentence_boundaries.tsv` (42 lines: 24 petition paragraphs, 6
wiki lines, 12 news comments; the rules splitter was tuned while reading it) and
`benchmarks/sentence_boundaries_heldout.tsv` (38 other lines: 22 / 4 / 12, labelled
before the rules splitter was run on them; its errors then led to a few more rules) and
`benchmarks/sentence_boundaries_blind.tsv` (23 more lines: 12 / 3 / 8, labelled after
the rules were final and measured once). The shared data is not in the repository,
so each row
only points into it: file (under the shared data directory), line number, paragraph
index (JSON lines: the n-th non-empty line of the record's `content`; plain text: 0),
and the character offsets where a new sentence starts in that stripped paragraph.
Scores are boundary precision / recall / F1 over all rows.

Speed: the petitions' paragraphs (the first --speed-mb MB), each splitter timed over
the same lines, in alternating order over --rounds rounds (the machine is shared:
compare the ratios of one run).

Splitters: `rules` (pretrain/sentence_split.py) always; `kiwi` (kiwipiepy) and `kss` when
importable (--extra-path adds a directory holding them, e.g. a `pip install --target`).
"""
import argparse
import json
import os
import pathlib
import re
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from pretrain import sentence_split  # noqa: E402
from util.shared_data import shared_data_dir  # noqa: E402

# (name, file): the rules were tuned while reading the first; the second was labelled
# from kiwi's and kss's boundaries only, before the rules were run on it (its errors
# were then studied: some rules came from them); the third was labelled the same way
# after the rules were final and measured once (docs/corpus.md lists what changed after).
LABELS = (("development", ROOT / "benchmarks" / "sentence_boundaries.tsv"),
          ("held-out", ROOT / "benchmarks" / "sentence_boundaries_heldout.tsv"),
          ("blind", ROOT / "benchmarks" / "sentence_boundaries_blind.tsv"))


def paragraph(data_dir, rel, line_no, para):
  """The text the builder hands to a splitter for (file, line, paragraph)."""
  with open(data_dir / rel, encoding="utf-8") as f:
    for n, line in enumerate(f, 1):
      if n == line_no:
        break
  if line.lstrip().startswith("{"):
    lines = [l.strip() for l in json.loads(line)["content"].splitlines() if l.strip()]
    return lines[para]
  return line.strip()


def load_labels(data_dir, path):
  """[(where, text, set of boundary offsets)] from the labels file."""
  rows = []
  with open(path, encoding="utf-8") as f:
    for line in f:
      if not line.strip() or line.startswith("#"):
        continue
      rel, line_no, para, offsets = line.rstrip("\n").split("\t")
      text = paragraph(data_dir, rel, int(line_no), int(para))
      gold = {int(x) for x in offsets.split(",") if x}
      rows.append((f"{rel}:{line_no}:{para}", text, gold))
  return rows


def boundaries(text, sentences):
  """Offsets in `text` where sentences after the first start (whitespace-tolerant)."""
  out, pos = [], 0
  for s in sentences:
    s = s.strip()
    if not s:
      continue
    i = text.find(s, pos)
    if i < 0:  # a splitter that normalised whitespace inside the sentence
      pattern = r"\s*".join(map(re.escape, s.replace(" ", "")))
      m = re.compile(pattern).search(text, pos)
      if not m:
        raise ValueError(f"sentence not found in order: {s[:40]!r}")
      i, end = m.start(), m.end()
    else:
      end = i + len(s)
    out.append(i)
    pos = end
  return set(out[1:])


def splitters(extra_path=None):
  """name -> callable(str) -> list[str], for every splitter that can be loaded."""
  for d in (extra_path or "").split(os.pathsep):
    if d:
      sys.path.append(d)  # after the venv: its numpy etc. stay in charge
  out = {"rules": sentence_split.split_sentences}
  try:
    out["kiwi"] = sentence_split.get_splitter("kiwi")
  except sentence_split.SplitterError as e:
    print(f"kiwi: not available ({e})")
  try:
    import kss
    out["kss"] = lambda text: kss.split_sentences(text)
  except ImportError:
    print("kss: not available (pip install kss)")
  return out


def score(rows, split):
  tp = fp = fn = 0
  for _, text, gold in rows:
    got = boundaries(text, split(text))
    tp += len(got & gold)
    fp += len(got - gold)
    fn += len(gold - got)
  p = tp / (tp + fp) if tp + fp else 0.0
  r = tp / (tp + fn) if tp + fn else 0.0
  return p, r, 2 * p * r / (p + r) if p + r else 0.0, tp, fp, fn


def speed_lines(data_dir, mb):
  lines, size = [], 0
  for p in sorted((data_dir / "corpus/petitions").glob("petitions_*")):
    with open(p, encoding="utf-8") as f:
      for row in f:
        for l in json.loads(row)["content"].splitlines():
          if l.strip():
            lines.append(l.strip())
            size += len(l.encode("utf-8"))
        if size >= mb * (1 << 20):
          return lines, size
  return lines, size


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--speed-mb", type=float, default=2.0)
  ap.add_argument("--rounds", type=int, default=2)
  ap.add_argument("--extra-path", help="directories (os.pathsep-separated) with kiwipiepy / kss "
                  "installed by pip install --target")
  ap.add_argument("--show", action="store_true", help="print each row's misses")
  args = ap.parse_args()
  data_dir = shared_data_dir()
  found = splitters(args.extra_path)
  for sample, path in LABELS:
    rows = load_labels(data_dir, path)
    n_gold = sum(len(g) for _, _, g in rows)
    print(f"\n{sample} sample ({path.name}): {len(rows)} lines, "
          f"{sum(len(t) for _, t, _ in rows):,} chars, {n_gold} boundaries")
    print(f"{'splitter':<8} {'precision':>9} {'recall':>7} {'F1':>6} {'tp':>5} {'fp':>4} "
          f"{'fn':>4}")
    for name, split in found.items():
      p, r, f1, tp, fp, fn = score(rows, split)
      print(f"{name:<8} {p:>9.3f} {r:>7.3f} {f1:>6.3f} {tp:>5} {fp:>4} {fn:>4}")
      if not args.show:
        continue
      for where, text, gold in rows:
        got = boundaries(text, split(text))
        for b in sorted(got ^ gold):
          kind = "extra" if b in got else "missed"
          print(f"   {kind:6s} {where} @{b}: ...{text[max(0, b - 25):b]}|{text[b:b + 15]}...")

  lines, size = speed_lines(data_dir, args.speed_mb)
  print(f"\nspeed: {len(lines):,} petition paragraphs, {size / 1e6:.1f} MB; load average "
        f"{os.getloadavg()[0]:.1f} (shared machine: compare ratios within this run)")
  times = {name: [] for name in found}
  sentences = {}
  names = list(found)
  for rnd in range(args.rounds):
    order = names if rnd % 2 == 0 else names[::-1]
    for name in order:
      t = time.perf_counter()
      n = sum(len(found[name](l)) for l in lines)
      times[name].append(time.perf_counter() - t)
      sentences[name] = n
  best_rules = min(times["rules"])
  for name in names:
    best = min(times[name])
    print(f"{name:<8} {size / best / 1e6:>7.2f} MB/s  {len(lines) / best:>9,.0f} lines/s  "
          f"{sentences[name] / len(lines):.2f} sentences/line  "
          f"{best / best_rules:>6.1f}x the time of rules")


if __name__ == "__main__":
  main()
