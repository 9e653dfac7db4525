"""BERT basic tokenization + WordPiece for a whole batch of texts, compiled with numba.

Why compiled: a Python call per word costs about 3 us and Korean word forms rarely
repeat, so per-word work sets the speed. The previous design did every step as numpy
operations over whole arrays (no Python per word) and reached 10.6x the reference on
one core, spending its time in many passes over temporary arrays (a WordPiece round
per piece position, a shrink-and-retry pass per candidate length). One compiled pass
over the characters does the same work without them: 30-37x (docs/tokenization.md).

One pass over the code points of a batch (texts back to back, their lengths given):

1. Each char's class comes from a table built from the reference's own definitions
   (tokenization._char_class_table): deleted by cleaning, whitespace, split off alone
   (punctuation, CJK ideographs), or part of a word.
2. A word is a run of word chars (deleted chars skipped, so they join their
   neighbours, as in the reference) or one split-off char.
3. WordPiece, greedy longest-match-first, exactly the reference's loop: at each
   position the longest candidate (capped by the longest vocab piece starting with
   that char) is looked up in an open-addressing hash table of the vocab's pieces and
   shortened by one char until found. A hit compares the candidate's code points with
   the piece's, so a hash collision can cost a probe but never change an id.

The kernel holds no Python objects and releases the GIL (nogil), so a batch cut into
chunks runs on one thread per core. It is compiled once per machine and cached next
to this file (numba cache=True); the first call in a fresh checkout compiles it (a few
seconds).
"""
import numba
import numpy as np

NORMAL, SPACE, REMOVED, ISOLATED = 0, 1, 2, 3

# Multiplier of the polynomial string hash and the odd factor that gives a "##"
# continuation piece another key than the same text as a word's first piece.
_BASE = np.uint64(0x9E3779B97F4A7C15)
_CONT = np.uint64(0x5851F42D4C957F2D)


@numba.njit(nogil=True, cache=True)
def _finish(h, cont, shift):
  """Table slot of a prefix hash: mix the high bits in, then keep the top bits."""
  if cont:
    h = h * _CONT
  h ^= h >> np.uint64(31)
  h = h * _BASE
  return np.int64(h >> shift)


@numba.njit(nogil=True, cache=True)
def _build(piece_chars, piece_start, piece_len, piece_cont, shift, size):
  """Open-addressing table (linear probing) of vocab entries: slot -> entry or -1."""
  table = np.full(size, -1, np.int32)
  for e in range(len(piece_len)):
    h = np.uint64(0)
    for i in range(piece_start[e], piece_start[e] + piece_len[e]):
      h = h * _BASE + np.uint64(piece_chars[i])
    s = _finish(h, piece_cont[e], shift)
    while table[s] >= 0:
      s = (s + 1) & (size - 1)
    table[s] = e
  return table


@numba.njit(nogil=True, cache=True)
def _wordpiece(word, n, out, k, table, shift, piece_chars, piece_start, piece_len,
               piece_cont, piece_id, first_len, cont_len, unk_id, max_chars, prefix):
  """Writes the pieces of word[:n] to out[k:]; returns the new end of out."""
  if n > max_chars:
    out[k] = unk_id
    return k + 1
  size = len(table)
  k0 = k
  start = 0
  while start < n:
    cont = start > 0
    c0 = word[start]
    cap = cont_len[c0] if cont else first_len[c0]
    end = min(n, start + cap)
    # prefix[j]: hash of word[start:start + j + 1], so each candidate costs one lookup.
    h = np.uint64(0)
    for j in range(end - start):
      h = h * _BASE + np.uint64(word[start + j])
      prefix[j] = h
    found = -1
    while end > start and found < 0:
      length = end - start
      s = _finish(prefix[length - 1], cont, shift)
      while table[s] >= 0:
        e = table[s]
        if piece_len[e] == length and piece_cont[e] == cont:
          p = piece_start[e]
          same = True
          for j in range(length):
            if piece_chars[p + j] != word[start + j]:
              same = False
              break
          if same:
            found = e
            break
        s = (s + 1) & (size - 1)
      if found < 0:
        end -= 1
    if found < 0:
      out[k0] = unk_id  # the whole word, not just the failing tail
      return k0 + 1
    out[k] = piece_id[found]
    k += 1
    start = end
  return k


