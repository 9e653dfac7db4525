"""Finetuning speed on CPU: ours (run_finetuning's model_fn under TPUEstimator) against
Hugging Face transformers + PyTorch, side by side in one run.

  PYTHONPATH=. python benchmarks/bench_finetuning.py [--cells cls-train,cls-predict,...]
                                                     [--precisions fp32,bf16] [--rounds 2]
                                                     [--threads N] [--work-dir DIR]
  PYTHONPATH=. python benchmarks/bench_finetuning.py --baseline DIR [--cells ...]

Shape: KoELECTRA-Small-v3 (vocab 35,000, embedding 128, hidden 256, 12 layers, 4 heads,
FFN 1024), random weights (speed does not depend on them). Cells:
  cls-train / cls-predict   sequence classification (NSMC), length 128, batch 32
  qa-train / qa-predict     span extraction (KorQuAD 1.0), length 512, batch 32 (the
                            koelectra preset's small-v3 batch)
Inputs are real Korean: NSMC-style reviews and the shared KorQuAD dev articles, tokenized
with the v3 vocab by finetune/preprocessing.prepare_split (its cached TFRecords), and both sides
read the very same features.

ours:   finetune/runner.model_fn_builder (FinetuningModel, the koelectra preset: HF-style
        heads, AdamW with bias correction, clipping at 1.0, mean loss) through the same
        TPUEstimator run_trial builds (use_tpu off, fused kernels on as by default);
        training is estimator.train, prediction estimator.predict over the cached
        features, each step timed by a SessionRunHook (training) or between batches
        yielded (prediction). fp32 = use_bf16 off, bf16 = use_bf16 on.
theirs: transformers ElectraForSequenceClassification / ElectraForQuestionAnswering,
        same shape, dropout as in training (model.train()), AdamW (eps 1e-8) +
        clip_grad_norm_(1.0) + linear schedule as KoELECTRA's training loop; bf16 is
        torch.autocast("cpu", dtype=torch.bfloat16) around the forward pass; prediction
        under torch.inference_mode() with model.eval().

Each (cell, precision, side) runs in its own child process (so peak RSS, the resident
high-water mark, is its own); both sides get the same thread count (TF intra- and
inter-op pools, torch.set_num_threads). Rounds alternate the sides, the order flipped
every round and every cell, and each entry keeps its fastest round. Printed: examples/s
after the warm-up steps, ours/theirs, CPU seconds per step (all threads: steadier than
wall time on a shared machine), peak RSS, and the load average.

--baseline DIR: "did this change the speed?" Ours from this tree and from another
checkout (e.g. `git worktree add --detach /tmp/ft-base HEAD~1`), interleaved in the same
way; prints this / baseline.

Needs ../shared/data (or KOELECTRA_DATA).
"""
import argparse
import json
import os
import pathlib
import resource
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# cell -> (task, mode, max_seq_length)
CELLS = {
    "cls-train": ("nsmc", "train", 128),
    "cls-predict": ("nsmc", "predict", 128),
    "qa-train": ("korquad", "train", 512),
    "qa-predict": ("korquad", "predict", 512),
}
DEFAULT_CELLS = "cls-train,cls-predict,qa-train,qa-predict"
# Training steps per cell: (warm-up, timed). Warm-up covers graph building and XLA
# compilation on our side (with trimmed padding, one compilation per batch length met)
# and oneDNN's first-call kernel selection on theirs. Prediction times a whole pass over
# the split after one warm-up pass (its batches are ordered by length on our side, so
# any shorter stretch would not be representative).
DEFAULT_STEPS = {"cls-train": (6, 14), "qa-train": (2, 4)}
# Rows read from the shared files (NSMC: 1,200 training features, 1,216 to predict).
NSMC_ROWS = 1200
KORQUAD_PREDICT_ARTICLES = 6
# Timed prediction batches of theirs (padded, so all alike) after 3 warm-up batches.
THEIRS_PREDICT_BATCHES = 10
# The figures for the peer on this machine type (ex/s): training, prediction.
QUOTED_HF = {("cls-train", "fp32"): 11.6, ("cls-train", "bf16"): 25.0,
             ("cls-predict", "fp32"): 47.7, ("cls-predict", "bf16"): 156.0}


