"""The original ELECTRA pretraining-example algorithm, and its tf.train.Example bytes.

Consecutive sentences (token-id lists) of a document fill an example up to a target
length; the example is then split at a sentence boundary into segments A and B and
laid out as `[CLS] A [SEP] B [SEP]`, zero-padded to `max_length`. The probabilities
and the trimming rule are those of google-research/electra's
build_pretraining_dataset.py (the data distribution the published models saw):

- 10% of examples are a single segment (A takes every sentence);
- otherwise A aims at `(target_length - 3) // 2` tokens; a sentence that would push A
  over that target still joins A with probability 1/2 while B is empty;
- A is cut to `max_length - 2` tokens, B to `max_length - len(A) - 3` (what is cut is
  dropped, not carried over);
- after each example, with probability 5% the next target length is drawn uniformly
  from [5, max_length], otherwise it is max_length.

One deliberate fix (docs/corpus.md): in the original, once a sentence has gone to B a
later short sentence can still join A, so text is reordered inside an example. Here
every sentence after the first one placed in B goes to B. The random draws happen at
exactly the same points, so only the placement of those sentences changes;
`original_sentence_order=True` restores the original behaviour.
"""
import random

SINGLE_SEGMENT_PROB = 0.1
OVER_TARGET_TO_FIRST_PROB = 0.5
RANDOM_LENGTH_PROB = 0.05
MIN_RANDOM_LENGTH = 5
_NO_TARGET = 100000  # the original's "no limit" for the first segment


class ExampleBuilder:
  """Feed a document stream sentence by sentence; get (first, second) segments back.

  `add_sentence(ids)` and `end_document()` return None or one example as a pair of
  token-id lists (without [CLS]/[SEP]); `layout()` / `serialize()` turn that into the
  features. Counters: `tokens_in` (tokens added), `tokens_kept`, `tokens_trimmed`,
  `examples`, `single_segment`.
  """

  def __init__(self, max_length, rng=None, original_sentence_order=False):
    if max_length < 5:
      raise ValueError(f"max_length must be at least 5, got {max_length}")
    self.max_length = max_length
    self.rng = rng if rng is not None else random.Random()
    self.original_sentence_order = original_sentence_order
    self._sentences = []
    self._length = 0
    self._target_length = max_length
    self.tokens_in = 0
    self.tokens_kept = 0
    self.tokens_trimmed = 0
    self.examples = 0
    self.single_segment = 0

  def add_sentence(self, ids):
    """Add one line's token ids; returns an example when the target is reached."""
    if not ids:
      return None  # an empty sentence never changes an example nor draws a number
    self._sentences.append(ids)
    self._length += len(ids)
    self.tokens_in += len(ids)
    if self._length >= self._target_length:
      return self._create_example()
    return None

  def end_document(self):
    """A document boundary: whatever has been gathered becomes an example."""
    if self._length:
      return self._create_example()
    return None

  def _create_example(self):
    rng = self.rng
    if rng.random() < SINGLE_SEGMENT_PROB:
      first_target = _NO_TARGET
    else:
      first_target = (self._target_length - 3) // 2  # room for [CLS] [SEP] [SEP]
    first, second = [], []
    for sentence in self._sentences:
      if not first:
        first.extend(sentence)
      elif second and not self.original_sentence_order:
        second.extend(sentence)  # keep the text in order once B has begun
      elif (len(first) + len(sentence) < first_target or
            (not second and len(first) < first_target and
             rng.random() < OVER_TARGET_TO_FIRST_PROB)):
        first.extend(sentence)
      else:
        second.extend(sentence)
    total = len(first) + len(second)
    first = first[:self.max_length - 2]
    second = second[:max(0, self.max_length - len(first) - 3)]
    kept = len(first) + len(second)
    self.tokens_kept += kept
    self.tokens_trimmed += total - kept
    self.examples += 1
    if not second:
      self.single_segment += 1

    self._sentences = []
    self._length = 0
    if rng.random() < RANDOM_LENGTH_PROB:
      self._target_length = rng.randint(MIN_RANDOM_LENGTH, self.max_length)
    else:
      self._target_length = self.max_length
    return first, second


