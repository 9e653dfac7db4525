"""BERT basic tokenization + WordPiece for a whole batch of texts at once, in numpy.

Why: a Python or Rust call per word costs about 3 us per distinct word, and Korean
word forms rarely repeat, so per-word work sets the speed. Here every step is one
numpy operation over all characters or all words of a batch:

1. The batch becomes one array of code points; a table of character classes (built
   from the reference's own definitions) finds the chars cleaning deletes, the
   whitespace, and the chars split off alone (punctuation, CJK ideographs).
2. Word boundaries come from class changes. Each word gets a 64-bit polynomial hash
   from prefix sums, so any substring's hash is two lookups and a multiply.
3. Distinct words are found with a hash table built from numpy operations; WordPiece
   runs once per distinct word: greedy longest-match-first, all words in step, each
   trying its longest candidate piece first and shortening it until the vocab (a hash
   table of piece hashes) has it, exactly as the reference loop does word by word.
4. The pieces of distinct words are spread back to every occurrence, then cut into
   one id list per text.

Exactness: hashes stand in for strings, so every hash equality used (two words
merged as one, a candidate piece found in the vocab) is checked with a second,
independent 64-bit hash and the lengths. If a check fails, HashCollision is raised
and the caller tokenizes that batch with the reference code. A wrong result needs
both hashes to collide at once.
"""
import numpy as np

NORMAL, SPACE, REMOVED, ISOLATED = 0, 1, 2, 3

# Odd multipliers (invertible modulo 2^64): the two polynomial hashes' bases; the
# factor that makes a "##" continuation piece's key differ from the same text as a
# word's first piece; and the mixing factor applied to every key, so that its top
# bits (the table slot) depend on all its bits (a single char's hash is its code point).
BASE1 = 0x9E3779B97F4A7C15
BASE2 = 0xC2B2AE3D27D4EB4F
_CONT = 0x5851F42D4C957F2D
_MIX = 0xD6E8FEB86659FD93
_MASK = (1 << 64) - 1
_U64 = np.uint64


class HashCollision(Exception):
  """Two different strings got the same primary hash in this batch (the caller falls back)."""


def _string_hash(s, base):
  h = 0
  for ch in reversed(s):  # Horner: sum of ord(s[i]) * base^i
    h = (h * base + ord(ch)) & _MASK
  return h


