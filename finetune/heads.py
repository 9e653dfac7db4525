"""Task heads on the encoder's output, with the original ELECTRA's and KoELECTRA's variables.

Shape glossary: B batch, L sequence length, H hidden size, C classes, K beam size.

Every head is built inside `task_specific/<task>/` (run by finetune/model.py), so its
variables are found by that name, and a checkpoint of the original ELECTRA's finetuning
code loads here. Two styles (hparam `classifier_head`):
- "electra", the original's: `tf.layers.dense` defaults (Glorot-uniform kernel, zero
  bias) named `dense` (then `dense_1`, `qa_hidden`), dropout 0.1 on [CLS] for sentence
  tasks, none for tagging and QA;
- "hf", KoELECTRA's (Hugging Face `ElectraFor*` heads, normal(0, 0.02) kernels): sentence
  tasks take [CLS] -> dropout -> `classifier/dense` -> GELU -> dropout ->
  `classifier/out_proj`; tagging takes dropout -> `dense`; QA one `dense` per logit.

Losses are per example ([B]); finetune/model.py reduces them over the batch.
"""
from typing import Dict, Optional

import tensorflow.compat.v1 as tf

from model import modeling
from model import positions as model_positions

# The original's QA heads push positions outside the context this far down.
_OUTSIDE_CONTEXT = -1000.0
# KoELECTRA's heads initialise like Hugging Face's _init_weights (normal, not truncated).
_HF_INIT_STDDEV = 0.02


def _init(style):
  if style == "hf":
    return tf.random_normal_initializer(stddev=_HF_INIT_STDDEV)
  return tf.glorot_uniform_initializer()  # what tf.layers.dense uses without one


def _dense(x, units, name, style, activation=None):
  """A float32 dense layer `name/{kernel,bias}` on the last axis of x."""
  return modeling.dense(tf.cast(x, tf.float32), units, name=name, activation=activation,
                        kernel_initializer=_init(style))


def _dropout(x, rate, is_training):
  return tf.nn.dropout(x, rate=rate) if is_training and rate > 0 else x


def sentence_logits(sequence_output: tf.Tensor, num_outputs: int, is_training: bool,
                    style: str = "electra", dropout_prob: float = 0.1) -> tf.Tensor:
  """Classification / regression outputs from the [CLS] vector of the last layer.

  Args:
    sequence_output: float32 [B, L, H].
    num_outputs: C classes (1 for regression).
    is_training: dropout on.
    style: "electra" or "hf" (module docstring).
    dropout_prob: the encoder's hidden dropout (0.1 in both originals).

  Returns:
    float32 [B, C].
  """
  cls = sequence_output[:, 0]                                               # [B, H]
  cls = _dropout(cls, dropout_prob, is_training)
  if style == "electra":
    return _dense(cls, num_outputs, "dense", style)
  width = modeling.get_shape_list(cls)[-1]
  with tf.variable_scope("classifier"):
    h = _dense(cls, width, "dense", style, activation=modeling.gelu)
    h = _dropout(h, dropout_prob, is_training)
    return _dense(h, num_outputs, "out_proj", style)


def softmax_loss(logits: tf.Tensor, label_ids: tf.Tensor) -> tf.Tensor:
  """Cross-entropy per row: logits [..., C], int label ids [...] -> float32 [...]."""
  log_probs = tf.nn.log_softmax(logits, axis=-1)
  one_hot = tf.one_hot(label_ids, depth=modeling.get_shape_list(logits)[-1],
                       dtype=tf.float32)
  return -tf.reduce_sum(one_hot * log_probs, axis=-1)


