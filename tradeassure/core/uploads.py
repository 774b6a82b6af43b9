"""Private uploads: checked by content and size, stored under a random name, served only on purpose.

Every app that accepts files (verification documents, shipping documents, dispute evidence,
product images) goes through here:

- `upload_store(file=, folder=, allowed_kinds=)` checks the file and stores it under
  `settings.PRIVATE_MEDIA_ROOT/<folder>/<random>.<ext>` — a folder with no URL — and returns a
  `StoredUpload` whose `name` the caller keeps in a CharField.
- `upload_response(name=, download_name=, content_type=)` streams a stored file back. The calling
  view decides who may see it first and answers 404 to everyone else.

Checks, all before anything is written: the kind is decided by the file's magic bytes (the
`filetype` package), never by its name or the browser's Content-Type; the name's extension must
match that kind; SVG, HTML and XML are always refused (they can carry scripts); names with path
components are refused; empty files and files over `settings.UPLOAD_MAX_BYTES` are refused.
"""

import functools
import re
import uuid
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

import filetype
from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files import File
from django.core.files.storage import FileSystemStorage
from django.http import FileResponse, Http404

from tradeassure.core.error_codes import CommonErrorCode
from tradeassure.core.errors import ValidationFailed

# Kinds a caller may allow, as `filetype` names them, with the extensions a name may carry.
KIND_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "pdf": ("pdf",),
    "png": ("png",),
    "jpg": ("jpg", "jpeg"),
    "webp": ("webp",),
}
KIND_CONTENT_TYPES: dict[str, str] = {
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "webp": "image/webp",
}
IMAGE_KINDS = frozenset({"png", "jpg", "webp"})
DOCUMENT_KINDS = frozenset({"pdf", "png", "jpg", "webp"})

# Markup that browsers may execute; refused whatever the caller allows.
_MARKUP_SNIFF = re.compile(rb"<\s*(svg|html|!doctype|script|\?xml|body|iframe)", re.IGNORECASE)
_SAFE_FOLDER = re.compile(r"^[a-z0-9_-]+(/[a-z0-9_-]+)*$")
_SNIFF_BYTES = 8192


@dataclass(frozen=True)
class StoredUpload:
    """What a caller keeps about a stored file (the name is random and relative to the root)."""

    name: str
    original_name: str
    content_type: str
    size: int
    kind: str


def _private_storage() -> FileSystemStorage:
    # Built per call so tests (and deployments) that move PRIVATE_MEDIA_ROOT are honoured.
    return FileSystemStorage(location=settings.PRIVATE_MEDIA_ROOT, base_url=None)


def _refuse(message: str, code: CommonErrorCode) -> ValidationFailed:
    return ValidationFailed(message, code=code, fields={"file": [message]})


def upload_check(
    *, file: File, allowed_kinds: Iterable[str] = DOCUMENT_KINDS, max_bytes: int | None = None
) -> str:
    """Return the file's kind (e.g. "pdf") or raise ValidationFailed saying what is wrong."""
    allowed = set(allowed_kinds)
    unknown = allowed - set(KIND_EXTENSIONS)
    if unknown:
        raise ValueError(f"Unsupported upload kinds: {sorted(unknown)}")
    limit = max_bytes if max_bytes is not None else settings.UPLOAD_MAX_BYTES
    raw_name = str(getattr(file, "name", "") or "")
    if not raw_name.strip():
        raise _refuse("The file has no name.", CommonErrorCode.UPLOAD_NO_NAME)
    if "/" in raw_name or "\\" in raw_name or "\x00" in raw_name or raw_name.startswith("."):
        raise _refuse(
            "The file name must not contain a folder path.", CommonErrorCode.UPLOAD_BAD_NAME
        )
    size = file.size
    if not size:
        raise _refuse("The file is empty.", CommonErrorCode.UPLOAD_EMPTY)
    if size > limit:
        raise _refuse(
            f"The file is too large ({size:,} bytes); the limit is {limit:,} bytes.",
            CommonErrorCode.UPLOAD_TOO_LARGE,
        )
    file.seek(0)
    head = file.read(_SNIFF_BYTES)
    file.seek(0)
    if isinstance(head, str):
        head = head.encode()
    readable = ", ".join(sorted({ext.upper() for k in allowed for ext in KIND_EXTENSIONS[k][:1]}))
    if _MARKUP_SNIFF.search(head[:1024]) or head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"<"):
        raise _refuse(
            f"SVG, HTML and other markup files are not accepted. Upload {readable}.",
            CommonErrorCode.UPLOAD_MARKUP_REFUSED,
        )
    guessed = filetype.guess(head)
    kind = guessed.extension if guessed else None
    if kind not in allowed:
        raise _refuse(
            f"The file's content is not an accepted type. Upload {readable}.",
            CommonErrorCode.UPLOAD_WRONG_TYPE,
        )
    extension = raw_name.rsplit(".", 1)[-1].lower() if "." in raw_name else ""
    if extension not in KIND_EXTENSIONS[kind]:
        raise _refuse(
            f"The file name ends in '.{extension}' but its content is {kind.upper()}.",
            CommonErrorCode.UPLOAD_EXTENSION_MISMATCH,
        )
    return kind


