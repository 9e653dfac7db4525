"""Fresh-checkpoint initial values: this project against the original ELECTRA code, per variable.

  git clone https://github.com/google-research/electra /tmp/electra   # commit 8a46635
  PYTHONPATH=. python benchmarks/compare_init_with_original.py --original /tmp/electra
      [--vocab-file ../shared/data/vocab/v3/vocab.txt] [--seed 0] [--keep DIR]

Builds the KoELECTRA-Small pretraining graph twice, each in its own process and each through
its runner's own model_fn (train mode, so the optimizer's slots and global_step exist too):
  ours      pretrain/runner.model_fn_builder, preset koelectra-small-v3, length 128
  original  <original>/run_pretraining.model_fn_builder with the same settings (model_size
            small, vocab 35000, embedding 128, generator_hidden_size 1.0, length 128)
runs the variable initialisers, saves both fresh checkpoints, and prints one row per
variable: shape, mean, std and max|x| of each, the std ratio, and max|x| / std (about 2.3
for truncated normal, 1.73 for uniform, so it shows the family). Rows marked `!` differ:
a name or shape in one checkpoint only, or a std or mean further apart than sampling noise
allows (5 standard errors, at least 5%).

The original is imported from the given checkout and run unchanged on TF 2.15, except for
`tensorflow.contrib`, which TF 2 no longer has: its `layers.layer_norm` is supplied here
(_contrib_layer_norm: same variable names `<scope>/beta`, `<scope>/gamma`, same zero/one
initialisers). Nothing of the original's code is part of this file.
"""
import argparse
import collections
import math
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import types

ROOT = pathlib.Path(__file__).resolve().parent.parent

SMALL = {"max_seq_length": 128, "train_batch_size": 8, "vocab_size": 35000,
         "embedding_size": 128, "generator_hidden_size": 1.0}


def _contrib_layer_norm(inputs, begin_norm_axis=-1, begin_params_axis=-1, scope=None,
                        **unused):
  """tf.contrib.layers.layer_norm as the original calls it (last axis only)."""
  import tensorflow.compat.v1 as tf
  if begin_norm_axis != -1 or begin_params_axis != -1:
    raise NotImplementedError("only last-axis LayerNorm is supplied")
  width = inputs.shape[-1]
  with tf.variable_scope(scope, default_name="LayerNorm"):
    beta = tf.get_variable("beta", [width], initializer=tf.zeros_initializer())
    gamma = tf.get_variable("gamma", [width], initializer=tf.ones_initializer())
    mean, variance = tf.nn.moments(inputs, [-1], keepdims=True)
    return tf.nn.batch_normalization(inputs, mean, variance, beta, gamma, 1e-12)


def _install_contrib_shim():
  contrib = types.ModuleType("tensorflow.contrib")
  layers = types.ModuleType("tensorflow.contrib.layers")
  layers.layer_norm = _contrib_layer_norm
  contrib.layers = layers
  sys.modules["tensorflow.contrib"] = contrib
  sys.modules["tensorflow.contrib.layers"] = layers


def _features(batch, length):
  import tensorflow.compat.v1 as tf
  shape = [batch, length]
  return {"input_ids": tf.ones(shape, tf.int32) * 5, "input_mask": tf.ones(shape, tf.int32),
          "segment_ids": tf.zeros(shape, tf.int32)}


def _save_fresh(model_fn, config, out, seed):
  import tensorflow.compat.v1 as tf
  with tf.Graph().as_default():
    tf.set_random_seed(seed)
    model_fn(_features(config.train_batch_size, config.max_seq_length), None,
             tf.estimator.ModeKeys.TRAIN, {})
    saver = tf.train.Saver(tf.global_variables())
    with tf.Session() as sess:
      sess.run(tf.global_variables_initializer())
      saver.save(sess, str(pathlib.Path(out) / "model.ckpt"), write_meta_graph=False)


def child(which, original, vocab_file, out, seed):
  """Builds one side's graph and writes its fresh checkpoint to `out`."""
  work = pathlib.Path(out) / "work"
  work.mkdir(parents=True, exist_ok=True)
  if which == "original":
    _install_contrib_shim()
    sys.path.insert(0, str(original))
    import configure_pretraining
    import run_pretraining as runner
    config = configure_pretraining.PretrainingConfig(
        "init-compare", str(work), model_size="small", vocab_file=vocab_file,
        do_lower_case=False, **SMALL)
  else:
    sys.path.insert(0, str(ROOT))
    from pretrain import runner
    from pretrain.config import PretrainingConfig
    config = PretrainingConfig(
        "init-compare", str(work), preset="koelectra-small-v3", vocab_file=vocab_file,
        max_seq_length=SMALL["max_seq_length"],
        train_batch_size=SMALL["train_batch_size"])
  _save_fresh(runner.model_fn_builder(config), config, out, seed)


def _stats(path):
  import numpy as np
  import tensorflow.compat.v1 as tf
  reader = tf.train.load_checkpoint(path)
  rows = {}
  for name in reader.get_variable_to_shape_map():
    x = np.asarray(reader.get_tensor(name), np.float64)
    rows[name] = {"shape": list(x.shape), "n": x.size, "mean": float(x.mean()),
                  "std": float(x.std()), "max": float(np.abs(x).max()) if x.size else 0.0}
  return rows


