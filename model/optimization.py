"""AdamW as in the original BERT/ELECTRA, its learning-rate schedule and layer-wise LR decay.

- Adam without bias correction, decoupled weight decay (not on LayerNorm or bias variables),
  eps 1e-6; slots `<variable>/adam_m` and `<variable>/adam_v` so original checkpoints resume.
- Gradients clipped to global norm 1.0.
- Under a tf.distribute strategy (`"distribution"`, util/distribute.py) each replica's
  gradients are all-reduced by the strategy before clipping, so every replica clips and
  applies the gradient of the whole global batch, as one device would.
- lr(t) = lr * (1 - min(t, N)/N)^power * min(1, t/W)  (the original's schedule: polynomial
  decay over all N steps, multiplied by a linear warm-up factor).
- Layer-wise LR decay for finetuning, with the top-layer off-by-one of the original fixed
  (google-research/electra issue 51; see docs/optimization.md).
- fused (argument of create_optimizer, default False; never on TPU): each variable's
  update runs as one XLA kernel, the same formula, rather than ~12 element-wise ops each
  making a pass over the weights.
"""
import collections
import re

import tensorflow.compat.v1 as tf

from model import checkpoint
from model import fused_ops

CLIP_NORM = 1.0
EXCLUDE_FROM_WEIGHT_DECAY = ("LayerNorm", "layer_norm", "bias")
# Finetuning heads must live under this scope for layer-wise LR decay.
TASK_SPECIFIC_SCOPE = "task_specific/"


def learning_rate_schedule(learning_rate, global_step, num_train_steps, warmup_steps=0,
                           warmup_proportion=0, lr_decay_power=1.0):
  """The original's schedule: polynomial decay to 0 at num_train_steps times warm-up."""
  lr = tf.train.polynomial_decay(learning_rate, global_step, num_train_steps,
                                 end_learning_rate=0.0, power=lr_decay_power, cycle=False)
  warmup_steps = max(num_train_steps * warmup_proportion, warmup_steps)
  if warmup_steps > 0:
    # (The original divides by warmup_steps even when it is 0, giving NaN at step 0.)
    step = tf.cast(global_step, tf.float32)
    lr *= tf.minimum(1.0, step / tf.cast(warmup_steps, tf.float32))
  return lr


def layerwise_lr_multipliers(n_layers, layer_decay, legacy=False):
  """{variable-name pattern: LR multiplier}, for a model of n_layers transformer layers.

  Depth counts from the bottom: embeddings 0, encoder layer i -> i + 1, task head L + 1;
  multiplier = layer_decay ** (L + 1 - depth): head 1, top layer d, ..., embeddings d^(L+1).
  legacy=True reproduces the original code, whose head sits at depth L + 2 (a pooler layer
  that was removed), so every encoder layer gets one extra factor d.
  """
  if n_layers is None or n_layers < 1:
    raise ValueError("layer-wise LR decay needs n_transformer_layers >= 1, got %r" % n_layers)
  top = n_layers + 2 if legacy else n_layers + 1
  depths = collections.OrderedDict([("/embeddings/", 0), ("/embeddings_project/", 0)])
  for layer in range(n_layers):
    depths["encoder/layer_%d/" % layer] = layer + 1
  depths[TASK_SPECIFIC_SCOPE] = top
  return collections.OrderedDict((k, layer_decay ** (top - d)) for k, d in depths.items())


def _variable_name(name):
  m = re.match(r"^(.*):\d+$", name)
  return m.group(1) if m else name


