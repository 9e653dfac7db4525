"""The ELECTRA/BERT transformer encoder (TF1 graph mode), with original ELECTRA variable names.

Reads top to bottom as the model runs: BertConfig -> BertModel -> embeddings ->
transformer layers -> attention -> dense / activation -> shape helpers.

Variables (see docs/architecture.md and /work/shared/reference):
  electra/embeddings/{word_embeddings, position_embeddings, token_type_embeddings, LayerNorm}
  <scope>/embeddings_project/{kernel, bias}      only when embedding size != hidden size
  <scope>/encoder/layer_N/...                    attention/self/{query,key,value},
                                                 attention/output/{dense,LayerNorm},
                                                 intermediate/dense, output/{dense,LayerNorm}
The generator is built with scope="generator": it reads the discriminator's embeddings under
"electra/embeddings" (one shared table) unless untied_embeddings=True.

Initialisers, as the original: truncated normal(initializer_range) for embeddings and
transformer kernels, Glorot uniform for embeddings_project (the original's tf.layers.dense
default), zero biases, LayerNorm gamma 1 / beta 0.

All shapes are static when the inputs have static shapes (TPU requirement). Shape letters:
  B batch size, S sequence length (F "from" / T "to" in attention), E embedding size,
  W hidden size, I intermediate size, N attention heads, H size per head (W = N * H).

use_bf16: embeddings are looked up and normalised in float32, then the projection and every
transformer matmul run in bfloat16 (variables stay float32 and are cast on use). Softmax,
LayerNorm statistics and the residual sums are float32; outputs are returned as float32.

fused (default False): GELU, dropout (+ residual add) + LayerNorm and attention softmax +
dropout run as the XLA-compiled kernels of model/fused_ops.py, the same math; False is the
plain TF ops of the original, and what a TPU runs. Each function below that has element-wise
work takes `fused` explicitly.
"""
import copy
import json
import math
from typing import Callable, List, Optional, Tuple, Union

import tensorflow.compat.v1 as tf

from model import fused_ops
from util import errors

LAYER_NORM_EPSILON = 1e-12
# Added to attention scores of padded positions before the softmax (original BERT value).
ATTENTION_MASK_ADDER = -10000.0

Dim = Union[int, tf.Tensor]


