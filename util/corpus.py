"""Reading raw corpora: plain text, .gz, and JSON lines, streaming and line-numbered.

Shared by the vocab builder and the pretraining-corpus builder, so both read a corpus
the same way and count the same skipped lines.

A corpus yields *lines*; `None` marks a document boundary. In plain text a blank line
ends a document (KoELECTRA's corpus layout); in JSON lines each object is a document
and its text field may hold several lines.
"""
import dataclasses
import gzip
import json
import os
import re

from util import errors
from util import fileio


class CorpusError(errors.UserError):
  """Bad corpus input: the message names the file (and line)."""


@dataclasses.dataclass
class CorpusStats:
  files: int = 0
  lines: int = 0             # non-empty text lines yielded
  documents: int = 0
  bytes_read: int = 0
  skipped_undecodable: int = 0
  skipped_bad_json: int = 0
  skipped_binary: int = 0    # lines holding NUL bytes (binary content)
  skipped_examples: list = dataclasses.field(default_factory=list)  # first few "file:line: why"

  def skip(self, kind, where):
    setattr(self, kind, getattr(self, kind) + 1)
    if len(self.skipped_examples) < 10:
      self.skipped_examples.append(where)

  def merge(self, other):
    for f in dataclasses.fields(self):
      if f.name == "skipped_examples":
        room = 10 - len(self.skipped_examples)
        self.skipped_examples.extend(other.skipped_examples[:max(room, 0)])
      else:
        setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

  def as_dict(self):
    return dataclasses.asdict(self)


def list_corpus_files(paths):
  """Expand files and directories (recursively, sorted) into a list of files.

  Raises CorpusError naming the path when something is missing or nothing is found.
  """
  if isinstance(paths, (str, os.PathLike)):
    paths = [paths]
  files = []
  for p in paths:
    p = str(p)
    if fileio.is_remote(p):
      matches = fileio.glob(p.rstrip("/") + "/*") if not fileio.glob(p) else fileio.glob(p)
      files.extend(m for m in matches if not os.path.basename(m).startswith("."))
    elif os.path.isdir(p):
      for dirpath, dirnames, filenames in os.walk(p):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        files.extend(os.path.join(dirpath, f) for f in sorted(filenames) if not f.startswith("."))
    elif os.path.isfile(p):
      files.append(p)
    else:
      raise CorpusError(f"corpus path not found: {p}")
  if not files:
    raise CorpusError(f"no corpus files found under: {', '.join(map(str, paths))}")
  return files


# Archives are not read (extract them first); both builders skip them the same way.
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar", ".zip")


def _first_line(path):
  with _open_binary(path) as f:
    for line in f:
      if line.strip():
        return line.lstrip()
  return b""


# Bytes that text does not hold but binary files are full of (a shared library, an
# image): NUL and the C0 controls other than tab, newline, vertical tab, form feed,
# carriage return and ESC (terminal logs hold ESC).
_CONTROL_BYTES = re.compile(b"[\x00-\x08\x0e-\x1a\x1c-\x1f]")
_SNIFF_BYTES = 8192  # what is read of each file to judge it


def _file_binary_reason(path):
  """Why a file is binary, judged on its first 8 KiB (decompressed), or None: binary when
  at least half of those lines hold control bytes. A text file with a stray bad line is
  read and that line skipped; one in another encoding is left to iter_file's per-line
  "not UTF-8" count (a text, not a binary, mistake).
  """
  with _open_binary(path) as f:
    lines = f.read(_SNIFF_BYTES).split(b"\n")
  bad = [line for line in lines if _CONTROL_BYTES.search(line)]
  if not bad or 2 * len(bad) < len(lines):
    return None
  nul = any(b"\0" in line for line in bad)
  return f"binary content ({'NUL' if nul else 'control'} bytes)"


