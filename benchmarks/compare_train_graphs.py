"""Is the training step the same graph as in another checkout? A load-independent speed check.

  git worktree add --detach /tmp/bench-base 07f5c9c
  PYTHONPATH=. python benchmarks/compare_train_graphs.py --baseline /tmp/bench-base
      [--variants bf16,fp32,bf16-unfused,fp32-unfused] [--finetuning nsmc,naver-ner,korquad]

Builds the pretraining train-mode model_fn (KoELECTRA-Small v3, length 128, batch 32) and,
with --finetuning, the finetuning one of each task given (the koelectra preset, Small, its
per-task length, batch 32) in this checkout and in the baseline, each in its own process
(this file's child, which finds the model_fn builders in either layout: pretrain/runner.py
and finetune/runner.py, or the older run_pretraining.py / run_finetuning.py), and compares
the two graphs
node by node: op type, inputs and attributes, with the body of every XLA-compiled function
compared by its sorted op types. Names that TF makes up are normalised first: a variable
read is called read(<variable>), and custom-gradient ids are ignored. Prints, per variant,
the nodes found in one graph only and the nodes that differ.

When the two graphs differ only in initialiser nodes (run once, before step 1), a training
step runs the same kernels in the same order, so its speed is the same by construction;
bench_pretraining.py --baseline then measures only the machine's noise. On a shared,
loaded machine this check is the one to trust.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent

VARIANTS = {
    "fp32": {},
    "bf16": {"use_bf16": True},
    "fp32-unfused": {"fused_kernels": False},
    "bf16-unfused": {"use_bf16": True, "fused_kernels": False},
}


def _builders():
  """(PretrainingConfig, its model_fn_builder, FinetuningConfig, its model_fn_builder) of
  the checkout on sys.path, before or after the runners moved into the packages."""
  try:
    from finetune import runner as finetune_runner
    from finetune.config import FinetuningConfig
    from pretrain import runner as pretrain_runner
    from pretrain.config import PretrainingConfig
  except ImportError:
    import configure_finetuning
    import configure_pretraining
    import run_finetuning as finetune_runner
    import run_pretraining as pretrain_runner
    PretrainingConfig = configure_pretraining.PretrainingConfig
    FinetuningConfig = configure_finetuning.FinetuningConfig
  return (PretrainingConfig, pretrain_runner.model_fn_builder, FinetuningConfig,
          finetune_runner.model_fn_builder)


def _train_graph(model_fn, features):
  """[[name, op, inputs, attrs], ...] of model_fn's train graph on constant features."""
  import tensorflow.compat.v1 as tf
  g = tf.Graph()
  with g.as_default():
    model_fn({k: f() for k, f in features.items()}, None, tf.estimator.ModeKeys.TRAIN, {})
  graph_def = g.as_graph_def()
  bodies = {f.signature.name: sorted(n.op for n in f.node_def)
            for f in graph_def.library.function}
  nodes = []
  for n in graph_def.node:
    attrs = {}
    for key, value in n.attr.items():
      if key in ("_gradient_op_type", "_class"):
        continue  # made-up ids / colocation, not what runs
      attrs[key] = bodies.get(value.func.name) if key == "f" else str(value)
    nodes.append([n.name, n.op, list(n.input), json.dumps(attrs, sort_keys=True)])
  return nodes


def child(variants, tasks, vocab_file, out):
  """Writes {graph name: [[name, op, inputs, attrs], ...]} of this checkout's train graphs:
  one per pretraining variant, one per finetuning task ("finetune-<task>")."""
  import tensorflow.compat.v1 as tf
  from finetune import features as features_lib
  pretraining_config, pretraining_fn, finetuning_config, finetuning_fn = _builders()
  graphs = {}
  for name in variants:
    config = pretraining_config(
        "graph-compare", tempfile.mkdtemp(), preset="koelectra-small-v3",
        max_seq_length=128, train_batch_size=32, vocab_file=vocab_file, **VARIANTS[name])
    features = {k: (lambda: tf.zeros([32, 128], tf.int32))
                for k in ("input_ids", "input_mask", "segment_ids")}
    graphs[name] = _train_graph(pretraining_fn(config), features)
  for task in tasks:
    config = finetuning_config("graph-compare", tempfile.mkdtemp(), task_names=[task],
                               train_batch_size=32, vocab_file=vocab_file)
    spec = features_lib.feature_spec(task, config.max_seq_length)
    features = {k: (lambda dtype=dtype, shape=shape: tf.zeros(
        [32] + list(shape), tf.int32 if dtype == "int64" else tf.float32))
        for k, (dtype, shape) in spec.items()}
    graphs[f"finetune-{task}"] = _train_graph(
        finetuning_fn(config, 1000, None, tempfile.mkdtemp()), features)
  with open(out, "w") as f:
    json.dump(graphs, f)


