"""The files of a Hugging Face hub folder, and the staged output that writes them.

  config.json              ElectraConfig fields (model_type "electra", architectures, sizes)
  model.safetensors        written from numpy (no torch needed to export)
  vocab.txt                the vocab, byte for byte
  tokenizer.json           the fast tokenizer (`tokenizers`), cased, no accent stripping
  tokenizer_config.json    tokenizer_class "ElectraTokenizer" (as the published KoELECTRA)
  special_tokens_map.json
  README.md                model card

Reading accepts model.safetensors (also sharded, with its index) or pytorch_model.bin
(torch's zip format or its earlier pickle format; model/hf/pickle_reader.py, no torch).
The parameter names inside come from model/hf/names.py.
"""
import collections
import contextlib
import json
import os
import re
import shutil
import tempfile
import uuid
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from model import checkpoint
from model import tokenization
from model.hf import HFFormatError
from model.hf import names
from model.hf import pickle_reader
from util import fileio
from util import gcs

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
TORCH_WEIGHTS_FILE = "pytorch_model.bin"
VOCAB_FILE = "vocab.txt"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"
MODEL_CARD_FILE = "README.md"

# What the published KoELECTRA folders name: AutoTokenizer gives ElectraTokenizerFast in
# 4.x (ElectraTokenizer with use_fast=False), and in 5.x, where ElectraTokenizer is an
# alias of BertTokenizer, the fast BertTokenizer: the same WordPiece either way.
TOKENIZER_CLASS = "ElectraTokenizer"
# The original BERT/ELECTRA LayerNorm epsilon (HF's ElectraConfig default is also 1e-12).
LAYER_NORM_EPS = 1e-12
# Buffers some transformers versions save beside the parameters; they are not weights.
_HF_BUFFERS = ("electra.embeddings.position_ids", "electra.embeddings.token_type_ids")


# ---------------------------------------------------------------- config.json


def electra_config(bert_hparams: dict, embedding_size: int, model: str, pad_token_id: int,
                   num_labels: Optional[int] = None,
                   labels: Optional[Sequence[str]] = None,
                   problem_type: Optional[str] = None) -> dict:
  """The config.json of one model.

  Args:
    bert_hparams: BertConfig fields of the encoder (vocab_size, hidden_size, ...), as
      PretrainingConfig.bert_hparams() / generator_hparams() give them.
    embedding_size: width of the embedding tables (projected to hidden_size if different).
    model: a kind of names.MODELS.
    pad_token_id: the vocab's [PAD] id.
    num_labels: head width for sequence/token classification (QA: 2, implied).
    labels: label names in id order (default LABEL_0 ...), written as id2label/label2id.
    problem_type: "single_label_classification", "multi_label_classification" or
      "regression" (sequence classification only).

  Returns:
    A dict ready for json.dump.
  """
  cfg = collections.OrderedDict([
      ("architectures", [names.KINDS[model].architecture]),
      ("model_type", "electra"),
      ("vocab_size", int(bert_hparams["vocab_size"])),
      ("embedding_size", int(embedding_size)),
      ("hidden_size", int(bert_hparams["hidden_size"])),
      ("num_hidden_layers", int(bert_hparams["num_hidden_layers"])),
      ("num_attention_heads", int(bert_hparams["num_attention_heads"])),
      ("intermediate_size", int(bert_hparams["intermediate_size"])),
      ("hidden_act", bert_hparams.get("hidden_act", "gelu")),
      ("hidden_dropout_prob", float(bert_hparams.get("hidden_dropout_prob", 0.1))),
      ("attention_probs_dropout_prob",
       float(bert_hparams.get("attention_probs_dropout_prob", 0.1))),
      ("max_position_embeddings", int(bert_hparams.get("max_position_embeddings", 512))),
      ("type_vocab_size", int(bert_hparams.get("type_vocab_size", 2))),
      ("initializer_range", float(bert_hparams.get("initializer_range", 0.02))),
      ("layer_norm_eps", LAYER_NORM_EPS),
      ("pad_token_id", int(pad_token_id)),
      ("position_embedding_type", "absolute"),
  ])
  if cfg["hidden_act"] != "gelu":
    # Our "gelu" is the exact erf GELU, which is HF's "gelu"; relu/tanh are named alike.
    if cfg["hidden_act"] not in ("relu", "tanh"):
      raise HFFormatError(f"hidden_act {cfg['hidden_act']!r} has no transformers equivalent")
  if model in ("sequence_classification", "token_classification"):
    if num_labels is None:
      raise ValueError(f"num_labels is needed for {model}")
    if labels is not None and len(labels) != num_labels:
      raise HFFormatError(f"{len(labels)} label names given ({', '.join(labels)}) but the "
                          f"head has {num_labels} outputs")
    label_names = list(labels) if labels is not None else [f"LABEL_{i}"
                                                           for i in range(num_labels)]
    cfg["id2label"] = {str(i): n for i, n in enumerate(label_names)}
    cfg["label2id"] = {n: i for i, n in enumerate(label_names)}
    if model == "sequence_classification":
      if problem_type is None:
        problem_type = "regression" if num_labels == 1 else "single_label_classification"
      cfg["problem_type"] = problem_type
  return dict(cfg)


