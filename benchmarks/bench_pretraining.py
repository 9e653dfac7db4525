"""Pretraining speed on CPU: KoELECTRA-Small (length 128, batch 32, use_tpu off).

  PYTHONPATH=. python benchmarks/bench_pretraining.py [--warmup 5 --steps 15]
                                                       [--variants fp32,bf16,...]
                                                       [--rounds 2]
  PYTHONPATH=. python benchmarks/bench_pretraining.py --loss-curve [--curve-steps 300]
  PYTHONPATH=. python benchmarks/bench_pretraining.py --baseline DIR [--variants ...]

Each variant runs in its own process (so peak memory is its own): the real
run_pretraining model_fn under TPUEstimator, `warmup` steps, then `steps` timed steps.
Printed side by side: steady-state examples/s, ratio to the float32 baseline (our default
graph) and to the original ELECTRA code's figure quoted for this machine kind (14.3 ex/s,
5.2 GB; it cannot run here), both as quoted and scaled by this machine's float32 matmul
rate measured in the same run against the 430 GFLOP/s quoted with it ("scaled"), peak RSS,
CPU seconds per step (all threads; steadier than wall time on a shared machine), and model
FLOPs utilisation (FLOPs per step from model/flops.estimate_train_flops x
steps/s / this machine's measured 2048^3 matmul rate, float32 or bfloat16 to match the
variant).

--loss-curve trains a small config for a few hundred steps in float32 and in bfloat16
with the same seeds and data order and prints both loss curves' moving averages.

Variants "fp32-unfused" / "bf16-unfused" set the hparam fused_kernels off (run_pretraining
then builds the model and optimizer with fused=False): plain TF ops throughout, the
original's graph (and the one used on TPU), for before/after.
--rounds N (default 3) runs the variant list N times in turn, the order reversed every
other round, so load from other jobs on a shared machine hits all variants alike; best and
median are printed, with their ratios to the original's graph (fp32-unfused). A second
table gives the floor: FLOPs per step at the matmul rate measured in the same run, the
best step as a multiple of it, and where one traced warm-up step's time goes (matmul,
fused XLA kernels, gathers/scatters, the optimizer, random bits, the input pipeline, other
element-wise ops, idle time between kernels); BENCH_TRACE_DUMP=FILE also writes that
step's nodes (device, name, label, microseconds) to FILE.

--baseline DIR: "did this change the speed?" Each variant also runs from another checkout
(DIR, e.g. a git worktree of the commit before the change), in the same rounds, the two
alternating and the order flipped every round; printed per variant: best ex/s of each and
the ratio this tree / baseline. The exact before/after of the fused-kernel move (quiet
machine, ~25 minutes):

  git worktree add --detach /tmp/bench-base 07f5c9c
  PYTHONPATH=. python benchmarks/bench_pretraining.py --baseline /tmp/bench-base \
      --variants bf16,fp32-unfused --rounds 3 --warmup 5 --steps 15

Needs ../shared/data (or KOELECTRA_DATA): TFRecords are built from petitions text with
the v3 vocab.
"""
import argparse
import json
import os
import pathlib
import resource
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ORIGINAL_SMALL_EX_S = 14.3   # original ELECTRA on TF 2.15, this machine kind (issue figure)
ORIGINAL_SMALL_PEAK_GB = 5.2
QUOTED_FP32_GFLOPS = 430.0   # the 2048^3 float32 matmul rate quoted with that figure
HF_SMALL_EX_S = 6.3

# name -> settings. threads "intra/inter"; grappler_amp: grappler's oneDNN bfloat16 rewrite;
# unfused: hparam fused_kernels off (plain TF ops throughout: the original graph, as on TPU).
VARIANTS = {
    "fp32": {},
    "bf16": {"use_bf16": True},
    "fp32-unfused": {"unfused": True},
    "bf16-unfused": {"use_bf16": True, "unfused": True},
    "fp32+xla": {"xla": True},
    "bf16+xla": {"use_bf16": True, "xla": True},
    "fp32+grappler-amp": {"grappler_amp": True},
    "bf16+threads2/1": {"use_bf16": True, "threads": "2/1"},
    "bf16+threads1/2": {"use_bf16": True, "threads": "1/2"},
}
DEFAULT_VARIANTS = "fp32-unfused,fp32,bf16-unfused,bf16"


