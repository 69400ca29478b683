"""How two spellings of one person's name are compared (approvers, approvals, groups).

A leaf: the project schema checks its approver lists with it and `policies.approval` compares
approvals with it.
"""

import unicodedata

#: Invisible ("default ignorable") characters outside category Cf: the combining grapheme
#: joiner, Hangul fillers, Khmer inherent vowels, Mongolian and other variation selectors.
_IGNORABLE = frozenset(
    {
        0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0,
        *range(0x180B, 0x1810),
        *range(0xFE00, 0xFE10),
        *range(0xE0100, 0xE01F0),
    }
)  # fmt: skip


def normalize_identity(name: str) -> str:
    """The form in which two spellings of one person's name compare equal.

    NFKC (fullwidth and compatibility forms become plain letters), invisible characters removed
    (format and control characters such as zero-width spaces, joiners and bidi marks, category
    Cf/Cc, and the other default-ignorable ones such as variation selectors and Hangul fillers),
    casefolded, whitespace trimmed and collapsed. Only for comparing: never store the result.
    """
    text = unicodedata.normalize("NFKC", name)
    text = "".join(
        ch
        for ch in text
        if ch.isspace()
        or (unicodedata.category(ch) not in ("Cf", "Cc") and ord(ch) not in _IGNORABLE)
    )
    # Casefolding can leave text that NFKC changes again (e.g. some ligatures), so normalise twice.
    text = unicodedata.normalize("NFKC", text.casefold())
    return " ".join(text.split())


def expand_people(entries: list[str], groups: dict[str, list[str]]) -> set[str] | None:
    """Names listed in `entries`, or None when the list is empty (anyone may).

    A `group:<name>` entry brings the group's members. Approvers and reviewers are listed alike.
    """
    if not entries:
        return None
    names: set[str] = set()
    for entry in entries:
        if entry.startswith("group:"):
            names.update(groups[entry.removeprefix("group:")])
        else:
            names.add(entry)
    return names


def is_listed(name: str, allowed: set[str] | None) -> bool:
    """Whether `name` is one of `allowed` (None: anyone), spellings compared normalised."""
    person = normalize_identity(name)
    if not person:
        return False
    return allowed is None or person in {normalize_identity(n) for n in allowed}
