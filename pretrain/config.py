"""PretrainingConfig: every hyperparameter of ELECTRA pretraining, KoELECTRA presets and
`--hparams` overrides.

Defaults are those of the original google-research/electra `configure_pretraining.py`;
the presets carry KoELECTRA's published settings (see docs/pretraining.md for sources).
Resolution order, as the original (model/config.py): defaults -> preset -> debug-mode
defaults -> explicit hparams -> model-size defaults (`embedding_size` 128 for "small")
unless given explicitly -> derived values (paths, `max_predictions_per_seq`) unless given
explicitly. Encoder shapes come from model/sizes.py (the original's `get_bert_config`
order); the FLOPs estimate from model/flops.py.

This module does not import TensorFlow.
"""
from model import config as config_lib
from model import flops
from model import sizes
from pretrain import example_builder
from util import fileio
from util import tpu as tpu_lib

ConfigError = config_lib.ConfigError

_SMALL = {"model_size": "small", "embedding_size": 128, "generator_hidden_size": 1.0,
          "train_batch_size": 512, "learning_rate": 5e-4, "max_seq_length": 512,
          "do_lower_case": False}
_BASE = {"model_size": "base", "embedding_size": 768, "generator_hidden_size": 0.33333,
         "train_batch_size": 256, "learning_rate": 2e-4, "max_seq_length": 512,
         "do_lower_case": False}

# KoELECTRA README, "Pretraining Details" and "Vocabulary" tables (v1/v2: 32200 tokens,
# v3: 35000; Base v1,2: 700K steps, Base v3: 1.5M; Small v1,2: 300K, Small v3: 800K).
PRESETS = {
    "koelectra-small-v1": dict(_SMALL, vocab_size=32200, num_train_steps=300000),
    "koelectra-small-v2": dict(_SMALL, vocab_size=32200, num_train_steps=300000),
    "koelectra-small-v3": dict(_SMALL, vocab_size=35000, num_train_steps=800000),
    "koelectra-base-v1": dict(_BASE, vocab_size=32200, num_train_steps=700000),
    "koelectra-base-v2": dict(_BASE, vocab_size=32200, num_train_steps=700000),
    "koelectra-base-v3": dict(_BASE, vocab_size=35000, num_train_steps=1500000),
}

# The original's debug mode: a quick run (its model is shrunk in model/sizes.py).
DEBUG_SETTINGS = {"train_batch_size": 8, "num_train_steps": 20, "eval_batch_size": 4,
                  "iterations_per_loop": 1, "num_eval_steps": 2}


