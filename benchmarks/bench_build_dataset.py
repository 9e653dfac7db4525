"""Corpus-builder speed and memory, measured side by side in one run.

  PYTHONPATH=. .venv/bin/python benchmarks/bench_build_dataset.py [--mb 17] [--repeat 10]

Input: the shared Korean corpus as plain text (~17 MB: petitions' `content` with a blank
line between petitions, news comments, wiki samples), max_seq_length 128.

Speed: the baseline is this project's pure-Python mode, which runs the original
algorithm with the reference (pure-Python, original-BERT) tokenizer: one process, and
two processes (the original's setting on this machine). Against it: the fast tokenizer
with 1 and 2 processes. examples/s is counted after start-up (tokenizer built), as the
original's 6,100 examples/s was counted after TensorFlow start-up.

Memory: peak RSS of the largest process (parent or worker), for the corpus and for the
same corpus with every file concatenated `--repeat` times.

Sentence splitting (issue 15): `--split-sentences none` against `rules` (fast tokenizer,
2 processes) on the same corpus, alternating their order over --split-rounds rounds:
tokens kept, examples/s, input MB/s and CPU seconds, best of the rounds for each.
`--split-only` runs just this comparison.

Against the original (issue 22): `--original CHECKOUT` (a clone of google-research/electra)
runs its build_pretraining_dataset.py and ours with the same arguments (cased, accents
kept, 2 processes) over --rounds rounds, the order reversed each round; ours both with its
default layout and with the original's 1,000 output files. Each command is timed whole,
from process start to exit, as a user sees it; the ratio is the original's wall time over
ours, per round, best and median.
`--original-only` runs just this comparison.

Each build runs in its own process, so start-up and memory are measured cleanly. The
machine is shared: compare the figures of one run, not across runs.
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
from pretrain.example_builder import SHARD_NAME  # noqa: E402
from util.tfrecord_writer import read_records  # noqa: E402
from util.shared_data import shared_data_dir  # noqa: E402

ORIGINAL_EXAMPLES_PER_S = 6100  # the original builder here, TF 2.15, 2 processes (issue 4)


def make_corpus(out_dir, limit_mb, repeat=1):
  """Write the shared corpus as plain text files; returns total bytes."""
  data = shared_data_dir() / "corpus"
  out_dir.mkdir(parents=True, exist_ok=True)
  docs = []  # (name, text)
  for p in sorted((data / "petitions").glob("petitions_*")):
    paragraphs = []
    with open(p, encoding="utf-8") as f:
      for line in f:
        text = json.loads(line)["content"]
        lines = [l.strip() for l in text.splitlines() if l.strip()]
        if lines:
          paragraphs.append("\n".join(lines) + "\n\n")
    docs.append((p.name + ".txt", "".join(paragraphs)))
  comments = data / "hate-speech-unlabeled/unlabeled_comments_5.txt"
  docs.append((comments.name, comments.read_text(encoding="utf-8")))
  for p in sorted((data / "namuwikitext").glob("*.sample")):
    docs.append((p.name, p.read_text(encoding="utf-8")))
  budget = int(limit_mb * (1 << 20)) if limit_mb else None
  total = 0
  for name, text in docs:
    raw = text.encode("utf-8")
    if budget is not None:
      raw = raw[:max(budget - total, 0)]
      raw = raw[:raw.rfind(b"\n") + 1]
    if not raw:
      continue
    (out_dir / name).write_bytes(raw * repeat)
    total += len(raw)
  return total * repeat


def run_build(corpus_dir, out_dir, procs, tokenizer, vocab, split="none"):
  """Run the CLI in a child process; returns (summary, peak RSS MB of largest process)."""
  cmd = [sys.executable, str(ROOT / "build_pretraining_dataset.py"), "--corpus-dir",
         str(corpus_dir), "--vocab-file", vocab, "--output-dir", str(out_dir),
         "--max-seq-length", "128", "--num-processes", str(procs), "--tokenizer",
         tokenizer, "--overwrite", "--no-progress", "--split-sentences", split]
  # A wrapper process: its RUSAGE_CHILDREN peak covers the build and its workers only.
  wrapper = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], "
             "stdout=subprocess.DEVNULL); print(r.returncode, "
             "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
  env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
  out = subprocess.run([sys.executable, "-c", wrapper, *cmd], env=env, check=True,
                       capture_output=True, text=True).stdout.split()
  if out[0] != "0":
    raise SystemExit(f"build failed: {' '.join(cmd)}")
  with open(out_dir / "summary.json", encoding="utf-8") as f:
    return json.load(f), int(out[1]) / 1024


def compare_splitting(corpus_dir, out_root, vocab, rounds):
  """none vs rules, 2 processes, alternating order; prints a table and the ratios."""
  size = sum(p.stat().st_size for p in corpus_dir.iterdir())
  best = {}
  for r in range(rounds):
    for split in (("none", "rules") if r % 2 == 0 else ("rules", "none")):
      s, _ = run_build(corpus_dir, out_root / f"split-{split}", 2, "fast", vocab, split)
      if split not in best or s["build_time_s"] < best[split]["build_time_s"]:
        best[split] = s
  print(f"\nsentence splitting, fast tokenizer, 2 processes, length 128, best of {rounds} "
        f"alternating rounds; load average now {os.getloadavg()[0]:.1f}")
  print(f"{'split':<6} {'sent/line':>9} {'kept':>6} {'kept w/o':>8} {'examples':>9} "
        f"{'build s':>8} {'ex/s':>8} {'MB/s':>6} {'CPU s':>7}")
  for split in ("none", "rules"):
    s = best[split]
    print(f"{split:<6} {s['sentences_per_line']:>9.2f} {s['kept_share']:>6.1%} "
          f"{s['kept_share_unsplit']:>8.1%} {s['examples']:>9,} {s['build_time_s']:>8.2f} "
          f"{s['examples_per_s']:>8,.0f} {size / s['build_time_s'] / 1e6:>6.2f} "
          f"{s['build_cpu_s']:>7.2f}")
  n, r = best["none"], best["rules"]
  print(f"rules / none: examples/s {r['examples_per_s'] / n['examples_per_s']:.2f}x, input "
        f"MB/s {n['build_time_s'] / r['build_time_s']:.2f}x, CPU seconds "
        f"{r['build_cpu_s'] / n['build_cpu_s']:.2f}x; tokens kept {n['kept_share']:.1%} -> "
        f"{r['kept_share']:.1%} ({r['tokens_written']:,} of {r['tokens']:,}); "
        f"{r['long_sentences_cut']:,} sentences over "
        f"{r['options']['max_sentence_tokens']} tokens cut")


def count_records(out_dir):
  """Examples in every TFRecord file of out_dir (frames only, no parsing)."""
  return sum(sum(1 for _ in read_records(str(p))) for p in sorted(out_dir.iterdir())
             if p.name != "summary.json" and p.is_file() and not p.name.startswith("."))


def timed_command(cmd, cwd, env):
  """Runs cmd to completion; returns (wall seconds, CPU seconds of it and its children)."""
  before = resource.getrusage(resource.RUSAGE_CHILDREN)
  start = time.perf_counter()
  r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.DEVNULL,
                     stderr=subprocess.PIPE, text=True)
  wall = time.perf_counter() - start
  after = resource.getrusage(resource.RUSAGE_CHILDREN)
  if r.returncode:
    raise SystemExit(f"failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
  cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
  return wall, cpu


def compare_with_original(corpus_dir, out_root, vocab, checkout, rounds, procs):
  """The original's builder and ours, same arguments, order reversed each round.

  Ours runs twice: as a user calls it with the original's arguments (its default
  layout: one shard per 64 MB) and with `--num-out-files 1000` (the original's layout).
  """
  checkout = pathlib.Path(checkout).resolve()
  script = checkout / "build_pretraining_dataset.py"
  if not script.is_file():
    raise SystemExit(f"--original: no build_pretraining_dataset.py in {checkout}")
  common = ["--corpus-dir", str(corpus_dir), "--vocab-file", vocab, "--max-seq-length",
            "128", "--num-processes", str(procs), "--no-lower-case", "--no-strip-accents"]
  env_orig = dict(os.environ, PYTHONPATH=str(checkout), TF_CPP_MIN_LOG_LEVEL="2")
  env_ours = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
  ours = [sys.executable, str(ROOT / "build_pretraining_dataset.py"), *common,
          "--overwrite", "--no-progress", "--output-dir"]
  sides = {
      "original": ([sys.executable, str(script), *common, "--output-dir",
                    str(out_root / "orig")], checkout, env_orig),
      "ours": ([*ours, str(out_root / "ours")], out_root, env_ours),
      "ours-1000": ([*ours, str(out_root / "ours-1000"), "--num-out-files", "1000"],
                    out_root, env_ours),
  }
  names = list(sides)
  times = {k: [] for k in sides}
  print(f"\nside by side with the original's builder ({checkout}), {procs} processes, "
        f"{rounds} rounds, order reversed each round; load average before "
        f"{os.getloadavg()[0]:.2f}")
  for r in range(rounds):
    order = names if r % 2 == 0 else names[::-1]
    for side in order:
      times[side].append(timed_command(*sides[side]))
    print(f"round {r + 1} ({' -> '.join(order)}): " + ", ".join(
        f"{k} {times[k][-1][0]:.2f} s" for k in names) + "; ratios " + ", ".join(
        f"{k} {times['original'][-1][0] / times[k][-1][0]:.2f}x" for k in names[1:]))
  med = lambda xs: sorted(xs)[len(xs) // 2]
  print(f"{'builder':<10} {'files':>5} {'examples':>9} {'best s':>7} {'median s':>8} "
        f"{'CPU s':>6}")
  for side in names:
    out = out_root / {"original": "orig"}.get(side, side)
    walls = [t[0] for t in times[side]]
    files = sum(1 for p in out.iterdir() if "tfrecord" in p.name)
    print(f"{side:<10} {files:>5} {count_records(out):>9,} {min(walls):>7.2f} "
          f"{med(walls):>8.2f} {med([t[1] for t in times[side]]):>6.2f}")
  for side in names[1:]:
    ratios = sorted(o[0] / u[0] for o, u in zip(times["original"], times[side]))
    print(f"{side} / original speed, per round {', '.join(f'{x:.2f}x' for x in ratios)}: "
          f"best {ratios[-1]:.2f}x, median {med(ratios):.2f}x, worst {ratios[0]:.2f}x")
    s = json.loads((out_root / side / "summary.json").read_text(encoding="utf-8"))
    print(f"  {side}, the last run's {times[side][-1][0]:.2f} s: Python and imports "
          f"{times[side][-1][0] - s['wall_time_s']:.2f} s, start-up (vocab, tokenizer "
          f"tables, output folder) {s['wall_time_s'] - s['build_time_s']:.2f} s, building "
          f"{s['build_time_s']:.2f} s (CPU {s['build_cpu_s']:.2f} s, workers included)")
  print(f"load average after {os.getloadavg()[0]:.2f}")


def main():
  ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  ap.add_argument("--mb", type=float, default=0, help="use only the first MB of the corpus")
  ap.add_argument("--repeat", type=int, default=10, help="memory run: corpus x this")
  ap.add_argument("--skip-reference-1", action="store_true",
                  help="skip the slowest row (reference tokenizer, 1 process)")
  ap.add_argument("--split-rounds", type=int, default=4,
                  help="rounds of the none/rules comparison (order alternates)")
  ap.add_argument("--split-only", action="store_true",
                  help="run only the sentence-splitting comparison")
  ap.add_argument("--original", metavar="CHECKOUT",
                  help="a clone of google-research/electra: time its builder against ours")
  ap.add_argument("--original-only", action="store_true",
                  help="run only the comparison with --original")
  ap.add_argument("--rounds", type=int, default=3, help="rounds against --original")
  args = ap.parse_args()
  vocab = str(shared_data_dir() / "vocab/v3/vocab.txt")
  with tempfile.TemporaryDirectory(prefix="bench_corpus_") as tmp:
    tmp = pathlib.Path(tmp)
    size = make_corpus(tmp / "corpus", args.mb)
    print(f"corpus: {size / 1e6:.1f} MB in {len(list((tmp / 'corpus').iterdir()))} files, "
          f"max_seq_length 128, {os.cpu_count()} cores")
    if args.split_only:
      compare_splitting(tmp / "corpus", tmp, vocab, args.split_rounds)
      return
    if args.original:
      compare_with_original(tmp / "corpus", tmp, vocab, args.original, args.rounds, 2)
      if args.original_only:
        return
    elif args.original_only:
      raise SystemExit("--original-only needs --original CHECKOUT")
    rows = [("reference", 2), ("fast", 1), ("fast", 2)]
    if not args.skip_reference_1:
      rows.insert(0, ("reference", 1))
    results = {}
    print(f"load average before: {os.getloadavg()[0]:.1f} (other jobs share these cores: "
          "wall-clock rates fall with load; CPU seconds do not)")
    print(f"{'tokenizer':<10} {'procs':>5} {'examples':>9} {'tokens':>10} {'build s':>8} "
          f"{'wall s':>7} {'ex/s':>8} {'Mtok/s':>7} {'CPU s':>7} {'ex/CPU-s':>8} "
          f"{'peak RSS MB':>11}")
    for tok, procs in rows:
      s, rss = run_build(tmp / "corpus", tmp / f"out-{tok}-{procs}", procs, tok, vocab)
      results[tok, procs] = s
      print(f"{tok:<10} {procs:>5} {s['examples']:>9,} {s['tokens']:>10,} "
            f"{s['build_time_s']:>8.2f} {s['wall_time_s']:>7.2f} {s['examples_per_s']:>8,.0f} "
            f"{s['tokens'] / s['build_time_s'] / 1e6:>7.2f} {s['build_cpu_s']:>7.2f} "
            f"{s['examples'] / s['build_cpu_s']:>8,.0f} {rss:>11.0f}")
    same = all((tmp / f"out-{t}-{p}" / SHARD_NAME.format(0, 1)).read_bytes() ==
               (tmp / "out-fast-2" / SHARD_NAME.format(0, 1)).read_bytes()
               for t, p in results)
    print(f"all runs wrote byte-identical shards: {same}")
    fast = results["fast", 2]["examples_per_s"]
    for key in (("reference", 1), ("reference", 2)):
      if key in results:
        base = results[key]
        # On idle cores a build takes CPU s / processes; that ratio ignores other jobs.
        idle = ((base["build_cpu_s"] / key[1]) /
                (results["fast", 2]["build_cpu_s"] / 2))
        print(f"speed-up, fast x2 processes vs reference x{key[1]}: "
              f"{fast / base['examples_per_s']:.1f}x wall-clock, {idle:.1f}x from CPU "
              "seconds (idle cores)")
    print(f"recorded original builder (TF 2.15, 2 processes, its own corpus layout): "
          f"{ORIGINAL_EXAMPLES_PER_S:,} ex/s; 3x target {3 * ORIGINAL_EXAMPLES_PER_S:,} ex/s; "
          f"here {fast:,.0f} ex/s (examples per token depend on the layout: compare the "
          "side-by-side ratio)")

    # Memory: the same corpus concatenated --repeat times (each file repeated).
    big = make_corpus(tmp / "corpus_big", args.mb, repeat=args.repeat)
    s1, rss1 = run_build(tmp / "corpus", tmp / "mem-1", 2, "fast", vocab)
    s2, rss2 = run_build(tmp / "corpus_big", tmp / "mem-big", 2, "fast", vocab)
    print(f"peak RSS (largest process), fast x2: {size / 1e6:.0f} MB corpus {rss1:.0f} MB, "
          f"{big / 1e6:.0f} MB corpus {rss2:.0f} MB: ratio {rss2 / rss1:.2f} "
          f"(examples {s1['examples']:,} vs {s2['examples']:,}, "
          f"{s2['examples_per_s']:,.0f} ex/s on the big one)")
    compare_splitting(tmp / "corpus", tmp, vocab, args.split_rounds)


if __name__ == "__main__":
  main()
