"""Model kinds and the TF <-> Hugging Face parameter names.

Our (original ELECTRA) TF variables and HF ELECTRA's parameters, for the two pretraining
models and for the finetuned heads that are one-to-one with a transformers class: the
encoder under `electra/` (as in pretraining) and the head under `task_specific/<task>/`.
The original ELECTRA classifier (`task_specific/<task>/dense` on [CLS]) is not among them:
HF's ElectraClassificationHead is dense + gelu + out_proj, two layers where it has one.

TensorFlow is not imported here (export_hf.py's --help reads KINDS).
"""
import collections
import re
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import numpy as np


class Kind(NamedTuple):
  """One model kind: its transformers class and, for a finetuned head, how it maps."""
  architecture: str
  # {TF scope under task_specific/<task>/: HF module}; empty for the pretraining models.
  head: Dict[str, str]
  # The HF module whose output rows are the labels (None: no label rows).
  label_layer: Optional[str]
  # Which head of the task's kind maps, said when another one is refused.
  mapped_head: str


# The one table of model kinds.
KINDS = {
    "discriminator": Kind("ElectraForPreTraining", {}, None, ""),
    "generator": Kind("ElectraForMaskedLM", {}, None, ""),
    # KoELECTRA's HF-style classifier: dense [H, H] -> gelu -> out_proj [H, labels].
    "sequence_classification": Kind(
        "ElectraForSequenceClassification",
        {"classifier/dense": "classifier.dense", "classifier/out_proj": "classifier.out_proj"},
        "classifier.out_proj",
        "the original ELECTRA classifier (one dense layer on [CLS]) is not one-to-one with "
        "ElectraForSequenceClassification's head (dense + gelu + out_proj); only "
        "KoELECTRA's HF-style head (classifier/dense, classifier/out_proj) exports"),
    # Per-token tagging (Naver NER): one dense [H, labels].
    "token_classification": Kind(
        "ElectraForTokenClassification", {"dense": "classifier"}, "classifier",
        "ElectraForTokenClassification has one dense layer (task_specific/<task>/dense)"),
    # KorQuAD without joint_prediction: `dense` (start) and `dense_1` (end), [H, 1] each;
    # HF stacks them as qa_outputs [2, H]. (joint_prediction adds `qa_hidden` [2H, 512]
    # and makes `dense_1` [512, 1]: no HF equivalent.)
    "question_answering": Kind(
        "ElectraForQuestionAnswering", {"dense": "qa_outputs", "dense_1": "qa_outputs"}, None,
        "ElectraForQuestionAnswering has one start and one end layer (joint_prediction "
        "off); joint_prediction's heads do not map"),
}
MODELS = tuple(KINDS)
PRETRAINING_MODELS = ("discriminator", "generator")
HEAD_MODELS = tuple(k for k in MODELS if KINDS[k].head)
# The TF layers giving rows 0 (start) and 1 (end) of HF's qa_outputs.
QA_ROWS = ("dense", "dense_1")
TASK_SCOPE = "task_specific"

_HF_LEAF = {"kernel": "weight", "gamma": "weight", "beta": "bias", "bias": "bias"}


def _check_model(model: str, models: Sequence[str] = MODELS) -> None:
  if model not in models:
    raise ValueError(f"model must be one of {', '.join(models)}, got {model!r}")


def task_names(tf_names) -> list:
  """The task names <task> of `task_specific/<task>/...` variables, sorted."""
  return sorted({n.split("/")[1] for n in tf_names
                 if n.startswith(TASK_SCOPE + "/") and n.count("/") >= 2})


def _hf_path(parts):
  out = []
  for p in parts:
    m = re.fullmatch(r"layer_(\d+)", p)
    out.append(f"layer.{m.group(1)}" if m else p)
  return out


def _head_to_hf(rest, model):
  scope, leaf = "/".join(rest[:-1]), rest[-1]
  hf = KINDS[model].head.get(scope)
  if hf is None or leaf not in ("kernel", "bias"):
    return None
  return f"{hf}.{_HF_LEAF[leaf]}", leaf == "kernel"


