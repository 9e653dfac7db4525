"""Masked share of tokens with the default draw and with `legacy_masking` (the original's).

  PYTHONPATH=. python benchmarks/masking_rate.py [--rows 400] [--lengths 128 512]

Real Korean comments from the shared data (v3 vocab), packed into rows of varied length
by util/shared_data.packed_rows, as tests/test_masking.py packs them. Prints, per length
and draw: the share of maskable tokens masked (distinct positions), weighted prediction
slots per row, and rows with a duplicate.
Figures: docs/pretraining.md, "Masking rate".
"""
import argparse

import numpy as np
import tensorflow.compat.v1 as tf

from model.tokenization import FastTokenizer
from pretrain import masking
from util.shared_data import COMMENTS, head_lines, packed_rows, shared_data_dir


def rates(ids, mask, vocab_file, legacy):
  specials = masking.special_token_ids(vocab_file)
  n = int((0.15 + 0.005) * ids.shape[1])
  with tf.Graph().as_default():
    tf.set_random_seed(11)
    inputs = masking.Inputs(tf.constant(ids), tf.constant(mask),
                            tf.constant(np.zeros_like(ids)), None, None, None)
    out = masking.mask_inputs(inputs, 0.15, n, specials["[MASK]"], specials.values(),
                              legacy=legacy)
    with tf.Session() as sess:
      res = sess.run(out._asdict())
  maskable = (mask == 1) & ~np.isin(ids, list(specials.values()))
  pos, w = res["masked_lm_positions"], res["masked_lm_weights"]
  distinct = [len(set(pos[r][w[r] > 0].tolist())) for r in range(len(ids))]
  dup_rows = sum(d < int(w[r].sum()) for r, d in enumerate(distinct))
  return (sum(distinct) / maskable.sum(), w.sum(1).mean(), np.mean(distinct),
          dup_rows / len(ids))


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--rows", type=int, default=400)
  p.add_argument("--lengths", type=int, nargs="+", default=[128, 512])
  args = p.parse_args()
  data = shared_data_dir()
  vocab = str(data / "vocab" / "v3" / "vocab.txt")
  tokenizer, lines = FastTokenizer(vocab), head_lines(data / COMMENTS, 60000)
  print("length  rows draw      masked share  slots/row  distinct/row  rows with duplicates")
  for length in args.lengths:
    ids, mask, _ = packed_rows(tokenizer, lines, args.rows, length)
    for sel, label in ((slice(None), "all"), (mask.sum(1) == length, "full")):
      for legacy in (False, True):
        share, slots, distinct, dups = rates(ids[sel], mask[sel], vocab, legacy)
        print(f"{length:6d} {label:>5s} {'original' if legacy else 'default':8s} "
              f"{100 * share:10.2f}%  {slots:9.2f}  {distinct:12.2f}  {100 * dups:8.1f}%")


if __name__ == "__main__":
  main()