class BatchWordPiece:
  """Token ids for many texts at once, equal to the reference tokenizer's.

  vocab: token -> id. char_class: uint8 array over all 0x110000 code points (NORMAL,
  SPACE, REMOVED, ISOLATED). Texts must already be case-normalized and free of
  literal special tokens; tokenization.FastTokenizer does both.
  """

  def __init__(self, vocab, char_class, unk_id, max_chars_per_word=100,
               base1=BASE1, base2=BASE2):
    self.char_class = char_class
    self.unk_id = unk_id
    self.max_chars = max_chars_per_word
    self.base1, self.base2 = base1, base2
    self._pows = self._powers(1 << 16)
    # Only pieces that can equal part of a word are kept: all NORMAL chars, or a
    # lone ISOLATED char as a whole word. A token like "[unused0]" never matches.
    if not 0 < max_chars_per_word < 1 << 15:
      raise ValueError(f"max_chars_per_word must be in 1..32767, got {max_chars_per_word}")
    first_len = np.zeros(0x110000, np.int16)  # longest piece starting with this char
    cont_len = np.zeros(0x110000, np.int16)
    key1, key2, lens, ids, conts = [], [], [], [], []
    for token, i in vocab.items():
      cont = token.startswith("##") and len(token) > 2
      s = token[2:] if cont else token
      classes = char_class[[ord(c) for c in s]]
      if not ((classes == NORMAL).all() or (not cont and len(s) == 1 and classes[0] == ISOLATED)):
        continue
      if len(s) > self.max_chars:
        continue  # longer than any word that reaches WordPiece
      table = cont_len if cont else first_len
      c0 = ord(s[0])
      table[c0] = max(table[c0], len(s))
      key1.append(_string_hash(s, base1) * (_CONT if cont else 1) * _MIX & _MASK)
      key2.append(_string_hash(s, base2))
      lens.append(len(s))
      ids.append(i)
      conts.append(cont)
    self.first_len, self.cont_len = first_len, cont_len
    self._key2 = np.array(key2, np.uint64)
    self._cont = np.array(conts, bool)
    self._len = np.array(lens, np.int64)
    self._id = np.array(ids, np.int64)
    self._build_table(np.array(key1, np.uint64))

  def _build_table(self, keys):
    """Slot (a key's top bits) -> entry; keys sharing a slot go to a sorted list.

    Two extra entries stand for "empty slot" and "shared slot". Their keys may equal a
    query by chance, so they get a length of 0 and a second hash of 1, which no
    piece can match: such a hit ends in HashCollision, never in a wrong id.
    """
    num = len(keys)
    bits = max(10, int(num * 4 - 1).bit_length())  # load factor <= 1/4
    self._shift = _U64(64 - bits)
    slots = self._slot(keys)
    counts = np.bincount(slots, minlength=1 << bits)
    self._empty, self._shared = num, num + 1
    self._slot_entry = np.where(counts > 1, self._shared, self._empty)
    alone = counts[slots] == 1
    self._slot_entry[slots[alone]] = np.flatnonzero(alone)
    shared = np.flatnonzero(~alone)
    order = np.argsort(keys[shared])
    self._over_key = keys[shared][order]
    self._over_entry = shared[order]
    if len(np.unique(keys)) != len(keys):
      raise HashCollision("two vocab pieces share a hash")
    self._key1 = np.concatenate([keys, np.zeros(2, np.uint64)])
    self._key2 = np.concatenate([self._key2, np.ones(2, np.uint64)])
    self._cont = np.concatenate([self._cont, np.zeros(2, bool)])
    self._len = np.concatenate([self._len, np.zeros(2, np.int64)])
    self._id = np.concatenate([self._id, np.full(2, self.unk_id, np.int64)])

  def _powers(self, n):
    """(base1^i, base1^-i, base2^i for i < at least n), kept for later batches.

    Callers use the tuple returned, never self._pows again: another thread may
    replace it meanwhile (only ever with longer arrays).
    """
    pows = getattr(self, "_pows", None)
    if pows is not None and len(pows[0]) >= n:
      return pows
    n = max(n, 2 * len(pows[0]) if pows is not None else 0)
    def powers(b):
      a = np.full(n, _U64(b), np.uint64)
      a[0] = 1
      return np.cumprod(a, dtype=np.uint64)
    pows = (powers(self.base1), powers(pow(self.base1, -1, 1 << 64)), powers(self.base2))
    current = getattr(self, "_pows", None)
    if current is None or len(current[0]) < n:
      self._pows = pows
    return pows

  def __getstate__(self):
    state = dict(self.__dict__)
    state["_pows"] = None  # rebuilt on demand; can be tens of MB
    return state

  def _slot(self, keys):
    return (keys >> self._shift).view(np.int64)  # < 2^63: the view is exact

  def _lookup(self, q):
    """(entry of each query key in the vocab table, whether it is there)."""
    entry = self._slot_entry[self._slot(q)]
    hit = self._key1[entry] == q
    shared = np.flatnonzero(entry == self._shared)
    if len(shared):
      k = np.searchsorted(self._over_key, q[shared])
      k[k == len(self._over_key)] = 0
      found = self._over_key[k] == q[shared]
      entry[shared[found]] = self._over_entry[k[found]]
      hit[shared[found]] = True
    return entry, hit

  @staticmethod
  def _distinct(key):
    """(index of one occurrence per distinct key, distinct index of each key).

    A hash table built in numpy (open addressing, linear probing), faster than
    sorting. Keys are already well mixed, so their top bits pick the slot.
    """
    m = len(key)
    bits = max(4, (2 * m - 1).bit_length())  # load <= 1/2
    size = 1 << bits
    owner = np.full(size, -1, np.int32 if m < 2 ** 31 else np.int64)
    slot = (key >> _U64(64 - bits)).astype(np.int64)
    rep = np.empty(m, np.int64)
    todo, t_key = np.arange(m), key
    while len(todo):
      free = np.flatnonzero(owner[slot] < 0)
      owner[slot[free]] = todo[free]  # one of the claimants of each slot wins
      o = owner[slot]
      same = key[o] == t_key
      found = np.flatnonzero(same)
      rep[todo[found]] = o[found]
      rest = np.flatnonzero(~same)
      todo, t_key, slot = todo[rest], t_key[rest], (slot[rest] + 1) & (size - 1)
    is_rep = rep == np.arange(m)
    distinct = np.cumsum(is_rep) - 1
    return np.flatnonzero(is_rep), distinct[rep]

  def encode(self, texts):
    """One list of ids per text."""
    if not texts:
      return []
    joined = "\n".join(texts) + "\n"  # "\n" is whitespace: no word spans two texts
    chars = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32)
    text_end = np.cumsum(np.fromiter(map(len, texts), np.int64, len(texts)) + 1) - 1
    cls = self.char_class[chars]
    removed = np.flatnonzero(cls == REMOVED)
    if len(removed):
      text_end = text_end - np.searchsorted(removed, text_end)  # separators are kept
      chars, cls = np.delete(chars, removed), np.delete(cls, removed)
    n = len(chars)
    # Words: runs of NORMAL chars, and every ISOLATED char on its own.
    normal = cls == NORMAL
    isolated = cls == ISOLATED
    change = np.ones(n + 1, bool)
    np.not_equal(normal[1:], normal[:-1], out=change[1:n])
    starts = np.flatnonzero(isolated | (normal & change[:n]))
    ends = np.flatnonzero(isolated | (normal & change[1:])) + 1
    if not len(starts):
      return [[] for _ in texts]

    pows = self._powers(n + 1)
    pow1, ipow1, pow2 = pows
    c64 = chars.astype(np.uint64)
    prefix1 = np.zeros(n + 1, np.uint64)
    np.cumsum(c64 * pow1[:n], out=prefix1[1:])
    prefix2 = np.zeros(n + 1, np.uint64)
    np.cumsum(c64 * pow2[:n], out=prefix2[1:])

    # Distinct words, checked with the second hash (cross-multiplied, so no inverse).
    key = (prefix1[ends] - prefix1[starts]) * (ipow1[starts] * _U64(_MIX))
    first, inverse = self._distinct(key)
    rep_s, rep_e = starts[first], ends[first]
    rs, re_ = rep_s[inverse], rep_e[inverse]
    if not (np.array_equal(re_ - rs, ends - starts) and np.array_equal(
        (prefix2[ends] - prefix2[starts]) * pow2[rs],
        (prefix2[re_] - prefix2[rs]) * pow2[starts])):
      raise HashCollision("two different words share a hash")

    ids_csr, count = self._wordpiece(chars, rep_s, rep_e, prefix1, prefix2, pows)

    # Spread each distinct word's pieces to its occurrences, then cut per text.
    occ_count = count[inverse]
    total = int(occ_count.sum())
    occ_end = np.cumsum(occ_count)
    src_start = (np.cumsum(count) - count)[inverse]
    flat = ids_csr[np.repeat(src_start - (occ_end - occ_count), occ_count) + np.arange(total)]
    words_before = np.searchsorted(starts, text_end)
    bounds = np.concatenate(([0], occ_end))[words_before].tolist()
    # One numpy slice and tolist per text: faster than one big list sliced per text.
    return [flat[a:b].tolist() for a, b in zip([0] + bounds[:-1], bounds)]

  def _wordpiece(self, chars, starts, ends, prefix1, prefix2, pows):
    """Pieces of each distinct word: (ids of all words back to back, count per word)."""
    _, ipow1, pow2 = pows
    num = len(starts)
    failed = (ends - starts) > self.max_chars  # the reference's [UNK] for long words
    pos = starts.copy()
    active = np.flatnonzero(~failed)
    piece_word, piece_id, piece_rank = [], [], []
    rank = 0
    cont_mix, first_mix = _U64(_CONT * _MIX & _MASK), _U64(_MIX)
    while len(active):
      p = pos[active]
      cont = p > starts[active]
      c0 = chars[p]
      # Longest candidate: what is left of the word, capped by the vocab's longest
      # piece starting with this char.
      length = np.minimum(ends[active] - p, np.where(cont, self.cont_len[c0], self.first_len[c0]))
      entry = np.full(len(active), -1, np.int64)
      # The words still searching, as compact arrays that shrink together; t_end is
      # the end of each one's current candidate.
      todo = np.flatnonzero(length > 0)
      t_p = p[todo]
      t_end = t_p + length[todo]
      t_base = prefix1[t_p]
      t_scale = ipow1[t_p] * np.where(cont[todo], cont_mix, first_mix)
      while len(todo):
        e, hit = self._lookup((prefix1[t_end] - t_base) * t_scale)
        found = np.flatnonzero(hit)
        entry[todo[found]] = e[found]
        t_end -= 1
        more = np.flatnonzero(~hit & (t_end > t_p))
        todo, t_p, t_end, t_base, t_scale = (
            todo[more], t_p[more], t_end[more], t_base[more], t_scale[more])
      ok = entry >= 0
      failed[active[~ok]] = True
      active, p, entry, cont = active[ok], p[ok], entry[ok], cont[ok]
      plen = self._len[entry]
      if not (np.array_equal(self._cont[entry], cont) and np.array_equal(
          prefix2[p + plen] - prefix2[p], self._key2[entry] * pow2[p])):
        raise HashCollision("a word piece shares a hash with a vocab token")
      piece_word.append(active)
      piece_id.append(self._id[entry])
      piece_rank.append(np.full(len(active), rank, np.int64))
      pos[active] = p + plen
      active = active[pos[active] < ends[active]]
      rank += 1
    count = np.ones(num, np.int64)
    if piece_word:
      word = np.concatenate(piece_word)
      count = np.bincount(word, minlength=num)
    count[failed] = 1  # a word WordPiece cannot cover is one [UNK]
    first = np.cumsum(count) - count
    ids = np.full(int(count.sum()), self.unk_id, np.int64)
    if piece_word:
      keep = ~failed[word]
      # A word yields exactly one piece per round until it is done, so the round
      # number is the piece's place in the word.
      ids[first[word[keep]] + np.concatenate(piece_rank)[keep]] = np.concatenate(piece_id)[keep]
    return ids, count
