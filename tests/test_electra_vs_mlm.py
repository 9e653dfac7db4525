"""benchmarks/electra_vs_mlm.py --quick end to end, as a subprocess from another working
directory: the corpus, both pretraining runs at equal FLOPs with their 25/50/100%
checkpoints, every finetuning cell, the table; a rerun trains nothing and gives the same
table."""
import json
import os
import re
import subprocess
import sys

from tests.conftest import ROOT

SCRIPT = ROOT / "benchmarks" / "electra_vs_mlm.py"
MODELS = ["random init", "ELECTRA 25%", "ELECTRA 50%", "ELECTRA 100%",
          "MLM 25%", "MLM 50%", "MLM 100%"]


def _run(cwd, budget="1.6e10", status=0, extra=()):
  done = subprocess.run(
      [sys.executable, str(SCRIPT), "--quick", "--work-dir", "evm", "--budget-flops", budget,
       *extra],
      cwd=cwd, capture_output=True, text=True, timeout=900,
      env=dict(os.environ, PYTHONPATH=str(ROOT)))
  assert done.returncode == status, done.stdout[-3000:] + done.stderr[-3000:]
  return done.stdout if status == 0 else done.stderr


OUTPUTS = ("electra_vs_mlm.md", "electra_vs_mlm.json", "electra_vs_mlm.png")


def _mtimes(folder):
  """{path: mtime} of every file the stages wrote (the rewritten outputs aside)."""
  return {str(p): p.stat().st_mtime_ns for p in folder.rglob("*")
          if p.is_file() and p.name not in OUTPUTS}


def test_quick_run_equal_flops_checkpoints_table_and_resume(tmp_path, data_dir):
  out = _run(tmp_path)
  work = tmp_path / "evm"
  record = json.loads((work / "electra_vs_mlm.json").read_text(encoding="utf-8"))
  budget = record["plan"]["budget_flops"]
  assert budget == 1.6e10

  # Equal compute: each run within half a step of the budget, so MLM (cheaper steps)
  # takes more steps and the two totals differ by less than one step.
  e, m = record["schedules"]["electra"], record["schedules"]["mlm"]
  assert m["flops_per_step"] < e["flops_per_step"] and m["steps"] > e["steps"]
  for s in (e, m):
    assert abs(s["steps"] * s["flops_per_step"] - budget) <= s["flops_per_step"] / 2
  assert abs(e["flops"]["100"] - m["flops"]["100"]) < max(e["flops_per_step"],
                                                          m["flops_per_step"])

  # Checkpoints at 25/50/100% of each run's steps (within one step), kept on disk.
  for objective, s in (("electra", e), ("mlm", m)):
    at = {int(k): v for k, v in s["checkpoint_steps"].items()}
    assert at[100] == s["steps"]
    assert abs(at[25] - s["steps"] / 4) <= 1 and abs(at[50] - s["steps"] / 2) <= 1
    saved = {int(re.search(r"ckpt-(\d+)", p.name).group(1))
             for p in (work / "models" / objective).glob("model.ckpt-*.index")}
    assert set(at.values()) <= saved and max(saved) == s["steps"], (objective, saved)

  # The table: one row per model, steps and token positions from the schedule, a dev
  # score for each task; the Markdown holds the same rows.
  rows = record["rows"]
  assert [r["model"] for r in rows] == MODELS
  steps = {r["model"]: r["steps"] for r in rows}
  assert steps["random init"] == 0 and steps["ELECTRA 100%"] == e["steps"]
  assert steps["MLM 25%"] == m["checkpoint_steps"]["25"]
  for r in rows:
    assert r["tokens_seen"] == r["steps"] * 8 * 64
    assert set(r["tasks"]) == {"nsmc"} and 0 < r["average"] <= 100
  md = (work / "electra_vs_mlm.md").read_text(encoding="utf-8")
  table = [line for line in md.splitlines() if line.startswith("| ") and "%" in line]
  assert [line.split(" | ")[0][2:] for line in table] == MODELS[1:]
  assert "| random init | 0 | 0 | 0 |" in md
  # The plot, or (matplotlib is not a dependency) the message saying it was skipped.
  assert (work / "electra_vs_mlm.png").exists() or "plot skipped: matplotlib" in out

  # Each cell finetuned from its own checkpoint (random: none) and scored on dev only.
  expected = {"random": None}
  for objective, s in (("electra", e), ("mlm", m)):
    for pct, step in s["checkpoint_steps"].items():
      expected[f"{objective}-{pct}"] = str(work / "models" / objective / f"model.ckpt-{step}")
  for model, init in expected.items():
    path = work / "finetune" / "models" / model / "results" / "nsmc_results.json"
    rec = json.loads(path.read_text(encoding="utf-8"))
    assert set(rec["splits"]) == {"dev"} and rec["num_trials"] == 1
    assert rec["hparams"]["init_checkpoint"] == init, model
  # corpus + 2 pretraining runs + 7 finetuning cells
  assert re.search(r"^10 command\(s\) run", out, flags=re.M), out[-2000:]

  # A rerun reads every finished stage: no command, no file rewritten, the same table.
  before = _mtimes(work)
  again = _run(tmp_path)
  assert re.search(r"^0 command\(s\) run", again, flags=re.M), again[-2000:]
  assert _mtimes(work) == before
  # Other settings in the same work directory: one error line, nothing written.
  err = _run(tmp_path, budget="3.2e10", status=2)
  assert err.startswith("error: ") and err.count("\n") == 1 and "budget_flops" in err, err
  assert _mtimes(work) == before
  assert (work / "electra_vs_mlm.md").read_text(encoding="utf-8") == md

  # --report with a cell unfinished: nothing runs, the cell and its row's average show
  # as unfinished, the rest is the same table.
  (work / "finetune" / "models" / "mlm-100" / "results" / "nsmc_results.json").unlink()
  before = _mtimes(work)
  partial = _run(tmp_path, extra=["--report"])
  assert re.search(r"^0 command\(s\) run", partial, flags=re.M), partial[-2000:]
  assert _mtimes(work) == before
  md2 = (work / "electra_vs_mlm.md").read_text(encoding="utf-8")
  assert re.search(r"^\| MLM 100% \|.* \| — \| — \|$", md2, flags=re.M), md2
  assert "Partial: 1 of 7 finetuning cells not finished yet" in md2
  assert [l for l in md2.splitlines() if "MLM 100%" not in l and l.startswith("| ")] == \
      [l for l in md.splitlines() if "MLM 100%" not in l and l.startswith("| ")]
  # Without a work directory there is nothing to report: one line, nothing created.
  (tmp_path / "elsewhere").mkdir()
  err = _run(tmp_path / "elsewhere", status=2, extra=["--report"])
  assert err.startswith("error: nothing to report") and err.count("\n") == 1, err
  assert not (tmp_path / "elsewhere" / "evm").exists()