def _canonical(nodes):
  """{name: (op, sorted inputs, attrs)} with variable reads named read(<variable>)."""
  renamed = {n[0]: "read(%s)" % n[2][0] for n in nodes if n[1] == "ReadVariableOp"}

  def rename(x):
    control = x.startswith("^")
    base, _, port = x.lstrip("^").partition(":")
    return ("^" if control else "") + renamed.get(base, base) + (":" + port if port else "")

  return {renamed.get(n[0], n[0]): (n[1], sorted(rename(i) for i in n[2]), n[3])
          for n in nodes}


def _initialiser(name):
  return "/Initializer/" in name or name.endswith("/Assign")


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--baseline", help="another checkout (e.g. a git worktree)")
  p.add_argument("--variants", default="bf16,fp32-unfused",
                 help=f"comma list of: {', '.join(VARIANTS)}")
  p.add_argument("--finetuning", default="",
                 help="comma list of finetuning tasks whose train graphs to compare too")
  p.add_argument("--vocab-file", default=str(ROOT.parent / "shared/data/vocab/v3/vocab.txt"))
  p.add_argument("--child-out", help=argparse.SUPPRESS)
  args = p.parse_args()
  variants = [v for v in args.variants.split(",") if v]
  tasks = [t for t in args.finetuning.split(",") if t]
  if args.child_out:
    return child(variants, tasks, args.vocab_file, args.child_out)
  if not args.baseline:
    sys.exit("--baseline DIR is required")
  graphs = {}
  with tempfile.TemporaryDirectory() as tmp:
    for tree, root in (("this", ROOT), ("baseline", pathlib.Path(args.baseline).resolve())):
      print(f"building the train graphs in {root} ...", flush=True)
      out = pathlib.Path(tmp) / f"{tree}.json"
      cmd = [sys.executable, str(pathlib.Path(__file__).resolve()),
             "--child-out", str(out), "--variants", args.variants,
             "--finetuning", args.finetuning, "--vocab-file", args.vocab_file]
      # The child must import the tree's own modules: run from it, with it (and not the
      # directory of this file) on the path.
      env = dict(os.environ, PYTHONPATH=str(root), TF_CPP_MIN_LOG_LEVEL="2")
      r = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(root))
      if r.returncode:
        sys.exit(f"{tree} failed:\n{r.stderr[-4000:]}")
      graphs[tree] = json.loads(out.read_text())
  same = True
  for name in variants + [f"finetune-{t}" for t in tasks]:
    a, b = _canonical(graphs["this"][name]), _canonical(graphs["baseline"][name])
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    changed = sorted(n for n in set(a) & set(b) if a[n] != b[n])
    step = [n for n in only_a + only_b + changed if not _initialiser(n)]
    same = same and not step
    print(f"\n{name}: {len(a)} nodes here, {len(b)} in the baseline; "
          f"{len(only_a)} here only, {len(only_b)} baseline only, {len(changed)} differ; "
          f"outside initialisers: {len(step)}")
    for label, names in (("here only", only_a), ("baseline only", only_b),
                         ("differ", changed)):
      for n in names[:20]:
        print(f"  {label:13s} {n}")
      if len(names) > 20:
        print(f"  {label:13s} ... {len(names) - 20} more")
  print("\ntraining step: " + ("same graph (only initialisers differ)" if same else
                               "DIFFERENT graph (see the nodes above)"))
  return 0 if same else 1


if __name__ == "__main__":
  sys.exit(main())
