"""XLA-fused CPU/GPU kernels for the encoder's element-wise work, with hand-written gradients.

`model/modeling.py` calls these when it is built with `fused=True` (run_pretraining passes
`fused_kernels and not use_tpu`); with `fused=False` it uses the plain TF ops, the
original's graph and the one a TPU runs (XLA compiles the whole TPU program anyway).
Every kernel computes the same formula as the plain ops it replaces, so outputs and
gradients agree to float rounding (tests/test_fused_ops.py); docs/running.md, "Speed on
CPU", has the measurements behind each one.

Why: on CPU the unfused graph runs each element-wise op (GELU's ~10 ops, dropout's draw,
compare and scale, the residual add, LayerNorm's statistics) as its own memory-bound pass
over [tokens, width] tensors. Here forward and backward each run as one compiled loop.

Kernels (all statistics and sums in float32; results in the input's dtype):
  gelu(x), bias_gelu(x, bias)                   exact-erf GELU, optionally of x + bias
  dropout(x, rate)                              16-bit random draws (see dropout_bits)
  layer_norm(x, gamma, beta, epsilon)           LayerNorm over the last axis
  residual_layer_norm(x, residual, ...)         LayerNorm(dropout(x + bias) + residual)
  softmax_dropout(scores, adder, scale, ...)    dropout(softmax(scores * scale + adder))

XLA:CPU runs each compiled kernel on one thread. Splitting every kernel into one row block
per core (run at once by TF's inter-op pool) was tried and removed: it cost bfloat16
pretraining 9% and gained 5-7% only on bfloat16 sentence-task training (docs/running.md).

Dropout masks come from 16-bit random draws, which round the rate to a multiple of 2^-16
(0.1 -> 0.1000061) and rescale kept values by the exact keep probability.
"""
import math
from typing import List, Optional, Tuple, Union

import tensorflow as tf2
import tensorflow.compat.v1 as tf

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_BITS_RANGE = 1 << 16

Dim = Union[int, tf.Tensor]


def xla_kernel(fn):
  """Compiles `fn` as one XLA function (its element-wise ops fuse into one loop).

  jit_compile works on CPU without global JIT flags. One trace per input signature, so
  all layers of one width share one compiled kernel; inside a TPU computation the
  function is simply inlined. Python scalars are compiled in as constants.
  """
  return tf2.function(fn, jit_compile=True, autograph=False)


def _shape(x: tf.Tensor) -> List[Dim]:
  """Static dimensions as ints, unknown ones as scalar tensors."""
  shape = x.shape.as_list()
  if None in shape:
    dynamic = tf.shape(x)
    shape = [d if d is not None else dynamic[i] for i, d in enumerate(shape)]
  return shape


def _outer_axes(x: tf.Tensor) -> List[int]:
  return list(range(x.shape.ndims - 1))


# --- GELU ---------------------------------------------------------------------------------

def _gelu_math(x):
  return x * (0.5 * (1.0 + tf.math.erf(x * _SQRT_HALF)))


@xla_kernel
def _gelu_fwd(x, bias=None):
  if bias is None:
    return _gelu_math(x)
  return tf.cast(_gelu_math(tf.cast(x, tf.float32) + bias), x.dtype)


@xla_kernel
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
def gelu(x: tf.Tensor) -> tf.Tensor:
  """Exact GELU x * Phi(x) (erf form), forward and backward one kernel each.

  The unfused graph is ~10 memory-bound passes over [tokens, intermediate] and took ~20%
  of a CPU training step; fused it is ~2.7x faster.

  Args:
    x: float tensor of any shape.

  Returns:
    GELU(x), same shape and dtype.
  """
  def grad(dy):
    return _gelu_bwd(x, dy)
  return _gelu_fwd(x), grad


@tf.custom_gradient
def bias_gelu(x: tf.Tensor, bias: tf.Tensor) -> tf.Tensor:
  """GELU(x + bias), the sum formed in float32 inside the kernel.

  The bias add and its gradient (a reduction that BiasAddGrad does slowly in bfloat16 on
  CPU) ride along in the GELU kernels; modeling.dense uses this for a bfloat16 matmul
  followed by GELU.

  Args:
    x: [..., W] matmul output (bfloat16 or float32).
    bias: [W] float32.

  Returns:
    [..., W] in x's dtype.
  """
  def grad(dy):
    return _gelu_bwd(x, dy, bias)
  return _gelu_fwd(x, bias), grad


# --- dropout ------------------------------------------------------------------------------

def dropout_threshold(rate: float) -> Tuple[int, float]:
  """The integer form of a dropout rate for 16-bit draws.

  Keep where bits >= threshold; kept values are multiplied by scale. The drop probability
  is threshold / 2^16, the rate rounded to a multiple of 2^-16 (0.1 -> 0.1000061;
  tf.nn.dropout's float draw rounds it too, to 2^-23); scale is one over the resulting
  keep probability, so the expected value is unchanged exactly.

  Args:
    rate: drop probability in [0, 1).

  Returns:
    (threshold, scale).

  Raises:
    ValueError: rate outside [0, 1) (or so close to 1 that it rounds to 1).
  """
  rate = float(rate)
  threshold = int(round(rate * _BITS_RANGE))
  if not 0.0 <= rate < 1.0 or threshold >= _BITS_RANGE:
    raise ValueError("dropout rate %r is outside [0, 1)" % rate)
  return threshold, _BITS_RANGE / float(_BITS_RANGE - threshold)