def data_root():
  env = os.environ.get("KOELECTRA_DATA")
  return pathlib.Path(env) if env else ROOT.parent / "shared" / "data"


def build_data(work, max_seq_length, docs=400):
  """TFRecords of `max_seq_length` from the first `docs` petitions (JSON lines)."""
  out = work / f"data{max_seq_length}"
  if (out / "pretrain_tfrecords" / "summary.json").exists():
    return out
  src = data_root() / "corpus" / "petitions" / "petitions_2019-04"
  corpus = work / "corpus"
  corpus.mkdir(parents=True, exist_ok=True)
  with open(src, encoding="utf-8") as f, open(corpus / "petitions.jsonl", "w",
                                              encoding="utf-8") as g:
    for i, line in enumerate(f):
      if i >= docs:
        break
      g.write(line)
  import build_pretraining_dataset
  rc = build_pretraining_dataset.main([
      "--corpus-dir", str(corpus), "--vocab-file", str(data_root() / "vocab/v3/vocab.txt"),
      "--output-dir", str(out / "pretrain_tfrecords"), "--max-seq-length",
      str(max_seq_length), "--text-field", "content", "--num-out-files", "2",
      "--no-progress"])
  if rc:
    sys.exit(f"building benchmark TFRecords failed ({rc})")
  return out


def matmul_rates(n=2048, reps=10):
  """GFLOP/s of an n^3 matmul through TF in float32 and bfloat16 (best of reps, all
  threads), and "<dtype>/cpu": GFLOP per CPU second (all threads' CPU time), which other
  jobs on a shared machine disturb much less."""
  import tensorflow as tf
  rates = {}
  for dtype in (tf.float32, tf.bfloat16):
    a = tf.random.normal([n, n], dtype=tf.float32)
    a = tf.cast(a, dtype)
    f = tf.function(lambda x: tf.linalg.matmul(x, x))
    f(a).numpy()
    best, best_cpu = float("inf"), float("inf")
    for _ in range(reps):
      t, c = time.perf_counter(), time.process_time()
      f(a).numpy()
      best = min(best, time.perf_counter() - t)
      best_cpu = min(best_cpu, time.process_time() - c)
    rates[dtype.name] = 2 * n ** 3 / best / 1e9
    rates[dtype.name + "/cpu"] = 2 * n ** 3 / best_cpu / 1e9
  return rates


# --- child: one variant ---------------------------------------------------------------------

def small_config(data_dir, model_name, use_bf16, **kw):
  import configure_pretraining
  hp = dict(preset="koelectra-small-v3", max_seq_length=128, train_batch_size=32,
            vocab_file=str(data_root() / "vocab/v3/vocab.txt"), use_bf16=use_bf16,
            save_checkpoints_steps=100000, log_every_steps=100000, keep_checkpoint_max=1)
  hp.update(kw)
  return configure_pretraining.PretrainingConfig(model_name, str(data_dir), **hp)


def session_proto(settings):
  from util import estimator as estimator_lib
  intra, inter = (settings.get("threads") or "0/0").split("/")
  cfg = estimator_lib.session_config(int(intra), int(inter), settings.get("xla", False))
  if settings.get("grappler_amp"):
    from tensorflow.core.protobuf import rewriter_config_pb2
    cfg.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 = \
        rewriter_config_pb2.RewriterConfig.ON
  return cfg


