"""Reading each task's files into examples, with skipped rows and clear errors.

`read_examples(task, data_dir, split)` finds the split's file in
`DIR/finetuning_data/<task>/` (KoELECTRA's file names first, then plain
`{train,dev,test}.<ext>`; finetune/tasks.py) and returns its examples in file order,
each with its 1-based source line (KorQuAD: article index and question id), plus the
rows it skipped and why. Files are UTF-8 with or without a BOM, LF or CRLF line ends.

Errors a user can fix (not UTF-8, a missing file, a wrong column count, an unknown
label, a non-numeric score, a tag/word count mismatch, malformed JSON, an answer that
does not match its context, a dev split asked of a task without a dev file) raise
`UserError` naming the file and line (or article and question id). Nothing is silently
dropped: rows KoELECTRA skips (PAWS and Question Pair pairs with an empty side) and
blank lines are returned in `ReadResult.skipped` with the reason.

Tasks distributed without a dev file (tasks.TaskSpec.dev_slice) train on the whole
training file, as KoELECTRA does. Only when asked (`dev_fraction` > 0, the hparam
`dev_slice_fraction`) and no dev file is present, a fixed-seed slice of that fraction
of the training file becomes `dev` and `train` excludes it. The slice is drawn over
the file's rows (KorQuAD: over its articles, so a context never appears on both
sides), so it depends only on the file and the fraction.
"""
import dataclasses
import json
import math
import os
from typing import List, Optional, Tuple, Union

import numpy as np

from finetune import tasks as tasks_lib
from util import errors
from util import fileio

DEV_SLICE_SEED = 12345  # fixed: the held-out slice must not move with the trial seed
_BOM = "\ufeff"

# Sentence tasks: (columns per row, text_a column, text_b column or None, label column,
# skip a pair with an empty side). KoELECTRA's processors skip such pairs for PAWS and
# Question Pair only; KorNLI and KorSTS keep them (as [CLS] A [SEP] [SEP]).
_COLUMNS = {
    "nsmc": (3, 1, None, 2, False),           # id, document, label
    "paws": (4, 1, 2, 3, True),               # id, sentence1, sentence2, label
    "kornli": (3, 0, 1, 2, False),            # sentence1, sentence2, gold_label
    "korsts": (7, 5, 6, 4, False),            # genre, filename, year, id, score, s1, s2
    "question-pair": (3, 0, 1, 2, True),      # question1, question2, is_duplicate
    "hate-speech": (4, 1, None, 3, False),    # title, comment, bias, hate
}


@dataclasses.dataclass
class SentenceExample:
  """One row of a classification or regression task.

  Attributes:
    line: 1-based line number in the source file.
    source: the source file's name.
    text_a: first (or only) text.
    text_b: second text of a pair task, else None.
    label: the label string as written in the file (classification) or the float
      score (regression); None in a custom task's unlabelled test file (predicted only).
  """
  line: int
  source: str
  text_a: str
  text_b: Optional[str]
  label: Union[str, float]


@dataclasses.dataclass
class TaggingExample:
  """One Naver NER (or custom CoNLL) sentence: words and one tag per word (tags None in
  an unlabelled test file)."""
  line: int
  source: str
  words: List[str]
  tags: List[str]


@dataclasses.dataclass
class QAExample:
  """One KorQuAD question, with its context split on whitespace as SQuAD does.

  Attributes:
    qid: the question id.
    article: 0-based index of the article in the file.
    source: the source file's name.
    question: question text.
    context: the paragraph, exactly as in the file.
    answers: [(text, answer_start)] as in the file (character offsets into context).
    doc_tokens: context split on whitespace (SQuAD's rule: space, tab, CR, LF, U+202F).
    char_to_word: for each context character, the index of its doc token (whitespace
      belongs to the token before it; leading whitespace to token -1, as SQuAD's 0-1).
    start_word, end_word: doc-token span of the first answer (training target), or
      -1 when the question has no answer.
  """
  qid: str
  article: int
  source: str
  question: str
  context: str
  answers: List[Tuple[str, int]]
  doc_tokens: List[str]
  char_to_word: List[int]
  start_word: int = -1
  end_word: int = -1


Example = Union[SentenceExample, TaggingExample, QAExample]


@dataclasses.dataclass
class SkippedRow:
  """A row left out of the examples, and why (KorQuAD: line is None, qid set)."""
  source: str
  line: Optional[int]
  reason: str
  qid: Optional[str] = None

  def __str__(self):
    where = f"question {self.qid}" if self.qid is not None else f"line {self.line}"
    return f"{self.source} {where}: {self.reason}"


