"""BERT/ELECTRA WordPiece tokenization: a pure-Python reference and a fast path.

`FullTokenizer` reproduces the original BERT/ELECTRA `FullTokenizer` behaviour
(text cleaning, CJK and punctuation splitting, optional lower-casing and accent
stripping, greedy longest-match-first WordPiece). `FastTokenizer` gives the same ids,
tokenizing whole batches in one compiled (numba) pass (model/batch_wordpiece.py).

One deliberate difference from the original: the special tokens [PAD] [UNK] [CLS]
[SEP] [MASK] written literally in the text are kept whole (as Hugging Face does),
instead of being split into `[`, `CLS`, `]`. See docs/tokenization.md.
"""
import bisect
import collections
import concurrent.futures
import functools
import hashlib
import itertools
import json
import os
import re
import sys
import unicodedata

import numpy as np

from model import batch_wordpiece
from util import errors
from util import fileio

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
MAX_INPUT_CHARS_PER_WORD = 100

# Literal special tokens in the text are never split (HF-style added tokens).
_SPECIAL_SPLIT_RE = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")


class VocabError(errors.UserError):
  """Bad vocab file: the message names the file (and line / token)."""


class TokenizerConfigError(errors.UserError):
  """Settings that would silently ruin tokenization (e.g. lower-casing Korean)."""


# ---------------------------------------------------------------------------
# Vocab


def load_vocab(vocab_file):
  """Read a vocab file into an OrderedDict token -> id (id = 0-based line number).

  The last line may lack a final newline. Raises VocabError naming the file and line
  for a missing file, an empty or duplicate token, or missing special tokens.
  """
  vocab_file = str(vocab_file)
  if not fileio.exists(vocab_file):
    raise VocabError(f"vocab file not found: {vocab_file}")
  try:
    with fileio.open_file(vocab_file, "rb") as f:
      data = f.read().decode("utf-8")
  except UnicodeDecodeError as e:
    raise VocabError(f"{vocab_file}: not UTF-8 ({e})") from None
  lines = data.split("\n")
  if lines and lines[-1] == "":
    lines.pop()  # the final newline, if any, does not start a token
  vocab = collections.OrderedDict()
  for index, line in enumerate(lines):
    token = line.rstrip("\r")
    where = f"{vocab_file}:{index + 1}"
    if not token.strip():
      raise VocabError(f"{where}: empty token")
    if token != token.strip():
      raise VocabError(f"{where}: token {token!r} has surrounding whitespace")
    if token in vocab:
      raise VocabError(f"{where}: duplicate token {token!r} "
                       f"(first at line {vocab[token] + 1})")
    vocab[token] = index
  missing = [t for t in SPECIAL_TOKENS if t not in vocab]
  if missing:
    raise VocabError(f"{vocab_file}: missing special token(s) {' '.join(missing)} "
                     f"(a vocab needs all of {' '.join(SPECIAL_TOKENS)})")
  return vocab


def convert_by_vocab(mapping, items):
  out = []
  for item in items:
    try:
      out.append(mapping[item])
    except KeyError:
      raise KeyError(f"{item!r} is not in the vocab") from None
  return out


def _resolve_case_settings(vocab, vocab_file, do_lower_case, strip_accents,
                           allow_korean_lowercase):
  """Effective strip_accents; refuses settings that break a cased Korean vocab."""
  if strip_accents is None:
    strip_accents = do_lower_case  # as in original/HF BERT
  if allow_korean_lowercase or not (do_lower_case or strip_accents):
    return strip_accents
  # [PAD], [unused0] and the like say nothing about the vocab's casing.
  words = [t for t in vocab if not (t.startswith("[") and t.endswith("]") and len(t) > 2)]
  hangul = [t for t in words if _has_hangul_syllable(t)][:3]
  upper = [t for t in words if _has_upper_latin(t)][:3]
  if strip_accents and hangul:
    raise TokenizerConfigError(
        f"{vocab_file}: accent stripping (do_lower_case={do_lower_case}, "
        f"strip_accents={strip_accents}) NFD-decomposes Hangul syllables into jamo "
        f"(e.g. '한' -> 'ᄒ'+'ᅡ'+'ᆫ'), but this vocab holds whole syllables "
        f"({', '.join(hangul)}, ...), so most Korean words would become [UNK]. "
        "KoELECTRA vocabs are cased: use "
        "do_lower_case=False, or strip_accents=False if you must lower-case; pass "
        "allow_korean_lowercase=True to force it anyway.")
  if do_lower_case and upper:
    raise TokenizerConfigError(
        f"{vocab_file}: do_lower_case=True but this is a cased vocab (it has "
        f"upper-case tokens such as {', '.join(upper)}), so lower-cased text would "
        "no longer match its pieces. KoELECTRA vocabs are cased: use do_lower_case=False; pass "
        "allow_korean_lowercase=True to force it anyway.")
  return strip_accents


