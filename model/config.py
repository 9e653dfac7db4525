"""`Config`: what the pretraining and finetuning configs share.

Both configs are attribute bags, as the original's: a subclass sets every default in its
`__init__`, each with its comment, adds the TPU keys with `_set_tpu_defaults()` and ends
with `_resolve(kwargs)`; its class names the keys `_derive` computes (`DERIVED`). The
resolution applies, in order (the original's order):

  defaults -> preset -> the subclass's preset-dependent defaults (`_preset_defaults`) ->
  debug settings -> explicit hparams (always win) -> the "small means embedding 128"
  rule -> derived paths (`_derive`) -> `validate()`.

Unknown keys fail with the closest valid names; a bad value fails naming its key. The
encoder's shapes come from model/sizes.py, which is why this base lives in model/ and not
in util/. This module does not import TensorFlow.
"""
import copy
import json
from typing import Iterable

from model import sizes
from util import errors
from util import hparams as hparams_lib
from util import distribute
from util import tpu as tpu_lib

ConfigError = errors.ConfigError

# Keys every config has that must be positive integers / true or false.
_POSITIVE_INTS = ("max_seq_length", "train_batch_size", "eval_batch_size",
                  "save_checkpoints_steps", "iterations_per_loop", "vocab_size",
                  "log_every_steps")
_BOOLS = ("debug", "use_bf16", "use_tpu", "fused_kernels")


