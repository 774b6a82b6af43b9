"""Error codes the kernel raises, and the generic ones every app shares.

A partner branches on `code`, so each code is a member of one `StrEnum` (values never change):
these common ones here, each app's own in `<app>/error_codes.py`, declared on its AppConfig
(`error_codes`) so the platform can list them all without importing an app. An app that means
one of these uses the member here rather than declaring the same string again.
"""

from enum import StrEnum


class CommonErrorCode(StrEnum):
    # The DomainError family's defaults (tradeassure.core.errors).
    DOMAIN_ERROR = "domain_error"
    VALIDATION_FAILED = "validation_failed"
    NOT_ALLOWED = "not_allowed"
    NOT_FOUND = "not_found"
    INVALID_TRANSITION = "invalid_transition"
    CONFLICT = "conflict"
    UNPROCESSABLE = "unprocessable"
    # Uploads refused by tradeassure.core.uploads.
    UPLOAD_NO_NAME = "upload_no_name"
    UPLOAD_BAD_NAME = "upload_bad_name"
    UPLOAD_EMPTY = "upload_empty"
    UPLOAD_TOO_LARGE = "upload_too_large"
    UPLOAD_MARKUP_REFUSED = "upload_markup_refused"
    UPLOAD_WRONG_TYPE = "upload_wrong_type"
    UPLOAD_EXTENSION_MISMATCH = "upload_extension_mismatch"