def _has_hangul_syllable(token):
  return any("\uac00" <= ch <= "\ud7a3" for ch in token)


def _has_upper_latin(token):
  return any("A" <= ch <= "Z" for ch in token)


def check_vocab_size(vocab_file, vocab_size):
  """Raises VocabError unless `vocab_file` holds exactly `vocab_size` tokens.

  The embedding matrix has `vocab_size` rows; a vocab of another size would either index
  past it or leave rows no token reaches, silently. The message says which hparam to set.
  """
  n = len(load_vocab(vocab_file))
  if n != vocab_size:
    raise VocabError(f"vocab_size is {vocab_size} but {vocab_file} has {n} tokens; set "
                     f"\"vocab_size\": {n} in --hparams or use the matching vocab file")
  return n


# ---------------------------------------------------------------------------
# Character classes (the original BERT definitions)


def _is_whitespace(ch):
  if ch in " \t\n\r":
    return True
  return unicodedata.category(ch) == "Zs"


def _is_control(ch):
  # \t \n \r are whitespace, not control, here.
  if ch in "\t\n\r":
    return False
  return unicodedata.category(ch) in ("Cc", "Cf")


def _is_punctuation(ch):
  cp = ord(ch)
  # ASCII non-letters/digits such as ^ $ ` count as punctuation even though
  # Unicode files them under symbols.
  if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
    return True
  return unicodedata.category(ch).startswith("P")


