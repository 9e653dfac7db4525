"""A user's own task files -> examples: CSV / TSV / JSONL by column name, CoNLL for tagging.

finetune/readers.py calls `read_units` for a task built from the hparams' "custom_tasks"
(finetune/tasks.custom_task); it returns the same units as for the built-in tasks (one per
row or sentence, with 1-based source lines), so the dev slice, features, scorers and
predictions work unchanged.

- `.csv` / `.tsv`: a header row names the columns; fields may be quoted as CSV allows
  (a field that begins with a double quote may hold the delimiter, newlines and doubled
  quotes), in both. A row's line is the line it starts on.
- `.jsonl`: one JSON object per line; the keys name the columns.
- tagging (any extension): CoNLL style, a token and its tag per line (whitespace
  separated; with more columns, the first is the token and the last the tag), a blank
  line between sentences, `-DOCSTART-` lines ignored.
A test file without the label column (CoNLL: tokens alone) is a prediction job: its
examples carry no label (None) and are predicted, not scored. Classification labels and
tags must be among the task's labels once those are known (given, or collected from the
training file); an empty text, a missing column and a malformed row are errors naming the
file and line.
"""
import csv
import io
import json
import math
import os

from finetune import readers
from finetune import tasks as tasks_lib
from util import errors
from util import fileio

DELIMITERS = {".csv": ",", ".tsv": "\t"}
JSONL = (".jsonl",)


def read_units(spec, path, text, allow_unlabelled):
  """[(examples, skipped)] per row (sentence tasks) or per sentence (tagging).

  Args:
    spec: a custom TaskSpec (spec.columns set). Its labels, when not empty, are the only
      ones accepted.
    path: the file (for messages and its extension).
    text: the file's text (readers.read_text: UTF-8, BOM removed).
    allow_unlabelled: a file without the label column is read as unlabelled (test).

  Returns:
    list of ([SentenceExample or TaggingExample], [SkippedRow]).

  Raises:
    UserError: naming the file and line.
  """
  if spec.kind == tasks_lib.TAGGING:
    return _conll_units(spec, path, text, allow_unlabelled)
  ext = os.path.splitext(path)[1].lower()
  if ext in DELIMITERS:
    header, rows = _table_rows(path, text, DELIMITERS[ext])
  elif ext in JSONL:
    header, rows = None, _jsonl_rows(path, text)
  else:
    raise errors.UserError(f"{path}: unknown file type {ext or '(no extension)'!r}; "
                           f"name it .csv, .tsv or .jsonl")
  cols = spec.columns
  texts_cols = [c for c in (cols.text_a, cols.text_b) if c]
  labelled = None
  if header is not None:
    labelled = _check_columns(spec, path, 1, header, allow_unlabelled, None)
  units = []
  source = os.path.basename(path)
  for number, row in rows:
    if row is None:
      units.append(([], [readers.SkippedRow(source, number, "empty line")]))
      continue
    if header is None:  # JSONL: each row's keys; the first row decides `labelled`
      labelled = _check_columns(spec, path, number, row, allow_unlabelled, labelled)
    texts = []
    for col in texts_cols:
      value = "" if row[col] is None else str(row[col])
      if not value.strip():
        raise errors.UserError(f"{path}:{number}: empty text in column {col!r}")
      texts.append(value)
    label = _label(spec, path, number, row[cols.label]) if labelled else None
    units.append(([readers.SentenceExample(number, source, texts[0],
                                           texts[1] if cols.text_b else None, label)], []))
  return units


def _check_columns(spec, path, number, found, allow_unlabelled, labelled):
  """Whether the file is labelled (None: decide from `found`, the first row's columns).

  Raises:
    UserError: a text column, or the label column of a labelled file, is missing.
  """
  cols = spec.columns
  if labelled is None:
    labelled = cols.label in found or not allow_unlabelled
  for col in [c for c in (cols.text_a, cols.text_b) if c] + ([cols.label] if labelled else []):
    if col not in found:
      raise errors.UserError(
          f"{path}:{number}: no column {col!r} (columns found: "
          f"{', '.join(map(repr, found)) or 'none'}; custom_tasks.{spec.name} names the "
          f"columns with text_a, text_b and label)")
  return labelled


