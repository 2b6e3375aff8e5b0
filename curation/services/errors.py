from __future__ import annotations


class ServiceError(Exception):
    """A refusal the caller can show as is. ``status`` is the HTTP status the API answers."""

    status = 400

    def __init__(
        self, code: str, message: str, *, status: int | None = None, extra: dict | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.extra = extra or {}
        if status is not None:
            self.status = status


class UploadRejected(ServiceError):
    pass


class Conflict(ServiceError):
    status = 409


class NotAllowed(ServiceError):
    status = 403