def upload_store(
    *,
    file: File,
    folder: str,
    allowed_kinds: Iterable[str] = DOCUMENT_KINDS,
    max_bytes: int | None = None,
) -> StoredUpload:
    """Check the file, then store it privately under a random name (the user's name is kept aside)."""
    if not _SAFE_FOLDER.match(folder):
        raise ValueError(f"Unsafe upload folder: {folder!r}")
    kind = upload_check(file=file, allowed_kinds=allowed_kinds, max_bytes=max_bytes)
    target = f"{folder}/{uuid.uuid4().hex}.{KIND_EXTENSIONS[kind][0]}"
    file.seek(0)
    stored_name = _private_storage().save(target, file)
    return StoredUpload(
        name=stored_name,
        original_name=str(file.name)[:200],
        content_type=KIND_CONTENT_TYPES[kind],
        size=file.size,
        kind=kind,
    )


def uploads_store_all(
    *,
    files: Sequence[File],
    folder: str,
    max_files: int,
    too_many_code: str = CommonErrorCode.VALIDATION_FAILED,
    allowed_kinds: Iterable[str] = DOCUMENT_KINDS,
) -> list[StoredUpload]:
    """Check EVERY file first (so one bad file refuses them all, naming it under `files`), then
    store them; if storing one fails, the ones stored already are deleted again. The caller
    deletes them too if its transaction then fails (see the disputes' and orders' services)."""
    files = [file for file in files if file is not None]
    if len(files) > max_files:
        message = f"Attach at most {max_files} files at a time."
        raise ValidationFailed(message, code=too_many_code, fields={"files": [message]})
    for file in files:
        try:
            upload_check(file=file, allowed_kinds=allowed_kinds)
        except ValidationFailed as error:
            message = f"{_display_name(file)}: {error.message}"
            raise ValidationFailed(message, code=error.code, fields={"files": [message]}) from None
    stored: list[StoredUpload] = []
    try:
        for file in files:
            stored.append(upload_store(file=file, folder=folder, allowed_kinds=allowed_kinds))
    except Exception:
        for item in stored:
            upload_delete(name=item.name)
        raise
    pending = _pending_uploads.get()
    if pending is not None:
        pending.extend(item.name for item in stored)
    return stored


def _display_name(file: File) -> str:
    name = str(getattr(file, "name", "") or "file")
    return name.replace("\\", "/").rsplit("/", 1)[-1][:80] or "file"


_pending_uploads: ContextVar[list[str] | None] = ContextVar("pending_uploads", default=None)
Params = ParamSpec("Params")
Result = TypeVar("Result")


def uploads_removed_on_error(service: Callable[Params, Result]) -> Callable[Params, Result]:
    """Files `uploads_store_all` stored inside a service that then fails (and rolls back) are
    deleted again."""

    @functools.wraps(service)
    def wrapper(*args: Params.args, **kwargs: Params.kwargs) -> Result:
        names: list[str] = []
        token = _pending_uploads.set(names)
        try:
            return service(*args, **kwargs)
        except BaseException:
            for name in names:
                upload_delete(name=name)
            raise
        finally:
            _pending_uploads.reset(token)

    return wrapper


def upload_delete(*, name: str) -> None:
    """Remove a stored file (call it from transaction.on_commit once its row is gone)."""
    try:
        _private_storage().delete(name)
    except SuspiciousFileOperation:
        return


def upload_response(*, name: str, download_name: str, content_type: str) -> FileResponse:
    """Stream a stored private file. The caller has already checked who is asking.

    Images are shown inline; everything else downloads. `nosniff` stops a browser from
    reinterpreting the bytes, and the sandbox CSP keeps even a hostile PDF from running script
    in our origin.
    """
    storage = _private_storage()
    try:
        if not name or not storage.exists(name):
            raise Http404("No such file.")
        handle = storage.open(name, "rb")
    except SuspiciousFileOperation as error:
        raise Http404("No such file.") from error
    inline = content_type in {KIND_CONTENT_TYPES[k] for k in IMAGE_KINDS}
    safe_download_name = re.sub(r"[^\w.\- ]", "_", download_name)[:150] or "file"
    response = FileResponse(
        handle,
        as_attachment=not inline,
        filename=safe_download_name,
        content_type=content_type,
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = "default-src 'none'; sandbox"
    response["Cache-Control"] = "private, no-store"
    return response
