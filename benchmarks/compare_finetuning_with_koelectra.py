"""Side by side: run_finetuning.py and KoELECTRA's own finetune/run_seq_cls.py, from the same
initial weights, on the same training file with the same recipe, several seeds each.

Run by hand (not in CI; a few minutes on two cores):

  PYTHONPATH=. python benchmarks/compare_finetuning_with_koelectra.py \\
      --koelectra /path/to/KoELECTRA [--tasks nsmc,korsts] [--seeds 1,2,3] [--rows 1200]

--koelectra is a checkout of github.com/monologg/KoELECTRA, or its bare git directory
(a mirror without a work tree: its finetune/ code is read with `git archive`). Nothing of it
is part of this project: its code is copied into --work at run time and patched there.

What runs:
1. A tiny encoder (hidden 64, 2 layers, embedding 24, the v3 vocab) pretrained a few steps by
   build_pretraining_dataset.py + run_pretraining.py on shared Korean comments, and exported
   by export_hf.py (the discriminator folder) for their side.
2. Per task and seed, the first --rows rows of the shared training file and the first
   --test-rows rows of an evaluation file (NSMC: nsmc_pool_train / nsmc_pool_dev; KorSTS:
   sts-train / sts-dev, used as each side's test file):
   - ours: `run_finetuning.py` with the koelectra preset (init_checkpoint = the pretrained
     checkpoint, do_test, seed s);
   - theirs: `run_seq_cls.py --task T --config_file ...` with a config of their own format
     holding the same values (the koelectra-small-v3 JSON with the tiny model, --epochs,
     --lr, --length, seed s), evaluating the test file at every epoch's end
     (`evaluate_test_during_training`, logging_steps = one epoch); the last epoch's
     figures are read from their output files.
3. Per-seed metrics, mean and spread (max - min) per side, and both sides' step counts.

Patches applied to their copy, only what cannot run with transformers 4.47.1 + torch 2.13 on
this Python (each is printed):
- `attrdict` cannot be imported on Python >= 3.10 (it uses collections.Mapping): a module of
  the same name providing `AttrDict` (a dict with attribute access) is put on their path.
- `fastprogress` (progress bars) is not installed here: a module of the same name whose
  `master_bar` / `progress_bar` iterate their argument unchanged is put on their path.
Their cached-features file is written once per run (a fresh data directory per run), so
torch 2.13's `torch.load(weights_only=True)` never has to read it back.
"""
import argparse
import glob
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from util.shared_data import shared_data_dir  # noqa: E402

TINY_MODEL = {"model_size": "small", "embedding_size": 24, "vocab_size": 35000,
              "model_hparam_overrides": {"hidden_size": 64, "num_hidden_layers": 2,
                                         "num_attention_heads": 2, "intermediate_size": 128,
                                         "max_position_embeddings": 128}}
PRETRAIN = dict(TINY_MODEL, max_seq_length=64, generator_hidden_size=0.5,
                generator_layers=0.5, train_batch_size=16, num_train_steps=60,
                num_warmup_steps=6, learning_rate=1e-3, save_checkpoints_steps=60,
                log_every_steps=30, iterations_per_loop=30, keep_checkpoint_max=1)
# task -> (shared train file, shared evaluation file, their train / test names, metrics)
TASKS = {
    "nsmc": ("nsmc/derived/nsmc_pool_train.tsv", "nsmc/derived/nsmc_pool_dev.tsv",
             "ratings_train.txt", "ratings_test.txt", ("accuracy",)),
    "korsts": ("korsts/sts-train.tsv", "korsts/sts-dev.tsv", "sts-train.tsv",
               "sts-test.tsv", ("spearman", "pearson")),
}
# Their metric names for ours.
THEIR_KEYS = {"accuracy": "acc", "spearman": "spearmanr", "pearson": "pearson"}

ATTRDICT_SHIM = '''"""Stand-in for attrdict (not importable on Python >= 3.10): a dict with attributes."""
class AttrDict(dict):
  def __getattr__(self, name):
    try:
      return self[name]
    except KeyError:
      raise AttributeError(name) from None

  def __setattr__(self, name, value):
    self[name] = value
'''
FASTPROGRESS_SHIM = '''"""Stand-in for fastprogress (not installed): no progress bars."""
class master_bar:
  def __init__(self, items):
    self.items = items

  def __iter__(self):
    return iter(self.items)

  def write(self, line):
    print(line)


def progress_bar(items, parent=None):
  return items
'''