@dataclasses.dataclass
class ReadResult:
  """Examples of one split in file order, the rows skipped, and the files read.

  dev_slice: the fraction of the training file held out as dev when the split is
    (train: excludes) the fixed-seed slice, else 0.
  """
  task: str
  split: str
  examples: List[Example]
  skipped: List[SkippedRow]
  paths: List[str]
  dev_slice: float = 0.0

  def summary(self, max_skipped: int = 10) -> str:
    """Lines for the run's log: counts, files, and the skipped rows with reasons."""
    files = ", ".join(_basename(p) for p in self.paths)
    how = ""
    if self.dev_slice:
      share = f"{self.dev_slice:.0%}"
      how = (f" (the {share} dev slice of it)" if self.split == "dev"
             else f" (without the {share} dev slice)")
    lines = [f"{self.task} {self.split}: {len(self.examples):,} examples from "
             f"{files}{how}, {len(self.skipped):,} skipped"]
    lines += [f"  skipped {s}" for s in self.skipped[:max_skipped]]
    if len(self.skipped) > max_skipped:
      lines.append(f"  ... and {len(self.skipped) - max_skipped:,} more")
    return "\n".join(lines)


# ---------------------------------------------------------------------------
# Entry point


def read_examples(task: Union[str, tasks_lib.TaskSpec], data_dir: str, split: str, *,
                  snli: bool = False, skip_bad_answers: bool = False,
                  dev_fraction: float = 0.0, raw_data_dir: Optional[str] = None
                  ) -> ReadResult:
  """Reads one split of a task.

  Args:
    task: task name or spec.
    data_dir: the run's DIR; files are in DIR/finetuning_data/<task>/ (local or gs://).
    split: "train", "dev" or "test".
    snli: KorNLI only: add snli_1.0_train.ko.tsv to the training data (KoELECTRA
      trains on multinli.train.ko.tsv alone).
    skip_bad_answers: KorQuAD only: a question whose answer does not match its
      context at answer_start is skipped and counted instead of being an error.
    dev_fraction: tasks without a dev file: hold this fraction of the training file
      out as dev (0: train reads the whole file and there is no dev split).
    raw_data_dir: the folder holding <task>/ instead of DIR/finetuning_data (the
      finetuning hparam of that name).

  Returns:
    ReadResult with examples in file order.

  Raises:
    UserError: unknown task or split, missing file, undecodable or malformed file, a
      dev split of a task without a dev file when dev_fraction is 0.
  """
  spec = task if isinstance(task, tasks_lib.TaskSpec) else tasks_lib.get_task(task)
  if split not in tasks_lib.SPLITS:
    raise errors.UserError(
        f"unknown split {split!r} for task {spec.name} (valid: {', '.join(tasks_lib.SPLITS)})")
  if snli and spec.name != "kornli":
    raise errors.UserError(f"snli applies to kornli only, not to {spec.name}")
  task_dir = fileio.join(str(raw_data_dir or fileio.join(str(data_dir), "finetuning_data")),
                         spec.name)
  no_dev_file = spec.dev_slice and _find(task_dir, spec.files["dev"]) is None
  if split == "dev" and no_dev_file and not dev_fraction:
    where = ("" if spec.columns is not None else f" in {task_dir}")
    put = (f"give custom_tasks.{spec.name}.dev_file" if spec.columns is not None else
           f"put a {spec.files['dev'][-1]} there")
    raise errors.UserError(
        f"{spec.name} has no dev file{where}: set \"dev_slice_fraction\": 0.1 to hold out "
        f"10% of the training file as dev, {put}, "
        f"or score the test file alone (\"do_eval\": false, \"do_test\": true)")
  use_slice = split in ("train", "dev") and no_dev_file and dev_fraction > 0
  if split == "dev" and not use_slice:
    paths = [_require(task_dir, spec, "dev")]
  else:
    paths = [_require(task_dir, spec, "test" if split == "test" else "train")]
  if split == "train" and snli:
    for name in spec.extra_train_files:
      path = fileio.join(task_dir, name)
      if not fileio.exists(path):
        raise errors.UserError(f"SNLI training data asked for but not found: {path}")
      paths.append(path)

  examples, skipped = [], []
  for i, path in enumerate(paths):
    units = _read_units(spec, path, skip_bad_answers, require_answers=(split == "train"),
                        allow_unlabelled=(split == "test"))
    if use_slice and i == 0:
      in_dev = dev_slice_mask(len(units), dev_fraction)
      units = [u for u, d in zip(units, in_dev) if d == (split == "dev")]
    for unit_examples, unit_skipped in units:
      examples.extend(unit_examples)
      skipped.extend(unit_skipped)
  return ReadResult(spec.name, split, examples, skipped, paths,
                    dev_slice=float(dev_fraction) if use_slice else 0.0)


