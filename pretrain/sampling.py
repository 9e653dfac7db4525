"""Gumbel-max sampling of generator outputs and the discriminator's fake inputs.

Everything is in-graph with static shapes (TPU): positions are a fixed-size
[batch, max_predictions_per_seq] tensor whose padding rows carry weight 0. Reading and
writing at positions is model/positions.py (integer-exact for ids).
"""
import tensorflow.compat.v1 as tf

from model import modeling
from model import positions as model_positions

# Added to the logits of tokens that must never be sampled. Gumbel noise as drawn below
# lies within about [-3.1, 20.8], so any logit gap this large is never crossed.
_DISALLOW_ADDER = -1e9


def gumbel_noise(shape, seed=None):
  """Standard Gumbel noise -log(-log(u)) of `shape` (float32), u uniform in [0, 1).

  The one noise formula of both draws: masking (top-k of noise = sampling positions
  without replacement) and sampling from the generator (Gumbel-max). The 1e-9 terms
  keep the logs finite, as in the original.
  """
  u = tf.random.uniform(shape, minval=0.0, maxval=1.0, seed=seed)
  return -tf.log(-tf.log(u + 1e-9) + 1e-9)


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
  noise = gumbel_noise(modeling.get_shape_list(logits), seed=seed)
  return tf.stop_gradient(tf.argmax(logits + noise, axis=-1, output_type=tf.int32))


def replace_with_samples(input_ids, sampled_ids, positions, weights):
  """The discriminator's input and labels.

  Writes sampled_ids [B, P] into the original input_ids [B, L] at the (weighted)
  positions. Returns (fake_input_ids, is_fake int32 [B, L]); is_fake is 1 only where the
  written token differs from the original (a correct sample counts as real).
  """
  fake_ids, written = model_positions.scatter_update(input_ids, sampled_ids, positions,
                                                    weights)
  is_fake = written * tf.cast(tf.not_equal(fake_ids, input_ids), tf.int32)
  return tf.stop_gradient(fake_ids), tf.stop_gradient(is_fake)
