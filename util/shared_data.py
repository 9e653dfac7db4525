"""Where the shared Korean data lives, and small readers of it for tests and benchmarks.

The data (corpora, published vocabs, finetuning sets) sit outside the repository, in
../shared/data beside it or wherever KOELECTRA_DATA points; the README.md there lists
them. Tests and benchmarks both read it, so the location is defined here once.
"""
import os
import pathlib

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
# Unlabelled hate-speech comments: short, informal lines, the corpus the masking checks use.
COMMENTS = "corpus/hate-speech-unlabeled/unlabeled_comments_5.txt"


def shared_data_dir():
  """The shared data directory: KOELECTRA_DATA, else ../shared/data beside the project.

  Returns:
    A pathlib.Path; it may not exist (callers that need it say so).
  """
  env = os.environ.get("KOELECTRA_DATA")
  return pathlib.Path(env) if env else ROOT.parent / "shared" / "data"


def head_lines(path, n):
  """The first n non-empty lines of a UTF-8 text file, stripped.

  Args:
    path: the file.
    n: how many lines to return at most.

  Returns:
    A list of at most n strings.

  Raises:
    OSError: the file cannot be read.
  """
  out = []
  with open(path, encoding="utf-8") as f:
    for line in f:
      line = line.strip()
      if line:
        out.append(line)
        if len(out) >= n:
          break
  return out


def packed_rows(tokenizer, lines, num_seqs, seq_len):
  """Lines tokenized and packed into [CLS] ... [SEP] [PAD]... rows of varied length.

  Lines are packed greedily up to a target length that cycles through full, half and
  short sequences, so the rows have varied lengths and padding, as real examples do.

  Args:
    tokenizer: a model.tokenization.FastTokenizer (anything with `encode(text)` and a
      `vocab` dict holding [CLS], [SEP] and [PAD]).
    lines: the text lines, used in order.
    num_seqs: B, the number of rows.
    seq_len: L, the row length.

  Returns:
    (input_ids, input_mask, segment_ids): int32 arrays [B, L]; segment_ids are zeros.

  Raises:
    ValueError: the lines run out before num_seqs rows are filled.
  """
  cls_id, sep_id, pad_id = (tokenizer.vocab[t] for t in ("[CLS]", "[SEP]", "[PAD]"))
  targets = [seq_len - 2, seq_len - 2, seq_len - 2, seq_len // 2, seq_len // 6]
  ids = np.full([num_seqs, seq_len], pad_id, np.int32)
  mask = np.zeros([num_seqs, seq_len], np.int32)
  row, cur, lines = 0, [], iter(lines)
  while row < num_seqs:
    line = next(lines, None)
    if line is None:
      raise ValueError(f"not enough lines for {num_seqs} rows of {seq_len} tokens")
    cur.extend(tokenizer.encode(line))
    if len(cur) >= targets[row % len(targets)]:
      body = [cls_id] + cur[:seq_len - 2] + [sep_id]
      ids[row, :len(body)] = body
      mask[row, :len(body)] = 1
      row, cur = row + 1, []
  return ids, mask, np.zeros_like(ids)
