"""The payments part of the partner API (/api/v1/)."""