def data_root():
  env = os.environ.get("KOELECTRA_DATA")
  return pathlib.Path(env) if env else ROOT.parent / "shared" / "data"


def vocab_file():
  return str(data_root() / "vocab" / "v3" / "vocab.txt")


# --- data: cached features shared by both sides -------------------------------------------

def _copy_head(src, dst, rows):
  dst.parent.mkdir(parents=True, exist_ok=True)
  with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as g:
    for i, line in enumerate(f):
      if i > rows:   # the header plus `rows` rows
        break
      g.write(line)


def ft_config(data_dir, task, max_seq_length, batch_size, **kw):
  """A FinetuningConfig for the benchmark: koelectra preset, small, random init."""
  import configure_finetuning
  hp = dict(task_names=[task], vocab_file=vocab_file(), allow_random_init=True,
            max_seq_length=max_seq_length, train_batch_size=batch_size,
            predict_batch_size=batch_size, eval_batch_size=batch_size,
            save_checkpoints_steps=10 ** 6, keep_checkpoint_max=1, do_eval=False,
            do_test=True, seed=1)
  hp.update(kw)
  return configure_finetuning.FinetuningConfig("bench", str(data_dir), **hp)


def build_data(work, batch_size):
  """Task files from the shared data and their cached features; {(task, split): path}."""
  data_dir = work / "data"
  ft = data_dir / "finetuning_data"
  shared = data_root()
  if not (ft / "nsmc" / "ratings_test.txt").exists():
    _copy_head(shared / "nsmc/derived/nsmc_pool_train.tsv", ft / "nsmc/ratings_train.txt",
               NSMC_ROWS)
    _copy_head(shared / "nsmc/derived/nsmc_pool_dev.tsv", ft / "nsmc/ratings_test.txt",
               NSMC_ROWS)
    (ft / "korquad").mkdir(parents=True, exist_ok=True)
    # Training reads all 20 articles (610 questions); prediction times whole passes,
    # so it reads the first few articles only.
    src = shared / "korquad/derived/korquad_dev_handover.json"
    shutil.copyfile(src, ft / "korquad" / "KorQuAD_v1.0_train.json")
    with open(src, encoding="utf-8") as f:
      squad = json.load(f)
    squad["data"] = squad["data"][:KORQUAD_PREDICT_ARTICLES]
    with open(ft / "korquad" / "KorQuAD_v1.0_dev.json", "w", encoding="utf-8") as f:
      json.dump(squad, f, ensure_ascii=False)
  from finetune import preprocessing
  from model import tokenization
  tokenizer = tokenization.FastTokenizer(vocab_file())
  paths = {}
  for task, length in (("nsmc", 128), ("korquad", 512)):
    config = ft_config(data_dir, task, length, batch_size)
    for split in ("train", "test"):
      s = preprocessing.prepare_split(config, split, tokenizer, batch_size,
                                      log=lambda *a: None, shuffle_seed=1)
      paths[(task, split)] = {"path": s.path, "records": s.num_records}
  return data_dir, paths


# --- children -----------------------------------------------------------------------------

def _result(times, cpu, batch_size, warmup, lengths=None):
  """Steady-state figures from per-step timestamps (the first `warmup` steps dropped).

  `lengths`: each step's trimmed batch length (ours). A step that meets a length for the
  first time also compiles the fused kernels for it (once per length, at most 8 lengths
  in a whole run), so such steps are left out of the steady-state rate and reported
  apart ("compile_steps", "compile_s").
  """
  seen, keep, compile_s = set(), [], 0.0
  for i in range(len(times)):
    new = lengths is not None and lengths[i] not in seen
    if lengths is not None:
      seen.add(lengths[i])
    if i < warmup:
      continue
    dt, dc = times[i] - times[i - 1], cpu[i] - cpu[i - 1]
    if new:
      compile_s += dt
    else:
      keep.append((dt, dc))
  wall = sum(k[0] for k in keep)
  return {"examples_per_sec": len(keep) * batch_size / wall,
          "s_per_step": wall / len(keep),
          "cpu_s_per_step": sum(k[1] for k in keep) / len(keep),
          "steps": len(keep),
          "compile_steps": len(times) - warmup - len(keep), "compile_s": compile_s,
          "lengths": sorted(seen) if lengths is not None else None,
          "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2,
          "load": os.getloadavg()[0]}


