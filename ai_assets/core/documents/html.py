"""HTML pages through selectolax (the lexbor parser, as browsers parse): the main content only.

Navigation, scripts, forms and page furniture are dropped; ``<main>`` or ``<article>`` is read
when the page has one; ``<h1>``-``<h6>`` become sections and ``<title>`` the title.
bench/parsers.py compares this with trafilatura on the same pages.
"""

from __future__ import annotations

import re

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ai_assets.core.documents.model import BlockCollector, ParsedBlock, ParsedDocument, UnreadableDocument
from ai_assets.core.documents.text import decode_text

# Never content: code, styling, embedded objects, interactive parts, and page furniture.
_DROPPED = (
    "script, style, noscript, template, svg, canvas, iframe, object, form, button, select, nav, aside, "
    "[role=navigation], [role=banner], [role=contentinfo], [role=search], [aria-hidden=true], [hidden]"
)
# Page furniture by its class or id (sidebars, menus, breadcrumbs, cookie banners, share bars).
_FURNITURE = re.compile(
    r"(?:^|[\s_-])(?:nav|navbar|navigation|menu|sidebar|breadcrumbs?|cookies?|consent|share|social|skip-link|toc|footer|"
    r"pager|pagination|prev-next|copyright|colophon)(?:$|[\s_-])",
    re.IGNORECASE,
)
_BLOCKS = frozenset(
    "p div section article main header footer li dt dd pre blockquote tr table figcaption caption "
    "h1 h2 h3 h4 h5 h6 ul ol dl hr address details summary body".split()
)
_HEADINGS = {f"h{level}": level for level in range(1, 7)}
# Links to a heading's own anchor, drawn as a mark beside it (Sphinx's "¶", MkDocs' and Docusaurus' "#").
_HEADER_LINKS = "a.headerlink, a.hash-link, a.anchor, a.anchorjs-link, a.header-anchor, a.heading-anchor, a.anchor-link"
_LINK_MARKS = frozenset({"", "\u00b6", "#", "\u00a7", "\U0001f517", "\u2693"})
# A page footer's or navigation's paragraph left inside the content: copyright, "Built with",
# "Previous" / "Next" links.
_FOOTER_LINE = re.compile(
    r"^(?:(?:\u00a9|\(c\)|copyright\b)[^.!?]{0,30}?(?:\d{4}|\u00a9|\(c\)).{0,200}"
    r"|(?:built with|powered by|created using|last updated on)\b.{0,160}"
    r"|(?:[\u00ab\u2190<]\s*)?(?:previous|next)(?:\s*(?:page|topic|chapter))?(?:\s*[\u00bb\u2192>])?(?:\s*[:|\u2013-]\s*[^.!?]{0,80})?)$",
    re.IGNORECASE,
)
_UNCLOSED = (
    (re.compile(rb"<script\b", re.IGNORECASE), re.compile(rb"</script\s*>", re.IGNORECASE), "<script>"),
    (re.compile(rb"<style\b", re.IGNORECASE), re.compile(rb"</style\s*>", re.IGNORECASE), "<style>"),
)


def parse_html(raw: bytes) -> ParsedDocument:
    html = decode_text(raw)
    refuse_broken_markup(raw)
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("head > title") or tree.css_first("title")
    title = " ".join(title_node.text().split()) if title_node else ""
    for node in tree.css(_DROPPED):
        node.decompose()
    for node in tree.css(f"{_HEADER_LINKS}, a[href^='#']"):
        if node.text(deep=True).strip(" \t\r\n\u200b\ufeff") in _LINK_MARKS:
            node.decompose()
    for node in tree.css("header, footer"):
        if not _inside_content(node):  # a page's header and footer, not an article's
            node.decompose()
    for node in tree.css("[class], [id]"):
        if node.tag not in ("body", "main", "article") and _FURNITURE.search(
            f"{node.attributes.get('class') or ''} {node.attributes.get('id') or ''}"
        ):
            node.decompose()
    root = tree.css_first("main") or tree.css_first("[role=main]") or tree.css_first("article") or tree.body
    blocks = _blocks(root) if root is not None else []
    if not any(block.text.strip() for block in blocks):
        raise UnreadableDocument("no text after extraction")
    return ParsedDocument(title=title, blocks=blocks)


def refuse_broken_markup(raw: bytes) -> None:
    """A script or style element never closed, or a comment never ended, would hide the rest of
    the page: such a page is quarantined rather than silently cut short."""
    for opening, closing, name in _UNCLOSED:
        if len(opening.findall(raw)) > len(closing.findall(raw)):
            raise UnreadableDocument(f"broken HTML: {name} element is never closed; the rest of the page would be lost")
    last_comment = raw.rfind(b"<!--")
    if last_comment >= 0 and raw.find(b"-->", last_comment + 4) < 0:
        raise UnreadableDocument("broken HTML: unterminated comment; the rest of the page would be lost")


def _inside_content(node: LexborNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag in ("article", "main"):
            return True
        parent = parent.parent
    return False


def _block_of(node: LexborNode) -> LexborNode | None:
    parent = node.parent
    while parent is not None and parent.tag not in _BLOCKS:
        parent = parent.parent
    return parent


class _Blocks(BlockCollector):
    """Text nodes into paragraphs (``words`` gathers the current one), paragraphs into blocks."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []

    def end_paragraph(self) -> None:
        text = "".join(self.words).strip()
        if not _FOOTER_LINE.match(text):
            self.paragraph(text)
        self.words = []

    def end_block(self) -> None:
        if self.words:
            self.end_paragraph()
        super().end_block()


def _blocks(root: LexborNode) -> list[ParsedBlock]:
    collected = _Blocks()
    current_block: LexborNode | None = None
    for node in root.traverse(include_text=True):
        tag = node.tag
        if tag in _HEADINGS:
            text = " ".join(node.text(deep=True).split()).rstrip("\u00b6 ")
            if text:
                collected.heading(_HEADINGS[tag], text)
            current_block = node
            continue
        if tag == "br":
            collected.words.append("\n")
        elif tag in ("td", "th") and collected.words and _same(_block_of(node), current_block):
            collected.words.append(" | ")
        elif tag == "li":
            collected.end_paragraph()
            collected.words.append("- ")
            current_block = node
        if tag != "-text":
            continue
        block = _block_of(node)
        if block is not None and block.tag in _HEADINGS:
            continue  # read whole with its heading
        if not _same(block, current_block) and not (current_block is not None and current_block.tag == "li" and _within(block, current_block)):
            collected.end_paragraph()
            current_block = block
        content = node.text_content or ""
        if block is not None and _within_pre(node):
            collected.words.append(content)
        else:
            collected.words.append(re.sub(r"\s+", " ", content))
    collected.end_block()
    return collected.blocks


def _same(node: LexborNode | None, other: LexborNode | None) -> bool:
    # selectolax makes a new Python object for each visit of a node: compare the nodes themselves.
    return node is other if node is None or other is None else node.mem_id == other.mem_id


def _within(node: LexborNode | None, ancestor: LexborNode) -> bool:
    while node is not None:
        if node.mem_id == ancestor.mem_id:
            return True
        node = node.parent
    return False


def _within_pre(node: LexborNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag == "pre":
            return True
        parent = parent.parent
    return False
