"""Reading and writing a batch of sequences at given positions, with static shapes.

Shape glossary: B batch, L sequence length, P positions per sequence, D feature depth.

The masked-LM generator, the discriminator's fake inputs and the finetuning tagging and
QA heads all need "the values at these positions" and "these values written at these
positions". Both are exact for every value: ids travel through integer ops only. A float
one-hot matmul would not be: TPUs run float32 matmuls in bfloat16 passes and Ampere GPUs
in TF32 by default, which turns an id above 256 (bfloat16) or 2048 (TF32) into a
neighbouring id (see docs/pretraining.md, "Ids stay integers").
"""
from typing import Optional, Tuple

import tensorflow.compat.v1 as tf

from model import modeling


def _flat_positions(positions: tf.Tensor, length) -> tf.Tensor:
  """[B, P] positions -> [B * P] indices into the batch flattened to [B * L]."""
  batch = modeling.get_shape_list(positions, expected_rank=2)[0]
  offsets = tf.expand_dims(tf.range(batch, dtype=positions.dtype) * length, -1)
  return tf.reshape(positions + offsets, [-1])


def gather_positions(sequence: tf.Tensor, positions: tf.Tensor) -> tf.Tensor:
  """The values of each sequence at its positions.

  Args:
    sequence: [B, L] or [B, L, D] tensor of any dtype.
    positions: int32 [B, P], each in [0, L).

  Returns:
    [B, P] or [B, P, D], the dtype of `sequence`.
  """
  shape = modeling.get_shape_list(sequence, expected_rank=[2, 3])
  batch, length = shape[0], shape[1]
  flat = tf.reshape(sequence, [batch * length] + shape[2:])                # [B*L(, D)]
  gathered = tf.gather(flat, _flat_positions(positions, length))           # [B*P(, D)]
  num_positions = modeling.get_shape_list(positions)[1]
  return tf.reshape(gathered, [batch, num_positions] + shape[2:])


def scatter_update(sequence: tf.Tensor, updates: tf.Tensor, positions: tf.Tensor,
                   weights: Optional[tf.Tensor] = None) -> Tuple[tf.Tensor, tf.Tensor]:
  """Writes `updates` into `sequence` at `positions`, where `weights` > 0.

  A position named twice (only the original ELECTRA's with-replacement masking draws
  such duplicates) receives the sum of its updates divided by their count, floored for
  integer sequences: exactly the original's `scatter_update`. Rows with weight 0 write
  nothing (prediction padding, whose position is 0 = [CLS]; the original instead never
  writes position 0, which comes to the same for its inputs).

  Args:
    sequence: [B, L] int32 ids or [B, L, D] floats.
    updates: [B, P] or [B, P, D], the dtype of `sequence`.
    positions: int32 [B, P], each in [0, L).
    weights: optional [B, P]; rows with weight <= 0 are not written.

  Returns:
    (updated sequence like `sequence`, int32 [B, L] 1 where something was written).
  """
  shape = modeling.get_shape_list(sequence, expected_rank=[2, 3])
  batch, length = shape[0], shape[1]
  depth = shape[2:]
  flat_index = tf.expand_dims(_flat_positions(positions, length), -1)      # [B*P, 1]
  write = tf.ones_like(positions, dtype=tf.int32)                           # [B, P]
  if weights is not None:
    write = tf.cast(weights > 0, tf.int32)
  flat_write = tf.reshape(write, [-1])                                      # [B*P]
  count = tf.scatter_nd(flat_index, flat_write, [batch * length])          # [B*L]
  count = tf.reshape(count, [batch, length])                                # [B, L]

  updates = tf.cast(updates, sequence.dtype)
  kept = tf.reshape(write, modeling.get_shape_list(write) + [1] * len(depth))
  flat_updates = tf.reshape(updates * tf.cast(kept, sequence.dtype),
                            [-1] + depth)                                   # [B*P(, D)]
  summed = tf.scatter_nd(flat_index, flat_updates, [batch * length] + depth)
  summed = tf.reshape(summed, [batch, length] + depth)                      # [B, L(, D)]
  divisor = tf.reshape(tf.maximum(count, 1), [batch, length] + [1] * len(depth))
  if sequence.dtype.is_integer:
    values = tf.math.floordiv(summed, tf.cast(divisor, sequence.dtype))
  else:
    values = summed / tf.cast(divisor, sequence.dtype)
  written = tf.minimum(count, 1)
  where = tf.reshape(written > 0, [batch, length] + [1] * len(depth))
  if depth:
    where = tf.broadcast_to(where, shape)
  return tf.where(where, values, sequence), written
