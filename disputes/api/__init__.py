"""The disputes part of the partner API (/api/v1/)."""
