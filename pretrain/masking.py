"""Choosing and masking the positions the generator predicts (ELECTRA's masking).

About `mask_prob` of each sequence's maskable tokens (not [CLS], [SEP], [MASK], [PAD],
not padding) are chosen, at most `max_predictions_per_seq`; 85% of the chosen positions
become [MASK] and 15% keep their original token. There is no random-token replacement:
the generator provides the fakes. All in-graph, static shapes.

Differences from the original `pretrain_helpers.mask` (see docs/pretraining.md):
- positions are drawn *without* replacement (Gumbel top-k); the original's
  `tf.random.categorical` draws with replacement, so duplicates silently lowered the
  masked share and double-counted those positions in the loss;
- the count is mask_prob x maskable tokens (the original used all non-padding tokens,
  including [CLS]/[SEP]), still clipped to [1, max_predictions_per_seq] and to the
  number of maskable tokens.
"""
import collections
import functools

import tensorflow.compat.v1 as tf

import configure_pretraining
from model import modeling
from pretrain import sampling

# Fraction of chosen positions replaced by [MASK]; the rest keep the original token.
MASK_TOKEN_PROB = 0.85
SPECIAL_TOKENS = ("[PAD]", "[CLS]", "[SEP]", "[MASK]")

Inputs = collections.namedtuple(
    "Inputs", ["input_ids", "input_mask", "segment_ids", "masked_lm_positions",
               "masked_lm_ids", "masked_lm_weights"])


class MaskingError(configure_pretraining.ConfigError):
  """The vocab file cannot give the ids masking needs (names the file).

  A ConfigError, so CLIs that report config errors report this one too.
  """


def features_to_inputs(features):
  """TFRecord features dict -> Inputs (int32; masked_* None until masked)."""
  def get(k):
    return tf.cast(features[k], tf.int32) if k in features else None
  return Inputs(input_ids=get("input_ids"), input_mask=get("input_mask"),
                segment_ids=get("segment_ids"), masked_lm_positions=get("masked_lm_positions"),
                masked_lm_ids=get("masked_lm_ids"), masked_lm_weights=features.get(
                    "masked_lm_weights"))


@functools.lru_cache(maxsize=8)
def special_token_ids(vocab_file):
  """{'[MASK]': id, ...} for SPECIAL_TOKENS from a vocab file ([PAD] optional)."""
  from model import tokenization
  try:
    vocab = tokenization.load_vocab(vocab_file)
  except tokenization.VocabError as e:
    raise MaskingError(f"{e} (vocab_file, needed for masking)") from e
  out = {}
  for tok in SPECIAL_TOKENS:
    if tok in vocab:
      out[tok] = vocab[tok]
    elif tok != "[PAD]":
      raise MaskingError(f"{vocab_file}: vocabulary has no {tok} token, needed for masking")
  return out


def mask_inputs(inputs, mask_prob, max_predictions_per_seq, mask_id, special_ids=(),
                seed=None):
  """Chooses and masks positions. Returns Inputs with masked input_ids and masked_*.

  inputs: Inputs (input_ids, input_mask [B, L] int32; segment_ids passed through).
  special_ids: ids never masked (in addition to padding, input_mask == 0).
  masked_lm_positions/ids are 0 and masked_lm_weights 0.0 in unused prediction slots.
  """
  input_ids, input_mask = inputs.input_ids, inputs.input_mask
  batch, length = modeling.get_shape_list(input_ids, expected_rank=2)
  n = max_predictions_per_seq
  if isinstance(length, int) and n > length:
    raise ValueError(f"max_predictions_per_seq {n} > sequence length {length}")

  candidates = tf.cast(input_mask, tf.bool)
  for sid in sorted(set(int(s) for s in special_ids)):
    candidates = tf.logical_and(candidates, tf.not_equal(input_ids, sid))
  num_candidates = tf.reduce_sum(tf.cast(candidates, tf.int32), axis=-1)   # [B]
  num_to_predict = tf.cast(tf.round(tf.cast(num_candidates, tf.float32) * mask_prob),
                           tf.int32)
  num_to_predict = tf.minimum(tf.maximum(num_to_predict, 1), n)
  num_to_predict = tf.minimum(num_to_predict, num_candidates)
  masked_lm_weights = tf.sequence_mask(num_to_predict, n, dtype=tf.float32)  # [B, N]

  # Uniform sampling without replacement: top-k of Gumbel noise over the candidates.
  u = tf.random.uniform([batch, length], minval=0.0, maxval=1.0, seed=seed)
  gumbel = -tf.log(-tf.log(u + 1e-9) + 1e-9)
  scores = tf.where(candidates, gumbel, tf.fill([batch, length], -1e9))
  _, positions = tf.nn.top_k(scores, k=n, sorted=True)
  positions = tf.cast(positions, tf.int32) * tf.cast(masked_lm_weights, tf.int32)

  masked_lm_ids = sampling.gather_positions(input_ids, positions)
  masked_lm_ids *= tf.cast(masked_lm_weights, tf.int32)

  to_mask = tf.cast(tf.random.uniform([batch, n], seed=None if seed is None else seed + 1)
                    < MASK_TOKEN_PROB, tf.float32) * masked_lm_weights
  masked_ids, _ = sampling.scatter_update(
      input_ids, tf.fill([batch, n], tf.cast(mask_id, input_ids.dtype)), positions, to_mask)
  return inputs._replace(input_ids=tf.stop_gradient(masked_ids),
                         masked_lm_positions=positions,
                         masked_lm_ids=masked_lm_ids,
                         masked_lm_weights=masked_lm_weights)


def mask(config, inputs, seed=None):
  """mask_inputs with the config's mask_prob / max_predictions_per_seq / vocab specials."""
  ids = special_token_ids(config.vocab_file)
  return mask_inputs(inputs, config.mask_prob, config.max_predictions_per_seq,
                     mask_id=ids["[MASK]"], special_ids=ids.values(), seed=seed)