def dev_slice_mask(num_units: int, fraction: float) -> np.ndarray:
  """Which of `num_units` rows (or articles) form the held-out dev slice.

  Deterministic: a permutation under DEV_SLICE_SEED, its first round(fraction x
  num_units) (at least one when there are two or more units).

  Returns:
    bool array [num_units], True for dev.
  """
  mask = np.zeros(num_units, dtype=bool)
  if num_units < 2:
    return mask
  k = max(1, int(round(num_units * fraction)))
  mask[np.random.RandomState(DEV_SLICE_SEED).permutation(num_units)[:k]] = True
  return mask


def _find(task_dir, names):
  for name in names:
    # A custom task's files are the paths its hparams give (finetune/tasks.custom_task).
    path = name if fileio.is_remote(name) or os.path.isabs(name) else fileio.join(task_dir, name)
    if fileio.exists(path):
      return path
  return None


def _require(task_dir, spec, split):
  path = _find(task_dir, spec.files[split])
  if path is None and spec.columns is not None:
    given = spec.files[split][0] if spec.files[split] else "not given"
    raise errors.UserError(f"custom_tasks.{spec.name}.{split}_file: no such file ({given})")
  if path is None:
    raise errors.UserError(
        f"{spec.name}: no {split} file in {task_dir} (looked for "
        f"{' or '.join(spec.files[split])})")
  return path


def _read_units(spec, path, skip_bad_answers, require_answers, allow_unlabelled):
  """[(examples, skipped)] per unit: per line for TSV tasks, per article for KorQuAD, per
  row or sentence of a custom task's file."""
  text = read_text(path)
  if spec.columns is not None:
    from finetune import table_readers  # it builds this module's examples
    return table_readers.read_units(spec, path, text, allow_unlabelled)
  if spec.kind == tasks_lib.SPAN:
    return _korquad_articles(path, text, skip_bad_answers, require_answers)
  lines = text.split("\n")
  if lines and lines[-1] == "":
    lines.pop()  # the final newline
  parse = _tagging_row if spec.kind == tasks_lib.TAGGING else _sentence_row
  units = []
  source = _basename(path)
  for number, line in enumerate(lines, start=1):
    line = line[:-1] if line.endswith("\r") else line
    if number == 1 and spec.has_header:
      _check_header(spec, path, line)
      continue
    if not line.strip():
      units.append(([], [SkippedRow(source, number, "empty line")]))
      continue
    units.append(parse(spec, path, source, number, line))
  return units


def read_text(path: str) -> str:
  """A whole file as text: UTF-8, a leading BOM removed.

  Raises:
    UserError: the file is not UTF-8 (naming the file, line and byte offset, and how
      to convert a CP949 file such as NSMC's common copies).
  """
  with fileio.open_file(path, "rb") as f:
    data = f.read()
  try:
    text = data.decode("utf-8")
  except UnicodeDecodeError as e:
    line = data[:e.start].count(b"\n") + 1
    raise errors.UserError(
        f"{path}:{line}: not UTF-8 (byte offset {e.start}); NSMC and other Korean "
        f"files circulate in CP949 (EUC-KR): convert with "
        f"`iconv -f cp949 -t utf-8 {_basename(path)} > converted.txt`") from None
  return text[1:] if text.startswith(_BOM) else text


def _basename(path):
  return str(path).rstrip("/").rsplit("/", 1)[-1]


# ---------------------------------------------------------------------------
# Sentence tasks


def _check_header(spec, path, line):
  # The original hate-speech release (kocohub) has the same 4 columns but `comments`
  # first and a bias flag second: read by position, it would train on "True"/"False".
  if spec.name == "hate-speech":
    cols = line.split("\t")
    if len(cols) != 4 or cols[1].strip() != "comment":
      raise errors.UserError(
          f"{path}:1: expected KoELECTRA's hate-speech header "
          f"'title<TAB>comment<TAB>bias<TAB>hate', found {line[:80]!r}")


def _sentence_row(spec, path, source, number, line):
  ncols, a, b, label_col, skip_empty = _COLUMNS[spec.name]
  cols = line.split("\t")
  if len(cols) != ncols:
    raise errors.UserError(
        f"{path}:{number}: expected {ncols} tab-separated columns for {spec.name}, "
        f"found {len(cols)}")
  raw = cols[label_col].strip()
  if spec.kind == tasks_lib.REGRESSION:
    try:
      label = float(raw)
    except ValueError:
      label = math.nan
    if not math.isfinite(label):
      raise errors.UserError(f"{path}:{number}: score {raw!r} is not a number")
    low, high = spec.score_range or (-math.inf, math.inf)
    if not low <= label <= high:
      raise errors.UserError(f"{path}:{number}: score {raw} lies outside {spec.name}'s "
                             f"range [{low:g}, {high:g}]")
  else:
    if spec.label_id(raw) is None:
      raise errors.UserError(
          f"{path}:{number}: unknown label {raw!r} for {spec.name} "
          f"(valid: {', '.join(spec.labels)})")
    label = raw
  text_a = cols[a]
  text_b = cols[b] if b is not None else None
  # KoELECTRA tests `== ""`: a side of spaces only is kept (as [CLS] a [SEP] [SEP]).
  if skip_empty and (text_a == "" or text_b == ""):
    side = "first" if text_a == "" else "second"
    return [], [SkippedRow(source, number, f"empty {side} sentence (KoELECTRA skips it)")]
  return [SentenceExample(number, source, text_a, text_b, label)], []


