"""FinetuningModel: the pretraining encoder with one task's head, loss and outputs.

The encoder is `model.modeling.BertModel` under `electra/`, exactly as pretraining builds
the discriminator, so a pretraining checkpoint (ours or the original's) initialises it
name for name. The head lives under `task_specific/<task>/` (finetune/heads.py).

Loss over the batch (hparam `loss_reduction`): "sum" adds the per-example losses, as the
original ELECTRA's run_finetuning.py does (it hands the per-example vector to
tf.gradients); "mean" averages them, as Hugging Face does (for tagging: over the labelled
tokens of the batch, as its token-classification loss with ignored positions).

Padding trimmed (`trim_padding`, off TPU): each batch runs the encoder at its longest real
length (rounded up to a multiple of `trim_multiple(L)`, so at most 8 shapes are ever
compiled) instead of the full L, and per-position outputs are padded back to L. This is
the same math: padded keys get -10000 before the softmax, which float32 turns into
exactly 0 weight, and no real position reads a padded one. It is used only where the
head's loss and decoding do not see padded positions either: sentence and tagging heads,
and span heads of the "electra" style (padding masked to -1000). KoELECTRA's "hf" span
head scores padded positions too (they enter its softmax and its n-best), so it always
runs at full length. docs/finetuning.md ("Speed") has the measurements.
"""
from typing import Dict, Tuple

import tensorflow.compat.v1 as tf

from finetune import heads
from finetune import tasks as tasks_lib
from model import modeling
from model import sizes

TASK_SCOPE = "task_specific/"
SENTENCE_KINDS = (tasks_lib.CLASSIFICATION, tasks_lib.REGRESSION)
# Trimmed lengths are multiples of L / TRIM_SHAPES (at least MIN_TRIM_MULTIPLE), so each
# fused XLA kernel compiles for at most TRIM_SHAPES sequence lengths.
TRIM_SHAPES = 8
MIN_TRIM_MULTIPLE = 16
# Per-position outputs are padded back to L with this (below the heads' -1000 mask).
_PADDED_LOGIT = -10000.0


