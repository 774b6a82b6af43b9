from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse

from accounts.forms import ProfileForm, SignUpForm
from accounts.models import User
from accounts.services import (
    account_profile_update,
    account_sign_up,
    account_sign_up_registered_notify,
)
from tradeassure.core.errors import DomainError

# Where each role starts after logging in; the first page that exists wins.
HOME_FOR_ROLE = {
    User.Role.BUYER: ["orders:buyer_list", "suppliers:directory"],
    User.Role.SUPPLIER_STAFF: ["suppliers:dashboard"],
    # Staff land on their queues: mediators on the disputes in mediation, vetting staff on the
    # Trade Assurance applications waiting for a decision.
    User.Role.MEDIATOR: ["admin:disputes_dispute_changelist", "admin:index"],
    User.Role.VETTING: ["admin:suppliers_tradeassuranceapplication_changelist", "admin:index"],
    User.Role.INSPECTOR: ["disputes:inspector_home"],
    User.Role.PARTNER: ["developers"],
}


def sign_up(request):
    if request.user.is_authenticated:
        return redirect("dashboard")
    # "Start selling" links here with ?role=supplier_staff: the form opens on that choice.
    wanted = request.GET.get("role")
    initial = {"role": wanted} if wanted in {User.Role.BUYER, User.Role.SUPPLIER_STAFF} else {}
    form = SignUpForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            user = account_sign_up(**form.cleaned_data)
        except DomainError as error:
            if error.code != "email_registered":
                form.add_error(None, error.message)
            else:
                account_sign_up_registered_notify(email=form.cleaned_data["email"])
                return redirect("sign_up_check_email")
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to TradeAssure, {user}.")
            return redirect("dashboard")
    return render(request, "accounts/sign_up.html", {"form": form})


def sign_up_check_email(request):
    """Where a sign-up with an already registered address ends: the inbox has the rest."""
    return render(request, "accounts/sign_up_check_email.html")


@login_required
def dashboard(request):
    """Send each user to the page where their work is."""
    for url_name in HOME_FOR_ROLE.get(request.user.role, []):
        try:
            return redirect(reverse(url_name))
        except NoReverseMatch:
            continue
    return render(request, "accounts/dashboard.html")


@login_required
def profile(request):
    """The user's own settings: name and the time zone every page and email uses."""
    form = ProfileForm(request.POST or None, instance=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            account_profile_update(
                user=request.user,
                full_name=form.cleaned_data["full_name"],
                time_zone=form.cleaned_data["time_zone"],
            )
        except DomainError as error:
            form.add_error("time_zone", error.message)
        else:
            messages.success(request, f"Saved. Times are now shown in {request.user.time_zone}.")
            return redirect("profile")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/profile.html", {"form": form}, status=status)