def _differs(a, b):
  """True when two variables' values cannot come from the same initialiser."""
  if a["shape"] != b["shape"]:
    return True
  n = max(a["n"], 1)
  tolerance = max(0.05, 5.0 / math.sqrt(n))
  if a["std"] == 0 or b["std"] == 0:
    return a["std"] != b["std"] or abs(a["mean"] - b["mean"]) > 1e-9
  scale = max(a["std"], b["std"])
  return (abs(a["std"] / b["std"] - 1) > tolerance or
          abs(a["mean"] - b["mean"]) > 5 * scale / math.sqrt(n) + 1e-9)


def compare(ours, original, show_all=False):
  """Prints the per-variable table; returns the names of the differing variables.

  Unless show_all, rows that agree are printed for encoder layer 0 only (the other layers
  are summarised per variable as a range of std ratios) and not at all for optimizer
  slots (counted); differing rows are always printed.
  """
  names = sorted(set(ours) | set(original))
  width = max(len(n) for n in names)
  print(f"{'':1s} {'variable':{width}s} {'shape':>12s} {'mean ours':>10s} {'mean orig':>10s} "
        f"{'std ours':>9s} {'std orig':>9s} {'ratio':>6s} {'max/std':>8s} {'max/std':>8s}")
  print(f"{'':1s} {'':{width}s} {'':>12s} {'':>10s} {'':>10s} {'':>9s} {'':>9s} {'':>6s} "
        f"{'ours':>8s} {'orig':>8s}")
  bad, slots, layer_ratios = [], 0, collections.defaultdict(list)
  for name in names:
    a, b = ours.get(name), original.get(name)
    if a is None or b is None:
      bad.append(name)
      print(f"! {name:{width}s} only in {'original' if a is None else 'ours'} "
            f"{(a or b)['shape']}")
      continue
    flag = _differs(a, b)
    ratio = a["std"] / b["std"] if b["std"] else float("nan")
    if flag:
      bad.append(name)
    elif not show_all:
      if name.endswith(("/adam_m", "/adam_v")):
        slots += 1
        continue
      m = re.search(r"/layer_(\d+)/", name)
      if m:
        if b["std"]:
          layer_ratios[name.replace(m.group(0), "/layer_*/")].append(ratio)
        if m.group(1) != "0":
          continue
    shape = "x".join(str(d) for d in a["shape"]) or "scalar"
    if a["shape"] != b["shape"]:
      shape += " vs " + "x".join(str(d) for d in b["shape"])
    family = [r["max"] / r["std"] if r["std"] else float("nan") for r in (a, b)]
    print(f"{'!' if flag else ' '} {name:{width}s} {shape:>12s} {a['mean']:10.4f} "
          f"{b['mean']:10.4f} {a['std']:9.5f} {b['std']:9.5f} {ratio:6.3f} "
          f"{family[0]:8.2f} {family[1]:8.2f}")
  if layer_ratios:
    print("\nstd ratio ours / original over all encoder layers:")
    for pattern, ratios in sorted(layer_ratios.items()):
      print(f"  {pattern:{width}s} {len(ratios):3d} layers  {min(ratios):.3f} .. "
            f"{max(ratios):.3f}")
  if slots:
    print(f"\n{slots} optimizer slots (adam_m / adam_v): same names and shapes, all zero in "
          "both")
  print(f"\n{len(names)} variables ({len(ours)} ours, {len(original)} original); "
        f"{len(bad)} differ" + (": " + ", ".join(bad) if bad else ""))
  return bad


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--original", help="a checkout of google-research/electra")
  p.add_argument("--vocab-file", default=str(ROOT.parent / "shared/data/vocab/v3/vocab.txt"))
  p.add_argument("--seed", type=int, default=0)
  p.add_argument("--keep", help="write the two checkpoints here (default: temporary)")
  p.add_argument("--all", action="store_true",
                 help="print every variable, optimizer slots and all layers included")
  p.add_argument("--child", choices=["ours", "original"], help=argparse.SUPPRESS)
  p.add_argument("--out", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.child:
    return child(args.child, args.original, args.vocab_file, args.out, args.seed)
  if not args.original or not (pathlib.Path(args.original) / "run_pretraining.py").exists():
    sys.exit("--original must be a checkout of google-research/electra "
             "(with run_pretraining.py)")
  with tempfile.TemporaryDirectory() as tmp:
    base = pathlib.Path(args.keep or tmp)
    stats = {}
    for which in ("ours", "original"):
      out = base / which
      out.mkdir(parents=True, exist_ok=True)
      print(f"building and initialising the {which} graph ...", flush=True)
      cmd = [sys.executable, __file__, "--child", which, "--out", str(out),
             "--original", str(pathlib.Path(args.original).resolve()),
             "--vocab-file", args.vocab_file, "--seed", str(args.seed)]
      env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH="")
      p_ = subprocess.run(cmd, capture_output=True, text=True, env=env)
      if p_.returncode:
        sys.exit(f"{which} failed:\n{p_.stdout[-2000:]}{p_.stderr[-4000:]}")
      stats[which] = _stats(str(out / "model.ckpt"))
    print()
    bad = compare(stats["ours"], stats["original"], show_all=args.all)
  return 1 if bad else 0


if __name__ == "__main__":
  sys.exit(main())