def run_child(args):
  import tensorflow.compat.v1 as tf
  from pretrain import runner
  from util import estimator as estimator_lib
  from util import tfrecord_input
  tf.get_logger().setLevel("ERROR")
  settings = json.loads(args.settings)
  data_dir = pathlib.Path(args.data_dir)
  total = args.warmup + args.steps
  config = small_config(data_dir, args.child, settings.get("use_bf16", False),
                        num_train_steps=total, fused_kernels=not settings.get("unfused"),
                        **settings.get("hparams", {}))
  times, cpu, losses = [], [], []
  # The last warm-up step is traced (outside the timed window: tracing slows it down).
  trace_step = args.warmup - 1 if args.warmup >= 2 else None
  traced = {}

  class Timer(tf.estimator.SessionRunHook):
    def begin(self):
      self._total = tf.get_default_graph().get_tensor_by_name("total_loss_for_timer:0")
      traced["optimizer"] = optimizer_ops(tf.get_default_graph())

    def before_run(self, run_context):
      if len(times) == trace_step:
        traced["start"] = time.perf_counter()
        return tf.train.SessionRunArgs(self._total, options=tf.RunOptions(
            trace_level=tf.RunOptions.FULL_TRACE))
      return tf.train.SessionRunArgs(self._total)

    def after_run(self, run_context, run_values):
      if len(times) == trace_step:
        traced["wall_s"] = time.perf_counter() - traced["start"]
        traced["step_stats"] = run_values.run_metadata.step_stats
      times.append(time.perf_counter())
      cpu.append(time.process_time())
      losses.append(float(run_values.results))

  base_fn = runner.model_fn_builder(config)

  def model_fn(features, labels, mode, params):
    spec = base_fn(features, labels, mode, params)
    tf.identity(spec.loss, name="total_loss_for_timer")
    return spec

  est = estimator_lib.from_config(config, model_fn, session_config_proto=session_proto(settings),
                                  tf_random_seed=args.seed)
  files = tfrecord_input.expand_patterns(config.pretrain_tfrecords)
  input_fn = tfrecord_input.get_input_fn(
      files, tfrecord_input.pretraining_features(config.max_seq_length), is_training=True,
      seed=args.seed)
  t0 = time.perf_counter()
  est.train(input_fn, max_steps=total, hooks=[Timer()])
  wall = time.perf_counter() - t0
  timed = times[args.warmup - 1:]
  steps_per_sec = (len(timed) - 1) / (timed[-1] - timed[0])
  cpu_timed = cpu[args.warmup - 1:]
  out = {"steps_per_sec": steps_per_sec,
         # CPU seconds (all threads) per step: steadier than wall time when other jobs
         # share the machine.
         "cpu_s_per_step": (cpu_timed[-1] - cpu_timed[0]) / (len(cpu_timed) - 1),
         "examples_per_sec": steps_per_sec * config.train_batch_size,
         "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2,
         "wall_s": wall, "losses": losses,
         "flops_per_step": config.train_flops_per_step()}
  if "step_stats" in traced:
    out["trace"] = trace_breakdown(traced["step_stats"], traced["wall_s"], traced["optimizer"])
  print("RESULT " + json.dumps(out), flush=True)


# Where a step's time goes, by the nodes a TF trace (RunMetadata step stats) records.
# A node's category is the first that matches. "optimizer" is every node downstream of
# the gradients outside the gradients/ scope (clip_by_global_norm, the AdamW updates, the
# variable assignments; optimizer_ops() finds them in the graph). A jit-compiled fused_ops
# kernel is traced as one PartitionedCall.
TRACE_CATEGORIES = (
    ("input pipeline", lambda name, op, opt: op.startswith("Iterator")),
    ("optimizer", lambda name, op, opt: name in opt),
    ("matmul", lambda name, op, opt: "MatMul" in op or "Einsum" in op),
    ("gather / scatter", lambda name, op, opt: "Gather" in op or "Scatter" in op
     or "Segment" in op or op == "OneHot"),
    ("fused element-wise (XLA)", lambda name, op, opt: op == "PartitionedCall"),
    ("random bits", lambda name, op, opt: "Random" in op),
    ("other element-wise / reductions", lambda name, op, opt: True),
)


