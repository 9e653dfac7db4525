"""Benchmark: build vocabs on the shared corpus (~17 MB) and compare them side by side.

  PYTHONPATH=. .venv/bin/python benchmarks/bench_vocab.py [--corpus DIR] [--skip-sp]

One `python -m vocab.build_vocab` run per recipe (wall time includes start-up), all on
the same corpus with --text-field content (the petitions are JSON lines, the rest plain
text; the korean-parallel .tar.gz archives are skipped by the builder). Then KoELECTRA's
published v1 and v3 vocabs are measured on the same held-out lines, and the
sentencepiece vocab is converted to WordPiece form to count how often WordPiece's
greedy longest match segments a word differently from SentencePiece itself.
"""
import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from model.tokenization import FastTokenizer  # noqa: E402
from util.shared_data import shared_data_dir  # noqa: E402
from util import corpus as corpus_lib  # noqa: E402
from vocab import build_vocab  # noqa: E402
from vocab import report as report_lib  # noqa: E402
from vocab import sentencepiece_vocab  # noqa: E402

RECIPES = {
    "wordpiece": [],
    "wordpiece+mecab (v3)": ["--pretokenize", "mecab"],
    "sentencepiece-unigram": ["--model", "sentencepiece", "--sp-model-type", "unigram"],
}


def run(corpus, out, extra):
  cmd = [sys.executable, "-m", "vocab.build_vocab", "--corpus", corpus, "--text-field",
         "content", "--vocab-size", "32000", "--limit-alphabet", "6000", "--unused", "200",
         "--output-dir", out, "--quiet", *extra]
  env = dict(os.environ, PYTHONPATH=str(ROOT))
  t, r = time.time(), resource.getrusage(resource.RUSAGE_CHILDREN)
  proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
  wall = time.time() - t
  r2 = resource.getrusage(resource.RUSAGE_CHILDREN)
  cpu = (r2.ru_utime - r.ru_utime) + (r2.ru_stime - r.ru_stime)  # incl. worker processes
  if proc.returncode:
    raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stderr}")
  with open(os.path.join(out, "vocab_report.json"), encoding="utf-8") as f:
    return (wall, cpu), json.load(f)


def heldout_lines(corpus):
  plan, _ = corpus_lib.plan_corpus([corpus], "content")
  reader = build_vocab.CorpusReader(plan, 100, 20000, progress=False)
  for _ in reader:
    pass
  return reader.heldout


def sp_as_wordpiece_mismatch(sp_model, lines, tmpdir):
  """Share of words whose WordPiece segmentation (converted SP vocab) differs from SP's."""
  sp = sentencepiece_vocab.SentencePieceTokenizer(sp_model)
  pieces = sorted(sp.vocab, key=sp.vocab.get)
  wp = []
  for p in pieces:
    if p.startswith("[") or p == "\u2581":
      wp.append(p)
    elif p.startswith("\u2581"):
      wp.append(p[1:])
    else:
      wp.append("##" + p)
  vocab_file = os.path.join(tmpdir, "sp_as_wordpiece.txt")
  with open(vocab_file, "w", encoding="utf-8") as f:
    f.write("".join(t + "\n" for t in dict.fromkeys(wp)))
  tok = FastTokenizer(vocab_file)
  words = differ = 0
  for line in lines:
    for w in line.split():
      if not w.isalnum():
        continue  # compare plain words only: punctuation splitting differs by design
      words += 1
      ours = sp.tokenize(w)
      ours = [p[1:] if i == 0 else "##" + p for i, p in enumerate(ours)]
      if tok.tokenize(w) != [p for p in ours if p not in ("", "##")]:
        differ += 1
  return differ / max(words, 1), words


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--corpus", default=str(shared_data_dir() / "corpus"))
  p.add_argument("--skip-sp", action="store_true")
  args = p.parse_args()
  load0 = os.getloadavg()[0]
  size = sum(f.stat().st_size for f in pathlib.Path(args.corpus).rglob("*") if f.is_file())
  print(f"corpus: {args.corpus} ({size / 1e6:.1f} MB on disk, {os.cpu_count()} cores)")
  rows = []
  with tempfile.TemporaryDirectory() as tmp:
    for name, extra in RECIPES.items():
      if args.skip_sp and "sentencepiece" in name:
        continue
      out = os.path.join(tmp, name.split()[0].replace("+", "_"))
      wall, rep = run(args.corpus, out, extra)
      rows.append((name, wall, rep))
      print(f"  built {name}: {wall[0]:.1f}s wall, {wall[1]:.1f}s CPU", flush=True)
    held = heldout_lines(args.corpus)
    data = shared_data_dir() / "vocab"
    for tag in ("v1", "v3"):
      tok = FastTokenizer(str(data / tag / "vocab.txt"))
      s = report_lib.token_stats(tok, held, tok.vocab["[UNK]"])
      rows.append((f"KoELECTRA {tag} (published)", None,
                   {"vocab": {"vocab_size": len(tok.vocab)}, "eval": {"heldout": s}}))
    sp_rows = [r for r in rows if r[0].startswith("sentencepiece")]
    mismatch = (sp_as_wordpiece_mismatch(sp_rows[0][2]["vocab_file"], held, tmp)
                if sp_rows else None)

  print(f"\nheld-out: {len(held)} lines (every 100th line, not trained on)")
  print(f"load average: {load0:.1f} at start, {os.getloadavg()[0]:.1f} at end "
        f"(other jobs on the machine slow the wall times, not the CPU times)")
  print(f"{'vocab':30s} {'wall s':>7s} {'CPU s':>6s} {'size':>6s} {'[UNK] ratio':>12s} {'tok/word':>9s} "
        f"{'vs wordpiece':>12s}")
  base = rows[0][2]["eval"]["heldout"]["tokens_per_word"]
  for name, wall, rep in rows:
    h = rep["eval"]["heldout"]
    w = f"{wall[0]:7.1f} {wall[1]:6.1f}" if wall is not None else f"{'-':>7s} {'-':>6s}"
    print(f"{name:30s} {w} {rep['vocab']['vocab_size']:6d} {h['unk_ratio']:12.5f} "
          f"{h['tokens_per_word']:9.3f} {h['tokens_per_word'] / base:11.2f}x")
  if mismatch:
    print(f"\nsentencepiece vocab read as WordPiece: {mismatch[0]:.1%} of {mismatch[1]} held-out "
          f"words segment differently from SentencePiece's own segmentation")


if __name__ == "__main__":
  main()
