"""How names of files, folders and classes become text.

A name from the file system may hold bytes that are not UTF-8 (os functions
give them as surrogate escapes) and characters that would break a line of
output.  `name_bytes` gives the exact bytes (for hashing), `text_name` text
(bytes that are not UTF-8 as \\xNN), `printable` one line for people, and
`json_text` JSON that keeps the exact name.  Imports nothing heavy: the
command line prints with it before the image libraries load.
"""

from __future__ import annotations

import json
import re
from typing import Optional


def name_bytes(name: str) -> bytes:
    """The bytes of a file or folder name as os functions gave it: bytes that
    are not UTF-8 come back from their surrogate escapes.  For hashing."""
    return name.encode("utf-8", "surrogateescape")


def text_name(name: str) -> str:
    """A file or folder name as text: bytes that are not UTF-8 as \\xNN."""
    return name_bytes(name).decode("utf-8", "backslashreplace")


# What would break or disguise a printed line: control characters (a line
# break in a file name would print as a line of its own), the line and
# paragraph separators, and the bidirectional controls that reorder text.
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match) -> str:
    char = match.group()
    return _ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def printable(name: str) -> str:
    """A name, a path or a message as one line of text for people: bytes
    that are not UTF-8 as \\xNN, and line breaks, other control characters
    and bidirectional controls as escapes (\\n, \\x1b, \\u202e)."""
    return _UNPRINTABLE.sub(_escape, text_name(name))


class Lines(tuple):
    """A message of several lines (e.g. one per stage), kept apart so that
    each can be made printable on its own: a line break inside a name still
    cannot start a line of its own.  str() joins them."""

    def __str__(self) -> str:
        return "\n".join(self)


def message_text(message: object) -> str:
    """A message for people: `printable` as one line, or, for `Lines`, each
    line printable and the lines joined."""
    if isinstance(message, Lines):
        return "\n".join(printable(line) for line in message)
    return printable(str(message))


def json_text(value: object, indent: Optional[int] = None) -> str:
    """JSON text that is valid UTF-8 whatever the names in it.  A name that
    is not UTF-8 holds surrogate escapes (as os functions give it); each
    becomes a JSON \\udcXX escape, which json.loads turns back into the
    same name."""
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