def optimizer_ops(graph):
  """Names of the ops that consume gradients, directly or not, outside gradients/."""
  todo = [op for op in graph.get_operations() if op.name.startswith("gradients/")]
  seen = set()
  while todo:
    op = todo.pop()
    for consumer in (c for out in op.outputs for c in out.consumers()):
      if consumer.name not in seen:
        seen.add(consumer.name)
        todo.append(consumer)
  return {name for name in seen if not name.startswith("gradients/")}


def trace_breakdown(step_stats, wall_s, optimizer):
  """Seconds per TRACE_CATEGORIES entry (kernel time summed over threads), plus
  "idle": the part of the step when no kernel ran (session and host work between
  kernels, waiting on dependencies), from one traced step."""
  seconds = {name: 0.0 for name, _ in TRACE_CATEGORIES}
  by_op = {}
  spans = []
  for dev in step_stats.dev_stats:
    for node in dev.node_stats:
      label = node.timeline_label
      op = label.split(" = ", 1)[1].split("(", 1)[0] if " = " in label else node.node_name
      if node.node_name == "_SOURCE":
        continue
      start, dur = node.all_start_micros, max(node.all_end_rel_micros, 0)
      spans.append((start, start + dur))
      category = next(c for c, match in TRACE_CATEGORIES if match(node.node_name, op, optimizer))
      seconds[category] += dur / 1e6
      key = f"{category}: {op}"
      by_op[key] = by_op.get(key, 0.0) + dur / 1e6
  spans.sort()
  busy, end = 0, None
  for a, b in spans:
    if end is None or a > end:
      busy += b - a
      end = b
    elif b > end:
      busy += b - end
      end = b
  seconds["idle"] = max(0.0, wall_s - busy / 1e6)
  if os.environ.get("BENCH_TRACE_DUMP"):
    with open(os.environ["BENCH_TRACE_DUMP"], "w") as f:
      for dev in step_stats.dev_stats:
        for node in dev.node_stats:
          f.write(f"{dev.device}\t{node.node_name}\t{node.timeline_label[:120]}\t"
                  f"{node.all_end_rel_micros}\n")
  top = sorted(by_op.items(), key=lambda kv: -kv[1])[:15]
  return {"wall_s": wall_s, "seconds": seconds, "top_ops": top}


def spawn(name, settings, data_dir, work, warmup, steps, seed=1, root=ROOT):
  """Runs one variant in a child process of the benchmark in checkout `root`."""
  model_name = f"bench-{name.replace('/', '_')}-{int(time.time())}"
  script = pathlib.Path(root) / "benchmarks" / "bench_pretraining.py"
  cmd = [sys.executable, str(script), "--child", model_name, "--settings",
         json.dumps(settings), "--data-dir", str(data_dir), "--warmup", str(warmup),
         "--steps", str(steps), "--seed", str(seed)]
  # `root` first, so its modules win; the rest of PYTHONPATH is kept (extra packages).
  path = [str(root)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(path), TF_CPP_MIN_LOG_LEVEL="2")
  if settings.get("xla"):
    # global_jit_level alone does not cluster CPU ops; this flag lets auto-clustering
    # (XLA) take the CPU graph too.
    env["TF_XLA_FLAGS"] = (env.get("TF_XLA_FLAGS", "") + " --tf_xla_cpu_global_jit").strip()
  p = subprocess.run(cmd, capture_output=True, text=True, env=env)
  for line in p.stdout.splitlines():
    if line.startswith("RESULT "):
      return json.loads(line[7:])
  sys.stderr.write(p.stdout[-2000:] + p.stderr[-4000:])
  return None


# --- parent -----------------------------------------------------------------------------

