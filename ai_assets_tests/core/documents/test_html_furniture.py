"""Documentation pages as Sphinx, MkDocs and Docusaurus write them: header-link marks and page
footers stay out of the text and the sections."""

from __future__ import annotations

import pytest

from ai_assets.core.documents.html import parse_html

SPHINX = """<!doctype html><html><head><title>Install &#8212; Widget 2.0 documentation</title></head><body>
<div class="document"><div class="documentwrapper"><div class="bodywrapper"><div class="body" role="main">
<section id="install"><h1>Install<a class="headerlink" href="#install" title="Link to this heading">&#182;</a></h1>
<p>Run the installer. See <a class="reference internal" href="#usage">Usage</a> for more.</p>
<section id="usage"><h2>Usage<a class="headerlink" href="#usage" title="Link to this heading">&#182;</a></h2>
<p>Next, run the widget from a shell.</p></section></section>
</div></div></div>
<div class="sphinxsidebarwrapper"><h3>Navigation</h3><p>Previous topic</p></div>
<div class="clearer"></div></div>
<div class="footer">&#169;2024, Widget authors. | Powered by <a href="https://www.sphinx-doc.org/">Sphinx 7.2</a></div>
</body></html>"""

DOCUSAURUS = """<!doctype html><html><head><title>Usage | Widget</title></head><body><div class="main-wrapper">
<article><div class="markdown"><h2 class="anchor" id="usage">Usage<a href="#usage" class="hash-link" aria-label="Direct link">#</a></h2>
<p>Options are read from widget.toml.</p>
<h3 id="c-sharp">Calling from C#<a href="#c-sharp" class="hash-link">&#8203;</a></h3><p>Use the .NET binding.</p></div>
<nav class="pagination-nav"><a class="pagination-nav__link" href="/install"><div>Previous</div><div>Install</div></a></nav>
<p>Next: Configuration</p>
</article></div><footer class="footer"><div>Copyright &#169; 2024 Widget, Inc. Built with Docusaurus.</div></footer></body></html>"""


@pytest.mark.parametrize(
    ("page", "sections", "kept"),
    [
        (SPHINX, ["Install", "Install > Usage"], ["Run the installer. See Usage for more.", "Next, run the widget from a shell."]),
        (DOCUSAURUS, ["Usage", "Usage > Calling from C#"], ["Options are read from widget.toml.", "Use the .NET binding."]),
    ],
    ids=["sphinx", "docusaurus"],
)
def test_header_links_and_footers_stay_out(page: str, sections: list[str], kept: list[str]) -> None:
    parsed = parse_html(page.encode("utf-8"))
    text = "\n".join(block.text for block in parsed.blocks)
    assert [block.section for block in parsed.blocks] == sections
    assert "\u00b6" not in text and "Usage#" not in text and "Usage #" not in text
    for phrase in ("Copyright", "\u00a9", "Powered by", "Previous", "Next: Configuration", "Navigation"):
        assert phrase not in text
    for paragraph in kept:
        assert paragraph in text