class AdamWeightDecayOptimizer(tf.train.Optimizer):
  """Adam with decoupled weight decay; by default no bias correction (the original BERT
  optimizer).

  learning_rate: a scalar (tensor) or a dict {name pattern: scalar}; with a dict, every
  variable must match exactly one pattern (substring of its name).
  apply_gradients does not increment global_step (create_optimizer does, as the original).
  fused: compute each variable's new value and slots in one XLA kernel (_adamw_step).
  bias_correction: scale the step by sqrt(1 - beta_2^t) / (1 - beta_1^t), t = global_step
  + 1, as Hugging Face's AdamW (KoELECTRA's finetuning) does; epsilon is then added to
  the uncorrected sqrt(v), as there.
  """

  def __init__(self, learning_rate, weight_decay_rate=0.0, beta_1=0.9, beta_2=0.999,
               epsilon=1e-6, exclude_from_weight_decay=EXCLUDE_FROM_WEIGHT_DECAY,
               name="AdamWeightDecayOptimizer", fused=False, bias_correction=False):
    super(AdamWeightDecayOptimizer, self).__init__(False, name)
    self.fused = fused
    self.bias_correction = bias_correction
    self.learning_rate = learning_rate
    self.weight_decay_rate = weight_decay_rate
    self.beta_1 = beta_1
    self.beta_2 = beta_2
    self.epsilon = epsilon
    self.exclude_from_weight_decay = tuple(exclude_from_weight_decay or ())

  def _use_weight_decay(self, param_name):
    if not self.weight_decay_rate:
      return False
    return not any(re.search(p, param_name) for p in self.exclude_from_weight_decay)

  def _lr_for(self, param_name):
    if not isinstance(self.learning_rate, dict):
      return self.learning_rate
    keys = [k for k in self.learning_rate if k in param_name]
    if len(keys) != 1:
      raise ValueError(
          "variable %s matches %s of the layer-wise learning rates %s; put finetuning "
          "heads under the %r scope" % (param_name, "none" if not keys else keys,
                                        list(self.learning_rate), TASK_SPECIFIC_SCOPE))
    return self.learning_rate[keys[0]]

  def apply_gradients(self, grads_and_vars, global_step=None, name=None):
    assignments = []
    correction = tf.constant(1.0)
    if self.bias_correction:
      if global_step is None:
        raise ValueError("bias_correction needs the global_step")
      t = tf.cast(global_step, tf.float32) + 1.0
      correction = tf.sqrt(1.0 - tf.pow(self.beta_2, t)) / (1.0 - tf.pow(self.beta_1, t))
    for grad, param in grads_and_vars:
      if grad is None or param is None:
        continue
      param_name = _variable_name(param.name)
      lr = self._lr_for(param_name)
      grad = tf.convert_to_tensor(grad)
      m = _slot(param, param_name + checkpoint.ADAM_M)
      v = _slot(param, param_name + checkpoint.ADAM_V)
      decay = self.weight_decay_rate if self._use_weight_decay(param_name) else 0.0
      step = _adamw_step_fused if self.fused else _adamw_step
      next_param, next_m, next_v = step(
          tf.convert_to_tensor(param), tf.convert_to_tensor(m), tf.convert_to_tensor(v),
          grad, tf.cast(lr, tf.float32), correction, self.beta_1, self.beta_2, self.epsilon,
          decay)
      assignments.extend([param.assign(next_param), m.assign(next_m), v.assign(next_v)])
    return tf.group(*assignments, name=name)

  # tf.train.Optimizer's abstract hooks: apply_gradients above does all the work.
  def _apply_dense(self, grad, var):
    raise NotImplementedError("use apply_gradients")

  def _resource_apply_dense(self, grad, handle):
    raise NotImplementedError("use apply_gradients")

  def _apply_sparse(self, grad, var):
    raise NotImplementedError("use apply_gradients")


def _adamw_step(param, m, v, grad, lr, correction, beta_1, beta_2, epsilon,
                weight_decay_rate):
  """One AdamW update: (new param, new m, new v). correction: the bias-correction factor
  of the Adam step (1.0 for none, the original's rule)."""
  next_m = beta_1 * m + (1.0 - beta_1) * grad
  next_v = beta_2 * v + (1.0 - beta_2) * tf.square(grad)
  update = correction * next_m / (tf.sqrt(next_v) + epsilon)
  if weight_decay_rate:
    update += weight_decay_rate * param
  return param - lr * update, next_m, next_v


# One XLA kernel per variable shape: a single pass over the weights, slots and gradient
# (CPU/GPU). The hyperparameters are Python floats, so they are compiled in as constants.
_adamw_step_fused = fused_ops.xla_kernel(_adamw_step)


def _slot(param, full_name):
  # Created from the root variable scope so the name is exactly `<variable>/adam_m`,
  # whatever scope the caller is in (original checkpoints then restore).
  root = tf.VariableScope(reuse=tf.AUTO_REUSE, name="")
  with tf.variable_scope(root, auxiliary_name_scope=False):
    return tf.get_variable(full_name, shape=param.shape.as_list(), dtype=tf.float32,
                           trainable=False, initializer=tf.zeros_initializer())


