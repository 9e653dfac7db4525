"""Encoder shapes from a model size name: the one derivation pretraining and finetuning share.

The original ELECTRA (`util/training_utils.get_bert_config`) builds the discriminator's
config as: the size table's hidden size and layer count, `vocab_size`, then
`model_hparam_overrides`, then the head count and FFN width derived from the (possibly
overridden) hidden size (`max(1, hidden // 64)` heads, `4 * hidden`), then the overrides
again, so an explicit head count or FFN width still wins. The generator scales the
discriminator's hidden size and layer count by fractions and derives its heads and FFN the
same way. "small" models use 128-wide embeddings unless `embedding_size` is given.

This module imports no TensorFlow: configs are checked before any graph is built.
"""
from typing import Mapping, Optional

from util import errors
from util import hparams as hparams_lib

# Transformer sizes of the original `get_bert_config`.
MODEL_SIZES = {
    "small": {"hidden_size": 256, "num_hidden_layers": 12},
    "base": {"hidden_size": 768, "num_hidden_layers": 12},
    "large": {"hidden_size": 1024, "num_hidden_layers": 24},
}
# The original forces this embedding size for "small" models unless one is given.
SMALL_EMBEDDING_SIZE = 128

# BertConfig fields that `model_hparam_overrides` may set, and the defaults of the others.
BERT_DEFAULTS = {
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.1,
    "attention_probs_dropout_prob": 0.1,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "initializer_range": 0.02,
}
BERT_HPARAMS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                "intermediate_size") + tuple(BERT_DEFAULTS)

# The original's `debug` mode shrinks the discriminator to this (PretrainingModel).
DEBUG_OVERRIDES = {"num_hidden_layers": 3, "hidden_size": 144, "intermediate_size": 576,
                   "num_attention_heads": 4}


def _heads_and_ffn(hidden_size: int) -> dict:
  return {"num_attention_heads": max(1, hidden_size // 64),
          "intermediate_size": 4 * hidden_size}


def bert_hparams(model_size: str, vocab_size: int,
                 overrides: Optional[Mapping] = None, debug: bool = False) -> dict:
  """The discriminator's BertConfig fields, as the original `get_bert_config`.

  Args:
    model_size: a key of MODEL_SIZES.
    vocab_size: used unless `overrides` sets vocab_size (the original lets it).
    overrides: `model_hparam_overrides`, keys from BERT_HPARAMS.
    debug: the original's debug mode (a 3-layer, 144-wide model).

  Returns:
    A dict of every BertConfig field except embedding_size.

  Raises:
    ConfigError: unknown model_size, unknown override key, overrides not an object, a
      size that is not a positive integer, a dropout rate outside [0, 1).
  """
  if model_size not in MODEL_SIZES:
    raise errors.ConfigError(
        f"model_size {model_size!r} is not one of {', '.join(MODEL_SIZES)}"
        f"{hparams_lib.closest(str(model_size), MODEL_SIZES)}")
  overrides = {} if overrides is None else overrides
  if not isinstance(overrides, Mapping):
    raise errors.ConfigError("model_hparam_overrides must be a JSON object, got "
                             f"{type(overrides).__name__}")
  hparams_lib.check_keys(overrides, BERT_HPARAMS, "key in model_hparam_overrides")
  args = dict(BERT_DEFAULTS)
  args.update(MODEL_SIZES[model_size])
  args["vocab_size"] = vocab_size
  for k, v in overrides.items():
    hparams_lib.check_type(k, v, args.get(k, 0), "model_hparam_overrides:")  # heads, FFN: ints
  args.update(overrides)
  args.update(_heads_and_ffn(args["hidden_size"]))
  args.update(overrides)
  if debug:
    args.update(DEBUG_OVERRIDES)
  _check_values(args)
  return args


_POSITIVE_INTS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
                  "intermediate_size", "max_position_embeddings", "type_vocab_size")
_RATES = ("hidden_dropout_prob", "attention_probs_dropout_prob")


