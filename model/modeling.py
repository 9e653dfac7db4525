"""The ELECTRA/BERT transformer encoder (TF1 graph mode), with original ELECTRA variable names.

Variables (see docs/architecture.md and /work/shared/reference):
  electra/embeddings/{word_embeddings, position_embeddings, token_type_embeddings, LayerNorm}
  <scope>/embeddings_project/{kernel, bias}      only when embedding size != hidden size
  <scope>/encoder/layer_N/...                    attention/self/{query,key,value},
                                                 attention/output/{dense,LayerNorm},
                                                 intermediate/dense, output/{dense,LayerNorm}
The generator is built with scope="generator": it reads the discriminator's embeddings under
"electra/embeddings" (one shared table) unless untied_embeddings=True.

All shapes are static when the inputs have static shapes (TPU requirement).

use_bf16: embeddings are looked up and normalised in float32, then the projection and every
transformer matmul run in bfloat16 (variables stay float32 and are cast on use). Softmax,
LayerNorm statistics and the residual sums are float32; outputs are returned as float32.

FUSED_ELEMENTWISE (default on): GELU, dropout + residual add + LayerNorm and attention
scale + mask + softmax + dropout run as XLA-compiled functions with hand-written gradients,
the same math as the plain ops (docs/running.md, "Speed on CPU", has the measurements).
Their dropout masks come from 16-bit random draws (_dropout_bits), which round the rate to
a multiple of 2^-16 (0.1 -> 0.1000061) and rescale kept values by the exact keep
probability. run_pretraining turns it off with use_tpu (the TPU program is XLA-compiled
whole, so the plain ops are used) or the hparam fused_kernels off.
"""
import copy
import json
import math

import tensorflow as tf2
import tensorflow.compat.v1 as tf

LAYER_NORM_EPSILON = 1e-12
# Added to attention scores of padded positions before the softmax (original BERT value).
ATTENTION_MASK_ADDER = -10000.0


class ConfigError(ValueError):
  """A model config file or dict that cannot be used (names the key / file)."""


class BertConfig(object):
  """Encoder hyperparameters. `embedding_size` None means "same as hidden_size"."""

  def __init__(self,
               vocab_size,
               hidden_size=768,
               num_hidden_layers=12,
               num_attention_heads=12,
               intermediate_size=3072,
               hidden_act="gelu",
               hidden_dropout_prob=0.1,
               attention_probs_dropout_prob=0.1,
               max_position_embeddings=512,
               type_vocab_size=2,
               initializer_range=0.02,
               embedding_size=None):
    self.vocab_size = vocab_size
    self.hidden_size = hidden_size
    self.num_hidden_layers = num_hidden_layers
    self.num_attention_heads = num_attention_heads
    self.intermediate_size = intermediate_size
    self.hidden_act = hidden_act
    self.hidden_dropout_prob = hidden_dropout_prob
    self.attention_probs_dropout_prob = attention_probs_dropout_prob
    self.max_position_embeddings = max_position_embeddings
    self.type_vocab_size = type_vocab_size
    self.initializer_range = initializer_range
    self.embedding_size = embedding_size

  @classmethod
  def from_dict(cls, json_object, source="config"):
    """Builds a config; unknown or missing keys raise ConfigError naming them."""
    if not isinstance(json_object, dict):
      raise ConfigError("%s: expected a JSON object, got %s" %
                        (source, type(json_object).__name__))
    known = set(cls(vocab_size=None).__dict__)
    unknown = sorted(set(json_object) - known)
    if unknown:
      raise ConfigError("%s: unknown key(s) %s (known keys: %s)" %
                        (source, ", ".join(repr(k) for k in unknown),
                         ", ".join(sorted(known))))
    if json_object.get("vocab_size") is None:
      raise ConfigError("%s: missing required key 'vocab_size'" % source)
    return cls(**json_object)

  @classmethod
  def from_json_file(cls, json_file):
    from util import fileio
    with fileio.open_file(json_file, "r") as f:
      text = f.read()
    try:
      obj = json.loads(text)
    except ValueError as e:
      raise ConfigError("%s: not valid JSON (%s)" % (json_file, e))
    return cls.from_dict(obj, source=str(json_file))

  def to_dict(self):
    return copy.deepcopy(self.__dict__)

  def to_json_string(self):
    return json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n"

  def __eq__(self, other):
    return isinstance(other, BertConfig) and self.to_dict() == other.to_dict()

  def __repr__(self):
    return "BertConfig(%s)" % ", ".join(
        "%s=%r" % kv for kv in sorted(self.to_dict().items()))