# A model config file or dict that cannot be used (names the key / file).
ConfigError = errors.ConfigError


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
               bert_config: BertConfig,
               is_training: bool,
               input_ids: tf.Tensor,
               input_mask: Optional[tf.Tensor] = None,
               token_type_ids: Optional[tf.Tensor] = None,
               use_one_hot_embeddings: bool = True,
               scope: Optional[str] = None,
               embedding_size: Optional[int] = None,
               input_embeddings: Optional[tf.Tensor] = None,
               input_reprs: Optional[tf.Tensor] = None,
               update_embeddings: bool = True,
               untied_embeddings: bool = False,
               use_bf16: bool = False,
               fused: bool = False,
               last_layer_positions: Optional[int] = None):
    """Builds the encoder graph.

    Args:
      bert_config: the encoder's hyperparameters.
      is_training: False sets both dropout rates to 0.
      input_ids: [B, S] int32 token ids.
      input_mask: [B, S] int32, 1 for real tokens, 0 for padding (default all 1).
      token_type_ids: [B, S] int32 segment ids (default all 0).
      use_one_hot_embeddings: look up word embeddings by one-hot matmul (fast on TPU)
        rather than tf.gather (fast on CPU/GPU).
      scope: variable scope of the transformer (default "electra"; "generator").
      embedding_size: E; None takes bert_config.embedding_size, then the hidden size.
      input_embeddings: [B, S, E] word embeddings to use instead of looking up input_ids.
      input_reprs: [B, S, E] embedding-layer output to use instead of computing it.
      update_embeddings: False stops gradients at the embedding output.
      untied_embeddings: give this model its own `<scope>/embeddings` instead of sharing
        "electra/embeddings".
      use_bf16: run the projection and transformer matmuls in bfloat16.
      fused: use the XLA-fused CPU/GPU kernels (model/fused_ops.py); False on TPU.
      last_layer_positions: compute the last layer only for the first n positions of
        each sequence (its keys and values still come from every position), for heads
        that read [CLS] alone; the last layer's output is then [B, n, W]. None: all.

    Raises:
      ConfigError: hidden size not a multiple of the head count, unknown activation.
      ValueError: inputs of the wrong rank, sequence longer than the position table.
    """
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
            dropout_prob=config.hidden_dropout_prob,
            fused=fused)
    else:
      self.embedding_output = input_reprs
    if not update_embeddings:
      self.embedding_output = tf.stop_gradient(self.embedding_output)

    with tf.variable_scope(scope_name):
      hidden = tf.cast(self.embedding_output, compute_dtype)              # [B, S, E]
      if self.embedding_output.shape[-1] != config.hidden_size:
        # The original uses tf.layers.dense defaults here: Glorot-uniform kernel, zero bias.
        hidden = dense(hidden, config.hidden_size, name="embeddings_project",
                       kernel_initializer=tf.glorot_uniform_initializer(), fused=fused)
      with tf.variable_scope("encoder"):
        attention_mask = create_attention_mask_from_input_mask(input_ids, input_mask)
        layer_outputs, attn_maps = transformer_model(
            input_tensor=hidden,
            attention_mask=attention_mask,
            hidden_size=config.hidden_size,
            num_hidden_layers=config.num_hidden_layers,
            num_attention_heads=config.num_attention_heads,
            intermediate_size=config.intermediate_size,
            intermediate_act_fn=get_activation(config.hidden_act, fused=fused),
            hidden_dropout_prob=config.hidden_dropout_prob,
            attention_probs_dropout_prob=config.attention_probs_dropout_prob,
            initializer_range=config.initializer_range,
            fused=fused, last_layer_positions=last_layer_positions)
      self.all_layer_outputs = [tf.cast(t, tf.float32) for t in layer_outputs]
      self.attn_maps = [tf.cast(t, tf.float32) for t in attn_maps]
      self.sequence_output = self.all_layer_outputs[-1]
      # ELECTRA has no pooler layer: the [CLS] vector is the pooled output.
      self.pooled_output = self.sequence_output[:, 0]

  def get_pooled_output(self) -> tf.Tensor:
    """[B, W] float32: the [CLS] position of the last layer (ELECTRA has no pooler)."""
    return self.pooled_output

  def get_sequence_output(self) -> tf.Tensor:
    """[B, S, W] float32: the last layer's output."""
    return self.sequence_output

  def get_all_encoder_layers(self) -> List[tf.Tensor]:
    """One [B, S, W] float32 tensor per transformer layer."""
    return self.all_layer_outputs

  def get_embedding_output(self) -> tf.Tensor:
    """[B, S, E] embeddings after LayerNorm/dropout, before embeddings_project (float32)."""
    return self.embedding_output

  def get_embedding_table(self) -> Optional[tf.Variable]:
    """The (shared) word embedding variable, [vocab_size, E]; None with input_reprs or
    input_embeddings."""
    return self.embedding_table


# --- embeddings -----------------------------------------------------------------------------

def embedding_lookup(input_ids: tf.Tensor, vocab_size: int, embedding_size: int = 128,
                     initializer_range: float = 0.02,
                     word_embedding_name: str = "word_embeddings",
                     use_one_hot_embeddings: bool = False) -> Tuple[tf.Tensor, tf.Variable]:
  """Looks up word embeddings (variable `word_embedding_name` in the current scope).

  The one-hot matmul form is faster on TPU; the gather form is cheaper on CPU/GPU.

  Args:
    input_ids: [B, S] int32.
    vocab_size, embedding_size: the table's shape.
    initializer_range: stddev of the truncated normal initialiser.
    word_embedding_name: the variable's name.
    use_one_hot_embeddings: one-hot matmul instead of tf.gather.

  Returns:
    ([B, S, E] float32 embeddings, the [vocab_size, E] table).
  """
  embedding_table = tf.get_variable(
      name=word_embedding_name, shape=[vocab_size, embedding_size],
      initializer=create_initializer(initializer_range))
  input_shape = get_shape_list(input_ids)
  flat_ids = tf.reshape(input_ids, [-1])                                    # [B*S]
  if use_one_hot_embeddings:
    one_hot = tf.one_hot(flat_ids, depth=vocab_size)
    output = tf.matmul(one_hot, embedding_table)
  else:
    output = tf.gather(embedding_table, flat_ids)
  output = tf.reshape(output, input_shape + [embedding_size])               # [B, S, E]
  return output, embedding_table