def run(cmd, cwd, env, log_path):
  """Runs cmd, its output to log_path; fails with the log's tail."""
  with open(log_path, "w", encoding="utf-8") as log:
    proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
  if proc.returncode != 0:
    with open(log_path, encoding="utf-8") as f:
      tail = f.read()[-3000:]
    raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
  with open(log_path, encoding="utf-8") as f:
    return f.read()


def env_with(*paths):
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONHASHSEED="0")
  env["PYTHONPATH"] = os.pathsep.join(paths)
  return env


def head(src, dst, rows):
  """The header line and the first `rows` data rows of src."""
  os.makedirs(os.path.dirname(dst), exist_ok=True)
  with open(src, encoding="utf-8") as f, open(dst, "w", encoding="utf-8") as out:
    for i, line in enumerate(f):
      if i > rows:
        break
      out.write(line)


def pretrain(work, vocab):
  """Pretrains and exports the tiny encoder once; returns (checkpoint prefix, HF folder)."""
  root = os.path.join(work, "pretrain")
  export = os.path.join(work, "export")
  env = env_with(ROOT)
  if not os.path.exists(os.path.join(export, "discriminator", "config.json")):
    corpus = os.path.join(root, "corpus")
    os.makedirs(corpus, exist_ok=True)
    src = shared_data_dir() / "corpus" / "hate-speech-unlabeled" / "unlabeled_comments_5.txt"
    with open(src, encoding="utf-8") as f:
      lines = [next(f).strip() for _ in range(2000)]
    with open(os.path.join(corpus, "comments.txt"), "w", encoding="utf-8") as f:
      f.write("\n\n".join("\n".join(lines[i:i + 10]) for i in range(0, len(lines), 10)))
    shutil.copy(vocab, os.path.join(root, "vocab.txt"))
    run([sys.executable, "build_pretraining_dataset.py", "--corpus-dir", corpus,
         "--vocab-file", vocab, "--output-dir", os.path.join(root, "pretrain_tfrecords"),
         "--max-seq-length", "64", "--num-out-files", "1", "--no-progress"],
        ROOT, env, os.path.join(work, "build.log"))
    run([sys.executable, "run_pretraining.py", "--data-dir", root, "--model-name", "tiny",
         "--hparams", json.dumps(PRETRAIN)], ROOT, env, os.path.join(work, "pretrain.log"))
    run([sys.executable, "export_hf.py", "--checkpoint", os.path.join(root, "models", "tiny"),
         "--hparams", json.dumps(PRETRAIN), "--vocab-file", vocab, "--output-dir", export,
         "--which", "discriminator"], ROOT, env, os.path.join(work, "export.log"))
  import tensorflow.compat.v1 as tf
  return tf.train.latest_checkpoint(os.path.join(root, "models", "tiny")), \
      os.path.join(export, "discriminator")


def their_code(koelectra, work):
  """Their finetune/ code copied under work/koelectra_finetune, plus the two shims."""
  dst = os.path.join(work, "koelectra_finetune")
  shims = os.path.join(work, "koelectra_shims")
  if not os.path.exists(os.path.join(dst, "run_seq_cls.py")):
    tmp = dst + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    if os.path.exists(os.path.join(koelectra, "finetune", "run_seq_cls.py")):
      for name in ("run_seq_cls.py", "processor", "src"):
        src = os.path.join(koelectra, "finetune", name)
        (shutil.copytree if os.path.isdir(src) else shutil.copy)(src, os.path.join(tmp, name))
    else:  # a bare git directory (a mirror): read the files from its HEAD
      archive = subprocess.run(
          ["git", "--git-dir", koelectra, "archive", "HEAD", "finetune/run_seq_cls.py",
           "finetune/processor", "finetune/src"], check=True, capture_output=True).stdout
      subprocess.run(["tar", "-x", "--strip-components=1", "-C", tmp], input=archive,
                     check=True)
    os.rename(tmp, dst)
  os.makedirs(os.path.join(shims, "fastprogress"), exist_ok=True)
  with open(os.path.join(shims, "attrdict.py"), "w", encoding="utf-8") as f:
    f.write(ATTRDICT_SHIM)
  with open(os.path.join(shims, "fastprogress", "__init__.py"), "w", encoding="utf-8") as f:
    f.write("")
  with open(os.path.join(shims, "fastprogress", "fastprogress.py"), "w",
            encoding="utf-8") as f:
    f.write(FASTPROGRESS_SHIM)
  return dst, shims