class PretrainingConfig(config_lib.Config):
  """Pretraining hyperparameters (attribute access, as the original)."""

  PRESETS = PRESETS
  DEBUG_SETTINGS = DEBUG_SETTINGS
  DERIVED = ("pretrain_tfrecords", "vocab_file", "model_dir", "results_txt",
             "max_predictions_per_seq")
  ENCODER = "discriminator"

  def __init__(self, model_name, data_dir, **kwargs):
    self.model_name = model_name
    self.data_dir = data_dir
    self.preset = None  # one of PRESETS, applied before explicit hparams
    # the original's debug mode: a 3-layer 144-wide model, tiny batches, 20 steps, and a
    # fresh model_dir (emptied before training; one holding checkpoints only with
    # debug_overwrite, ours)
    self.debug = False
    self.debug_overwrite = False
    self.do_train = True
    self.do_eval = False

    # loss functions
    self.electra_objective = True  # False: BERT-style MLM-only baseline
    self.gen_weight = 1.0
    self.disc_weight = 50.0
    self.mask_prob = 0.15
    # ours: True restores the original's masking draw (with replacement, count from all
    # non-padding tokens: ~14.0% masked at length 512 instead of 15%), to replicate a
    # published run exactly (pretrain/masking.py)
    self.legacy_masking = False

    # optimization
    self.learning_rate = 5e-4
    self.lr_decay_power = 1.0  # linear decay
    self.weight_decay_rate = 0.01
    self.num_warmup_steps = 10000

    # training settings
    self.iterations_per_loop = 200
    self.save_checkpoints_steps = 1000
    self.num_train_steps = 1000000
    self.num_eval_steps = 100
    # tf.estimator's default, which the original relies on; 0 keeps every checkpoint
    self.keep_checkpoint_max = 5
    self.log_every_steps = 100  # ours: loss / throughput logging interval

    # model settings
    self.model_size = "small"
    self.model_hparam_overrides = {}
    self.embedding_size = None  # hidden size by default
    self.vocab_size = 30522
    self.do_lower_case = True
    self.use_bf16 = False  # ours: bfloat16 activations in the encoder (TPU)
    # ours: off TPU, XLA-fused element-wise kernels (GELU, dropout + residual + LayerNorm,
    # attention softmax + dropout) and AdamW update; always off with use_tpu.
    self.fused_kernels = True

    # generator settings
    self.uniform_generator = False
    self.untied_generator_embeddings = False
    self.untied_generator = True
    self.generator_layers = 1.0  # fraction of discriminator layers
    self.generator_hidden_size = 0.25  # fraction of discriminator hidden size
    self.disallow_correct = False
    self.temperature = 1.0

    # batch sizes
    self.max_seq_length = 128
    self.train_batch_size = 128
    self.eval_batch_size = 128

    self._set_tpu_defaults()
    self._resolve(kwargs)

  def _derive(self):
    d, join = self.data_dir, fileio.join
    self._set_unless_given(pretrain_tfrecords=join(d, "pretrain_tfrecords",
                                                   example_builder.SHARD_GLOB),
                           vocab_file=join(d, "vocab.txt"),
                           model_dir=join(d, "models", self.model_name))
    self._set_unless_given(
        results_txt=join(self.model_dir, "results", "unsup_results.txt"),
        max_predictions_per_seq=int((self.mask_prob + 0.005) * self.max_seq_length))
    if self.debug:  # ours: the debug batches split evenly over the TPU cores
      self._set_unless_given(**{
          k: tpu_lib.debug_batch_size(DEBUG_SETTINGS[k], self.use_tpu, self.num_tpu_cores)
          for k in ("train_batch_size", "eval_batch_size")})

  # -- model shapes ---------------------------------------------------------

  def generator_hparams(self):
    """The generator's BertConfig fields: hidden size and layers scaled, heads/FFN derived."""
    return sizes.generator_hparams(self.bert_hparams(), self.generator_hidden_size,
                                   self.generator_layers)

  def has_generator_transformer(self):
    """True when a separate (smaller) generator transformer is built."""
    return (not self.uniform_generator) and self.electra_objective and self.untied_generator

  # -- validation -------------------------------------------------------------

  def validate(self):
    """Catch bad settings at config time, naming the key (never deep in graph building)."""
    super().validate(positive_ints=("num_train_steps",), bools=("legacy_masking", "debug_overwrite"))
    need = self._need
    need(0.0 < float(self.mask_prob) < 1.0, f"mask_prob must be in (0, 1), got {self.mask_prob}")
    need(isinstance(self.num_warmup_steps, int) and self.num_warmup_steps >= 0,
         f"num_warmup_steps must be a non-negative integer, got {self.num_warmup_steps!r}")
    need(float(self.temperature) > 0, f"temperature must be > 0, got {self.temperature}")
    need(isinstance(self.max_predictions_per_seq, int) and
         1 <= self.max_predictions_per_seq <= self.max_seq_length,
         f"max_predictions_per_seq must be in [1, max_seq_length], got "
         f"{self.max_predictions_per_seq!r}")
    if not self.has_generator_transformer():
      return
    need(0.0 < float(self.generator_hidden_size) <= 1.0,
         f"generator_hidden_size must be in (0, 1], got {self.generator_hidden_size}")
    need(0.0 < float(self.generator_layers) <= 1.0,
         f"generator_layers must be in (0, 1], got {self.generator_layers}")
    gen = self.generator_hparams()
    dh, dl = self.bert_hparams()["hidden_size"], self.bert_hparams()["num_hidden_layers"]
    need(gen["num_hidden_layers"] >= 1,
         f"generator_layers {self.generator_layers} x {dl} layers rounds to 0 generator "
         "layers")
    # Nearest hidden size made of whole 64-wide heads, as the original's head rule wants.
    good = max(64, int(round(gen["hidden_size"] / 64.0)) * 64)
    self._check_heads("generator", gen, "generator_hidden_size",
                      hint=f" (generator_hidden_size {self.generator_hidden_size} x {dh}); "
                      f"use e.g. generator_hidden_size {good / dh:.5f} for hidden size "
                      f"{good}")

  # -- FLOPs ------------------------------------------------------------------

  def train_flops_per_step(self):
    return flops.estimate_train_flops(self)["train_per_step"]


