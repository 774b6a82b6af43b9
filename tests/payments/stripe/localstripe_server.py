"""Run localstripe on a loopback port for the test suite, with three documented shims.

`localstripe --port N` listens on every interface and pickles its store to a shared
/tmp/localstripe.pickle; tests need a private, throwaway server on 127.0.0.1. Where localstripe
differs from Stripe's documented API in a way the adapter relies on, the shim below makes it
follow the documentation (each is listed in the README, Money → Tests):

1. `Idempotency-Key`: Stripe replays the first answer for a repeated key (24 h); localstripe
   ignores the header. The shim caches the first answer of each POST by key.
2. `created[gte|gt|lt|lte]` on GET /v1/payment_intents and /v1/refunds: documented by Stripe,
   refused by localstripe ("Unexpected created"). The shim filters on `created`.
3. Listing order: Stripe lists newest first; localstripe lists in insertion order. The shim
   sorts payment intent and refund lists newest first.
4. POST /v1/payment_intents/{id}/confirm with `payment_method`: documented by Stripe (what
   Stripe.js sends), "Not implemented" (500) in localstripe. The shim attaches the payment
   method to the intent first, then lets localstripe confirm it.

Usage: python -m tests.payments.stripe.localstripe_server --port N
"""

import argparse
import logging

from aiohttp import web
from localstripe import resources  # patched below, before localstripe.server binds its routes


def _no_disk(*args, **kwargs) -> None:
    """The store stays in memory: parallel test runs must not share /tmp/localstripe.pickle."""


resources.Store.dump_to_disk = _no_disk
resources.Store.try_load_from_disk = _no_disk


def _created_filter(cls) -> None:
    original = cls._api_list_all.__func__

    def list_all(klass, url, created=None, **kwargs):
        listing = original(klass, url, **kwargs)
        bounds = {key: int(value) for key, value in (created or {}).items()}
        tests = {
            "gt": lambda c, v: c > v,
            "gte": lambda c, v: c >= v,
            "lt": lambda c, v: c < v,
            "lte": lambda c, v: c <= v,
        }
        listing._list = [
            item
            for item in listing._list
            if all(tests[key](item.created, value) for key, value in bounds.items())
        ]
        listing._list.sort(key=lambda item: item.created, reverse=True)
        return listing

    cls._api_list_all = classmethod(list_all)


_created_filter(resources.PaymentIntent)
_created_filter(resources.Refund)

_original_confirm = resources.PaymentIntent._api_confirm.__func__


def _confirm(cls, id, payment_method=None, **kwargs):
    if payment_method is not None:
        intent = cls._api_retrieve(id)
        if intent.status not in ("requires_payment_method", "requires_confirmation"):
            raise resources.UserError(400, "This PaymentIntent cannot be confirmed now.")
        resources.PaymentMethod._api_retrieve(payment_method)  # 404 if unknown
        intent.payment_method = payment_method
        intent.latest_charge = None
    return _original_confirm(cls, id, **kwargs)


resources.PaymentIntent._api_confirm = classmethod(_confirm)
resources.extra_apis[:] = [
    (
        method,
        url,
        resources.PaymentIntent._api_confirm
        if url.endswith("/confirm") and "payment_intents" in url
        else func,
    )
    for method, url, func in resources.extra_apis
]

from localstripe import server  # noqa: E402  (binds the routes, with the patched confirm)

_answers: dict[str, tuple[int, bytes, str]] = {}


@web.middleware
async def idempotency_middleware(request: web.Request, handler):
    key = request.headers.get("Idempotency-Key")
    if request.method != "POST" or not key:
        return await handler(request)
    if key in _answers:
        status, body, content_type = _answers[key]
        return web.Response(
            status=status,
            body=body,
            content_type=content_type,
            headers={"Idempotent-Replayed": "true"},
        )
    try:
        response = await handler(request)
    except web.HTTPException:
        raise
    if response.status < 500 and isinstance(response, web.Response):
        _answers[key] = (response.status, response.body, response.content_type)
    return response


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # localstripe's own error middleware turns UserError into responses first, so this one
    # (outermost) sees and caches declines (402) as Stripe does.
    server.app.middlewares.insert(0, idempotency_middleware)
    logging.basicConfig(level=logging.WARNING)
    web.run_app(server.app, host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
