"""ELECTRA against masked-LM pretraining at equal compute, on Korean, end to end (issue 24).

  PYTHONPATH=. python benchmarks/electra_vs_mlm.py [--work-dir runs/electra_vs_mlm]
      [--encoder mini] [--budget-flops 3.5e14] [--seeds 3] [--tasks nsmc,korsts,...]
  PYTHONPATH=. python benchmarks/electra_vs_mlm.py --quick --work-dir /tmp/evm   # toy size

Stages, each driving the real command line as a subprocess and reading the files it writes:
1. corpus: the shared corpus (util/shared_data) through build_pretraining_dataset.py
   --split-sentences rules at length 128 with the v3 vocab; the tokens kept come from its
   summary.json.
2. pretraining: ELECTRA (generator 1/4 of the discriminator's hidden size) and MLM only
   (`"electra_objective": false`, the same encoder) through run_pretraining.py, each for
   the number of steps whose FLOPs (model/flops.py, PretrainingConfig.train_flops_per_step)
   come nearest the budget, so MLM, whose step is cheaper, takes more steps. Checkpoints
   every round(steps / 4) steps, all kept (`keep_checkpoint_max` 0): the 25% and 50%
   models are those of steps round(steps / 4) and 2 x round(steps / 4) (within one step of
   the fraction), the 100% model the last step's. `use_bf16`, lr 5e-4 (ELECTRA-Small's),
   10% warm-up, linear decay to the run's own last step.
3. finetuning: run_finetuning.py (the koelectra preset: its per-task batch, lr and length)
   of each checkpoint and of a random initialisation (`allow_random_init`) on NSMC,
   KorSTS, Question Pair and PAWS, the same shortened schedule for every model
   (`--epochs`, the first `--train-rows` of a fixed-seed shuffle of the training file),
   `--seeds` trials (seeds 42, 43, ...), scored on dev data only: the tasks' dev files
   (NSMC: the shared NSMC-style dev pool); PAWS, of which only the dev file is shared,
   trains on 80% of it and is scored on the other 20% (a fixed-seed slice). No test file
   is read.
4. output: WORK/electra_vs_mlm.md (the table: pretraining FLOPs, steps, token positions
   seen, each task's dev median +- half the range over seeds, the average of the
   medians), WORK/electra_vs_mlm.json (the same rows) and WORK/electra_vs_mlm.png
   (average dev score against pretraining FLOPs; needs matplotlib, which is not a
   dependency: without it the plot is skipped with a message and the table says the same).

`--report` runs nothing and writes the table and plot from the cells finished so far
(unfinished ones shown as —, their rows without an average): the state of a run that
is still going or was stopped.

Resumable: a rerun skips the corpus when its summary.json exists, skips a pretraining run
whose last checkpoint exists (run_pretraining.py itself resumes an unfinished one), and
reads a finetuning cell whose <task>_results.json holds every seed (run_finetuning.py
resumes an unfinished one; it keeps only the last trial's model, `keep_all_models` off, so
an interrupted cell retrains at most one finished trial). So the experiment can run in
pieces. `--quick`: every stage at toy size (600 comment lines, a 2-layer 64-wide encoder,
length 64, batch 8, 20 ELECTRA steps, 64 training rows, NSMC only, one seed) in minutes.

Choice of the default encoder and budget (arithmetic, not measured here): bf16
KoELECTRA-Small (hidden 256, 12 layers, full-size generator) trains 14.22 ex/s at length
128, batch 32 (docs/running.md, 2-core EPYC): 2.25 s for a 0.529 TFLOP step, 235 GFLOP/s.
With the 1/4 generator (model/flops.py, length 128, batch 32):

  encoder                      ELECTRA GFLOP/step   MLM GFLOP/step   s/step at ~150 GFLOP/s
  small: 12 x 256 (ELECTRA-Small)       294               272              ~2.0
  mini:   4 x 256 (BERT-Mini's shape)   111               103              ~0.74

(~150 GFLOP/s: narrower generator matmuls and the fixed vocabulary work run below the
Small preset's rate; the pretraining log's steps/s will tell.) At 3.5e14 FLOPs "small"
gets ~1,190 ELECTRA steps, about the 1,200 at which an earlier look found neither model
ahead of random initialisation; "mini" gets 3,143 ELECTRA / 3,406 MLM steps, ~13 M token
positions (3.6 passes over the corpus's 27,663 examples; 3.19 M of its 3.64 M tokens are
kept), ~39 min per run, ~78 min for both. Finetuning "mini": Small trains 47 ex/s on
NSMC-length inputs (docs/finetuning.md); a third of its layers gives ~100 ex/s on the
short inputs (NSMC, Question Pair), ~65 on the longer pairs (KorSTS, PAWS): 2 epochs of
2,000 rows (PAWS 1,600) is 40-60 s a trial, plus ~20 s of graph building, compilation and
scoring, ~70 s; 7 models x 4 tasks x 3 seeds = 84 trials, ~100 min with the 28 process
starts. The corpus builds in ~15 s. The whole experiment is ~3 hours of the machine alone.

Generator size: 1/4 of the discriminator's hidden size (64 for 256), the ELECTRA paper's
value for ELECTRA-Small (Table 6) and the low end of its recommended 1/4 to 1/2: the
cheapest generator, so ELECTRA pays 8% more FLOPs per step than MLM (1/2 would cost 24%),
and a 64-wide generator is one whole attention head.
"""
import argparse
import dataclasses
import json
import os
import pathlib
import random
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from finetune import tasks as tasks_lib  # noqa: E402
from pretrain import example_builder  # noqa: E402
from pretrain.config import PretrainingConfig  # noqa: E402
from util import errors  # noqa: E402
from util import fileio  # noqa: E402
from util import shared_data  # noqa: E402

