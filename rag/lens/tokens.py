"""The question as OpenAI's embedding models read it: cl100k_base tokens, byte fragments grouped.

A kanji often costs two or three byte-level tokens; grouping them under the character they spell is
what lets the Tokens tab show `<e7 8c>` beside 猫 rather than three mysterious chips.
"""

from __future__ import annotations

from dataclasses import dataclass

from rag.tokens import Token, encoding, tokenize


@dataclass(frozen=True)
class TokenGroup:
    """Consecutive tokens that together spell `text`; one token unless a character was split."""

    text: str
    tokens: list[Token]

    @property
    def split(self) -> bool:
        """True when one character cost several byte-fragment tokens (typical for kanji)."""
        return len(self.tokens) > 1


def token_groups(text: str) -> list[TokenGroup]:
    """The text's cl100k tokens, with byte fragments gathered until they decode to characters."""
    enc = encoding()
    groups: list[TokenGroup] = []
    pending: list[Token] = []
    raw = b""
    for token in tokenize(text):
        pending.append(token)
        raw += enc.decode_single_token_bytes(token.id)
        try:
            decoded = raw.decode("utf-8")
        except UnicodeDecodeError:
            if len(raw) < 16:  # wait for the rest of the character
                continue
            decoded = raw.decode("utf-8", errors="replace")
        groups.append(TokenGroup(decoded, pending))
        pending, raw = [], b""
    if pending:
        groups.append(TokenGroup(raw.decode("utf-8", errors="replace"), pending))
    return groups


@dataclass(frozen=True)
class TokenStats:
    chars: int
    tokens: int

    @property
    def chars_per_token(self) -> float:
        return self.chars / self.tokens if self.tokens else 0.0


def token_stats(text: str) -> TokenStats:
    return TokenStats(chars=len(text), tokens=len(tokenize(text)))
