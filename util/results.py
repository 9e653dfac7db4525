"""Evaluation results files: every evaluation of a model so far, keyed by global step,
as JSON (for tools) and text (for people), each rewritten atomically."""
import json
from typing import Mapping, Tuple

from util import fileio


def plain(value):
  """A numpy scalar as the Python number it holds (JSON cannot hold numpy types)."""
  try:
    return value.item()
  except AttributeError:
    return value


def append_results(results_txt: str, result: Mapping) -> Tuple[str, str]:
  """Adds one evaluation to `<name>.json` beside `results_txt` and rewrites both files.

  Args:
    results_txt: path of the text file (local or scheme://); the JSON file takes its name
      with .json for .txt.
    result: metric name -> value, with "global_step" (0 if absent) as the key.

  Returns:
    (results_txt, results_json) paths.
  """
  result = {k: plain(v) for k, v in result.items()}
  txt = results_txt
  json_path = txt[:-4] + ".json" if txt.endswith(".txt") else txt + ".json"
  history = {}
  if fileio.exists(json_path):
    with fileio.open_file(json_path) as f:
      history = json.load(f)
  history[str(result.get("global_step", 0))] = result
  fileio.makedirs(txt.rsplit("/", 1)[0])
  with fileio.atomic_write(json_path) as f:
    json.dump(history, f, indent=2, sort_keys=True)
  with fileio.atomic_write(txt) as f:
    for step in sorted(history, key=int):
      f.write(f"step {step}: " + ", ".join(
          f"{k} = {v:.6g}" if isinstance(v, float) else f"{k} = {v}"
          for k, v in sorted(history[step].items()) if k != "global_step") + "\n")
  return txt, json_path