def check_shapes(state: Dict[str, np.ndarray], config: dict, model: str, source: str) -> None:
  """Raises HFFormatError unless `state` holds exactly the parameters `config` implies.

  The message lists each missing, unexpected or differently shaped parameter.

  Args:
    state: {HF name: array} (tied `generator_lm_head.weight` ignored).
    config: config.json fields.
    model: a kind of names.MODELS.
    source: what the state came from, for the message (a checkpoint path, a folder).
  """
  have = {n: tuple(a.shape) for n, a in state.items() if n != "generator_lm_head.weight"}
  diff = checkpoint.compare_variables(names.expected_shapes(config, model), have)
  if not diff.ok:
    raise HFFormatError(f"{source} does not match the {model} the hparams describe (hidden "
                        f"{config['hidden_size']}, {config['num_hidden_layers']} layers, "
                        f"embedding {config['embedding_size']}, vocab "
                        f"{config['vocab_size']}):\n{diff.describe('the hparams', source)}")


def read_lower_case(folder: str) -> Tuple[bool, Optional[str]]:
  """Whether a hub folder's tokenizer lower-cases, from its tokenizer_config.json.

  Args:
    folder: a hub-format folder.

  Returns:
    (do_lower_case, a note for the log or None). Without the file or the key: False, the
    KoELECTRA setting (the folder says nothing; transformers' own default would be True).

  Raises:
    HFFormatError: invalid JSON, or a do_lower_case that is not true/false.
  """
  path = os.path.join(folder, TOKENIZER_CONFIG_FILE)
  if not os.path.isfile(path):
    return False, f"{folder}: no {TOKENIZER_CONFIG_FILE}; the vocab is taken as cased"
  try:
    with open(path, encoding="utf-8") as f:
      tok = json.load(f)
  except json.JSONDecodeError as e:
    raise HFFormatError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}")
  lower = tok.get("do_lower_case", False)
  if not isinstance(lower, bool):
    raise HFFormatError(f"{path}: do_lower_case must be true or false, got {lower!r}")
  note = None
  if "do_lower_case" not in tok:
    note = f"{path} has no do_lower_case; the vocab is taken as cased"
  elif tok.get("strip_accents") not in (None, lower):
    # This project's tokenizer strips accents exactly when it lower-cases (as BERT's).
    note = (f"{path}: strip_accents {tok['strip_accents']} with do_lower_case {lower} is "
            f"not carried over; accents are stripped only when lower-casing")
  return lower, note


def read_config(folder: str) -> dict:
  """config.json of a hub folder, checked to be an ELECTRA model.

  Args:
    folder: a hub-format folder.

  Returns:
    The config dict; embedding_size defaults to hidden_size (as ElectraConfig's).

  Raises:
    HFFormatError: no config.json, invalid JSON, or a model_type other than "electra".
  """
  path = os.path.join(folder, CONFIG_FILE)
  if not os.path.isfile(path):
    raise HFFormatError(f"{folder}: no {CONFIG_FILE} (not a Hugging Face model folder)")
  try:
    with open(path, encoding="utf-8") as f:
      cfg = json.load(f)
  except json.JSONDecodeError as e:
    raise HFFormatError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}")
  if cfg.get("model_type") != "electra":
    archs = ", ".join(cfg.get("architectures") or ["none"])
    raise HFFormatError(f"{path}: model_type is {cfg.get('model_type')!r}, not 'electra' "
                        f"(architectures: {archs})")
  cfg.setdefault("embedding_size", cfg.get("hidden_size"))
  for key in ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
              "intermediate_size", "max_position_embeddings", "type_vocab_size"):
    if not isinstance(cfg.get(key), int):
      raise HFFormatError(f"{path}: {key} missing or not an integer")
  return cfg


