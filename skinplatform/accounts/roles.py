"""The four roles. A role is a Django group; superusers hold every role."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

EXPERT = "expert"
CURATOR = "curator"
ML_WORKER = "ml_worker"
ADMIN = "admin"
ALL_ROLES = (EXPERT, CURATOR, ML_WORKER, ADMIN)

# The two role sets every permission check uses, defined here once.
# Review pairs and questions, fix panels, read books and guidelines:
REVIEWERS = frozenset({EXPERT, CURATOR, ADMIN})
# Curate: upload, adjudicate, force a fix, revert, edit guidelines, releases, dashboard:
STAFF = frozenset({CURATOR, ADMIN})


def roles_of(user: AbstractBaseUser | AnonymousUser | None) -> frozenset[str]:
    """Roles held by ``user``, cached on the instance for the request's lifetime."""
    if user is None or not user.is_authenticated or not user.is_active:
        return frozenset()
    cached = getattr(user, "_role_cache", None)
    if cached is not None:
        return cached
    if user.is_superuser:
        roles = frozenset(ALL_ROLES)
    else:
        names = set(user.groups.filter(name__in=ALL_ROLES).values_list("name", flat=True))
        if ADMIN in names:
            names = set(ALL_ROLES)
        roles = frozenset(names)
    user._role_cache = roles
    return roles


def has_any_role(user, allowed: frozenset[str] | set[str] | tuple[str, ...]) -> bool:
    return bool(roles_of(user) & set(allowed))