class BertModel(object):
  """The encoder. Outputs are float32 even when use_bf16 computes in bfloat16."""

  def __init__(self,
               bert_config,
               is_training,
               input_ids,
               input_mask=None,
               token_type_ids=None,
               use_one_hot_embeddings=True,
               scope=None,
               embedding_size=None,
               input_embeddings=None,
               input_reprs=None,
               update_embeddings=True,
               untied_embeddings=False,
               use_bf16=False):
    config = copy.deepcopy(bert_config)
    if not is_training:
      config.hidden_dropout_prob = 0.0
      config.attention_probs_dropout_prob = 0.0
    if embedding_size is None:
      embedding_size = config.embedding_size or config.hidden_size
    compute_dtype = tf.bfloat16 if use_bf16 else tf.float32

    input_shape = get_shape_list(input_ids, expected_rank=2)
    batch_size, seq_length = input_shape[0], input_shape[1]
    if input_mask is None:
      input_mask = tf.ones(shape=[batch_size, seq_length], dtype=tf.int32)
    if token_type_ids is None:
      token_type_ids = tf.zeros(shape=[batch_size, seq_length], dtype=tf.int32)

    scope_name = scope or "electra"
    self.embedding_table = None
    self.token_embeddings = None
    if input_reprs is None:
      # The generator reuses the discriminator's embeddings ("electra/embeddings") unless
      # untied; AUTO_REUSE lets whichever model is built first create them.
      embeddings_scope = (scope_name if untied_embeddings else "electra") + "/embeddings"
      with tf.variable_scope(embeddings_scope, reuse=tf.AUTO_REUSE):
        if input_embeddings is None:
          self.token_embeddings, self.embedding_table = embedding_lookup(
              input_ids=input_ids,
              vocab_size=config.vocab_size,
              embedding_size=embedding_size,
              initializer_range=config.initializer_range,
              word_embedding_name="word_embeddings",
              use_one_hot_embeddings=use_one_hot_embeddings)
        else:
          self.token_embeddings = input_embeddings
        self.embedding_output = embedding_postprocessor(
            input_tensor=self.token_embeddings,
            use_token_type=True,
            token_type_ids=token_type_ids,
            token_type_vocab_size=config.type_vocab_size,
            token_type_embedding_name="token_type_embeddings",
            use_position_embeddings=True,
            position_embedding_name="position_embeddings",
            initializer_range=config.initializer_range,
            max_position_embeddings=config.max_position_embeddings,
            dropout_prob=config.hidden_dropout_prob)
    else:
      self.embedding_output = input_reprs
    if not update_embeddings:
      self.embedding_output = tf.stop_gradient(self.embedding_output)

    with tf.variable_scope(scope_name):
      hidden = tf.cast(self.embedding_output, compute_dtype)
      if self.embedding_output.shape[-1] != config.hidden_size:
        hidden = dense(hidden, config.hidden_size, name="embeddings_project",
                       kernel_initializer=create_initializer(config.initializer_range))
      with tf.variable_scope("encoder"):
        attention_mask = create_attention_mask_from_input_mask(input_ids, input_mask)
        layer_outputs, attn_maps = transformer_model(
            input_tensor=hidden,
            attention_mask=attention_mask,
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            intermediate_act_fn=get_activation(config.hidden_act),
            hidden_dropout_prob=config.hidden_dropout_prob,
            attention_probs_dropout_prob=config.attention_probs_dropout_prob,
            initializer_range=config.initializer_range)
      self.all_layer_outputs = [tf.cast(t, tf.float32) for t in layer_outputs]
      self.attn_maps = [tf.cast(t, tf.float32) for t in attn_maps]
      self.sequence_output = self.all_layer_outputs[-1]
      # ELECTRA has no pooler layer: the [CLS] vector is the pooled output.
      self.pooled_output = self.sequence_output[:, 0]

  def get_pooled_output(self):
    return self.pooled_output

  def get_sequence_output(self):
    """[batch_size, seq_length, hidden_size] float32."""
    return self.sequence_output

  def get_all_encoder_layers(self):
    """One [batch_size, seq_length, hidden_size] tensor per transformer layer."""
    return self.all_layer_outputs

  def get_embedding_output(self):
    """Embeddings after LayerNorm/dropout, before embeddings_project (float32)."""
    return self.embedding_output

  def get_embedding_table(self):
    """The (shared) word embedding variable, [vocab_size, embedding_size]."""
    return self.embedding_table


