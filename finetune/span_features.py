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
(`_check_is_max_context`); `SpanMaps` keeps them beside the features (they are not
TFRecord features; re-run `convert` to rebuild them, it is deterministic). It also
keeps each sub-token's character span in the context, for the exact-offsets decoding
option (finetune/span_postprocess.py, docs/finetuning.md).
"""
import dataclasses
from typing import Dict, List, Sequence

import numpy as np

from finetune import features as features_lib
from finetune import readers
from finetune import tasks as tasks_lib
from model import tokenization


@dataclasses.dataclass
class SpanMaps:
  """What decoding needs beyond the features.

  Attributes:
    token_to_orig: per feature, int32 [L]: whitespace-token index in the example's
      context for each window position, -1 for [CLS], query, [SEP] and padding.
    max_context: per feature, bool [L]: the window gives this position its most
      context (only such positions may start an answer).
    id_to_token: the vocab, id -> token string (to spell predicted spans).
    do_lower_case: the tokenizer's setting (get_final_text re-tokenizes with it).
    char_start, char_end: per feature, int32 [L]: the context characters
      [start, end) a position's sub-token spells, -1 outside the context or where
      they cannot be told (lower-casing / accent stripping tokenizers).
  """
  token_to_orig: List[np.ndarray]
  max_context: List[np.ndarray]
  id_to_token: Dict[int, str]
  do_lower_case: bool
  char_start: List[np.ndarray]
  char_end: List[np.ndarray]


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
  distinct = list(contexts.values())
  flat = tokenizer.encode_batch([w for words in distinct for w in words])
  doc_ids, doc_chars, k = {}, {}, 0
  offsets_cache = {}
  for context, words in zip(contexts, distinct):
    doc_ids[context] = flat[k:k + len(words)]
    k += len(words)
    doc_chars[context] = _context_char_spans(tokenizer, context, words,
                                             doc_ids[context], offsets_cache)
  answers = tokenizer.encode_batch([e.answers[0][0] if e.answers else "" for e in examples])

  feats, token_to_orig, max_context, char_start, char_end = [], [], [], [], []
  for example_id, (e, query) in enumerate(zip(examples, queries)):
    query = query[:max_query_length]
    tok_to_orig, orig_to_tok, doc = [], [], []
    for word_index, ids in enumerate(doc_ids[e.context]):
      orig_to_tok.append(len(doc))
      tok_to_orig.extend([word_index] * len(ids))
      doc.extend(ids)
    tok_start = tok_end = -1
    if e.start_word >= 0:
      tok_start = orig_to_tok[e.start_word]
      tok_end = (orig_to_tok[e.end_word + 1] - 1 if e.end_word + 1 < len(orig_to_tok)
                 else len(doc) - 1)
      tok_start, tok_end = improve_answer_span(doc, tok_start, tok_end,
                                               answers[example_id])
    windows = doc_windows(len(doc), max_seq_length - len(query) - 3, doc_stride)
    owners = max_context_owners(windows, len(doc))
    offset = len(query) + 2  # window position 0 in the feature
    for w, (start, length) in enumerate(windows):
      f = features_lib.layout(query, doc[start:start + length], max_seq_length,
                              cls_id, sep_id)
      t2o = np.full(max_seq_length, -1, dtype=np.int32)
      t2o[offset:offset + length] = tok_to_orig[start:start + length]
      starts = np.full(max_seq_length, -1, dtype=np.int32)
      ends = np.full(max_seq_length, -1, dtype=np.int32)
      starts[offset:offset + length] = doc_chars[e.context][0][start:start + length]
      ends[offset:offset + length] = doc_chars[e.context][1][start:start + length]
      best = np.zeros(max_seq_length, dtype=bool)
      best[offset:offset + length] = owners[start:start + length] == w
      s_pos = e_pos = 0
      if tok_start >= 0 and start <= tok_start and tok_end < start + length:
        s_pos, e_pos = tok_start - start + offset, tok_end - start + offset
      f.update(example_id=np.array(example_id, dtype=np.int64),
               feature_id=np.array(len(feats), dtype=np.int64),
               start_positions=np.array(s_pos, dtype=np.int64),
               end_positions=np.array(e_pos, dtype=np.int64))
      feats.append(f)
      token_to_orig.append(t2o)
      max_context.append(best)
      char_start.append(starts)
      char_end.append(ends)
  maps = SpanMaps(token_to_orig, max_context, tokenizer.inv_vocab,
                  bool(tokenizer.do_lower_case), char_start, char_end)
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


def _context_char_spans(tokenizer, context, words, word_ids, cache):
  """Context character [start, end) of each document sub-token: int32 arrays."""
  n = sum(len(ids) for ids in word_ids)
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
  return starts, ends


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
