"""model/positions.py: gather and scatter at positions, exact for any int32 id."""
import numpy as np
import tensorflow.compat.v1 as tf

from model import positions


def _original_scatter_update(seq, updates, pos):
  """The original ELECTRA pretrain_helpers.scatter_update, restated in numpy: updates
  summed per position, integer-divided by their count (floor), position 0 never written."""
  out, written = seq.copy(), np.zeros(seq.shape[:2], np.int64)
  for r in range(seq.shape[0]):
    sums, counts = {}, {}
    for j, p in enumerate(pos[r]):
      sums[p] = sums.get(p, 0) + updates[r, j]
      counts[p] = counts.get(p, 0) + 1
    for p in sums:
      if p == 0:
        continue
      out[r, p] = sums[p] // counts[p] if seq.dtype.kind == "i" else sums[p] / counts[p]
      written[r, p] = 1
  return out, written


def _run(*tensors):
  with tf.Session() as sess:
    return sess.run(list(tensors))


def test_gather_and_scatter_match_numpy():
  rng = np.random.RandomState(0)
  seq = rng.randint(5, 100, size=[3, 10]).astype(np.int32)
  pos = np.array([[1, 4, 0], [9, 2, 3], [0, 0, 0]], np.int32)
  w = np.array([[1, 1, 0], [1, 1, 1], [0, 0, 0]], np.float32)
  upd = rng.randint(100, 200, size=[3, 3]).astype(np.int32)
  vec = rng.randn(3, 10, 4).astype(np.float32)
  vupd = rng.randn(3, 3, 4).astype(np.float32)
  with tf.Graph().as_default():
    g, gv, (s, m), (sv, mv) = _run(
        positions.gather_positions(tf.constant(seq), tf.constant(pos)),
        positions.gather_positions(tf.constant(vec), tf.constant(pos)),
        positions.scatter_update(tf.constant(seq), tf.constant(upd), tf.constant(pos),
                                 tf.constant(w)),
        positions.scatter_update(tf.constant(vec), tf.constant(vupd), tf.constant(pos),
                                 tf.constant(w)))
  np.testing.assert_array_equal(g, np.take_along_axis(seq, pos, 1))
  np.testing.assert_array_equal(gv, vec[np.arange(3)[:, None], pos])
  exp, expv, expm = seq.copy(), vec.copy(), np.zeros_like(seq)
  for r in range(3):
    for j in range(3):
      if w[r, j]:
        exp[r, pos[r, j]] = upd[r, j]
        expv[r, pos[r, j]] = vupd[r, j]
        expm[r, pos[r, j]] = 1
  np.testing.assert_array_equal(s, exp)
  np.testing.assert_array_equal(m, expm)
  np.testing.assert_array_equal(mv, expm)
  np.testing.assert_array_equal(sv, expv)


def test_ids_beyond_float32_precision_are_written_exactly():
  """2**24 + 1 has no float32 representation: a float one-hot matmul (as on TPU in bfloat16
  passes, or TF32 on GPUs, already for ids above 256 / 2048) would write a neighbour."""
  big = [2 ** 24 + 1, 2 ** 31 - 1, 35001, 257, 2049]
  seq = np.zeros([1, 8], np.int32)
  pos = np.array([[1, 2, 3, 4, 5]], np.int32)
  upd = np.array([big], np.int32)
  with tf.Graph().as_default():
    (out, written), got = _run(
        positions.scatter_update(tf.constant(seq), tf.constant(upd), tf.constant(pos)),
        positions.gather_positions(tf.constant(upd), tf.constant([[4, 0]], tf.int32)))
  assert out[0, 1:6].tolist() == big
  assert written[0].tolist() == [0, 1, 1, 1, 1, 1, 0, 0]
  assert got[0].tolist() == [2049, 2 ** 24 + 1]


def test_duplicate_positions_behave_as_the_original():
  """Duplicates (only the original's with-replacement masking draws them): sum // count."""
  rng = np.random.RandomState(5)
  seq = rng.randint(5, 30000, size=[64, 16]).astype(np.int32)
  pos = rng.randint(1, 16, size=[64, 12]).astype(np.int32)   # many duplicates
  upd = rng.randint(5, 30000, size=[64, 12]).astype(np.int32)
  want, want_written = _original_scatter_update(seq, upd, pos)
  with tf.Graph().as_default():
    ((out, written),) = _run(positions.scatter_update(tf.constant(seq), tf.constant(upd),
                                                      tf.constant(pos)))
  assert (np.bincount(pos[0], minlength=16) > 1).any()
  np.testing.assert_array_equal(out, want)
  np.testing.assert_array_equal(written, want_written)


def test_no_float_op_carries_ids():
  """Every op between the int32 inputs and the written ids is integer: no Cast to float,
  no MatMul/Einsum (the ops TPU and TF32 GPUs round)."""
  g = tf.Graph()
  with g.as_default():
    seq = tf.placeholder(tf.int32, [4, 32])
    upd = tf.placeholder(tf.int32, [4, 6])
    pos = tf.placeholder(tf.int32, [4, 6])
    w = tf.placeholder(tf.float32, [4, 6])
    positions.scatter_update(seq, upd, pos, w)
    positions.gather_positions(seq, pos)
  types = {op.type for op in g.get_operations()}
  assert not types & {"MatMul", "BatchMatMulV2", "Einsum"}, types
  for op in g.get_operations():
    if op.type == "Cast":
      assert op.outputs[0].dtype in (tf.int32, tf.bool), op.name
