"""The cost of `"distribution"` on one CPU machine: the same pretraining, same global batch,
as 1 process with 2 threads ("none"), 2 local workers with 1 thread each ("multi_worker",
TF_CONFIG on 127.0.0.1) and 1 process with 2 logical CPU devices ("mirrored").

  PYTHONPATH=. python benchmarks/bench_distributed.py [--steps 40] [--rounds 2]

A small model (hidden 128, 2 layers, length 64, global batch 32) on TFRecords built from
the first 2,000 news comments of the shared data. Each variant runs as its own process(es);
the variants alternate, `rounds` times, and each keeps its best round, so load from other
jobs hits all alike. Printed: steady-state examples/s (the progress lines after the first,
which includes start-up) and the ratio to "none". One CPU cannot show a speed-up: this
measures the overhead of the strategy (all-reduce, input sharding, gRPC between workers).

Needs ../shared/data (or KOELECTRA_DATA).
"""
import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from util import shared_data  # noqa: E402

MODEL = {
    "model_size": "small", "embedding_size": 128, "max_seq_length": 64,
    "model_hparam_overrides": {"hidden_size": 128, "num_hidden_layers": 2,
                               "num_attention_heads": 2, "intermediate_size": 512},
    "generator_hidden_size": 0.5, "vocab_size": 35000, "train_batch_size": 32,
    "learning_rate": 1e-3, "num_warmup_steps": 5, "save_checkpoints_steps": 100000,
}
# label -> (hparams, processes, threads per process: TF_NUM_INTRAOP/INTEROP_THREADS)
VARIANTS = {
    "none, 1 process x 2 threads": ({}, 1, 2),
    "multi_worker, 2 processes x 1 thread": ({"distribution": "multi_worker"}, 2, 1),
    "mirrored, 2 CPU devices, 2 threads": (
        {"distribution": "mirrored", "num_cpu_devices": 2}, 1, 2),
}


def _port():
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def build_data(root, vocab):
  corpus = os.path.join(root, "corpus")
  os.makedirs(corpus)
  src = shared_data.shared_data_dir() / "corpus" / "hate-speech-unlabeled" / "unlabeled_comments_5.txt"
  with open(src, encoding="utf-8") as f:
    lines = [next(f).rstrip("\n") for _ in range(2000)]
  with open(os.path.join(corpus, "c.txt"), "w", encoding="utf-8") as f:
    f.write("\n\n".join("\n".join(lines[i:i + 10]) for i in range(0, len(lines), 10)) + "\n")
  subprocess.run([sys.executable, os.path.join(ROOT, "build_pretraining_dataset.py"),
                  "--corpus-dir", corpus, "--vocab-file", vocab, "--output-dir",
                  os.path.join(root, "pretrain_tfrecords"), "--max-seq-length", "64",
                  "--num-out-files", "4", "--no-progress"], check=True,
                 stdout=subprocess.DEVNULL)


def run(root, name, hparams, workers, threads):
  """Examples/s of the chief's progress lines after the first."""
  cmd = [sys.executable, os.path.join(ROOT, "run_pretraining.py"), "--data-dir", root,
         "--model-name", name, "--hparams", json.dumps(hparams)]
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="2",
             TF_NUM_INTRAOP_THREADS=str(threads), TF_NUM_INTEROP_THREADS=str(threads))
  cluster = {"worker": [f"127.0.0.1:{_port()}" for _ in range(workers)]}
  procs = []
  for i in range(workers):
    if workers > 1:
      env = dict(env, TF_CONFIG=json.dumps({"cluster": cluster,
                                            "task": {"type": "worker", "index": i}}))
    procs.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True))
  outs = [p.communicate()[0] for p in procs]
  if any(p.returncode for p in procs):
    raise RuntimeError(f"{name} failed:\n{outs[0][-2000:]}")
  rates = [float(r) for r in re.findall(r" ([0-9.]+) ex/s", outs[0])]
  return sum(rates[1:]) / len(rates[1:])


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--steps", type=int, default=40)
  p.add_argument("--rounds", type=int, default=2)
  args = p.parse_args()
  vocab = str(shared_data.shared_data_dir() / "vocab" / "v3" / "vocab.txt")
  best = {}
  with tempfile.TemporaryDirectory() as root:
    build_data(root, vocab)
    for r in range(args.rounds):
      for i, (label, (extra, workers, threads)) in enumerate(VARIANTS.items()):
        hp = dict(MODEL, vocab_file=vocab, num_train_steps=args.steps,
                  log_every_steps=max(1, args.steps // 4), **extra)
        start = time.time()
        rate = run(root, f"r{r}v{i}", hp, workers, threads)
        best[label] = max(best.get(label, 0.0), rate)
        print(f"round {r + 1}: {label}: {rate:.1f} ex/s ({time.time() - start:.0f}s wall)",
              flush=True)
  base = best["none, 1 process x 2 threads"]
  print(f"\n{'variant':40s} {'ex/s':>8s} {'vs none':>8s}")
  for label, rate in best.items():
    print(f"{label:40s} {rate:8.1f} {rate / base:8.2f}")
  print(f"load average at the end: {os.getloadavg()[0]:.1f} (2 cores)")


if __name__ == "__main__":
  main()