# Encoder shapes (hidden, layers, embedding); all use 64-wide heads and a 4x FFN.
ENCODERS = {
    "tiny": {"hidden_size": 64, "num_hidden_layers": 2, "embedding_size": 32},
    "mini": {"hidden_size": 256, "num_hidden_layers": 4, "embedding_size": 128},
    "small": {"hidden_size": 256, "num_hidden_layers": 12, "embedding_size": 128},
}
GENERATOR_FRACTION = 0.25
CHECKPOINT_PERCENTS = (25, 50, 100)
VOCAB_SIZE = 35000
# Training file, dev file (None: a held-out slice of the training file), under shared data.
TASK_FILES = {
    "nsmc": ("nsmc/derived/nsmc_pool_train.tsv", "nsmc/derived/nsmc_pool_dev.tsv"),
    "korsts": ("korsts/sts-train.tsv", "korsts/sts-dev.tsv"),
    "question-pair": ("question-pair/train.tsv", "question-pair/dev.tsv"),
    "paws": ("paws/dev_2k.tsv", None),
}
HELD_OUT_SHARE = 0.2  # of a training file, when the task has no shared dev file
ROWS_SEED = 12345     # the training-row shuffle and the held-out slice


@dataclasses.dataclass
class Plan:
  """Every setting of one experiment (the full run's defaults; `quick()` the toy one)."""
  encoder: str = "mini"
  budget_flops: float = 3.5e14
  max_seq_length: int = 128
  train_batch_size: int = 32
  learning_rate: float = 5e-4
  warmup_share: float = 0.1
  corpus_lines: Optional[int] = None  # None: the whole shared corpus
  tasks: tuple = tuple(TASK_FILES)
  seeds: int = 3
  train_rows: int = 2000
  dev_rows: Optional[int] = None      # None: the whole dev file (or held-out slice)
  epochs: float = 2.0
  finetune_overrides: dict = dataclasses.field(default_factory=dict)

  @classmethod
  def quick(cls):
    return cls(encoder="tiny", budget_flops=0.0, max_seq_length=64, train_batch_size=8,
               learning_rate=1e-3, corpus_lines=600, tasks=("nsmc",), seeds=1,
               train_rows=64, dev_rows=64, epochs=1.0,
               finetune_overrides={"max_seq_length": 64, "train_batch_size": 8,
                                   "predict_batch_size": 32, "log_every_steps": 4})