def dropout_bits(shape: List[Dim]) -> tf.Tensor:
  """uint16 random bits of `shape`, one per dropout decision.

  Drawn as full-range uint32 (stateless Philox, seeded per run by a stateful op, so every
  step draws afresh and tf.set_random_seed makes a run repeatable) and split in halves:
  half the generator work and memory of the float32 uniform draws of tf.nn.dropout, which
  were the largest element-wise cost of a CPU training step.

  Args:
    shape: list of ints or scalar int32 tensors.

  Returns:
    uint16 tensor of `shape`.
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
  """(bits, threshold, scale) for the kernels; (None, 0, 1.0) without dropout."""
  if not rate:
    return None, 0, 1.0
  threshold, scale = dropout_threshold(rate)
  return dropout_bits(shape), threshold, scale


def _apply_mask(x, bits, threshold, scale):
  """Inside a kernel: x (float32) where kept, times scale; 0 where dropped."""
  return x if bits is None else tf2.where(bits >= threshold, x * scale, 0.0)


@xla_kernel
def _dropout_fwd(x, bits, threshold, scale):
  # Scaled in float32: a bfloat16 scale 1/0.9 would round to 1.109.
  return tf.cast(_apply_mask(tf.cast(x, tf.float32), bits, threshold, scale), x.dtype)


def dropout(x: tf.Tensor, rate: float) -> tf.Tensor:
  """Inverted dropout in one kernel each way; the gradient uses the same keep mask.

  Args:
    x: float tensor of any shape.
    rate: drop probability in [0, 1); 0 or None returns x unchanged.

  Returns:
    x with dropped entries zeroed and kept ones scaled (in float32) by 1 / keep.
  """
  if not rate:
    return x
  bits, threshold, scale = _dropout_mask(_shape(x), rate)

  @tf.custom_gradient
  def fused(x, bits):
    def grad(dy):
      return _dropout_fwd(dy, bits, threshold, scale), None
    return _dropout_fwd(x, bits, threshold, scale), grad

  return fused(x, bits)


# --- LayerNorm ------------------------------------------------------------------------------

def _ln_with_stats(h, gamma, beta, epsilon, dtype):
  """(LayerNorm(h) in dtype, mean, 1/std) for float32 h; two-pass statistics, as
  tf.nn.moments."""
  mean = tf.reduce_mean(h, -1, keepdims=True)
  variance = tf.reduce_mean(tf.square(h - mean), -1, keepdims=True)
  rstd = tf.math.rsqrt(variance + epsilon)
  return tf.cast((h - mean) * rstd * gamma + beta, dtype), mean, rstd


def _layer_norm_grad(x, gamma, dy, mean, rstd):
  """Gradients of LayerNorm w.r.t. (x, gamma, beta), given the forward's statistics
  (kept from the forward kernel: recomputing them took a third of the backward)."""
  normed = (x - mean) * rstd
  dy = tf.cast(dy, tf.float32)
  g = dy * gamma
  dx = rstd * (g - tf.reduce_mean(g, -1, keepdims=True) -
               normed * tf.reduce_mean(g * normed, -1, keepdims=True))
  outer = _outer_axes(x)
  return dx, tf.reduce_sum(dy * normed, outer), tf.reduce_sum(dy, outer)


@xla_kernel
def _ln_fwd(x, gamma, beta, epsilon):
  """(LayerNorm(x), mean, 1/std): the statistics go to the backward kernel."""
  return _ln_with_stats(tf.cast(x, tf.float32), gamma, beta, epsilon, x.dtype)


@xla_kernel
def _ln_bwd(x, gamma, dy, mean, rstd):
  dx, dgamma, dbeta = _layer_norm_grad(tf.cast(x, tf.float32), gamma, dy, mean, rstd)
  return tf.cast(dx, x.dtype), dgamma, dbeta


def layer_norm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor,
               epsilon: float) -> tf.Tensor:
  """LayerNorm over the last axis, statistics in float32, one kernel each way.

  Args:
    x: [..., W] float tensor.
    gamma, beta: [W] float32 tensors.
    epsilon: added to the variance.

  Returns:
    [..., W] in x's dtype.
  """
  @tf.custom_gradient
  def fused(x, gamma, beta):
    def grad(dy):
      return _ln_bwd(x, gamma, dy, mean, rstd)
    y, mean, rstd = _ln_fwd(x, gamma, beta, epsilon)
    return y, grad

  return fused(x, gamma, beta)


def _dropped_sum(x, residual, bits, threshold, scale, bias):
  x = tf.cast(x, tf.float32)
  if bias is not None:
    x += bias
  return _apply_mask(x, bits, threshold, scale) + tf.cast(residual, tf.float32)


@xla_kernel
def _add_ln_fwd(x, residual, gamma, beta, bits, threshold, scale, epsilon, bias=None):
  """(LayerNorm(dropout(x + bias) + residual), mean, 1/std)."""
  h = _dropped_sum(x, residual, bits, threshold, scale, bias)
  return _ln_with_stats(h, gamma, beta, epsilon, x.dtype)


@xla_kernel
def _add_ln_bwd(x, residual, gamma, dy, mean, rstd, bits, threshold, scale, bias=None):
  """(dx, dresidual, dgamma, dbeta), then dbias (float32) when there is a bias."""
  h = _dropped_sum(x, residual, bits, threshold, scale, bias)
  dh, dgamma, dbeta = _layer_norm_grad(h, gamma, dy, mean, rstd)
  dx = _apply_mask(dh, bits, threshold, scale)
  grads = (tf.cast(dx, x.dtype), tf.cast(dh, residual.dtype), dgamma, dbeta)
  if bias is not None:
    grads += (tf.reduce_sum(dx, _outer_axes(x)),)
  return grads


def residual_layer_norm(x: tf.Tensor, residual: tf.Tensor, gamma: tf.Tensor,
                        beta: tf.Tensor, epsilon: float, dropout_prob: float = 0.0,
                        bias: Optional[tf.Tensor] = None) -> tf.Tensor:
  """LayerNorm(dropout(x + bias) + residual) in one kernel each way (dropout included).

  Args:
    x: [..., W] sublayer output (bfloat16 or float32), without its bias if `bias` given.
    residual: [..., W] the sublayer's input.
    gamma, beta: [W] float32.
    epsilon: added to the variance.
    dropout_prob: dropout rate applied to x + bias.
    bias: optional [W] float32, added to x in float32 inside the kernel.

  Returns:
    [..., W] in x's dtype.
  """
  bits, threshold, scale = _dropout_mask(_shape(x), dropout_prob)

  @tf.custom_gradient
  def fused(x, residual, gamma, beta, *extra):
    b = extra[0] if bias is not None else None

    def grad(dy):
      grads = list(_add_ln_bwd(x, residual, gamma, dy, mean, rstd, bits, threshold, scale,
                               b))
      return grads + [None] * (4 + len(extra) - len(grads))  # None for the bits
    y, mean, rstd = _add_ln_fwd(x, residual, gamma, beta, bits, threshold, scale, epsilon,
                                b)
    return y, grad

  extra = [t for t in (bias, bits) if t is not None]
  return fused(x, residual, gamma, beta, *extra)


# --- attention softmax ------------------------------------------------------------------

def _scaled_scores(scores, adder, scale):
  scores = tf.cast(scores, tf.float32) * scale
  if adder is not None:
    scores += adder
  return scores


@xla_kernel
def _softmax_dropout_fwd(scores, adder, bits, scale, threshold, keep_scale):
  """(dropout(softmax(z)), logsumexp(z)) for z = scores * scale + adder; the row
  log-sum-exp lets the backward recompute the softmax without its two row reductions."""
  z = _scaled_scores(scores, adder, scale)
  row_max = tf.reduce_max(z, -1, keepdims=True)
  e = tf.exp(z - row_max)
  total = tf.reduce_sum(e, -1, keepdims=True)
  probs = _apply_mask(e / total, bits, threshold, keep_scale)
  return tf.cast(probs, scores.dtype), row_max + tf.math.log(total)


@xla_kernel
def _softmax_dropout_bwd(scores, adder, bits, dy, lse, scale, threshold, keep_scale):
  probs = tf.exp(_scaled_scores(scores, adder, scale) - lse)
  dy = _apply_mask(tf.cast(dy, tf.float32), bits, threshold, keep_scale)
  dscores = probs * (dy - tf.reduce_sum(dy * probs, -1, keepdims=True)) * scale
  return tf.cast(dscores, scores.dtype)


def softmax_dropout(scores: tf.Tensor, adder: Optional[tf.Tensor], scale: float,
                    rate: float, dtype: tf.DType) -> tf.Tensor:
  """dropout(softmax(scores * scale + adder)) over the last axis, one kernel each way.

  Float32 inside. The backward recomputes the softmax from the forward's row log-sum-exp
  rather than keeping a float32 copy of the probabilities.

  Args:
    scores: [B, N, F, T] raw attention scores (query . key).
    adder: [B, 1, F, T] float32 mask adder (0 or a large negative), or None.
    scale: 1 / sqrt(H).
    rate: attention dropout rate.
    dtype: dtype of the result (the matmul dtype).

  Returns:
    [B, N, F, T] dropped-out probabilities in `dtype`.
  """
  scores = tf.cast(scores, dtype)
  bits, threshold, keep_scale = _dropout_mask(_shape(scores), rate)
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
