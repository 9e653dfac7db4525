"""The demo's built-in corpus: the Korean law text that konlpy's wheel ships (the
constitution and ten National Assembly bills, ~140 KB), split into training and held-out
lines (run_demo.py)."""
import pathlib
import shutil

from util import errors

HELDOUT_EVERY = 10  # every 10th line of each text is held out for evaluation


class DemoError(errors.UserError):
  """Something the demo needs is missing (names it and how to get it)."""


def konlpy_corpus():
  """konlpy/data/corpus/{kolaw,kobill}: shipped inside konlpy's wheel."""
  try:
    import konlpy
  except ImportError as e:
    raise DemoError("konlpy is not installed; run `bash setup.sh demo` "
                    "(or pip install -r requirements.txt)") from e
  root = pathlib.Path(konlpy.__file__).parent / "data" / "corpus"
  files = sorted(root.glob("kolaw/*.txt")) + sorted(root.glob("kobill/*.txt"))
  if not files:
    raise DemoError(f"konlpy's bundled corpus is missing under {root}")
  return files


def prepare_corpus(out):
  """Splits each text's lines into train/ and heldout/ under out/corpus (a pathlib.Path),
  written under a temporary name and renamed when complete. Returns out/corpus."""
  corpus = out / "corpus"
  if (corpus / "train").is_dir() and (corpus / "heldout").is_dir():
    return corpus
  tmp = out / ".corpus-tmp"
  shutil.rmtree(tmp, ignore_errors=True)
  (tmp / "train").mkdir(parents=True)
  (tmp / "heldout").mkdir()
  for path in konlpy_corpus():
    # Each file is one document. Their blank lines are layout, not document breaks, and
    # left in they would make ~1,700 one-line documents (sequences mostly padding).
    lines = [l.strip() for l in path.read_text(encoding="utf-8").splitlines()]
    lines = [l for l in lines if l]
    held = [l for i, l in enumerate(lines) if i % HELDOUT_EVERY == HELDOUT_EVERY - 1]
    train = [l for i, l in enumerate(lines) if i % HELDOUT_EVERY != HELDOUT_EVERY - 1]
    name = f"{path.parent.name}-{path.name}"
    (tmp / "train" / name).write_text("\n".join(train) + "\n", encoding="utf-8")
    (tmp / "heldout" / name).write_text("\n".join(held) + "\n", encoding="utf-8")
  shutil.rmtree(corpus, ignore_errors=True)
  tmp.rename(corpus)
  return corpus