# CJK Unified Ideographs blocks (not Hangul, Hiragana or Katakana).
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF),
               (0x2A700, 0x2B73F), (0x2B740, 0x2B81F), (0x2B820, 0x2CEAF),
               (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def _is_cjk_char(cp):
  return any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _strip_accents(text):
  text = unicodedata.normalize("NFD", text)
  return "".join(ch for ch in text if unicodedata.category(ch) != "Mn")


def _normalize_word(word, do_lower_case, strip_accents):
  if do_lower_case:
    word = word.lower()
  if strip_accents:
    word = _strip_accents(word)
  return word


# ---------------------------------------------------------------------------
# Pure-Python reference


class BasicTokenizer:
  """Cleaning, CJK padding, whitespace split, case/accents, punctuation split."""

  def __init__(self, do_lower_case=False, strip_accents=None):
    self.do_lower_case = do_lower_case
    self.strip_accents = do_lower_case if strip_accents is None else strip_accents

  def tokenize(self, text):
    text = self._clean_text(text)
    text = self._pad_cjk_chars(text)
    out = []
    for token in text.split():
      token = _normalize_word(token, self.do_lower_case, self.strip_accents)
      out.extend(self._split_on_punc(token))
    return out

  @staticmethod
  def _clean_text(text):
    out = []
    for ch in text:
      cp = ord(ch)
      if cp == 0 or cp == 0xFFFD or _is_control(ch):
        continue
      out.append(" " if _is_whitespace(ch) else ch)
    return "".join(out)

  @staticmethod
  def _pad_cjk_chars(text):
    out = []
    for ch in text:
      if _is_cjk_char(ord(ch)):
        out.extend((" ", ch, " "))
      else:
        out.append(ch)
    return "".join(out)

  @staticmethod
  def _split_on_punc(token):
    pieces = []
    current = []
    for ch in token:
      if _is_punctuation(ch):
        if current:
          pieces.append("".join(current))
          current = []
        pieces.append(ch)
      else:
        current.append(ch)
    if current:
      pieces.append("".join(current))
    return pieces


class WordpieceTokenizer:
  """Greedy longest-match-first WordPiece; a word that cannot be covered is [UNK]."""

  def __init__(self, vocab, unk_token=UNK, max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD):
    self.vocab = vocab
    self.unk_token = unk_token
    self.max_input_chars_per_word = max_input_chars_per_word

  def tokenize(self, text):
    out = []
    for word in text.split():
      out.extend(self.tokenize_word(word))
    return out

  def tokenize_word(self, word):
    if len(word) > self.max_input_chars_per_word:
      return [self.unk_token]
    pieces = []
    start = 0
    n = len(word)
    while start < n:
      end = n
      piece = None
      while start < end:
        sub = word[start:end]
        if start > 0:
          sub = "##" + sub
        if sub in self.vocab:
          piece = sub
          break
        end -= 1
      if piece is None:
        return [self.unk_token]  # the whole word, not just the failing tail
      pieces.append(piece)
      start = end
    return pieces


def _to_text(text):
  if isinstance(text, bytes):
    return text.decode("utf-8", "ignore")
  if not isinstance(text, str):
    raise TypeError(f"expected text (str or UTF-8 bytes), got {type(text).__name__}")
  return text


class FullTokenizer:
  """The reference tokenizer: basic tokenization followed by WordPiece."""

  def __init__(self, vocab_file, do_lower_case=False, strip_accents=None,
               allow_korean_lowercase=False):
    self.vocab_file = str(vocab_file)
    self.vocab = load_vocab(vocab_file)
    self.inv_vocab = {i: t for t, i in self.vocab.items()}
    self.do_lower_case = bool(do_lower_case)
    self.strip_accents = _resolve_case_settings(
        self.vocab, self.vocab_file, self.do_lower_case, strip_accents,
        allow_korean_lowercase)
    self.basic_tokenizer = BasicTokenizer(self.do_lower_case, self.strip_accents)
    self.wordpiece_tokenizer = WordpieceTokenizer(self.vocab)

  def tokenize(self, text):
    out = []
    for i, chunk in enumerate(_SPECIAL_SPLIT_RE.split(_to_text(text))):
      if i % 2:
        out.append(chunk)  # a literal special token
        continue
      for token in self.basic_tokenizer.tokenize(chunk):
        out.extend(self.wordpiece_tokenizer.tokenize_word(token))
    return out

  def encode(self, text):
    return self.convert_tokens_to_ids(self.tokenize(text))

  def encode_batch(self, texts):
    return [self.encode(t) for t in texts]

  def convert_tokens_to_ids(self, tokens):
    return convert_by_vocab(self.vocab, tokens)

  def convert_ids_to_tokens(self, ids):
    return convert_by_vocab(self.inv_vocab, ids)

  def __len__(self):
    return len(self.vocab)


# ---------------------------------------------------------------------------
# Fast path


_CHAR_RANGE_KINDS = ("removed", "space", "isolated", "mark")


@functools.lru_cache(maxsize=None)
def _char_ranges():
  """Code point ranges of the reference's character classes, from Python's unicodedata.

  Both paths then share one Unicode version. Returns {"removed", "space", "isolated",
  "mark"}, each a list of (first, last): chars cleaning deletes; chars a text splits on
  (the reference's whitespace, plus what its str.split() also splits on, e.g. U+2028);
  chars split off on their own (punctuation and CJK ideographs); and `Mn` marks,
  which accent stripping deletes.

  Computing them walks all 1.1 million code points (~0.35 s, a quarter of a corpus
  build's start-up), so they are kept beside the compiled kernels in model/__pycache__,
  keyed by this file's bytes, the Python version and the Unicode version; a cache that
  cannot be read or written is simply not used.
  """
  path = _ranges_cache_path()
  if path:
    try:
      with open(path, encoding="utf-8") as f:
        cached = {k: [tuple(r) for r in v] for k, v in json.load(f).items()}
      if set(cached) == set(_CHAR_RANGE_KINDS) and all(
          len(r) == 2 and all(type(x) is int for x in r) for v in cached.values() for r in v):
        return cached
    except (OSError, ValueError, AttributeError, TypeError):
      pass  # absent or unreadable: compute (and try to write it again)
  ranges = _compute_char_ranges()
  if path:
    try:
      os.makedirs(os.path.dirname(path), exist_ok=True)
      with fileio.atomic_write(path) as f:
        json.dump(ranges, f)
    except OSError:
      pass  # a read-only install: compute each time
  return ranges


def _ranges_cache_path():
  """model/__pycache__/char_ranges-<key>.json, or None when this file cannot be read."""
  here = os.path.abspath(__file__)
  try:
    with open(here, "rb") as f:
      source = f.read()
  except OSError:
    return None
  key = hashlib.sha1(source + f"|{sys.version}|{unicodedata.unidata_version}".encode())
  return os.path.join(os.path.dirname(here), "__pycache__",
                      f"char_ranges-{key.hexdigest()[:16]}.json")


def _compute_char_ranges():
  """_char_ranges' value, computed from unicodedata."""
  cats = list(map(unicodedata.category, map(chr, range(0x110000))))
  removed = {cp for cp, c in enumerate(cats) if c in ("Cc", "Cf")}
  removed = sorted(removed - {9, 10, 13} | {0, 0xFFFD})
  space = sorted({cp for cp, c in enumerate(cats) if c == "Zs" or chr(cp).isspace()}
                 | {9, 10, 13, 32} - set(removed))
  isolated = [cp for cp, c in enumerate(cats) if c[0] == "P"]
  isolated = sorted(set(isolated) | {cp for lo, hi in _CJK_RANGES for cp in range(lo, hi + 1)}
                    | {cp for cp in range(128) if _is_punctuation(chr(cp))})
  mark = [cp for cp, c in enumerate(cats) if c == "Mn"]
  return {"removed": _to_ranges(removed), "space": _to_ranges(space),
          "isolated": _to_ranges(isolated), "mark": _to_ranges(mark)}


def _to_ranges(cps):
  ranges = []
  for cp in cps:
    if ranges and ranges[-1][1] == cp - 1:
      ranges[-1][1] = cp
    else:
      ranges.append([cp, cp])
  return [tuple(r) for r in ranges]


def _regex_class(ranges):
  parts = [f"\\U{a:08x}" if a == b else f"\\U{a:08x}-\\U{b:08x}" for a, b in ranges
           if not 0xD800 <= a <= 0xDFFF]
  return "[" + "".join(parts) + "]"


@functools.lru_cache(maxsize=None)
def _char_class_table():
  """batch_wordpiece's class of every code point (uint8 array of 0x110000)."""
  table = np.full(0x110000, batch_wordpiece.NORMAL, np.uint8)
  ranges = _char_ranges()
  for name, value in (("space", batch_wordpiece.SPACE), ("removed", batch_wordpiece.REMOVED),
                      ("isolated", batch_wordpiece.ISOLATED)):
    for lo, hi in ranges[name]:
      table[lo:hi + 1] = value
  table.setflags(write=False)
  return table


@functools.lru_cache(maxsize=None)
def _removed_chars_re():
  return re.compile(_regex_class(_char_ranges()["removed"]))


@functools.lru_cache(maxsize=None)
def _marks_re():
  return re.compile(_regex_class(_char_ranges()["mark"]))


_POOL = {}


def _thread_pool():
  """One pool per process, made again after a fork (a forked child has no threads)."""
  pid = os.getpid()
  if _POOL.get("pid") != pid:
    _POOL.update(pid=pid, pool=concurrent.futures.ThreadPoolExecutor(
        max_workers=_cores(), thread_name_prefix="tokenizer"))
  return _POOL["pool"]


def _cores():
  """Threads for one batch: the usable cores, at most 8 (a batch cut finer than that
  pays more in per-chunk overhead than it gains)."""
  try:
    cores = len(os.sched_getaffinity(0))
  except AttributeError:  # not Linux
    cores = os.cpu_count() or 1
  return max(1, min(cores, 8))


class FastTokenizer(FullTokenizer):
  """Same arguments, methods and ids as FullTokenizer, many times faster on batches.

  encode_batch tokenizes a whole batch in one compiled pass (model/batch_wordpiece.py):
  no Python code runs per word. Literal special tokens are cut out first and, only
  when lower-casing or accent stripping is on, each remaining piece of text is
  normalized by Python's str.lower / NFD (the same functions the reference calls per
  word; docs/tokenization.md says why per piece is the same). docs/tokenization.md
  has the details and figures.

  parallel: spread a batch over one thread per core (the compiled pass releases the
  GIL). Turn it off in worker processes that already use every core.
  chunk_chars: at most this many characters per compiled pass (a pass ends with the
  text that crosses it; memory is about 20 bytes per character of a pass).
  """

  def __init__(self, vocab_file, do_lower_case=False, strip_accents=None,
               allow_korean_lowercase=False, parallel=True, chunk_chars=1 << 20):
    super().__init__(vocab_file, do_lower_case, strip_accents, allow_korean_lowercase)
    self.parallel = parallel
    self.chunk_chars = int(chunk_chars)
    self._engine = batch_wordpiece.BatchWordPiece(
        self.vocab, _char_class_table(), self.vocab[UNK], MAX_INPUT_CHARS_PER_WORD)
    self._special_ids = {t: [self.vocab[t]] for t in SPECIAL_TOKENS}

  def encode(self, text):
    return self.encode_batch([text])[0]

  def tokenize(self, text):
    inv = self.inv_vocab
    return [inv[i] for i in self.encode(text)]

  def encode_batch(self, texts):
    texts = [t if type(t) is str else _to_text(t) for t in texts]
    # Lines with a literal special token: their pieces between specials are encoded
    # as extra texts appended to the batch, then joined with the specials' ids.
    recipes = {}
    pieces = texts
    for i, t in enumerate(texts):
      if "[" in t and _SPECIAL_SPLIT_RE.search(t):
        if pieces is texts:
          pieces = list(texts)
        parts = _SPECIAL_SPLIT_RE.split(t)
        recipe = []
        for j, part in enumerate(parts):
          if j % 2:
            recipe.append(self._special_ids[part])
          elif part:
            recipe.append(len(pieces))
            pieces.append(part)
        pieces[i] = ""
        recipes[i] = recipe
    ids = self._encode_pieces(pieces)
    for i, recipe in recipes.items():
      ids[i] = [x for r in recipe for x in (r if type(r) is list else ids[r])]
    return ids[:len(texts)]

  def _encode_pieces(self, pieces):
    """Ids of texts without special tokens, split into chunks of about chunk_chars."""
    if not pieces:
      return []
    lengths = list(itertools.accumulate(map(len, pieces)))
    total = lengths[-1]
    threads = _cores() if self.parallel else 1
    size = max(1, min(self.chunk_chars, -(-total // threads)))
    cuts = [0] + [bisect.bisect_left(lengths, k * size) + 1 for k in range(1, -(-total // size))]
    cuts = sorted(set(c for c in cuts if c < len(pieces))) + [len(pieces)]
    chunks = [pieces[a:b] for a, b in zip(cuts[:-1], cuts[1:])]
    if threads > 1 and len(chunks) > 1:
      results = list(_thread_pool().map(self._encode_chunk, chunks))
    else:
      results = list(map(self._encode_chunk, chunks))
    return [ids for r in results for ids in r]

  def _encode_chunk(self, texts):
    return self._engine.encode(list(map(self._normalize, texts)) if self._case else texts)

  @property
  def _case(self):
    return self.do_lower_case or self.strip_accents

  def _normalize(self, text):
    # Cleaning deletes these chars before the reference lower-cases, so here too.
    text = _removed_chars_re().sub("", text)
    if self.do_lower_case:
      text = text.lower()
    if self.strip_accents:
      text = _marks_re().sub("", unicodedata.normalize("NFD", text))
    return text


def build_tokenizer(vocab_file, fast=True, **kw):
  """FastTokenizer (default) or the pure-Python FullTokenizer."""
  return (FastTokenizer if fast else FullTokenizer)(vocab_file, **kw)
