"""Finetuning results: <task>_results.{json,txt} (each trial and the median over trials) and
results.md, every task's headline metric beside KoELECTRA's published numbers; each file
rewritten atomically in results_dir."""
import json
import statistics

from finetune import tasks as tasks_lib
from util import fileio


def summarize(trials):
  """{split: {metric: {"trials": [...], "median": m}}} over the trials' scores."""
  summary = {}
  for split in ("dev", "test"):
    per = [t[split] for t in trials if split in t]
    if not per:
      continue
    summary[split] = {k: {"trials": [p[k] for p in per],
                          "median": statistics.median(p[k] for p in per)}
                      for k in per[0]}
  return summary


def write_results(config, trials, skipped, log=print):
  """Writes <task>_results.{json,txt} and rewrites results.md over every task in results_dir.

  Args:
    config: FinetuningConfig (task, results_dir; its hparams go into the record).
    trials: per-trial dicts of finetune/runner.run_trial ("dev" / "test": {metric: value}).
    skipped: {split: [skipped row descriptions]}.
    log: where the table is printed.

  Returns:
    The path of <task>_results.json.
  """
  spec = config.task
  summary = summarize(trials)
  record = {"task": config.task_name, "metric": spec.metric, "model_name": config.model_name,
            "model_size": config.model_size, "preset": config.preset,
            "num_trials": len(trials), "splits": summary, "skipped_rows": skipped,
            "trials": trials, "hparams": config.to_dict()}
  fileio.makedirs(config.results_dir)
  base = fileio.join(config.results_dir, f"{config.task_name}_results")
  with fileio.atomic_write(base + ".json") as f:
    json.dump(record, f, indent=2, sort_keys=True, ensure_ascii=False, default=str)
  lines = [f"{config.task_name} {split} {k}: median {v['median']:.2f} (trials: "
           f"{', '.join(f'{x:.2f}' for x in v['trials'])})"
           for split, metrics in summary.items() for k, v in sorted(metrics.items())]
  with fileio.atomic_write(base + ".txt") as f:
    f.write("".join(line + "\n" for line in lines))
  table = results_table(config.results_dir, config.model_size)
  with fileio.atomic_write(fileio.join(config.results_dir, "results.md")) as f:
    f.write(table)
  # The table holds the benchmarks only: a custom task's run shows its own lines.
  log(table if spec.columns is None else "\n".join(lines))
  return base + ".json"


def results_table(results_dir, model_size):
  """Markdown: each task's headline metric (median over trials; test split when scored,
  else dev) beside KoELECTRA's published Base-v3 / Small-v3 numbers, tasks in the
  published table's order."""
  head = ["", "model"] + [f"{n} ({tasks_lib.get_task(n).metric})"
                          for n in tasks_lib.TASK_NAMES]
  ours = ["ours", model_size]
  for name in tasks_lib.TASK_NAMES:
    path = fileio.join(results_dir, f"{name}_results.json")
    cell = "-"
    if fileio.exists(path):
      with fileio.open_file(path) as f:
        rec = json.load(f)
      for split in ("test", "dev"):
        m = rec["splits"].get(split, {}).get(rec["metric"])
        if m is not None:
          cell = f"{m['median']:.2f} ({split}, {rec['num_trials']} trial"
          cell += "s)" if rec["num_trials"] > 1 else ")"
          break
    ours.append(cell)
  rows = [ours]
  for key, label in (("base-v3", "KoELECTRA-Base-v3"), ("small-v3", "KoELECTRA-Small-v3")):
    rows.append(["published", label] + [
        "/".join(f"{v:.2f}" for v in tasks_lib.get_task(n).published.get(key, {}).values())
        or "-" for n in tasks_lib.TASK_NAMES])
  lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
  lines += ["| " + " | ".join(r) + " |" for r in rows]
  return "\n".join(lines) + "\n"
