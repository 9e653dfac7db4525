"""PretrainingConfig: every hyperparameter of ELECTRA pretraining, KoELECTRA presets and
`--hparams` overrides.

Defaults are those of the original google-research/electra `configure_pretraining.py`;
the presets carry KoELECTRA's published settings (see docs/pretraining.md for sources).
Resolution order, as the original: defaults -> preset -> explicit hparams -> debug-mode
and model-size defaults (`embedding_size` 128 for "small") unless given explicitly ->
derived values (paths, `max_predictions_per_seq`) unless given explicitly. Encoder shapes
come from model/sizes.py (the original's `get_bert_config` order); the FLOPs estimate from
model/flops.py.

This module does not import TensorFlow.

CLI: `python configure_pretraining.py --preset koelectra-small-v3 [--hparams JSON]`
prints the resolved config, its FLOPs estimate and its memory per device (model/memory.py).
"""
import argparse
import copy
import json
import sys

from model import flops
from model import memory
from model import sizes
from pretrain import example_builder
from util import errors
from util import fileio
from util import hparams as hparams_lib
from util import tpu as tpu_lib

ConfigError = errors.ConfigError

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


class PretrainingConfig(object):
  """Pretraining hyperparameters (attribute access, as the original)."""

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

    # TPU settings
    self.use_tpu = False
    self.num_tpu_cores = None  # ours: null reads it from the TPU system (original: 1)
    self.tpu_job_name = None
    self.tpu_name = None
    self.tpu_zone = None
    self.gcp_project = None

    # derived (see _derive)
    self.pretrain_tfrecords = None
    self.vocab_file = None
    self.model_dir = None
    self.results_txt = None
    self.results_pkl = None
    self.max_predictions_per_seq = None

    kwargs = dict(kwargs)
    self._check_keys(kwargs)
    preset = kwargs.get("preset")
    if preset is not None:
      if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}{hparams_lib.closest(preset, PRESETS)} "
                          f"(known: {', '.join(PRESETS)})")
      self.preset = preset
      self.__dict__.update(copy.deepcopy(PRESETS[preset]))
    self.__dict__.update(copy.deepcopy(kwargs))

    # As the original, explicit hparams win over the debug and model-size defaults.
    if self.debug:
      for k, v in DEBUG_SETTINGS.items():
        if k not in kwargs:
          setattr(self, k, v)
    if "embedding_size" not in kwargs:
      self.embedding_size = sizes.default_embedding_size(self.model_size, self.embedding_size)
    self._explicit = set(kwargs)
    self._derive()
    self.validate()

  # -- construction helpers -------------------------------------------------

  def _check_keys(self, kwargs):
    hparams_lib.check_keys(kwargs, (k for k in self.__dict__ if not k.startswith("_")))

  def _derive(self):
    explicit = self._explicit
    d = self.data_dir
    join = fileio.join
    if "pretrain_tfrecords" not in explicit:
      self.pretrain_tfrecords = join(d, "pretrain_tfrecords", example_builder.SHARD_GLOB)
    if "vocab_file" not in explicit:
      self.vocab_file = join(d, "vocab.txt")
    if "model_dir" not in explicit:
      self.model_dir = join(d, "models", self.model_name)
    results_dir = join(self.model_dir, "results")
    if "results_txt" not in explicit:
      self.results_txt = join(results_dir, "unsup_results.txt")
    if "results_pkl" not in explicit:
      self.results_pkl = join(results_dir, "unsup_results.pkl")
    if "max_predictions_per_seq" not in explicit:
      self.max_predictions_per_seq = int((self.mask_prob + 0.005) * self.max_seq_length)
    if self.debug:  # ours: the debug batches split evenly over the TPU cores
      for k in ("train_batch_size", "eval_batch_size"):
        if k not in explicit:
          setattr(self, k, tpu_lib.debug_batch_size(DEBUG_SETTINGS[k], self.use_tpu,
                                                    self.num_tpu_cores))

  @classmethod
  def from_hparams(cls, model_name, data_dir, hparams=None, preset=None, **kwargs):
    """Build from `--hparams` (JSON string, JSON file path, dict or None), `--preset`
    (which must agree with a "preset" inside hparams) and more keyword hparams."""
    merged = hparams_lib.merge_preset(hparams_lib.parse_hparams(hparams), preset)
    merged.update(kwargs)
    return cls(model_name, data_dir, **merged)

  def update(self, kwargs):
    """Apply more hparams (unknown keys are an error), then re-derive and re-validate."""
    self._check_keys(kwargs)
    self.__dict__.update(copy.deepcopy(dict(kwargs)))
    self._explicit |= set(kwargs)
    self._derive()
    self.validate()

  def to_dict(self):
    return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if not k.startswith("_")}

  def to_json(self):
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  def __repr__(self):
    return f"PretrainingConfig({self.to_json()})"

  # -- model shapes ---------------------------------------------------------

  def bert_hparams(self):
    """The discriminator's BertConfig fields (dict), as the original get_bert_config
    (model/sizes.py), shrunk in debug mode as the original's PretrainingModel does."""
    return sizes.bert_hparams(self.model_size, self.vocab_size, self.model_hparam_overrides,
                              debug=self.debug)

  def generator_hparams(self):
    """The generator's BertConfig fields: hidden size and layers scaled, heads/FFN derived."""
    return sizes.generator_hparams(self.bert_hparams(), self.generator_hidden_size,
                                   self.generator_layers)

  def embedding_dim(self):
    return self.bert_hparams()["hidden_size"] if self.embedding_size is None \
        else self.embedding_size

  def has_generator_transformer(self):
    """True when a separate (smaller) generator transformer is built."""
    return (not self.uniform_generator) and self.electra_objective and self.untied_generator

  # -- validation -------------------------------------------------------------

  def validate(self):
    """Catch bad settings at config time, naming the key (never deep in graph building)."""
    def need(cond, msg):
      if not cond:
        raise ConfigError(msg)

    need(isinstance(self.model_name, str) and self.model_name,
         "model_name must be a non-empty string")
    need(0.0 < float(self.mask_prob) < 1.0, f"mask_prob must be in (0, 1), got {self.mask_prob}")
    for k in ("max_seq_length", "train_batch_size", "eval_batch_size", "num_train_steps",
              "iterations_per_loop", "save_checkpoints_steps", "vocab_size",
              "log_every_steps"):
      v = getattr(self, k)
      need(isinstance(v, int) and not isinstance(v, bool) and v > 0,
           f"{k} must be a positive integer, got {v!r}")
    need(isinstance(self.keep_checkpoint_max, int) and self.keep_checkpoint_max >= 0,
         f"keep_checkpoint_max must be a non-negative integer (0 keeps all), got "
         f"{self.keep_checkpoint_max!r}")
    tpu_lib.check_batch_sizes(self)
    for k in ("legacy_masking", "debug", "debug_overwrite", "use_bf16", "use_tpu",
              "fused_kernels"):
      need(isinstance(getattr(self, k), bool), f"{k} must be true or false, got "
           f"{getattr(self, k)!r}")
    need(isinstance(self.num_warmup_steps, int) and self.num_warmup_steps >= 0,
         f"num_warmup_steps must be a non-negative integer, got {self.num_warmup_steps!r}")
    need(float(self.learning_rate) > 0, f"learning_rate must be > 0, got {self.learning_rate}")
    need(float(self.temperature) > 0, f"temperature must be > 0, got {self.temperature}")
    need(isinstance(self.max_predictions_per_seq, int) and
         1 <= self.max_predictions_per_seq <= self.max_seq_length,
         f"max_predictions_per_seq must be in [1, max_seq_length], got "
         f"{self.max_predictions_per_seq!r}")
    need(self.embedding_size is None or
         (isinstance(self.embedding_size, int) and self.embedding_size > 0),
         f"embedding_size must be a positive integer or null, got {self.embedding_size!r}")
    disc = self.bert_hparams()
    need(self.max_seq_length <= disc["max_position_embeddings"],
         f"max_seq_length {self.max_seq_length} exceeds max_position_embeddings "
         f"{disc['max_position_embeddings']}")
    self._check_heads("discriminator", disc, "model_hparam_overrides")
    if self.has_generator_transformer():
      need(0.0 < float(self.generator_hidden_size) <= 1.0,
           f"generator_hidden_size must be in (0, 1], got {self.generator_hidden_size}")
      need(0.0 < float(self.generator_layers) <= 1.0,
           f"generator_layers must be in (0, 1], got {self.generator_layers}")
      gen = self.generator_hparams()
      need(gen["num_hidden_layers"] >= 1,
           f"generator_layers {self.generator_layers} x {disc['num_hidden_layers']} layers "
           "rounds to 0 generator layers")
      self._check_heads("generator", gen, "generator_hidden_size")

  def _check_heads(self, which, hp, key):
    h, a = hp["hidden_size"], hp["num_attention_heads"]
    if h >= 1 and a >= 1 and h % a == 0:
      return
    msg = f"{which} hidden size {h} is not divisible into {a} whole attention heads"
    if which == "generator":
      dh = self.bert_hparams()["hidden_size"]
      # Nearest hidden size made of whole 64-wide heads, as the original's head rule wants.
      good = max(64, int(round(h / 64.0)) * 64)
      msg += (f" (generator_hidden_size {self.generator_hidden_size} x {dh}); use e.g. "
              f"generator_hidden_size {good / dh:.5f} for hidden size {good}")
    raise ConfigError(f"{msg} [key: {key}]")

  # -- FLOPs ------------------------------------------------------------------

  def train_flops_per_step(self):
    return flops.estimate_train_flops(self)["train_per_step"]


