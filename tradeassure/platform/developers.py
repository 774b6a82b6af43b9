"""The Developers page: an organisation's API keys and webhook endpoints, the docs, a quick start."""

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import path, reverse
from django.views.decorators.http import require_POST

from accounts.models import User
from accounts.team import REFUSALS, Capability, team_allows
from tradeassure.core.errors import DomainError
from tradeassure.platform.api import selectors, services
from tradeassure.platform.models import WebhookAttempt

SHOWN_ONCE_SESSION_KEY = "developers_shown_once"


class ApiKeyForm(forms.Form):
    name = forms.CharField(
        max_length=100, help_text="What uses this key, e.g. “ERP sync (production)”."
    )
    team_role = forms.ChoiceField(
        label="Acts as",
        help_text="The key may do what a member with this role may do (see the role table).",
    )

    def __init__(self, *args, organisation_kind: str = "", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        roles = User.TEAM_ROLES_FOR_KIND.get(organisation_kind, (User.TeamRole.ADMIN,))
        field = self.fields["team_role"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(role, User.TeamRole(role).label) for role in roles]
        field.initial = roles[-1] if len(roles) > 1 else roles[0]


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(max_length=500, label="URL", assume_scheme="https")
    description = forms.CharField(max_length=200, required=False)
    topics = forms.CharField(
        max_length=1000,
        required=False,
        help_text="Comma-separated, e.g. “order.*, dispute.opened”. Empty: every event.",
    )

    def clean_topics(self) -> list[str]:
        return [topic.strip() for topic in self.cleaned_data["topics"].split(",") if topic.strip()]


def _integrator(request):
    if request.user.role not in services.INTEGRATING_ROLES or request.user.organisation_id is None:
        raise PermissionDenied("Staff work in the admin; the Developers page is for organisations.")
    if not team_allows(request.user, Capability.MANAGE_INTEGRATIONS):
        raise PermissionDenied(REFUSALS[Capability.MANAGE_INTEGRATIONS])
    return request.user


def _organisation_kind(user) -> str:
    return user.organisation.kind if user.organisation_id else ""


def _show_once(request, label: str, value: str) -> None:
    request.session[SHOWN_ONCE_SESSION_KEY] = {"label": label, "value": value}


@login_required
def developers_home(request):
    user = _integrator(request)
    endpoints = selectors.webhook_endpoints_for(user).order_by("-created_at", "-id")
    recent_deliveries = selectors.webhook_deliveries_for(user).order_by("-created_at", "-id")[:20]
    base_url = request.build_absolute_uri("/api/v1/").rstrip("/")
    return render(
        request,
        "developers/home.html",
        {
            "api_keys": selectors.api_keys_for(user),
            "endpoints": endpoints,
            "recent_deliveries": recent_deliveries,
            "key_form": ApiKeyForm(organisation_kind=_organisation_kind(user)),
            "endpoint_form": WebhookEndpointForm(),
            "shown_once": request.session.pop(SHOWN_ONCE_SESSION_KEY, None),
            "api_base_url": base_url,
            "docs_url": request.build_absolute_uri(reverse("api-docs")),
        },
    )


@login_required
@require_POST
def developers_key_create(request):
    user = _integrator(request)
    form = ApiKeyForm(request.POST, organisation_kind=_organisation_kind(user))
    if not form.is_valid():
        messages.error(request, "Give the key a name and choose the role it acts as.")
        return redirect("developers")
    try:
        api_key, raw_key = services.api_key_create(
            actor=user, name=form.cleaned_data["name"], team_role=form.cleaned_data["team_role"]
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        _show_once(request, f"Your new API key “{api_key.name}”", raw_key)
    return redirect("developers")


@login_required
@require_POST
def developers_key_revoke(request, pk: int):
    user = _integrator(request)
    try:
        api_key = services.api_key_revoke(actor=user, api_key_id=pk)
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, f"Revoked {api_key}. It stops working at once.")
    return redirect("developers")


@login_required
@require_POST
def developers_endpoint_create(request):
    user = _integrator(request)
    form = WebhookEndpointForm(request.POST)
    if not form.is_valid():
        for field, errors in form.errors.items():
            messages.error(request, f"{field}: {' '.join(errors)}")
        return redirect("developers")
    try:
        endpoint, secret = services.webhook_endpoint_create(actor=user, **form.cleaned_data)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("developers")
    _show_once(request, f"Signing secret for {endpoint.url}", secret)
    return redirect("developers_endpoint", pk=endpoint.pk)


@login_required
def developers_endpoint(request, pk: int):
    user = _integrator(request)
    endpoint = get_object_or_404(selectors.webhook_endpoints_for(user), pk=pk)
    deliveries = (
        selectors.webhook_deliveries_for(user)
        .filter(endpoint=endpoint)
        .prefetch_related(
            Prefetch("attempt_log", queryset=WebhookAttempt.objects.order_by("number"))
        )
        .order_by("-created_at", "-id")[:50]
    )
    return render(
        request,
        "developers/endpoint.html",
        {
            "endpoint": endpoint,
            "deliveries": deliveries,
            "shown_once": request.session.pop(SHOWN_ONCE_SESSION_KEY, None),
        },
    )


@login_required
@require_POST
def developers_endpoint_action(request, pk: int, action: str):
    user = _integrator(request)
    try:
        if action == "rotate":
            endpoint, secret = services.webhook_endpoint_rotate_secret(actor=user, endpoint_id=pk)
            _show_once(request, f"New signing secret for {endpoint.url}", secret)
            messages.success(request, "Secret rotated; the old one also signs for 24 hours.")
        elif action == "test":
            services.webhook_send_test(actor=user, endpoint_id=pk)
            messages.success(request, "Test delivery queued; it appears below within seconds.")
        elif action in ("pause", "resume"):
            services.webhook_endpoint_update(
                actor=user, endpoint_id=pk, is_active=(action == "resume")
            )
            messages.success(request, "Deliveries resumed." if action == "resume" else "Paused.")
        elif action == "delete":
            services.webhook_endpoint_delete(actor=user, endpoint_id=pk)
            messages.success(request, "Webhook endpoint deleted.")
            return redirect("developers")
        else:
            raise PermissionDenied("Unknown action.")
    except DomainError as error:
        messages.error(request, error.message)
    return redirect("developers_endpoint", pk=pk)


@login_required
@require_POST
def developers_redeliver(request, pk: int):
    user = _integrator(request)
    try:
        delivery = services.webhook_redeliver(actor=user, delivery_id=pk)
    except DomainError as error:
        messages.error(request, error.message)
        return redirect("developers")
    messages.success(request, f"Delivery #{delivery.pk} queued again.")
    return redirect("developers_endpoint", pk=delivery.endpoint_id)


urlpatterns = [
    path("", developers_home, name="developers"),
    path("keys/", developers_key_create, name="developers_key_create"),
    path("keys/<int:pk>/revoke/", developers_key_revoke, name="developers_key_revoke"),
    path("webhooks/", developers_endpoint_create, name="developers_endpoint_create"),
    path("webhooks/<int:pk>/", developers_endpoint, name="developers_endpoint"),
    path(
        "webhooks/<int:pk>/<slug:action>/",
        developers_endpoint_action,
        name="developers_endpoint_action",
    ),
    path("deliveries/<int:pk>/redeliver/", developers_redeliver, name="developers_redeliver"),
]
