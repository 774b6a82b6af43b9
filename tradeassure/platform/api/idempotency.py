"""`Idempotency-Key` on every POST: run once, replay the stored response for 24 hours.

- The first request with a key claims it: a row inserted (and committed) before the view runs,
  unique per (caller, key). A second request while the first runs hits the unique constraint,
  finds the row in flight, and gets 409 `idempotency_request_in_flight`.
- When the first request finishes, its response (status, body, a few headers) is stored; the
  same key with the same method, path and body replays it, with `Idempotent-Replayed: true`.
- The same key with another method, path or body gets 422 `idempotency_key_reused`. A JSON body
  is compared parsed (canonical JSON: key order and white space do not matter, a number never
  equals a string); any other body byte for byte.
- A response that says the request never started (400 invalid input, 5xx) is not stored: the
  claim is released so the caller can retry with the same key.
"""

import hashlib
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, cast

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.http import HttpResponse
from django.utils.datastructures import MultiValueDict
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.models import ApiKey
from tradeassure.core import clock
from tradeassure.core.errors import Conflict, Unprocessable, ValidationFailed
from tradeassure.platform.api.errors import PROBLEM_CONTENT_TYPE, problem
from tradeassure.platform.error_codes import PlatformErrorCode
from tradeassure.platform.models import IdempotencyRecord

logger = logging.getLogger(__name__)

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_PATTERN = re.compile(r"^[\x21-\x7e]{1,255}$")
STORED_HEADERS = ("Content-Type", "Location", "ETag")
# Responses meaning "nothing was done": not kept, so the same key may be used again.
NOT_STORED_STATUSES = {400, 401, 429}


@dataclass
class Replay(Exception):
    """Raised from the view's `initial` to answer with the stored response instead of running."""

    response: HttpResponse


def caller_identity(request: Request) -> str:
    if isinstance(request.auth, ApiKey):
        return f"key:{request.auth.pk}"
    return f"user:{request.user.pk}"


def canonical_json(body: bytes) -> bytes | None:
    """The body as canonical JSON (sorted keys, no white space, numbers as exact decimals
    kept apart from strings), or None when it is not JSON (the parser then answers 400)."""
    try:
        parsed = json.loads(body, parse_float=Decimal, parse_int=Decimal)
    except (ValueError, RecursionError):
        return None

    def tag(value):
        # Strings and numbers are prefixed apart, so "1" and 1 never compare equal.
        if isinstance(value, Decimal):
            return "n:" + (format(value.normalize(), "f") if value.is_finite() else str(value))
        if isinstance(value, str):
            return "s:" + value
        if isinstance(value, dict):
            return {key: tag(item) for key, item in value.items()}
        if isinstance(value, list):
            return [tag(item) for item in value]
        return value

    try:
        return json.dumps(tag(parsed), sort_keys=True, separators=(",", ":")).encode()
    except RecursionError:
        return None


def request_fingerprint(request: Request) -> str:
    """SHA-256 over method, path and body (for multipart: fields and file contents)."""
    digest = hashlib.sha256()
    digest.update(f"{request.method} {request.path}\n".encode())
    content_type = request.content_type or ""
    if content_type.startswith("multipart/"):
        # DRF parses multipart into a QueryDict with the files merged in; the stubs say dict.
        data = cast(MultiValueDict[str, str | UploadedFile], request.data)
        for name in sorted(data.keys()):
            for value in data.getlist(name):
                digest.update(f"{name}=".encode())
                if isinstance(value, UploadedFile):  # the only file type Django's handlers make
                    digest.update(f"file:{value.name}:{value.size}:".encode())
                    for chunk in value.chunks():
                        digest.update(chunk)
                    value.seek(0)
                else:
                    digest.update(str(value).encode())
                digest.update(b"\n")
    else:
        body = request._request.body  # RequestDataTooBig over the limit: a 413 problem
        canonical = canonical_json(body) if "json" in content_type else None
        digest.update(b"json:" + canonical if canonical is not None else b"raw:" + body)
    return digest.hexdigest()


def idempotency_claim(request: Request) -> IdempotencyRecord:
    """Claim the request's key, or raise Replay / Conflict (409) / Unprocessable (422)."""
    key = request.headers.get(HEADER, "")
    if not key:
        raise ValidationFailed(
            f"Send an `{HEADER}` header (a unique string per operation, e.g. a UUID) with every POST.",
            code=PlatformErrorCode.IDEMPOTENCY_KEY_REQUIRED,
            fields={HEADER: ["This header is required on POST."]},
        )
    if not KEY_PATTERN.match(key):
        raise ValidationFailed(
            f"`{HEADER}` must be 1 to 255 visible ASCII characters.",
            code=PlatformErrorCode.IDEMPOTENCY_KEY_INVALID,
            fields={HEADER: ["1 to 255 visible ASCII characters."]},
        )
    caller = caller_identity(request)
    fingerprint = request_fingerprint(request)
    # Every handler's request class sets the method; only a bare HttpRequest() leaves it None.
    method = cast(str, request.method)
    for _ in range(2):
        now = clock.now()
        try:
            return _claim_insert(
                caller=caller,
                key=key,
                method=method,
                path=request.path[:500],
                request_hash=fingerprint,
                created_at=now,
                expires_at=now + settings.IDEMPOTENCY_KEY_TTL,
            )
        except IntegrityError:
            pass
        existing = IdempotencyRecord.objects.filter(caller=caller, key=key).first()
        if existing is None:
            continue  # released between our insert and our read: try to claim again
        if existing.expires_at <= now:
            IdempotencyRecord.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
            continue
        if existing.request_hash != fingerprint:
            raise Unprocessable(
                f"This `{HEADER}` was already used for a different request "
                f"({existing.method} {existing.path} with another body). Use a new key.",
                code=PlatformErrorCode.IDEMPOTENCY_KEY_REUSED,
            )
        if existing.state == IdempotencyRecord.State.IN_FLIGHT:
            raise Conflict(
                f"A request with this `{HEADER}` is still being processed; retry in a moment.",
                code=PlatformErrorCode.IDEMPOTENCY_REQUEST_IN_FLIGHT,
            )
        raise Replay(_replay_response(existing))
    raise Conflict(
        f"A request with this `{HEADER}` is still being processed; retry in a moment.",
        code=PlatformErrorCode.IDEMPOTENCY_REQUEST_IN_FLIGHT,
    )


