"""The orders part of the partner API (/api/v1/)."""