def speed(args, work):
  data_dir = build_data(work, 128)
  print("measuring the 2048^3 matmul rate ...", flush=True)
  rates = matmul_rates()
  print(f"matmul 2048^3: float32 {rates['float32']:.0f} GFLOP/s, "
        f"bfloat16 {rates['bfloat16']:.0f} GFLOP/s")
  names = [v for v in args.variants.split(",") if v]
  runs = {name: [] for name in names}
  # Rounds run the variants in turn, the order reversed every other round, so load from
  # other jobs on a shared machine (and any trend in it) hits them alike.
  for rnd in range(args.rounds):
    for name in (names if rnd % 2 == 0 else names[::-1]):
      print(f"round {rnd + 1}/{args.rounds}: {name} ({args.warmup} warm-up + {args.steps} "
            "timed steps) ...", flush=True)
      r = spawn(name, VARIANTS[name], data_dir, work, args.warmup, args.steps)
      if r is None:
        print("  failed (see stderr)", flush=True)
        continue
      print(f"  {r['examples_per_sec']:.2f} ex/s, {r['cpu_s_per_step']:.2f} cpu s/step",
            flush=True)
      runs[name].append(r)
  print_speed_table(args, runs, rates)
  print_floor_table(runs, rates)
  return runs


def _best_and_median(results, key="examples_per_sec"):
  values = sorted(r[key] for r in results)
  return values[-1], statistics.median(values)


def print_speed_table(args, runs, rates):
  """Best and median of every variant; ratios to the original's graph (fp32-unfused)."""
  base = runs.get("fp32-unfused") or []
  # The quoted original figure comes from a machine whose float32 matmul ran at 430 GFLOP/s;
  # scaled by this machine's rate measured above, it estimates the original here.
  scaled = ORIGINAL_SMALL_EX_S * rates["float32"] / QUOTED_FP32_GFLOPS
  load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
  print(f"\nKoELECTRA-Small (v3 vocab 35000, full-size generator), length 128, batch 32, "
        f"CPU ({os.cpu_count()} cores); {args.steps} steps after {args.warmup} warm-up, "
        f"{args.rounds} interleaved round(s) (order reversed every other round); "
        f"load average at the end {load:.2f}")
  print(f"{'variant':18s} {'best ex/s':>9s} {'median':>7s} {'vs orig graph':>14s} "
        f"{'median':>7s} {'vs scaled':>9s} {'peak GB':>8s} {'MFU':>6s} {'cpu s/step':>10s}")
  for name, results in runs.items():
    if not results:
      print(f"{name:18s} failed (see stderr)")
      continue
    best, med = _best_and_median(results)
    if base:
      b_best, b_med = _best_and_median(base)
      ratio, ratio_med = f"{best / b_best:13.2f}x", f"{med / b_med:6.2f}x"
    else:
      ratio, ratio_med = f"{'-':>14s}", f"{'-':>7s}"
    top = max(results, key=lambda r: r["examples_per_sec"])
    achieved = top["flops_per_step"] * top["steps_per_sec"] / 1e9
    peak = rates["bfloat16" if "bf16" in name or "amp" in name else "float32"]
    cpu = statistics.median(r["cpu_s_per_step"] for r in results)
    print(f"{name:18s} {best:9.2f} {med:7.2f} {ratio} {ratio_med} {best / scaled:8.2f}x "
          f"{max(r['peak_rss_gb'] for r in results):8.2f} {100 * achieved / peak:5.1f}% "
          f"{cpu:10.2f}")
  print(f"vs orig graph: fused_kernels off in float32 (the original's graph), best/best "
        f"and median/median; vs scaled: the original's quoted {ORIGINAL_SMALL_EX_S} ex/s "
        f"x this machine's float32 matmul rate / {QUOTED_FP32_GFLOPS:.0f} GFLOP/s "
        f"({scaled:.2f} ex/s); HF+PyTorch quoted {HF_SMALL_EX_S} ex/s")


