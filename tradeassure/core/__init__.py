"""The kernel every app may use: it imports no project app and is not a Django app itself."""
