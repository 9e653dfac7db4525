"""Examples -> fixed-length integer feature dicts, and the spec to parse them back.

One entry point for every task: `convert_examples(task, examples, tokenizer,
max_seq_length)` returns a `FeatureSet` whose `features` are dicts of numpy arrays of
the lengths in `feature_spec(task, max_seq_length)`; the runner writes them as
TFRecords and parses them with `tf.io.FixedLenFeature(shape, dtype)`.

Sentence tasks: `[CLS] A [SEP]` or `[CLS] A [SEP] B [SEP]`, segment 0 up to and with
the first [SEP], 1 after; a pair longer than the length is cut longest-first one token
at a time from the end of the longer side (BERT's / ELECTRA's `_truncate_seq_pair`),
a single text keeps its first `max_seq_length - 2` tokens.

Tagging (Naver NER): each word tokenized on its own (a word that tokenizes to nothing
becomes [UNK]); its first sub-token carries the word's label. Excluded positions
(other sub-tokens, [CLS], [SEP], padding) have `label_weights` 0 (and `label_ids` 0):
the head's loss and the metric only count weight-1 positions. A sentence longer than
the length keeps its first sub-tokens (as KoELECTRA: cut at `max_seq_length - 2`
sub-tokens); a word whose first sub-token is cut off is not in the features, is
predicted "O" and still counts in the metric; `FeatureSet.words_cut` counts them.

KorQuAD: finetune/span_features.py (SQuAD-style windows), dispatched from here.

Every feature has `example_id`, the index of its example in the list converted;
KorQuAD has several features per question, each with its own `feature_id`.
"""
import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from finetune import tasks as tasks_lib
from model import tokenization

INT, FLOAT = "int64", "float32"


@dataclasses.dataclass
class FeatureSet:
  """Fixed-length features of one split, in example order, plus what decoding needs.

  Attributes:
    task: task name.
    max_seq_length: the length L of every sequence feature.
    features: one dict per feature: name -> numpy array of feature_spec's shape.
    num_examples: examples converted (features[i]["example_id"] indexes them).
    words_cut: tagging: words cut off by max length (predicted "O").
    sequences_cut: examples whose tokens did not all fit (sentence / tagging tasks).
    spans: KorQuAD: span_features.SpanMaps (per-feature token maps for decoding).
  """
  task: str
  max_seq_length: int
  features: List[Dict[str, np.ndarray]]
  num_examples: int
  words_cut: int = 0
  sequences_cut: int = 0
  spans: Optional[list] = None


def feature_spec(task: Union[str, tasks_lib.TaskSpec], max_seq_length: int
                 ) -> Dict[str, Tuple[str, Tuple[int, ...]]]:
  """Each feature's dtype ("int64" / "float32") and shape, for tf.io.FixedLenFeature.

  Args:
    task: task name or spec.
    max_seq_length: L.

  Returns:
    name -> (dtype, shape); shape () is a scalar. Common: input_ids, input_mask,
    segment_ids [L], example_id (). Classification: label_ids (). Regression:
    targets () float. Tagging: label_ids [L], label_weights [L] float (1 at a word's
    first sub-token), labeled_positions [L] (word j's first sub-token position, 0
    after the last kept word). Span: feature_id (), start_positions (),
    end_positions () (0 = [CLS] when the answer is not inside the window).
  """
  spec = task if isinstance(task, tasks_lib.TaskSpec) else tasks_lib.get_task(task)
  seq = (max_seq_length,)
  out = {"input_ids": (INT, seq), "input_mask": (INT, seq), "segment_ids": (INT, seq),
         "example_id": (INT, ())}
  if spec.kind == tasks_lib.CLASSIFICATION:
    out["label_ids"] = (INT, ())
  elif spec.kind == tasks_lib.REGRESSION:
    out["targets"] = (FLOAT, ())
  elif spec.kind == tasks_lib.TAGGING:
    out.update(label_ids=(INT, seq), label_weights=(FLOAT, seq),
               labeled_positions=(INT, seq))
  else:
    out.update(feature_id=(INT, ()), start_positions=(INT, ()), end_positions=(INT, ()))
  return out


def padding_feature(task: Union[str, tasks_lib.TaskSpec], max_seq_length: int
                    ) -> Dict[str, np.ndarray]:
  """An all-zero feature with example_id -1, to fill a TPU's last fixed-size batch.

  Decoding ignores features past `len(FeatureSet.features)`.
  """
  out = {name: np.zeros(shape, dtype=dtype)
         for name, (dtype, shape) in feature_spec(task, max_seq_length).items()}
  out["example_id"] = np.array(-1, dtype=INT)
  return out


def convert_examples(task: Union[str, tasks_lib.TaskSpec], examples: Sequence,
                     tokenizer: tokenization.FullTokenizer, max_seq_length: int, *,
                     doc_stride: int = 128, max_query_length: int = 64) -> FeatureSet:
  """Examples of one split -> FeatureSet.

  Args:
    task: task name or spec.
    examples: the reader's examples (readers.read_examples(...).examples).
    tokenizer: a model.tokenization tokenizer (FastTokenizer for speed; same ids).
    max_seq_length: L (at least 3 for pairs; KorQuAD: enough for the query and one
      document token).
    doc_stride, max_query_length: KorQuAD windows (SQuAD's 128 / 64).

  Returns:
    FeatureSet.

  Raises:
    ValueError: max_seq_length too small for the task's layout.
  """
  spec = task if isinstance(task, tasks_lib.TaskSpec) else tasks_lib.get_task(task)
  if spec.kind == tasks_lib.SPAN:
    from finetune import span_features  # one module per input kind
    return span_features.convert(spec, examples, tokenizer, max_seq_length,
                                 doc_stride=doc_stride, max_query_length=max_query_length)
  if spec.kind == tasks_lib.TAGGING:
    return _convert_tagging(spec, examples, tokenizer, max_seq_length)
  return _convert_sentences(spec, examples, tokenizer, max_seq_length)