def embedding_postprocessor(input_tensor: tf.Tensor, use_token_type: bool = False,
                            token_type_ids: Optional[tf.Tensor] = None,
                            token_type_vocab_size: int = 2,
                            token_type_embedding_name: str = "token_type_embeddings",
                            use_position_embeddings: bool = True,
                            position_embedding_name: str = "position_embeddings",
                            initializer_range: float = 0.02,
                            max_position_embeddings: int = 512,
                            dropout_prob: float = 0.1, fused: bool = False) -> tf.Tensor:
  """Adds token-type and position embeddings, then LayerNorm and dropout.

  Args:
    input_tensor: [B, S, E] word embeddings.
    use_token_type: add token-type embeddings (then token_type_ids is required).
    token_type_ids: [B, S] int32.
    token_type_vocab_size: rows of the token-type table.
    token_type_embedding_name, position_embedding_name: the variables' names.
    use_position_embeddings: add learned absolute position embeddings.
    initializer_range: stddev of the truncated normal initialisers.
    max_position_embeddings: rows of the position table (created whole, whatever S is).
    dropout_prob: dropout rate after the LayerNorm.
    fused: fused kernels for the LayerNorm and dropout.

  Returns:
    [B, S, E] float32.

  Raises:
    ValueError: token_type_ids missing, or S longer than max_position_embeddings.
  """
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
    flat_ids = tf.reshape(token_type_ids, [-1])                             # [B*S]
    one_hot = tf.one_hot(flat_ids, depth=token_type_vocab_size)
    token_type_embeddings = tf.matmul(one_hot, token_type_table)
    output += tf.reshape(token_type_embeddings, [batch_size, seq_length, width])
  if use_position_embeddings:
    if isinstance(seq_length, int) and seq_length > max_position_embeddings:
      raise ValueError("sequence length %d exceeds max_position_embeddings %d" %
                       (seq_length, max_position_embeddings))
    full_position_embeddings = tf.get_variable(
        name=position_embedding_name, shape=[max_position_embeddings, width],
        initializer=create_initializer(initializer_range))
    position_embeddings = tf.slice(full_position_embeddings, [0, 0], [seq_length, -1])
    output += tf.expand_dims(position_embeddings, 0)                        # [1, S, E]
  return layer_norm_and_dropout(output, dropout_prob, name="LayerNorm", fused=fused)


def layer_norm_and_dropout(input_tensor: tf.Tensor, dropout_prob: float,
                           name: Optional[str] = None, fused: bool = False) -> tf.Tensor:
  """dropout(LayerNorm(input_tensor)); see layer_norm and dropout."""
  return dropout(layer_norm(input_tensor, name, fused=fused), dropout_prob, fused=fused)


def layer_norm(input_tensor: tf.Tensor, name: Optional[str] = None,
               residual: Optional[tf.Tensor] = None, dropout_prob: float = 0.0,
               bias: Optional[tf.Tensor] = None, fused: bool = False) -> tf.Tensor:
  """LayerNorm over the last axis, variables `<name>/beta` (zeros), `<name>/gamma` (ones).

  Computes LayerNorm(dropout(input_tensor + bias) + residual) when residual / dropout_prob
  / bias are given (the transformer's sublayer output); the sum and the statistics are
  float32 (as on TPU) so bfloat16 rounding is not compounded.

  Args:
    input_tensor: [..., W] float32 or bfloat16.
    name: variable scope (default "LayerNorm").
    residual: optional [..., W], added after the dropout.
    dropout_prob: dropout rate applied to input_tensor (+ bias).
    bias: optional [W] float32, e.g. the bias dense(defer_bias=True) left out.
    fused: one XLA kernel each way (model/fused_ops.py), dropout included.

  Returns:
    [..., W] in input_tensor's dtype.
  """
  dtype = input_tensor.dtype
  width = input_tensor.shape[-1]
  with tf.variable_scope(name, default_name="LayerNorm"):
    beta = tf.get_variable("beta", [width], tf.float32, initializer=tf.zeros_initializer())
    gamma = tf.get_variable("gamma", [width], tf.float32, initializer=tf.ones_initializer())
    gamma_t, beta_t = tf.convert_to_tensor(gamma), tf.convert_to_tensor(beta)
    if fused and residual is not None:
      return fused_ops.residual_layer_norm(input_tensor, residual, gamma_t, beta_t,
                                           LAYER_NORM_EPSILON, dropout_prob, bias)
    if bias is not None:
      input_tensor = tf.nn.bias_add(input_tensor, tf.cast(bias, dtype))
    input_tensor = dropout(input_tensor, dropout_prob, fused=fused)
    if fused:
      return fused_ops.layer_norm(input_tensor, gamma_t, beta_t, LAYER_NORM_EPSILON)
    x = tf.cast(input_tensor, tf.float32)
    if residual is not None:
      x += tf.cast(residual, tf.float32)
    # Two-pass statistics, as tf.nn.moments (and the fused kernel).
    mean = tf.reduce_mean(x, -1, keepdims=True)
    variance = tf.reduce_mean(tf.square(x - mean), -1, keepdims=True)
    y = (x - mean) * tf.math.rsqrt(variance + LAYER_NORM_EPSILON) * gamma_t + beta_t
  return tf.cast(y, dtype)


