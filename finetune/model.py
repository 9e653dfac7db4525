"""FinetuningModel: the pretraining encoder with one task's head, loss and outputs.

The encoder is `model.modeling.BertModel` under `electra/`, exactly as pretraining builds
the discriminator, so a pretraining checkpoint (ours or the original's) initialises it
name for name. The head lives under `task_specific/<task>/` (finetune/heads.py).

Loss over the batch (hparam `loss_reduction`): "sum" adds the per-example losses, as the
original ELECTRA's run_finetuning.py does (it hands the per-example vector to
tf.gradients); "mean" averages them, as Hugging Face does (for tagging: over the labelled
tokens of the batch, as its token-classification loss with ignored positions).
"""
from typing import Dict

import tensorflow.compat.v1 as tf

from finetune import heads
from finetune import tasks as tasks_lib
from model import modeling
from model import sizes

TASK_SCOPE = "task_specific/"


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
               fused: bool = False):
    """Args:
      config: configure_finetuning.FinetuningConfig.
      features: int32 / float32 tensors of static shapes [B, ...].
      is_training: dropout on, the joint QA head fed gold starts.
      fused: the encoder's XLA-fused CPU/GPU kernels (model/fused_ops.py); off on TPU.
    """
    spec = tasks_lib.get_task(config.task_name)
    self.bert_config = sizes.bert_config(config.bert_hparams())
    self.encoder = modeling.BertModel(
        bert_config=self.bert_config, is_training=is_training,
        input_ids=features["input_ids"], input_mask=features["input_mask"],
        token_type_ids=features["segment_ids"], use_one_hot_embeddings=config.use_tpu,
        embedding_size=config.embedding_dim(), use_bf16=config.use_bf16, fused=fused)
    sequence = self.encoder.get_sequence_output()                           # [B, L, H]
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
    self.per_example_loss = per_example
    if config.loss_reduction == "sum":
      self.loss = tf.reduce_sum(per_example)
    elif token_weights is not None:
      self.loss = tf.reduce_sum(per_example) / tf.maximum(tf.reduce_sum(token_weights), 1.0)
    else:
      self.loss = tf.reduce_mean(per_example)
    self.outputs = outputs
    self.word_level_logits = spec.kind == tasks_lib.TAGGING and style == "electra"
