"""Memory of an ELECTRA pretraining step on one device, counted from the model's shapes.

Two parts:

- **State**, per parameter: the float32 weight, its gradient and the two Adam slots
  (`adam_m`, `adam_v`) of the original's AdamWeightDecayOptimizer: 16 bytes. Parameters are
  counted from the shapes model/sizes.py gives, variable by variable as the checkpoint holds
  them (tests/test_memory.py checks the counts against the original's variable list).
- **Activations**, per example: the forward tensors the backward pass reads, counted for
  the graph as written (TensorFlow running it op by op, fused kernels off, dropout on).
  Per encoder layer, L tokens, hidden h, FFN width i, a heads:

      layer input (read by the Q/K/V weight gradients)            L*h
      Q, K, V (read by the two attention matmuls' gradients)        3*L*h
      softmax output, float32 (its gradient)                        a*L*L
      dropout on the probabilities: keep mask, dropped probs        2*a*L*L
      context (output dense's weight gradient)                      L*h
      dropout mask and LayerNorm input, attention output            2*L*h
      LayerNorm output (the FFN's input)                            L*h
      FFN pre-activation (GELU gradient), GELU output               2*L*i
      dropout mask and LayerNorm input, FFN output                  2*L*h
                                                            total  10*L*h + 2*L*i + 3*a*L*L

  plus, per encoder, its embeddings (lookup, sum, LayerNorm output, dropout mask: 4*L*E);
  the generator's head at the P masked positions (gathered hidden P*g, dense / GELU /
  LayerNorm 3*P*E, log-probabilities and one-hot labels over the vocabulary 2*P*V) and the
  discriminator's head (dense, GELU, its output: 3*L*h). Elements are 4 bytes; with
  `use_bf16` the transformer layers' are 2, except the float32 softmax output (the
  embeddings and the encoder's output, hence the heads, stay float32).

What the count leaves out, and so where a real device differs: gradients of activations
while the backward pass runs, temporaries of single ops, the allocator's slack and
TensorFlow's own memory (benchmarks/memory_per_example.py measures the whole against the
count); on a TPU, XLA fuses element-wise ops and rematerialises activations to fit the
core's memory, so a TPU needs less than the count (see TPU_KNOWN_FIT). The fused GPU/CPU
kernels (`fused_kernels`) recompute some element-wise results in their backward kernels and
hold less than the count.

No TensorFlow: configs are checked before any graph is built.
"""
import dataclasses
import types
from typing import Mapping, Optional

from model import sizes

GIB = 1024 ** 3
STATE_BYTES_PER_PARAMETER = 16  # float32 weight, gradient, Adam m, Adam v
V3_CORE_BYTES = 16 * GIB  # HBM of one TPU v3 core ("TPU v3" page: 32 GiB per chip, 2 cores)


def encoder_parameters(hp: Mapping, embedding_size: int, with_embeddings: bool = True) -> int:
  """Parameters of one BertModel: embeddings (+ projection to hidden) and its layers.

  Args:
    hp: BertConfig fields (sizes.bert_hparams / generator_hparams).
    embedding_size: E, the width of the embedding tables.
    with_embeddings: False for a generator that shares the discriminator's tables (it
      still has its own embeddings_project when E differs from its hidden size).

  Returns:
    the number of parameters.
  """
  h, i, e = hp["hidden_size"], hp["intermediate_size"], embedding_size
  n = 0
  if with_embeddings:
    n += (hp["vocab_size"] + hp["max_position_embeddings"] + hp["type_vocab_size"]) * e
    n += 2 * e  # LayerNorm
  if e != h:
    n += e * h + h  # embeddings_project
  layer = 4 * (h * h + h)  # query, key, value, attention output dense
  layer += h * i + i + i * h + h  # intermediate and output dense
  layer += 2 * 2 * h  # two LayerNorms
  return n + hp["num_hidden_layers"] * layer


def encoder_activations(hp: Mapping, seq_len: int, embedding_size: int,
                        bytes_per_element: int) -> int:
  """Bytes one example's pass through one encoder holds for the backward pass (see the
  module docstring for the count per layer)."""
  h, i, a = hp["hidden_size"], hp["intermediate_size"], hp["num_attention_heads"]
  L = seq_len
  per_layer = (10 * L * h + 2 * L * i + 2 * a * L * L) * bytes_per_element
  per_layer += a * L * L * 4  # the softmax runs in float32
  # The embeddings are looked up and normalised in float32 also with use_bf16.
  return hp["num_hidden_layers"] * per_layer + 4 * L * embedding_size * 4


@dataclasses.dataclass
class MemoryEstimate:
  """One device's memory for a pretraining step.

  Attributes:
    parameters: {"discriminator", "generator", "heads", "total"} parameter counts.
    state_bytes: weights, gradients and Adam slots.
    activations_per_example: bytes one example holds for the backward pass.
    batch_per_device: examples on the device (train batch / cores on a TPU).
  """
  parameters: dict
  state_bytes: int
  activations_per_example: int
  batch_per_device: int

  @property
  def total_bytes(self) -> int:
    return self.state_bytes + self.batch_per_device * self.activations_per_example

  def summary(self) -> str:
    """One line: total, state and activations, in GiB."""
    return (f"{self.total_bytes / GIB:.1f} GiB per device by this count "
            f"({self.parameters['total'] / 1e6:.1f}M parameters: {self.state_bytes / GIB:.2f} "
            f"GiB with gradients and Adam slots; {self.batch_per_device} x "
            f"{self.activations_per_example / GIB:.3f} GiB activations)")


