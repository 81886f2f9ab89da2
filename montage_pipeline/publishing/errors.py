"""How a post attempt can end short of success: try again later, or stop with a clear state."""

from __future__ import annotations


class PostError(Exception):
    """Base class; messages are scrubbed of tokens before they reach one of these."""


class TransientPostError(PostError):
    """The platform or the network failed in a way a later retry can get past (5xx, 429, dropped)."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class PermanentPostError(PostError):
    """Retrying cannot help (quota spent, upload limit, account disconnected, video refused)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class TokenExpiredError(PostError):
    """The platform refused the access token: refresh it and repeat the call once."""
