"""Domain errors. The API turns each into an HTTP status with the reason in words."""


class DomainError(Exception):
    status_code = 409
    code = "conflict"

    def __init__(self, message: str, *, field: str | None = None, extra: dict | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.extra = extra or {}  # more for the client, e.g. the id of the release a duplicate matches


class InvalidInput(DomainError):
    """Input that breaks a rule (bad tag, unknown service): 400 naming the field."""

    status_code = 400
    code = "invalid"


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class TransitionNotAllowed(DomainError):
    status_code = 409
    code = "transition_not_allowed"


class ActionBlocked(DomainError):
    """A legal transition that a rule holds back right now: missing approvals, a freeze window."""

    status_code = 409
    code = "blocked"


class DuplicateRelease(DomainError):
    """The same version is already on its way to that environment: 409 naming the open release."""

    status_code = 409
    code = "duplicate_release"