def dropout(input_tensor: tf.Tensor, dropout_prob: Optional[float],
            fused: bool = False) -> tf.Tensor:
  """Inverted dropout (kept values scaled by 1 / (1 - dropout_prob)).

  Args:
    input_tensor: float tensor of any shape.
    dropout_prob: drop probability; None or 0 returns input_tensor unchanged.
    fused: one kernel with 16-bit draws (fused_ops.dropout: the rate rounds to a multiple
      of 2^-16) instead of tf.nn.dropout.

  Returns:
    Same shape and dtype.
  """
  if dropout_prob is None or dropout_prob == 0.0:
    return input_tensor
  if fused:
    return fused_ops.dropout(input_tensor, dropout_prob)
  return tf.nn.dropout(input_tensor, rate=dropout_prob)


# --- transformer --------------------------------------------------------------------------

def create_attention_mask_from_input_mask(from_tensor: tf.Tensor,
                                          to_mask: tf.Tensor) -> tf.Tensor:
  """Broadcasts a padding mask to every query position.

  Args:
    from_tensor: [B, F] or [B, F, ...] (only its shape is used).
    to_mask: [B, T] int32, 1 for real tokens.

  Returns:
    [B, F, T] float32.
  """
  from_shape = get_shape_list(from_tensor, expected_rank=[2, 3])
  batch_size, from_seq_length = from_shape[0], from_shape[1]
  to_shape = get_shape_list(to_mask, expected_rank=2)
  to_seq_length = to_shape[1]
  to_mask = tf.cast(tf.reshape(to_mask, [batch_size, 1, to_seq_length]), tf.float32)
  broadcast_ones = tf.ones(shape=[batch_size, from_seq_length, 1], dtype=tf.float32)
  return broadcast_ones * to_mask                                           # [B, F, T]


