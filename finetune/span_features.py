"""KorQuAD 1.0 (SQuAD v1.1 format) questions -> fixed-length windowed features.

As BERT's / ELECTRA's SQuAD features: the query is cut to `max_query_length`
sub-tokens; the context's whitespace tokens (readers.split_context) are each tokenized
on their own; the resulting sub-tokens are covered by windows of at most
`max_seq_length - len(query) - 3` tokens, each starting `doc_stride` after the last,
laid out as `[CLS] query [SEP] window [SEP]` (segment 0 up to and with the first
[SEP], 1 after). One question thus gives one or more features.

The answer is located by characters, not by searching text: the reader turned the
answer's `answer_start` and length into whitespace-token indices (start_word,
end_word); here they become sub-token indices through each whitespace token's first
sub-token, then the span is tightened to the sub-tokens that spell the answer exactly
(BERT's `_improve_answer_span`, e.g. "1989년" inside "1989년에"). A window that does
not contain the whole answer points at [CLS] (start = end = 0), as the original.

Decoding needs, per feature, which whitespace token each position came from and
whether this window is the one where the token has the most context
(`_check_is_max_context`); `SpanMaps` keeps them beside the features, per context and
per window rather than per position (they are not TFRecord features; re-run `convert`
to rebuild them, it is deterministic). It also keeps each sub-token's character span
in the context, for the exact-offsets decoding option (finetune/span_postprocess.py,
docs/finetuning.md).
"""
import dataclasses
from typing import Dict, List, Sequence, Tuple

import numpy as np

from finetune import features as features_lib
from finetune import readers
from finetune import tasks as tasks_lib
from model import tokenization


@dataclasses.dataclass
class DocMaps:
  """Per context (shared by its questions): for each document sub-token, its
  whitespace-token index and its context characters [char_start, char_end) (-1 where
  they cannot be told: lower-casing / accent-stripping tokenizers)."""
  tok_to_orig: np.ndarray   # int32 [num_doc_tokens]
  char_start: np.ndarray    # int32 [num_doc_tokens]
  char_end: np.ndarray      # int32 [num_doc_tokens]


@dataclasses.dataclass
class SpanMaps:
  """What decoding needs beyond the features, stored per context and per window
  (not per position: a few bytes per feature, so training sets stay small).

  Attributes:
    feature_window: per feature, (example_id, window index within the example).
    windows: per example, its windows as (first document sub-token, length).
    query_offset: per example, the feature position of document sub-token `start`
      of each window (len(query) + 2: after [CLS] query [SEP]).
    docs: per example, its context's DocMaps.
    id_to_token: the vocab, id -> token string (to spell predicted spans).
    do_lower_case: the tokenizer's setting (get_final_text re-tokenizes with it).
  """
  feature_window: List[Tuple[int, int]]
  windows: List[List[Tuple[int, int]]]
  query_offset: List[int]
  docs: List[DocMaps]
  id_to_token: Dict[int, str]
  do_lower_case: bool

  def feature_maps(self, index: int, max_seq_length: int):
    """Position maps of feature `index`, each [L]:

    Returns:
      (token_to_orig int32: whitespace-token index, -1 outside the context;
       max_context bool: this window gives the position its most context;
       char_start, char_end int32: the sub-token's context characters, -1 outside).
    """
    example_id, w = self.feature_window[index]
    start, length = self.windows[example_id][w]
    offset = self.query_offset[example_id]
    doc = self.docs[example_id]
    window = slice(offset, offset + length)
    part = slice(start, start + length)
    t2o = np.full(max_seq_length, -1, dtype=np.int32)
    cs = np.full(max_seq_length, -1, dtype=np.int32)
    ce = np.full(max_seq_length, -1, dtype=np.int32)
    best = np.zeros(max_seq_length, dtype=bool)
    t2o[window] = doc.tok_to_orig[part]
    cs[window] = doc.char_start[part]
    ce[window] = doc.char_end[part]
    owners = max_context_owners(self.windows[example_id], len(doc.tok_to_orig))
    best[window] = owners[part] == w
    return t2o, best, cs, ce


