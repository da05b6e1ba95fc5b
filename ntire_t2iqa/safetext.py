"""One sanitiser per output kind, for every string a participant (or anyone) controls.

Team, leader and file names, readme values, image keys and element strings reach
terminals, CSV, Markdown, LaTeX, HTML, plain text files and SQLite. Every writer passes
such text through the one function for its kind here, so that no string can change a
document's structure, styling, links or a terminal's state:

* :func:`terminal`: for rich markup (tables, ``console.print``); control characters shown
  as escapes, markup brackets escaped.
* :func:`csv_cell`: spreadsheet formula prefixes neutralised.
* :func:`markdown`: table pipes, line breaks, HTML and inline markup escaped.
* :func:`latex`: special characters escaped, accented Latin letters as accent commands.
* :func:`html`: entities for ``& < > " '``.
* :func:`plain`: one line of plain text (stderr, ``scores.txt``, logs).
* :func:`unicode_safe`: text that SQLite and UTF-8 files accept (lone surrogates from
  undecodable file names become ``\\xNN`` escapes).

:func:`clip` and :func:`quote` bound a participant string before it enters a message.
JSON output needs none of these: :mod:`json` escapes on its own and stays byte-exact.

Example:
    >>> plain("evil\\x1b]0;pwned\\x07team")
    'evil\\\\x1b]0;pwned\\\\x07team'
    >>> csv_cell("=HYPERLINK(1)")
    "'=HYPERLINK(1)"
    >>> quote("a" * 100)[:12], len(quote("a" * 100)) < 110
    ("'aaaaaaaaaaa", True)
"""

from __future__ import annotations

import html as _html
import re
import unicodedata
from typing import Any

#: Longest participant string quoted in full in a message.
MAX_QUOTE = 80

_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def unicode_safe(text: str) -> str:
    """``text`` with lone surrogates (undecodable bytes of a file name) written as ``\\xNN``."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogateescape") if _only_escaped_bytes(text) else \
            text.encode("utf-8", "surrogatepass")
        return raw.decode("utf-8", "backslashreplace")


def _only_escaped_bytes(text: str) -> bool:
    return all(not 0xD800 <= ord(ch) <= 0xDFFF or 0xDC80 <= ord(ch) <= 0xDCFF for ch in text)


def _visible_char(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else (f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")


def visible(text: str) -> str:
    """Every character that is not printable (controls, format and bidi marks, line separators,
    surrogates, unassigned code points) written as a backslash escape; spaces kept."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else _visible_char(ch) for ch in unicode_safe(text))


def clip(text: str, limit: int = MAX_QUOTE) -> str:
    """``text`` itself, or its first ``limit`` characters, an ellipsis and its length."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def quote(value: Any, limit: int = MAX_QUOTE) -> str:
    """A participant's string for a message: clipped, quoted and with controls escaped.

    Anything but a string is named by its type alone (never ``repr``: a hostile object's
    repr can be huge or recurse without end).
    """
    if isinstance(value, str):  # repr escapes exactly what visible() does: every non-printable character
        if len(value) <= limit:
            return repr(value)
        return repr(value[:limit]) + f"… ({len(value):,} characters)"
    return f"<{type(value).__name__}>"


def plain(text: str) -> str:
    """One line of plain text: controls and line breaks as escapes."""
    return visible(text)


def terminal(text: str) -> str:
    """Text for rich markup: controls escaped, markup brackets escaped (``[/bold]`` prints as it is)."""
    text = visible(text)
    if "[" not in text and not text.endswith("\\"):
        return text
    text = re.sub(r"(\\*)\[", lambda m: m.group(1) * 2 + "\\[", text)
    if text.endswith("\\"):  # a trailing backslash would escape the next markup tag
        text += "\\"
    return text


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(text: str) -> str:
    """A CSV text cell that no spreadsheet reads as a formula (a leading ``'`` is added)."""
    text = visible(text)
    return "'" + text if text.startswith(_FORMULA_START) else text


_MD_SPECIAL = set("\\`*_{}[]()#+-.!|~:$")
_MD_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"}


def markdown(text: str) -> str:
    """Inline Markdown text (table cells, list items): nothing in it is markup or HTML."""
    out = []
    for ch in visible(text):
        if ch in _MD_ENTITIES:
            out.append(_MD_ENTITIES[ch])
        elif ch in _MD_SPECIAL:
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "".join(out)


def html(text: Any) -> str:
    """HTML text or attribute value (quotes included); controls escaped."""
    return _html.escape(visible(str(text)), quote=True)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"\textless{}", ">": r"\textgreater{}", "|": r"\textbar{}", '"': "''"}
