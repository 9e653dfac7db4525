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
