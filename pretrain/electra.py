"""PretrainingModel: ELECTRA's generator + discriminator, their losses and eval metrics.

Graph (TF1, variable names as the original ELECTRA checkpoints):
  mask inputs -> generator (scope "generator", sharing "electra/embeddings") ->
  generator_predictions/{dense, LayerNorm, output_bias} (output weights = embedding
  table) -> Gumbel-max samples at masked positions -> discriminator (scope "electra") ->
  discriminator_predictions/{dense, dense_1}.
  total_loss = gen_weight * MLM loss + disc_weight * discriminator sigmoid loss.
With `electra_objective=False` only the masked LM is trained (BERT-style baseline) with
the full-size "electra" encoder.
"""
import collections

import tensorflow.compat.v1 as tf

from model import modeling
from model import positions as model_positions
from model import sizes
from pretrain import masking
from pretrain import sampling

MLMOutput = collections.namedtuple(
    "MLMOutput", ["logits", "log_probs", "per_example_loss", "loss", "preds"])
DiscOutput = collections.namedtuple(
    "DiscOutput", ["logits", "probs", "preds", "labels", "per_example_loss", "loss"])


class PretrainingModel(object):
  """Builds the pretraining graph for `features` (input_ids, input_mask, segment_ids).

  Attributes: generator / discriminator (BertModel; generator None when uniform,
  discriminator None for the MLM-only objective), total_loss, mlm_loss, disc_loss (None for the MLM-only objective),
  losses (dict of the scalar losses present), masked_inputs, fake_input_ids,
  sampled_ids, disc_labels, metric_fn (callable(**metric_fn_inputs) -> dict of
  tf.metrics), metric_fn_inputs (dict of [batch, ...] tensors), eval_metrics
  ((metric_fn, metric_fn_inputs), the form TPUEstimatorSpec's eval_metrics takes).
  """

  def __init__(self, config, features, is_training, seed=None):
    self._config = config
    # The fused CPU/GPU kernels are not used on TPU: XLA compiles the whole TPU program
    # anyway, and there the plain ops (the original graph) are the tested path.
    self._fused = config.fused_kernels and not config.use_tpu
    self._bert_config = sizes.bert_config(config.bert_hparams())
    self._is_training = is_training
    embedding_size = config.embedding_dim()

    inputs = masking.features_to_inputs(features)
    original_ids = inputs.input_ids
    masked_inputs = masking.mask(config, inputs, seed=seed)
    self.masked_inputs = masked_inputs

    # Generator.
    if config.uniform_generator:
      generator = None
    elif config.has_generator_transformer():
      generator = self._build_transformer(
          masked_inputs, sizes.bert_config(config.generator_hparams()),
          name="generator",
          embedding_size=(None if config.untied_generator_embeddings else embedding_size),
          untied_embeddings=config.untied_generator_embeddings)
    else:
      generator = self._build_transformer(masked_inputs, self._bert_config, name="electra",
                                          embedding_size=embedding_size)
    self.generator = generator
    mlm = self._masked_lm_output(masked_inputs, generator)
    self.mlm_output = mlm
    self.mlm_loss = mlm.loss
    self.total_loss = config.gen_weight * mlm.loss
    self.losses = {"mlm_loss": mlm.loss}

    metric_inputs = {
        "input_mask": masked_inputs.input_mask,
        "masked_lm_ids": masked_inputs.masked_lm_ids,
        "masked_lm_weights": masked_inputs.masked_lm_weights,
        "masked_lm_preds": mlm.preds,
        "mlm_loss": mlm.per_example_loss,
    }

    # Discriminator.
    self.disc_loss = None
    self.sampled_ids = None
    self.fake_input_ids = None
    self.disc_labels = None
    self.disc_output = None
    self.discriminator = None
    if config.electra_objective:
      disallow = None
      if config.disallow_correct:
        disallow = tf.one_hot(masked_inputs.masked_lm_ids, self._bert_config.vocab_size,
                              on_value=True, off_value=False, dtype=tf.bool)
      self.sampled_ids = sampling.gumbel_max_sample(
          mlm.logits, temperature=config.temperature, disallow=disallow,
          seed=None if seed is None else seed + 2)
      self.fake_input_ids, self.disc_labels = sampling.replace_with_samples(
          original_ids, self.sampled_ids, masked_inputs.masked_lm_positions,
          masked_inputs.masked_lm_weights)
      fake_inputs = masked_inputs._replace(input_ids=self.fake_input_ids)
      discriminator = self._build_transformer(
          fake_inputs, self._bert_config, name="electra", embedding_size=embedding_size,
          reuse=not config.untied_generator)
      self.discriminator = discriminator
      disc = self._discriminator_output(fake_inputs, discriminator, self.disc_labels)
      self.disc_output = disc
      self.disc_loss = disc.loss
      self.total_loss += config.disc_weight * disc.loss
      self.losses["disc_loss"] = disc.loss
      metric_inputs.update({
          "disc_loss": disc.per_example_loss,
          "disc_labels": disc.labels,
          "disc_probs": disc.probs,
          "disc_preds": disc.preds,
          "sampled_tokids": self.sampled_ids,
      })
    self.losses["total_loss"] = self.total_loss
    self.metric_fn_inputs = metric_inputs
    self.metric_fn = make_metric_fn(config.electra_objective, config.disc_weight > 0)
    self.eval_metrics = (self.metric_fn, self.metric_fn_inputs)

  def _build_transformer(self, inputs, bert_config, name, reuse=False, **kwargs):
    with tf.variable_scope(tf.get_variable_scope(), reuse=reuse):
      return modeling.BertModel(
          bert_config=bert_config, is_training=self._is_training,
          input_ids=inputs.input_ids, input_mask=inputs.input_mask,
          token_type_ids=inputs.segment_ids,
          use_one_hot_embeddings=self._config.use_tpu, scope=name,
          use_bf16=self._config.use_bf16, fused=self._fused, **kwargs)

  def _masked_lm_output(self, inputs, generator):
    """Generator logits at the masked positions and the weighted MLM loss."""
    cfg = self._bert_config
    vocab_size = cfg.vocab_size
    batch, n = modeling.get_shape_list(inputs.masked_lm_positions)
    with tf.variable_scope("generator_predictions"):
      if generator is None:
        # Uniform generator: all-zero logits, no variables.
        logits = tf.zeros([batch, n, vocab_size], tf.float32)
      else:
        table = generator.get_embedding_table()
        width = modeling.get_shape_list(table)[-1]
        hidden = model_positions.gather_positions(generator.get_sequence_output(),
                                                  inputs.masked_lm_positions)
        hidden = modeling.dense(hidden, width, name="dense",
                                activation=modeling.get_activation(cfg.hidden_act,
                                                                   fused=self._fused),
                                kernel_initializer=modeling.create_initializer(
                                    cfg.initializer_range), fused=self._fused)
        hidden = modeling.layer_norm(hidden, fused=self._fused)
        output_bias = tf.get_variable("output_bias", shape=[vocab_size],
                                      initializer=tf.zeros_initializer())
        logits = tf.einsum("bnd,vd->bnv", hidden, table)
        logits = tf.nn.bias_add(logits, output_bias)
      log_probs = tf.nn.log_softmax(logits)
      labels = tf.one_hot(inputs.masked_lm_ids, depth=vocab_size, dtype=tf.float32)
      per_example_loss = -tf.reduce_sum(log_probs * labels, axis=-1)      # [B, N]
      weights = inputs.masked_lm_weights
      loss = tf.reduce_sum(weights * per_example_loss) / (tf.reduce_sum(weights) + 1e-6)
      preds = tf.argmax(log_probs, axis=-1, output_type=tf.int32)
    return MLMOutput(logits=logits, log_probs=log_probs, per_example_loss=per_example_loss,
                     loss=loss, preds=preds)

  def _discriminator_output(self, inputs, discriminator, labels):
    """Per-token real/replaced logits and the sigmoid loss over non-padding tokens."""
    cfg = self._bert_config
    with tf.variable_scope("discriminator_predictions"):
      hidden = modeling.dense(discriminator.get_sequence_output(), cfg.hidden_size,
                              name="dense",
                              activation=modeling.get_activation(cfg.hidden_act,
                                                                 fused=self._fused),
                              kernel_initializer=modeling.create_initializer(
                                  cfg.initializer_range), fused=self._fused)
      # The original's second layer uses tf.layers.dense defaults (Glorot uniform).
      logits = tf.squeeze(modeling.dense(hidden, 1, name="dense_1",
                                         kernel_initializer=tf.glorot_uniform_initializer()),
                          -1)
      weights = tf.cast(inputs.input_mask, tf.float32)
      losses = tf.nn.sigmoid_cross_entropy_with_logits(
          logits=logits, labels=tf.cast(labels, tf.float32)) * weights
      per_example_loss = tf.reduce_sum(losses, -1) / (1e-6 + tf.reduce_sum(weights, -1))
      loss = tf.reduce_sum(losses) / (1e-6 + tf.reduce_sum(weights))
      probs = tf.nn.sigmoid(logits)
      preds = tf.cast(logits > 0, tf.int32)
    return DiscOutput(logits=logits, probs=probs, preds=preds, labels=labels,
                      per_example_loss=per_example_loss, loss=loss)


