"""File names as keys and as shown: any name a folder may hold, kept reversible and shown safely.

A POSIX file name is bytes, not text: a share copied from an older system holds names in
Latin-1 (``caf\\xe9.md``), which Python lists with lone surrogates that no UTF-8 writer (a hash,
Parquet, JSON metadata) accepts. ``escape_name`` turns such a name into plain UTF-8 text that
keeps every byte: an undecodable byte becomes ``\\xNN`` and a backslash ``\\\\``, so
``unescape_name`` gives the exact name back to open the file. A name that is valid UTF-8 and
holds no backslash (nearly all) is its own key.

A name may also hold characters that act on a terminal or a reader: a newline that forges a
line of output, an escape sequence, a right-to-left mark that reverses what follows.
``shown_name`` writes those as escapes wherever a name is printed, logged or put in metadata.
"""

from __future__ import annotations

import os
import re
import unicodedata

_ESCAPED_BYTE = re.compile(r"\\(\\|x[0-9a-f]{2})")
# Control characters (newline, tab, ESC...), format characters (right-to-left and other bidi
# marks, zero-width joiners), line and paragraph separators, and unpaired surrogates.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})
_SHORT_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def escape_name(name: str) -> str:
    """A file or folder name as listed by the OS (``os.fsdecode``d) as valid, reversible UTF-8."""
    raw = os.fsencode(name)
    if b"\\" not in raw:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


def unescape_name(escaped: str) -> str:
    """The OS name (as ``os.fsdecode`` gives it) of an ``escape_name`` key."""
    if "\\" not in escaped:
        return escaped
    raw = bytearray()
    position = 0
    for match in _ESCAPED_BYTE.finditer(escaped):
        raw += escaped[position : match.start()].encode("utf-8")
        token = match.group(1)
        raw += b"\\" if token == "\\" else bytes([int(token[1:], 16)])
        position = match.end()
    raw += escaped[position:].encode("utf-8")
    return os.fsdecode(bytes(raw))


def shown_name(text: str) -> str:
    """A name (or any text taken from a file) safe to print: invisible and controlling
    characters written as escapes (``\\n``, ``\\x1b``, ``\\u202e``), the rest unchanged."""
    if text.isprintable():
        return text
    return "".join(_shown_character(character) for character in text)


def _shown_character(character: str) -> str:
    if character in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[character]
    if unicodedata.category(character) not in _UNSAFE_CATEGORIES:
        return character
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"
