"""util/tfrecord_writer.py against TensorFlow's own writer and parser."""
import random

import numpy as np
import pytest
import tensorflow as tf

from pretrain import example_builder
from util import tfrecord_writer

# Values that exercise the varint and float encodings: 0, one-byte and multi-byte
# varints, int64 extremes, negatives (ten-byte two's complement), float32 rounding.
INTS = [0, 1, 127, 128, 300, 16777217, 2**62, 2**63 - 1, -1, -(2**63), -35000]
FLOATS = [0.0, 1.5, -2.25, 0.1, 3.4e38, -1e-30, float("inf")]


def _examples(n, seed=0):
  """Feature dicts shaped like finetuning features: fixed-length ids, a label, a score."""
  rng = random.Random(seed)
  out = []
  for _ in range(n):
    out.append({
        "input_ids": [rng.randrange(35000) for _ in range(16)],
        "label_ids": [rng.randrange(-1, 3)],
        "scores": [rng.uniform(-5, 5) for _ in range(3)],
        "guid": [f"id-{rng.randrange(1000)}".encode()],
    })
  return out


def _tf_example(features):
  """The same features built as a proto by TensorFlow."""
  feats = {}
  for k, v in features.items():
    if isinstance(v[0], bytes):
      feats[k] = tf.train.Feature(bytes_list=tf.train.BytesList(value=v))
    elif isinstance(v[0], float):
      feats[k] = tf.train.Feature(float_list=tf.train.FloatList(value=v))
    else:
      feats[k] = tf.train.Feature(int64_list=tf.train.Int64List(value=v))
  return tf.train.Example(features=tf.train.Features(feature=feats))


def test_encode_example_equals_protobuf_deterministic_bytes():
  examples = _examples(20) + [{"ints": INTS, "floats": FLOATS, "text": [b"", "한국어"]}]
  for features in examples:
    want = _tf_example({k: [x.encode() if isinstance(x, str) else x for x in v]
                        for k, v in features.items()}).SerializeToString(deterministic=True)
    assert tfrecord_writer.encode_example(features) == want


def test_tensorflow_reads_what_write_records_writes(tmp_path):
  examples = _examples(50) + [{"input_ids": (INTS * 2)[:16], "label_ids": [INTS[-1]],
                               "scores": FLOATS[:3], "guid": [b"edge"]}]
  path = str(tmp_path / "features.tfrecord")
  n = tfrecord_writer.write_records(path, map(tfrecord_writer.encode_example, examples))
  assert n == len(examples)
  spec = {"input_ids": tf.io.FixedLenFeature([16], tf.int64),
          "label_ids": tf.io.FixedLenFeature([1], tf.int64),
          "scores": tf.io.FixedLenFeature([3], tf.float32),
          "guid": tf.io.FixedLenFeature([1], tf.string)}
  got = [tf.io.parse_single_example(r, spec) for r in tf.data.TFRecordDataset([path])]
  assert len(got) == len(examples)
  for want, parsed in zip(examples, got):
    assert parsed["input_ids"].numpy().tolist() == want["input_ids"]
    assert parsed["label_ids"].numpy().tolist() == want["label_ids"]
    # Stored as float32, as tf.train.FloatList does.
    np.testing.assert_array_equal(parsed["scores"].numpy(),
                                  np.asarray(want["scores"], np.float32))
    assert parsed["guid"].numpy().tolist() == want["guid"]
  # And the pure-Python reader agrees with TensorFlow's.
  decoded = [tfrecord_writer.decode_example(r) for r in tfrecord_writer.read_records(path)]
  for want, d in zip(examples, decoded):
    assert d["input_ids"] == want["input_ids"] and d["guid"] == want["guid"]
    assert d["scores"] == pytest.approx(want["scores"], rel=1e-6)


def test_framing_equals_tensorflow_writer(tmp_path):
  records = [tfrecord_writer.encode_example(f) for f in _examples(30, seed=1)]
  records += [b"", b"\x00" * 1000, bytes(range(256)) * 300]  # empty, zeros, > 64 KB
  ours = str(tmp_path / "ours.tfrecord")
  theirs = str(tmp_path / "theirs.tfrecord")
  tfrecord_writer.write_records(ours, records)
  with tf.io.TFRecordWriter(theirs) as w:
    for r in records:
      w.write(r)
  assert open(ours, "rb").read() == open(theirs, "rb").read()
  assert list(tfrecord_writer.read_records(theirs)) == records


