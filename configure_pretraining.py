"""PretrainingConfig: every hyperparameter of ELECTRA pretraining, KoELECTRA presets,
`--hparams` JSON overrides and a FLOPs-per-step estimate.

Defaults are those of the original google-research/electra `configure_pretraining.py`;
the presets carry KoELECTRA's published settings (see docs/pretraining.md for sources).
Resolution order: original defaults -> preset -> model-size defaults -> explicit
hparams (explicit hparams always win) -> derived values (paths,
`max_predictions_per_seq`) unless given explicitly.

This module does not import TensorFlow; `get_bert_config` / `get_generator_config`
import model.modeling lazily.

CLI: `python configure_pretraining.py --preset koelectra-small-v3 [--hparams JSON]`
prints the resolved config and its FLOPs estimate.
"""
import argparse
import copy
import difflib
import json
import sys

from pretrain import example_builder
from util import fileio


class ConfigError(ValueError):
  """Bad pretraining configuration: the message names the key (and file)."""


# Transformer sizes of the original `training_utils.get_bert_config`.
MODEL_SIZES = {
    "small": {"hidden_size": 256, "num_hidden_layers": 12},
    "base": {"hidden_size": 768, "num_hidden_layers": 12},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24},
}

# BertConfig fields a user may override through `model_hparam_overrides`.
BERT_HPARAMS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size", "hidden_act", "hidden_dropout_prob",
                "attention_probs_dropout_prob", "max_position_embeddings",
                "type_vocab_size", "initializer_range")

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

def _closest(key, valid):
  close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
  return f"; did you mean {', '.join(close)}?" if close else ""