def _claim_insert(**fields) -> IdempotencyRecord:
    """The claim's INSERT, committed at once. In autocommit (a request) it is its own
    transaction: no BEGIN/COMMIT around it, and a duplicate key fails alone. Inside a caller's
    transaction (tests, or a view wrapped in one) a savepoint keeps that failure from
    breaking the caller's transaction."""
    if transaction.get_connection().in_atomic_block:
        with transaction.atomic():
            return IdempotencyRecord.objects.create(**fields)
    return IdempotencyRecord.objects.create(**fields)


def _replay_response(record: IdempotencyRecord) -> HttpResponse:
    headers = dict(record.response_headers)
    response = HttpResponse(
        bytes(record.response_body),
        status=record.response_status,
        content_type=headers.pop("Content-Type", "application/json"),
    )
    for name, value in headers.items():
        response[name] = value
    response[REPLAYED_HEADER] = "true"
    return response


def idempotency_complete(record: IdempotencyRecord, response: HttpResponse) -> None:
    """Store the finished response, or release the claim when the request changed nothing."""
    if response.status_code >= 500 or response.status_code in NOT_STORED_STATUSES:
        idempotency_release(record)
        return
    if hasattr(response, "render") and not getattr(response, "is_rendered", True):
        response.render()
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        state=IdempotencyRecord.State.COMPLETED,
        response_status=response.status_code,
        response_headers={name: response[name] for name in STORED_HEADERS if name in response},
        response_body=bytes(response.content),
    )


def idempotent_transaction(
    view: Any, request: Request, operation: Callable[[], Response]
) -> HttpResponse:
    """Run `operation` and store its answer for the request's `Idempotency-Key` in ONE
    transaction: what it wrote and the answer a retry replays commit together (no moment where
    its rows exist while the key still reads "in flight"), with one commit instead of two. The
    operation calls services that join the caller's transaction (no savepoint of their own).

    The view's `finalize_response` (IdempotentMixin) stores the answer inside the block; if the
    block or its commit fails, nothing of it is kept and the claim is handled as for any error
    (released, or the error answer stored)."""
    record = getattr(request, "idempotency_record", None)
    try:
        with transaction.atomic():
            return view.finalize_response(request, operation())
    except BaseException:
        request.idempotency_record = record  # type: ignore[attr-defined]
        raise


def idempotency_release(record: IdempotencyRecord) -> None:
    IdempotencyRecord.objects.filter(pk=record.pk, state=IdempotencyRecord.State.IN_FLIGHT).delete()


class IdempotentMixin:
    """Mixed into every API view: POSTs go through the claim / store / replay cycle."""

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)  # authentication, permissions, throttles first
        # Only where POST is an operation: elsewhere dispatch answers 405, claiming nothing.
        if request.method == "POST" and hasattr(self, "post"):
            request.idempotency_record = idempotency_claim(request)

    def handle_exception(self, exc):
        if isinstance(exc, Replay):
            return exc.response
        try:
            return super().handle_exception(exc)
        except Exception:
            if settings.DEBUG:
                raise
            # Even a bug answers as problem+json; the claim was released, so a retry may succeed.
            logger.exception("Unhandled error on %s %s", self.request.method, self.request.path)
            return Response(
                problem(
                    status=500,
                    code=PlatformErrorCode.INTERNAL_ERROR,
                    title="Something went wrong on our side.",
                    detail="The error was logged and nothing was stored for your "
                    "Idempotency-Key: you may retry with the same key.",
                    instance=self.request.path,
                ),
                status=500,
                content_type=PROBLEM_CONTENT_TYPE,
            )

    def raise_uncaught_exception(self, exc):
        record = getattr(self.request, "idempotency_record", None)
        if record is not None:
            idempotency_release(record)
            self.request.idempotency_record = None
        super().raise_uncaught_exception(exc)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        record = getattr(request, "idempotency_record", None)
        if record is not None:
            idempotency_complete(record, response)
            request.idempotency_record = None
        return response


def idempotency_purge_expired(*, batch_size: int = 5000) -> int:
    """Delete stored responses past their 24 hours (beat, hourly); returns how many went."""
    expired = IdempotencyRecord.objects.filter(expires_at__lte=clock.now()).values_list(
        "pk", flat=True
    )[:batch_size]
    deleted, _ = IdempotencyRecord.objects.filter(pk__in=list(expired)).delete()
    return deleted