def tf_to_hf_name(tf_name: str, model: str = "discriminator",
                  task: Optional[str] = None) -> Optional[Tuple[str, bool]]:
  """Maps a TF variable name to (HF parameter name, transpose) or None.

  Args:
    tf_name: a checkpoint variable name, e.g. "electra/encoder/layer_0/output/dense/kernel".
    model: "discriminator" (ElectraForPreTraining / ElectraModel under `electra.`),
      "generator" (ElectraForMaskedLM), or a finetuned model of HEAD_MODELS
      (ElectraForSequenceClassification / ElectraForTokenClassification /
      ElectraForQuestionAnswering: `electra/` encoder + `task_specific/<task>/` head).
    task: for HEAD_MODELS, only this task's head maps (None: any task's).

  Returns:
    (HF parameter name, whether the array is transposed), or None when the variable is
    not part of that model (e.g. the generator's encoder for the discriminator,
    global_step, optimizer slots: `.../adam_m` ends in no HF leaf). Both QA kernels map
    to `qa_outputs.weight` (and both biases to `qa_outputs.bias`): tf_to_hf_state stacks
    them in QA_ROWS order.

  Raises:
    ValueError: an unknown model.
  """
  _check_model(model)
  if "/" not in tf_name:
    return None
  parts = tf_name.split("/")
  top, rest = parts[0], parts[1:]
  if model in HEAD_MODELS:
    if top == TASK_SCOPE and len(rest) >= 3 and task in (None, rest[0]):
      return _head_to_hf(rest[1:], model)
    if top != "electra":
      return None
    model = "discriminator"  # the same encoder names
  if top == "electra" and rest[0] == "embeddings":
    body = ["electra"] + rest   # shared by both models
  elif top == "generator" and model == "generator":
    body = ["electra"] + rest   # the generator's own encoder (and untied embeddings)
  elif top == "electra" and model == "discriminator":
    body = ["electra"] + rest
  elif top == "discriminator_predictions" and model == "discriminator":
    body = [top] + ["dense_prediction" if p == "dense_1" else p for p in rest]
  elif top == "generator_predictions" and model == "generator":
    if rest == ["output_bias"]:
      return "generator_lm_head.bias", False
    body = [top] + rest
  else:
    return None
  leaf = body[-1]
  if leaf.endswith("_embeddings"):
    return ".".join(_hf_path(body)) + ".weight", False
  if leaf not in _HF_LEAF:
    return None
  return ".".join(_hf_path(body[:-1]) + [_HF_LEAF[leaf]]), leaf == "kernel"


def tf_to_hf_state(tf_values: Dict[str, np.ndarray], model: str = "discriminator",
                   task: Optional[str] = None) -> Dict[str, np.ndarray]:
  """{tf name: array} -> {HF parameter name: array} (kernels transposed).

  The generator's output layer reuses the word embeddings (`generator_lm_head.weight`).
  When both shared and untied generator embeddings exist, the generator takes its own.
  For question_answering, the start and end layers ([H, 1] each) become the rows of
  qa_outputs ([2, H], bias [2]); with only one of them present neither is mapped.

  Args:
    tf_values: {TF variable name: numpy array}.
    model, task: as tf_to_hf_name.

  Returns:
    {HF parameter name: numpy array}.
  """
  out = {}
  qa = collections.defaultdict(dict)  # HF name -> {row index: [1, H] or [1]}
  for name in sorted(tf_values, key=lambda n: n.startswith("generator/")):
    mapped = tf_to_hf_name(name, model, task)
    if mapped is None:
      continue
    hf_name, transpose = mapped
    value = tf_values[name]
    value = value.T if transpose else value
    if hf_name.startswith("qa_outputs."):
      qa[hf_name][QA_ROWS.index(name.split("/")[2])] = value
      continue
    out[hf_name] = value
  for hf_name, rows in qa.items():
    if sorted(rows) == [0, 1]:
      out[hf_name] = np.concatenate([rows[0], rows[1]], axis=0)
  if model == "generator" and "electra.embeddings.word_embeddings.weight" in out:
    out["generator_lm_head.weight"] = out["electra.embeddings.word_embeddings.weight"]
  return out