def plan_corpus(paths, text_field=None):
  """([(file, text_field or None)], [skipped file messages]) for a corpus.

  Archives and binary files (`_file_binary_reason`) are skipped with the reason: a shared
  library read as text would otherwise become training examples. Lines of a text file
  holding NUL bytes are skipped (and counted) by iter_file.

  With a text field, a file whose first non-empty line starts with '{' is read as JSON
  lines and any other file as plain text, so one run can mix the petitions (JSON) with
  plain text. Without one, a JSON-lines file is an error (it would train on JSON syntax).
  """
  plan, skipped = [], []
  for path in list_corpus_files(paths):
    if path.endswith(ARCHIVE_SUFFIXES):
      skipped.append(f"{path}: archive (extract it first)")
      continue
    try:
      why = _file_binary_reason(path)
      first = _first_line(path) if why is None else b""
    except (OSError, EOFError) as e:
      raise CorpusError(f"cannot read corpus file {path}: {e}") from e
    if why:
      skipped.append(f"{path}: {why}")
      continue
    is_json = first.startswith(b"{")
    if is_json and not text_field:
      raise CorpusError(
          f"{path}: looks like JSON lines; pass --text-field (e.g. --text-field content)")
    plan.append((path, text_field if is_json else None))
  if not plan:
    raise CorpusError(f"no readable corpus files under: {', '.join(map(str, paths))} "
                      f"(skipped: {'; '.join(skipped)})")
  return plan, skipped


def _open_binary(path):
  if fileio.is_remote(path):
    f = fileio.open_file(path, "rb")
    return gzip.GzipFile(fileobj=f) if path.endswith(".gz") else f
  return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def file_size(path):
  """Size in bytes (compressed size for .gz)."""
  if fileio.is_remote(path):
    return fileio._gfile().stat(path).length
  return os.path.getsize(path)


def splittable(path):
  """Whether byte ranges of `path` can be read independently (local, uncompressed)."""
  return not fileio.is_remote(path) and not str(path).endswith(".gz")


