"""Domain errors: what a service raises when a rule of the product refuses an action.

Services raise these; views show them as form errors or messages; the API's exception handler
(`tradeassure.platform.api.errors`) maps each to its HTTP status with a stable `code`: a member
of `CommonErrorCode` or of an app's own error code enum.
"""

from tradeassure.core.error_codes import CommonErrorCode


class DomainError(Exception):
    """A rule of the product refused an action. Nothing was changed."""

    status = 400
    code: str = CommonErrorCode.DOMAIN_ERROR
    title = "The request breaks a rule of the product."

    def __init__(self, message: str, *, code: str | None = None, fields: dict | None = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.fields = fields or {}


class ValidationFailed(DomainError):
    status = 400
    code: str = CommonErrorCode.VALIDATION_FAILED
    title = "Some input is not valid."


class NotAllowed(DomainError):
    status = 403
    code: str = CommonErrorCode.NOT_ALLOWED
    title = "You may not do this."


class NotFound(DomainError):
    status = 404
    code: str = CommonErrorCode.NOT_FOUND
    title = "Not found."


class InvalidTransition(DomainError):
    status = 409
    code: str = CommonErrorCode.INVALID_TRANSITION
    title = "This action is not possible in the current state."


class Conflict(DomainError):
    status = 409
    code: str = CommonErrorCode.CONFLICT
    title = "The request conflicts with the current state."


class Unprocessable(DomainError):
    status = 422
    code: str = CommonErrorCode.UNPROCESSABLE
    title = "The request cannot be processed."