def hf_to_tf_name(hf_name: str, model: str = "discriminator",
                  untied_embeddings: bool = False) -> Optional[Tuple[str, bool]]:
  """Maps a Hugging Face ELECTRA parameter name to (TF variable name, transpose) or None.

  The inverse of tf_to_hf_name for the pretraining models. `generator_lm_head.weight` is
  the (tied) word embedding table.

  Args:
    hf_name: e.g. "electra.encoder.layer.0.output.dense.weight".
    model: "discriminator" or "generator".
    untied_embeddings: the generator's embeddings live under `generator/embeddings`.

  Returns:
    (TF variable name, whether the array is transposed), or None.

  Raises:
    ValueError: an unknown model.
  """
  _check_model(model, PRETRAINING_MODELS)
  encoder_scope = "electra" if model == "discriminator" else "generator"
  embeddings_scope = encoder_scope if untied_embeddings else "electra"
  if model == "generator" and hf_name == "generator_lm_head.weight":
    return embeddings_scope + "/embeddings/word_embeddings", False
  if model == "generator" and hf_name == "generator_lm_head.bias":
    return "generator_predictions/output_bias", False
  parts = hf_name.split(".")
  if len(parts) < 2:
    return None
  top, body, leaf = parts[0], parts[1:-1], parts[-1]
  if top == "electra":
    scope = embeddings_scope if body[:1] == ["embeddings"] else encoder_scope
  elif top == "discriminator_predictions" and model == "discriminator":
    scope = top
    body = ["dense_1" if p == "dense_prediction" else p for p in body]
  elif top == "generator_predictions" and model == "generator":
    scope = top
  else:
    return None
  out = []
  i = 0
  while i < len(body):
    if body[i] == "layer" and i + 1 < len(body) and body[i + 1].isdigit():
      out.append("layer_" + body[i + 1])
      i += 2
    else:
      out.append(body[i])
      i += 1
  if out and out[-1].endswith("_embeddings") and leaf == "weight":
    return "/".join([scope] + out), False
  if out and out[-1] == "LayerNorm":
    tf_leaf = {"weight": "gamma", "bias": "beta"}.get(leaf)
  else:
    tf_leaf = {"weight": "kernel", "bias": "bias"}.get(leaf)
  if tf_leaf is None:
    return None
  return "/".join([scope] + out + [tf_leaf]), tf_leaf == "kernel"


def hf_to_tf_state(hf_state: Dict[str, np.ndarray], model: str = "discriminator",
                   untied_embeddings: bool = False):
  """{HF parameter name: array} -> ({TF variable name: array}, [HF names not mapped]).

  The inverse of tf_to_hf_state for the pretraining models (kernels transposed back).
  `generator_lm_head.weight` is the tied word-embedding table: it is not a variable of
  its own, so it is left out here when the embeddings themselves are present.

  Args:
    hf_state: {HF parameter name: numpy array}.
    model: "discriminator" or "generator".
    untied_embeddings: the generator's embeddings live under `generator/embeddings`.

  Returns:
    ({TF name: numpy array}, sorted list of HF names that map to no TF variable).
  """
  out, unmapped = {}, []
  for hf_name in sorted(hf_state):
    mapped = hf_to_tf_name(hf_name, model, untied_embeddings=untied_embeddings)
    if mapped is None:
      unmapped.append(hf_name)
      continue
    tf_name, transpose = mapped
    if hf_name == "generator_lm_head.weight" and tf_name in out:
      continue
    value = hf_state[hf_name]
    out[tf_name] = value.T if transpose else value
  return out, unmapped


