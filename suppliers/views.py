"""Browser pages: the public directory and profiles, and the supplier dashboard.

Views parse input with forms, call selectors and services, and turn DomainError into form errors
or messages. Nothing here decides a rule.
"""

from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from suppliers import selectors, services
from suppliers.forms import (
    TA_STATUS_BADGE,
    DirectoryFilterForm,
    DocumentUploadForm,
    ProductForm,
    SupplierProfileForm,
)
from tradeassure.core.errors import DomainError
from tradeassure.core.uploads import upload_response


def _add_domain_error(form, error: DomainError) -> None:
    placed = False
    for field, problems in (error.fields or {}).items():
        if field in form.fields:
            for problem in problems:
                form.add_error(field, problem)
            placed = True
    if not placed:
        form.add_error(None, error.message)


def supplier_staff_required(view):
    """Supplier staff only; passes their Supplier (redirects to the profile form if none yet)."""

    @wraps(view)
    @login_required
    def wrapper(request, *args, **kwargs):
        if not request.user.is_supplier_staff:
            raise PermissionDenied("The supplier dashboard is for supplier staff.")
        supplier = selectors.supplier_for_user(request.user)
        if supplier is None:
            return redirect("suppliers:dashboard")
        return view(request, supplier, *args, **kwargs)

    return wrapper


# --- Public --------------------------------------------------------------------------------------


