"""The partner REST API at /api/v1/: infrastructure shared by every app's `api/` package."""
