from skinplatform.accounts.roles import roles_of


def roles(request) -> dict:
    return {"user_roles": roles_of(getattr(request, "user", None))}
