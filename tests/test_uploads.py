"""tradeassure.core.uploads: files are accepted by content and size, stored privately, served on purpose."""

import io
from pathlib import Path

import pytest
from django.core.files import File
from django.core.files.uploadedfile import SimpleUploadedFile

from tradeassure.core.errors import ValidationFailed
from tradeassure.core.uploads import IMAGE_KINDS, upload_check, upload_response, upload_store

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00"
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 32
SVG = (
    b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
)
HTML = b"<!doctype html><html><body><script>alert(1)</script></body></html>"


def _stored_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_a_pdf_is_stored_privately_under_a_random_name(settings):
    # given a valid PDF named by the user
    upload = SimpleUploadedFile("licence.pdf", PDF, content_type="application/pdf")

    # when it is stored twice
    first = upload_store(file=upload, folder="verification")
    second = upload_store(file=SimpleUploadedFile("licence.pdf", PDF), folder="verification")

    # then both land under PRIVATE_MEDIA_ROOT, outside MEDIA_ROOT, with random names
    private_root = Path(settings.PRIVATE_MEDIA_ROOT).resolve()
    for stored in (first, second):
        path = (private_root / stored.name).resolve()
        assert path.is_file()
        assert path.read_bytes() == PDF
        assert private_root in path.parents
        assert Path(settings.MEDIA_ROOT).resolve() not in path.parents
        assert "licence" not in stored.name
        assert stored.name.startswith("verification/") and stored.name.endswith(".pdf")
        assert stored.content_type == "application/pdf"
        assert stored.original_name == "licence.pdf"
        assert stored.size == len(PDF)
    assert first.name != second.name
    assert _stored_files(Path(settings.MEDIA_ROOT)) == []


@pytest.mark.parametrize(
    ("name", "content", "code"),
    [
        ("scan.pdf", b"MZ\x90\x00 this is an executable" * 4, "upload_wrong_type"),
        ("photo.png", b"GIF89a\x01\x00\x01\x00" + b"\x00" * 20, "upload_wrong_type"),
        ("licence.pdf", PNG, "upload_extension_mismatch"),
        ("logo.svg", SVG, "upload_markup_refused"),
        ("logo.png", SVG, "upload_markup_refused"),
        ("page.html", HTML, "upload_markup_refused"),
        ("page.pdf", HTML, "upload_markup_refused"),
        ("empty.pdf", b"", "upload_empty"),
    ],
)
def test_bad_content_is_refused_and_nothing_is_stored(settings, name, content, code):
    # given a file whose content is not what the name claims, or is markup, or empty
    upload = SimpleUploadedFile(name, content, content_type="application/pdf")

    # when it is stored
    with pytest.raises(ValidationFailed) as refused:
        upload_store(file=upload, folder="evidence")

    # then it is refused with a stable code and a message for the form, and nothing was written
    assert refused.value.code == code
    assert refused.value.fields["file"]
    assert _stored_files(Path(settings.PRIVATE_MEDIA_ROOT)) == []


def test_an_oversized_file_is_refused(settings):
    # given a limit of 1 KiB and a valid PDF just over it
    settings.UPLOAD_MAX_BYTES = 1024
    upload = SimpleUploadedFile("big.pdf", PDF + b"0" * 1024)

    # when it is stored
    with pytest.raises(ValidationFailed) as refused:
        upload_store(file=upload, folder="evidence")

    # then it is refused for its size and nothing was written
    assert refused.value.code == "upload_too_large"
    assert "1,024" in refused.value.message
    assert _stored_files(Path(settings.PRIVATE_MEDIA_ROOT)) == []


@pytest.mark.parametrize("name", ["../../etc/passwd.pdf", "..\\boot.pdf", "a/b.pdf", ".hidden.pdf"])
def test_a_path_in_the_file_name_is_refused(settings, name):
    # given a file object whose name carries a folder path (not sanitised by an upload handler)
    upload = File(io.BytesIO(PDF), name=name)

    # when it is stored
    with pytest.raises(ValidationFailed) as refused:
        upload_store(file=upload, folder="evidence")

    # then it is refused and nothing was written
    assert refused.value.code == "upload_bad_name"
    assert _stored_files(Path(settings.PRIVATE_MEDIA_ROOT)) == []


def test_allowed_kinds_are_the_callers_choice():
    # given a caller that accepts images only
    pdf = SimpleUploadedFile("doc.pdf", PDF)
    jpeg = SimpleUploadedFile("photo.JPEG", JPEG)

    # when a PDF and a JPEG are checked, then only the JPEG passes
    with pytest.raises(ValidationFailed):
        upload_check(file=pdf, allowed_kinds=IMAGE_KINDS)
    assert upload_check(file=jpeg, allowed_kinds=IMAGE_KINDS) == "jpg"


def test_a_stored_document_downloads_as_an_attachment_with_nosniff():
    # given a stored PDF
    stored = upload_store(file=SimpleUploadedFile("licence.pdf", PDF), folder="verification")

    # when it is served
    response = upload_response(
        name=stored.name, download_name="licence.pdf", content_type=stored.content_type
    )

    # then it downloads, is not sniffed and is the same bytes
    assert response["Content-Disposition"].startswith("attachment")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Type"] == "application/pdf"
    assert b"".join(response.streaming_content) == PDF


def test_a_stored_image_is_shown_inline():
    stored = upload_store(
        file=SimpleUploadedFile("p.png", PNG), folder="products", allowed_kinds=IMAGE_KINDS
    )
    response = upload_response(name=stored.name, download_name="p.png", content_type="image/png")
    assert response["Content-Disposition"].startswith("inline")
    assert response["X-Content-Type-Options"] == "nosniff"
    response.file_to_stream.close()


@pytest.mark.parametrize("name", ["", "missing/none.pdf", "../../../etc/passwd"])
def test_a_missing_or_escaping_name_is_a_404(name):
    from django.http import Http404

    with pytest.raises(Http404):
        upload_response(name=name, download_name="x.pdf", content_type="application/pdf")
