"""The suppliers part of the partner API (/api/v1/)."""
