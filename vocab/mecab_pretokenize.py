"""Mecab morpheme pre-tokenization for the KoELECTRA v3 vocab recipe.

v3 splits every (whitespace/punctuation) word into morphemes before WordPiece
training, so that the pieces of every morpheme after the first are learned as
continuation pieces: `공유합니다` -> `공유` + `##합니다`, `ELECTRA를` -> ... `##를`.

`tokenizers`' WordPiece trainer only knows "first character of a pre-token" (plain)
and "any later character" (`##`). To make it learn a morpheme as a continuation
while never merging across a morpheme boundary, each morpheme becomes its own
training pre-token, and a non-initial morpheme's first character c is written as a
private-use stand-in chr(CONT_BASE + ord(c)) (Supplementary Private Use Area-A).
The trainer then learns tokens like `<c'>니다`, which `decode_token` turns back into
`##합니다`. Words are analysed one at a time (no context), so the result for a word
does not depend on its neighbours, and each unique word is analysed once.
"""
import collections
import multiprocessing

from tqdm import tqdm

from util import errors

CONT_BASE = 0xF0000          # start of Supplementary Private Use Area-A
_CONT_LIMIT = 0xFFFE         # chars at or above this have no stand-in (rare, e.g. emoji)


def is_cont_char(ch):
  return CONT_BASE <= ord(ch) < CONT_BASE + _CONT_LIMIT


def base_char(ch):
  """The real character behind a stand-in (or ch itself)."""
  return chr(ord(ch) - CONT_BASE) if is_cont_char(ch) else ch


def mark_continuation(segment):
  """Write a non-initial morpheme with its first character as the stand-in."""
  return chr(CONT_BASE + ord(segment[0])) + segment[1:]


def decode_token(token):
  """Trainer token -> WordPiece token: a leading stand-in becomes `##` + its char."""
  if token and is_cont_char(token[0]):
    return "##" + base_char(token[0]) + token[1:]
  return token


def drop_reserved_chars(text):
  """Remove private-use chars from input so they cannot be mistaken for stand-ins."""
  if any(is_cont_char(ch) for ch in text):
    return "".join(ch for ch in text if not is_cont_char(ch))
  return text


class MorphemeSplitter:
  """Splits one word into morpheme segments with python-mecab-ko, cached per word."""

  def __init__(self, cache_size=200000):
    import mecab  # python-mecab-ko; ships its own dictionary
    self._mecab = mecab.MeCab()
    self._cache = {}
    self._cache_size = cache_size
    try:  # spans straight from the lattice: half the time of MeCab.parse (no features)
      from mecab.utils import create_lattice
      self._lattice, self._tagger = create_lattice, self._mecab._tagger
    except (ImportError, AttributeError):  # another python-mecab-ko version
      self._lattice = None

  def _starts(self, word):
    if self._lattice is not None:
      lattice = self._lattice(word)
      if self._tagger.parse(lattice):
        return [span[0] for span, _ in lattice]
    return [m.span.start for m in self._mecab.parse(word)]

  def split(self, word):
    """Segments whose concatenation is exactly `word` (boundaries from Mecab spans)."""
    if len(word) < 2:
      return [word]
    hit = self._cache.get(word)
    if hit is not None:
      return hit
    starts = sorted({s for s in self._starts(word) if 0 < s < len(word)})
    # A boundary before a char without a stand-in is dropped (kept in the previous piece).
    starts = [s for s in starts if ord(word[s]) < _CONT_LIMIT]
    bounds = [0] + starts + [len(word)]
    segs = [word[a:b] for a, b in zip(bounds, bounds[1:])]
    if len(self._cache) < self._cache_size:
      self._cache[word] = segs
    return segs


_worker_splitter = None


def _init_worker():
  global _worker_splitter
  errors.init_worker_signals()
  _worker_splitter = MorphemeSplitter(cache_size=0)


def _split_chunk(words):
  return [_worker_splitter.split(w) for w in words]


def split_words(words, workers=2, chunk=2000, progress=True):
  """Yield (word, segments) for each word, Mecab running in `workers` processes.

  Order is the input order, so results are deterministic whatever the scheduling.
  """
  words = list(words)
  chunks = [words[i:i + chunk] for i in range(0, len(words), chunk)]
  bar = tqdm(total=len(words), desc="mecab", unit="word", disable=not progress)
  try:
    if workers > 1 and len(chunks) > 1:
      ctx = multiprocessing.get_context("fork")
      with ctx.Pool(workers, initializer=_init_worker) as pool:
        for ws, segs in zip(chunks, pool.imap(_split_chunk, chunks)):
          bar.update(len(ws))
          yield from zip(ws, segs)
    else:
      splitter = MorphemeSplitter(cache_size=0)
      for ws in chunks:
        bar.update(len(ws))
        for w in ws:
          yield w, splitter.split(w)
  finally:
    bar.close()


def training_counts(word_counts, workers=2, progress=True):
  """Word counts -> counts of training pre-tokens (initial / marked continuation morphemes)."""
  seg_counts = collections.Counter()
  for word, segs in split_words(word_counts.keys(), workers, progress=progress):
    n = word_counts[word]
    seg_counts[segs[0]] += n
    for s in segs[1:]:
      seg_counts[mark_continuation(s)] += n
  return seg_counts


def iter_training_text(seg_counts, max_repeat=512):
  """Text for `train_from_iterator`: each pre-token repeated by its count, space separated."""
  for seg, n in seg_counts.items():
    while n > 0:
      k = min(n, max_repeat)
      yield " ".join([seg] * k)
      n -= k