def print_floor_table(runs, rates):
  """The step against this machine's floor, and where a traced step's time goes."""
  some = next((r for rs in runs.values() for r in rs), None)
  if some is None:
    return
  flops = some["flops_per_step"]
  print(f"\nFloor: {flops / 1e12:.3f} TFLOP per step (model/flops.estimate_train_flops) at "
        f"the measured matmul rate: float32 {flops / rates['float32'] / 1e9:.2f} s "
        f"({flops / rates['float32/cpu'] / 1e9:.2f} CPU s), bfloat16 "
        f"{flops / rates['bfloat16'] / 1e9:.2f} s ({flops / rates['bfloat16/cpu'] / 1e9:.2f} "
        "CPU s)")
  categories = [c for c, _ in TRACE_CATEGORIES] + ["idle"]
  short = {"input pipeline": "input", "optimizer": "optim", "matmul": "matmul",
           "gather / scatter": "gather", "fused element-wise (XLA)": "fused",
           "random bits": "random", "other element-wise / reductions": "other", "idle": "idle"}
  print(f"{'variant':18s} {'step s':>7s} {'floor s':>8s} {'x floor':>8s} {'cpu s':>7s} "
        f"{'floor':>6s} {'x floor':>8s} {'traced s':>9s}  "
        + " ".join(f"{short[c]:>7s}" for c in categories))
  for name, results in runs.items():
    if not results:
      continue
    top = max(results, key=lambda r: r["examples_per_sec"])
    step = 1 / top["steps_per_sec"]
    dtype = "bfloat16" if "bf16" in name or "amp" in name else "float32"
    floor, cpu_floor = flops / rates[dtype] / 1e9, flops / rates[dtype + "/cpu"] / 1e9
    cpu = statistics.median(r["cpu_s_per_step"] for r in results)
    line = (f"{name:18s} {step:7.2f} {floor:8.2f} {step / floor:7.2f}x {cpu:7.2f} "
            f"{cpu_floor:6.2f} {cpu / cpu_floor:7.2f}x")
    trace = top.get("trace")
    if trace:
      secs = trace["seconds"]
      total = sum(secs.values())
      line += f" {trace['wall_s']:9.2f}  " + " ".join(
          f"{100 * secs[c] / total:6.1f}%" for c in categories)
    print(line)
  print("step s: best wall time per step; cpu s: median CPU seconds per step (all threads), "
        "against the FLOPs at the matmul's GFLOP per CPU second.")
  print("Shares: kernel seconds per kind (summed over threads) in one traced warm-up step, "
        "and idle = that step's wall time when no kernel ran (session/host work, waits), "
        "as % of their sum. Kinds: bench_pretraining.TRACE_CATEGORIES.")


def against_baseline(args, work):
  """Each variant from this tree and from args.baseline, interleaved; prints the ratios."""
  baseline = pathlib.Path(args.baseline).resolve()
  if not (baseline / "benchmarks" / "bench_pretraining.py").exists():
    sys.exit(f"--baseline {baseline}: no benchmarks/bench_pretraining.py there")
  data_dir = build_data(work, 128)
  names = [v for v in args.variants.split(",") if v]
  trees = {"this": ROOT, "baseline": baseline}
  best = {}
  for rnd in range(args.rounds):
    for name in names:
      # Flip the order every round so a trend in the machine's load favours neither.
      order = ("this", "baseline") if (rnd + names.index(name)) % 2 == 0 else \
          ("baseline", "this")
      for tree in order:
        print(f"round {rnd + 1}/{args.rounds}: {name} @ {tree} ...", flush=True)
        r = spawn(name, VARIANTS[name], data_dir, work, args.warmup, args.steps,
                  root=trees[tree])
        if r is None:
          print("  failed", flush=True)
          continue
        print(f"  {r['examples_per_sec']:.2f} ex/s, {r['cpu_s_per_step']:.2f} cpu s/step",
              flush=True)
        key = (name, tree)
        if key not in best or r["examples_per_sec"] > best[key]["examples_per_sec"]:
          best[key] = r
  print(f"\nthis tree {ROOT} vs baseline {baseline}: KoELECTRA-Small, length 128, batch 32, "
        f"best of {args.rounds} interleaved round(s), {args.steps} steps after "
        f"{args.warmup} warm-up; load average {os.getloadavg()[0]:.2f}")
  print(f"{'variant':16s} {'this ex/s':>10s} {'base ex/s':>10s} {'ratio':>7s} "
        f"{'this cpu s':>11s} {'base cpu s':>11s}")
  for name in names:
    a, b = best.get((name, "this")), best.get((name, "baseline"))
    if a is None or b is None:
      print(f"{name:16s} failed (see stderr)")
      continue
    print(f"{name:16s} {a['examples_per_sec']:10.2f} {b['examples_per_sec']:10.2f} "
          f"{a['examples_per_sec'] / b['examples_per_sec']:6.3f}x "
          f"{a['cpu_s_per_step']:11.2f} {b['cpu_s_per_step']:11.2f}")
  return best


