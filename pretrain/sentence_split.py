"""Korean sentence splitting for corpora that hold a paragraph or a document per line.

The original ELECTRA builder takes one input line as one sentence. KoELECTRA split its
corpora into sentences before building (its issues #5, #28); without that, long lines
are trimmed and most of their tokens are lost (docs/corpus.md has the measurements).

Splitters, by name (`get_splitter`):
- `none`: the line is the sentence (the original behaviour).
- `rules`: `split_sentences` below; no dependency, deterministic, about 3-4 MB of text
  per second on one core.
- `kiwi`: Kiwi's `split_into_sents` (`pip install kiwipiepy==0.24.1`; its model ships
  inside the `kiwipiepy_model` wheel, nothing is downloaded). Optional: 218 MB
  installed and about 40x slower than `rules` for similar boundary quality
  (docs/corpus.md has the measurements).

What `rules` splits, as a Korean reader would:
- after `.`, `?`, `!` (and runs such as `?!`, `!!!`) with the closing quotes and
  brackets that follow them, when whitespace or the end of the line follows, or
  Hangul, a digit or an opening bracket directly (`했습니다.그리고`, `했습니다.5년 전`:
  writers often leave out the space);
- after an ellipsis (`..`, `...`, `…`), which Korean writers use as a full stop, unless
  it follows a conjunction standing alone (`그런데... 사실은`) or a noun set off by a
  space (`등등 ...`);
- after a final ending without punctuation (petitions and comments often omit it):
  `-ㅂ니다`, `-ㅂ니까`, the polite `-요` endings, `-죠`, declarative `-다` after a tense
  or `-ㄴ` stem (`했다`, `한다`, `이다`) unless a quotative or auxiliary word follows
  (`했다 해서`), with a comma used as a full stop (`합니다, 그리고`);
- after a tilde or a space-separated period that follows a final ending (`좋아요~`,
  `참사입니다 .`), and after emoticons (`ㅋㅋ`, `ㅠㅠ`, `^^`, `;;`), which stay with the
  sentence before them.
It does not split:
- inside a number (`3.5%`, `1,000.5`) or a Korean date (`2019. 5. 3.`), after a list
  number (`1. 서론`), after Latin abbreviations and initials (`Mr.`, `U.S.`, `e.g.`,
  `J. K.`);
- inside balanced parentheses or quotes shorter than `MAX_QUOTE_CHARS`
  (`그는 "비가 온다. 우산을 챙겨라."라고 말했다.` is one sentence), nor before a
  quotative word after a closing quote (`..." 하고 물었다`).
Every split falls on whitespace or right after punctuation, where the WordPiece
tokenizer splits anyway: the token ids of a line equal the concatenation of its
sentences' ids (the builder's "tokens kept without splitting" relies on it).
"""
import re
from typing import Callable, List

from util import errors

SPLITTERS = ("none", "rules", "kiwi")


class SplitterError(errors.UserError):
  """An unknown splitter name, or an optional splitter that is not installed."""


# A quoted or bracketed stretch longer than this is taken as unbalanced text, not a
# quotation: splitting inside it goes on as usual.
MAX_QUOTE_CHARS = 300

_OPENERS = {"(": ")", "[": "]", "{": "}", "“": "”", "‘": "’", "「": "」", "『": "』",
            "《": "》", "〈": "〉", "<": ">"}
_SYMMETRIC_QUOTES = "\"'"
_CLOSERS = "\"'”’」』》〉)]}>"
_OPENING_CHARS = "".join(_OPENERS) + _SYMMETRIC_QUOTES
_BRACKET = re.compile("[" + re.escape("".join(_OPENERS) + "".join(_OPENERS.values()) +
                                      _SYMMETRIC_QUOTES) + "]")

# A sentence-ending mark run, the closing quotes/brackets after it, then whitespace or
# the end of the line; or a mark directly followed by a Hangul syllable.
_CANDIDATE = re.compile(
    r"(?P<mark>[.!?…‥。？！~]+)(?P<close>[" + re.escape(_CLOSERS) + r"]*)"
    r"(?:(?P<space>\s+|$)|(?=[가-힣0-9(\[“‘]))")