def child_ours(args):
  import tensorflow.compat.v1 as tf
  from finetune import preprocessing
  from finetune import runner
  from util import estimator as estimator_lib
  from util import tfrecord_input
  tf.get_logger().setLevel("ERROR")
  task, mode, length = CELLS[args.cell]
  config = ft_config(pathlib.Path(args.data_dir), task, length, args.batch_size,
                     use_bf16=args.precision == "bf16",
                     **json.loads(args.hparams or "{}"))
  total = args.warmup + args.steps
  model_dir = tempfile.mkdtemp(prefix="bench-ft-")
  model_fn = runner.model_fn_builder(config, total, None, model_dir)
  session = estimator_lib.session_config(args.threads, args.threads)
  est = estimator_lib.from_config(config, model_fn, model_dir=model_dir,
                                  session_config_proto=session, tf_random_seed=1)
  name_to_features = preprocessing.record_features(config)
  times, cpu, lengths = [], [], []

  def tick():
    times.append(time.perf_counter())
    cpu.append(time.process_time())

  class Timer(tf.estimator.SessionRunHook):
    """Times training steps and records each batch's trimmed length; with --profile,
    traces the step after the warm-up."""

    def begin(self):
      found = [op for op in tf.get_default_graph().get_operations()
               if op.name.endswith("trimmed_length")]
      self._length = found[0].outputs[0] if found else None

    def before_run(self, run_context):
      options = None
      if args.profile and len(times) == args.warmup:
        options = tf.RunOptions(trace_level=tf.RunOptions.FULL_TRACE)
      return tf.train.SessionRunArgs(self._length, options=options)

    def after_run(self, run_context, run_values):
      if self._length is not None:
        lengths.append(int(run_values.results))
      if mode == "train":
        tick()
      if run_values.run_metadata is not None and run_values.run_metadata.step_stats.dev_stats:
        _print_profile(run_values.run_metadata.step_stats, args.profile)

  if mode == "train":
    est.train(tfrecord_input.get_input_fn(args.records, name_to_features, is_training=True,
                                          seed=1),
              max_steps=total, hooks=[Timer()])
  else:
    input_fn = tfrecord_input.get_input_fn(args.records, name_to_features,
                                           is_training=False, repeat=True)
    for out in est.predict(input_fn=input_fn, yield_single_examples=False,
                           hooks=[Timer()]):
      tick()
      if len(times) == total:
        break
  shutil.rmtree(model_dir, ignore_errors=True)
  # Prediction: the warm-up pass has met every length already.
  trimmed = lengths[:len(times)] if (mode == "train" and lengths) else None
  print("RESULT " + json.dumps(_result(times, cpu, args.batch_size, args.warmup, trimmed)),
        flush=True)


