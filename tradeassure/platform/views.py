from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from tradeassure.core import clock
from tradeassure.platform.selectors import notifications_for


def home(request):
    return render(request, "home.html")


@login_required
def notification_list(request):
    page = Paginator(notifications_for(request.user), 25).get_page(request.GET.get("page"))
    return render(request, "notifications.html", {"page": page})


@login_required
@require_POST
def notification_mark_all_read(request):
    notifications_for(request.user).filter(read_at__isnull=True).update(read_at=clock.now())
    return redirect("notifications")