def convert(spec: tasks_lib.TaskSpec, examples: Sequence[readers.QAExample],
            tokenizer: tokenization.FullTokenizer, max_seq_length: int, *,
            doc_stride: int = 128, max_query_length: int = 64
            ) -> features_lib.FeatureSet:
  """Questions -> windowed features (see features.convert_examples).

  Returns:
    FeatureSet with `spans` set; features carry example_id, feature_id (their index)
    and start_positions / end_positions of the first answer in the window (0 when
    absent or not inside).

  Raises:
    ValueError: max_seq_length leaves no room for a document token after a
      max_query_length query.
  """
  if max_seq_length - max_query_length - 3 < 1:
    raise ValueError(f"max_seq_length {max_seq_length} leaves no room for the context "
                     f"after a {max_query_length}-token query")
  cls_id = tokenizer.vocab[tokenization.CLS]
  sep_id = tokenizer.vocab[tokenization.SEP]
  queries = tokenizer.encode_batch([e.question for e in examples])
  # Questions share paragraphs: tokenize each distinct context's words once.
  contexts = {}
  for e in examples:
    contexts.setdefault(e.context, e.doc_tokens)
  flat = tokenizer.encode_batch([w for words in contexts.values() for w in words])
  docs, k, offsets_cache = {}, 0, {}
  for context, words in contexts.items():
    word_ids = flat[k:k + len(words)]
    k += len(words)
    docs[context] = (word_ids, _doc_maps(tokenizer, context, words, word_ids,
                                         offsets_cache))
  answers = tokenizer.encode_batch([e.answers[0][0] if e.answers else "" for e in examples])

  feats = []
  maps = SpanMaps([], [], [], [], tokenizer.inv_vocab, bool(tokenizer.do_lower_case))
  for example_id, (e, query) in enumerate(zip(examples, queries)):
    query = query[:max_query_length]
    word_ids, doc_maps = docs[e.context]
    doc = [i for ids in word_ids for i in ids]
    tok_start = tok_end = -1
    if e.start_word >= 0:
      # First sub-token of the answer's first word .. last sub-token of its last word.
      first_of = np.searchsorted(doc_maps.tok_to_orig, [e.start_word, e.end_word + 1])
      tok_start, tok_end = int(first_of[0]), int(first_of[1]) - 1
      tok_start, tok_end = improve_answer_span(doc, tok_start, tok_end,
                                               answers[example_id])
    windows = doc_windows(len(doc), max_seq_length - len(query) - 3, doc_stride)
    offset = len(query) + 2  # feature position of a window's first document token
    maps.windows.append(windows)
    maps.query_offset.append(offset)
    maps.docs.append(doc_maps)
    for w, (start, length) in enumerate(windows):
      f = features_lib.layout(query, doc[start:start + length], max_seq_length,
                              cls_id, sep_id)
      s_pos = e_pos = 0
      if tok_start >= 0 and start <= tok_start and tok_end < start + length:
        s_pos, e_pos = tok_start - start + offset, tok_end - start + offset
      f.update(example_id=np.array(example_id, dtype=np.int64),
               feature_id=np.array(len(feats), dtype=np.int64),
               start_positions=np.array(s_pos, dtype=np.int64),
               end_positions=np.array(e_pos, dtype=np.int64))
      feats.append(f)
      maps.feature_window.append((example_id, w))
  return features_lib.FeatureSet(spec.name, max_seq_length, feats, len(examples),
                                 spans=maps)


def doc_windows(num_tokens: int, max_tokens: int, stride: int) -> List[tuple]:
  """(start, length) windows covering num_tokens, each starting `stride` (or the
  previous length, if shorter) after the last; the last one reaches the end."""
  windows, start = [], 0
  while start < num_tokens:
    length = min(num_tokens - start, max_tokens)
    windows.append((start, length))
    if start + length == num_tokens:
      break
    start += min(length, stride)
  return windows