def _print_profile(step_stats, top):
  """Op time of one traced step, summed by op type and by node (all threads)."""
  import collections
  by_type, by_node = collections.Counter(), collections.Counter()
  total = 0
  for dev in step_stats.dev_stats:
    for node in dev.node_stats:
      us = node.all_end_rel_micros
      op = node.timeline_label.split("(")[0].split(" = ")[-1].strip() or node.node_name
      by_type[op] += us
      by_node[node.node_name] += us
      total += us
  print(f"PROFILE op time {total / 1e6:.2f} s in one step (summed over threads)")
  # Sweep over the step: how long exactly one op ran (and which), and how long none did.
  events, labels = [], {}
  for dev in step_stats.dev_stats:
    for k, node in enumerate(dev.node_stats):
      if node.all_end_rel_micros <= 0:
        continue
      key = (dev.device, k)
      labels[key] = node.timeline_label.split("(")[0].split(" = ")[-1].strip()
      events.append((node.all_start_micros, 1, key))
      events.append((node.all_start_micros + node.all_end_rel_micros, -1, key))
  events.sort(key=lambda e: (e[0], e[1]))
  active, alone, idle, last = set(), collections.Counter(), 0, None
  for t, kind, key in events:
    if last is not None:
      if len(active) == 1:
        alone[labels[next(iter(active))]] += t - last
      elif not active:
        idle += t - last
    (active.add if kind > 0 else active.discard)(key)
    last = t
  span = (events[-1][0] - events[0][0]) if events else 0
  print(f"PROFILE step span {span / 1e3:.1f} ms; nothing running {idle / 1e3:.1f} ms; "
        f"one op alone {sum(alone.values()) / 1e3:.1f} ms, by type:")
  for name, us in alone.most_common(top):
    print(f"PROFILE   {us / 1e3:9.1f} ms alone  {name}")
  for title, counter in (("op type", by_type), ("node", by_node)):
    print(f"PROFILE top {top} by {title}:")
    for name, us in counter.most_common(top):
      print(f"PROFILE   {us / 1e3:9.1f} ms {100 * us / max(total, 1):5.1f}%  {name}")


def _load_features(path, names, rows):
  """The first `rows` records of a cached TFRecord file as {name: int64/float array}."""
  import numpy as np
  from util import tfrecord_writer
  out = {n: [] for n in names}
  for i, rec in enumerate(tfrecord_writer.read_records(path)):
    if i >= rows:
      break
    ex = tfrecord_writer.decode_example(rec)
    for n in names:
      out[n].append(ex[n])
  return {n: np.asarray(v) for n, v in out.items()}


def child_theirs(args):
  import contextlib
  import numpy as np
  import torch
  import transformers
  transformers.logging.set_verbosity_error()
  torch.set_num_threads(args.threads)
  torch.manual_seed(1)
  task, mode, length = CELLS[args.cell]
  cfg = transformers.ElectraConfig(
      vocab_size=35000, embedding_size=128, hidden_size=256, num_hidden_layers=12,
      num_attention_heads=4, intermediate_size=1024, hidden_act="gelu",
      hidden_dropout_prob=0.1, attention_probs_dropout_prob=0.1,
      max_position_embeddings=512, type_vocab_size=2, num_labels=2)
  if task == "korquad":
    model = transformers.ElectraForQuestionAnswering(cfg)
    label_names = {"start_positions": "start_positions", "end_positions": "end_positions"}
  else:
    model = transformers.ElectraForSequenceClassification(cfg)
    label_names = {"label_ids": "labels"}
  names = ["input_ids", "input_mask", "segment_ids"] + list(label_names)
  total = args.warmup + args.steps
  feats = _load_features(args.records, names, args.records_count)
  n = len(feats["input_ids"])

  def batch(step):
    idx = np.arange(step * args.batch_size, (step + 1) * args.batch_size) % n
    cut = slice(None)
    if args.trim:   # dynamic padding: the batch's longest sequence
      cut = slice(0, max(1, int(feats["input_mask"][idx].sum(1).max())))
    b = {"input_ids": feats["input_ids"][idx][:, cut],
         "attention_mask": feats["input_mask"][idx][:, cut],
         "token_type_ids": feats["segment_ids"][idx][:, cut]}
    if mode == "train":
      b.update({hf: feats[ours][idx].reshape(-1) for ours, hf in label_names.items()})
    return {k: torch.from_numpy(np.ascontiguousarray(v, dtype=np.int64))
            for k, v in b.items()}

  autocast = (lambda: torch.autocast("cpu", dtype=torch.bfloat16)) \
      if args.precision == "bf16" else contextlib.nullcontext
  times, cpu = [], []
  if mode == "train":
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, eps=1e-8, weight_decay=0.0)
    sched = transformers.get_linear_schedule_with_warmup(opt, 0, total)
    for step in range(total):
      b = batch(step)
      with autocast():
        loss = model(**b).loss
      loss.backward()
      torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
      opt.step()
      sched.step()
      model.zero_grad()
      float(loss)
      times.append(time.perf_counter())
      cpu.append(time.process_time())
  else:
    model.eval()
    with torch.inference_mode():
      for step in range(total):
        with autocast():
          out = model(**batch(step))
        # Fetch the outputs as numpy, as a prediction loop does (ours yields numpy).
        [v.float().numpy() for v in out.values()]
        times.append(time.perf_counter())
        cpu.append(time.process_time())
  print("RESULT " + json.dumps(_result(times, cpu, args.batch_size, args.warmup)),
        flush=True)