# Syllables with final consonant ㅂ (습, 합, 입, 십, 됩, ...): before 니까 they make the
# formal question ending (합니까), not the connective -니까 (하니까, "because").
_B_FINAL = "".join(chr(0xAC00 + i) for i in range(11172) if i % 28 == 17)
# Endings that close a sentence even when the writer left out the final mark: formal
# -ㅂ니다 / -ㅂ니까, polite -요 after the syllables that form its endings (-세요, -네요,
# -지요, -어요, -아요, -워요, -줘요, -봐요, -와요, -해요, -예요, -에요, -래요, -게요,
# -군요, -데요, -나요, -까요, -시요), and -죠. Nouns ending in 요 (필요, 중요, 주요) do not
# match. -냐 only in 하냐 (뭐하냐, 조용하냐): elsewhere it is often a noun's end.
_BARE_ENDING = re.compile(
    r"(?:니다|[" + _B_FINAL + r"]니까|[세네지어아여워줘봐와해예에래게군데나까시]요|죠|하냐)"
    r",?(?P<space>\s+)(?=[^\s.!?…‥,~])")
# Declarative -다 without a period (운영중이다 어제, 해야 한다 흡연카드): after a past or
# future tense, 있/없/같, -이다, or a verb stem with final ㄴ (한다, 된다), and not before a
# word that makes it a quotation or an auxiliary construction (했다 해서, 필요하다 여겨,
# 있다 보니, 간다 하더라도, 이다 라는, 했다 고).
_N_FINAL = "".join(chr(0xAC00 + i) for i in range(11172) if i % 28 == 4)
_BARE_DA = re.compile(
    r"(?<=[가-힣])(?:[었았였했됐왔겠있없같렸졌쳤켰웠봤줬났갔셨이" + _N_FINAL + r"])다"
    r"(?P<space>\s+)(?![하해보싶여라고는며면던]|[^\s가-힣])")
# Where a bare ending can end: its last syllable, then whitespace. Scanning for this
# (a plain character class) and trying the two patterns above only there is 3.5x faster
# than running them over the whole line.
_BARE_ANCHOR = re.compile(r"[다까요죠냐],?\s+")
# Emoticons written with jamo or symbols (ㅋㅋ, ㅎㅎ, ㅠㅠ, ^^, ;;): they close the
# utterance before them.
_EMOTICON = re.compile(r"(?:[ㄱ-ㅎㅏ-ㅣ^;♡♥~]+\s*)*[ㄱ-ㅎㅏ-ㅣ^;♡♥~]+(?=\s|$)")
_EMOTICON_RUN = re.compile(r"(?:[ㄱ-ㅎㅏ-ㅣ]{2,}|[ㅠㅜ]|\^\^|;;)(?P<space>\s+)(?=\S)")
_EMOTICON_CHAR = re.compile(r"[ㄱ-ㅎㅏ-ㅣ^;]")  # cheap test before the search above
# Korean writers end sentences with an ellipsis as often as with a period, also after a
# connective ending ("팬인데.. 이제 ..."); only after a conjunction standing alone does
# the sentence go on ("그런데... 사실은").
_CONJUNCTIONS = {"그런데", "근데", "그리고", "그래서", "그러나", "하지만", "그러니까", "그러면",
                 "그럼", "그래도", "그러므로", "따라서", "또는", "및", "혹은", "즉", "또",
                 "아니면", "왜냐하면", "만약", "만일", "혹시", "사실", "음", "어", "저", "그게"}
# A tilde (좋아요~) or a period set off by a space (참사입니다 .) ends a sentence after a
# final ending: -다, -요, -죠, -까, -네, -지, -군, -냐, -니, -나, -자, -걸, -어/-아/-야,
# -음/-함/-임, or laughter/crying jamo.
_FINAL_SYLLABLES = set("다요죠까네지군냐니나자걸어아야음함임ㅋㅎㅠㅜ")
# Words that continue a sentence after a closing quote: 하고/하며/하는/하면서/라고/...
_QUOTATIVE = re.compile(r"(?:하고|하며|하는|하면서|하니|라고|라며|라는|라면서|이라고|고\s)")
_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "eg", "ie", "no",
    "vol", "p", "pp", "fig", "inc", "co", "ltd", "corp", "jan", "feb", "mar", "apr", "jun",
    "jul", "aug", "sep", "sept", "oct", "nov", "dec", "am", "pm", "approx", "dept", "est",
    "gov", "univ", "ph", "al", "cf", "ca"}
_LATIN_TOKEN = re.compile(r"[A-Za-z][A-Za-z.]*$")