def layout(first, second, max_length, cls_id, sep_id):
  """`[CLS] A [SEP] B [SEP]` + zero padding: (input_ids, input_mask, segment_ids)."""
  input_ids = [cls_id] + first + [sep_id]
  segment_ids = [0] * len(input_ids)
  if second:
    input_ids += second + [sep_id]
    segment_ids += [1] * (len(second) + 1)
  n = len(input_ids)
  pad = max_length - n
  return input_ids + [0] * pad, [1] * n + [0] * pad, segment_ids + [0] * pad


# ---------------------------------------------------------------------------
# tf.train.Example serialization without TensorFlow.
#
# Example{features=1: Features{feature=1: map<string, Feature>}}, Feature{int64_list=3:
# Int64List{value=1 packed varints}}. Writing the bytes directly is ~20x faster than
# building protos and keeps TF out of the worker processes; tf.io.parse_example reads
# them (tests/test_build_dataset.py checks).


def _varint(n):
  out = bytearray()
  while True:
    b = n & 0x7F
    n >>= 7
    if n:
      out.append(b | 0x80)
    else:
      out.append(b)
      return bytes(out)


def _field(number, payload):
  """A length-delimited field (wire type 2)."""
  return _varint(number << 3 | 2) + _varint(len(payload)) + payload


class ExampleSerializer:
  """Serializes (first, second) segments into tf.train.Example bytes."""

  FEATURES = ("input_ids", "input_mask", "segment_ids")

  def __init__(self, max_length, cls_id, sep_id, vocab_size):
    self.max_length = max_length
    self.cls_id = cls_id
    self.sep_id = sep_id
    self._ids = [_varint(i) for i in range(vocab_size)]  # varint of every id
    self._keys = {k: _field(1, k.encode()) for k in self.FEATURES}

  def _feature_entry(self, key, packed):
    int64_list = _field(1, packed)           # Int64List.value, packed
    feature = _field(3, int64_list)          # Feature.int64_list
    entry = self._keys[key] + _field(2, feature)  # map entry: key=1, value=2
    return _field(1, entry)                  # Features.feature

  def serialize(self, first, second):
    L = self.max_length
    ids = self._ids
    n_a = len(first) + 2
    n = n_a + (len(second) + 1 if second else 0)
    pad = L - n
    parts = [ids[self.cls_id]]
    parts.extend(map(ids.__getitem__, first))
    parts.append(ids[self.sep_id])
    if second:
      parts.extend(map(ids.__getitem__, second))
      parts.append(ids[self.sep_id])
    input_ids = b"".join(parts) + b"\x00" * pad
    input_mask = b"\x01" * n + b"\x00" * pad
    segment_ids = b"\x00" * n_a + b"\x01" * (n - n_a) + b"\x00" * pad
    features = (self._feature_entry("input_ids", input_ids) +
                self._feature_entry("input_mask", input_mask) +
                self._feature_entry("segment_ids", segment_ids))
    return _field(1, features)


def parse_example(data):
  """Decode tf.train.Example bytes of int64 features into {name: [ints]} (no TF).

  Handles packed and unpacked int64 lists; enough for inspection and tests.
  """
  def read_varint(buf, i):
    shift = result = 0
    while True:
      b = buf[i]
      i += 1
      result |= (b & 0x7F) << shift
      if not b & 0x80:
        return result, i
      shift += 7

  def fields(buf):
    i = 0
    while i < len(buf):
      key, i = read_varint(buf, i)
      number, wire = key >> 3, key & 7
      if wire == 2:
        size, i = read_varint(buf, i)
        yield number, wire, buf[i:i + size]
        i += size
      elif wire == 0:
        value, i = read_varint(buf, i)
        yield number, wire, value
      else:
        raise ValueError(f"unexpected wire type {wire} in Example bytes")

  out = {}
  for _, _, features in fields(data):
    for _, _, entry in fields(features):
      name, values = None, []
      for num, _, payload in fields(entry):
        if num == 1:
          name = bytes(payload).decode()
        elif num == 2:
          for kind, _, lst in fields(payload):
            if kind != 3:
              raise ValueError(f"feature {name!r} is not an int64 list")
            for vnum, wire, v in fields(lst):
              if wire == 2:
                j = 0
                while j < len(v):
                  x, j = read_varint(v, j)
                  values.append(x - (1 << 64) if x >= 1 << 63 else x)
              else:
                values.append(v)
      out[name] = values
  return out