def hf_head_model_to_tf_state(hf_state: Dict[str, np.ndarray], model: str, task: str):
  """{HF name: array} of a finetuned model -> ({TF name: array}, [HF names not mapped]).

  The inverse of tf_to_hf_state for HEAD_MODELS: the `electra.` encoder as the
  discriminator's, the head under `task_specific/<task>/` (qa_outputs [2, H] split back
  into the start `dense` and end `dense_1` layers, [H, 1] each).

  Args:
    hf_state: {HF parameter name: numpy array}.
    model: one of HEAD_MODELS.
    task: the <task> of `task_specific/<task>/`.

  Returns:
    ({TF name: numpy array}, sorted list of HF names that map to no TF variable).

  Raises:
    ValueError: a model that is not a finetuned head.
  """
  _check_model(model, HEAD_MODELS)
  encoder = {n: v for n, v in hf_state.items() if n.startswith("electra.")}
  out, unmapped = hf_to_tf_state(encoder, "discriminator")
  scope = f"{TASK_SCOPE}/{task}/"
  modules = {hf: tf_scope for tf_scope, hf in KINDS[model].head.items()}
  for name in sorted(set(hf_state) - set(encoder)):
    module, _, leaf = name.rpartition(".")
    if module not in modules or leaf not in ("weight", "bias"):
      unmapped.append(name)
      continue
    value = hf_state[name]
    tf_leaf = "kernel" if leaf == "weight" else "bias"
    if model == "question_answering":
      parts = [(layer, value[row:row + 1]) for row, layer in enumerate(QA_ROWS)]
    else:
      parts = [(modules[module], value)]
    for tf_scope, part in parts:
      out[scope + tf_scope + "/" + tf_leaf] = part.T if leaf == "weight" else part
  return out, sorted(unmapped)


def expected_shapes(config: dict, model: str) -> Dict[str, Tuple[int, ...]]:
  """{HF parameter name: shape} that a model of `config` holds (tied output layer left out).

  Args:
    config: config.json fields (files.electra_config's output or a hub folder's).
    model: a kind of MODELS.

  Returns:
    {name: shape tuple}; `generator_lm_head.weight` is absent (tied to the embeddings).
  """
  e, h, i = config["embedding_size"], config["hidden_size"], config["intermediate_size"]
  v, p, t = config["vocab_size"], config["max_position_embeddings"], config["type_vocab_size"]
  out = {
      "electra.embeddings.word_embeddings.weight": (v, e),
      "electra.embeddings.position_embeddings.weight": (p, e),
      "electra.embeddings.token_type_embeddings.weight": (t, e),
      "electra.embeddings.LayerNorm.weight": (e,),
      "electra.embeddings.LayerNorm.bias": (e,),
  }
  if e != h:
    out["electra.embeddings_project.weight"] = (h, e)
    out["electra.embeddings_project.bias"] = (h,)
  for n in range(config["num_hidden_layers"]):
    layer = f"electra.encoder.layer.{n}."
    for name in ("attention.self.query", "attention.self.key", "attention.self.value",
                 "attention.output.dense"):
      out[layer + name + ".weight"] = (h, h)
      out[layer + name + ".bias"] = (h,)
    out[layer + "intermediate.dense.weight"] = (i, h)
    out[layer + "intermediate.dense.bias"] = (i,)
    out[layer + "output.dense.weight"] = (h, i)
    out[layer + "output.dense.bias"] = (h,)
    for name in ("attention.output.LayerNorm", "output.LayerNorm"):
      out[layer + name + ".weight"] = (h,)
      out[layer + name + ".bias"] = (h,)
  num_labels = len(config.get("id2label") or {}) or None
  if model == "discriminator":
    out.update({"discriminator_predictions.dense.weight": (h, h),
                "discriminator_predictions.dense.bias": (h,),
                "discriminator_predictions.dense_prediction.weight": (1, h),
                "discriminator_predictions.dense_prediction.bias": (1,)})
  elif model == "generator":
    out.update({"generator_predictions.dense.weight": (e, h),
                "generator_predictions.dense.bias": (e,),
                "generator_predictions.LayerNorm.weight": (e,),
                "generator_predictions.LayerNorm.bias": (e,),
                "generator_lm_head.bias": (v,)})
  elif model == "sequence_classification":
    out.update({"classifier.dense.weight": (h, h), "classifier.dense.bias": (h,),
                "classifier.out_proj.weight": (num_labels, h),
                "classifier.out_proj.bias": (num_labels,)})
  elif model == "token_classification":
    out.update({"classifier.weight": (num_labels, h), "classifier.bias": (num_labels,)})
  elif model == "question_answering":
    out.update({"qa_outputs.weight": (2, h), "qa_outputs.bias": (2,)})
  return out
