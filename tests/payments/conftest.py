import pytest


@pytest.fixture
def run_after_commit(django_capture_on_commit_callbacks):
    """Run what the code defers to after commit (provider calls, sandbox webhooks) at once."""

    def runner(function, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(*args, **kwargs)

    return runner


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Users are made in many tests (and every hypothesis example): skip the slow KDF."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