def _check_values(args: Mapping) -> None:
  """ConfigError naming the key for a value no graph can be built with (caught here, at
  configuration, instead of as a TensorFlow error halfway through building the graph)."""
  where = "model_hparam_overrides"
  for key in _POSITIVE_INTS:
    v = args[key]
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
      raise errors.ConfigError(f"{where}: {key} must be a positive integer, got {v!r}")
  for key in _RATES:
    v = args[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= v < 1.0:
      raise errors.ConfigError(f"{where}: {key} must be a number in [0, 1), got {v!r}")
  v = args["initializer_range"]
  if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
    raise errors.ConfigError(f"{where}: initializer_range must be a positive number, "
                             f"got {v!r}")


def generator_hparams(disc: Mapping, hidden_fraction: float, layers_fraction: float) -> dict:
  """The generator's BertConfig fields: the discriminator's, with hidden size and layer
  count scaled (rounded) and heads / FFN derived from the new hidden size."""
  gen = dict(disc)
  gen["hidden_size"] = int(round(disc["hidden_size"] * hidden_fraction))
  gen["num_hidden_layers"] = int(round(disc["num_hidden_layers"] * layers_fraction))
  gen.update(_heads_and_ffn(gen["hidden_size"]))
  return gen


def default_embedding_size(model_size: str, embedding_size: Optional[int]) -> Optional[int]:
  """`embedding_size` as given, else 128 for "small", else None (= the hidden size)."""
  if embedding_size is None and model_size == "small":
    return SMALL_EMBEDDING_SIZE
  return embedding_size


def bert_config(fields: Mapping, embedding_size: Optional[int] = None):
  """model.modeling.BertConfig from bert_hparams / generator_hparams output."""
  from model import modeling  # TensorFlow only when a graph is about to be built
  return modeling.BertConfig.from_dict(dict(fields, embedding_size=embedding_size))


def hparams_from_shapes(shapes: Mapping) -> dict:
  """The size hparams that build the encoder whose variables have these shapes.

  `shapes` is {variable name: shape} of a checkpoint. Returns the smallest set of
  model_size / embedding_size / vocab_size / model_hparam_overrides keys that reproduces
  it under this module's rules (what to put in --hparams to load it). The head count is
  not in any shape: the rule's hidden // 64 is assumed.

  Raises:
    ConfigError: no electra/embeddings/word_embeddings or no encoder layers in `shapes`.
  """
  def shape(name):
    return tuple(shapes.get(f"electra/{name}") or ())

  words = shape("embeddings/word_embeddings")
  query = shape("encoder/layer_0/attention/self/query/kernel")
  if len(words) != 2 or len(query) != 2:
    raise errors.ConfigError("no electra/ encoder (word embeddings and layer_0) in the "
                             "checkpoint")
  vocab, emb = words
  hidden = query[1]
  layers = 0
  while shape(f"encoder/layer_{layers}/attention/self/query/kernel"):
    layers += 1
  found = {"hidden_size": hidden, "num_hidden_layers": layers,
           "intermediate_size": (shape("encoder/layer_0/intermediate/dense/kernel") or
                                 (0, 4 * hidden))[1],
           "max_position_embeddings": (shape("embeddings/position_embeddings") or
                                       (BERT_DEFAULTS["max_position_embeddings"],))[0],
           "type_vocab_size": (shape("embeddings/token_type_embeddings") or
                               (BERT_DEFAULTS["type_vocab_size"],))[0]}

  def overrides_for(size):  # what model_hparam_overrides must add to this named size
    out = {k: found[k] for k in ("hidden_size", "num_hidden_layers")
           if MODEL_SIZES[size][k] != found[k]}
    if found["intermediate_size"] != 4 * hidden:
      out["intermediate_size"] = found["intermediate_size"]
    out.update((k, found[k]) for k in ("max_position_embeddings", "type_vocab_size")
               if found[k] != BERT_DEFAULTS[k])
    return out

  # The named size needing the fewest overrides ("small" on a tie, the default).
  size = min(MODEL_SIZES, key=lambda s: (len(overrides_for(s)), s != "small"))
  hp = {"model_size": size, "vocab_size": vocab}
  if emb != (default_embedding_size(size, None) or hidden):
    hp["embedding_size"] = emb
  if overrides_for(size):
    hp["model_hparam_overrides"] = overrides_for(size)
  return hp


def hparams_hint(shapes: Mapping, what: str = "encoder") -> str:
  """"; its <what> is built by --hparams {...}" for an error message about a checkpoint
  with these shapes, or "" when they hold no `electra/` encoder."""
  import json
  try:
    return (f"; its {what} is built by --hparams " +
            json.dumps(hparams_from_shapes(shapes), ensure_ascii=False))
  except errors.ConfigError:
    return ""