def ours(task, seed, args, work, vocab, ckpt, data):
  """run_finetuning.py on the task's files; returns ({metric: value}, global step)."""
  name = f"{task}_seed{seed}"
  hp = dict(TINY_MODEL, task_names=[task], seed=seed, num_train_epochs=float(args.epochs),
            learning_rate=args.lr, max_seq_length=args.length, train_batch_size=args.batch,
            predict_batch_size=128, do_eval=False, do_test=True, init_checkpoint=ckpt,
            log_every_steps=1000)
  shutil.rmtree(os.path.join(data, "models", name), ignore_errors=True)
  run([sys.executable, "run_finetuning.py", "--data-dir", data, "--model-name", name,
       "--hparams", json.dumps(hp)], ROOT, env_with(ROOT),
      os.path.join(work, f"ours_{name}.log"))
  with open(os.path.join(data, "models", name, "results", f"{task}_results.json"),
            encoding="utf-8") as f:
    trial = json.load(f)["trials"][0]
  return {k: trial["test"][k] for k in TASKS[task][4]}, trial["global_step"]


def theirs(task, seed, args, work, code, shims, folder, num_train):
  """Their run_seq_cls.py on the same files; returns ({metric: value}, global step)."""
  _, _, train_name, test_name, metrics = TASKS[task]
  run_dir = os.path.join(work, f"theirs_{task}_seed{seed}")
  shutil.rmtree(run_dir, ignore_errors=True)
  data = os.path.join(run_dir, "data")   # fresh: their cached features are never re-read
  shutil.copytree(os.path.join(work, "data", "finetuning_data", task),
                  os.path.join(data, task))
  steps_per_epoch = math.ceil(num_train / args.batch)
  config = {
      "task": task, "data_dir": data, "ckpt_dir": run_dir, "train_file": train_name,
      "dev_file": "", "test_file": test_name, "evaluate_test_during_training": True,
      "eval_all_checkpoints": False, "save_optimizer": False, "do_lower_case": False,
      "do_train": True, "do_eval": False, "max_seq_len": args.length,
      "num_train_epochs": args.epochs, "weight_decay": 0.0,
      "gradient_accumulation_steps": 1, "adam_epsilon": 1e-8, "warmup_proportion": 0,
      "max_steps": -1, "max_grad_norm": 1.0, "no_cuda": True,
      "model_type": "koelectra-small-v3", "model_name_or_path": folder, "output_dir": "out",
      "seed": seed, "train_batch_size": args.batch, "eval_batch_size": 128,
      # their evaluation on test at every epoch's end; no checkpoints written
      "logging_steps": steps_per_epoch, "save_steps": 0, "learning_rate": args.lr}
  os.makedirs(os.path.join(run_dir, "config", task))
  with open(os.path.join(run_dir, "config", task, "tiny.json"), "w", encoding="utf-8") as f:
    json.dump(config, f, indent=2)
  env = env_with(shims, code)
  env["OMP_NUM_THREADS"] = str(args.threads)
  log = run([sys.executable, "run_seq_cls.py", "--task", task, "--config_dir",
             os.path.join(run_dir, "config"), "--config_file", "tiny.json"], code, env,
            os.path.join(run_dir, "run.log"))
  step = int(re.findall(r"global_step = (\d+)", log)[-1])
  files = glob.glob(os.path.join(run_dir, "out", "test", "test-*.txt"))
  last = max(files, key=lambda p: int(re.findall(r"test-(\d+)", p)[-1]))
  values = dict(re.findall(r"^\s*(\w+) = (\S+)$", open(last, encoding="utf-8").read(),
                           flags=re.M))
  if int(re.findall(r"test-(\d+)", last)[-1]) != step:
    raise SystemExit(f"their last evaluation {last} is not at their last step {step}")
  return {k: 100 * float(values[THEIR_KEYS[k]]) for k in metrics}, step


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--koelectra", required=True,
                 help="a KoELECTRA checkout or its bare git directory")
  p.add_argument("--work", default="/tmp/compare_koelectra")
  p.add_argument("--tasks", default="nsmc,korsts")
  p.add_argument("--seeds", default="1,2,3")
  p.add_argument("--rows", type=int, default=2000, help="training rows read per task")
  p.add_argument("--test-rows", type=int, default=500)
  p.add_argument("--epochs", type=int, default=2)
  p.add_argument("--batch", type=int, default=32)
  p.add_argument("--lr", type=float, default=1e-3,
                 help="both sides (KoELECTRA's 5e-5 barely moves a 2-layer model in 2 "
                      "epochs)")
  p.add_argument("--length", type=int, default=64)
  p.add_argument("--threads", type=int, default=2)
  args = p.parse_args(argv)
  work = os.path.abspath(args.work)
  os.makedirs(work, exist_ok=True)
  vocab = str(shared_data_dir() / "vocab" / "v3" / "vocab.txt")
  start = time.time()
  print(f"uptime: {os.getloadavg()}")
  ckpt, folder = pretrain(work, vocab)
  code, shims = their_code(os.path.abspath(args.koelectra), work)
  print(f"initial weights: {ckpt} (ours), {folder} (theirs, export_hf.py)")
  print("patches to their copy: attrdict and fastprogress replaced by stand-ins on their "
        "path (attrdict cannot import on Python >= 3.10; fastprogress is not installed)")
  data = os.path.join(work, "data")
  rows = []
  for task in args.tasks.split(","):
    train_src, test_src, train_name, test_name, metrics = TASKS[task]
    head(shared_data_dir() / train_src,
         os.path.join(data, "finetuning_data", task, train_name), args.rows)
    head(shared_data_dir() / test_src,
         os.path.join(data, "finetuning_data", task, test_name), args.test_rows)
    shutil.copy(vocab, os.path.join(data, "vocab.txt"))
    results = {"ours": [], "theirs": []}
    for seed in [int(s) for s in args.seeds.split(",")]:
      results["ours"].append(ours(task, seed, args, work, vocab, ckpt, data))
      results["theirs"].append(
          theirs(task, seed, args, work, code, shims, folder, args.rows))
      for side in ("ours", "theirs"):
        m, step = results[side][-1]
        print(f"{task} seed {seed} {side:6s}: " +
              ", ".join(f"{k} {m[k]:.2f}" for k in metrics) + f", steps {step}",
              flush=True)
    for k in metrics:
      row = [task, k]
      for side in ("ours", "theirs"):
        vals = np.array([m[k] for m, _ in results[side]])
        steps = sorted({s for _, s in results[side]})
        row += [" / ".join(f"{v:.2f}" for v in vals), f"{vals.mean():.2f}",
                f"{np.ptp(vals):.2f}", ",".join(map(str, steps))]
      rows.append(row)
  print()
  print(f"{args.rows} training rows, {args.test_rows} test rows, {args.epochs} epochs, "
        f"batch {args.batch}, lr {args.lr:g}, length {args.length}, seeds {args.seeds}; "
        f"expected steps ceil({args.rows} / {args.batch}) x {args.epochs} = "
        f"{math.ceil(args.rows / args.batch) * args.epochs}")
  print("| task | metric | ours per seed | ours mean | ours spread | ours steps | "
        "theirs per seed | theirs mean | theirs spread | theirs steps | "
        "\\|mean diff\\| < larger spread |")
  print("|" + "---|" * 11)
  for r in rows:
    diff = abs(float(r[3]) - float(r[7]))
    ok = diff < max(float(r[4]), float(r[8]))
    print("| " + " | ".join(r) + f" | {diff:.2f} {'yes' if ok else 'NO'} |")
  print(f"\ntotal {time.time() - start:.0f}s; uptime: {os.getloadavg()}")


if __name__ == "__main__":
  main()