def gelu(x):
  """Exact GELU, x * Phi(x) with erf (as the original checkpoints were trained).

  Forward and backward each run as one fused XLA kernel (see _fused): on CPU the unfused
  graph is ~10 memory-bound element-wise passes over [tokens, intermediate] and took ~20%
  of a training step; fused it is ~2.7x faster. Same formula, so results agree with
  `gelu_reference` to float rounding.
  """
  if not FUSED_ELEMENTWISE:
    return gelu_reference(x)
  return _gelu_fused(x)


def gelu_reference(x):
  """The unfused exact-erf GELU (TF ops only)."""
  return x * (0.5 * (1.0 + tf.math.erf(x * _SQRT_HALF)))


_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
# Fuse GELU and LayerNorm into XLA-compiled functions (forward and hand-written backward).
# Off: the plain TF ops, e.g. to compare against or on a platform without an XLA JIT.
FUSED_ELEMENTWISE = True


def _fused(fn):
  # jit_compile: XLA compiles the function (on CPU too, no global JIT flags needed) and
  # fuses its element-wise ops into one loop. One trace per input signature, so all layers
  # of one width share one compiled kernel. Inside a TPU computation it is simply inlined.
  return tf2.function(fn, jit_compile=True, autograph=False)


def _outer_axes(x):
  return list(range(x.shape.ndims - 1))


@_fused
def _gelu_fwd(x, bias=None):
  if bias is None:
    return gelu_reference(x)
  return tf.cast(gelu_reference(tf.cast(x, tf.float32) + bias), x.dtype)


@_fused
def _gelu_bwd(x, dy, bias=None):
  """dx (and, with a bias, the float32 bias gradient: dx summed over the outer axes)."""
  h, dy_h = x, dy
  if bias is not None:
    h, dy_h = tf.cast(x, tf.float32) + bias, tf.cast(dy, tf.float32)
  # d/dh h*Phi(h) = Phi(h) + h*phi(h); recomputing Phi here is cheaper than storing it.
  cdf = 0.5 * (1.0 + tf.math.erf(h * _SQRT_HALF))
  pdf = tf.exp(-0.5 * tf.square(h)) * _INV_SQRT_2PI
  dh = dy_h * (cdf + h * pdf)
  if bias is None:
    return dh
  return tf.cast(dh, x.dtype), tf.reduce_sum(dh, _outer_axes(x))


@tf.custom_gradient
def _gelu_fused(x):
  def grad(dy):
    return _gelu_bwd(x, dy)
  return _gelu_fwd(x), grad


@tf.custom_gradient
def _bias_gelu_fused(x, bias):
  """gelu(x + bias), the sum in float32: the bias add and its gradient (a reduction that
  BiasAddGrad does slowly in bfloat16 on CPU) ride along in the GELU kernels."""
  def grad(dy):
    return _gelu_bwd(x, dy, bias)
  return _gelu_fwd(x, bias), grad


def get_activation(activation_string):
  """Maps a config string ("gelu", "relu", "tanh", "linear") to a function."""
  if not isinstance(activation_string, str):
    return activation_string
  act = activation_string.lower()
  if not act or act == "linear":
    return None
  table = {"relu": tf.nn.relu, "gelu": gelu, "tanh": tf.tanh}
  if act not in table:
    raise ConfigError("unsupported hidden_act %r (use one of: gelu, relu, tanh, linear)" %
                      activation_string)
  return table[act]


def dropout(input_tensor, dropout_prob):
  if dropout_prob is None or dropout_prob == 0.0:
    return input_tensor
  if FUSED_ELEMENTWISE:
    return _dropout_fused(input_tensor, dropout_prob)
  return tf.nn.dropout(input_tensor, rate=dropout_prob)


_BITS_RANGE = 1 << 16


def _dropout_threshold(rate):
  """(threshold, scale) for a dropout rate: keep where bits >= threshold, kept values times
  scale. The drop probability is threshold / 2^16, the rate rounded to a multiple of 2^-16
  (0.1 -> 0.1000061; tf.nn.dropout's float draw rounds it too, to 2^-23); scale is one over
  the resulting keep probability, so the expected value is unchanged exactly."""
  rate = float(rate)
  threshold = int(round(rate * _BITS_RANGE))
  if not 0.0 <= rate < 1.0 or threshold >= _BITS_RANGE:
    raise ConfigError("dropout rate %r is outside [0, 1)" % rate)
  return threshold, _BITS_RANGE / float(_BITS_RANGE - threshold)