def test_numpy_values_and_types():
  ids = np.array([3, 1, 4, 1, 5], np.int32)
  weights = np.array([0.5, 0.25], np.float32)
  data = tfrecord_writer.encode_example({"ids": ids, "w": weights, "n": [np.int64(7)],
                                         "mixed": [1, 0.5]})
  assert tfrecord_writer.decode_example(data) == {
      "ids": [3, 1, 4, 1, 5], "w": [0.5, 0.25], "n": [7], "mixed": [1.0, 0.5]}
  with pytest.raises(TypeError, match="'bad'"):
    tfrecord_writer.encode_example({"bad": [1, b"x"]})
  with pytest.raises(TypeError, match="single str"):
    tfrecord_writer.encode_example({"text": "not a list"})
  with pytest.raises(ValueError, match="int64 range"):
    tfrecord_writer.encode_example({"big": [2**63]})


def test_pretraining_serializer_equals_generic_encoding():
  """The builder's fast path writes the bytes encode_example gives for the same lists."""
  L, cls, sep = 32, 2, 3
  ser = example_builder.ExampleSerializer(L, cls, sep, vocab_size=35000)
  rng = random.Random(5)
  for _ in range(50):
    first = [rng.randrange(5, 35000) for _ in range(rng.randrange(1, 15))]
    second = [rng.randrange(5, 35000) for _ in range(rng.randrange(0, 14))]
    ids = [cls] + first + [sep] + (second + [sep] if second else [])
    seg = [0] * (len(first) + 2) + [1] * (len(ids) - len(first) - 2)
    pad = [0] * (L - len(ids))
    want = tfrecord_writer.encode_example({"input_ids": ids + pad,
                                           "input_mask": [1] * len(ids) + pad,
                                           "segment_ids": seg + pad})
    assert ser.serialize(first, second) == want


def test_atomic_writer_local_and_remote(tmp_path):
  path = tmp_path / "out.tfrecord"
  with pytest.raises(RuntimeError):
    with tfrecord_writer.open_writer(str(path)) as w:
      w.write(b"partial")
      raise RuntimeError("interrupted")
  assert list(tmp_path.iterdir()) == []  # neither the file nor its temporary
  with tfrecord_writer.open_writer(str(path)) as w:
    w.write(b"a")
    assert not path.exists()  # only under a temporary name until the block ends
    w.write_framed(tfrecord_writer.frame(b"b") + tfrecord_writer.frame(b"c"))
  assert w.records == 1
  assert list(tfrecord_writer.read_records(str(path))) == [b"a", b"b", b"c"]
  # A scheme:// path goes through TensorFlow's gfile (ram:// is in-memory).
  remote = "ram://tfrecord_writer_test/dir/out.tfrecord"
  tf.io.gfile.makedirs("ram://tfrecord_writer_test/dir")
  tfrecord_writer.write_records(remote, [b"x", b"yz"])
  assert [r.numpy() for r in tf.data.TFRecordDataset([remote])] == [b"x", b"yz"]
  assert tf.io.gfile.listdir("ram://tfrecord_writer_test/dir") == ["out.tfrecord"]


def test_corrupt_and_truncated_files_are_named(tmp_path):
  path = tmp_path / "r.tfrecord"
  tfrecord_writer.write_records(str(path), [b"hello", b"world"])
  raw = path.read_bytes()
  cases = {"bad data checksum in record 1": raw[:-6] + b"W" + raw[-5:],
           "bad length checksum in record 0": b"\x06" + raw[1:],
           "truncated record 1": raw[:-2],
           "truncated record header after 1 records": raw[:21 + 5]}
  for why, data in cases.items():
    path.write_bytes(data)
    with pytest.raises(tfrecord_writer.RecordError, match=why) as e:
      list(tfrecord_writer.read_records(str(path)))
    assert str(path) in str(e.value)
