"""Every command line the README and docs/*.md show is one the project accepts, and every
TPU command is the one that works on a TPU VM.

Each `python run_*.py ...`, `python build_pretraining_dataset.py ...`, `python
export_hf.py / import_hf.py ...`, `python -m util.gcs ...` and `python -m vocab.build_vocab
...` line in a fenced code block of README.md and every docs/*.md (continuation lines
joined) is split as a shell would and parsed by the program's own parser; run_pretraining's
--hparams is resolved into a PretrainingConfig (run_finetuning's into a FinetuningConfig)
and the builder's flags into BuildOptions, so an unknown hparam or a bad value fails too.
A failure names file and line.
"""
import re
import shlex

import pytest

import build_pretraining_dataset
import configure_finetuning
import configure_pretraining
import export_hf
import import_hf
import run_finetuning
import run_pretraining
from tests.conftest import ROOT
from util import gcs
from vocab import build_vocab

DOCS = ("README.md",) + tuple(f"docs/{p.name}" for p in sorted((ROOT / "docs").glob("*.md")))
_COMMAND = re.compile(r"^python3? (?:(?P<script>(?:run_\w+|export_hf|import_hf|"
                      r"build_pretraining_dataset)\.py)|"
                      r"-m (?P<module>util\.gcs|vocab\.build_vocab))(?:\s|$)")


def _json_hparams(args):
  """The --hparams values given as JSON objects; a file named instead is one that an
  earlier documented step writes (import_hf's hparams.json), so it is not there to read."""
  return [h for h in args.hparams or [] if h.lstrip().startswith("{")]


def _check_run_pretraining(argv):
  args = run_pretraining.build_parser().parse_args(argv)
  # As the runner resolves them: ConfigError on an unknown or invalid hparam.
  return configure_pretraining.PretrainingConfig.from_hparams(
      args.model_name, args.data_dir, _json_hparams(args), preset=args.preset)


def _check_run_finetuning(argv):
  args = run_finetuning.build_parser().parse_args(argv)
  return configure_finetuning.FinetuningConfig.from_hparams(
      args.model_name, args.data_dir, _json_hparams(args), preset=args.preset)


def _check_build_dataset(argv):
  args = build_pretraining_dataset.build_parser().parse_args(argv)
  if not args.inspect:  # BuildError on an out-of-range or contradictory option
    build_pretraining_dataset.options_from_args(args)


def _check_gcs(argv):
  args = gcs.build_parser().parse_args(argv)
  for url in [getattr(args, "url", None), getattr(args, "src", None),
              getattr(args, "dst", None)]:
    if url and gcs.is_gs(url):
      gcs.parse_gs(url)


def _check_hf(parser):
  def check(argv):
    args = parser().parse_args(argv)
    for url in vars(args).values():
      if isinstance(url, str) and gcs.is_gs(url):
        gcs.parse_gs(url)
  return check


# script or module -> a check that raises (or exits) when the arguments are not accepted.
CHECKS = {"run_pretraining.py": _check_run_pretraining,
          "run_finetuning.py": _check_run_finetuning, "util.gcs": _check_gcs,
          "export_hf.py": _check_hf(export_hf.build_parser),
          "import_hf.py": _check_hf(import_hf.build_parser),
          "build_pretraining_dataset.py": _check_build_dataset,
          "vocab.build_vocab": build_vocab.parse_args}


def documented_commands(relpath, root=ROOT):
  """(line number, program, argv) of every command in the file's fenced code blocks."""
  lines = (root / relpath).read_text(encoding="utf-8").splitlines()
  out, in_block, i = [], False, 0
  while i < len(lines):
    line = lines[i]
    if line.lstrip().startswith("```"):
      in_block = not in_block
      i += 1
      continue
    start = i
    text = line.strip()
    while in_block and text.endswith("\\") and i + 1 < len(lines):
      i += 1
      text = text[:-1] + " " + lines[i].strip()
    i += 1
    m = _COMMAND.match(text) if in_block else None
    if m:
      words = shlex.split(text, comments=True)
      out.append((start + 1, m.group("script") or m.group("module"),
                  words[2:] if m.group("script") else words[3:]))
  return out


