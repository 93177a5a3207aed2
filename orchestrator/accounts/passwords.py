"""Password hashing with argon2id (argon2-cffi, the library's own tuned defaults)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from orchestrator.errors import InvalidInputError

MIN_LENGTH = 10
MAX_LENGTH = 256  # argon2 takes any length; a cap keeps a megabyte "password" cheap to refuse
_hasher = PasswordHasher()
# Verified when the account does not exist, so that both answers take as long.
_DUMMY = _hasher.hash("not a password of anyone")

TOO_SHORT = (
    f"Das Passwort muss mindestens {MIN_LENGTH} Zeichen lang sein. / "
    f"The password must be at least {MIN_LENGTH} characters long."
)
TOO_LONG = (
    f"Das Passwort darf höchstens {MAX_LENGTH} Zeichen lang sein. / "
    f"The password may be at most {MAX_LENGTH} characters long."
)


def check_new(password: str) -> str:
    """The password if it may be set; else an error naming the field."""
    if len(password) < MIN_LENGTH:
        raise InvalidInputError(TOO_SHORT, details={"field": "password"})
    if len(password) > MAX_LENGTH:
        raise InvalidInputError(TOO_LONG, details={"field": "password"})
    return password


def hash_password(password: str) -> str:
    return _hasher.hash(check_new(password))


def verify(stored: str | None, password: str) -> bool:
    """Whether `password` matches; a missing hash costs the same time and is False."""
    if len(password) > MAX_LENGTH:
        return False
    try:
        return _hasher.verify(stored or _DUMMY, password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    return _hasher.check_needs_rehash(stored)
