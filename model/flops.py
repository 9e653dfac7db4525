"""Estimated FLOPs of an ELECTRA pretraining step, for throughput and utilisation figures.

Convention: a multiply-add is 2 FLOPs; a matmul [m,k]x[k,n] is 2*m*k*n. Element-wise
work is counted with the per-element costs below. The backward pass costs twice the
forward pass (gradients w.r.t. inputs and weights), so training is 3x forward. Sampling
and masking carry no gradient and are counted once. Gathers/lookups count 0.
Checked against the ELECTRA paper's figures in tests/test_configure_pretraining.py.
"""
LAYER_NORM_FLOPS = 7   # mean, sub, square, mean, rsqrt-ish, mul gamma, add beta
GELU_FLOPS = 8         # x * 0.5 * (1 + erf(x / sqrt 2)), erf counted as a few ops
SOFTMAX_FLOPS = 5      # max, sub, exp, sum, div
SIGMOID_XENT_FLOPS = 6
GUMBEL_FLOPS = 6       # uniform noise, 2 logs, adds, argmax compare


def encoder_forward_flops(hp, seq_len, embedding_size, include_embeddings=True):
  """Forward FLOPs of one sequence through embeddings + encoder (BertModel)."""
  h, inter, a, n = (hp["hidden_size"], hp["intermediate_size"], hp["num_attention_heads"],
                    hp["num_hidden_layers"])
  L, e = seq_len, embedding_size
  out = {}
  emb = 0
  if include_embeddings:
    emb += 2 * L * e                 # add position and token-type embeddings
    emb += LAYER_NORM_FLOPS * L * e
  if e != h:
    emb += 2 * L * e * h + L * h     # embeddings_project (dense with bias)
  out["embeddings"] = emb
  layer = 0
  layer += 3 * (2 * L * h * h + L * h)        # query, key, value
  layer += 2 * L * L * h                      # scores q.k over all heads
  layer += L * L * a                          # scale by 1/sqrt(d)
  layer += L * L * a                          # add attention mask
  layer += SOFTMAX_FLOPS * L * L * a
  layer += 2 * L * L * h                      # probs . v
  layer += 2 * L * h * h + L * h              # attention output dense
  layer += L * h + LAYER_NORM_FLOPS * L * h   # residual + LayerNorm
  layer += 2 * L * h * inter + L * inter      # intermediate dense
  layer += GELU_FLOPS * L * inter
  layer += 2 * L * inter * h + L * h          # output dense
  layer += L * h + LAYER_NORM_FLOPS * L * h   # residual + LayerNorm
  out["encoder"] = n * layer
  return out


def estimate_train_flops(config):
  """FLOPs of one ELECTRA pretraining step (whole global batch), with a per-part breakdown.

  Args:
    config: a pretraining config (configure_pretraining.PretrainingConfig); read:
      bert_hparams(), generator_hparams(), embedding_dim(), has_generator_transformer(),
      max_seq_length, max_predictions_per_seq, train_batch_size, uniform_generator,
      untied_generator_embeddings, electra_objective.

  Returns a dict: forward FLOPs per sequence for each part, `forward_per_seq`,
  `train_per_seq` (3x the trained parts' forward + sampling once) and `train_per_step`
  (x train_batch_size).
  """
  disc = config.bert_hparams()
  e = config.embedding_dim()
  v = disc["vocab_size"]
  L = config.max_seq_length
  P = config.max_predictions_per_seq
  parts = {}
  # Generator (or the only encoder, for the MLM-only objective).
  if config.uniform_generator:
    gen_hidden = None
  elif config.has_generator_transformer():
    gen = config.generator_hparams()
    gen_e = gen["hidden_size"] if config.untied_generator_embeddings else e
    f = encoder_forward_flops(gen, L, gen_e)
    parts["generator_embeddings"] = f["embeddings"]
    parts["generator_encoder"] = f["encoder"]
    gen_hidden, head_e = gen["hidden_size"], gen_e
  else:
    f = encoder_forward_flops(disc, L, e)
    parts["generator_embeddings"] = f["embeddings"]
    parts["generator_encoder"] = f["encoder"]
    gen_hidden, head_e = disc["hidden_size"], e
  if gen_hidden is not None:
    head = 2 * P * gen_hidden * head_e + P * head_e       # dense
    head += GELU_FLOPS * P * head_e + LAYER_NORM_FLOPS * P * head_e
    head += 2 * P * head_e * v + P * v                    # tied output matmul + bias
    parts["generator_predictions"] = head
  # Softmax / log-softmax and the loss over the vocabulary at masked positions.
  parts["mlm_softmax_loss"] = 2 * SOFTMAX_FLOPS * P * v + 2 * P * v
  sampling = 0
  if config.electra_objective:
    sampling = GUMBEL_FLOPS * P * v + P * v  # Gumbel noise + temperature division
    f = encoder_forward_flops(disc, L, e)
    parts["discriminator_embeddings"] = f["embeddings"]
    parts["discriminator_encoder"] = f["encoder"]
    h = disc["hidden_size"]
    head = 2 * L * h * h + L * h + GELU_FLOPS * L * h     # dense
    head += 2 * L * h + L                                 # dense_1
    head += SIGMOID_XENT_FLOPS * L
    parts["discriminator_predictions"] = head
  forward = sum(parts.values())
  train_seq = 3 * forward + sampling
  return dict(parts, sampling=sampling, forward_per_seq=forward + sampling,
              train_per_seq=train_seq, train_per_step=train_seq * config.train_batch_size)
