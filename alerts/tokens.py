"""Access tokens of the floor view: one supervisor token, and one derived token per agent.

The supervisor token comes from ``--token`` or the ``AGENTLOAD_TOKEN`` environment variable, or is
generated at start. An agent's token is HMAC-SHA256 of the agent id keyed with the supervisor
token. So the server stores no per-agent secrets, and anyone holding the supervisor token can hand
an agent their link. An agent's token opens that agent's view and nothing else. Changing the
supervisor token revokes every agent token at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

TOKEN_ENV = "AGENTLOAD_TOKEN"
MIN_TOKEN_CHARS = 16


class TokenError(ValueError):
    """A supervisor token that cannot be used. Its message explains how to choose a good one."""


def resolve_token(option: str | None) -> tuple[str, bool]:
    """Return (supervisor token, whether it was generated here) from ``--token``, the env, or ``secrets``.

    ``option`` is the value of ``--token``, or ``None`` when it was not given.
    """
    token = option if option is not None else os.environ.get(TOKEN_ENV)
    if token is None or token == "":
        return secrets.token_urlsafe(32), True
    check_token(token)
    return token, False


def check_token(token: str) -> None:
    """Raise :class:`TokenError` unless ``token`` is long enough and fits in a header and a cookie."""
    # The token itself never goes into a message: messages end up in logs.
    if len(token) < MIN_TOKEN_CHARS:
        raise TokenError(
            f"the floor view token has {len(token)} characters, fewer than {MIN_TOKEN_CHARS}; choose a longer one, "
            "e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if not all(33 <= ord(char) <= 126 and char not in '",;\\' for char in token):
        raise TokenError(
            "the floor view token contains spaces, quotes, commas, semicolons, backslashes or non-ASCII characters; "
            "use letters, digits and - _ . ~ only, e.g. python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def agent_token(supervisor_token: str, agent_id: str) -> str:
    """Return the token that opens the agent view of ``agent_id`` (URL-safe base64, 43 characters)."""
    digest = hmac.new(supervisor_token.encode(), agent_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def tokens_match(presented: str | None, expected: str) -> bool:
    """Compare a presented token with the expected one in constant time."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())