# ---------------------------------------------------------------- weights


def write_safetensors(state: Dict[str, np.ndarray], path: str,
                      metadata: Optional[Dict[str, str]] = None) -> None:
  """Writes {name: array} as safetensors (dtypes kept) with "pt" format metadata.

  Args:
    state: {parameter name: numpy array}.
    path: the file.
    metadata: more header strings.

  Raises:
    OSError: the file cannot be written (disk full, permissions), naming `path`.
  """
  from safetensors import SafetensorError
  from safetensors.numpy import save_file
  meta = {"format": "pt"}  # transformers' loader checks this key
  meta.update(metadata or {})
  try:
    save_file({n: np.ascontiguousarray(a) for n, a in state.items()}, path, metadata=meta)
  except SafetensorError as e:  # its I/O errors carry the errno only in the text
    m = re.search(r"\(os error (\d+)\)", str(e))
    if not m:
      raise
    code = int(m.group(1))
    raise OSError(code, os.strerror(code), path) from e
  # safetensors creates the file owner-only; give it the permissions of the other files.
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(path, 0o666 & ~umask)


def read_weights(folder: str) -> Dict[str, np.ndarray]:
  """{HF name: numpy array} of a hub folder, without torch.

  Reads model.safetensors, a sharded model.safetensors.index.json, or pytorch_model.bin
  (torch's zip format, through a restricted unpickler). Buffers that are not weights
  (position_ids, token_type_ids) are dropped; names of a bare ElectraModel (no
  "electra." prefix) get the prefix.

  Args:
    folder: a hub-format folder.

  Returns:
    {HF parameter name: numpy array}.

  Raises:
    HFFormatError: no weights file, or one that cannot be read.
  """
  st, index, pt = (os.path.join(folder, n) for n in (WEIGHTS_FILE, WEIGHTS_INDEX_FILE,
                                                     TORCH_WEIGHTS_FILE))
  from safetensors import SafetensorError
  from safetensors.numpy import load_file
  try:
    if os.path.isfile(st):
      state = load_file(st)
    elif os.path.isfile(index):
      with open(index, encoding="utf-8") as f:
        shards = sorted(set(json.load(f)["weight_map"].values()))
      state = {}
      for shard in shards:
        state.update(load_file(os.path.join(folder, shard)))
    elif os.path.isfile(pt):
      state = pickle_reader.read_torch_checkpoint(pt)
    else:
      raise HFFormatError(f"{folder}: no {WEIGHTS_FILE}, {WEIGHTS_INDEX_FILE} or "
                          f"{TORCH_WEIGHTS_FILE}")
  except (SafetensorError, OSError, KeyError, ValueError) as e:
    raise HFFormatError(f"{folder}: cannot read the weights: {e}")
  if not any(n.startswith("electra.") for n in state) and \
     any(n.startswith("embeddings.") for n in state):
    state = {"electra." + n: a for n, a in state.items()}  # a bare ElectraModel
  return {n: a for n, a in state.items() if n not in _HF_BUFFERS}


# ---------------------------------------------------------------- tokenizer files


