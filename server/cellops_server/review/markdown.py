"""Comment bodies: Markdown rendered to HTML on the server, then sanitized.

Comments are HTML that someone else's browser renders, so two independent layers stand
between a body and the page:

1. markdown-it renders CommonMark (plus tables and strikethrough). Raw HTML in a body is
   passed on to the sanitizer, which strips it: a tag off the allow-list is removed (its
   text stays), ``<script>``, ``<style>``, ``<iframe>``… with their content.
2. nh3 (ammonia) keeps only an allow-list of tags and attributes, and the URLs this
   module accepts: links to http, https, mailto or relative addresses (each with
   ``rel="noopener noreferrer nofollow"``), images from http(s) or inline PNG, JPEG or GIF
   data. Anything else (``javascript:``, ``data:text/html``, ``vbscript:``…) loses its URL.

``@name`` of a known user becomes ``<span class="cellops-mention">@name</span>``; the
parse that finds them skips code spans and code blocks, so ``@property`` in code is text.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from functools import lru_cache
from typing import Any

import nh3
from markdown_it import MarkdownIt
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

MENTION_CLASS = "cellops-mention"
# A mention is what a user name may hold (team/users.py), not ending in punctuation, so
# that "thanks @bob." mentions bob.
_MENTION = re.compile(r"@([A-Za-z0-9._@-]{0,127}[A-Za-z0-9_])")
_WORD_BEFORE = re.compile(r"[A-Za-z0-9._@-]")

TAGS = {
    "a", "blockquote", "br", "code", "del", "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    "img", "li", "ol", "p", "pre", "s", "span", "strong", "table", "tbody", "td", "th",
    "thead", "tr", "ul",
}  # fmt: skip
ATTRIBUTES = {
    "a": {"href", "title"},
    "img": {"src", "alt", "title"},
    "ol": {"start"},
    "th": {"style"},  # markdown-it aligns table columns with style="text-align:…"
    "td": {"style"},
}
LINK_SCHEMES = ("http:", "https:", "mailto:")
IMAGE_SCHEMES = ("http:", "https:")
IMAGE_DATA = re.compile(r"data:image/(png|jpeg|gif);base64,[A-Za-z0-9+/=\s]*", re.IGNORECASE)
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def _mention_rule(state: StateInline, silent: bool) -> bool:
    """Inline rule: ``@name`` not preceded by a name character (so e-mail addresses and
    ``a@b`` stay text). Every candidate is recorded; rendering decides which are users."""
    pos = state.pos
    if state.src[pos] != "@" or (pos > 0 and _WORD_BEFORE.match(state.src[pos - 1])):
        return False
    match = _MENTION.match(state.src, pos)
    if match is None:
        return False
    if not silent:
        token = state.push("mention", "", 0)
        token.content = match.group(1)
    state.pos = match.end()
    return True


def _render_mention(
    renderer: Any, tokens: Sequence[Token], idx: int, options: Any, env: dict[str, Any]
) -> str:
    name = tokens[idx].content
    text = _escape(f"@{name}")
    if name in env.get("known", ()):
        return f'<span class="{MENTION_CLASS}">{text}</span>'
    return text


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _parser() -> MarkdownIt:
    # html: raw HTML reaches nh3, which strips it, rather than showing it as literal text.
    md = MarkdownIt("commonmark", {"html": True, "linkify": False, "typographer": False})
    md.enable(["table", "strikethrough"])
    md.inline.ruler.before("emphasis", "mention", _mention_rule)
    md.add_render_rule("mention", _render_mention)
    return md


_md = _parser()


def mention_candidates(body: str) -> list[str]:
    """The ``@names`` a body holds outside code, in order of first appearance."""
    if "@" not in body:
        return []
    seen: dict[str, None] = {}
    for token in _md.parse(body):
        for child in token.children or ():
            if child.type == "mention":
                seen.setdefault(child.content, None)
    return list(seen)


def _url_allowed(tag: str, value: str) -> bool:
    url = value.strip()
    scheme = _SCHEME.match(url)
    if scheme is None:
        # A relative link (a path of this server); images load remote only. A colon before
        # the path starts looks like a scheme (a browser may strip what made it invalid).
        first = re.split(r"[/?#]", url, maxsplit=1)[0]
        return tag == "a" and ":" not in first
    lowered = url.lower()
    if tag == "img":
        return lowered.startswith(IMAGE_SCHEMES) or IMAGE_DATA.fullmatch(url) is not None
    return lowered.startswith(LINK_SCHEMES)


def _attribute_filter(tag: str, attribute: str, value: str) -> str | None:
    if attribute in ("href", "src"):
        return value if _url_allowed(tag, value) else None
    return value


def sanitize(html: str) -> str:
    """Only the allow-listed tags, attributes and URLs of ``html``."""
    return nh3.clean(
        html,
        tags=TAGS,
        clean_content_tags={"script", "style", "iframe", "object", "embed", "template"},
        attributes=ATTRIBUTES,
        attribute_filter=_attribute_filter,
        url_schemes={"http", "https", "mailto", "data"},  # data: only images (the filter)
        link_rel="noopener noreferrer nofollow",
        allowed_classes={"span": {MENTION_CLASS}},
        filter_style_properties={"text-align"},
        strip_comments=True,
    )


# Plain prose (most comments) renders the same without the Markdown parser, ~10x faster: no
# character that starts inline markup, no line that could open a block, no indented or
# trailing space (code blocks, hard breaks). Only paragraphs are left.
_MARKUP = re.compile(r"[`*_\[\]<>&\\~|@\r\t\x00-\x08\x0b-\x1f\x7f]")
_BLOCK_START = re.compile(r"^[\s0-9#>*+=-]|\s$", re.MULTILINE)


def _plain(body: str) -> str | None:
    """The HTML of ``body`` when it is plain prose, else None (use the parser)."""
    if _MARKUP.search(body) or _BLOCK_START.search(body.replace("\n\n", "\n")):
        return None
    paragraphs = [p for p in body.split("\n\n") if p]
    return "".join(f"<p>{_escape(p)}</p>\n" for p in paragraphs)


@lru_cache(maxsize=4096)
def _render(body: str, known: frozenset[str]) -> str:
    plain = _plain(body)
    return sanitize(plain if plain is not None else _md.render(body, {"known": known}))


def render(body: str, mentions: Collection[str] = ()) -> str:
    """``body`` as sanitized HTML, ``mentions`` (known users' names) highlighted. Cached:
    a notebook's review tab renders the same bodies again on every refetch."""
    if not body:
        return ""
    return _render(body, frozenset(mentions))
