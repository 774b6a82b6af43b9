"""API key authentication: `Authorization: Bearer ta_<prefix>_<secret>`."""

from rest_framework import authentication, exceptions


class ApiKeyAuthentication(authentication.BaseAuthentication):
    """A partner integration acts as the organisation member its key was issued for."""

    keyword = "bearer"

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed(
                "Malformed Authorization header: send `Authorization: Bearer <API key>`."
            )
        try:
            raw_key = parts[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("The API key is not valid.") from exc
        # Imported here: DRF imports this module while rest_framework.views is half-loaded.
        from tradeassure.platform.api.services import api_key_authenticate

        api_key = api_key_authenticate(raw_key=raw_key)
        if api_key is None:
            raise exceptions.AuthenticationFailed("The API key is unknown or has been revoked.")
        return (api_key.user, api_key)

    def authenticate_header(self, request) -> str:
        return 'Bearer realm="api"'