@numba.njit(nogil=True, cache=True)
def _encode(chars, text_len, char_class, table, shift, piece_chars, piece_start, piece_len,
            piece_cont, piece_id, first_len, cont_len, unk_id, max_chars):
  """(ids of all texts back to back, end of each text's ids) for texts given as
  code points back to back (chars) and their lengths (text_len)."""
  out = np.empty(len(chars), np.int32)  # a piece or an [UNK] takes at least one char
  text_end = np.empty(len(text_len), np.int64)
  word = np.empty(max_chars + 1, np.uint32)  # longer words are [UNK] without their chars
  prefix = np.empty(max_chars + 1, np.uint64)
  k = 0
  i = 0
  for t in range(len(text_len)):
    stop = i + text_len[t]
    n = 0
    while i < stop:
      c = chars[i]
      cls = char_class[c]
      i += 1
      if cls == NORMAL:
        if n <= max_chars:
          word[n] = c
        n += 1
      elif cls != REMOVED:
        if n:
          k = _wordpiece(word, n, out, k, table, shift, piece_chars, piece_start, piece_len,
                         piece_cont, piece_id, first_len, cont_len, unk_id, max_chars, prefix)
          n = 0
        if cls == ISOLATED:
          word[0] = c
          k = _wordpiece(word, 1, out, k, table, shift, piece_chars, piece_start, piece_len,
                         piece_cont, piece_id, first_len, cont_len, unk_id, max_chars, prefix)
    if n:
      k = _wordpiece(word, n, out, k, table, shift, piece_chars, piece_start, piece_len,
                     piece_cont, piece_id, first_len, cont_len, unk_id, max_chars, prefix)
    text_end[t] = k
  return out[:k], text_end


class BatchWordPiece:
  """Token ids for many texts at once, equal to the reference tokenizer's.

  Args:
    vocab: token -> id.
    char_class: uint8 array over all 0x110000 code points (NORMAL, SPACE, REMOVED,
      ISOLATED).
    unk_id: id of [UNK].
    max_chars_per_word: a longer word is one [UNK], as in the reference.

  Texts must already be case-normalized and free of literal special tokens;
  tokenization.FastTokenizer does both.
  """

  def __init__(self, vocab, char_class, unk_id, max_chars_per_word=100):
    if not 0 < max_chars_per_word < 1 << 15:
      raise ValueError(f"max_chars_per_word must be in 1..32767, got {max_chars_per_word}")
    self.char_class = char_class
    self.unk_id = unk_id
    self.max_chars = max_chars_per_word
    # Only pieces that can equal part of a word are kept: all NORMAL chars, or a
    # lone ISOLATED char as a whole word. A token like "[unused0]" never matches.
    # Chars of the vocab that are not NORMAL, found once: testing each token against
    # this set runs in C (a numpy lookup per token cost ~0.3 s of start-up).
    odd = {c for c in set("".join(vocab)) if char_class[ord(c)] != NORMAL}
    chars, starts, lens, conts, ids = [], [], [], [], []
    for token, i in vocab.items():
      cont = token.startswith("##") and len(token) > 2
      s = token[2:] if cont else token
      if not (odd.isdisjoint(s) or
              (not cont and len(s) == 1 and char_class[ord(s)] == ISOLATED)):
        continue
      if len(s) > self.max_chars:
        continue  # longer than any word that reaches WordPiece
      starts.append(len(chars))
      chars.extend(map(ord, s))
      lens.append(len(s))
      conts.append(cont)
      ids.append(i)
    # Longest piece starting with each char, for first and continuation pieces.
    first_len = np.zeros(0x110000, np.int16)
    cont_len = np.zeros(0x110000, np.int16)
    chars_a = np.array(chars, np.uint32)
    heads = chars_a[np.array(starts, np.int64)] if starts else np.zeros(0, np.uint32)
    lens_a, conts_a = np.array(lens, np.int16), np.array(conts, np.bool_)
    np.maximum.at(first_len, heads[~conts_a], lens_a[~conts_a])
    np.maximum.at(cont_len, heads[conts_a], lens_a[conts_a])
    self.first_len, self.cont_len = first_len, cont_len
    self._piece_chars = chars_a
    self._piece_start = np.array(starts, np.int64)
    self._piece_len = np.array(lens, np.int64)
    self._piece_cont = np.array(conts, np.bool_)
    self._piece_id = np.array(ids, np.int32)
    bits = max(10, (4 * len(lens) - 1).bit_length())  # load factor <= 1/4
    self._shift = np.uint64(64 - bits)
    self._table = _build(self._piece_chars, self._piece_start, self._piece_len,
                         self._piece_cont, self._shift, 1 << bits)
    # One Python int per id, shared by every output list: gathering these references
    # is cheaper than creating a new int object for each of millions of ids (measured
    # 0.11 against 0.17 s for the 3.7 million ids of 50,000 lines).
    self._id_objects = np.array(list(range(max(vocab.values()) + 1)), dtype=object)

  def encode(self, texts):
    """One list of ids per text (texts: list of str)."""
    if not texts:
      return []
    chars = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), np.uint32)
    lengths = np.fromiter(map(len, texts), np.int64, len(texts))
    flat, ends = _encode(chars, lengths, self.char_class, self._table, self._shift,
                         self._piece_chars, self._piece_start, self._piece_len,
                         self._piece_cont, self._piece_id, self.first_len, self.cont_len,
                         self.unk_id, self.max_chars)
    ends = ends.tolist()
    ids = self._id_objects[flat]
    # One numpy slice and tolist per text: faster than one big list sliced per text.
    return [ids[a:b].tolist() for a, b in zip([0] + ends[:-1], ends)]
