"""BERT/ELECTRA WordPiece tokenization: a pure-Python reference and a fast path.

`FullTokenizer` reproduces the original BERT/ELECTRA `FullTokenizer` behaviour
(text cleaning, CJK and punctuation splitting, optional lower-casing and accent
stripping, greedy longest-match-first WordPiece). `FastTokenizer` gives the same ids,
using the `tokenizers` library for WordPiece plus a per-word cache.

One deliberate difference from the original: the special tokens [PAD] [UNK] [CLS]
[SEP] [MASK] written literally in the text are kept whole (as Hugging Face does),
instead of being split into `[`, `CLS`, `]`. See docs/tokenization.md.
"""
import collections
import functools
import itertools
import re
import threading
import unicodedata

from util import fileio

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
SPECIAL_TOKENS = (PAD, UNK, CLS, SEP, MASK)
MAX_INPUT_CHARS_PER_WORD = 100

# Literal special tokens in the text are never split (HF-style added tokens).
_SPECIAL_SPLIT_RE = re.compile("(" + "|".join(re.escape(t) for t in SPECIAL_TOKENS) + ")")


class VocabError(ValueError):
  """Bad vocab file: the message names the file (and line / token)."""


class TokenizerConfigError(ValueError):
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


@functools.lru_cache(maxsize=None)
def _char_ranges():
  """Code point ranges of the reference's character classes, from Python's unicodedata.

  Both paths then share one Unicode version. Returns {"removed": ..., "isolated": ...}
  as lists of (first, last): chars cleaning deletes, and chars split off on their own
  (punctuation and CJK ideographs).
  """
  cats = list(map(unicodedata.category, map(chr, range(0x110000))))
  removed = [cp for cp, c in enumerate(cats) if c in ("Cc", "Cf")]
  removed = sorted(set(removed) - {9, 10, 13} | {0, 0xFFFD})
  isolated = [cp for cp, c in enumerate(cats) if c[0] == "P"]
  isolated = sorted(set(isolated) | {cp for lo, hi in _CJK_RANGES for cp in range(lo, hi + 1)}
                    | {cp for cp in range(128) if _is_punctuation(chr(cp))})
  return {"removed": _to_ranges(removed), "isolated": _to_ranges(isolated)}


def _to_ranges(cps):
  ranges = []
  for cp in cps:
    if ranges and ranges[-1][1] == cp - 1:
      ranges[-1][1] = cp
    else:
      ranges.append([cp, cp])
  return [tuple(r) for r in ranges]


def _regex_class(ranges, onig=False):
  """A character class for Python `re`, or for Oniguruma (`tokenizers`) if onig."""
  esc = (lambda cp: f"\\x{{{cp:X}}}") if onig else (lambda cp: f"\\U{cp:08x}")
  parts = [esc(a) if a == b else f"{esc(a)}-{esc(b)}" for a, b in ranges
           if not 0xD800 <= a <= 0xDFFF]
  return "[" + "".join(parts) + "]"


@functools.lru_cache(maxsize=None)
def _removed_chars_re():
  return re.compile(_regex_class(_char_ranges()["removed"]))


@functools.lru_cache(maxsize=None)
def _isolated_chars_re():
  return re.compile("(" + _regex_class(_char_ranges()["isolated"]) + ")")


_WORD_SEP = "\x00"  # joins words for one backend call; cleaning removes NUL from words


class _WordCache(dict):
  """word -> its ids as a str (one char per id: chr(id)); records misses.

  Looking words up with the C-level dict.__getitem__ through map() costs no Python
  bytecode per word; __missing__ (Python) runs only for words not cached yet.
  """

  def __init__(self):
    super().__init__()
    self.missed = []

  def __missing__(self, word):
    self.missed.append(word)
    return ""