# ---------------------------------------------------------------------------
# Naver NER


def _tagging_row(spec, path, source, number, line):
  cols = line.split("\t")
  if len(cols) != 2:
    raise errors.UserError(
        f"{path}:{number}: expected 'words<TAB>tags', found {len(cols)} tab-separated "
        f"columns")
  words, tags = cols[0].split(), cols[1].split()
  if len(words) != len(tags):
    raise errors.UserError(
        f"{path}:{number}: {len(words)} words but {len(tags)} tags")
  for tag in tags:
    if spec.label_id(tag) is None:
      raise errors.UserError(
          f"{path}:{number}: unknown tag {tag!r} (valid: O or a type of "
          f"{' '.join(tasks_lib.NER_TYPES)} with -B / -I)")
  if not words:
    return [], [SkippedRow(source, number, "no words")]
  return [TaggingExample(number, source, words, tags)], []


# ---------------------------------------------------------------------------
# KorQuAD (SQuAD v1.1 JSON)


def is_squad_whitespace(ch: str) -> bool:
  """SQuAD's whitespace: space, tab, CR, LF and U+202F (narrow no-break space)."""
  return ch in " \t\r\n" or ord(ch) == 0x202F


def split_context(context: str) -> Tuple[List[str], List[int]]:
  """Context -> (whitespace tokens, token index of each character), as SQuAD does."""
  doc_tokens, char_to_word = [], []
  prev_space = True
  for ch in context:
    if is_squad_whitespace(ch):
      prev_space = True
    else:
      if prev_space:
        doc_tokens.append(ch)
      else:
        doc_tokens[-1] += ch
      prev_space = False
    char_to_word.append(len(doc_tokens) - 1)
  return doc_tokens, char_to_word


def _korquad_articles(path, text, skip_bad_answers, require_answers):
  try:
    data = json.loads(text)
  except json.JSONDecodeError as e:
    raise errors.UserError(
        f"{path}:{e.lineno}: malformed JSON (column {e.colno}: {e.msg})") from None
  if not isinstance(data, dict) or not isinstance(data.get("data"), list):
    raise errors.UserError(f"{path}: expected SQuAD v1.1 JSON, an object with a 'data' list")
  source = _basename(path)
  units = []
  for article_index, article in enumerate(data["data"]):
    examples, skipped = [], []
    try:
      paragraphs = article["paragraphs"]
      for paragraph in paragraphs:
        context = paragraph["context"]
        doc_tokens, char_to_word = split_context(context)
        for qa in paragraph["qas"]:
          ex, skip = _korquad_question(path, source, article_index, qa, context,
                                       doc_tokens, char_to_word, skip_bad_answers,
                                       require_answers)
          examples.extend(ex)
          skipped.extend(skip)
    except (KeyError, TypeError, ValueError) as e:
      raise errors.UserError(
          f"{path}: article {article_index}: missing or malformed field {e}") from None
    units.append((examples, skipped))
  return units


def _korquad_question(path, source, article_index, qa, context, doc_tokens, char_to_word,
                      skip_bad_answers, require_answers):
  qid = str(qa["id"])
  where = f"{path}: article {article_index}, question {qid}"
  answers = [(str(a["text"]), int(a["answer_start"])) for a in qa.get("answers", [])]
  if not answers and require_answers:
    raise errors.UserError(f"{where}: a training question without answers")
  for text, start in answers:
    problem = None
    if start < 0 or start + len(text) > len(context):
      problem = (f"answer {text!r} at {start} ends past the context "
                 f"({len(context)} characters)")
    elif context[start:start + len(text)] != text:
      problem = (f"answer {text!r} does not match the context at answer_start {start} "
                 f"(found {context[start:start + len(text)]!r})")
    if problem:
      if skip_bad_answers:
        return [], [SkippedRow(source, None, problem, qid=qid)]
      raise errors.UserError(f"{where}: {problem} (or use skip_bad_answers)")
  start_word = end_word = -1
  if answers:
    text, start = answers[0]
    if text.strip():
      # An answer beginning on whitespace belongs to the next token.
      lead = len(text) - len(text.lstrip())
      start_word = char_to_word[start + lead]
      end_word = char_to_word[start + len(text.rstrip()) - 1]
  return [QAExample(qid, article_index, source, str(qa["question"]), context, answers,
                    doc_tokens, char_to_word, start_word, end_word)], []
