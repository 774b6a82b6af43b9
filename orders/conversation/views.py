"""The conversation on the order page: the context it shows, the post form, the file download."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from accounts.team import Capability, team_allows
from orders.conversation import selectors, services
from orders.models import Order, Party
from orders.parties import party_of
from tradeassure.core.errors import DomainError, NotFound
from tradeassure.core.forms import MultipleFileField
from tradeassure.core.uploads import upload_response


class MessageForm(forms.Form):
    # No max_length here: the service refuses an over-long text with its own clear message.
    body = forms.CharField(
        label="Message", required=False, widget=forms.Textarea(attrs={"rows": 3})
    )
    attachments = MultipleFileField(label="Attach files (PDF, PNG, JPEG or WebP)", required=False)


def conversation_context(request, order: Order) -> dict:
    """What `orders/_conversation.html` needs; viewing the page marks the thread read."""
    if not selectors.may_read_conversation(order=order, user=request.user):
        return {"conversation": None}
    thread = list(selectors.order_messages(order=order))
    party = party_of(order=order, user=request.user)
    receipts = selectors.order_read_receipts(order=order)
    other_organisation = (
        order.supplier.organisation_id if party == Party.BUYER else order.buyer_organisation_id
    )
    if thread and party in (Party.BUYER, Party.SUPPLIER):
        services.order_messages_mark_read(order=order, actor=request.user, up_to=thread[-1].pk)
    return {
        "conversation": {
            "messages": thread,
            "may_post": party in (Party.BUYER, Party.SUPPLIER)
            and team_allows(request.user, Capability.TALK),
            "form": MessageForm(),
            "other_read_up_to": receipts.get(other_organisation, 0),
            "max_characters": settings.ORDER_CONVERSATION["MAX_CHARACTERS"],
        }
    }


def _order_or_404(request, pk: int) -> Order:
    try:
        return selectors.order_for_conversation(user=request.user, pk=pk)
    except NotFound as error:
        raise Http404(error.message) from error


@login_required
@require_POST
def message_post(request, pk: int):
    """Post a message (with files) from the order page, then back to the thread."""
    order = _order_or_404(request, pk)
    form = MessageForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(request, "The message could not be sent: check the files.")
        return redirect(order.get_absolute_url() + "#conversation")
    try:
        services.order_message_post(
            order=order,
            actor=request.user,
            body=form.cleaned_data["body"],
            files=form.cleaned_data["attachments"],
        )
    except DomainError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Message sent.")
    return redirect(order.get_absolute_url() + "#conversation")


@login_required
@require_GET
def message_attachment(request, pk: int, message_pk: int, attachment_pk: int):
    """A message's file, for the parties and permitted staff (404 for everyone else)."""
    try:
        attachment = selectors.message_attachment_for_user(
            user=request.user, order_pk=pk, message_pk=message_pk, pk=attachment_pk
        )
    except NotFound as error:
        raise Http404(error.message) from error
    return upload_response(
        name=attachment.stored_name,
        download_name=attachment.original_name,
        content_type=attachment.content_type,
    )