class FastTokenizer(FullTokenizer):
  """Same arguments, methods and ids as FullTokenizer, much faster.

  How: a text is split on whitespace in Python (after the reference's cleaning, done
  by one regex and only when the text needs it). Each distinct word is tokenized once
  and cached as a str holding one char per id, so a line's ids are a join of cached
  strs and a map(ord): C loops, no Python bytecode per word. Missed words of a batch
  are tokenized together: case/accents and punctuation/CJK isolation by Python
  regexes, WordPiece by `tokenizers` (Rust, several inputs per call). Tokenizing a
  text word by word gives the same ids as tokenizing it whole, so the cache cannot
  change results. docs/tokenization.md has the details and figures.

  cache_size: words kept before the cache is cleared (one batch's words are always
  kept, so memory is bounded by max(cache_size, words in a batch)).
  parallel: let `tokenizers` spread a batch's missed words over its Rust threads.
  """

  def __init__(self, vocab_file, do_lower_case=False, strip_accents=None,
               allow_korean_lowercase=False, cache_size=2_000_000, parallel=True):
    super().__init__(vocab_file, do_lower_case, strip_accents, allow_korean_lowercase)
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers
    if len(self.vocab) >= 0x110000:
      raise VocabError(f"{vocab_file}: {len(self.vocab)} tokens, too many for a char per id")
    backend = Tokenizer(models.WordPiece(
        dict(self.vocab), unk_token=UNK, continuing_subword_prefix="##",
        max_input_chars_per_word=MAX_INPUT_CHARS_PER_WORD))
    # Words arrive cleaned, case-normalized, with punctuation/CJK chars space-padded
    # (by _isolate_re, from Python's unicodedata): Rust only splits on spaces (cheap,
    # unlike a huge regex class there) and runs WordPiece.
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # NUL separates the words of one call; it gets the id len(vocab), outside the vocab.
    backend.add_special_tokens([AddedToken(_WORD_SEP, normalized=False)])
    self._sep_id = backend.token_to_id(_WORD_SEP)
    assert self._sep_id == len(self.vocab), self._sep_id
    self.backend = backend
    self.parallel = parallel
    self.cache_size = cache_size
    self._removed_re = _removed_chars_re()
    self._isolate_re = _isolated_chars_re()
    self._special_keys = {t: _WORD_SEP + t for t in SPECIAL_TOKENS}  # no real word has NUL
    self._lock = threading.Lock()  # misses are recorded in the shared cache
    self._reset_cache()

  def __getstate__(self):
    state = dict(self.__dict__)
    del state["_lock"]  # locks cannot be pickled (e.g. for multiprocessing)
    return state

  def __setstate__(self, state):
    self.__dict__.update(state)
    self._lock = threading.Lock()

  def _reset_cache(self):
    self._prefetch = True  # see _encode_words
    self._cache = _WordCache()
    self._cache.update((k, chr(self.vocab[t])) for t, k in self._special_keys.items())

  def _words(self, text):
    """Cache keys of one text: its whitespace-split words and special-token keys."""
    if isinstance(text, bytes):
      text = text.decode("utf-8", "ignore")
    elif not isinstance(text, str):
      raise TypeError(f"expected text (str or UTF-8 bytes), got {type(text).__name__}")
    # Printable text without '[' or U+FFFD needs no cleaning and has no special token
    # (control chars are never printable), so a plain split is exact.
    if text.isprintable() and "[" not in text and "\ufffd" not in text:
      return text.split()
    words = []
    for i, chunk in enumerate(_SPECIAL_SPLIT_RE.split(text)):
      if i % 2:
        words.append(self._special_keys[chunk])
      else:
        # Deleting control chars may join two pieces into one word, as in the
        # reference; what remains splits on whitespace exactly like its cleaning.
        words.extend(self._removed_re.sub("", chunk).split())
    return words

  def _tokenize_words(self, words, chunk=2000):
    """Tokenize and cache `words` (distinct, not special): a few backend calls."""
    if self.do_lower_case or self.strip_accents:
      words_in = [_normalize_word(w, self.do_lower_case, self.strip_accents) for w in words]
    else:
      words_in = words
    # Space-pad punctuation/CJK chars: split (C) and join, as a re.sub template
    # would run Python code per match. Several inputs per call let `tokenizers`
    # spread them over its threads.
    split = self._isolate_re.split
    texts = [" ".join(split(_WORD_SEP.join(words_in[i:i + chunk])))
             for i in range(0, len(words_in), chunk)]
    if self.parallel:
      encs = self.backend.encode_batch_fast(texts, add_special_tokens=False)
    else:  # no Rust thread pool (e.g. inside worker processes)
      encs = [self.backend.encode(t, add_special_tokens=False) for t in texts]
    sep = chr(self._sep_id)
    values = sep.join(["".join(map(chr, e.ids)) for e in encs]).split(sep)
    assert len(values) == len(words), (len(values), len(words))
    self._cache.update(zip(words, values))

  def encode_batch(self, texts):
    words = self._words
    # The plain-text test is inlined here (it is _words' first branch): per-line
    # call overhead is a visible share of the whole.
    splits = [t.split() if type(t) is str and t.isprintable() and "[" not in t
              and "\ufffd" not in t else words(t) for t in texts]
    with self._lock:
      return self._encode_words(splits)

  def _encode_words(self, splits):
    if self._prefetch:
      # Most lines of the last batch had a new word (young cache): find this batch's
      # misses first, in C, rather than join most lines twice.
      words = set(itertools.chain.from_iterable(splits))
      self._add_words(words.difference(self._cache), words)
    cache, join = self._cache, "".join
    get = cache.__getitem__
    out = [join(map(get, ws)) for ws in splits]
    redo = []
    if cache.missed:
      # Lines with a miss got "" for it: tokenize the batch's missed words, redo them.
      has = cache.__contains__
      redo = [i for i, ws in enumerate(splits) if not all(map(has, ws))]
      self._add_words(set(cache.missed),
                      itertools.chain.from_iterable(map(splits.__getitem__, redo)))
      get = self._cache.__getitem__
      for i in redo:
        out[i] = join(map(get, splits[i]))
    self._prefetch = len(redo) > len(splits) // 2
    return [list(map(ord, s)) for s in out]

  def _add_words(self, missing, needed):
    """Tokenize and cache `missing`; if the cache would overflow, restart it with `needed`."""
    if len(self._cache) + len(missing) > self.cache_size:
      # Bounded memory: start afresh rather than track recency per word.
      self._reset_cache()
      missing = set(needed).difference(self._cache)
    self._cache.missed.clear()
    if missing:
      self._tokenize_words(list(missing))

  def encode(self, text):
    return self.encode_batch([text])[0]

  def tokenize(self, text):
    inv = self.inv_vocab
    return [inv[i] for i in self.encode(text)]


def build_tokenizer(vocab_file, fast=True, **kw):
  """FastTokenizer (default) or the pure-Python FullTokenizer."""
  return (FastTokenizer if fast else FullTokenizer)(vocab_file, **kw)