def make_optimizer(learning_rate, weight_decay_rate=0.0, use_tpu=False, fused=False,
                   epsilon=1e-6, bias_correction=False):
  """The optimizer used by create_optimizer (wrapped in CrossShardOptimizer on TPU).

  Args:
    learning_rate: scalar (tensor) or {variable-name pattern: scalar}.
    weight_decay_rate: decoupled weight decay (not on LayerNorm / bias variables).
    use_tpu: wrap in CrossShardOptimizer.
    fused: one XLA kernel per variable update (CPU/GPU).
    epsilon: Adam's epsilon (the original 1e-6; Hugging Face's 1e-8).
    bias_correction: Hugging Face AdamW's bias correction (the original has none).

  Returns:
    the optimizer.

  Raises:
    ValueError: fused together with use_tpu (the TPU program is compiled whole; pass
      fused=False there).
  """
  if fused and use_tpu:
    raise ValueError("fused optimizer kernels are for CPU/GPU; pass fused=False with use_tpu")
  optimizer = AdamWeightDecayOptimizer(learning_rate=learning_rate,
                                       weight_decay_rate=weight_decay_rate,
                                       beta_1=0.9, beta_2=0.999, epsilon=epsilon,
                                       fused=fused, bias_correction=bias_correction)
  if use_tpu:
    optimizer = tf.tpu.CrossShardOptimizer(optimizer)
  return optimizer


def create_optimizer(loss, learning_rate, num_train_steps, weight_decay_rate=0.0,
                     use_tpu=False, warmup_steps=0, warmup_proportion=0, lr_decay_power=1.0,
                     layerwise_lr_decay_power=-1, n_transformer_layers=None,
                     legacy_layerwise_lr=False, fused=False, epsilon=1e-6,
                     bias_correction=False, replica_reduce="mean"):
  """The train op: clipped AdamW step on all trainable variables, global_step += 1.

  Args:
    loss: scalar float32 loss.
    learning_rate: peak learning rate.
    num_train_steps: steps of the polynomial decay to 0.
    weight_decay_rate: decoupled weight decay.
    use_tpu: wrap the optimizer for cross-shard gradient summing.
    warmup_steps, warmup_proportion: linear warm-up length (the larger of the two).
    lr_decay_power: power of the polynomial decay.
    layerwise_lr_decay_power: > 0 enables layer-wise LR decay (finetuning).
    n_transformer_layers: needed with layer-wise decay.
    legacy_layerwise_lr: the original's off-by-one layer depths.
    fused: one XLA kernel per variable update (CPU/GPU only; False with use_tpu).
    epsilon, bias_correction: as make_optimizer.
    replica_reduce: under a tf.distribute strategy with several replicas, how their
      gradients combine: "mean" for a loss averaged over the batch, "sum" for a loss
      summed over it (either way the global batch's gradient). Losses averaged over a
      count that varies between replicas (masked tokens) get the mean of the replicas'
      averages, as TPU's CrossShardOptimizer gives them.

  Returns:
    the train op (update, then global_step + 1).

  Raises:
    ValueError: fused with use_tpu; layer-wise decay without n_transformer_layers.
  """
  global_step = tf.train.get_or_create_global_step()
  lr = learning_rate_schedule(learning_rate, global_step, num_train_steps,
                              warmup_steps=warmup_steps, warmup_proportion=warmup_proportion,
                              lr_decay_power=lr_decay_power)
  if layerwise_lr_decay_power > 0:
    multipliers = layerwise_lr_multipliers(n_transformer_layers, layerwise_lr_decay_power,
                                           legacy=legacy_layerwise_lr)
    lr = collections.OrderedDict((k, lr * m) for k, m in multipliers.items())
  optimizer = make_optimizer(lr, weight_decay_rate=weight_decay_rate, use_tpu=use_tpu,
                             fused=fused, epsilon=epsilon, bias_correction=bias_correction)
  tvars = tf.trainable_variables()
  grads = tf.gradients(loss, tvars)
  replica = tf.distribute.get_replica_context()
  if replica is not None and replica.num_replicas_in_sync > 1:
    # The strategy's all-reduce (NCCL / collective ring / one device), reached as
    # tf.train.Optimizer reaches it (merge_call, batch_reduce_to onto each variable's
    # devices); every replica gets the result back, so all apply the same update.
    present = [i for i, g in enumerate(grads) if g is not None]
    op = tf.distribute.ReduceOp.SUM if replica_reduce == "sum" else tf.distribute.ReduceOp.MEAN
    reduced = replica.merge_call(
        lambda strategy, *pairs: strategy.extended.batch_reduce_to(op, pairs),
        args=tuple((grads[i], tvars[i]) for i in present))
    for i, g in zip(present, reduced):
      grads[i] = g
  grads, _ = tf.clip_by_global_norm(grads, clip_norm=CLIP_NORM)
  train_op = optimizer.apply_gradients(zip(grads, tvars), global_step=global_step)
  # The optimizer leaves global_step alone; increment it once per step, after the update
  # (so the update reads the learning rate of the step it belongs to).
  with tf.control_dependencies([train_op]):
    return tf.group(global_step.assign_add(1))