def transformer_model(input_tensor: tf.Tensor, attention_mask: Optional[tf.Tensor] = None,
                      hidden_size: int = 768, num_hidden_layers: int = 12,
                      num_attention_heads: int = 12, intermediate_size: int = 3072,
                      intermediate_act_fn: Union[str, Callable, None] = "gelu",
                      hidden_dropout_prob: float = 0.1,
                      attention_probs_dropout_prob: float = 0.1,
                      initializer_range: float = 0.02,
                      fused: bool = False,
                      last_layer_positions: Optional[int] = None
                      ) -> Tuple[List[tf.Tensor], List[tf.Tensor]]:
  """Post-LayerNorm transformer layers `layer_0..layer_{N-1}` in the current scope.

  Args:
    input_tensor: [B, S, W] float32 or bfloat16 (the matmul dtype).
    attention_mask: [B, S, S] float32, 1 where a query may attend to a key.
    hidden_size, num_hidden_layers, num_attention_heads, intermediate_size: W, layers, N, I.
    intermediate_act_fn: activation of the intermediate dense layer: a function, None
      (linear) or a name for get_activation(name, fused).
    hidden_dropout_prob: dropout on each sublayer's output before its residual add.
    attention_probs_dropout_prob: dropout on the attention probabilities.
    initializer_range: stddev of the truncated normal kernel initialisers.
    fused: fused element-wise kernels; in bfloat16 the output dense layers' biases are
      then added inside the residual LayerNorm kernel (dense(defer_bias=True)).
    last_layer_positions: n: the last layer computes only the first n query positions
      of each sequence (keys and values from all S), giving [B, n, W] and [B, N, n, S];
      the same values as those rows of the whole layer. None: every position.

  Returns:
    (list of [B, S, W] layer outputs, list of [B, N, S, S] attention probabilities), both
    in input_tensor's dtype.

  Raises:
    ConfigError: hidden_size not a multiple of num_attention_heads.
    ValueError: input width differs from hidden_size.
  """
  if hidden_size % num_attention_heads != 0:
    raise ConfigError("hidden_size %d is not a multiple of num_attention_heads %d" %
                      (hidden_size, num_attention_heads))
  intermediate_act_fn = get_activation(intermediate_act_fn, fused=fused)
  size_per_head = hidden_size // num_attention_heads
  input_shape = get_shape_list(input_tensor, expected_rank=3)
  batch_size, seq_length, input_width = input_shape
  if input_width != hidden_size:
    raise ValueError("input width %d != hidden_size %d" % (input_width, hidden_size))
  init = create_initializer(initializer_range)
  # oneDNN fuses a float32 bias into its matmul cheaply but a bfloat16 one costs up to a
  # second matmul on CPU, so with fused kernels the bfloat16 biases go into the LayerNorm.
  defer_bias = fused and input_tensor.dtype == tf.bfloat16

  def output_sublayer(x, residual):
    """LayerNorm(dropout(dense(x)) + residual) under scope dense / LayerNorm."""
    out = dense(x, hidden_size, name="dense", kernel_initializer=init, fused=fused,
                defer_bias=defer_bias)
    out, bias = out if defer_bias else (out, None)
    return layer_norm(out, name="LayerNorm", residual=residual,
                      dropout_prob=hidden_dropout_prob, bias=bias, fused=fused)

  prev_output = reshape_to_matrix(input_tensor)                             # [B*S, W]
  all_layer_outputs, attn_maps = [], []
  for layer_idx in range(num_hidden_layers):
    with tf.variable_scope("layer_%d" % layer_idx):
      layer_input = prev_output
      queries, from_length, mask = layer_input, seq_length, attention_mask
      output_shape = input_shape
      if last_layer_positions and layer_idx == num_hidden_layers - 1:
        # Only these rows reach the output: the rest of the last layer is never read.
        from_length = last_layer_positions
        queries = tf.reshape(tf.reshape(layer_input, [batch_size, seq_length, hidden_size])
                             [:, :from_length], [-1, hidden_size])          # [B*n, W]
        mask = None if mask is None else mask[:, :from_length]               # [B, n, S]
        output_shape = [batch_size, from_length, hidden_size]
      with tf.variable_scope("attention"):
        with tf.variable_scope("self"):
          attention_output, probs = attention_layer(
              from_tensor=queries, to_tensor=layer_input,
              attention_mask=mask, num_attention_heads=num_attention_heads,
              size_per_head=size_per_head,
              attention_probs_dropout_prob=attention_probs_dropout_prob,
              initializer_range=initializer_range, batch_size=batch_size,
              from_seq_length=from_length, to_seq_length=seq_length, fused=fused)
          attn_maps.append(probs)
        with tf.variable_scope("output"):
          attention_output = output_sublayer(attention_output, queries)
      with tf.variable_scope("intermediate"):
        intermediate_output = dense(attention_output, intermediate_size, name="dense",
                                    activation=intermediate_act_fn, kernel_initializer=init,
                                    fused=fused)                            # [B*S, I]
      with tf.variable_scope("output"):
        layer_output = output_sublayer(intermediate_output, attention_output)
      prev_output = layer_output
      all_layer_outputs.append(reshape_from_matrix(layer_output, output_shape))
  return all_layer_outputs, attn_maps


