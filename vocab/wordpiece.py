"""Deterministic cased WordPiece training with `tokenizers` from word counts.

Words are counted in Python (BERT normalization and pre-tokenization, as the
tokenizer will see them), then fed to `tokenizers`' WordPieceTrainer as pre-tokens.
Fed raw lines, the trainer is not reproducible: it assigns ids to `##c` characters in
hash-map order, and merge ties are broken by id, so two runs on the same corpus give
different vocabs (and its --limit-alphabet cut breaks count ties arbitrarily). Here
the alphabet is chosen in Python (count, then code point) and every `##c` is handed to
the trainer up front in code-point order, so the same corpus gives the same vocab.
Memory grows with the number of distinct words, as in `tokenizers` itself.
"""
import collections
import multiprocessing

from model import tokenization
from util import errors
from vocab import mecab_pretokenize as mp

SPECIALS = list(tokenization.SPECIAL_TOKENS)


class VocabError(errors.UserError):
  """Bad settings or a corpus that cannot give the requested vocab."""


def bert_normalizer():
  from tokenizers import normalizers
  return normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                    strip_accents=False, lowercase=False)


_pre = None


def _count_chunk(lines):
  global _pre
  if _pre is None:
    from tokenizers import pre_tokenizers
    _pre = (bert_normalizer(), pre_tokenizers.BertPreTokenizer())
  norm, pre = _pre
  counts = collections.Counter()
  for line in lines:
    text = norm.normalize_str(mp.drop_reserved_chars(line))
    counts.update(w for w, _ in pre.pre_tokenize_str(text))
  return counts


def _chunks(lines, n):
  chunk = []
  for line in lines:
    chunk.append(line)
    if len(chunk) >= n:
      yield chunk
      chunk = []
  if chunk:
    yield chunk


def count_words(lines, workers=2, chunk=5000):
  """Counter of BERT-normalized, BERT-pre-tokenized words over an iterator of lines."""
  counts = collections.Counter()
  if workers > 1:
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(workers, initializer=errors.init_worker_signals) as pool:
      for c in pool.imap(_count_chunk, _chunks(lines, chunk)):
        counts.update(c)
  else:
    for part in _chunks(lines, chunk):
      counts.update(_count_chunk(part))
  return counts


def limit_alphabet(seg_counts, limit):
  """Keep the `limit` most frequent characters (ties by code point).

  Returns (new counts, kept characters). A dropped character is removed from its
  pre-token (as `tokenizers` does); if it was a continuation's marked first char, the
  next char takes the mark, so the rest of the morpheme stays a continuation.
  """
  chars = collections.Counter()
  for seg, n in seg_counts.items():
    for ch in seg:
      chars[mp.base_char(ch)] += n
  if limit is None or len(chars) <= limit:
    return seg_counts, set(chars)
  kept = {c for c, _ in sorted(chars.items(), key=lambda kv: (-kv[1], kv[0]))[:limit]}
  out = collections.Counter()
  for seg, n in seg_counts.items():
    cont = mp.is_cont_char(seg[0])
    rest = "".join(ch for ch in (mp.base_char(seg[0]) + seg[1:]) if ch in kept)
    if rest:
      out[mp.mark_continuation(rest) if cont else rest] += n
  return out, kept


def _continuation_chars(seg_counts):
  cont = set()
  for seg in seg_counts:
    cont.update(seg[1:])
    if mp.is_cont_char(seg[0]):
      cont.add(mp.base_char(seg[0]))
  return ["##" + c for c in sorted(cont)]


def check_fits(tokens, vocab_size):
  """Error when specials + characters alone exceed `vocab_size`."""
  chars = sum(1 for t in tokens if len(t) == 1)
  cont = sum(1 for t in tokens if t.startswith("##") and len(t) == 3)
  need = len(SPECIALS) + chars + cont
  if need > vocab_size:
    raise VocabError(
        f"--vocab-size {vocab_size} is smaller than the specials and alphabet: "
        f"{len(SPECIALS)} specials + {chars} characters + {cont} '##' characters = {need}; "
        f"raise --vocab-size or lower --limit-alphabet")


def _layout(tokens):
  """KoELECTRA order: specials, characters, `##` characters, then learned pieces."""
  body = [t for t in tokens if t not in SPECIALS]
  chars = sorted(t for t in body if len(t) == 1)
  cont = sorted(t for t in body if t.startswith("##") and len(t) == 3)
  rest = [t for t in body if len(t) > 1 and not (t.startswith("##") and len(t) == 3)]
  return SPECIALS + chars + cont + rest


def train_from_counts(seg_counts, vocab_size, min_frequency=2, alphabet_limit=None,
                      progress=True):
  """WordPiece vocab (list, specials first, no [unused]) from pre-token counts.

  Pre-tokens may carry a continuation mark (vocab/mecab_pretokenize.py); marked pieces
  come back as `##` pieces. Decoding can make two trainer tokens equal, so the trainer
  is asked for a few more pieces and the deduplicated list is cut to `vocab_size`.
  """
  from tokenizers import Tokenizer, models, pre_tokenizers, trainers
  seg_counts, alphabet = limit_alphabet(seg_counts, alphabet_limit)
  preset = _continuation_chars(seg_counts)
  marked = sum(1 for c in alphabet if mp.is_cont_char(c))
  target = vocab_size + marked
  info = {"pretokens": len(seg_counts)}
  for _ in range(6):
    tok = Tokenizer(models.WordPiece(unk_token=SPECIALS[1]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    trainer = trainers.WordPieceTrainer(
        vocab_size=target, min_frequency=min_frequency, special_tokens=SPECIALS + preset,
        continuing_subword_prefix="##", show_progress=progress)
    tok.train_from_iterator(mp.iter_training_text(seg_counts), trainer, length=len(seg_counts))
    vocab = tok.get_vocab(with_added_tokens=True)
    raw = sorted(vocab, key=vocab.get)
    tokens = _layout(list(dict.fromkeys(mp.decode_token(t) for t in raw)))
    check_fits(tokens, vocab_size)
    if len(tokens) >= vocab_size or len(raw) < target:
      break  # enough pieces, or the corpus has no more merges to offer
    target += int((vocab_size - len(tokens)) * 1.2) + 8
  info["trainer_vocab_size"] = target
  return tokens[:vocab_size], info


def word_counts_to_training(word_counts, pretokenize="none", workers=2, progress=True):
  """Pre-token counts for the trainer: the words themselves, or Mecab morphemes."""
  if pretokenize == "mecab":
    return mp.training_counts(word_counts, workers, progress)
  return word_counts
