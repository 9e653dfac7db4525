"""KorQuAD start/end logits -> answer text, as BERT's / ELECTRA's SQuAD v1.1 decoding.

For each question, over all of its features: the `n_best_size` highest start and end
logits give candidate spans; a candidate must lie in the context, start at a position
whose window gives it the most context, end at or after its start and be at most
`max_answer_length` sub-tokens long. Candidates rank by start + end logit; the best
one's sub-tokens are joined ("##" pieces glued) and mapped back onto the original
context words by `get_final_text`, which returns the exact characters of the
context's whitespace tokens (joined by single spaces) rather than the
tokenizer's normalised text.

`final_text="offsets"` (this function's default is "bert"; the runner's hparam
`qa_final_text` defaults to "offsets") instead cuts the answer from the context by
the character spans of its first and last sub-tokens (span_features.piece_offsets).
That differs from BERT's mapping in one case: a span containing [UNK], which
get_final_text cannot find in the re-tokenized text, so it falls back to the whole
whitespace tokens (`《CLICHÈ》를` for the answer `CLICHÈ`). docs/finetuning.md has the
measured effect.

`final_text="koelectra"` is what KoELECTRA's run_squad.py does through Hugging Face's
`compute_predictions_logits`: the sub-tokens are joined by the slow tokenizer's
`convert_tokens_to_string`, which glues only " ##", so a span that starts mid-word
keeps its leading "##"; get_final_text cannot find that and returns the whole
whitespace tokens the span touches. BERT's mapping strips every "##" and returns the
span's own characters. The two differ only for spans starting inside a word.
"""
import collections
from typing import List, Optional, Sequence, Tuple

FINAL_TEXT_MODES = ("bert", "offsets", "koelectra")

import numpy as np

from finetune import features as features_lib
from finetune import readers
from model import tokenization


def best_answers(examples: Sequence[readers.QAExample],
                 feature_set: features_lib.FeatureSet, start_logits: np.ndarray,
                 end_logits: np.ndarray, *, n_best_size: int = 20,
                 max_answer_length: int = 30, final_text: str = "bert",
                 joint: Optional[Tuple[np.ndarray, np.ndarray, np.ndarray]] = None
                 ) -> List[str]:
  """The best answer text per question ("" when no candidate is valid).

  Args:
    examples: the questions converted to feature_set.
    feature_set: span_features.convert(...) output (with its SpanMaps).
    start_logits, end_logits: [num_features, L] float.
    n_best_size: start / end positions considered per feature.
    max_answer_length: longest answer in sub-tokens.
    final_text: "bert" (get_final_text, the original), "offsets" (the context
      characters of the span's sub-tokens) or "koelectra" (get_final_text on Hugging
      Face's joined text, as KoELECTRA's scripts: module docstring).
    joint: the original's end-given-start head (finetune/heads.span_logits with joint):
      (start_top_index [N, K], start_top_log_probs [N, K], end_logits_given_start
      [N, K, L]); candidates are then each beam start with the n_best_size best ends
      given it, ranked by start log-prob + end log-prob, as the original's decoding.

  Returns:
    list of answer strings, one per example.

  Raises:
    ValueError: unknown final_text.
  """
  return [n[0] if n else "" for n in n_best(
      examples, feature_set, start_logits, end_logits, n_best_size=n_best_size,
      max_answer_length=max_answer_length, final_text=final_text, joint=joint)]


def _log_softmax(x):
  x = x - np.max(x, axis=-1, keepdims=True)
  return x - np.log(np.sum(np.exp(x), axis=-1, keepdims=True))


def _pairs(index, start_logits, end_logits, joint, n_best_size):
  """(score, start, end) candidates of one feature, before the validity checks."""
  if joint is None:
    s_logits, e_logits = start_logits[index], end_logits[index]
    starts = np.argsort(-s_logits, kind="stable")[:n_best_size]
    ends = np.argsort(-e_logits, kind="stable")[:n_best_size]
    return [(float(s_logits[s]) + float(e_logits[t]), int(s), int(t))
            for s in starts for t in ends]
  top_index, top_log_probs, end_given = joint
  out = []
  for k in range(top_index.shape[1]):
    end_lp = _log_softmax(end_given[index, k].astype(np.float64))
    for t in np.argsort(-end_lp, kind="stable")[:n_best_size]:
      out.append((float(top_log_probs[index, k]) + float(end_lp[t]),
                  int(top_index[index, k]), int(t)))
  return out