def _protected(text: str) -> bytearray:
  """1 at each index inside balanced, short brackets or quotes (no split there)."""
  spans = []
  stack = []  # (closer, position of opener)
  quotes = {q: [] for q in _SYMMETRIC_QUOTES}
  for m in _BRACKET.finditer(text):  # only the bracket and quote characters
    i, ch = m.start(), m.group()
    if ch in quotes:
      # An apostrophe inside a word (don't) is not a quote.
      if not (ch == "'" and 0 < i < len(text) - 1 and text[i - 1].isalpha() and
              text[i + 1].isalpha()):
        quotes[ch].append(i)
    elif stack and ch == stack[-1][0]:
      closer, start = stack.pop()
      if i - start <= MAX_QUOTE_CHARS:
        spans.append((start + 1, i))
    elif ch in _OPENERS:
      stack.append((_OPENERS[ch], i))
      if len(stack) > 8:  # runaway nesting: unbalanced text
        stack.pop(0)
  for positions in quotes.values():  # pairs in order of appearance
    spans.extend((a + 1, b) for a, b in zip(positions[::2], positions[1::2])
                 if b - a <= MAX_QUOTE_CHARS)
  inside = bytearray(len(text))
  for a, b in spans:  # short spans, at most ~10 deep: linear in the text
    inside[a:b] = b"\x01" * (b - a)
  return inside


def _word_before(text: str, end: int) -> str:
  """The non-space run ending at `end`, at most 64 characters (bounded work per mark)."""
  chunk = text[max(0, end - 64):end]
  return "" if not chunk or chunk[-1].isspace() else chunk.split()[-1]


def _keeps_period(text: str, mark_start: int) -> bool:
  """Whether a single '.' at mark_start belongs to the word before it."""
  word = _word_before(text, mark_start)
  # The word may begin with an opening bracket or quote: "(Mr." "'U.S."
  word = word.lstrip(_OPENING_CHARS)
  if not word:
    return True  # a lone "." after a space is not a sentence end
  if word[-1].isdigit():
    return True  # list numbers and dates: "1. 서론", "2019. 5. 3.", "어제2019.03.30."
  if _LATIN_TOKEN.match(word):
    bare = word.replace(".", "").lower()
    # Abbreviations, initials ("J."), dotted acronyms ("U.S", "e.g").
    return bare in _ABBREVIATIONS or len(bare) == 1 or "." in word
  return False


def _goes_on(text: str, start: int, mark: str, word: str, detached: bool) -> bool:
  """Whether the sentence goes on after the mark run at `start`, given the word before
  it (the word before the space for a mark set off by a space)."""
  tilde = set(mark) == {"~"}
  if mark in (".", "。") or tilde:
    if detached or tilde:
      # "등 .", "2~3", "몰~~~래": not after a sentence ending
      return not word or word.rstrip(_CLOSERS)[-1:] not in _FINAL_SYLLABLES
    return _keeps_period(text, start)
  if set(mark) <= set(".…‥。~"):  # an ellipsis: "..", "...", "…"
    if not word or word in _CONJUNCTIONS:
      return True  # "그런데... 사실은"
    # "등등 ...": an ellipsis set off after a noun
    return detached and word.rstrip(_CLOSERS)[-1:] not in _FINAL_SYLLABLES
  return False  # ? and !


def _bare_ending_at(text: str, i: int):
  """The bare-ending match whose last syllable is at i (it starts up to 2 before)."""
  for pattern, start in ((_BARE_ENDING, i - 2), (_BARE_ENDING, i - 1), (_BARE_ENDING, i),
                         (_BARE_DA, i - 1)):
    if start >= 0:
      ending = pattern.match(text, start)
      if ending and ending.start("space") > i:
        return ending
  return None


