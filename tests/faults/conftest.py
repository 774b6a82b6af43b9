"""Fixtures for the fault tests: one PostgreSQL cluster and Redis server per session, a fresh
copy of the seeded database and fresh app processes per test."""

import os

import pytest

from tests.faults.harness import Api, Stack, StackServices, missing_binaries

REQUIRE_SERVICES = os.environ.get("TRADEASSURE_REQUIRE_SERVICES") == "1"


@pytest.fixture(scope="session")
def stack_services(tmp_path_factory):
    missing = missing_binaries()
    if missing:
        if REQUIRE_SERVICES:
            pytest.fail(f"{missing} (TRADEASSURE_REQUIRE_SERVICES=1)", pytrace=False)
        pytest.skip(missing)
    services = StackServices(tmp_path_factory.mktemp("fault-stack"))
    try:
        services.up()
        yield services
    finally:
        services.down()


@pytest.fixture
def stack(stack_services, request, tmp_path):
    stack = Stack(stack_services, stack_services.new_database(), tmp_path / "stack")
    if not stack_services.redis.process:
        stack_services.redis.start()
    yield stack
    stack.stop_all()
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        for proc in stack.processes:
            print(f"\n----- {proc.name} log (tail) -----\n{proc.log()[-3000:]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture
def buyer(stack):
    return Api(stack.web_url, stack.base.seed["buyer_keys"][0])


@pytest.fixture
def seller(stack):
    return Api(stack.web_url, stack.base.seed["supplier_key"])


@pytest.fixture
def receiver():
    """A partner's webhook receiver on 127.0.0.1 (a thread of the test process)."""
    from tests.api.receiver import start_receiver

    receiver, server = start_receiver()
    yield receiver
    server.shutdown()
    server.server_close()