def estimate(config, batch_per_device: Optional[int] = None) -> MemoryEstimate:
  """Memory of one device's share of a pretraining step.

  Args:
    config: a pretraining config; read: bert_hparams(), generator_hparams(),
      embedding_dim(), has_generator_transformer(), electra_objective, uniform_generator,
      untied_generator_embeddings, max_seq_length, max_predictions_per_seq, use_bf16,
      train_batch_size, use_tpu, num_tpu_cores.
    batch_per_device: default train_batch_size, divided by num_tpu_cores on a TPU.

  Returns:
    MemoryEstimate.
  """
  disc = config.bert_hparams()
  e = config.embedding_dim()
  L, P, V = config.max_seq_length, config.max_predictions_per_seq, disc["vocab_size"]
  width = 2 if config.use_bf16 else 4
  if batch_per_device is None:
    cores = config.num_tpu_cores if config.use_tpu and config.num_tpu_cores else 1
    batch_per_device = config.train_batch_size // cores
  params = {"discriminator": encoder_parameters(disc, e), "generator": 0, "heads": 0}
  # The discriminator (with the MLM-only objective, the one encoder) is always built.
  act = encoder_activations(disc, L, e, width)
  g, head_e = disc["hidden_size"], e
  if config.has_generator_transformer():
    gen = config.generator_hparams()
    untied = config.untied_generator_embeddings
    gen_e = gen["hidden_size"] if untied else e
    params["generator"] = encoder_parameters(gen, gen_e, with_embeddings=untied)
    act += encoder_activations(gen, L, gen_e, width)
    g, head_e = gen["hidden_size"], gen_e
  if not config.uniform_generator:  # the MLM head, and its loss over the vocabulary
    params["heads"] += g * head_e + head_e + 2 * head_e + V  # dense, LayerNorm, output_bias
    act += (P * g + 3 * P * head_e + 2 * P * V) * 4
  if config.electra_objective:  # the discriminator's head
    h = disc["hidden_size"]
    params["heads"] += h * h + h + h + 1  # dense, dense_1
    act += 3 * L * h * 4
  params["total"] = sum(params.values())
  return MemoryEstimate(parameters=params,
                        state_bytes=STATE_BYTES_PER_PARAMETER * params["total"],
                        activations_per_example=act, batch_per_device=batch_per_device)


def _published_base_v3_per_core() -> int:
  """The count for KoELECTRA-Base-v3's published run per v3 core: 256 x 512 over 8 cores
  (the preset's shapes, written out: model/ cannot read configure_pretraining's presets)."""
  disc = sizes.bert_hparams("base", 35000)
  base_v3 = types.SimpleNamespace(
      bert_hparams=lambda: disc, embedding_dim=lambda: 768,
      generator_hparams=lambda: sizes.generator_hparams(disc, 0.33333, 1.0),
      has_generator_transformer=lambda: True, electra_objective=True,
      uniform_generator=False, untied_generator_embeddings=False, max_seq_length=512,
      max_predictions_per_seq=int((0.15 + 0.005) * 512), use_bf16=False)
  return estimate(base_v3, batch_per_device=32).total_bytes


# KoELECTRA-Base-v3 (and -Small-v3, 64 x 512 per core, 33.4 GiB by the count) were trained
# on v3-8s: a v3 core's 16 GiB held what this count puts at 34.5 GiB, because XLA fuses the
# element-wise ops and rematerialises activations until the program fits. So on a TPU the
# count only shows a load far beyond anything known to fit, such as a whole global batch
# on one core; the warning fires above this figure.
TPU_KNOWN_FIT = _published_base_v3_per_core()


def tpu_warning(est: MemoryEstimate) -> Optional[str]:
  """A warning line when one TPU v3 core's share is beyond what is known to fit, else None.

  Args:
    est: the estimate for one core's batch (estimate(config) with use_tpu and the cores).

  Returns:
    the line, or None when the count is at most max(16 GiB, TPU_KNOWN_FIT).
  """
  if est.total_bytes <= max(V3_CORE_BYTES, TPU_KNOWN_FIT):
    return None
  return (f"warning: per-core memory {est.summary()}; a v3 core has 16 GiB, and the "
          f"largest load known to fit one (KoELECTRA-Base-v3, 32 x 512 per core, XLA "
          f"rematerialising) counts {TPU_KNOWN_FIT / GIB:.1f} GiB: expect 'Resource "
          f"exhausted' at compilation; check num_tpu_cores, or lower train_batch_size or "
          f"max_seq_length")


def tpu_lines(config, assumed_cores: int = 8) -> list:
  """The per-core estimate of a pretraining config on a TPU, and tpu_warning's line if any.

  Args:
    config: as estimate(); its num_tpu_cores, or `assumed_cores` when unset (a v3-8).
    assumed_cores: the core count to assume when the config has none (--check-xla runs
      on a workstation, before the TPU exists).

  Returns:
    [estimate line] or [estimate line, warning line].
  """
  cores = config.num_tpu_cores or assumed_cores
  est = estimate(config, batch_per_device=config.train_batch_size // cores)
  how = "" if config.num_tpu_cores else ", assumed: num_tpu_cores unset"
  warning = tpu_warning(est)
  return [f"memory per TPU core ({cores} cores{how}): {est.summary()}"] + \
      ([warning] if warning else [])