# --- parent ------------------------------------------------------------------------------

def spawn(side, cell, precision, args, data_dir, paths, root=ROOT, hparams=None,
          trim=False):
  """Runs one entry in a child process (of the benchmark in checkout `root`)."""
  task, mode, _ = CELLS[cell]
  rec = paths[(task, "train" if mode == "train" else "test")]
  if mode == "train":
    warmup, steps = DEFAULT_STEPS[cell]
    steps = args.steps or steps
  else:
    warmup = steps = rec["records"] // args.batch_size   # two passes, the second timed
    if side == "theirs" and not trim:
      # Their batches are padded to the full length, so every batch costs the same and a
      # stretch of batches stands for the pass (which takes minutes on a loaded machine).
      warmup, steps = 3, min(steps, THEIRS_PREDICT_BATCHES)
  script = pathlib.Path(root) / "benchmarks" / "bench_finetuning.py"
  cmd = [sys.executable, str(script), "--child", side, "--cell", cell, "--precision",
         precision, "--data-dir", str(data_dir), "--records", rec["path"],
         "--records-count", str(rec["records"]), "--batch-size", str(args.batch_size),
         "--warmup", str(warmup), "--steps", str(steps), "--threads", str(args.threads)]
  if hparams:
    cmd += ["--hparams", hparams]
  if trim:
    cmd += ["--trim"]
  if args.profile and side == "ours":
    cmd += ["--profile", str(args.profile)]
  env = dict(os.environ, PYTHONPATH=str(root), TF_CPP_MIN_LOG_LEVEL="2")
  p = subprocess.run(cmd, capture_output=True, text=True, env=env)
  for line in p.stdout.splitlines():
    if line.startswith("PROFILE "):
      print(line[8:])
  for line in p.stdout.splitlines():
    if line.startswith("RESULT "):
      return json.loads(line[7:])
  sys.stderr.write(p.stdout[-2000:] + p.stderr[-4000:])
  return None


def _uptime():
  try:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
  except OSError:
    return "load average %.2f, %.2f, %.2f" % os.getloadavg()


def _run_rounds(args, entries, data_dir, paths):
  """entries: [(key, pair of (label, spawn kwargs))]; runs each pair alternately, the
  order flipped every round and every entry; returns {label-key: [results]}."""
  runs = {}
  for rnd in range(args.rounds):
    for i, (key, pair) in enumerate(entries):
      order = pair if (rnd + i) % 2 == 0 else pair[::-1]
      for label, kw in order:
        print(f"round {rnd + 1}/{args.rounds}: {' '.join(key)} {label} ...", end=" ",
              flush=True)
        r = spawn(cell=key[0], precision=key[1], args=args, data_dir=data_dir,
                  paths=paths, **kw)
        if r is None:
          print("failed", flush=True)
          continue
        extra = ""
        if r.get("lengths"):
          extra = (f", lengths {r['lengths']}, {r['compile_steps']} step(s) meeting a new "
                   f"length left out ({r['compile_s']:.1f} s)")
        print(f"{r['examples_per_sec']:.2f} ex/s, {r['cpu_s_per_step']:.2f} cpu s/step, "
              f"peak {r['peak_rss_gb']:.2f} GB, load {r['load']:.2f}{extra}", flush=True)
        runs.setdefault((key, label), []).append(r)
  return runs


def _best(rs):
  if not rs:
    return None
  best = dict(max(rs, key=lambda r: r["examples_per_sec"]))
  best["peak_rss_gb"] = max(r["peak_rss_gb"] for r in rs)
  best["all"] = [r["examples_per_sec"] for r in rs]
  return best