def parse_hparams(hparams):
  """`--hparams` value -> dict (util/hparams.parse_hparams)."""
  return hparams_lib.parse_hparams(hparams)


def main(argv=None):
  """The command line; returns the exit status (2 and one error line for a UserError)."""
  return errors.run_main(_main, argv)


def _main(argv):
  p = argparse.ArgumentParser(description="Print a resolved pretraining config and its "
                              "FLOPs-per-step estimate.")
  p.add_argument("--model-name", default="koelectra")
  p.add_argument("--data-dir", default=".")
  p.add_argument("--preset", choices=sorted(PRESETS))
  p.add_argument("--hparams", action="append",
                 help="JSON object string or path to a JSON file (several: merged in order)")
  args = p.parse_args(argv)
  cfg = PretrainingConfig.from_hparams(args.model_name, args.data_dir, args.hparams,
                                       preset=args.preset)
  print(cfg.to_json())
  fl = flops.estimate_train_flops(cfg)
  print(f"discriminator: {cfg.bert_hparams()}")
  if cfg.has_generator_transformer():
    print(f"generator: {cfg.generator_hparams()}")
  print(f"train FLOPs per step: {fl['train_per_step']:.4g} "
        f"({fl['train_per_seq']:.4g} per sequence, batch {cfg.train_batch_size})")
  print(f"memory: {memory.estimate(cfg).summary()}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