def attention_layer(from_tensor: tf.Tensor, to_tensor: tf.Tensor,
                    attention_mask: Optional[tf.Tensor] = None, num_attention_heads: int = 1,
                    size_per_head: int = 512, attention_probs_dropout_prob: float = 0.0,
                    initializer_range: float = 0.02, batch_size: Optional[Dim] = None,
                    from_seq_length: Optional[Dim] = None,
                    to_seq_length: Optional[Dim] = None,
                    fused: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
  """Multi-head scaled dot-product attention on flattened inputs.

  Shapes: B batch, F from (query) length, T to (key) length, N heads, H size per head.
  Scores are computed in the inputs' dtype; the softmax runs in float32.

  Args:
    from_tensor: [B*F, W_from] queries' input.
    to_tensor: [B*T, W_to] keys' and values' input.
    attention_mask: [B, F, T], 1 where attending is allowed.
    num_attention_heads, size_per_head: N, H.
    attention_probs_dropout_prob: dropout on the probabilities.
    initializer_range: stddev of the query/key/value kernel initialisers.
    batch_size, from_seq_length, to_seq_length: B, F, T.
    fused: softmax + dropout as one kernel each way (fused_ops.softmax_dropout).

  Returns:
    (context [B*F, N*H], probabilities [B, N, F, T] before dropout), in from_tensor's
    dtype. The probabilities (attention maps) are only computed if fetched.
  """
  dtype = from_tensor.dtype
  init = create_initializer(initializer_range)
  width = num_attention_heads * size_per_head
  query = dense(from_tensor, width, name="query", kernel_initializer=init, fused=fused)
  key = dense(to_tensor, width, name="key", kernel_initializer=init, fused=fused)
  value = dense(to_tensor, width, name="value", kernel_initializer=init, fused=fused)

  def split_heads(t, seq_length):
    t = tf.reshape(t, [batch_size, seq_length, num_attention_heads, size_per_head])
    return tf.transpose(t, [0, 2, 1, 3])                                    # [B, N, S, H]

  query = split_heads(query, from_seq_length)                               # [B, N, F, H]
  key = split_heads(key, to_seq_length)                                     # [B, N, T, H]
  value = split_heads(value, to_seq_length)                                 # [B, N, T, H]
  scores = tf.matmul(query, key, transpose_b=True)                          # [B, N, F, T]
  scale = 1.0 / math.sqrt(float(size_per_head))
  adder = None
  if attention_mask is not None:
    mask = tf.expand_dims(tf.cast(attention_mask, tf.float32), axis=1)      # [B, 1, F, T]
    adder = (1.0 - mask) * ATTENTION_MASK_ADDER
  z = tf.cast(scores, tf.float32) * scale
  if adder is not None:
    z += adder
  probs = tf.nn.softmax(z)                                                  # [B, N, F, T]
  if fused:
    dropped = fused_ops.softmax_dropout(scores, adder, scale, attention_probs_dropout_prob,
                                        dtype)
  else:
    dropped = dropout(tf.cast(probs, dtype), attention_probs_dropout_prob)
  context = tf.matmul(dropped, value)                                       # [B, N, F, H]
  context = tf.transpose(context, [0, 2, 1, 3])                             # [B, F, N, H]
  context = tf.reshape(context, [batch_size * from_seq_length, width])      # [B*F, N*H]
  return context, tf.cast(probs, dtype)


# --- dense layers and activations ------------------------------------------------------------

def dense(input_tensor: tf.Tensor, units: int, name: str,
          activation: Optional[Callable] = None,
          kernel_initializer: Optional[Callable] = None,
          use_bias: bool = True, fused: bool = False,
          defer_bias: bool = False) -> Union[tf.Tensor, Tuple[tf.Tensor, tf.Tensor]]:
  """A dense layer with variables `<name>/kernel` and `<name>/bias` (float32).

  Weights are cast to the input's dtype, so a bfloat16 input gives a bfloat16 matmul.

  Args:
    input_tensor: [..., D] (rank >= 2), float32 or bfloat16.
    units: output width U.
    name: variable scope.
    activation: applied to the output (after the bias), or None.
    kernel_initializer: default truncated normal(0.02).
    use_bias: create and add `<name>/bias` (zeros).
    fused: with a bfloat16 input and the fused GELU (get_activation("gelu", fused=True)),
      the bias add runs in float32 inside the GELU kernels (fused_ops.bias_gelu): oneDNN's
      bfloat16 matmul + bias costs up to twice the plain matmul on CPU.
    defer_bias: do not add the bias; return it for the caller to add (the residual
      LayerNorm kernel takes it, layer_norm(bias=...)). Needs use_bias and no activation.

  Returns:
    [..., U] in the input's dtype; with defer_bias, ([..., U] without the bias, the [U]
    float32 bias).

  Raises:
    ValueError: defer_bias with use_bias False or with an activation.
  """
  if defer_bias and (not use_bias or activation is not None):
    raise ValueError("dense %r: defer_bias needs use_bias and no activation" % name)
  dtype = input_tensor.dtype
  shape = get_shape_list(input_tensor)
  width = shape[-1]
  with tf.variable_scope(name):
    kernel = tf.get_variable("kernel", [width, units], tf.float32,
                             initializer=kernel_initializer or create_initializer())
    x = tf.reshape(input_tensor, [-1, width]) if len(shape) != 2 else input_tensor
    y = tf.matmul(x, tf.cast(kernel, dtype))
    bias = None
    if use_bias:
      bias = tf.convert_to_tensor(
          tf.get_variable("bias", [units], tf.float32, initializer=tf.zeros_initializer()))
      if defer_bias:
        pass
      elif fused and dtype == tf.bfloat16 and activation is fused_ops.gelu:
        y, activation = fused_ops.bias_gelu(y, bias), None
      else:
        y = tf.nn.bias_add(y, tf.cast(bias, dtype))
    if activation is not None:
      y = activation(y)
  if len(shape) != 2:
    y = tf.reshape(y, shape[:-1] + [units])
  return (y, bias) if defer_bias else y


def create_initializer(initializer_range: float = 0.02):
  """The truncated normal initialiser of the original's kernels and embeddings."""
  return tf.truncated_normal_initializer(stddev=initializer_range)


def get_activation(activation_string: Union[str, Callable, None],
                   fused: bool = False) -> Optional[Callable]:
  """Maps a config string ("gelu", "relu", "tanh", "linear") to a function.

  Args:
    activation_string: the name; a callable (or None) is returned unchanged.
    fused: "gelu" gives the fused kernel fused_ops.gelu (same math) instead of gelu.

  Returns:
    The activation function, or None for "linear" / "".

  Raises:
    ConfigError: an unknown name.
  """
  if not isinstance(activation_string, str):
    return activation_string
  act = activation_string.lower()
  if not act or act == "linear":
    return None
  table = {"relu": tf.nn.relu, "gelu": fused_ops.gelu if fused else gelu, "tanh": tf.tanh}
  if act not in table:
    raise ConfigError("unsupported hidden_act %r (use one of: gelu, relu, tanh, linear)" %
                      activation_string)
  return table[act]


def gelu(x: tf.Tensor, fused: bool = False) -> tf.Tensor:
  """Exact GELU, x * Phi(x) with erf (as the original checkpoints were trained).

  Args:
    x: float tensor of any shape.
    fused: one XLA kernel each way (fused_ops.gelu), same formula.

  Returns:
    Same shape and dtype.
  """
  if fused:
    return fused_ops.gelu(x)
  return x * (0.5 * (1.0 + tf.math.erf(x * (1.0 / math.sqrt(2.0)))))


# --- shape helpers --------------------------------------------------------------------------

def get_shape_list(tensor: tf.Tensor, expected_rank=None, name: Optional[str] = None
                   ) -> List[Dim]:
  """The shape as a list: Python ints where static, scalar tensors where dynamic.

  Args:
    tensor: any tensor.
    expected_rank: an int or list of ints; checked if given.
    name: the tensor's name in the error message.

  Returns:
    list of int or scalar int32 tensor.

  Raises:
    ValueError: the rank is not expected_rank.
  """
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


def reshape_to_matrix(input_tensor: tf.Tensor) -> tf.Tensor:
  """[..., W] -> [N, W] (rank 2 is returned as it is)."""
  ndims = input_tensor.shape.ndims
  if ndims < 2:
    raise ValueError("input tensor must have rank >= 2, got shape %s" % input_tensor.shape)
  if ndims == 2:
    return input_tensor
  width = input_tensor.shape[-1]
  return tf.reshape(input_tensor, [-1, width])


def reshape_from_matrix(output_tensor: tf.Tensor, orig_shape_list: List[Dim]) -> tf.Tensor:
  """[N, W] -> orig_shape_list[:-1] + [W]."""
  if len(orig_shape_list) == 2:
    return output_tensor
  output_shape = get_shape_list(output_tensor)
  return tf.reshape(output_tensor, orig_shape_list[0:-1] + [output_shape[-1]])


def assert_rank(tensor: tf.Tensor, expected_rank, name: Optional[str] = None) -> None:
  """Raises ValueError if the tensor's static rank is not expected_rank (int or list)."""
  if name is None:
    name = tensor.name
  expected = set(expected_rank) if isinstance(expected_rank, (list, tuple)) else {expected_rank}
  actual = tensor.shape.ndims
  if actual not in expected:
    raise ValueError("tensor %s has rank %s, expected %s (shape %s)" %
                     (name, actual, sorted(expected), tensor.shape))
