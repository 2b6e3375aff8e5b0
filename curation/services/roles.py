"""The role check each service makes before writing: views check too, services do not trust them."""

from __future__ import annotations

from curation.services.errors import NotAllowed
from skinplatform.accounts.roles import has_any_role


def require_role(user, roles: frozenset[str], what: str) -> None:
    if not has_any_role(user, roles):
        raise NotAllowed("forbidden", f"Your role does not allow you to {what}.")
