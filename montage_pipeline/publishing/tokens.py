"""OAuth tokens encrypted at rest (Fernet), and scrubbing secrets out of text before it is stored or logged.

The key comes from the environment (`MONTAGE_TOKEN_KEYS`: one or more Fernet keys, comma-separated,
newest first) so the database alone never yields a usable token. Several keys allow rotation: new
ciphertexts use the first key, old ones still decrypt with the others.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenKeyError(RuntimeError):
    """The token key is missing or cannot decrypt a stored token (the message never holds a secret)."""


class TokenCipher:
    def __init__(self, keys: str) -> None:
        parts = [k.strip() for k in keys.split(",") if k.strip()]
        if not parts:
            raise TokenKeyError("MONTAGE_TOKEN_KEYS is not set: social posting needs it to read OAuth tokens")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in parts])
        except ValueError as exc:
            raise TokenKeyError("MONTAGE_TOKEN_KEYS holds a value that is not a Fernet key") from exc

    def encrypt(self, token: str) -> bytes:
        return self._fernet.encrypt(token.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        try:
            return self._fernet.decrypt(ciphertext).decode()
        except InvalidToken:
            raise TokenKeyError("a stored token does not decrypt with MONTAGE_TOKEN_KEYS") from None


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """`text` with every secret (and any bearer/access_token value) replaced, for errors and logs."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    text = re.sub(r"(?i)(bearer\s+)[\w\-.~+/=]+", r"\1***", text)
    text = re.sub(r"(?i)((?:access|refresh)_token['\"]?\s*[:=]\s*['\"]?)[^&\s\"',}]+", r"\1***", text)
    return text


# Libraries that log request headers, bodies or URLs (with tokens in them) at DEBUG: requests-oauthlib
# prints "Adding token {...}", urllib3 prints URLs whose query may carry access_token=. They are held at
# WARNING whatever the root level, and what they do log is scrubbed.
TOKEN_LEAKING_LOGGERS = ("requests_oauthlib", "oauthlib", "urllib3", "googleapiclient", "httplib2")


class ScrubFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = scrub(record.getMessage(), ()), ()
        return True


def quiet_token_loggers() -> None:
    for name in TOKEN_LEAKING_LOGGERS:
        logger = logging.getLogger(name)
        logger.setLevel(max(logger.level, logging.WARNING))
        if not any(isinstance(f, ScrubFilter) for f in logger.filters):
            logger.addFilter(ScrubFilter())
