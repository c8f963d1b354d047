"""Checks of a file's bytes before its parser sees them: what would cost memory or time out of
proportion to the file is refused up front, with a reason, in a fraction of a second.

- A Word or PowerPoint file is a zip archive: a few MB may unpack to GB (a zip bomb). Its
  unpacked size and compression ratio are read from the archive's directory (no byte is
  unpacked) and refused over the limits.
- Office never writes a DOCTYPE in its XML parts; one that does declares entities, whose
  references python-docx and python-pptx leave unresolved (safely: nothing is fetched or
  expanded), silently dropping the text after them. Such a file is refused with the reason.
- An HTML parser keeps a stack of open elements that it searches at each tag, so parse time
  grows with the square of the nesting (lexbor: 40,000 nested ``div``s take 8 s). The nesting is
  measured by one linear scan of the tags and a page deeper than the limit is refused. (The XML
  of Office files is parsed by libxml2, which refuses anything deeper than 256 levels itself.)
"""

from __future__ import annotations

import io
import re
import zipfile

from pydantic import BaseModel, ConfigDict, Field

from ai_assets.core.documents.model import UnreadableDocument

OFFICE_FORMATS = frozenset({"docx", "pptx"})
# Archives smaller than this unpacked are never refused by their ratio: a small, very
# repetitive XML part compresses well and harms no one.
_RATIO_FLOOR_BYTES = 10_000_000
_XML_HEAD_BYTES = 4_096  # a DOCTYPE must come before the root element: at the start of a part
_DOCTYPE = re.compile(rb"<!DOCTYPE", re.IGNORECASE)
_TAG = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^>]*?(/?)>")
# Elements that never hold others, or whose end tag HTML lets the next tag imply: they do not
# deepen the tree the parser builds however many are left open.
_FLAT_ELEMENTS = frozenset(
    b"area base br col embed hr img input link meta param source track wbr p li dt dd option optgroup "
    b"tr td th thead tbody tfoot colgroup caption rb rt rp html head body".split()
)


class InputLimits(BaseModel):
    """Limits on what a file may make its parser do; defaults as the settings' (AI_ASSETS_*)."""

    model_config = ConfigDict(frozen=True)

    office_max_unpacked_bytes: int = Field(default=500_000_000, gt=0)
    office_max_compression_ratio: float = Field(default=100.0, gt=1)
    max_nesting_depth: int = Field(default=1_000, gt=0)


def check_input(format_name: str, data: bytes, limits: InputLimits) -> None:
    """Raise ``UnreadableDocument`` with the reason when the file must not reach its parser."""
    if format_name in OFFICE_FORMATS:
        check_office_archive(data, limits)
    elif format_name == "html":
        check_nesting(data, limits.max_nesting_depth)


def check_office_archive(data: bytes, limits: InputLimits) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError):
        return  # not a zip: the parser says so in its own words
    with archive:
        members = archive.infolist()
        unpacked = sum(member.file_size for member in members)
        packed = max(1, sum(member.compress_size for member in members))
        if unpacked > limits.office_max_unpacked_bytes:
            raise UnreadableDocument(
                f"unpacks to {unpacked} bytes, over the limit of {limits.office_max_unpacked_bytes} bytes "
                "(setting AI_ASSETS_OFFICE_MAX_UNPACKED_BYTES)"
            )
        ratio = unpacked / packed
        if unpacked > _RATIO_FLOOR_BYTES and ratio > limits.office_max_compression_ratio:
            raise UnreadableDocument(
                f"compressed {ratio:.0f} to 1, over the limit of {limits.office_max_compression_ratio:g} to 1 "
                "(setting AI_ASSETS_OFFICE_MAX_COMPRESSION_RATIO): a zip bomb, or not an Office file"
            )
        for member in members:
            if member.filename.endswith((".xml", ".rels")) and _declares_doctype(archive, member):
                raise UnreadableDocument(
                    f"{member.filename} declares a DOCTYPE (entities), which Office never writes: "
                    "the text around its entity references would be lost"
                )


def _declares_doctype(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> bool:
    try:
        with archive.open(member) as part:
            return _DOCTYPE.search(part.read(_XML_HEAD_BYTES)) is not None
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, EOFError, OSError):
        return False  # a damaged or encrypted part: the parser reports it


def check_nesting(data: bytes, limit: int) -> None:
    """Refuse markup whose elements nest deeper than ``limit`` (one pass over its tags)."""
    depth = 0
    for match in _TAG.finditer(data):
        closing, name, self_closing = match.group(1), match.group(2).lower(), match.group(3)
        if self_closing or name in _FLAT_ELEMENTS:
            continue
        if closing:
            depth = max(0, depth - 1)
            continue
        depth += 1
        if depth > limit:
            raise UnreadableDocument(
                f"elements nested more than {limit} deep (setting AI_ASSETS_MAX_NESTING_DEPTH): "
                "parsing it would take minutes"
            )