class PretrainingConfig(object):
  """Pretraining hyperparameters (attribute access, as the original)."""

  def __init__(self, model_name, data_dir, **kwargs):
    self.model_name = model_name
    self.data_dir = data_dir
    self.preset = None  # one of PRESETS, applied before explicit hparams
    self.debug = False  # tiny batch / few steps for quickly running things
    self.do_train = True
    self.do_eval = False

    # loss functions
    self.electra_objective = True  # False: BERT-style MLM-only baseline
    self.gen_weight = 1.0
    self.disc_weight = 50.0
    self.mask_prob = 0.15

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
    self.keep_checkpoint_max = 5  # tf.estimator's default, which the original relies on
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
    self.num_tpu_cores = 1
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
        raise ConfigError(f"unknown preset {preset!r}{_closest(preset, list(PRESETS))} "
                          f"(known: {', '.join(PRESETS)})")
      self.preset = preset
      self.__dict__.update(copy.deepcopy(PRESETS[preset]))
    self.__dict__.update(copy.deepcopy(kwargs))

    if self.debug:
      for k, v in (("train_batch_size", 8), ("num_train_steps", 20), ("eval_batch_size", 4),
                   ("iterations_per_loop", 1), ("num_eval_steps", 2)):
        if k not in kwargs:
          setattr(self, k, v)
    # The original forces embedding 128 for "small" unless told otherwise.
    if self.model_size == "small" and "embedding_size" not in kwargs:
      self.embedding_size = 128
    self._explicit = set(kwargs)
    self._derive()
    self.validate()

  # -- construction helpers -------------------------------------------------

  def _check_keys(self, kwargs):
    valid = sorted(k for k in self.__dict__ if not k.startswith("_"))
    for k in kwargs:
      if k not in self.__dict__ or k.startswith("_"):
        raise ConfigError(f"unknown hparam {k!r}{_closest(k, valid)}")

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

  @classmethod
  def from_hparams(cls, model_name, data_dir, hparams=None, **kwargs):
    """Build from `--hparams` (JSON string, JSON file path, dict or None) plus kwargs."""
    merged = dict(parse_hparams(hparams))
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
    """The discriminator's BertConfig fields (dict), as the original get_bert_config."""
    if self.model_size not in MODEL_SIZES:
      raise ConfigError(f"model_size {self.model_size!r} is not one of "
                        f"{', '.join(MODEL_SIZES)}{_closest(str(self.model_size), list(MODEL_SIZES))}")
    args = dict(MODEL_SIZES[self.model_size])
    args["num_attention_heads"] = max(1, args["hidden_size"] // 64)
    args["intermediate_size"] = 4 * args["hidden_size"]
    overrides = self.model_hparam_overrides or {}
    if not isinstance(overrides, dict):
      raise ConfigError("model_hparam_overrides must be a JSON object, got "
                        f"{type(overrides).__name__}")
    for k in overrides:
      if k not in BERT_HPARAMS:
        raise ConfigError(f"unknown key {k!r} in model_hparam_overrides"
                          f"{_closest(k, list(BERT_HPARAMS))}")
    args.update(overrides)
    args["vocab_size"] = self.vocab_size
    full = {"hidden_act": "gelu", "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1, "max_position_embeddings": 512,
            "type_vocab_size": 2, "initializer_range": 0.02}
    full.update(args)
    return full

  def generator_hparams(self):
    """The generator's BertConfig fields: hidden size, layers, heads and FFN scaled."""
    gen = dict(self.bert_hparams())
    gen["hidden_size"] = int(round(gen["hidden_size"] * self.generator_hidden_size))
    gen["num_hidden_layers"] = int(round(gen["num_hidden_layers"] * self.generator_layers))
    gen["intermediate_size"] = 4 * gen["hidden_size"]
    gen["num_attention_heads"] = max(1, gen["hidden_size"] // 64)
    return gen

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
              "log_every_steps", "num_tpu_cores", "keep_checkpoint_max"):
      v = getattr(self, k)
      need(isinstance(v, int) and not isinstance(v, bool) and v > 0,
           f"{k} must be a positive integer, got {v!r}")
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
    return estimate_train_flops(self)["train_per_step"]


def parse_hparams(hparams):
  """`--hparams` value -> dict: a JSON object string, a path to a JSON file, or a dict."""
  if hparams is None or hparams == "":
    return {}
  if isinstance(hparams, dict):
    return dict(hparams)
  text = str(hparams)
  where = "--hparams"
  if not text.lstrip().startswith("{"):
    if not fileio.exists(text):
      raise ConfigError(f"--hparams {text!r} is neither a JSON object nor an existing file")
    where = text
    with fileio.open_file(text) as f:
      text = f.read()
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise ConfigError(f"{where}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}")
  if not isinstance(value, dict):
    raise ConfigError(f"{where}: expected a JSON object, got {type(value).__name__}")
  for k in ("model_name", "data_dir"):
    if k in value:
      raise ConfigError(f"{where}: {k!r} is not an hparam; pass it as --{k.replace('_', '-')}")
  return value


def get_bert_config(config):
  """model.modeling.BertConfig of the discriminator."""
  from model import modeling
  return modeling.BertConfig.from_dict(config.bert_hparams())


def get_generator_config(config):
  """model.modeling.BertConfig of the generator."""
  from model import modeling
  return modeling.BertConfig.from_dict(config.generator_hparams())


# -- FLOPs estimate -----------------------------------------------------------
# Convention: a multiply-add is 2 FLOPs; a matmul [m,k]x[k,n] is 2*m*k*n. Element-wise
# work is counted with the per-element costs below. The backward pass costs twice the
# forward pass (gradients w.r.t. inputs and weights), so training is 3x forward. Sampling
# and masking carry no gradient and are counted once. Gathers/lookups count 0.
LAYER_NORM_FLOPS = 7   # mean, sub, square, mean, rsqrt-ish, mul gamma, add beta
GELU_FLOPS = 8         # x * 0.5 * (1 + erf(x / sqrt 2)), erf counted as a few ops
SOFTMAX_FLOPS = 5      # max, sub, exp, sum, div
SIGMOID_XENT_FLOPS = 6
GUMBEL_FLOPS = 6       # uniform noise, 2 logs, adds, argmax compare


def _transformer_forward_flops(hp, seq_len, embedding_size, include_embeddings=True):
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
  """FLOPs of one training step (whole global batch), with a per-part breakdown.

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
    f = _transformer_forward_flops(gen, L, gen_e)
    parts["generator_embeddings"] = f["embeddings"]
    parts["generator_encoder"] = f["encoder"]
    gen_hidden, head_e = gen["hidden_size"], gen_e
  else:
    f = _transformer_forward_flops(disc, L, e)
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
    f = _transformer_forward_flops(disc, L, e)
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


def main(argv=None):
  p = argparse.ArgumentParser(description="Print a resolved pretraining config and its "
                              "FLOPs-per-step estimate.")
  p.add_argument("--model-name", default="koelectra")
  p.add_argument("--data-dir", default=".")
  p.add_argument("--preset", choices=sorted(PRESETS))
  p.add_argument("--hparams", help="JSON object string or path to a JSON file")
  args = p.parse_args(argv)
  try:
    extra = {"preset": args.preset} if args.preset else {}
    cfg = PretrainingConfig.from_hparams(args.model_name, args.data_dir, args.hparams, **extra)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print(cfg.to_json())
  fl = estimate_train_flops(cfg)
  print(f"discriminator: {cfg.bert_hparams()}")
  if cfg.has_generator_transformer():
    print(f"generator: {cfg.generator_hparams()}")
  print(f"train FLOPs per step: {fl['train_per_step']:.4g} "
        f"({fl['train_per_seq']:.4g} per sequence, batch {cfg.train_batch_size})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