def write_tokenizer_files(vocab_file: str, out_dir: str, model_max_length: int) -> int:
  """Writes vocab.txt, tokenizer.json, tokenizer_config.json and special_tokens_map.json.

  The fast tokenizer is the original BERT/ELECTRA basic + WordPiece tokenizer, cased:
  BertNormalizer with lowercase and strip_accents off (on, Hangul syllables would be
  decomposed into jamo and most words would become [UNK]); no NFC or other
  normalisation, as the original. See docs/huggingface.md for transformers' slow
  tokenizer (ElectraTokenizer, a copy of BertTokenizer), which NFC-normalises.

  Args:
    vocab_file: the vocab (one token a line); copied byte for byte.
    out_dir: an existing folder.
    model_max_length: the longest input the model takes (max_position_embeddings).

  Returns:
    The number of tokens in the vocab.

  Raises:
    tokenization.VocabError: duplicate tokens or missing special tokens.
  """
  from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers
  from tokenizers import processors
  from tokenizers.models import WordPiece

  vocab = tokenization.load_vocab(vocab_file)
  with fileio.open_file(vocab_file, "rb") as src, \
      open(os.path.join(out_dir, VOCAB_FILE), "wb") as dst:  # vocab_file may be gs://
    dst.write(src.read())
  tok = Tokenizer(WordPiece(dict(vocab), unk_token=tokenization.UNK,
                            max_input_chars_per_word=tokenization.MAX_INPUT_CHARS_PER_WORD))
  tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                              strip_accents=False, lowercase=False)
  tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
  cls, sep = tokenization.CLS, tokenization.SEP
  tok.post_processor = processors.TemplateProcessing(
      single=f"{cls}:0 $A:0 {sep}:0",
      pair=f"{cls}:0 $A:0 {sep}:0 $B:1 {sep}:1",
      special_tokens=[(cls, vocab[cls]), (sep, vocab[sep])])
  tok.decoder = decoders.WordPiece(prefix="##")
  # Special tokens written in the text stay whole (as the project tokenizer keeps them).
  tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                          for t in tokenization.SPECIAL_TOKENS])
  tok.save(os.path.join(out_dir, TOKENIZER_FILE))
  specials = {"unk_token": tokenization.UNK, "sep_token": sep, "pad_token": tokenization.PAD,
              "cls_token": cls, "mask_token": tokenization.MASK}
  tok_config = dict(specials, tokenizer_class=TOKENIZER_CLASS, do_lower_case=False,
                    strip_accents=False, tokenize_chinese_chars=True, do_basic_tokenize=True,
                    never_split=None, model_max_length=int(model_max_length),
                    clean_up_tokenization_spaces=True)
  _write_json(os.path.join(out_dir, TOKENIZER_CONFIG_FILE), tok_config)
  _write_json(os.path.join(out_dir, SPECIAL_TOKENS_MAP_FILE), specials)
  return len(vocab)


def _write_json(path, value):
  with open(path, "w", encoding="utf-8") as f:
    json.dump(value, f, indent=2, ensure_ascii=False)
    f.write("\n")


# ---------------------------------------------------------------- model folder


def model_card(config: dict, model: str, details: Dict[str, str]) -> str:
  """README.md for the hub: front matter, the sizes, how it was trained, a usage snippet.

  Args:
    config: the config.json fields.
    model: a kind of names.MODELS.
    details: ordered {label: text} lines for the "Training" section (steps, data, ...).

  Returns:
    The README.md text.
  """
  cls = names.KINDS[model].architecture
  rows = "\n".join(f"| {k} | {config[k]} |" for k in (
      "vocab_size", "embedding_size", "hidden_size", "num_hidden_layers",
      "num_attention_heads", "intermediate_size", "max_position_embeddings"))
  training = "\n".join(f"- {k}: {v}" for k, v in details.items())
  text = "한국어 [MASK]를 공유합니다." if model == "generator" else "한국어 ELECTRA를 공유합니다."
  usage = {
      "discriminator": "logits = model(**inputs).logits  # per token: > 0 means \"replaced\"",
      "generator": "logits = model(**inputs).logits  # masked-LM logits over the vocab",
  }.get(model, "outputs = model(**inputs)")
  return f"""---
language: ko
library_name: transformers
tags:
- electra
- koelectra
---

# {cls} (KoELECTRA, TensorFlow checkpoint exported)

Exported from a TensorFlow checkpoint of this KoELECTRA reimplementation (original ELECTRA
variable names) with `export_hf.py`.

| config | value |
|---|---|
{rows}

## Training

{training}

## Usage

```python
from transformers import AutoTokenizer, {cls}

tokenizer = AutoTokenizer.from_pretrained("PATH_OR_HUB_NAME")
model = {cls}.from_pretrained("PATH_OR_HUB_NAME")
inputs = tokenizer("{text}", return_tensors="pt")
{usage}
```

The tokenizer is cased and keeps Hangul whole (`do_lower_case` and `strip_accents` off).
"""


