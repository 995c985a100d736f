"""A real HTML check: html5lib's strict WHATWG parser, which raises on the first parse error.

``html.parser.HTMLParser`` accepts anything (unclosed tags, stray end tags, bad attributes), so
feeding it a page proves nothing. html5lib implements the HTML5 parsing algorithm and, with
``strict=True``, turns every parse error the specification names (a misnested or unexpected
end tag, a duplicate attribute, a missing doctype, text where a table expects rows, ...) into
an exception that says where.
"""

from __future__ import annotations

import html5lib
from html5lib.html5parser import ParseError


def assert_valid_html(page: str) -> None:
    """Fail with the parser's error and the offending line when ``page`` is not clean HTML."""
    parser = html5lib.HTMLParser(strict=True, namespaceHTMLElements=False)
    try:
        parser.parse(page)
    except ParseError as exc:
        (line, col), code, data = parser.errors[-1] if parser.errors else ((0, 0), str(exc), {})
        lines = page.splitlines()
        where = lines[line - 1][max(0, col - 80) : col + 40] if 0 < line <= len(lines) else ""
        raise AssertionError(f"HTML parse error {code} {data} at {line}:{col}: {where!r}") from exc