@require_GET
def directory(request):
    form = DirectoryFilterForm(request.GET or None)
    filters = form.cleaned_data if form.is_valid() else {}
    suppliers = selectors.supplier_directory(
        query=(filters.get("q") or "").strip(),
        country=filters.get("country") or "",
        category=filters["category"].slug if filters.get("category") else "",
        trade_assurance=filters.get("trade_assurance") or "",
    )
    page = Paginator(suppliers, selectors.DIRECTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    return render(
        request,
        "suppliers/directory.html",
        {
            "form": form,
            "page": page,
            "countries": selectors.directory_countries(),
            "badges": TA_STATUS_BADGE,
        },
    )


@require_GET
def profile(request, pk: int):
    supplier = selectors.supplier_public(pk=pk)
    return render(
        request,
        "suppliers/profile.html",
        {
            "supplier": supplier,
            "products": selectors.supplier_public_products(supplier=supplier),
            "ratings": selectors.supplier_recent_ratings(supplier=supplier),
            "rating_distribution": selectors.supplier_rating_distribution(supplier=supplier),
            "badges": TA_STATUS_BADGE,
            "limit_left_usd": selectors.supplier_limit_left_usd(supplier=supplier),
            "refusal": selectors.supplier_refusal_message(supplier=supplier),
        },
    )


@require_GET
def product_detail(request, pk: int):
    product = selectors.product_public(pk=pk)
    return render(
        request,
        "suppliers/product_detail.html",
        {"product": product, "supplier": product.supplier, "badges": TA_STATUS_BADGE},
    )


@require_GET
def product_image(request, pk: int):
    product = selectors.product_image_visible(user=request.user, pk=pk)
    return upload_response(
        name=product.image_name,
        download_name=f"product-{product.pk}",
        content_type=product.image_content_type,
    )


# --- Supplier dashboard ------------------------------------------------------------------------


@login_required
def dashboard(request):
    if not request.user.is_supplier_staff:
        raise PermissionDenied("The supplier dashboard is for supplier staff.")
    supplier = selectors.supplier_for_user(request.user)
    if supplier is None:
        return _profile_create(request)
    application = selectors.supplier_latest_application(supplier=supplier)
    exposure = selectors.supplier_open_exposure_usd(supplier=supplier)
    available = max(supplier.ta_limit_usd - exposure, 0)
    return render(
        request,
        "suppliers/dashboard.html",
        {
            "supplier": supplier,
            "checks": selectors.supplier_eligibility_checks(supplier=supplier),
            "application": application,
            "exposure": exposure,
            "available": available,
            "products": selectors.supplier_products_for_staff(supplier=supplier),
            "documents": selectors.supplier_documents(supplier=supplier),
            "history": selectors.supplier_status_history(supplier=supplier),
            "upload_form": DocumentUploadForm(),
            "badges": TA_STATUS_BADGE,
            "can_apply": supplier.ta_status in ("none", "rejected"),
        },
    )


def _profile_create(request):
    """First visit of a supplier who signed up: the company profile creates the Supplier row."""
    initial = {
        "legal_name": request.user.organisation.name,
        "country": request.user.organisation.country,
    }
    form = SupplierProfileForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.supplier_profile_create(actor=request.user, **form.cleaned_data)
        except DomainError as error:
            _add_domain_error(form, error)
        else:
            messages.success(request, "Company profile saved. Next: upload verification documents.")
            return redirect("suppliers:dashboard")
    return render(request, "suppliers/profile_form.html", {"form": form, "creating": True})


@supplier_staff_required
def profile_edit(request, supplier):
    form = SupplierProfileForm(
        request.POST or None, initial=SupplierProfileForm.initial_for(supplier)
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.supplier_profile_update(
                actor=request.user, supplier=supplier, **form.cleaned_data
            )
        except DomainError as error:
            _add_domain_error(form, error)
        else:
            messages.success(request, "Company profile saved.")
            return redirect("suppliers:dashboard")
    return render(request, "suppliers/profile_form.html", {"form": form, "creating": False})


@require_POST
@supplier_staff_required
def apply_for_trade_assurance(request, supplier):
    try:
        services.supplier_apply_for_trade_assurance(actor=request.user, supplier=supplier)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(
            request, "Application sent. Vetting staff will review it; you will be notified."
        )
    return redirect("suppliers:dashboard")


@supplier_staff_required
def product_new(request, supplier):
    form = ProductForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.product_create(actor=request.user, supplier=supplier, **form.cleaned_data)
        except DomainError as error:
            _add_domain_error(form, error)
        else:
            messages.success(request, "Product added.")
            return redirect("suppliers:dashboard")
    return render(request, "suppliers/product_form.html", {"form": form, "product": None})


@supplier_staff_required
def product_edit(request, supplier, pk: int):
    product = selectors.supplier_product_for_staff(user=request.user, pk=pk)
    form = ProductForm(
        request.POST or None, request.FILES or None, initial=ProductForm.initial_for(product)
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.product_update(actor=request.user, product=product, **form.cleaned_data)
        except DomainError as error:
            _add_domain_error(form, error)
        else:
            messages.success(request, "Product saved.")
            return redirect("suppliers:dashboard")
    return render(request, "suppliers/product_form.html", {"form": form, "product": product})


@require_POST
@supplier_staff_required
def product_toggle(request, supplier, pk: int):
    product = selectors.supplier_product_for_staff(user=request.user, pk=pk)
    make_active = request.POST.get("active") == "1"
    services.product_set_active(actor=request.user, product=product, is_active=make_active)
    messages.success(request, f"{product.name} is {'listed' if make_active else 'unlisted'}.")
    return redirect("suppliers:dashboard")


@require_POST
@supplier_staff_required
def document_upload(request, supplier):
    form = DocumentUploadForm(request.POST, request.FILES)
    if form.is_valid():
        try:
            services.verification_document_upload(
                actor=request.user,
                supplier=supplier,
                kind=form.cleaned_data["kind"],
                file=form.cleaned_data["file"],
            )
        except DomainError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, "Document uploaded for verification.")
    else:
        for problems in form.errors.values():
            for problem in problems:
                messages.error(request, problem)
    return redirect("suppliers:dashboard")


@require_POST
@supplier_staff_required
def document_delete(request, supplier, pk: int):
    document = selectors.supplier_document_for_staff(user=request.user, pk=pk)
    try:
        services.verification_document_delete(actor=request.user, document=document)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"{document.original_name} removed.")
    return redirect("suppliers:dashboard")


@require_GET
def document_download(request, pk: int):
    document = selectors.verification_document_visible(user=request.user, pk=pk)
    return upload_response(
        name=document.file_name,
        download_name=document.original_name,
        content_type=document.content_type,
    )
