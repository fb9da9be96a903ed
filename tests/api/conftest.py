"""One broker, one worker and one API per test module (they are slow to start); tests keep
apart by queue names and job ids."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.cluster import Cluster

from .server import ApiServer, start_api


@pytest.fixture(scope="module")
def api_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("api"))
    try:
        cluster.start_broker()
        cluster.start_worker("w1", "--allow-exec", "--concurrency", "3")
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def api_server(api_cluster: Cluster) -> ApiServer:
    return start_api(api_cluster)


@pytest.fixture
def http(api_server: ApiServer) -> Iterator[httpx.Client]:
    with api_server.client() as client:
        yield client
