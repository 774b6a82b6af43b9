"""OpenAPI generation: problem+json error responses, the Idempotency-Key header, API key auth.

Every operation documents its error responses from one place, so no view can forget them, and
a `default` response covers what a proxy or the framework may still answer.
"""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter
from rest_framework import serializers

from tradeassure.platform.api.errors import PROBLEM_CONTENT_TYPE


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details, with a stable `code` to branch on."""

    type = serializers.CharField(help_text="A URI naming the problem type.")
    title = serializers.CharField(help_text="A short, human-readable summary of the problem type.")
    status = serializers.IntegerField(help_text="The HTTP status code.")
    detail = serializers.CharField(help_text="What went wrong in this case, for a human.")
    code = serializers.CharField(
        help_text="Stable machine-readable code, e.g. `invalid_transition`, `validation_failed`."
    )
    instance = serializers.CharField(required=False, help_text="The request path.")
    errors = serializers.DictField(
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
    "403": "Authenticated but not allowed (`not_allowed` or a more specific code).",
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
