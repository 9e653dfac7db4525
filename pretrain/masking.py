"""Choosing and masking the positions the generator predicts (ELECTRA's masking).

About `mask_prob` of each sequence's tokens are chosen, at most
`max_predictions_per_seq`; 85% of the chosen positions become [MASK] and 15% keep their
original token. There is no random-token replacement: the generator provides the fakes.
[CLS], [SEP], [MASK], [PAD] and padding are never chosen. All in-graph, static shapes.

Two draws (docs/pretraining.md, "Masking rate", has both rates measured):
- default: positions drawn *without* replacement (top-k of Gumbel noise), the count
  mask_prob x maskable tokens: exactly 15% of the maskable tokens are masked, each once;
- `legacy=True` (hparam `legacy_masking`): the original `pretrain_helpers.mask`, to
  replicate a published run exactly. Its count is mask_prob x all non-padding tokens
  ([CLS]/[SEP] included), drawn *with* replacement (tf.random.categorical) among the
  maskable ones; a position drawn twice is predicted and weighted twice, so about 14.0%
  of the tokens are masked at length 512 (about 17.7 positions of 19 at 128).
"""
import collections
import functools

import tensorflow.compat.v1 as tf

from model import modeling
from model import positions as model_positions
from model import tokenization
from pretrain import sampling
from util import errors

# Fraction of chosen positions replaced by [MASK]; the rest keep the original token.
MASK_TOKEN_PROB = 0.85
# Never masked. [PAD] may be missing from a vocab; the others are required.
NEVER_MASKED = (tokenization.PAD, tokenization.CLS, tokenization.SEP, tokenization.MASK)

Inputs = collections.namedtuple(
    "Inputs", ["input_ids", "input_mask", "segment_ids", "masked_lm_positions",
               "masked_lm_ids", "masked_lm_weights"])


class MaskingError(errors.UserError):
  """The vocab file cannot give the ids masking needs (names the file)."""


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
  """{token: id} of NEVER_MASKED from a vocab file ([PAD] may be absent).

  Raises:
    MaskingError: the vocab cannot be read or lacks [CLS], [SEP] or [MASK].
  """
  try:
    vocab = tokenization.load_vocab(vocab_file)
  except tokenization.VocabError as e:
    raise MaskingError(f"{e} (vocab_file, needed for masking)") from e
  out = {}
  for tok in NEVER_MASKED:
    if tok in vocab:
      out[tok] = vocab[tok]
    elif tok != tokenization.PAD:
      raise MaskingError(f"{vocab_file}: vocabulary has no {tok} token, needed for masking")
  return out


def mask_inputs(inputs, mask_prob, max_predictions_per_seq, mask_id, special_ids=(),
                seed=None, legacy=False):
  """Chooses and masks positions.

  Args:
    inputs: Inputs with input_ids, input_mask int32 [B, L] (segment_ids passed through).
    mask_prob: share of tokens to predict.
    max_predictions_per_seq: N, the fixed number of prediction slots per sequence.
    mask_id: the [MASK] id.
    special_ids: ids never chosen, in addition to padding (input_mask == 0).
    seed: op seed of the draws (tests), or None.
    legacy: the original ELECTRA draw (with replacement, count from all non-padding
      tokens); see the module docstring.

  Returns:
    Inputs with the masked input_ids and masked_lm_positions / masked_lm_ids (int32
    [B, N], 0 in unused slots) and masked_lm_weights (float32 [B, N], 1.0 for used slots).

  Raises:
    ValueError: max_predictions_per_seq exceeds the sequence length.
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
  counted = tf.reduce_sum(input_mask, axis=-1) if legacy else num_candidates
  num_to_predict = tf.cast(tf.round(tf.cast(counted, tf.float32) * mask_prob), tf.int32)
  num_to_predict = tf.minimum(tf.maximum(num_to_predict, 1), n)
  if legacy:
    # A row with nothing maskable predicts nothing (the original would draw from NaNs).
    num_to_predict = tf.where(num_candidates > 0, num_to_predict,
                              tf.zeros_like(num_to_predict))
  else:
    num_to_predict = tf.minimum(num_to_predict, num_candidates)
  masked_lm_weights = tf.sequence_mask(num_to_predict, n, dtype=tf.float32)  # [B, N]

  if legacy:
    # As the original: N independent draws among the candidates (duplicates possible).
    prob = tf.cast(candidates, tf.float32)                                 # [B, L]
    # A row with nothing maskable draws anywhere; its weights are 0, so nothing is used.
    anything = tf.broadcast_to(tf.expand_dims(num_candidates > 0, -1), [batch, length])
    prob = tf.where(anything, prob, tf.ones_like(prob))
    logits = tf.log(prob / tf.reduce_sum(prob, axis=-1, keepdims=True))
    positions = tf.random.categorical(logits, n, dtype=tf.int32, seed=seed)  # [B, N]
  else:
    # Uniform sampling without replacement: top-k of Gumbel noise over the candidates.
    scores = tf.where(candidates, sampling.gumbel_noise([batch, length], seed=seed),
                      tf.fill([batch, length], -1e9))
    _, positions = tf.nn.top_k(scores, k=n, sorted=True)
  positions = tf.cast(positions, tf.int32) * tf.cast(masked_lm_weights, tf.int32)

  masked_lm_ids = model_positions.gather_positions(input_ids, positions)
  masked_lm_ids *= tf.cast(masked_lm_weights, tf.int32)

  to_mask = tf.cast(tf.random.uniform([batch, n], seed=None if seed is None else seed + 1)
                    < MASK_TOKEN_PROB, tf.float32) * masked_lm_weights
  masked_ids, _ = model_positions.scatter_update(
      input_ids, tf.fill([batch, n], tf.cast(mask_id, input_ids.dtype)), positions, to_mask)
  return inputs._replace(input_ids=tf.stop_gradient(masked_ids),
                         masked_lm_positions=positions,
                         masked_lm_ids=masked_lm_ids,
                         masked_lm_weights=masked_lm_weights)


def mask(config, inputs, seed=None):
  """mask_inputs with the config's mask_prob, max_predictions_per_seq, legacy_masking and
  the special ids of its vocab_file."""
  ids = special_token_ids(config.vocab_file)
  return mask_inputs(inputs, config.mask_prob, config.max_predictions_per_seq,
                     mask_id=ids[tokenization.MASK], special_ids=ids.values(), seed=seed,
                     legacy=config.legacy_masking)
