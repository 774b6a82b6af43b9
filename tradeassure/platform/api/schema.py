"""OpenAPI generation: problem+json error responses, the Idempotency-Key header, API key auth,
and the catalogue's enums (error codes, event topics).

Every operation documents its error responses from one place, so no view can forget them, and
a `default` response covers what a proxy or the framework may still answer. The enums are built
when the schema is generated, from `tradeassure.platform.catalogue`, so they list what the
installed apps declare and never go stale.
"""

from drf_spectacular.extensions import (
    OpenApiAuthenticationExtension,
    OpenApiSerializerFieldExtension,
)
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import serializers

from tradeassure.platform import catalogue
from tradeassure.platform.api.errors import PROBLEM_CONTENT_TYPE


class ErrorCodeField(serializers.CharField):
    """A problem's `code`: published as the enum of every error code (`ErrorCode`)."""


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, with a stable `code` to branch on."""

    type = serializers.CharField(help_text="A URI naming the problem type.")
    title = serializers.CharField(help_text="A short, human-readable summary of the problem type.")
    status = serializers.IntegerField(help_text="The HTTP status code.")
    detail = serializers.CharField(help_text="What went wrong in this case, for a human.")
    code = ErrorCodeField(
        help_text="Stable machine-readable code, e.g. `invalid_transition`, `validation_failed`; "
        "one of `ErrorCode`."
    )
    instance = serializers.CharField(required=False, help_text="The request path.")
    # A declared field: the serializer metaclass moves it off the class, so it does not shadow
    # Serializer.errors at run time as the stubs assume.
    errors = serializers.DictField(  # type: ignore[assignment]
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Per-field messages (dotted paths for nested fields), on 400 responses.",
    )


IDEMPOTENCY_PARAMETER = OpenApiParameter(
    name="Idempotency-Key",
    type=OpenApiTypes.STR,
    location=OpenApiParameter.HEADER,
    required=True,
    description=(
        "A unique string per operation (e.g. a UUID), 1 to 255 visible ASCII characters. The first "
        "response is stored and replayed for 24 hours to a retry with the same key and body "
        "(header `Idempotent-Replayed: true`); the same key with another body → 422 "
        "`idempotency_key_reused`; while the first request still runs → 409 "
        "`idempotency_request_in_flight`. 400 responses are not stored."
    ),
    examples=[OpenApiExample("A UUID", value="3f1c9c8e-6a0b-4a4e-9f7e-2b7f7f3d2c11")],
)

_ERROR_DESCRIPTIONS = {
    "400": "Invalid input (`validation_failed`, with per-field `errors`).",
    "401": "No or invalid credentials (`not_authenticated`, `authentication_failed`).",
    "403": "Authenticated but not allowed (`not_allowed`, `role_not_allowed` when your team "
    "role or your API key's role lacks the capability, or a more specific code).",
    "404": "Not found, or not visible to you (`not_found`).",
    "409": "Conflicts with the current state (`invalid_transition`, `idempotency_request_in_flight`, …).",
    "422": "Well-formed but refused by a rule (`idempotency_key_reused`, …).",
    "429": "Too many requests (`throttled`); see `Retry-After`.",
}


class ProblemAutoSchema(AutoSchema):
    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.method == "POST":
            parameters.append(IDEMPOTENCY_PARAMETER)
        return parameters

    def _error_codes(self) -> list[str]:
        codes = ["400", "401", "403", "404", "429"]
        if self.method in ("POST", "PUT", "PATCH", "DELETE"):
            codes[4:4] = ["409", "422"]
        return codes

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        for code in self._error_codes():
            if code not in responses:
                response = self._get_response_for_code(
                    ProblemSerializer, code, media_types=[PROBLEM_CONTENT_TYPE], direction=direction
                )
                response["description"] = _ERROR_DESCRIPTIONS[code]
                responses[code] = response
        if "default" not in responses:
            response = self._get_response_for_code(
                ProblemSerializer,
                "default",
                media_types=[PROBLEM_CONTENT_TYPE],
                direction=direction,
            )
            response["description"] = "Any other error, as problem+json."
            responses["default"] = response
        return responses


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "tradeassure.platform.api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "ta_<prefix>_<secret>",
            "description": (
                "An API key from the Developers page, sent as `Authorization: Bearer <key>`. "
                "It acts as the organisation member who created it."
            ),
        }


class ErrorCodeFieldExtension(OpenApiSerializerFieldExtension):
    target_class = ErrorCodeField

    def get_name(self) -> str:
        return "ErrorCode"

    def map_serializer_field(self, auto_schema, direction) -> dict:
        return {
            "type": "string",
            "enum": list(catalogue.error_codes()),
            "description": (
                "Every `code` a problem+json response may carry: the shared ones "
                "(`validation_failed`, `not_allowed`, `not_found`, `invalid_transition`, …), the "
                "API's own (`not_authenticated`, `throttled`, `idempotency_key_reused`, …) and "
                "each area's (orders, disputes, payments, suppliers). Branch on `code`, never on "
                "`title` or `detail`; new codes may be added, existing ones never change."
            ),
        }


class EventTopicFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "tradeassure.platform.api.serializers.EventTopicField"

    def get_name(self) -> str:
        return "EventTopic"

    def map_serializer_field(self, auto_schema, direction) -> dict:
        return {
            "type": "string",
            "enum": list(catalogue.event_topics()),
            "description": (
                "The topic of a domain event (`<area>.<what happened>`), as in the events feed, "
                "webhook bodies and the `TradeAssure-Event` header; `webhook.test` is a test "
                "delivery. New topics may be added."
            ),
        }


class TopicSubscriptionFieldExtension(OpenApiSerializerFieldExtension):
    target_class = "tradeassure.platform.api.serializers.TopicSubscriptionField"

    def get_name(self) -> str:
        return "TopicSubscription"

    def map_serializer_field(self, auto_schema, direction) -> dict:
        return {
            "type": "string",
            "enum": list(catalogue.topic_subscriptions()),
            "description": (
                "What a webhook endpoint receives: an exact `EventTopic`, or `<area>.*` for every "
                "topic of an area (e.g. `order.*`). An empty list receives every topic; anything "
                "else is refused (400 `validation_failed`)."
            ),
        }


def optional_multi_media_bodies(result, generator, request, public):
    """Postprocessing hook: a request body offered in several media types (opening a dispute:
    JSON, or multipart with the evidence) is marked `required: false`.

    openapi-python-client (0.29) types such a body `A | B | Unset` whatever `required` says,
    and imports `Unset` only when the body is optional: a required one gives a module that does
    not import. The server still answers a missing body with 400 `validation_failed`.
    """
    for path in result.get("paths", {}).values():
        for operation in path.values():
            body = operation.get("requestBody") if isinstance(operation, dict) else None
            if body and len(body.get("content", {})) > 1:
                body["required"] = False
    return result
