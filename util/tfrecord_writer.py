"""TFRecord files and tf.train.Example bytes, written (and read back) without TensorFlow.

The corpus builder writes pretraining shards with it from forked worker processes, and
finetuning caches its features with it; neither wants TensorFlow in the writing
process (importing TF costs seconds and does not survive fork well).

TFRecord framing, per record: uint64 little-endian length, masked CRC32C of those 8
bytes, the data, masked CRC32C of the data (what tf.io.TFRecordWriter writes,
uncompressed). CRC32C comes from `google-crc32c` (C, pinned in requirements.txt).

tf.train.Example encoding: Example{features=1: Features{feature=1: map<string,
Feature>}}; Feature is one of bytes_list=1, float_list=2, int64_list=3; each list holds
`value=1` (packed for floats and ints). Keys are written in sorted order, which is what
protobuf's deterministic serialization does, so `encode_example` gives the same bytes as
`tf.train.Example(...).SerializeToString(deterministic=True)`.
"""
import contextlib
import functools
import struct
from typing import BinaryIO, Iterable, Iterator, Mapping, Optional, Sequence, Union

import google_crc32c

from util import errors
from util import fileio

FeatureValues = Union[Sequence[int], Sequence[float], Sequence[bytes]]


class RecordError(errors.UserError):
  """A TFRecord file that is truncated, corrupt, or holds something else."""


# ---------------------------------------------------------------------------
# Framing.

_MASK_DELTA = 0xA282EAD8  # TFRecord's CRC mask (tensorflow/core/lib/hash/crc32c.h)


def masked_crc32c(data: bytes) -> int:
  """CRC32C of `data`, rotated and offset as TFRecord stores it."""
  crc = google_crc32c.value(data)
  return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def frame(data: bytes) -> bytes:
  """One record as it appears in a TFRecord file.

  Args:
    data: the record (usually tf.train.Example bytes).

  Returns:
    len(data) + 16 bytes: length, its masked CRC, data, the data's masked CRC.
  """
  length = struct.pack("<Q", len(data))
  return (length + struct.pack("<I", masked_crc32c(length)) + data +
          struct.pack("<I", masked_crc32c(data)))


class RecordWriter:
  """Writes records to an open binary file; made by `open_writer`."""

  def __init__(self, f: BinaryIO):
    self._f = f
    self.records = 0  # records written through write(); write_framed cannot count

  def write(self, record: bytes) -> None:
    """Frame and write one record."""
    self._f.write(frame(record))
    self.records += 1

  def write_framed(self, framed: bytes) -> None:
    """Write bytes that are already framed (`frame(...)`, possibly several joined).

    Framing is CPU work: the corpus builder frames in its worker processes and the
    writing process only copies bytes.
    """
    self._f.write(framed)


@contextlib.contextmanager
def open_writer(path: str) -> Iterator[RecordWriter]:
  """A TFRecord file that appears at `path` only when the block completes.

  Writes go to a temporary sibling (`.tmp-*`, which no `*.tfrecord*` glob matches) that
  is renamed when the block ends without an exception and removed otherwise. `path`
  may be local or any `scheme://` path (util/fileio).

  Args:
    path: the final file name.

  Yields:
    a RecordWriter.
  """
  with fileio.atomic_write(path, "wb") as f:
    yield RecordWriter(f)


def write_records(path: str, records: Iterable[bytes]) -> int:
  """Write `records` (unframed) to a TFRecord file atomically; returns their number."""
  with open_writer(path) as w:
    for r in records:
      w.write(r)
  return w.records


def read_records(path: str, limit: Optional[int] = None) -> Iterator[bytes]:
  """The records of an uncompressed TFRecord file, CRCs checked (no TensorFlow).

  Args:
    path: local or `scheme://` path.
    limit: stop after this many records (None: all).

  Yields:
    each record's data.

  Raises:
    RecordError: truncated file or bad checksum, naming the file and record index.
  """
  n = 0
  with fileio.open_file(path, "rb") as f:
    while limit is None or n < limit:
      head = f.read(12)
      if not head:
        return
      if len(head) < 12:
        raise RecordError(f"{path}: truncated record header after {n} records")
      length, = struct.unpack("<Q", head[:8])
      if struct.unpack("<I", head[8:])[0] != masked_crc32c(head[:8]):
        raise RecordError(f"{path}: bad length checksum in record {n} "
                          "(not an uncompressed TFRecord file?)")
      data = f.read(length)
      tail = f.read(4)
      if len(data) < length or len(tail) < 4:
        raise RecordError(f"{path}: truncated record {n}")
      if struct.unpack("<I", tail)[0] != masked_crc32c(data):
        raise RecordError(f"{path}: bad data checksum in record {n}")
      n += 1
      yield data


# ---------------------------------------------------------------------------
# tf.train.Example encoding (protobuf wire format, written directly: ~20x faster than
# building protos, and no TensorFlow or protobuf import).


def varint(n: int) -> bytes:
  """Protobuf base-128 varint of a non-negative int below 2**64."""
  if n < _SMALL_LIMIT:
    return _SMALL_VARINTS[n]
  return _varint(n)


def _varint(n: int) -> bytes:
  out = bytearray()
  while True:
    b = n & 0x7F
    n >>= 7
    if n:
      out.append(b | 0x80)
    else:
      out.append(b)
      return bytes(out)


# Tags and lengths below 2**14 (one or two bytes) come from a table: the builder encodes
# several of them per example.
_SMALL_LIMIT = 1 << 14
_SMALL_VARINTS = [_varint(i) for i in range(_SMALL_LIMIT)]


def length_delimited(number: int, payload: bytes) -> bytes:
  """A protobuf field of wire type 2 (bytes, sub-message or packed list)."""
  return varint(number << 3 | 2) + varint(len(payload)) + payload


