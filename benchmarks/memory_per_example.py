"""Memory one pretraining example holds, measured: peak RSS of a train step at two batch sizes.

  PYTHONPATH=. .venv/bin/python benchmarks/memory_per_example.py --preset koelectra-small-v3 \
      --length 512 --batches 1 3 [--fused]

Each batch size runs in its own process: the pretraining model_fn (as run_pretraining builds
it off TPU, `fused_kernels` as given) on random token ids, two train steps in a TensorFlow
session on the CPU, then the process's peak resident memory. The difference between two
batch sizes divided by the difference in examples is what one example adds (activations
held for the backward pass, plus the allocator's slack); the intercept is the parameters,
gradients, Adam slots and TensorFlow itself. Compared with model/memory.py's count.
"""
import argparse
import json
import pathlib
import resource
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def one(preset, length, batch, fused):
  """Peak RSS in bytes of two train steps at this batch size (run in a child process)."""
  import numpy as np
  import tensorflow.compat.v1 as tf
  import configure_pretraining
  import run_pretraining
  tf.disable_v2_behavior()
  from tests.conftest import shared_data_dir
  config = configure_pretraining.PretrainingConfig(
      "mem", "/nonexistent", preset=preset, max_seq_length=length, train_batch_size=batch,
      fused_kernels=fused, vocab_file=str(shared_data_dir() / "vocab" / "v3" / "vocab.txt"))
  rng = np.random.default_rng(0)
  ids = rng.integers(5, config.vocab_size, size=(batch, length)).astype(np.int32)
  with tf.Graph().as_default():
    features = {"input_ids": tf.constant(ids), "input_mask": tf.ones_like(ids),
                "segment_ids": tf.zeros_like(ids)}
    spec = run_pretraining.model_fn_builder(config)(
        features, None, tf.estimator.ModeKeys.TRAIN, {})
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      for _ in range(2):
        sess.run(spec.train_op)
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--preset", default="koelectra-small-v3")
  p.add_argument("--length", type=int, default=512)
  p.add_argument("--batches", type=int, nargs=2, default=[1, 3])
  p.add_argument("--fused", action="store_true")
  p.add_argument("--child", type=int, help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.child:
    print(one(args.preset, args.length, args.child, args.fused))
    return
  peaks = {}
  for b in args.batches:
    cmd = [sys.executable, __file__, "--preset", args.preset, "--length", str(args.length),
           "--child", str(b)] + (["--fused"] if args.fused else [])
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    peaks[b] = int(out.strip().splitlines()[-1])
  lo, hi = args.batches
  per_example = (peaks[hi] - peaks[lo]) / (hi - lo)
  from model import memory
  import configure_pretraining
  config = configure_pretraining.PretrainingConfig(
      "mem", "/nonexistent", preset=args.preset, max_seq_length=args.length)
  counted = memory.estimate(config).activations_per_example
  print(json.dumps({"preset": args.preset, "length": args.length, "fused": args.fused,
                    "peak_rss": peaks, "measured_per_example": per_example,
                    "counted_per_example": counted,
                    "measured_over_counted": round(per_example / counted, 3)}, indent=1))


if __name__ == "__main__":
  main()
