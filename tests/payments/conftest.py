import pytest


@pytest.fixture
def run_after_commit(django_capture_on_commit_callbacks):
    """Run what the code defers to after commit (provider calls, sandbox webhooks) at once."""

    def runner(function, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return function(*args, **kwargs)

    return runner
