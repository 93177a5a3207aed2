"""Recipient addresses as they go on the wire: IDNA domains, UTF-8 local parts (RFC 6531/6532).

An address whose domain has non-ASCII letters (`anna@exämple.org`) needs nothing special: its
domain is written as IDNA (`xn--exmple-cua.org`) in the envelope and the To header. An address
whose part before the @ has non-ASCII letters (`gülşen.çelik@example.org`) can only be
delivered through a relay that offers SMTPUTF8, and its message carries its headers in UTF-8
(RFC 6532); where the relay does not offer it, the message fails with `NO_SMTPUTF8`.
"""

from __future__ import annotations

import re

import idna

NO_SMTPUTF8 = (
    "Der Mailserver bietet kein SMTPUTF8 an und kann deshalb nicht an eine Adresse mit "
    "Umlauten oder anderen Sonderzeichen vor dem @ zustellen. / The mail relay does not offer "
    "SMTPUTF8, so it cannot deliver to an address with non-ASCII characters before the @."
)
# RFC 5322 dot-atom, with RFC 6532's UTF-8 characters (no controls, no spaces) in atext.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~\-\u00a1-\U0010ffff]"
_LOCAL = re.compile(rf"{_ATEXT}+(?:\.{_ATEXT}+)*")
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _refused(address: str, why: str) -> ValueError:
    return ValueError(f"{why}: {address!r}")


def split(address: str) -> tuple[str, str]:
    """(local part, domain as IDNA); ValueError if it is not one plain address."""
    local, _, domain = address.strip().rpartition("@")
    if not _LOCAL.fullmatch(local) or any(c.isspace() for c in local):
        raise _refused(address, "keine gültige E-Mail-Adresse / not a valid email address")
    try:
        ascii_domain = domain if domain.isascii() else idna.encode(domain, uts46=True).decode()
    except idna.IDNAError as error:
        raise _refused(domain, f"ungültige Domain / invalid domain ({error})") from None
    if not _DOMAIN.fullmatch(ascii_domain):
        raise _refused(domain, "ungültige Domain / invalid domain")
    return local, ascii_domain.lower()


def wire_address(address: str) -> str:
    """The address as the envelope and the To header carry it: the domain as IDNA."""
    local, domain = split(address)
    return f"{local}@{domain}"


def needs_smtputf8(address: str) -> bool:
    """Whether delivery needs SMTPUTF8: non-ASCII before the @ (domains go as IDNA)."""
    return not address.rpartition("@")[0].isascii()