#: Combining marks -> LaTeX accent commands (all in LaTeX's default OT1 encoding).
_LATEX_ACCENTS = {"\u0300": "`", "\u0301": "'", "\u0302": "^", "\u0303": "~", "\u0308": '"', "\u0304": "=",
                  "\u0307": ".", "\u0306": "u", "\u030c": "v", "\u030b": "H", "\u0327": "c", "\u0328": "k",
                  "\u030a": "r", "\u0323": "d", "\u0331": "b"}
_LATEX_LETTERS = {"ß": r"\ss{}", "æ": r"\ae{}", "Æ": r"\AE{}", "œ": r"\oe{}", "Œ": r"\OE{}", "ø": r"\o{}",
                  "Ø": r"\O{}", "ł": r"\l{}", "Ł": r"\L{}", "ı": r"\i{}", "ȷ": r"\j{}", "–": "--", "—": "---",
                  "‘": "`", "’": "'", "“": "``", "”": "''", "…": r"\ldots{}", "\u00a0": "~"}
#: Written at the top of a LaTeX table that holds characters pdflatex cannot typeset.
LATEX_NON_LATIN_NOTE = "% Some names use scripts beyond Latin: compile this table with xelatex or lualatex."


def latex(text: str) -> str:
    """LaTeX text mode: specials escaped, controls shown as escapes, accented Latin letters as
    accent commands (``é`` -> ``\\'{e}``), so pdflatex typesets it in its default set-up.

    Other scripts are kept as they are (see :data:`LATEX_NON_LATIN_NOTE` and :func:`needs_unicode_engine`).
    """
    out = []
    for ch in visible(text):
        if ch in _LATEX_SPECIAL:
            out.append(_LATEX_SPECIAL[ch])
        elif ord(ch) < 128:
            out.append(ch)
        elif ch in _LATEX_LETTERS:
            out.append(_LATEX_LETTERS[ch])
        else:
            out.append(_latex_accented(ch))
    return "".join(out)


def _latex_accented(ch: str) -> str:
    parts = unicodedata.normalize("NFD", ch)
    base, marks = parts[0], parts[1:]
    if not marks or not all(m in _LATEX_ACCENTS for m in marks):
        return ch
    if ord(base) >= 128:
        if base not in _LATEX_LETTERS:
            return ch
        base = _LATEX_LETTERS[base]
    elif base in "ij" and marks[0] not in "\u0327\u0328\u0323\u0331":
        base = "\\" + base  # dotless i / j under an accent above
    for mark in marks:
        base = f"\\{_LATEX_ACCENTS[mark]}{{{base}}}"
    return base


def needs_unicode_engine(latex_text: str) -> bool:
    """True when escaped LaTeX text still holds characters beyond ASCII (pdflatex cannot set them)."""
    return not latex_text.isascii()


_ASCII_DECIMAL = re.compile(r"[0-9]{1,30}(\.[0-9]{1,30})?")


def ascii_decimal(text: str) -> str | None:
    """``text`` when it is a plain ASCII decimal number (``12``, ``0.52``), else ``None``.

    ``float()`` accepts ``١٢``, ``1_0`` and full-width digits; a value copied into a file that
    another program parses must be only ``[0-9]+(.[0-9]+)?``.
    """
    text = text.strip()
    return text if _ASCII_DECIMAL.fullmatch(text) else None