def write_model_folder(out_dir: str, state: Dict[str, np.ndarray], config: dict,
                       model: str, vocab_file: str, details: Dict[str, str]) -> List[str]:
  """Writes one hub folder (out_dir must exist and be empty).

  Args:
    out_dir: the folder.
    state: {HF name: array}; the tied generator_lm_head.weight is not written (HF ties it
      to the embeddings on load, as its own save_pretrained does).
    config: config.json fields; checked against the state's shapes first.
    model: a kind of names.MODELS.
    vocab_file: the vocab; its size must equal config["vocab_size"].
    details: model card "Training" lines.

  Returns:
    The file names written, sorted.

  Raises:
    HFFormatError: shapes that do not match the config, a vocab of another size.
  """
  check_shapes(state, config, model, "the checkpoint")
  n_vocab = len(tokenization.load_vocab(vocab_file))
  if n_vocab != config["vocab_size"]:
    raise HFFormatError(f"{vocab_file} has {n_vocab} tokens but the checkpoint's embedding "
                        f"matrix has {config['vocab_size']} rows; use the vocab the model "
                        "was trained with")
  weights = {n: np.asarray(a, np.float32) for n, a in state.items()
             if n != "generator_lm_head.weight"}
  write_safetensors(weights, os.path.join(out_dir, WEIGHTS_FILE))
  _write_json(os.path.join(out_dir, CONFIG_FILE), config)
  write_tokenizer_files(vocab_file, out_dir, config["max_position_embeddings"])
  with open(os.path.join(out_dir, MODEL_CARD_FILE), "w", encoding="utf-8") as f:
    f.write(model_card(config, model, details))
  return sorted(os.listdir(out_dir))


@contextlib.contextmanager
def staged_output(out_dir: str, overwrite: bool = False,
                  last: Sequence[str] = ()) -> Iterator[str]:
  """Yields a temporary folder; it becomes out_dir only when the block succeeds.

  Nothing is half written: on any error the temporary folder is removed and out_dir is as
  it was. With overwrite, an existing out_dir is replaced at the end. A gs:// out_dir is
  staged on local disk and uploaded when the block succeeds, the files named in `last`
  (the folder's entry points, relative paths) after everything else (util/gcs.publish_dir).

  Args:
    out_dir: the final folder (local or gs://).
    overwrite: replace a non-empty out_dir.
    last: files uploaded last to a gs:// out_dir.

  Yields:
    The temporary folder to write into.

  Raises:
    HFFormatError: out_dir exists and is not empty, without overwrite; or it is a file.
  """
  if gcs.is_gs(out_dir):
    if gcs.prefix_objects(out_dir) and not overwrite:
      raise HFFormatError(f"output {out_dir} is not empty; pass --overwrite to replace it")
    tmp = tempfile.mkdtemp(prefix=".staged-")
    try:
      yield tmp
      gcs.publish_dir(tmp, out_dir, last=last, replace=overwrite)
    finally:
      shutil.rmtree(tmp, ignore_errors=True)
    return
  out_dir = os.path.abspath(out_dir)
  if os.path.exists(out_dir):
    if not os.path.isdir(out_dir):
      raise HFFormatError(f"output {out_dir} exists and is not a directory")
    if os.listdir(out_dir) and not overwrite:
      raise HFFormatError(f"output directory {out_dir} is not empty; pass --overwrite to "
                          "replace it")
  parent = os.path.dirname(out_dir)
  os.makedirs(parent, exist_ok=True)
  tmp = os.path.join(parent, f".{os.path.basename(out_dir)}.tmp-{uuid.uuid4().hex[:8]}")
  os.makedirs(tmp)
  try:
    yield tmp
    if os.path.exists(out_dir):
      old = tmp + "-old"
      os.rename(out_dir, old)
      os.rename(tmp, out_dir)
      shutil.rmtree(old)
    else:
      os.rename(tmp, out_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


@contextlib.contextmanager
def local_folder(folder: Optional[str]) -> Iterator[Optional[str]]:
  """Yields a local copy of a gs:// hub folder (removed afterwards), or the folder itself.

  Args:
    folder: a local or gs:// folder, or None.

  Yields:
    A local folder (or None for None).
  """
  if not folder or not gcs.is_gs(folder):
    yield folder
    return
  with tempfile.TemporaryDirectory(prefix=".hub-") as tmp:
    gcs.copy(folder.rstrip("/"), tmp, recursive=True)
    yield tmp
