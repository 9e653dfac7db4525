"""Gather/scatter at predicted positions and Gumbel-max sampling of generator outputs.

Everything is in-graph with static shapes (TPU): positions are a fixed-size
[batch, max_predictions_per_seq] tensor whose padding rows carry weight 0.
"""
import tensorflow.compat.v1 as tf

from model import modeling

# Added to the logits of tokens that must never be sampled. Gumbel noise as drawn below
# lies within about [-3.1, 20.8], so any logit gap this large is never crossed.
_DISALLOW_ADDER = -1e9


def gather_positions(sequence, positions):
  """sequence [B, L] or [B, L, D], positions int [B, P] -> [B, P] or [B, P, D]."""
  shape = modeling.get_shape_list(sequence, expected_rank=[2, 3])
  batch, length = shape[0], shape[1]
  flat = tf.reshape(sequence, [batch * length] + shape[2:])
  offsets = tf.expand_dims(tf.range(batch, dtype=positions.dtype) * length, -1)
  return tf.gather(flat, positions + offsets)


def scatter_update(sequence, updates, positions, weights=None):
  """Writes `updates` into `sequence` at `positions` where `weights` > 0.

  sequence [B, L] (ids) or [B, L, D]; updates [B, P] or [B, P, D]; positions, weights
  [B, P]. Returns (updated sequence, updated_mask int32 [B, L]). Rows with weight 0
  (prediction padding, whose position is 0 = [CLS]) write nothing; the original instead
  never writes position 0. Done as a one-hot matmul: static shapes, no scatter ops.
  """
  shape = modeling.get_shape_list(sequence, expected_rank=[2, 3])
  length = shape[1]
  onehot = tf.one_hot(positions, length, dtype=tf.float32)          # [B, P, L]
  if weights is not None:
    onehot *= tf.expand_dims(tf.cast(weights > 0, tf.float32), -1)
  count = tf.reduce_sum(onehot, axis=1)                               # [B, L]
  written = tf.minimum(count, 1.0)
  if len(shape) == 2:
    # Ids are < 2**24, so float32 holds them exactly; duplicates (never produced by
    # masking) would be averaged rather than summed.
    values = tf.einsum("bpl,bp->bl", onehot, tf.cast(updates, tf.float32))
    values /= tf.maximum(count, 1.0)
    new = tf.cast(tf.round(values), sequence.dtype)
    out = tf.where(written > 0, new, sequence)
  else:
    values = tf.einsum("bpl,bpd->bld", onehot, tf.cast(updates, tf.float32))
    values /= tf.expand_dims(tf.maximum(count, 1.0), -1)
    w = tf.expand_dims(written, -1)
    out = tf.cast(w * values, sequence.dtype) + tf.cast(1.0 - w, sequence.dtype) * sequence
  return out, tf.cast(written, tf.int32)


def gumbel_max_sample(logits, temperature=1.0, disallow=None, seed=None):
  """One sample per row of softmax(logits / temperature) by the Gumbel-max trick.

  logits [..., V]; disallow: optional bool/0-1 tensor [..., V] of tokens that must never
  be sampled (the original subtracted 1000, which a large enough logit can overcome).
  Returns int32 ids [...]. No gradient flows through the sample.
  """
  logits = tf.cast(logits, tf.float32) / temperature
  if disallow is not None:
    logits = tf.where(tf.cast(disallow, tf.bool),
                      tf.fill(modeling.get_shape_list(logits), _DISALLOW_ADDER), logits)
  u = tf.random.uniform(modeling.get_shape_list(logits), minval=0.0, maxval=1.0, seed=seed)
  gumbel = -tf.log(-tf.log(u + 1e-9) + 1e-9)
  return tf.stop_gradient(tf.argmax(logits + gumbel, axis=-1, output_type=tf.int32))


def replace_with_samples(input_ids, sampled_ids, positions, weights):
  """The discriminator's input and labels.

  Writes sampled_ids [B, P] into the original input_ids [B, L] at the (weighted)
  positions. Returns (fake_input_ids, is_fake int32 [B, L]); is_fake is 1 only where the
  written token differs from the original (a correct sample counts as real).
  """
  fake_ids, written = scatter_update(input_ids, sampled_ids, positions, weights)
  is_fake = written * tf.cast(tf.not_equal(fake_ids, input_ids), tf.int32)
  return tf.stop_gradient(fake_ids), tf.stop_gradient(is_fake)