def split_sentences(text: str) -> List[str]:
  """Split one line of Korean text into sentences (the `rules` splitter).

  Args:
    text: one line (a paragraph or document); surrounding whitespace is ignored.

  Returns:
    the sentences in order, each stripped and non-empty; [] for a blank line. They
    are consecutive pieces of `text` with only whitespace between them, and every split
    falls on whitespace or right after punctuation.
  """
  text = text.strip()
  if not text:
    return []
  protected = _protected(text) if _BRACKET.search(text) else bytes(len(text))
  cuts = []  # (end of sentence, start of next)
  for m in _CANDIDATE.finditer(text):
    nxt = m.end()
    if nxt >= len(text):
      continue  # the end of the line needs no cut
    mark, close, space = m.groups()
    if space is None and (close or not "가" <= text[m.start() - 1:m.start()] <= "힣"):
      continue  # glued to what follows: only "다.그", "다.5년", "다.(" count, not "3.5"
    if space is None and text[nxt].isdigit() and len(mark) > 1:
      continue  # "지금은...3시간": an ellipsis glued to a number goes on
    # The mark of a quotation or parenthesis that closes here ends a sentence; a mark
    # inside one that goes on does not.
    if protected[m.end("close") - 1 if close else m.start()]:
      continue
    if mark == "." and "가" <= text[m.start() - 1] <= "힣":
      pass  # the common case, a period after Hangul ("했습니다."): no word checks
    else:
      word = _word_before(text, m.start())
      detached = not word  # "참사입니다 ." / "찐임 ..": the mark follows a space
      if detached:
        j = m.start()
        while j > 0 and text[j - 1].isspace():
          j -= 1
        word = _word_before(text, j)
      if _goes_on(text, m.start(), mark, word, detached):
        continue
    if close and _QUOTATIVE.match(text, nxt):
      continue  # "...?" 하고 물었다: the quotation goes on
    cuts.append((m.end("close"), nxt))
  for m in _BARE_ANCHOR.finditer(text):
    ending = _bare_ending_at(text, m.start())
    if ending and ending.start() and not protected[ending.start("space")]:
      cuts.append((ending.start("space"), ending.end()))  # (none for an ending at 0)
  if _EMOTICON_CHAR.search(text):
    for m in _EMOTICON_RUN.finditer(text):
      # (An emoticon run at the very start closes nothing.)
      if m.start() and not protected[m.start("space")]:
        cuts.append((m.start("space"), m.end()))
  if not cuts:
    return [text]
  cuts.sort()
  out = []
  start = 0
  for end, nxt in cuts:
    if end <= start:
      continue
    # Emoticons after a sentence end belong to that sentence ("됩니다. ㅎㅎ 예쁘게").
    emo = _EMOTICON.match(text, nxt)
    if emo and emo.end() < len(text):
      end = emo.end()
      nxt = end + len(text[end:]) - len(text[end:].lstrip())
    elif emo:
      continue  # only emoticons follow: they end the last sentence
    piece = text[start:end].strip()
    if piece:
      out.append(piece)
    start = nxt
  tail = text[start:].strip()
  if tail:
    out.append(tail)
  return out


def _kiwi_splitter() -> Callable[[str], List[str]]:
  try:
    from kiwipiepy import Kiwi
  except ImportError:
    raise SplitterError("--split-sentences kiwi needs kiwipiepy: "
                        "pip install kiwipiepy==0.24.1 (see docs/corpus.md)") from None
  # One thread: the builder's processes already fill the cores. Created in each worker
  # process (after fork), never shared across a fork.
  kiwi = Kiwi(num_workers=-1)

  def split(text: str) -> List[str]:
    return [s.text.strip() for s in kiwi.split_into_sents(text) if s.text.strip()]
  return split


def get_splitter(name: str) -> Callable[[str], List[str]]:
  """The splitter called `name`: a function from one line to its sentences.

  Args:
    name: one of SPLITTERS.

  Returns:
    a callable str -> list[str]; "none" returns the stripped line alone ([] if blank).

  Raises:
    SplitterError: unknown name, or the optional library is not installed.
  """
  if name == "none":
    return lambda text: [text.strip()] if text.strip() else []
  if name == "rules":
    return split_sentences
  if name == "kiwi":
    return _kiwi_splitter()
  raise SplitterError(f"--split-sentences must be one of {', '.join(SPLITTERS)}, "
                      f"got {name!r}")


def check_splitter(name: str) -> None:
  """Raise SplitterError now, before any work, if `name` cannot be used.

  Cheaper than get_splitter: an optional library is imported, its model not loaded.
  """
  if name == "kiwi":
    try:
      import kiwipiepy  # noqa: F401
    except ImportError:
      raise SplitterError("--split-sentences kiwi needs kiwipiepy: "
                          "pip install kiwipiepy==0.24.1 (see docs/corpus.md)") from None
  elif name not in SPLITTERS:
    get_splitter(name)  # raises with the list of names