def truncate_pair(ids_a: List[int], ids_b: List[int], max_tokens: int) -> bool:
  """Cuts the longer list's last token until both fit in max_tokens (in place).

  Ties cut from B, as the original's `len(a) > len(b)` test does.

  Returns:
    True when anything was cut.
  """
  cut = False
  while len(ids_a) + len(ids_b) > max_tokens:
    (ids_a if len(ids_a) > len(ids_b) else ids_b).pop()
    cut = True
  return cut


def layout(ids_a: Sequence[int], ids_b: Optional[Sequence[int]], max_seq_length: int,
           cls_id: int, sep_id: int) -> Dict[str, np.ndarray]:
  """`[CLS] A [SEP] (B [SEP])` zero-padded to L: input_ids, input_mask, segment_ids [L].

  The caller has truncated A and B to fit.
  """
  ids = [cls_id, *ids_a, sep_id]
  segments = [0] * len(ids)
  if ids_b is not None:
    ids += [*ids_b, sep_id]
    segments += [1] * (len(ids_b) + 1)
  input_ids = np.zeros(max_seq_length, dtype=np.int64)
  input_mask = np.zeros(max_seq_length, dtype=np.int64)
  segment_ids = np.zeros(max_seq_length, dtype=np.int64)
  input_ids[:len(ids)] = ids
  input_mask[:len(ids)] = 1
  segment_ids[:len(ids)] = segments
  return {"input_ids": input_ids, "input_mask": input_mask, "segment_ids": segment_ids}


def _special_ids(tokenizer):
  return tokenizer.vocab[tokenization.CLS], tokenizer.vocab[tokenization.SEP]


def _convert_sentences(spec, examples, tokenizer, max_seq_length):
  pair = any(e.text_b is not None for e in examples)
  if max_seq_length < (3 if pair else 2):
    raise ValueError(f"max_seq_length {max_seq_length} leaves no room for text")
  cls_id, sep_id = _special_ids(tokenizer)
  ids_a = tokenizer.encode_batch([e.text_a for e in examples])
  ids_b = (tokenizer.encode_batch([e.text_b or "" for e in examples]) if pair
           else [None] * len(examples))
  features, cut_count = [], 0
  for i, (e, a, b) in enumerate(zip(examples, ids_a, ids_b)):
    if e.text_b is None:
      b = None
      cut = len(a) > max_seq_length - 2
      a = a[:max_seq_length - 2]
    else:
      cut = truncate_pair(a, b, max_seq_length - 3)
    cut_count += cut
    f = layout(a, b, max_seq_length, cls_id, sep_id)
    f["example_id"] = np.array(i, dtype=np.int64)
    # An unlabelled example (a prediction job's) gets target 0: only predicted.
    if spec.kind == tasks_lib.REGRESSION:
      f["targets"] = np.array(0.0 if e.label is None else e.label, dtype=np.float32)
    else:
      f["label_ids"] = np.array(0 if e.label is None else spec.label_id(e.label),
                                dtype=np.int64)
    features.append(f)
  return FeatureSet(spec.name, max_seq_length, features, len(examples),
                    sequences_cut=cut_count)


def _convert_tagging(spec, examples, tokenizer, max_seq_length):
  if max_seq_length < 3:
    raise ValueError(f"max_seq_length {max_seq_length} leaves no room for words")
  cls_id, sep_id = _special_ids(tokenizer)
  unk_id = tokenizer.vocab[tokenization.UNK]
  flat = tokenizer.encode_batch([w for e in examples for w in e.words])
  features, words_cut, seq_cut, k = [], 0, 0, 0
  room = max_seq_length - 2
  for i, e in enumerate(examples):
    word_ids = [flat[k + j] or [unk_id] for j in range(len(e.words))]
    k += len(e.words)
    ids, firsts = [], []
    for w in word_ids:
      if len(ids) >= room:
        break
      firsts.append(len(ids) + 1)  # +1: [CLS] is position 0
      ids.extend(w)
    cut = len(ids) > room or len(firsts) < len(e.words)
    ids = ids[:room]
    words_cut += len(e.words) - len(firsts)
    seq_cut += cut
    f = layout(ids, None, max_seq_length, cls_id, sep_id)
    label_ids = np.zeros(max_seq_length, dtype=np.int64)
    weights = np.zeros(max_seq_length, dtype=np.float32)
    positions = np.zeros(max_seq_length, dtype=np.int64)
    if e.tags is not None:  # None: a prediction job's sentence, ids stay 0
      label_ids[firsts] = [spec.label_id(t) for t in e.tags[:len(firsts)]]
    weights[firsts] = 1.0
    positions[:len(firsts)] = firsts
    f.update(example_id=np.array(i, dtype=np.int64), label_ids=label_ids,
             label_weights=weights, labeled_positions=positions)
    features.append(f)
  return FeatureSet(spec.name, max_seq_length, features, len(examples),
                    words_cut=words_cut, sequences_cut=seq_cut)