class Config(object):
  """Hyperparameters with attribute access; the base of PretrainingConfig and
  FinetuningConfig (see the module docstring for the resolution order)."""

  PRESETS = {}  # name -> {hparam: value}
  ENCODER = "encoder"  # what error messages call the encoder whose sizes hparams set
  DEBUG_SETTINGS = {}  # applied with "debug": true, before explicit hparams
  DERIVED = ()  # keys that _derive sets from the others unless given explicitly

  def _set_tpu_defaults(self):
    """The original's TPU keys (read by util/estimator.py), with its defaults."""
    self.use_tpu = False
    self.num_tpu_cores = None  # ours: null reads it from the TPU system (original: 1)
    self.tpu_job_name = None
    self.tpu_name = None
    self.tpu_zone = None
    self.gcp_project = None
    # ours: "none", "mirrored" (every GPU of this machine) or "multi_worker" (the TF_CONFIG
    # cluster); tf.distribute strategies, CPU/GPU only (util/distribute.py)
    self.distribution = "none"
    self.num_cpu_devices = 1  # ours: "mirrored" on a machine without a GPU: CPU replicas
    # ours: "multi_worker": a worker stops when no step (checkpoint saves included) finished
    # in this many seconds, e.g. because another worker died
    self.worker_timeout_secs = 600

  def _resolve(self, kwargs):
    """Applies the preset, debug settings and `kwargs` over the defaults, then derives and
    validates (module docstring).

    Raises:
      ConfigError: an unknown key or preset, or an invalid value (naming the key).
    """
    kwargs = dict(kwargs)
    for k in self.DERIVED:
      setattr(self, k, None)
    hparams_lib.check_keys(kwargs, self._keys())
    preset = kwargs.get("preset", self.preset)
    if preset is not None or self.preset is not None:  # a config with a default preset
      if preset not in self.PRESETS:
        raise ConfigError(f"unknown preset {preset!r}"
                          f"{hparams_lib.closest(preset, self.PRESETS)} "
                          f"(known: {', '.join(self.PRESETS)})")
      self.preset = preset
      self.__dict__.update(copy.deepcopy(self.PRESETS[preset]))
    self.__dict__.update(self._preset_defaults(kwargs))
    if kwargs.get("debug", False):
      self.__dict__.update(self.DEBUG_SETTINGS)
    self._check_types(kwargs)
    self.__dict__.update(copy.deepcopy(kwargs))
    if "embedding_size" not in kwargs:
      self.embedding_size = sizes.default_embedding_size(self.model_size, self.embedding_size)
    self._explicit = set(kwargs)
    self._derive()
    self.validate()

  def _check_types(self, kwargs):
    """Each given value has the type of the value it replaces (util/hparams.check_type);
    derived keys (null until derived) accept any."""
    for k, v in kwargs.items():
      hparams_lib.check_type(k, v, getattr(self, k))

  def _keys(self):
    return [k for k in self.__dict__ if not k.startswith("_")]

  def _preset_defaults(self, kwargs):
    """Defaults that depend on the preset and the given hparams (none here); may normalise
    `kwargs` in place."""
    del kwargs
    return {}

  def _derive(self):
    """Sets the derived values (paths) not given explicitly (`self._explicit`)."""

  def _set_unless_given(self, **values):
    for k, v in values.items():
      if k not in self._explicit:
        setattr(self, k, v)

  @classmethod
  def from_hparams(cls, model_name, data_dir, hparams=None, preset=None, **kwargs):
    """Build from `--hparams` (JSON string, JSON file path, dict, None or a list of these),
    `--preset` (which must agree with a "preset" inside hparams) and keyword hparams.

    Raises:
      ConfigError: see util/hparams.parse_hparams and `_resolve`.
    """
    merged = hparams_lib.merge_preset(hparams_lib.parse_hparams(hparams), preset)
    merged.update(kwargs)
    return cls(model_name, data_dir, **merged)

  def update(self, kwargs):
    """Apply more hparams (unknown keys are an error), then re-derive and re-validate."""
    hparams_lib.check_keys(kwargs, self._keys())
    self._check_types(kwargs)
    self.__dict__.update(copy.deepcopy(dict(kwargs)))
    self._explicit |= set(kwargs)
    self._derive()
    self.validate()

  def to_dict(self):
    return {k: copy.deepcopy(v) for k, v in self.__dict__.items() if not k.startswith("_")}

  def to_json(self):
    return json.dumps(self.to_dict(), indent=2, sort_keys=True)

  def __repr__(self):
    return f"{type(self).__name__}({self.to_json()})"

  # -- model shapes ---------------------------------------------------------

  def bert_hparams(self):
    """The (discriminator's) BertConfig fields (dict), as the original get_bert_config
    (model/sizes.py), shrunk in debug mode as the original's models do."""
    return sizes.bert_hparams(self.model_size, self.vocab_size, self.model_hparam_overrides,
                              debug=self.debug)

  def embedding_dim(self):
    return self.bert_hparams()["hidden_size"] if self.embedding_size is None \
        else self.embedding_size

  # -- validation -------------------------------------------------------------

  @staticmethod
  def _need(cond, msg):
    if not cond:
      raise ConfigError(msg)

  def validate(self, positive_ints: Iterable[str] = (), bools: Iterable[str] = ()):
    """Catch bad settings at config time, naming the key (never deep in graph building).

    Args:
      positive_ints, bools: the subclass's keys checked as the common ones.

    Raises:
      ConfigError: naming the first bad key.
    """
    need = self._need
    need(isinstance(self.model_name, str) and self.model_name,
         "model_name must be a non-empty string")
    for k in _POSITIVE_INTS + tuple(positive_ints):
      v = getattr(self, k)
      need(isinstance(v, int) and not isinstance(v, bool) and v > 0,
           f"{k} must be a positive integer, got {v!r}")
    tpu_lib.check_batch_sizes(self)
    distribute.check_config(self)
    need(isinstance(self.keep_checkpoint_max, int) and self.keep_checkpoint_max >= 0,
         f"keep_checkpoint_max must be a non-negative integer (0 keeps all), got "
         f"{self.keep_checkpoint_max!r}")
    for k in _BOOLS + tuple(bools):
      need(isinstance(getattr(self, k), bool),
           f"{k} must be true or false, got {getattr(self, k)!r}")
    need(float(self.learning_rate) > 0, f"learning_rate must be > 0, got {self.learning_rate}")
    need(self.embedding_size is None or
         (isinstance(self.embedding_size, int) and self.embedding_size > 0),
         f"embedding_size must be a positive integer or null, got {self.embedding_size!r}")
    hp = self.bert_hparams()
    need(self.max_seq_length <= hp["max_position_embeddings"],
         f"max_seq_length {self.max_seq_length} exceeds max_position_embeddings "
         f"{hp['max_position_embeddings']}")
    self._check_heads(self.ENCODER, hp, "model_hparam_overrides")

  def _check_heads(self, which, hp, key, hint=""):
    """Raises ConfigError unless `hp`'s hidden size splits into whole attention heads."""
    h, a = hp["hidden_size"], hp["num_attention_heads"]
    if h >= 1 and a >= 1 and h % a == 0:
      return
    raise ConfigError(f"{which} hidden size {h} is not divisible into {a} whole attention "
                      f"heads{hint} [key: {key}]")