def make_metric_fn(electra_objective=True, with_disc=True):
  """metric_fn(**PretrainingModel.metric_fn_inputs) -> {name: tf.metrics (value, update)}.

  Runs on the host under TPUEstimator, so it only uses its arguments.
  """
  def metric_fn(**d):
    flat = lambda k: tf.reshape(d[k], [-1])
    metrics = {
        "masked_lm_accuracy": tf.metrics.accuracy(
            labels=flat("masked_lm_ids"), predictions=flat("masked_lm_preds"),
            weights=flat("masked_lm_weights")),
        "masked_lm_loss": tf.metrics.mean(values=flat("mlm_loss"),
                                          weights=flat("masked_lm_weights")),
    }
    if electra_objective:
      metrics["sampled_masked_lm_accuracy"] = tf.metrics.accuracy(
          labels=flat("masked_lm_ids"), predictions=flat("sampled_tokids"),
          weights=flat("masked_lm_weights"))
      if with_disc:
        mask = tf.cast(flat("input_mask"), tf.float32)
        labels, preds = flat("disc_labels"), flat("disc_preds")
        predsf, labelsf = tf.cast(preds, tf.float32), tf.cast(labels, tf.float32)
        metrics["disc_loss"] = tf.metrics.mean(flat("disc_loss"))
        # Padding is left out through the weights; the original zeroed labels and
        # probabilities there instead, which counts padding as easy negatives.
        metrics["disc_auc"] = tf.metrics.auc(labels, flat("disc_probs"), weights=mask)
        metrics["disc_accuracy"] = tf.metrics.accuracy(labels, preds, weights=mask)
        metrics["disc_precision"] = tf.metrics.accuracy(labels, preds,
                                                        weights=predsf * mask)
        metrics["disc_recall"] = tf.metrics.accuracy(labels, preds, weights=labelsf * mask)
    return metrics
  return metric_fn