def _label(spec, path, number, value):
  raw = "" if value is None else str(value).strip()
  if spec.kind == tasks_lib.REGRESSION:
    try:
      score = float(raw) if not isinstance(value, bool) else math.nan
    except ValueError:
      score = math.nan
    if not math.isfinite(score):
      raise errors.UserError(f"{path}:{number}: score {raw!r} is not a number")
    return score
  if not raw:
    raise errors.UserError(f"{path}:{number}: empty label")
  _check_label(spec, path, number, raw)
  return raw


def _check_label(spec, path, number, label):
  if spec.labels and spec.label_id(label) is None:
    raise errors.UserError(
        f"{path}:{number}: label {label!r} is not one of {spec.name}'s labels "
        f"({', '.join(spec.labels)}): training never saw it (or it is missing from "
        f"custom_tasks.{spec.name}.labels)")


def _table_rows(path, text, delimiter):
  """(header columns, [(line, {column: value} or None for an empty line)]) of a CSV or
  TSV file; a row's line is the line it starts on."""
  reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
  header, rows, start = None, [], 1
  try:
    for fields in reader:
      if header is None:
        header = [f.strip() for f in fields]
      elif not any(f.strip() for f in fields):
        rows.append((start, None))
      elif len(fields) != len(header):
        raise errors.UserError(f"{path}:{start}: {len(fields)} fields but the header has "
                               f"{len(header)} ({', '.join(header)})")
      else:
        rows.append((start, dict(zip(header, fields))))
      start = reader.line_num + 1
  except csv.Error as e:
    raise errors.UserError(f"{path}:{start}: malformed row ({e})") from None
  if header is None:
    raise errors.UserError(f"{path}: empty file (expected a header row)")
  return header, rows


def _jsonl_rows(path, text):
  """[(line, object or None for an empty line)] of a JSON lines file."""
  lines = text.split("\n")
  if lines and not lines[-1].strip():
    lines.pop()  # the final newline
  out = []
  for number, line in enumerate(lines, start=1):
    if not line.strip():
      out.append((number, None))
      continue
    try:
      row = json.loads(line)
    except json.JSONDecodeError as e:
      raise errors.UserError(f"{path}:{number}: malformed JSON (column {e.colno}: "
                             f"{e.msg})") from None
    if not isinstance(row, dict):
      raise errors.UserError(f"{path}:{number}: expected a JSON object, found "
                             f"{type(row).__name__}")
    out.append((number, row))
  return out


def _conll_units(spec, path, text, allow_unlabelled):
  source = os.path.basename(path)
  units, words, tags, first_line = [], [], [], None
  labelled = None

  def close():
    if words:
      units.append(([readers.TaggingExample(first_line, source, list(words),
                                            list(tags) if labelled else None)], []))
    words.clear()
    tags.clear()

  for number, line in enumerate(text.split("\n"), start=1):
    fields = line.split()
    if not fields:
      close()
      continue
    if fields[0] == "-DOCSTART-":
      continue
    if labelled is None:
      labelled = len(fields) > 1 or not allow_unlabelled
    if labelled and len(fields) < 2:
      raise errors.UserError(f"{path}:{number}: expected a token and its tag, found "
                             f"{line.strip()!r}")
    if not labelled and len(fields) > 1:
      raise errors.UserError(f"{path}:{number}: a tag in a file whose first token has "
                             f"none (a prediction file holds tokens alone)")
    if not words:
      first_line = number
    words.append(fields[0])
    if labelled:
      _check_label(spec, path, number, fields[-1])
      tags.append(fields[-1])
  close()
  return units


def collect_labels(spec):
  """A custom task's labels in the order they first appear in its whole training file
  (the dev slice included, so that dev never holds a label the ids lack).

  Raises:
    UserError: the file cannot be read, or holds no label.
  """
  path = spec.files["train"][0]
  if not fileio.exists(path):
    raise errors.UserError(f"custom_tasks.{spec.name}.train_file: no such file ({path})")
  units = read_units(spec, path, readers.read_text(path), allow_unlabelled=False)
  labels = {}
  for examples, _ in units:
    for e in examples:
      for label in (e.tags if spec.kind == tasks_lib.TAGGING else [e.label]):
        labels.setdefault(label, None)
  if not labels:
    raise errors.UserError(f"{path}: no labelled example to train on")
  return tuple(labels)