def max_context_owners(windows: Sequence[tuple], num_tokens: int) -> np.ndarray:
  """For each document position, the index of the window giving it the most context:
  the largest min(tokens left, tokens right) + 0.01 * window length, the first such
  window on ties (BERT's `_check_is_max_context`).

  Returns:
    int array [num_tokens].
  """
  owner = np.full(num_tokens, -1, dtype=np.int64)
  best = np.full(num_tokens, -np.inf)
  for i, (start, length) in enumerate(windows):
    pos = np.arange(start, start + length)
    score = np.minimum(pos - start, start + length - 1 - pos) + 0.01 * length
    better = score > best[start:start + length]
    best[start:start + length][better] = score[better]
    owner[start:start + length][better] = i
  return owner


def improve_answer_span(doc: List[int], start: int, end: int, answer: List[int]
                        ) -> tuple:
  """The sub-span of doc[start..end] whose ids equal the answer's own tokenization,
  if any (an answer that is part of a whitespace token); else (start, end)."""
  for new_start in range(start, end + 1):
    for new_end in range(end, new_start - 1, -1):
      if doc[new_start:new_end + 1] == answer:
        return new_start, new_end
  return start, end


def _doc_maps(tokenizer, context, words, word_ids, cache):
  """DocMaps of one context from its whitespace tokens and their sub-token ids."""
  n = sum(len(ids) for ids in word_ids)
  tok_to_orig = np.repeat(np.arange(len(words), dtype=np.int32),
                          [len(ids) for ids in word_ids]) if words else np.zeros(0, np.int32)
  starts = np.full(n, -1, dtype=np.int32)
  ends = np.full(n, -1, dtype=np.int32)
  word_start, k, prev_space = [], 0, True
  for i, ch in enumerate(context):
    space = readers.is_squad_whitespace(ch)
    if not space and prev_space:
      word_start.append(i)
    prev_space = space
  for word, first, ids in zip(words, word_start, word_ids):
    if word not in cache:
      cache[word] = (_offsets_from_pieces(word, ids, tokenizer.inv_vocab)
                     or piece_offsets(tokenizer, word))
    spans = cache[word]
    if spans is not None and len(spans) == len(ids):
      starts[k:k + len(ids)] = [first + a for a, _ in spans]
      ends[k:k + len(ids)] = [first + b for _, b in spans]
    k += len(ids)
  return DocMaps(tok_to_orig, starts, ends)


def _offsets_from_pieces(word, ids, id_to_token):
  """Fast path of piece_offsets: the pieces spell the word contiguously (no [UNK],
  nothing deleted or split off as whitespace); None otherwise."""
  out, cursor = [], 0
  for i in ids:
    piece = id_to_token[i]
    text = piece[2:] if piece.startswith("##") else piece
    if piece == tokenization.UNK or not word.startswith(text, cursor):
      return None
    out.append((cursor, cursor + len(text)))
    cursor += len(text)
  return out if cursor == len(word) else None


def piece_offsets(tokenizer: tokenization.FullTokenizer, word: str):
  """Character [start, end) in `word` of each of its sub-tokens, or None when they
  cannot be told from the text (case folding, accent stripping, characters deleted
  inside a basic token, literal special tokens).

  [UNK] spans its whole basic token (the punctuation-split piece it replaced).
  """
  if (tokenizer.do_lower_case or tokenizer.strip_accents
      or any(t in word for t in tokenization.SPECIAL_TOKENS)):
    return None
  out, cursor = [], 0
  for basic in tokenizer.basic_tokenizer.tokenize(word):
    pos = word.find(basic, cursor)
    if pos < 0:
      return None
    pieces = tokenizer.wordpiece_tokenizer.tokenize_word(basic)
    if pieces == [tokenization.UNK]:
      out.append((pos, pos + len(basic)))
    else:
      p = pos
      for piece in pieces:
        size = len(piece) - 2 if piece.startswith("##") else len(piece)
        out.append((p, p + size))
        p += size
    cursor = pos + len(basic)
  return out