def _dropout_bits(shape):
  """uint16 random bits of `shape`, one per dropout decision.

  Drawn as full-range uint32 (stateless Philox, seeded per run by a stateful op, so every
  step draws afresh and tf.set_random_seed makes a run repeatable) and split in halves:
  half the generator work and memory of the float32 uniform tf.nn.dropout draws, which was
  the largest element-wise cost of a CPU training step.
  """
  if all(isinstance(d, int) for d in shape):
    size = math.prod(shape)
  else:
    size = tf.reduce_prod(tf.stack(shape))
  seed = tf.random.uniform([2], minval=-2 ** 31, maxval=2 ** 31 - 1, dtype=tf.int32)
  words = tf.random.stateless_uniform([(size + 1) // 2], seed, minval=None, maxval=None,
                                      dtype=tf.uint32)
  bits = tf.reshape(tf.bitcast(words, tf.uint16), [-1])
  if not isinstance(size, int) or size % 2:
    bits = bits[:size]
  return tf.reshape(bits, shape)


def _dropout_mask(shape, rate):
  """(bits, threshold, scale) for the fused kernels; (None, 0, 1.0) without dropout."""
  if not rate:
    return None, 0, 1.0
  threshold, scale = _dropout_threshold(rate)
  return _dropout_bits(shape), threshold, scale


def _apply_mask(x, bits, threshold, scale):
  """Inside a kernel: x (float32) where kept, times scale; 0 where dropped."""
  return x if bits is None else tf2.where(bits >= threshold, x * scale, 0.0)


@_fused
def _dropout_fwd(x, bits, threshold, scale):
  # Scaled in float32: a bfloat16 scale 1/0.9 would round to 1.109.
  return tf.cast(_apply_mask(tf.cast(x, tf.float32), bits, threshold, scale), x.dtype)


def _dropout_fused(x, rate):
  bits, threshold, scale = _dropout_mask(get_shape_list(x), rate)

  @tf.custom_gradient
  def fused(x, bits):
    def grad(dy):
      return _dropout_fwd(dy, bits, threshold, scale), None
    return _dropout_fwd(x, bits, threshold, scale), grad

  return fused(x, bits)


def layer_norm(input_tensor, name=None, residual=None, dropout_prob=0.0, bias=None):
  """LayerNorm over the last axis of `input_tensor` (+ `residual`), variables
  `<name>/gamma` and `<name>/beta`; with dropout_prob, `input_tensor` is dropped out first
  (the transformer's dropout(x) + residual); `bias` (float32, from dense(return_bias=True))
  is added to `input_tensor` before all that.

  The sum and the statistics are computed in float32 (as on TPU); the result has the
  input's dtype. With FUSED_ELEMENTWISE, forward and backward each run as one XLA kernel
  (dropout included).
  """
  dtype = input_tensor.dtype
  width = input_tensor.shape[-1]
  with tf.variable_scope(name, default_name="LayerNorm"):
    beta = tf.get_variable("beta", [width], tf.float32, initializer=tf.zeros_initializer())
    gamma = tf.get_variable("gamma", [width], tf.float32, initializer=tf.ones_initializer())
    gamma_t, beta_t = tf.convert_to_tensor(gamma), tf.convert_to_tensor(beta)
    if FUSED_ELEMENTWISE and residual is not None:
      return _add_layer_norm_fused(input_tensor, residual, gamma_t, beta_t, dropout_prob,
                                   bias)
    if bias is not None:
      input_tensor = tf.nn.bias_add(input_tensor, tf.cast(bias, dtype))
    if FUSED_ELEMENTWISE:
      return _layer_norm_fused(dropout(input_tensor, dropout_prob), gamma_t, beta_t)
    input_tensor = dropout(input_tensor, dropout_prob)
    x = tf.cast(input_tensor, tf.float32)
    if residual is not None:
      x += tf.cast(residual, tf.float32)
    y = _layer_norm_math(x, gamma_t, beta_t)
  return tf.cast(y, dtype)


def _layer_norm_stats(x):
  """Mean and 1/std of x over its last axis (two-pass, as tf.nn.moments), keepdims."""
  mean = tf.reduce_mean(x, -1, keepdims=True)
  variance = tf.reduce_mean(tf.square(x - mean), -1, keepdims=True)
  return mean, tf.math.rsqrt(variance + LAYER_NORM_EPSILON)


def _layer_norm_math(x, gamma, beta):
  """float32 LayerNorm of x over its last axis."""
  return _ln_with_stats(x, gamma, beta, tf.float32)[0]


def _layer_norm_grad(x, gamma, dy, mean, rstd):
  """Gradients of _layer_norm_math w.r.t. (x, gamma, beta), given the forward's statistics
  (kept from the forward kernel: recomputing them took a third of the backward)."""
  normed = (x - mean) * rstd
  dy = tf.cast(dy, tf.float32)
  g = dy * gamma
  dx = rstd * (g - tf.reduce_mean(g, -1, keepdims=True) -
               normed * tf.reduce_mean(g * normed, -1, keepdims=True))
  outer = _outer_axes(x)
  return dx, tf.reduce_sum(dy * normed, outer), tf.reduce_sum(dy, outer)


def _ln_with_stats(h, gamma, beta, dtype):
  """(LayerNorm(h) in dtype, mean, 1/std) for float32 h."""
  mean, rstd = _layer_norm_stats(h)
  return tf.cast((h - mean) * rstd * gamma + beta, dtype), mean, rstd


@_fused
def _ln_fwd(x, gamma, beta):
  """(LayerNorm(x), mean, 1/std): the statistics go to the backward kernel."""
  return _ln_with_stats(tf.cast(x, tf.float32), gamma, beta, x.dtype)


@_fused
def _ln_bwd(x, gamma, dy, mean, rstd):
  dx, dgamma, dbeta = _layer_norm_grad(tf.cast(x, tf.float32), gamma, dy, mean, rstd)
  return tf.cast(dx, x.dtype), dgamma, dbeta


def _dropped_sum(x, residual, bits, threshold, scale, bias):
  x = tf.cast(x, tf.float32)
  if bias is not None:
    x += bias
  return _apply_mask(x, bits, threshold, scale) + tf.cast(residual, tf.float32)


@_fused
def _add_ln_fwd(x, residual, gamma, beta, bits, threshold, scale, bias=None):
  """(LayerNorm(dropout(x + bias) + residual), mean, 1/std)."""
  h = _dropped_sum(x, residual, bits, threshold, scale, bias)
  return _ln_with_stats(h, gamma, beta, x.dtype)


@_fused
def _add_ln_bwd(x, residual, gamma, dy, mean, rstd, bits, threshold, scale, bias=None):
  """(dx, dresidual, dgamma, dbeta), then dbias (float32) when there is a bias."""
  h = _dropped_sum(x, residual, bits, threshold, scale, bias)
  dh, dgamma, dbeta = _layer_norm_grad(h, gamma, dy, mean, rstd)
  dx = _apply_mask(dh, bits, threshold, scale)
  grads = (tf.cast(dx, x.dtype), tf.cast(dh, residual.dtype), dgamma, dbeta)
  if bias is not None:
    grads += (tf.reduce_sum(dx, _outer_axes(x)),)
  return grads


@tf.custom_gradient
def _layer_norm_fused(x, gamma, beta):
  def grad(dy):
    return _ln_bwd(x, gamma, dy, mean, rstd)
  y, mean, rstd = _ln_fwd(x, gamma, beta)
  return y, grad


def _add_layer_norm_fused(x, residual, gamma, beta, dropout_prob=0.0, bias=None):
  bits, threshold, scale = _dropout_mask(get_shape_list(x), dropout_prob)

  @tf.custom_gradient
  def fused(x, residual, gamma, beta, *extra):
    b = extra[0] if bias is not None else None

    def grad(dy):
      grads = list(_add_ln_bwd(x, residual, gamma, dy, mean, rstd, bits, threshold, scale,
                               b))
      return grads + [None] * (4 + len(extra) - len(grads))  # None for the bits
    y, mean, rstd = _add_ln_fwd(x, residual, gamma, beta, bits, threshold, scale, b)
    return y, grad

  extra = [t for t in (bias, bits) if t is not None]
  return fused(x, residual, gamma, beta, *extra)


def layer_norm_and_dropout(input_tensor, dropout_prob, name=None):
  return dropout(layer_norm(input_tensor, name), dropout_prob)


def create_initializer(initializer_range=0.02):
  return tf.truncated_normal_initializer(stddev=initializer_range)


def dense(input_tensor, units, name, activation=None, kernel_initializer=None,
          use_bias=True, return_bias=False):
  """A dense layer with variables `<name>/kernel` and `<name>/bias` (float32).

  Weights are cast to the input's dtype, so a bfloat16 input gives a bfloat16 matmul.
  Works on inputs of any rank >= 2 (applied to the last axis).
  return_bias: return (output, bias); with FUSED_ELEMENTWISE and a bfloat16 input the bias
  is then NOT added, for the caller's next fused kernel to add (layer_norm(bias=...));
  otherwise it is added and None returned. Likewise a GELU activation then takes the bias
  add into its kernel: oneDNN's bfloat16 matmul + bias costs up to twice the plain matmul
  on CPU (float32 biases it fuses cheaply, so they stay in the matmul).
  """
  dtype = input_tensor.dtype
  shape = get_shape_list(input_tensor)
  width = shape[-1]
  with tf.variable_scope(name):
    kernel = tf.get_variable("kernel", [width, units], tf.float32,
                             initializer=kernel_initializer or create_initializer())
    x = tf.reshape(input_tensor, [-1, width]) if len(shape) != 2 else input_tensor
    y = tf.matmul(x, tf.cast(kernel, dtype))
    deferred = None
    # oneDNN fuses a float32 bias into the matmul cheaply; a bfloat16 one it does not.
    defer = FUSED_ELEMENTWISE and dtype == tf.bfloat16
    if use_bias:
      bias = tf.get_variable("bias", [units], tf.float32, initializer=tf.zeros_initializer())
      if defer and return_bias:
        deferred = tf.convert_to_tensor(bias)
      elif defer and activation is gelu:
        y, activation = _bias_gelu_fused(y, tf.convert_to_tensor(bias)), None
      else:
        y = tf.nn.bias_add(y, tf.cast(bias, dtype))
    if activation is not None:
      y = activation(y)
  if len(shape) != 2:
    y = tf.reshape(y, shape[:-1] + [units])
  return (y, deferred) if return_bias else y


def embedding_lookup(input_ids, vocab_size, embedding_size=128, initializer_range=0.02,
                     word_embedding_name="word_embeddings", use_one_hot_embeddings=False):
  """Looks up ids [batch, seq] -> ([batch, seq, embedding_size], table).

  The one-hot matmul form is faster on TPU; the gather form is cheaper on CPU/GPU.
  """
  embedding_table = tf.get_variable(
      name=word_embedding_name, shape=[vocab_size, embedding_size],
      initializer=create_initializer(initializer_range))
  input_shape = get_shape_list(input_ids)
  flat_ids = tf.reshape(input_ids, [-1])
  if use_one_hot_embeddings:
    one_hot = tf.one_hot(flat_ids, depth=vocab_size)
    output = tf.matmul(one_hot, embedding_table)
  else:
    output = tf.gather(embedding_table, flat_ids)
  output = tf.reshape(output, input_shape + [embedding_size])
  return output, embedding_table


def embedding_postprocessor(input_tensor, use_token_type=False, token_type_ids=None,
                            token_type_vocab_size=2,
                            token_type_embedding_name="token_type_embeddings",
                            use_position_embeddings=True,
                            position_embedding_name="position_embeddings",
                            initializer_range=0.02, max_position_embeddings=512,
                            dropout_prob=0.1):
  """Adds token-type and position embeddings, then LayerNorm and dropout."""
  input_shape = get_shape_list(input_tensor, expected_rank=3)
  batch_size, seq_length, width = input_shape
  output = input_tensor
  if use_token_type:
    if token_type_ids is None:
      raise ValueError("token_type_ids must be given when use_token_type is True")
    token_type_table = tf.get_variable(
        name=token_type_embedding_name, shape=[token_type_vocab_size, width],
        initializer=create_initializer(initializer_range))
    # The vocabulary is tiny, so a one-hot matmul is fastest everywhere.
    flat_ids = tf.reshape(token_type_ids, [-1])
    one_hot = tf.one_hot(flat_ids, depth=token_type_vocab_size)
    token_type_embeddings = tf.matmul(one_hot, token_type_table)
    output += tf.reshape(token_type_embeddings, [batch_size, seq_length, width])
  if use_position_embeddings:
    if isinstance(seq_length, int) and seq_length > max_position_embeddings:
      raise ValueError("sequence length %d exceeds max_position_embeddings %d" %
                       (seq_length, max_position_embeddings))
    # The full table always exists (512 rows), whatever the sequence length.
    full_position_embeddings = tf.get_variable(
        name=position_embedding_name, shape=[max_position_embeddings, width],
        initializer=create_initializer(initializer_range))
    position_embeddings = tf.slice(full_position_embeddings, [0, 0], [seq_length, -1])
    output += tf.expand_dims(position_embeddings, 0)
  return layer_norm_and_dropout(output, dropout_prob, name="LayerNorm")


def create_attention_mask_from_input_mask(from_tensor, to_mask):
  """[batch, from_seq] x mask [batch, to_seq] -> float32 mask [batch, from_seq, to_seq]."""
  from_shape = get_shape_list(from_tensor, expected_rank=[2, 3])
  batch_size, from_seq_length = from_shape[0], from_shape[1]
  to_shape = get_shape_list(to_mask, expected_rank=2)
  to_seq_length = to_shape[1]
  to_mask = tf.cast(tf.reshape(to_mask, [batch_size, 1, to_seq_length]), tf.float32)
  broadcast_ones = tf.ones(shape=[batch_size, from_seq_length, 1], dtype=tf.float32)
  return broadcast_ones * to_mask


def attention_layer(from_tensor, to_tensor, attention_mask=None, num_attention_heads=1,
                    size_per_head=512, attention_probs_dropout_prob=0.0,
                    initializer_range=0.02, batch_size=None, from_seq_length=None,
                    to_seq_length=None):
  """Multi-head attention on 2D inputs [batch*seq, width].

  Returns ([batch*from_seq, heads*size_per_head], probs [batch, heads, from, to]).
  Scores are computed in the inputs' dtype; the softmax runs in float32.
  """
  dtype = from_tensor.dtype
  init = create_initializer(initializer_range)
  width = num_attention_heads * size_per_head
  query = dense(from_tensor, width, name="query", kernel_initializer=init)
  key = dense(to_tensor, width, name="key", kernel_initializer=init)
  value = dense(to_tensor, width, name="value", kernel_initializer=init)

  def split_heads(t, seq_length):
    t = tf.reshape(t, [batch_size, seq_length, num_attention_heads, size_per_head])
    return tf.transpose(t, [0, 2, 1, 3])

  query = split_heads(query, from_seq_length)
  key = split_heads(key, to_seq_length)
  value = split_heads(value, to_seq_length)
  scores = tf.matmul(query, key, transpose_b=True)
  scale = 1.0 / math.sqrt(float(size_per_head))
  adder = None
  if attention_mask is not None:
    mask = tf.expand_dims(tf.cast(attention_mask, tf.float32), axis=1)
    adder = (1.0 - mask) * ATTENTION_MASK_ADDER
  # The probabilities returned (attention maps) are only computed if fetched.
  probs = _masked_softmax(scores, adder, scale)
  if FUSED_ELEMENTWISE:
    dropped = _softmax_dropout_fused(scores, adder, scale, attention_probs_dropout_prob,
                                     dtype)
  else:
    dropped = dropout(tf.cast(probs, dtype), attention_probs_dropout_prob)
  context = tf.matmul(dropped, value)
  context = tf.transpose(context, [0, 2, 1, 3])
  context = tf.reshape(context, [batch_size * from_seq_length, width])
  return context, tf.cast(probs, dtype)


def _scaled_scores(scores, adder, scale):
  scores = tf.cast(scores, tf.float32) * scale
  if adder is not None:
    scores += adder
  return scores


def _masked_softmax(scores, adder, scale):
  """float32 softmax(scores * scale + adder) over the last axis."""
  return tf.nn.softmax(_scaled_scores(scores, adder, scale))


@_fused
def _softmax_dropout_fwd(scores, adder, bits, scale, threshold, keep_scale):
  """(dropout(softmax(z)), logsumexp(z)) for z = scores * scale + adder; the row
  log-sum-exp lets the backward recompute the softmax without its two row reductions."""
  z = _scaled_scores(scores, adder, scale)
  row_max = tf.reduce_max(z, -1, keepdims=True)
  e = tf.exp(z - row_max)
  total = tf.reduce_sum(e, -1, keepdims=True)
  probs = _apply_mask(e / total, bits, threshold, keep_scale)
  return tf.cast(probs, scores.dtype), row_max + tf.math.log(total)


@_fused
def _softmax_dropout_bwd(scores, adder, bits, dy, lse, scale, threshold, keep_scale):
  probs = tf.exp(_scaled_scores(scores, adder, scale) - lse)
  dy = _apply_mask(tf.cast(dy, tf.float32), bits, threshold, keep_scale)
  dscores = probs * (dy - tf.reduce_sum(dy * probs, -1, keepdims=True)) * scale
  return tf.cast(dscores, scores.dtype)


def _softmax_dropout_fused(scores, adder, scale, rate, dtype):
  """dropout(softmax(scores * scale + adder)) as one XLA kernel each way (float32 inside).

  The keep mask comes from 16-bit draws (_dropout_bits); the backward recomputes the
  softmax from the forward's row log-sum-exp rather than keeping a float32 copy of it.
  """
  scores = tf.cast(scores, dtype)
  bits, threshold, keep_scale = _dropout_mask(get_shape_list(scores), rate)
  inputs = [t for t in (scores, adder, bits) if t is not None]

  @tf.custom_gradient
  def fused(*args):
    it = iter(args)
    s = next(it)
    a = next(it) if adder is not None else None
    b = next(it) if bits is not None else None

    def grad(dy):
      dscores = _softmax_dropout_bwd(s, a, b, dy, lse, scale, threshold, keep_scale)
      return [dscores] + [None] * (len(args) - 1)
    dropped, lse = _softmax_dropout_fwd(s, a, b, scale, threshold, keep_scale)
    return dropped, grad

  return fused(*inputs)


def transformer_model(input_tensor, attention_mask=None, hidden_size=768,
                      num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072,
                      intermediate_act_fn=gelu, hidden_dropout_prob=0.1,
                      attention_probs_dropout_prob=0.1, initializer_range=0.02):
  """Post-LayerNorm transformer layers `layer_0..layer_{N-1}` in the current scope.

  Returns (list of [batch, seq, hidden] layer outputs, list of attention probabilities),
  both in the input's dtype.
  """
  if hidden_size % num_attention_heads != 0:
    raise ConfigError("hidden_size %d is not a multiple of num_attention_heads %d" %
                      (hidden_size, num_attention_heads))
  size_per_head = hidden_size // num_attention_heads
  input_shape = get_shape_list(input_tensor, expected_rank=3)
  batch_size, seq_length, input_width = input_shape
  if input_width != hidden_size:
    raise ValueError("input width %d != hidden_size %d" % (input_width, hidden_size))
  init = create_initializer(initializer_range)

  prev_output = reshape_to_matrix(input_tensor)
  all_layer_outputs, attn_maps = [], []
  for layer_idx in range(num_hidden_layers):
    with tf.variable_scope("layer_%d" % layer_idx):
      layer_input = prev_output
      with tf.variable_scope("attention"):
        with tf.variable_scope("self"):
          attention_output, probs = attention_layer(
              from_tensor=layer_input, to_tensor=layer_input,
              attention_mask=attention_mask, num_attention_heads=num_attention_heads,
              size_per_head=size_per_head,
              attention_probs_dropout_prob=attention_probs_dropout_prob,
              initializer_range=initializer_range, batch_size=batch_size,
              from_seq_length=seq_length, to_seq_length=seq_length)
          attn_maps.append(probs)
        with tf.variable_scope("output"):
          attention_output, bias = dense(attention_output, hidden_size, name="dense",
                                         kernel_initializer=init, return_bias=True)
          attention_output = _residual_layer_norm(attention_output, layer_input,
                                                  hidden_dropout_prob, bias)
      with tf.variable_scope("intermediate"):
        intermediate_output = dense(attention_output, intermediate_size, name="dense",
                                    activation=intermediate_act_fn, kernel_initializer=init)
      with tf.variable_scope("output"):
        layer_output, bias = dense(intermediate_output, hidden_size, name="dense",
                                   kernel_initializer=init, return_bias=True)
        layer_output = _residual_layer_norm(layer_output, attention_output,
                                            hidden_dropout_prob, bias)
      prev_output = layer_output
      all_layer_outputs.append(reshape_from_matrix(layer_output, input_shape))
  return all_layer_outputs, attn_maps


def _residual_layer_norm(x, residual, dropout_prob, bias=None):
  # LayerNorm(dropout(x + bias) + residual). The residual sum is formed in float32 so
  # bfloat16 rounding is not compounded.
  return layer_norm(x, name="LayerNorm", residual=residual, dropout_prob=dropout_prob,
                    bias=bias)


def get_shape_list(tensor, expected_rank=None, name=None):
  """Shape as a list: Python ints where static, scalar tensors where dynamic."""
  if expected_rank is not None:
    assert_rank(tensor, expected_rank, name)
  shape = tensor.shape.as_list()
  non_static = [i for i, dim in enumerate(shape) if dim is None]
  if not non_static:
    return shape
  dyn_shape = tf.shape(tensor)
  for i in non_static:
    shape[i] = dyn_shape[i]
  return shape


def reshape_to_matrix(input_tensor):
  """[..., width] -> [N, width]."""
  ndims = input_tensor.shape.ndims
  if ndims < 2:
    raise ValueError("input tensor must have rank >= 2, got shape %s" % input_tensor.shape)
  if ndims == 2:
    return input_tensor
  width = input_tensor.shape[-1]
  return tf.reshape(input_tensor, [-1, width])


def reshape_from_matrix(output_tensor, orig_shape_list):
  """[N, width] -> orig_shape_list[:-1] + [width]."""
  if len(orig_shape_list) == 2:
    return output_tensor
  output_shape = get_shape_list(output_tensor)
  return tf.reshape(output_tensor, orig_shape_list[0:-1] + [output_shape[-1]])


def assert_rank(tensor, expected_rank, name=None):
  """Raises ValueError if the tensor's static rank is not expected_rank (int or list)."""
  if name is None:
    name = tensor.name
  expected = set(expected_rank) if isinstance(expected_rank, (list, tuple)) else {expected_rank}
  actual = tensor.shape.ndims
  if actual not in expected:
    raise ValueError("tensor %s has rank %s, expected %s (shape %s)" %
                     (name, actual, sorted(expected), tensor.shape))

