"""The vocab report: size, alphabet, and [UNK] ratio / tokens per word on held-out text."""
import json

from util import fileio

UNK = "[UNK]"


def load_eval_tokenizer(vocab_file):
  """The project's tokenizer (same ids as finetuning will see); tokenizers' BERT one as fallback."""
  try:
    from model.tokenization import FastTokenizer
  except ImportError:  # model/tokenization.py not present: same settings via tokenizers
    from tokenizers import BertWordPieceTokenizer
    tok = BertWordPieceTokenizer(vocab_file, clean_text=True, handle_chinese_chars=True,
                                 strip_accents=False, lowercase=False, unk_token=UNK)
    return _TokenizersAdapter(tok), "tokenizers.BertWordPieceTokenizer"
  return FastTokenizer(vocab_file), "model.tokenization.FastTokenizer"


class _TokenizersAdapter:
  """Gives BertWordPieceTokenizer the encode_batch/unk-id shape of FastTokenizer."""

  def __init__(self, tok):
    self._tok = tok
    self.vocab = tok.get_vocab()

  def encode_batch(self, texts):
    return [e.ids for e in self._tok.encode_batch(texts, add_special_tokens=False)]


def token_stats(tokenizer, texts, unk_id, batch=1000):
  """Counts over `texts`: lines, whitespace words, tokens, [UNK] tokens, and the ratios."""
  lines = words = tokens = unks = 0
  texts = list(texts)
  for i in range(0, len(texts), batch):
    part = texts[i:i + batch]
    for text, ids in zip(part, tokenizer.encode_batch(part)):
      lines += 1
      words += len(text.split())
      tokens += len(ids)
      unks += sum(1 for t in ids if t == unk_id)
  return {
      "lines": lines,
      "words": words,
      "tokens": tokens,
      "unk_tokens": unks,
      "unk_ratio": unks / tokens if tokens else 0.0,
      "tokens_per_word": tokens / words if words else 0.0,
  }


def vocab_stats(tokens, specials):
  """Size and alphabet of a WordPiece vocab list (alphabet = single-char word-initial tokens)."""
  special = set(specials)
  singles = [t for t in tokens if len(t) == 1 and t not in special]
  cont_singles = [t for t in tokens if t.startswith("##") and len(t) == 3]
  return {
      "vocab_size": len(tokens),
      "alphabet_size": len(singles),
      "continuation_chars": len(cont_singles),
      "continuation_tokens": sum(1 for t in tokens if t.startswith("##")),
      "unused_tokens": sum(1 for t in tokens if t.startswith("[unused")),
  }


def write_report(path, report):
  with fileio.atomic_write(path) as f:
    json.dump(report, f, ensure_ascii=False, indent=2)
    f.write("\n")


def format_summary(report):
  """A few human lines for the end of the CLI run."""
  out = [f"vocab: {report['vocab_file']}  ({report['vocab']['vocab_size']} tokens, "
         f"alphabet {report['vocab']['alphabet_size']}, model {report['model']}"
         f"{', mecab' if report.get('pretokenize') == 'mecab' else ''})"]
  c = report["corpus"]
  out.append(f"corpus: {c['files']} files, {c['lines']} lines ({c['train_lines']} trained, "
             f"{c['heldout_lines']} held out); skipped: {c['skipped_undecodable']} not UTF-8, "
             f"{c.get('skipped_binary', 0)} binary, "
             f"{c['skipped_bad_json']} bad JSON, {len(c['skipped_files'])} files")
  for name, s in report["eval"].items():
    out.append(f"eval {name}: {s['lines']} lines, [UNK] ratio {s['unk_ratio']:.5f}, "
               f"{s['tokens_per_word']:.3f} tokens/word")
  out.append(f"time: {report['seconds']['total']:.1f}s (train {report['seconds']['train']:.1f}s)")
  return "\n".join(out)