def n_best(examples, feature_set, start_logits, end_logits, *, n_best_size=20,
           max_answer_length=30, final_text="bert", joint=None) -> List[List[str]]:
  """Per question, up to n_best_size distinct answer texts, best first (arguments
  as best_answers)."""
  if final_text not in FINAL_TEXT_MODES:
    raise ValueError(f"final_text must be one of {FINAL_TEXT_MODES}, not {final_text!r}")
  maps = feature_set.spans
  by_example = collections.defaultdict(list)
  for index, f in enumerate(feature_set.features):
    by_example[int(f["example_id"])].append(index)
  out = []
  for example_id, e in enumerate(examples):
    candidates, spans = [], {}
    for index in by_example.get(example_id, ()):
      t2o, best_context, char_start, char_end = maps.feature_maps(
          index, feature_set.max_seq_length)
      spans[index] = (t2o, char_start, char_end)
      for score, s, t in _pairs(index, start_logits, end_logits, joint, n_best_size):
        if t2o[s] < 0 or not best_context[s]:
          continue
        if t2o[t] < 0 or t < s or t - s + 1 > max_answer_length:
          continue
        candidates.append((score, index, s, t))
    candidates.sort(key=lambda c: -c[0])  # stable: earlier feature / start wins ties
    texts, seen = [], set()
    for _, index, s, t in candidates:
      if len(texts) >= n_best_size:
        break
      t2o, char_start, char_end = spans[index]
      cs, ce = char_start[s], char_end[t]
      if final_text == "offsets" and cs >= 0 and ce >= 0:
        text = e.context[cs:ce]
        if text not in seen:
          seen.add(text)
          texts.append(text)
        continue
      ids = feature_set.features[index]["input_ids"][s:t + 1]
      pieces = " ".join(maps.id_to_token[int(i)] for i in ids)
      pieces = pieces.replace(" ##", "")
      if final_text != "koelectra":  # HF's convert_tokens_to_string keeps a leading ##
        pieces = pieces.replace("##", "")
      pred_text = " ".join(pieces.split())
      orig_text = " ".join(e.doc_tokens[t2o[s]:t2o[t] + 1])
      text = get_final_text(pred_text, orig_text, maps.do_lower_case)
      if text not in seen:
        seen.add(text)
        texts.append(text)
    out.append(texts)
  return out


def _without_spaces(text):
  """(text with spaces removed, map: index in it -> index in text)."""
  chars, index_map = [], {}
  for i, ch in enumerate(text):
    if ch == " ":
      continue
    index_map[len(chars)] = i
    chars.append(ch)
  return "".join(chars), index_map


def get_final_text(pred_text: str, orig_text: str, do_lower_case: bool) -> str:
  """The part of orig_text that the tokenizer-normalised pred_text spells.

  orig_text is re-tokenized with the basic tokenizer; pred_text is located in that,
  and the position is carried back to orig_text through both texts with spaces
  removed. When that cannot be done exactly (pred_text not found, or the basic
  tokenizer changed the number of non-space characters, e.g. by deleting control
  characters), the whole orig_text is returned, as BERT does.
  """
  tok_text = " ".join(tokenization.BasicTokenizer(do_lower_case).tokenize(orig_text))
  start = tok_text.find(pred_text)
  if start == -1:
    return orig_text
  end = start + len(pred_text) - 1
  orig_ns, orig_map = _without_spaces(orig_text)
  tok_ns, tok_map = _without_spaces(tok_text)
  if len(orig_ns) != len(tok_ns):
    return orig_text
  tok_to_ns = {i: n for n, i in tok_map.items()}
  if start not in tok_to_ns or end not in tok_to_ns:
    return orig_text
  orig_start = orig_map.get(tok_to_ns[start])
  orig_end = orig_map.get(tok_to_ns[end])
  if orig_start is None or orig_end is None:
    return orig_text
  return orig_text[orig_start:orig_end + 1]