class Experiment:
  """The work directory's layout, and each stage (skipped when its output is there)."""

  def __init__(self, plan: Plan, work_dir: pathlib.Path, data_dir: pathlib.Path):
    self.plan, self.work, self.data = plan, work_dir, data_dir
    self.vocab = data_dir / "vocab" / "v3" / "vocab.txt"
    self.tfrecords = work_dir / "pretrain_tfrecords"
    self.commands_run = 0
    self.logs = work_dir / "logs"

  def check_plan(self):
    """Records the plan in WORK/plan.json, or checks a rerun's plan against it (a rerun
    with other settings would otherwise mix two experiments' cells in one table).

    Raises:
      errors.ConfigError: the work directory holds an experiment with other settings.
    """
    path = self.work / "plan.json"
    plan = json.loads(json.dumps(dataclasses.asdict(self.plan)))
    if path.exists():
      old = json.loads(path.read_text(encoding="utf-8"))
      diff = [k for k in sorted(set(old) | set(plan)) if old.get(k) != plan.get(k)]
      if diff:
        raise errors.ConfigError(
            f"{self.work} holds an experiment with other settings ("
            + "; ".join(f"{k}: {old.get(k)!r} there, {plan.get(k)!r} now" for k in diff)
            + "); rerun with its settings or choose another --work-dir")
      return
    self.work.mkdir(parents=True, exist_ok=True)
    with fileio.atomic_write(str(path)) as f:
      json.dump(plan, f, indent=1)

  # -- running the command lines ---------------------------------------------------------

  def run(self, name: str, script: str, args: List[str]):
    """Runs `python ROOT/script args` with its output in WORK/logs/<name>.log.

    Raises:
      errors.RunError: the command failed (its last output lines are in the message).
    """
    self.logs.mkdir(parents=True, exist_ok=True)
    log = self.logs / f"{name}.log"
    cmd = [sys.executable, str(ROOT / script)] + args
    print(f"[{name}] {script} ... (log: {log})", flush=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    start = time.time()
    with open(log, "a", encoding="utf-8") as f:
      f.write(f"\n$ {' '.join(cmd)}\n")
      f.flush()
      rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, env=env).returncode
    self.commands_run += 1
    if rc != 0:
      tail = log.read_text(encoding="utf-8").splitlines()[-5:]
      raise errors.RunError(f"{script} ({name}) exited with status {rc}; see {log}: "
                            + " | ".join(tail))
    print(f"[{name}] done in {time.time() - start:.0f}s", flush=True)

  # -- 1. corpus ---------------------------------------------------------------------------

  def corpus_dirs(self) -> List[str]:
    """The shared corpus, or (quick) its first news comments in WORK/quick_corpus."""
    if self.plan.corpus_lines is None:
      return [str(self.data / "corpus")]
    corpus = self.work / "quick_corpus" / "comments.txt"
    if not corpus.exists():
      lines = shared_data.head_lines(self.data / shared_data.COMMENTS, self.plan.corpus_lines)
      # A blank line after every 10 comments: several documents, as the builder expects.
      text = "\n\n".join("\n".join(lines[i:i + 10]) for i in range(0, len(lines), 10))
      corpus.parent.mkdir(parents=True, exist_ok=True)
      with fileio.atomic_write(str(corpus)) as f:
        f.write(text + "\n")
    return [str(corpus.parent)]

  def build_corpus(self) -> dict:
    """Stage 1; returns the builder's summary.json."""
    summary = self.tfrecords / "summary.json"
    if not summary.exists():
      self.run("corpus", "build_pretraining_dataset.py",
               ["--corpus-dir", *self.corpus_dirs(), "--vocab-file", str(self.vocab),
                "--output-dir", str(self.tfrecords), "--text-field", "content",
                "--split-sentences", "rules", "--max-seq-length",
                str(self.plan.max_seq_length), "--num-processes", "2", "--no-progress"])
    s = json.loads(summary.read_text(encoding="utf-8"))
    print(f"[corpus] {s['examples']:,} examples; tokens {s['tokens']:,}, kept "
          f"{s['tokens_written']:,} ({s['kept_share']:.1%})", flush=True)
    return s

  # -- 2. pretraining ----------------------------------------------------------------------

  def pretraining_hparams(self, objective: str, steps: Optional[int] = None) -> dict:
    """run_pretraining.py's hparams for `objective` ("electra" or "mlm"); without `steps`
    the step-dependent keys are left at a placeholder (for the FLOPs per step)."""
    p, enc = self.plan, ENCODERS[self.plan.encoder]
    steps = steps or 4
    every = max(1, round(steps / 4))
    return {
        "model_size": "small", "embedding_size": enc["embedding_size"],
        "model_hparam_overrides": {"hidden_size": enc["hidden_size"],
                                   "num_hidden_layers": enc["num_hidden_layers"]},
        "generator_hidden_size": GENERATOR_FRACTION,
        "electra_objective": objective == "electra",
        "vocab_size": VOCAB_SIZE, "vocab_file": str(self.vocab), "do_lower_case": False,
        "pretrain_tfrecords": str(self.tfrecords / example_builder.SHARD_GLOB),
        "model_dir": str(self.work / "models" / objective),
        "max_seq_length": p.max_seq_length, "train_batch_size": p.train_batch_size,
        "learning_rate": p.learning_rate, "use_bf16": True,
        "num_train_steps": steps, "num_warmup_steps": int(p.warmup_share * steps),
        "save_checkpoints_steps": every, "iterations_per_loop": every,
        "keep_checkpoint_max": 0, "log_every_steps": max(1, min(100, every // 2)),
    }

  def flops_per_step(self, objective: str) -> int:
    return PretrainingConfig(objective, str(self.work),
                             **self.pretraining_hparams(objective)).train_flops_per_step()

  def schedule(self, objective: str) -> dict:
    """Steps nearest the budget, the checkpoint steps of 25/50/100% and their FLOPs."""
    per_step = self.flops_per_step(objective)
    steps = max(4, round(self.plan.budget_flops / per_step))
    every = max(1, round(steps / 4))
    at = {25: every, 50: 2 * every, 100: steps}
    return {"objective": objective, "flops_per_step": per_step, "steps": steps,
            "checkpoint_steps": at, "flops": {k: s * per_step for k, s in at.items()}}

  def pretrain(self, sched: dict) -> Dict[int, str]:
    """Stage 2 for one objective; returns {percent: checkpoint prefix}."""
    objective, steps = sched["objective"], sched["steps"]
    hp = self.pretraining_hparams(objective, steps)
    prefixes = {k: os.path.join(hp["model_dir"], f"model.ckpt-{s}")
                for k, s in sched["checkpoint_steps"].items()}
    if not os.path.exists(prefixes[100] + ".index"):
      self.run(f"pretrain-{objective}", "run_pretraining.py",
               ["--data-dir", str(self.work), "--model-name", objective,
                "--hparams", json.dumps(hp)])
    missing = [p for p in prefixes.values() if not os.path.exists(p + ".index")]
    if missing:
      raise errors.RunError(f"pretraining {objective} finished without the checkpoints "
                            f"{', '.join(missing)}; was {hp['model_dir']} trained with "
                            "other settings? Use another --work-dir")
    return prefixes

  # -- 3. finetuning -----------------------------------------------------------------------

  def finetuning_data(self) -> pathlib.Path:
    """WORK/finetune/finetuning_data/<task>/{train,dev}.tsv for each task (header kept),
    where run_finetuning.py --data-dir WORK/finetune reads them."""
    root = self.work / "finetune" / "finetuning_data"
    for task in self.plan.tasks:
      train_src, dev_src = TASK_FILES[task]
      out = root / task
      if (out / "train.tsv").exists() and (out / "dev.tsv").exists():
        continue
      header, rows = _read_rows(self.data / train_src)
      random.Random(ROWS_SEED).shuffle(rows)
      if dev_src is None:
        cut = round(len(rows) * HELD_OUT_SHARE)
        dev, rows = rows[:cut], rows[cut:]
      else:
        dev = _read_rows(self.data / dev_src)[1]
      out.mkdir(parents=True, exist_ok=True)
      for name, part in (("dev.tsv", dev[:self.plan.dev_rows]),
                         ("train.tsv", rows[:self.plan.train_rows])):
        with fileio.atomic_write(str(out / name)) as f:
          f.write("".join([header] + part))
    return root

  def finetune(self, model: str, task: str, checkpoint: Optional[str]) -> dict:
    """Stage 3 for one cell; returns its <task>_results.json."""
    p, enc = self.plan, ENCODERS[self.plan.encoder]
    rec = self.cell_results(model, task)
    if rec is not None:
      print(f"[finetune-{model}-{task}] done (read {self.results_path(model, task)})",
            flush=True)
      return rec
    hp = {"task_names": [task], "model_size": "small",
          "embedding_size": enc["embedding_size"],
          "model_hparam_overrides": {"hidden_size": enc["hidden_size"],
                                     "num_hidden_layers": enc["num_hidden_layers"]},
          "vocab_size": VOCAB_SIZE, "vocab_file": str(self.vocab),
          "preprocessed_data_dir": str(self.work / "finetune" / "features"),
          "num_trials": p.seeds, "num_train_epochs": p.epochs, "use_bf16": True,
          "keep_all_models": False, "do_eval": True, "do_test": False}
    hp.update(p.finetune_overrides)
    hp.update({"init_checkpoint": checkpoint} if checkpoint else {"allow_random_init": True})
    self.run(f"finetune-{model}-{task}", "run_finetuning.py",
             ["--data-dir", str(self.work / "finetune"), "--model-name", model,
              "--preset", "koelectra", "--hparams", json.dumps(hp)])
    return json.loads(self.results_path(model, task).read_text(encoding="utf-8"))

  def results_path(self, model: str, task: str) -> pathlib.Path:
    return self.work / "finetune" / "models" / model / "results" / f"{task}_results.json"

  def cell_results(self, model: str, task: str) -> Optional[dict]:
    """A finished cell's <task>_results.json (every seed scored), else None."""
    path = self.results_path(model, task)
    if not path.exists():
      return None
    rec = json.loads(path.read_text(encoding="utf-8"))
    return rec if rec["num_trials"] == self.plan.seeds else None


def _read_rows(path):
  """(header line, data lines) of a TSV file with a header, newlines kept."""
  with open(path, encoding="utf-8") as f:
    lines = [line if line.endswith("\n") else line + "\n" for line in f if line.strip()]
  return lines[0], lines[1:]


def cell_score(rec: dict) -> dict:
  """{"median", "spread" (half the range), "trials"} of a results file's dev headline."""
  trials = rec["splits"]["dev"][rec["metric"]]["trials"]
  return {"median": statistics.median(trials), "spread": (max(trials) - min(trials)) / 2,
          "trials": trials}


def table_rows(plan: Plan, schedules: Dict[str, dict], scores: Dict[str, dict]) -> List[dict]:
  """One row per finetuned model: random init, then each objective at 25/50/100%."""
  rows = [{"model": "random init", "objective": "random", "percent": 0, "flops": 0,
           "steps": 0, "tokens_seen": 0, "tasks": scores["random"]}]
  for objective, sched in schedules.items():
    for pct in CHECKPOINT_PERCENTS:
      steps = sched["checkpoint_steps"][pct]
      rows.append({"model": f"{objective.upper()} {pct}%", "objective": objective,
                   "percent": pct, "flops": sched["flops"][pct], "steps": steps,
                   "tokens_seen": steps * plan.train_batch_size * plan.max_seq_length,
                   "tasks": scores[f"{objective}-{pct}"]})
  for row in rows:
    done = [t["median"] for t in row["tasks"].values() if t is not None]
    # An average over some tasks is not comparable with one over all: none until all.
    row["average"] = statistics.mean(done) if len(done) == len(row["tasks"]) else None
  return rows


def markdown(plan: Plan, rows: List[dict], corpus: dict) -> str:
  """The results table, with the settings it was made with."""
  tasks = list(plan.tasks)
  metrics = [tasks_lib.get_task(t).metric for t in tasks]
  head = (["model", "pretraining FLOPs", "steps", "token positions seen"]
          + [f"{t} ({m})" for t, m in zip(tasks, metrics)] + ["average"])
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  for r in rows:
    cells = [r["model"], f"{r['flops']:.3g}", f"{r['steps']:,}", f"{r['tokens_seen']:,}"]
    cells += [f"{r['tasks'][t]['median']:.2f} ± {r['tasks'][t]['spread']:.2f}"
              if r["tasks"][t] is not None else "—" for t in tasks]
    average = f"{r['average']:.2f}" if r["average"] is not None else "—"
    lines.append("| " + " | ".join(cells + [average]) + " |")
  enc = ENCODERS[plan.encoder]
  notes = [
      f"Encoder `{plan.encoder}`: {enc['num_hidden_layers']} layers, hidden "
      f"{enc['hidden_size']}, embedding {enc['embedding_size']}; ELECTRA's generator "
      f"{GENERATOR_FRACTION:g} x hidden. Length {plan.max_seq_length}, batch "
      f"{plan.train_batch_size}, lr {plan.learning_rate:g}, budget {plan.budget_flops:.3g} "
      "FLOPs (model/flops.py), bf16.",
      f"Corpus: {corpus['tokens']:,} tokens, {corpus['tokens_written']:,} kept "
      f"({corpus['kept_share']:.1%}) in {corpus['examples']:,} examples "
      "(--split-sentences rules).",
      f"Finetuning: koelectra preset, {plan.epochs:g} epochs on at most {plan.train_rows:,} "
      f"training rows, {plan.seeds} seed(s); dev median ± half the range over seeds; "
      "average = mean of the task medians. No test file is read.",
  ]
  missing = sum(t is None for r in rows for t in r["tasks"].values())
  if missing:
    notes.append(f"Partial: {missing} of {len(rows) * len(tasks)} finetuning cells not "
                 "finished yet (—); rerun the command to continue.")
  return "\n".join(lines) + "\n\n" + "\n".join(f"- {n}" for n in notes) + "\n"


def plot(rows: List[dict], path: pathlib.Path, title: str) -> str:
  """Average dev score against pretraining FLOPs; returns what was done, for the log."""
  try:
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
  except ImportError:
    return ("plot skipped: matplotlib is not installed (pip install matplotlib==3.10.9); "
            "the table holds the same numbers")
  fig, ax = plt.subplots(figsize=(6, 4))
  random_avg = rows[0]["average"]
  for objective, style in (("electra", "o-"), ("mlm", "s-")):
    pts = [(0, random_avg)] + [(r["flops"], r["average"]) for r in rows
                               if r["objective"] == objective]
    pts = [(x, y) for x, y in pts if y is not None]  # unfinished cells (partial report)
    ax.plot([x for x, _ in pts], [y for _, y in pts], style, label=objective.upper())
  if random_avg is not None:
    ax.axhline(random_avg, color="grey", linestyle="--", label="random init")
  ax.set_xlabel("pretraining FLOPs")
  ax.set_ylabel("average dev score")
  ax.set_title(title, fontsize=10)
  ax.legend()
  fig.tight_layout()
  with fileio.atomic_path(str(path)) as tmp:
    fig.savefig(tmp, format="png", dpi=100)
  plt.close(fig)
  return f"plot: {path}"


def parse_args(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                              formatter_class=argparse.RawDescriptionHelpFormatter)
  p.add_argument("--work-dir", default="runs/electra_vs_mlm",
                 help="everything goes here; rerun with the same one to resume")
  p.add_argument("--quick", action="store_true", help="every stage at toy size")
  p.add_argument("--encoder", choices=sorted(ENCODERS),
                 help="encoder shape (default: mini; tiny with --quick)")
  p.add_argument("--budget-flops", type=float,
                 help="pretraining FLOPs of each objective (default 3.5e14; --quick: 20 "
                      "ELECTRA steps)")
  p.add_argument("--seeds", type=int, help="finetuning trials per cell (default 3; 1 quick)")
  p.add_argument("--tasks", help=f"comma-separated, of {','.join(TASK_FILES)}")
  p.add_argument("--data-dir", help="the shared data (default: util/shared_data's)")
  p.add_argument("--report", action="store_true",
                 help="run nothing: write the table and plot from the cells finished so "
                      "far (unfinished ones shown as —)")
  return p.parse_args(argv)


def main(argv=None):
  args = parse_args(argv)
  plan = Plan.quick() if args.quick else Plan()
  if args.encoder:
    plan.encoder = args.encoder
  if args.seeds:
    plan.seeds = args.seeds
  if args.tasks:
    plan.tasks = tuple(t for t in args.tasks.split(",") if t)
    unknown = [t for t in plan.tasks if t not in TASK_FILES]
    if unknown:
      raise errors.ConfigError(f"--tasks: unknown {', '.join(unknown)}; choose from "
                               f"{', '.join(TASK_FILES)}")
  data = pathlib.Path(args.data_dir) if args.data_dir else shared_data.shared_data_dir()
  if not (data / "vocab" / "v3" / "vocab.txt").exists():
    raise errors.RunError(f"the shared data is not at {data} (no vocab/v3/vocab.txt); "
                          "set KOELECTRA_DATA or --data-dir")
  exp = Experiment(plan, pathlib.Path(args.work_dir).resolve(), data)
  if args.budget_flops:
    plan.budget_flops = args.budget_flops
  elif args.quick:
    plan.budget_flops = 20 * exp.flops_per_step("electra")
  start = time.time()
  if args.report and not (exp.work / "plan.json").exists():
    raise errors.RunError(f"nothing to report in {exp.work} yet; run the command without "
                          "--report first")
  exp.check_plan()

  if args.report:
    return report(exp, start)
  corpus = exp.build_corpus()
  schedules = {o: exp.schedule(o) for o in ("electra", "mlm")}
  for s in schedules.values():
    print(f"[pretrain-{s['objective']}] {s['steps']:,} steps x {s['flops_per_step']:.4g} "
          f"FLOPs = {s['flops'][100]:.4g} (budget {plan.budget_flops:.4g}); checkpoints at "
          f"steps {', '.join(str(v) for v in s['checkpoint_steps'].values())}", flush=True)
  checkpoints = {"random": None}
  for objective, sched in schedules.items():
    for pct, prefix in exp.pretrain(sched).items():
      checkpoints[f"{objective}-{pct}"] = prefix
  exp.finetuning_data()
  # The full-budget models first, then 50% and 25%: a run stopped midway has the
  # comparison that matters most.
  order = ["random"] + [f"{o}-{pct}" for pct in reversed(CHECKPOINT_PERCENTS)
                        for o in schedules]
  scores = {model: {task: cell_score(exp.finetune(model, task, checkpoints[model]))
                    for task in plan.tasks} for model in order}

  write_outputs(exp, corpus, schedules, scores, start)
  return 0


def write_outputs(exp: Experiment, corpus: dict, schedules: Dict[str, dict],
                  scores: Dict[str, dict], start: float):
  """The table (printed and WORK/electra_vs_mlm.md), the JSON record and the plot."""
  plan = exp.plan
  rows = table_rows(plan, schedules, scores)
  text = markdown(plan, rows, corpus)
  print("\n" + text)
  with fileio.atomic_write(str(exp.work / "electra_vs_mlm.md")) as f:
    f.write(text)
  record = {"plan": dataclasses.asdict(plan), "corpus": corpus, "schedules": schedules,
            "rows": rows}
  with fileio.atomic_write(str(exp.work / "electra_vs_mlm.json")) as f:
    json.dump(record, f, indent=1, ensure_ascii=False)
  enc = ENCODERS[plan.encoder]
  print(plot(rows, exp.work / "electra_vs_mlm.png",
             f"ELECTRA vs MLM at equal FLOPs: {enc['num_hidden_layers']} x "
             f"{enc['hidden_size']} encoder, {', '.join(plan.tasks)}"))
  print(f"{exp.commands_run} command(s) run in {time.time() - start:.0f}s; results in "
        f"{exp.work / 'electra_vs_mlm.md'}")


def report(exp: Experiment, start: float) -> int:
  """--report: the outputs from what is finished, running nothing.

  Raises:
    errors.RunError: the corpus stage has not finished yet (nothing to report).
  """
  summary = exp.tfrecords / "summary.json"
  if not summary.exists():
    raise errors.RunError(f"nothing to report in {exp.work} yet (the corpus is not built); "
                          "run the command without --report first")
  corpus = json.loads(summary.read_text(encoding="utf-8"))
  schedules = {o: exp.schedule(o) for o in ("electra", "mlm")}
  models = ["random"] + [f"{o}-{pct}" for o in schedules for pct in CHECKPOINT_PERCENTS]
  scores = {}
  for model in models:
    scores[model] = {}
    for task in exp.plan.tasks:
      rec = exp.cell_results(model, task)
      scores[model][task] = cell_score(rec) if rec is not None else None
  write_outputs(exp, corpus, schedules, scores, start)
  return 0


if __name__ == "__main__":
  sys.exit(errors.run_main(main))
