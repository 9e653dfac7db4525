"""SentencePiece (unigram / BPE) as a comparison model, kept as its own model file.

A SentencePiece vocab is not exported as a WordPiece vocab.txt: unigram segments by
the most probable path and BPE by applying merges in order, while WordPiece takes the
longest matching piece left to right, so the same pieces segment text differently
(see docs/vocab.md). The model file plus `SentencePieceTokenizer` keeps its own
segmentation; ids 0-4 are [PAD] [UNK] [CLS] [SEP] [MASK] as in the WordPiece vocab.
"""
import io
import os

from model import tokenization
from util import errors
from util import fileio

SPECIALS = list(tokenization.SPECIAL_TOKENS)


class SentencePieceError(errors.UserError):
  """Training failed for a reason of the input (message says which)."""


def _normalizer():
  # The same cleaning as the WordPiece path (control chars, CJK spacing), no lowercase
  # or accent stripping, so the comparison is on segmentation only.
  from tokenizers import normalizers
  return normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                    strip_accents=False, lowercase=False)


def train(texts, model_file, vocab_size, model_type="unigram", unused=0,
          character_coverage=0.9995, max_sentences=2_000_000, threads=2):
  """Train on an iterator of lines; write `model_file` (and .vocab beside it) atomically.

  `vocab_size` counts the 5 specials but not the `unused` control symbols, which
  SentencePiece places right after the specials (ids 5..), not at the end.
  Returns the number of pieces.
  """
  import sentencepiece as spm
  norm = _normalizer()
  model = io.BytesIO()
  control = SPECIALS[2:] + [f"[unused{i}]" for i in range(unused)]
  try:
    spm.SentencePieceTrainer.train(
        sentence_iterator=(norm.normalize_str(t) for t in texts),
        model_writer=model,
        vocab_size=vocab_size + unused,
        model_type=model_type,
        character_coverage=character_coverage,
        normalization_rule_name="identity",
        pad_id=0, unk_id=1, bos_id=-1, eos_id=-1,
        pad_piece=SPECIALS[0], unk_piece=SPECIALS[1],
        control_symbols=control,
        input_sentence_size=max_sentences, shuffle_input_sentence=True,
        hard_vocab_limit=False, num_threads=threads, minloglevel=2)
  except RuntimeError as e:
    raise SentencePieceError(f"sentencepiece training failed: {e}") from e
  blob = model.getvalue()
  sp = spm.SentencePieceProcessor(model_proto=blob)
  fileio.makedirs(os.path.dirname(model_file) or ".")
  with fileio.atomic_write(model_file, "wb") as f:
    f.write(blob)
  vocab_file = model_file[:-len(".model")] + ".vocab" if model_file.endswith(".model") \
      else model_file + ".vocab"
  with fileio.atomic_write(vocab_file) as f:
    for i in range(sp.get_piece_size()):
      f.write(f"{sp.id_to_piece(i)}\t{sp.get_score(i)}\n")
  return sp.get_piece_size()


class SentencePieceTokenizer:
  """tokenize / encode / encode_batch over a SentencePiece model (no [CLS]/[SEP])."""

  def __init__(self, model_file):
    import sentencepiece as spm
    with fileio.open_file(model_file, "rb") as f:
      self._sp = spm.SentencePieceProcessor(model_proto=f.read())
    self._norm = _normalizer()
    self.vocab = {self._sp.id_to_piece(i): i for i in range(self._sp.get_piece_size())}

  def tokenize(self, text):
    return self._sp.encode(self._norm.normalize_str(text), out_type=str)

  def encode(self, text):
    return self._sp.encode(self._norm.normalize_str(text))

  def encode_batch(self, texts):
    return self._sp.encode([self._norm.normalize_str(t) for t in texts])

  def convert_ids_to_tokens(self, ids):
    return [self._sp.id_to_piece(i) for i in ids]