def split_ranges(files, num_parts):
  """Split the files, taken as one byte stream in order, into `num_parts` parts.

  Returns num_parts lists of (path, start, end) pieces (end None = to end of file);
  a part may be empty. Unsplittable files (.gz, gs://) go whole to the part holding
  their first byte. The parts depend only on the files' sizes, so the split is
  deterministic.
  """
  sizes = [file_size(f) for f in files]
  total = sum(sizes)
  bounds = [total * k // num_parts for k in range(num_parts + 1)]
  parts = [[] for _ in range(num_parts)]
  offset = 0
  for path, size in zip(files, sizes):
    lo, hi = offset, offset + size
    offset = hi
    if size == 0:
      continue
    if not splittable(path):
      k = max(i for i in range(num_parts) if bounds[i] <= lo)
      parts[k].append((path, 0, None))
      continue
    for k in range(num_parts):
      a, b = max(lo, bounds[k]), min(hi, bounds[k + 1])
      if a < b:
        parts[k].append((path, a - lo, None if b == hi else b - lo))
  return parts


def _line_start_before(f, end):
  """Offset of the first byte of the line whose content ends at byte `end`."""
  cur = end
  while cur > 0:
    step = min(4096, cur)
    f.seek(cur - step)
    block = f.read(step)
    i = block.rfind(b"\n")
    if i >= 0:
      return cur - step + i + 1
    cur -= step
  return 0


def _doc_open_before(f, pos):
  """Whether a document is still open just before line start `pos`.

  Mirrors iter_file's state machine: the nearest preceding decodable line decides
  (blank: closed, text: open); undecodable lines are transparent; file start: closed.
  """
  end = pos - 1  # the byte at pos-1 is the previous line's newline
  while end >= 0:
    start = _line_start_before(f, end)
    f.seek(start)
    raw = f.read(end - start)
    end = start - 1
    try:
      return bool(raw.decode("utf-8").strip())
    except UnicodeDecodeError:
      continue
  return False


def iter_file(path, text_field=None, stats=None, blanks_separate_docs=True,
              start=0, end=None, align_docs=False, max_overrun=None):
  """Yield text lines of one file, and None at each document boundary.

  start/end (byte offsets, plain uncompressed files only) select the lines whose first
  byte lies in [start, end): a file can be split among processes without a line being
  read twice or lost. With align_docs (plain text with blank-line documents) the unit
  is the document instead: the documents whose first line starts in [start, end) are
  read whole, so a document straddling `end` is finished past it and skipped by the
  reader that starts inside it. max_overrun bounds that: a document still open
  `max_overrun` bytes past a range boundary is cut at the first line starting there
  (both neighbouring readers compute the same cut), so a file without blank lines
  cannot make one reader read it all. Undecodable lines, lines holding NUL bytes and bad
  JSON are skipped and counted.
  """
  stats = stats if stats is not None else CorpusStats()
  align = align_docs and blanks_separate_docs and not text_field
  if not start:
    stats.files += 1  # a file split into ranges is counted once, by its first range
  in_doc = False    # this reader has yielded lines of a document not yet closed
  doc_open = False  # a document is open in the file (differs from in_doc after a cut)
  # An aligned reader starting mid-file skips to the first line that starts a
  # document (or to the previous reader's forced cut).
  skipping = False
  with _open_binary(path) as f:
    lineno = 0
    pos = 0
    if start:
      # Skip to the first line that starts at or after `start`.
      f.seek(start - 1)
      prev = f.read(1)
      pos = start
      if prev != b"\n":
        pos += len(f.readline())
      lineno = None  # line numbers are unknown mid-file; report byte offsets instead
      if align:
        skipping = True
        doc_open = _doc_open_before(f, pos)
      f.seek(pos)
    for raw in f:
      line_start = pos
      pos += len(raw)
      if end is not None and line_start >= end:
        if not align or (max_overrun is not None and line_start >= end + max_overrun):
          break
      if skipping and max_overrun is not None and line_start >= start + max_overrun:
        skipping = False  # the previous reader's forced cut: start here, mid-document
      where = f"{path}:{lineno + 1}" if lineno is not None else f"{path}@byte{line_start}"
      if lineno is not None:
        lineno += 1
      # A NUL never belongs to text (tokenization would drop it without a word); other
      # control bytes are left to the tokenizer's cleaning, as in the original.
      why = "binary content (NUL bytes)" if b"\0" in raw else None
      try:
        line = None if why else raw.decode("utf-8")
      except UnicodeDecodeError:
        why = "not UTF-8"
      if why:
        if not skipping:
          stats.bytes_read += len(raw)
          stats.skip("skipped_binary" if why != "not UTF-8" else "skipped_undecodable",
                     f"{where}: {why}")
        continue
      if skipping:
        # Lines before the first document start belong to the previous range.
        if not line.strip():
          doc_open = False
          continue
        if doc_open:
          continue
        skipping = False
      if align and end is not None and line_start >= end and not doc_open and line.strip():
        break  # the next document starts here: it belongs to the next range
      stats.bytes_read += len(raw)
      if text_field:
        if not line.strip():
          continue
        try:
          obj = json.loads(line)
          text = obj[text_field]
          if not isinstance(text, str):
            raise TypeError(f"field '{text_field}' is {type(text).__name__}, not text")
        except (ValueError, KeyError, TypeError) as e:
          why = f"no field '{text_field}'" if isinstance(e, KeyError) else str(e)[:80]
          stats.skip("skipped_bad_json", f"{where}: {why}")
          continue
        lines = [l.strip() for l in text.splitlines()]
        lines = [l for l in lines if l]
        if lines:
          stats.documents += 1
          stats.lines += len(lines)
          yield from lines
          yield None
        continue
      line = line.strip()
      if not line:
        doc_open = False
        if blanks_separate_docs and in_doc:
          stats.documents += 1
          in_doc = False
          yield None
        continue
      in_doc = doc_open = True
      stats.lines += 1
      yield line
  if in_doc:
    stats.documents += 1
    yield None


def iter_corpus(paths, text_field=None, stats=None, blanks_separate_docs=True):
  """Lines of every file under `paths`, files in sorted order; None between documents."""
  for path in list_corpus_files(paths):
    yield from iter_file(path, text_field, stats, blanks_separate_docs)


def iter_texts(paths, text_field=None, stats=None):
  """Only the text lines (no document markers): what vocab training wants."""
  for line in iter_corpus(paths, text_field, stats):
    if line is not None:
      yield line