# side -> what runs. "ours-full" is ours without trimmed padding: every batch at the full
# length, the same work as theirs (and what a TPU runs). "theirs-trim" cuts each batch to
# its longest sequence before the model (dynamic padding, which KoELECTRA's scripts do
# not do); sentence tasks only, since HF's QA loss and n-best see padded positions.
SIDES = {
    "ours": {"side": "ours"},
    "ours-full": {"side": "ours", "hparams": {"trim_padding": False}},
    "theirs": {"side": "theirs"},
    "theirs-trim": {"side": "theirs", "trim": True},
}
DEFAULT_SIDES = "ours,ours-full,theirs"


def _side_kwargs(side, extra_hparams):
  kw = dict(SIDES[side])
  if kw["side"] == "ours":
    hp = json.loads(extra_hparams or "{}")
    hp.update(kw.pop("hparams", {}))
    kw["hparams"] = json.dumps(hp) if hp else None
  return kw


def against_hf(args, data_dir, paths):
  cells = [c for c in args.cells.split(",") if c]
  precisions = [p for p in args.precisions.split(",") if p]
  sides = [s for s in args.sides.split(",") if s]
  entries = []
  for c in cells:
    # KorQuAD's hf-style head is never trimmed (finetune/model.py): "-full" / "-trim"
    # would repeat or change the plain entries.
    here = [s for s in sides if not (c.startswith("qa") and s in ("ours-full",
                                                                   "theirs-trim"))]
    for p in precisions:
      entries.append(((c, p), tuple((s, _side_kwargs(s, args.hparams)) for s in here)))
  start = _uptime()
  runs = _run_rounds(args, entries, data_dir, paths)
  print(f"\nKoELECTRA-Small-v3 shape, batch {args.batch_size}, {args.threads} threads "
        f"each, CPU ({os.cpu_count()} cores); best of {args.rounds} interleaved round(s)")
  print(f"uptime at start: {start}\nuptime at end:   {_uptime()}")
  print("ours = finetune/runner model_fn under TPUEstimator (train) / estimator.predict; "
        f"theirs = transformers {_version('transformers')} + torch {_version('torch')}")
  print(f"{'cell':12s} {'prec':5s} {'side':12s} {'ex/s':>8s} {'vs theirs':>10s} "
        f"{'cpu s/step':>11s} {'peak GB':>8s}  rounds (ex/s)")
  for (cell, prec), pair in entries:
    theirs = _best(runs.get(((cell, prec), "theirs")))
    for side, _ in pair:
      r = _best(runs.get(((cell, prec), side)))
      if r is None:
        print(f"{cell:12s} {prec:5s} {side:12s} failed (see stderr)")
        continue
      ratio = (f"{r['examples_per_sec'] / theirs['examples_per_sec']:9.2f}x"
               if theirs else f"{'-':>10s}")
      print(f"{cell:12s} {prec:5s} {side:12s} {r['examples_per_sec']:8.2f} {ratio} "
            f"{r['cpu_s_per_step']:11.2f} {r['peak_rss_gb']:8.2f}  "
            f"{' '.join(f'{x:.1f}' for x in r['all'])}")
  quoted = [(k, v) for k, v in QUOTED_HF.items() if k[0] in cells and k[1] in precisions]
  if quoted:
    print("theirs as quoted in the issue for this machine type: " + ", ".join(
        f"{c} {p} {v:g} ex/s" for (c, p), v in quoted))


