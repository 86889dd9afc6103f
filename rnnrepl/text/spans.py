"""Where each token of ``tokenizer.encode(text)`` sits in `text`: one (start, end) character span
per token, so that something about a token (its surprisal colour) can be drawn on the text as
typed. Spans are in order, inside the text and never overlap; together they cover every
character that is not whitespace. A token that stands for nothing visible (a byte-level BPE
token holding only the rest of a character) gets an empty span where it falls.
"""

from __future__ import annotations

from rnnrepl.text.tokenizers import _AT_JOINERS, EOL

Span = tuple[int, int]


def token_spans(tokenizer, text: str) -> list[Span]:
    """One span per token of ``tokenizer.encode(text)``, at any level."""
    if tokenizer.level == "char":
        return char_spans(text, tokenizer.lowercase)
    if tokenizer.level == "word":
        return word_spans(tokenizer.pieces(text), _cased(text, tokenizer.lowercase))
    return bpe_spans(tokenizer, text)


def _cased(text: str, lowercase: bool) -> str:
    """The text the tokenizer reads, where lowercasing keeps every character in its place."""
    lowered = text.lower() if lowercase else text
    return lowered if len(lowered) == len(text) else text


def char_spans(text: str, lowercase: bool = False) -> list[Span]:
    """One token per character; a character that lowercases to several ('İ' -> 'i̇') gives
    several tokens: the first spans the character, the others are empty after it."""
    if not lowercase or len(text.lower()) == len(text):
        return [(i, i + 1) for i in range(len(text))]
    spans: list[Span] = []
    for i, ch in enumerate(text):
        spans.append((i, i + 1))
        spans.extend((i + 1, i + 1) for _ in range(len(ch.lower()) - 1))
    return spans


def word_spans(pieces: list[str], text: str) -> list[Span]:
    """Find each piece in order: the end-of-line token at the next newline, WikiText's "@-@"
    at a plain "-" (and "@,@", "@.@" alike), any other piece as written (an unknown word
    included). A piece not found where expected (lowercasing that changed the text) takes
    the characters up to the next whitespace, at most its own length."""
    spans: list[Span] = []
    pos = 0
    for piece in pieces:
        if piece == EOL:
            at = text.find("\n", pos)
            at = pos if at < 0 else at
            spans.append((at, at + 1))
            pos = at + 1
            continue
        while pos < len(text) and text[pos].isspace() and text[pos] != "\n":
            pos += 1
        end = pos + _match(piece, text, pos)
        spans.append((pos, end))
        pos = end
    return spans


def _match(piece: str, text: str, pos: int) -> int:
    """How many characters of `text` at `pos` the piece stands for."""
    if text.startswith(piece, pos):
        return len(piece)
    if piece in _AT_JOINERS and text.startswith(_AT_JOINERS[piece], pos):
        return 1
    n = 0
    while n < len(piece) and pos + n < len(text) and not text[pos + n].isspace():
        n += 1
    return n


def bpe_spans(tokenizer, text: str) -> list[Span]:
    """Byte-level BPE decodes losslessly: walk the tokens' bytes; a character belongs to the
    token that holds its first byte."""
    cased = _cased(text, tokenizer.lowercase)
    starts: dict[int, int] = {}  # byte offset where a character begins -> its index
    offset = 0
    for i, ch in enumerate(cased):
        starts[offset] = i
        offset += len(ch.encode("utf-8", "surrogatepass"))
    spans: list[Span] = []
    byte, char = 0, 0
    for token in tokenizer.encode(text):
        first = char
        for b in range(byte, byte + len(tokenizer.token_bytes(token))):
            if b in starts:
                char = starts[b] + 1
        byte += len(tokenizer.token_bytes(token))
        spans.append((first, char))
    return spans