def tagging_logits(sequence_output: tf.Tensor, num_labels: int, is_training: bool,
                   style: str = "electra", dropout_prob: float = 0.1,
                   positions: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Per-token tag logits (the original gathers the labelled positions first).

  Args:
    sequence_output: float32 [B, L, H].
    num_labels: C tags.
    is_training: dropout on (hf style only, as ElectraForTokenClassification).
    style: "electra" or "hf".
    dropout_prob: hidden dropout of the hf style.
    positions: optional int32 [B, P] positions to score (e.g. each word's first
      sub-token); None scores every position.

  Returns:
    float32 [B, P, C] (or [B, L, C]).
  """
  reprs = sequence_output
  if positions is not None:
    reprs = model_positions.gather_positions(reprs, positions)              # [B, P, H]
  if style == "hf":
    reprs = _dropout(reprs, dropout_prob, is_training)
  return _dense(reprs, num_labels, "dense", style)


def span_logits(sequence_output: tf.Tensor, input_mask: tf.Tensor, segment_ids: tf.Tensor,
                is_training: bool, style: str = "electra", joint: bool = False,
                start_positions: Optional[tf.Tensor] = None,
                beam_size: int = 20) -> Dict[str, tf.Tensor]:
  """Answer-span logits (SQuAD / KorQuAD).

  The original masks positions outside the context (question tokens, padding; [CLS]
  stays) to -1000 in the electra style; KoELECTRA's HF head scores every position and
  leaves the filtering to post-processing. With `joint` (the original's
  `joint_prediction`), the end is predicted given the start: a 512-wide GELU layer
  `qa_hidden` over [start vector; each position's vector], then `dense_1`. Training feeds
  the gold start; prediction keeps the top `beam_size` starts.

  Args:
    sequence_output: float32 [B, L, H].
    input_mask, segment_ids: int32 [B, L] (the context is segment 1).
    is_training: gold starts (joint) instead of the beam.
    style: "electra" or "hf".
    joint: the end-given-start head (electra style only).
    start_positions: int32 [B], needed when training the joint head.
    beam_size: K start candidates of the joint head at prediction time.

  Returns:
    {"start_logits": [B, L], "end_logits": [B, L]} and, for the joint head when
    predicting, "start_top_index" [B, K], "start_top_log_probs" [B, K],
    "end_logits_given_start" [B, K, L] (end_logits is then that of the best start).
  """
  batch, length, _ = modeling.get_shape_list(sequence_output, expected_rank=3)
  hidden = sequence_output
  outside = None
  if style == "electra":
    in_context = tf.cast(input_mask, tf.float32) * tf.cast(segment_ids, tf.float32)
    in_context += tf.one_hot(0, length)                                      # [CLS] allowed
    outside = _OUTSIDE_CONTEXT * (1.0 - in_context)                          # [B, L]
  start_logits = tf.squeeze(_dense(hidden, 1, "dense", style), -1)         # [B, L]
  if outside is not None:
    start_logits += outside
  if not joint:
    end_logits = tf.squeeze(_dense(hidden, 1, "dense_1", style), -1)
    if outside is not None:
      end_logits += outside
    return {"start_logits": start_logits, "end_logits": end_logits}

  if is_training:
    start_vec = model_positions.gather_positions(
        hidden, tf.expand_dims(start_positions, -1))                         # [B, 1, H]
    start_vec = tf.tile(start_vec, [1, length, 1])                           # [B, L, H]
    end_in = tf.concat([start_vec, hidden], -1)                              # [B, L, 2H]
    end_logits = tf.squeeze(_dense(_dense(end_in, 512, "qa_hidden", style,
                                          activation=modeling.gelu),
                                   1, "dense_1", style), -1)                 # [B, L]
    return {"start_logits": start_logits, "end_logits": end_logits + outside}

  k = min(beam_size, length) if isinstance(length, int) else beam_size
  start_log_probs = tf.nn.log_softmax(start_logits)
  top_log_probs, top_index = tf.nn.top_k(start_log_probs, k=k)              # [B, K]
  start_vec = model_positions.gather_positions(hidden, top_index)          # [B, K, H]
  start_vec = tf.tile(tf.expand_dims(start_vec, 2), [1, 1, length, 1])     # [B, K, L, H]
  end_vec = tf.tile(tf.expand_dims(hidden, 1), [1, k, 1, 1])                # [B, K, L, H]
  end_in = tf.concat([start_vec, end_vec], -1)                             # [B, K, L, 2H]
  given = tf.squeeze(_dense(_dense(end_in, 512, "qa_hidden", style,
                                   activation=modeling.gelu),
                            1, "dense_1", style), -1)                       # [B, K, L]
  given += tf.expand_dims(outside, 1)
  return {"start_logits": start_logits, "end_logits": given[:, 0],
          "start_top_index": top_index, "start_top_log_probs": top_log_probs,
          "end_logits_given_start": given}


def span_loss(start_logits: tf.Tensor, end_logits: tf.Tensor, start_positions: tf.Tensor,
              end_positions: tf.Tensor) -> tf.Tensor:
  """(start cross-entropy + end cross-entropy) / 2 per example, as both originals."""
  return (softmax_loss(start_logits, start_positions) +
          softmax_loss(end_logits, end_positions)) / 2.0