def loss_curve(args, work):
  """Small config, fp32 vs bf16, identical seeds and data order."""
  data_dir = build_data(work, 64)
  small = {"max_seq_length": 64, "train_batch_size": 16, "embedding_size": 128,
           "model_hparam_overrides": {"hidden_size": 128, "num_hidden_layers": 2,
                                      "num_attention_heads": 2, "intermediate_size": 512},
           "num_warmup_steps": 30, "learning_rate": 5e-4}
  curves = {}
  for name, bf16 in (("fp32", False), ("bf16", True)):
    print(f"training {name} for {args.curve_steps} steps ...", flush=True)
    r = spawn("curve-" + name, {"use_bf16": bf16, "hparams": small}, data_dir, work,
              1, args.curve_steps - 1, seed=3)
    if r is None:
      sys.exit(f"{name} run failed")
    curves[name] = r["losses"]
  w = args.window
  print(f"\ntotal loss, moving average over {w} steps (same seeds and data order)")
  print(f"{'step':>6s} {'fp32':>9s} {'bf16':>9s} {'diff':>7s}")
  a, b = curves["fp32"], curves["bf16"]
  n = min(len(a), len(b))
  worst = 0.0
  for end in range(w, n + 1, w):
    ma, mb = sum(a[end - w:end]) / w, sum(b[end - w:end]) / w
    worst = max(worst, abs(mb - ma) / ma)
    print(f"{end:6d} {ma:9.3f} {mb:9.3f} {100 * (mb - ma) / ma:6.1f}%")
  print(f"largest relative gap of the moving averages: {100 * worst:.1f}%")


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--variants", default=DEFAULT_VARIANTS,
                 help=f"comma list of: {', '.join(VARIANTS)}")
  p.add_argument("--warmup", type=int, default=5)
  p.add_argument("--steps", type=int, default=15)
  p.add_argument("--rounds", type=int, default=3,
                 help="run the variant list this many times in turn (order reversed every "
                 "other round); best and median printed")
  p.add_argument("--loss-curve", action="store_true")
  p.add_argument("--curve-steps", type=int, default=300)
  p.add_argument("--window", type=int, default=25)
  p.add_argument("--work-dir", help="keep TFRecords here between runs (default: temporary)")
  p.add_argument("--baseline", help="another checkout to compare each variant against")
  # internal: one variant in a child process
  p.add_argument("--child", help=argparse.SUPPRESS)
  p.add_argument("--settings", help=argparse.SUPPRESS)
  p.add_argument("--data-dir", help=argparse.SUPPRESS)
  p.add_argument("--seed", type=int, default=1, help=argparse.SUPPRESS)
  args = p.parse_args()
  if args.child:
    return run_child(args)
  if not (data_root() / "vocab/v3/vocab.txt").exists():
    sys.exit(f"shared data not found at {data_root()}; set KOELECTRA_DATA")
  with tempfile.TemporaryDirectory() as tmp:
    work = pathlib.Path(args.work_dir or tmp)
    work.mkdir(parents=True, exist_ok=True)
    if args.loss_curve:
      loss_curve(args, work)
    elif args.baseline:
      against_baseline(args, work)
    else:
      speed(args, work)


if __name__ == "__main__":
  main()
