"""`--hparams` values and strict key checking, shared by the pretraining and finetuning
configs: a JSON object string or a JSON file (local or remote), unknown keys an error
with the closest valid names, and one rule for a preset given two ways."""
import difflib
import json
from typing import Iterable, Optional, Sequence, Union

from util import errors
from util import fileio


def closest(key: str, valid: Iterable[str]) -> str:
  """'; did you mean a, b?' for the valid names close to `key`, or ''."""
  close = difflib.get_close_matches(str(key), list(valid), n=3, cutoff=0.5)
  return f"; did you mean {', '.join(close)}?" if close else ""


def check_keys(given: Iterable[str], valid: Iterable[str], what: str = "hparam") -> None:
  """Raises ConfigError for the first key of `given` not in `valid`, with suggestions."""
  valid = sorted(valid)
  for k in given:
    if k not in valid:
      raise errors.ConfigError(f"unknown {what} {k!r}{closest(k, valid)}")


def parse_hparams(hparams: Union[None, str, dict, Sequence[Union[str, dict]]],
                  not_hparams: Iterable[str] = ("model_name", "data_dir")) -> dict:
  """`--hparams` value(s) -> dict.

  Args:
    hparams: a JSON object string, a path to a JSON file (local or scheme://), a dict,
      None / "" for none, or a list of these (--hparams given several times): merged in
      order, a later one replacing a key of an earlier one whole (e.g. a file of model
      sizes, then the run's own settings).
    not_hparams: keys that are command-line arguments, refused here with a hint.

  Returns:
    A new dict.

  Raises:
    ConfigError: not a JSON object, a missing file, invalid JSON (line and column), or
      a command-line argument given as an hparam.
  """
  if isinstance(hparams, (list, tuple)):
    merged = {}
    for one in hparams:
      merged.update(parse_hparams(one, not_hparams))
    return merged
  if hparams is None or hparams == "":
    return {}
  if isinstance(hparams, dict):
    return dict(hparams)
  text = str(hparams)
  where = "--hparams"
  if not text.lstrip().startswith("{"):
    if not fileio.exists(text):
      raise errors.ConfigError(
          f"--hparams {text!r} is neither a JSON object nor an existing file")
    where = text
    with fileio.open_file(text) as f:
      text = f.read()
  try:
    value = json.loads(text)
  except json.JSONDecodeError as e:
    raise errors.ConfigError(
        f"{where}: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
  if not isinstance(value, dict):
    raise errors.ConfigError(f"{where}: expected a JSON object, got {type(value).__name__}")
  for k in not_hparams:
    if k in value:
      raise errors.ConfigError(
          f"{where}: {k!r} is not an hparam; pass it as --{k.replace('_', '-')}")
  return value


def merge_preset(hparams: dict, preset: Optional[str]) -> dict:
  """`--preset P` and `"preset"` inside --hparams mean the same; both given must agree.

  Returns a new dict with "preset" set when either gave one.

  Raises:
    ConfigError: the two name different presets.
  """
  out = dict(hparams)
  if preset:
    inner = out.get("preset")
    if inner is not None and inner != preset:
      raise errors.ConfigError(
          f"--preset {preset!r} and \"preset\": {inner!r} in --hparams disagree; give one")
    out["preset"] = preset
  return out


def _type_name(value) -> str:
  """A JSON reader's name for the type of `value`."""
  if value is None:
    return "null"
  if isinstance(value, bool):
    return "true/false"
  if isinstance(value, int):
    return "an integer"
  if isinstance(value, float):
    return "a number"
  if isinstance(value, str):
    return "a string"
  if isinstance(value, (list, tuple)):
    return "a list"
  if isinstance(value, dict):
    return "an object"
  return type(value).__name__


def check_type(key: str, value, default, where: str = "hparam") -> None:
  """Raises ConfigError unless `value` has the JSON type of `default`.

  Range checks stay with each config's validate(); this catches what would otherwise fail
  deep inside graph building or arithmetic ("1e-3" for a number, null for a required
  count). An integer is a valid number; a default of null accepts anything (optional keys
  are checked by validate()).

  Args:
    key: the hparam's name, for the message.
    value: the given value.
    default: the value it replaces (its type is the expected one).
    where: what the key belongs to, for the message ("hparam", "model_hparam_overrides").

  Raises:
    ConfigError: naming the key, the expected and the given type.
  """
  if default is None:
    return
  if isinstance(default, bool):
    ok = isinstance(value, bool)
  elif isinstance(default, int):
    ok = isinstance(value, int) and not isinstance(value, bool)
  elif isinstance(default, float):
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
  elif isinstance(default, (list, tuple)):
    ok = isinstance(value, (list, tuple))
  else:
    ok = isinstance(value, type(default))
  if not ok:
    hint = " (write numbers without quotes)" if isinstance(value, str) and \
        isinstance(default, (int, float)) and not isinstance(default, bool) else ""
    given = _type_name(value) if value is None else \
        f"{_type_name(value)} {value!r}"
    raise errors.ConfigError(f"{where} {key} expects {_type_name(default)}, got {given}{hint}")