def test_the_documents_show_commands():
  # The extraction itself works: the guide's commands are found, with their arguments.
  found = documented_commands("docs/tpu_training.md")
  programs = {program for _, program, _ in found}
  assert {"run_pretraining.py", "run_finetuning.py", "util.gcs", "import_hf.py"} <= programs
  assert any("--hparams" in argv for _, _, argv in found)
  readme = {program for _, program, _ in documented_commands("README.md")}
  assert {"vocab.build_vocab", "build_pretraining_dataset.py", "run_pretraining.py",
          "run_finetuning.py", "export_hf.py"} <= readme


def command_failures(relpath, capsys, root=ROOT):
  """One message per documented command its program does not accept: FILE:LINE: why."""
  failures = []
  for lineno, program, argv in documented_commands(relpath, root):
    if program not in CHECKS:
      failures.append(f"{relpath}:{lineno}: {program} is not a program of this project")
      continue
    try:
      CHECKS[program](argv)
    except SystemExit:
      failures.append(f"{relpath}:{lineno}: {program} rejects its arguments: "
                      f"{capsys.readouterr().err.strip().splitlines()[-1]}")
    except Exception as e:  # noqa: BLE001 - every rejection is reported with its line
      failures.append(f"{relpath}:{lineno}: {program}: {e}")
  return failures


@pytest.mark.parametrize("relpath", DOCS)
def test_every_documented_command_parses(relpath, capsys):
  failures = command_failures(relpath, capsys)
  assert not failures, "\n".join(failures)


def test_a_bad_command_is_reported_with_its_line(tmp_path, capsys):
  (tmp_path / "doc.md").write_text(
      "text\n```bash\npython -m util.gcs cp --bogus a gs://b-ok/x\n"
      "python run_pretraining.py --data-dir d --model-name m \\\n"
      "    --hparams '{\"no_such_hparam\": 1}'\n```\n", encoding="utf-8")
  found = documented_commands("doc.md", tmp_path)
  assert [(n, p) for n, p, _ in found] == [(3, "util.gcs"), (4, "run_pretraining.py")]
  failures = command_failures("doc.md", capsys, tmp_path)
  assert len(failures) == 2
  assert failures[0].startswith("doc.md:3: util.gcs rejects its arguments")
  assert "--bogus" in failures[0]
  assert failures[1].startswith("doc.md:4: run_pretraining.py") and "no_such_hparam" in failures[1]


def tpu_configs(relpath):
  """(line, program, resolved config) of every documented runner command with use_tpu."""
  out = []
  for lineno, program, argv in documented_commands(relpath):
    if program in ("run_pretraining.py", "run_finetuning.py"):
      config = CHECKS[program](argv)
      if config.use_tpu:
        out.append((lineno, program, config))
  return out


@pytest.mark.parametrize("relpath", ["docs/tpu_training.md", "README.md"])
def test_every_tpu_command_is_for_the_tpu_vm_with_its_8_cores(relpath):
  found = tpu_configs(relpath)
  assert found, f"{relpath}: no TPU command"
  for lineno, _, config in found:
    # "local": the TPU attached to the VM the command runs on (a name would send the
    # resolver to a TPU Node's remote master); 8 cores of a v3-8, given, not guessed.
    assert (config.tpu_name, config.num_tpu_cores) == ("local", 8), f"{relpath}:{lineno}"
    assert (config.tpu_zone, config.gcp_project) == (None, None), f"{relpath}:{lineno}"


def test_readme_step_3_is_the_tpu_command():
  lineno, program, argv = next(c for c in documented_commands("README.md")
                               if c[1] == "run_pretraining.py")
  config = CHECKS[program](argv)
  assert config.use_tpu and config.tpu_name == "local" and config.num_tpu_cores == 8
  assert config.preset == "koelectra-small-v3" and config.data_dir.startswith("gs://")


def test_the_guide_runs_a_smoke_test_under_its_own_name_before_the_real_run():
  runs = [(n, c) for n, p, c in tpu_configs("docs/tpu_training.md")
          if p == "run_pretraining.py" and c.do_train]
  smoke = [(n, c) for n, c in runs if c.num_train_steps == 20]
  assert len(smoke) == 1, smoke
  line, test = smoke[0]
  assert test.do_eval  # the evaluation step and metric_fn: what --check-xla cannot check
  real = [(n, c) for n, c in runs if c.preset == test.preset and c is not test]
  assert real and all(n > line and c.model_dir != test.model_dir for n, c in real)