def against_baseline(args, data_dir, paths):
  baseline = pathlib.Path(args.baseline).resolve()
  if not (baseline / "benchmarks" / "bench_finetuning.py").exists():
    sys.exit(f"--baseline {baseline}: no benchmarks/bench_finetuning.py there (copy this "
             "file into it)")
  cells = [c for c in args.cells.split(",") if c]
  precisions = [p for p in args.precisions.split(",") if p]
  entries = [((c, p), (("this", {"side": "ours", "hparams": args.hparams or None}),
                       ("baseline", {"side": "ours", "root": baseline,
                                     "hparams": args.hparams or None})))
             for c in cells for p in precisions]
  start = _uptime()
  runs = _run_rounds(args, entries, data_dir, paths)
  print(f"\nthis tree {ROOT} vs baseline {baseline}: batch {args.batch_size}, "
        f"{args.threads} threads, best of {args.rounds} interleaved round(s)")
  print(f"uptime at start: {start}\nuptime at end:   {_uptime()}")
  print(f"{'cell':12s} {'prec':5s} {'this ex/s':>10s} {'base ex/s':>10s} {'ratio':>7s} "
        f"{'this cpu s':>11s} {'base cpu s':>11s} {'this GB':>8s} {'base GB':>8s}")
  for (cell, prec), _ in entries:
    a = _best(runs.get(((cell, prec), "this")))
    b = _best(runs.get(((cell, prec), "baseline")))
    if a is None or b is None:
      print(f"{cell:12s} {prec:5s} failed (see stderr)")
      continue
    print(f"{cell:12s} {prec:5s} {a['examples_per_sec']:10.2f} {b['examples_per_sec']:10.2f} "
          f"{a['examples_per_sec'] / b['examples_per_sec']:6.2f}x "
          f"{a['cpu_s_per_step']:11.2f} {b['cpu_s_per_step']:11.2f} "
          f"{a['peak_rss_gb']:8.2f} {b['peak_rss_gb']:8.2f}")


def _version(module):
  try:
    from importlib import metadata
    return metadata.version(module)
  except Exception:  # noqa: BLE001 - informational only
    return "?"


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--cells", default=DEFAULT_CELLS,
                 help=f"comma-separated, of: {', '.join(CELLS)}")
  p.add_argument("--precisions", default="fp32,bf16")
  p.add_argument("--sides", default=DEFAULT_SIDES,
                 help=f"comma-separated, of: {', '.join(SIDES)}")
  p.add_argument("--rounds", type=int, default=2)
  p.add_argument("--batch-size", type=int, default=32)
  p.add_argument("--steps", type=int, default=0,
                 help="timed training steps per entry (default: per cell, see "
                      "DEFAULT_STEPS); prediction always times one whole pass")
  p.add_argument("--threads", type=int, default=os.cpu_count(),
                 help="threads for both sides (TF intra and inter op, torch)")
  p.add_argument("--hparams", default="",
                 help="extra FinetuningConfig hparams (JSON) for our side")
  p.add_argument("--baseline", help="compare ours against another checkout instead")
  p.add_argument("--work-dir", help="keep the task files and features here")
  p.add_argument("--profile", type=int, default=0, metavar="TOP",
                 help="trace one step of ours after the warm-up and print the TOP op "
                      "types and nodes by time (each entry's output goes to stdout)")
  # child process
  p.add_argument("--child", choices=("ours", "theirs"), help=argparse.SUPPRESS)
  p.add_argument("--cell", help=argparse.SUPPRESS)
  p.add_argument("--precision", help=argparse.SUPPRESS)
  p.add_argument("--data-dir", help=argparse.SUPPRESS)
  p.add_argument("--records", help=argparse.SUPPRESS)
  p.add_argument("--records-count", type=int, help=argparse.SUPPRESS)
  p.add_argument("--warmup", type=int, help=argparse.SUPPRESS)
  p.add_argument("--trim", action="store_true", help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.child == "ours":
    return child_ours(args)
  if args.child == "theirs":
    return child_theirs(args)
  for c in args.cells.split(","):
    if c and c not in CELLS:
      sys.exit(f"unknown cell {c!r} (known: {', '.join(CELLS)})")
  for side in args.sides.split(","):
    if side and side not in SIDES:
      sys.exit(f"unknown side {side!r} (known: {', '.join(SIDES)})")
  work = pathlib.Path(args.work_dir) if args.work_dir else \
      pathlib.Path(tempfile.mkdtemp(prefix="bench-finetuning-"))
  print(f"features in {work} ...", flush=True)
  data_dir, paths = build_data(work, args.batch_size)
  for (task, split), v in sorted(paths.items()):
    print(f"  {task} {split}: {v['records']:,} features")
  if args.baseline:
    against_baseline(args, data_dir, paths)
  else:
    against_hf(args, data_dir, paths)


if __name__ == "__main__":
  main()