# Feature's oneof field numbers.
_BYTES_LIST, _FLOAT_LIST, _INT64_LIST = 1, 2, 3


def feature_entry(key: bytes, kind: int, values_payload: bytes) -> bytes:
  """One `Features.feature` map entry, ready to concatenate into Features.

  Args:
    key: the feature name, UTF-8.
    kind: 1 bytes_list, 2 float_list, 3 int64_list.
    values_payload: the list message's body (for ints and floats: one packed field).
  """
  feature = length_delimited(kind, values_payload)
  return length_delimited(1, _key_field(key) + length_delimited(2, feature))


@functools.lru_cache(maxsize=4096)
def _key_field(key: bytes) -> bytes:
  return length_delimited(1, key)  # the same few names in every example


def example_from_entries(entries: Iterable[bytes]) -> bytes:
  """tf.train.Example bytes from `feature_entry` results (in the order given)."""
  return length_delimited(1, b"".join(entries))


def _kind(name: str, values) -> int:
  """Which list a feature's values go into; raises TypeError on mixed or other types."""
  if isinstance(values, (str, bytes)):
    raise TypeError(f"feature {name!r}: expected a list of values, got a single "
                    f"{type(values).__name__}")
  kinds = set()
  for v in values:
    if isinstance(v, (bytes, str)):
      kinds.add(_BYTES_LIST)
    elif isinstance(v, float) or type(v).__name__.startswith("float"):
      kinds.add(_FLOAT_LIST)  # Python float, numpy float16/32/64
    elif hasattr(v, "__index__"):
      kinds.add(_INT64_LIST)  # int, bool, numpy integers
    else:
      raise TypeError(f"feature {name!r}: cannot store {type(v).__name__} {v!r}")
  if len(kinds) > 1:
    if kinds == {_INT64_LIST, _FLOAT_LIST}:
      return _FLOAT_LIST  # [1, 0.5] is a float feature, as tf.train.FloatList takes it
    raise TypeError(f"feature {name!r} mixes text and numbers")
  return kinds.pop() if kinds else _INT64_LIST  # an empty list: an empty int64 list


def encode_example(features: Mapping[str, FeatureValues]) -> bytes:
  """tf.train.Example bytes for a dict of feature lists.

  Args:
    features: name -> list of ints (int64_list), of floats (float_list, stored as
      float32 like tf.train.FloatList) or of bytes/str (bytes_list, str as UTF-8).
      numpy arrays work too. An empty list is stored as an empty int64 list.

  Returns:
    the serialized Example; equal to protobuf's deterministic serialization (keys
    sorted), readable by tf.io.parse_single_example.

  Raises:
    TypeError: a value that is not a number or bytes, or a list mixing text and numbers.
    ValueError: an integer outside the int64 range.
  """
  entries = []
  for name in sorted(features):
    values = features[name]
    kind = _kind(name, values)
    if kind == _INT64_LIST:
      packed = bytearray()
      for v in values:
        v = int(v)
        if not -(1 << 63) <= v < 1 << 63:
          raise ValueError(f"feature {name!r}: {v} is outside the int64 range")
        packed += varint(v & 0xFFFFFFFFFFFFFFFF)  # negatives: two's complement, 10 bytes
      body = length_delimited(1, bytes(packed)) if packed else b""
    elif kind == _FLOAT_LIST:
      body = length_delimited(1, struct.pack(f"<{len(values)}f", *map(float, values)))
    else:
      body = b"".join(length_delimited(1, v.encode("utf-8") if isinstance(v, str) else v)
                      for v in values)
    entries.append(feature_entry(name.encode("utf-8"), kind, body))
  return example_from_entries(entries)


def _read_varint(buf: bytes, i: int):
  shift = result = 0
  while True:
    b = buf[i]
    i += 1
    result |= (b & 0x7F) << shift
    if not b & 0x80:
      return result, i
    shift += 7


def _fields(buf: bytes):
  """(field number, wire type, value) of a protobuf message's fields."""
  i = 0
  while i < len(buf):
    key, i = _read_varint(buf, i)
    number, wire = key >> 3, key & 7
    if wire == 2:
      size, i = _read_varint(buf, i)
      yield number, wire, buf[i:i + size]
      i += size
    elif wire == 0:
      value, i = _read_varint(buf, i)
      yield number, wire, value
    elif wire == 5:
      yield number, wire, buf[i:i + 4]
      i += 4
    else:
      raise ValueError(f"unexpected wire type {wire} in Example bytes")


def decode_example(data: bytes) -> dict:
  """Decode tf.train.Example bytes into {name: list of int | float | bytes} (no TF).

  Packed and unpacked lists are both read. For inspection and tests, not for speed.

  Raises:
    ValueError: the bytes are not a tf.train.Example.
  """
  out = {}
  for _, _, features in _fields(data):
    for _, _, entry in _fields(features):
      name, values = None, []
      for num, _, payload in _fields(entry):
        if num == 1:
          name = bytes(payload).decode()
        elif num == 2:
          for kind, _, lst in _fields(payload):
            for _, wire, v in _fields(lst):
              if kind == _BYTES_LIST:
                values.append(bytes(v))
              elif kind == _FLOAT_LIST:
                values.extend(struct.unpack(f"<{len(v) // 4}f", v))
              elif kind != _INT64_LIST:
                raise ValueError(f"feature {name!r}: unknown list type {kind}")
              elif wire == 2:
                j = 0
                while j < len(v):
                  x, j = _read_varint(v, j)
                  values.append(x - (1 << 64) if x >= 1 << 63 else x)
              else:
                values.append(v - (1 << 64) if v >= 1 << 63 else v)
      out[name] = values
  return out