def trim_multiple(max_seq_length: int) -> int:
  """The granularity of trimmed lengths for sequences of max_seq_length."""
  return max(MIN_TRIM_MULTIPLE, -(-max_seq_length // TRIM_SHAPES))


def can_trim(config, is_training: bool) -> bool:
  """Whether trimming padding leaves this task's loss and outputs unchanged (module
  docstring): not for the hf-style span head, whose softmax and n-best see padding."""
  del is_training  # the same rule in training and prediction
  spec = config.task
  return not (spec.kind == tasks_lib.SPAN and config.classifier_head == "hf")


def trim_padding(features: Dict[str, tf.Tensor], max_seq_length: int,
                 keys=("input_ids", "input_mask", "segment_ids", "label_ids",
                       "label_weights")) -> Tuple[Dict[str, tf.Tensor], tf.Tensor]:
  """Cuts the batch's [B, L] features to the longest real sequence, rounded up.

  Args:
    features: int32 / float32 tensors; input_mask [B, L] is 1 on each sequence's real
      tokens (a prefix).
    max_seq_length: L, the static length of the [B, L] features.
    keys: the features cut when present with shape [B, L] (tagging's label_ids and
      label_weights; its labeled_positions index positions and stay whole).

  Returns:
    (features with those keys cut to [B, T], T) where T is a scalar int32 tensor:
    the longest sum of input_mask rounded up to a multiple of trim_multiple(L), at most L.
  """
  step = trim_multiple(max_seq_length)
  longest = tf.reduce_max(tf.reduce_sum(features["input_mask"], axis=1))
  length = tf.minimum(tf.maximum((longest + step - 1) // step, 1) * step, max_seq_length,
                      name="trimmed_length")
  out = dict(features)
  for key in keys:
    t = features.get(key)
    if t is not None and t.shape.ndims == 2 and t.shape[1] == max_seq_length:
      out[key] = t[:, :length]                                              # [B, T]
  return out, length


def _pad_positions(t: tf.Tensor, axis: int, max_seq_length: int, value: float) -> tf.Tensor:
  """Pads axis `axis` of t (length T) back to max_seq_length with `value`; static shape."""
  ndims = t.shape.ndims
  missing = max_seq_length - tf.shape(t)[axis]
  paddings = [[0, 0]] * ndims
  paddings[axis] = [0, missing]
  out = tf.pad(t, paddings, constant_values=value)
  shape = t.shape.as_list()
  shape[axis] = max_seq_length
  return tf.ensure_shape(out, shape)


class FinetuningModel(object):
  """Builds encoder + head for `features` (as finetune/features.feature_spec names them).

  Attributes:
    bert_config: the encoder's BertConfig.
    encoder: the BertModel.
    loss: scalar training loss (reduced as `config.loss_reduction`).
    per_example_loss: float32 [B].
    outputs: {name: [B, ...] tensor} for prediction (finetune/postprocess.decode's
      inputs plus example_id / feature_id).
  """

  def __init__(self, config, features: Dict[str, tf.Tensor], is_training: bool,
               fused: bool = False, trim: bool = False):
    """Args:
      config: configure_finetuning.FinetuningConfig.
      features: int32 / float32 tensors of static shapes [B, ...].
      is_training: dropout on, the joint QA head fed gold starts.
      fused: the encoder's XLA-fused CPU/GPU kernels (model/fused_ops.py); off on TPU.
      trim: run the batch at its longest real length where can_trim allows (module
        docstring); outputs keep their static [B, L, ...] shapes. Off on TPU (static
        shapes).
    """
    spec = config.task
    full_length = features["input_ids"].shape[1]
    self.trimmed = trim and can_trim(config, is_training)
    if self.trimmed:
      features, self.length = trim_padding(features, full_length)
    self.bert_config = sizes.bert_config(config.bert_hparams())
    self.encoder = modeling.BertModel(
        bert_config=self.bert_config, is_training=is_training,
        input_ids=features["input_ids"], input_mask=features["input_mask"],
        token_type_ids=features["segment_ids"], use_one_hot_embeddings=config.use_tpu,
        embedding_size=config.embedding_dim(), use_bf16=config.use_bf16, fused=fused,
        # Sentence heads read [CLS] alone: the last layer computes that row only.
        last_layer_positions=1 if spec.kind in SENTENCE_KINDS else None)
    sequence = self.encoder.get_sequence_output()          # [B, L, H] ([B, 1, H] sentences)
    dropout = self.bert_config.hidden_dropout_prob
    style = config.classifier_head
    outputs = {"example_id": features["example_id"]}
    token_weights = None
    with tf.variable_scope(TASK_SCOPE + spec.name):
      if spec.kind == tasks_lib.CLASSIFICATION:
        logits = heads.sentence_logits(sequence, spec.num_labels, is_training, style, dropout)
        per_example = heads.softmax_loss(logits, features["label_ids"])
        outputs["logits"] = logits
      elif spec.kind == tasks_lib.REGRESSION:
        predictions = tf.squeeze(
            heads.sentence_logits(sequence, 1, is_training, style, dropout), -1)
        per_example = tf.square(predictions - features["targets"])
        outputs["predictions"] = predictions
      elif spec.kind == tasks_lib.TAGGING:
        labels, weights = features["label_ids"], features["label_weights"]
        positions = None
        if style == "electra":
          # The original scores each word at its first sub-token: gather them first.
          positions = features["labeled_positions"]
          labels = tf.gather(labels, positions, batch_dims=1)
          weights = tf.gather(weights, positions, batch_dims=1)
        logits = heads.tagging_logits(sequence, spec.num_labels, is_training, style,
                                      dropout, positions=positions)
        token_losses = heads.softmax_loss(logits, labels) * weights          # [B, P]
        per_example = tf.reduce_sum(token_losses, -1)
        token_weights = weights
        outputs["logits"] = logits
      else:
        out = heads.span_logits(sequence, features["input_mask"], features["segment_ids"],
                                is_training, style=style, joint=config.joint_prediction,
                                start_positions=features["start_positions"],
                                beam_size=config.beam_size)
        per_example = heads.span_loss(out["start_logits"], out["end_logits"],
                                      features["start_positions"],
                                      features["end_positions"])
        outputs.update(out)
        outputs["feature_id"] = features["feature_id"]
    if self.trimmed:
      # Back to [B, L, ...]: decoding indexes positions of the whole feature.
      for key, axis, value in (("start_logits", 1, _PADDED_LOGIT),
                               ("end_logits", 1, _PADDED_LOGIT),
                               ("end_logits_given_start", 2, _PADDED_LOGIT)):
        if key in outputs:
          outputs[key] = _pad_positions(outputs[key], axis, full_length, value)
      if spec.kind == tasks_lib.TAGGING and positions is None:
        outputs["logits"] = _pad_positions(outputs["logits"], 1, full_length, 0.0)
    self.per_example_loss = per_example
    if config.loss_reduction == "sum":
      self.loss = tf.reduce_sum(per_example)
    elif token_weights is not None:
      self.loss = tf.reduce_sum(per_example) / tf.maximum(tf.reduce_sum(token_weights), 1.0)
    else:
      self.loss = tf.reduce_mean(per_example)
    self.outputs = outputs
    self.word_level_logits = spec.kind == tasks_lib.TAGGING and style == "electra"
