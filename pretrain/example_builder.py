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
from typing import List, Optional, Tuple

from util import tfrecord_writer

# The pretraining data's file names, one definition for the builder that writes them and
# the runner that reads them: zero-padded shard names that match the original's glob.
SHARD_NAME = "pretrain_data.tfrecord-{:05d}-of-{:05d}"  # .format(shard index, shards)
SHARD_GLOB = "pretrain_data.tfrecord*"

SINGLE_SEGMENT_PROB = 0.1
OVER_TARGET_TO_FIRST_PROB = 0.5
RANDOM_LENGTH_PROB = 0.05
MIN_RANDOM_LENGTH = 5
_NO_TARGET = 100000  # the original's "no limit" for the first segment


class ExampleBuilder:
  """Feed a document stream sentence by sentence; get (first, second) segments back.

  `add_sentence(ids)` and `end_document()` return None or one example as a pair of
  token-id lists (without [CLS]/[SEP]); `ExampleSerializer.serialize()` turns that into
  tf.train.Example bytes. Counters: `tokens_in` (tokens added), `tokens_kept`, `tokens_trimmed`,
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

  def add_sentence(self, ids: List[int]) -> Optional[Tuple[List[int], List[int]]]:
    """Add one sentence's token ids; returns an example when the target is reached."""
    if not ids:
      return None  # an empty sentence never changes an example nor draws a number
    self._sentences.append(ids)
    self._length += len(ids)
    self.tokens_in += len(ids)
    if self._length >= self._target_length:
      return self._create_example()
    return None

  def end_document(self) -> Optional[Tuple[List[int], List[int]]]:
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


# ---------------------------------------------------------------------------
# tf.train.Example bytes of one example, written directly (util/tfrecord_writer's wire
# format) with every id's varint precomputed: the builder's hot loop.


class ExampleSerializer:
  """Serializes (first, second) segments into tf.train.Example bytes.

  `[CLS] A [SEP] B [SEP]` (B and its [SEP] only when B is non-empty), zero-padded to
  `max_length`: int64 features `input_ids`, `input_mask`, `segment_ids`, in that (sorted)
  order, so the bytes equal `tfrecord_writer.encode_example` of the same lists.
  """

  FEATURES = ("input_ids", "input_mask", "segment_ids")

  def __init__(self, max_length, cls_id, sep_id, vocab_size):
    self.max_length = max_length
    self.cls_id = cls_id
    self.sep_id = sep_id
    self._ids = [tfrecord_writer.varint(i) for i in range(vocab_size)]  # every id's varint
    # input_mask and segment_ids always pack max_length one-byte values: everything
    # before their values is the same in every example.
    self._mask_head, self._segment_head = (
        self._feature_entry(k, bytes(max_length))[:-max_length]
        for k in ("input_mask", "segment_ids"))

  def _feature_entry(self, key, packed):
    return tfrecord_writer.feature_entry(key.encode(), 3,  # 3: int64_list
                                         tfrecord_writer.length_delimited(1, packed))

  def serialize(self, first: List[int], second: List[int]) -> bytes:
    """Example bytes; first/second are token ids without [CLS]/[SEP], already trimmed."""
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
    return tfrecord_writer.example_from_entries((
        self._feature_entry("input_ids", input_ids),
        self._mask_head + input_mask,
        self._segment_head + segment_ids))
