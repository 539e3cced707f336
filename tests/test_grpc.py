"""Four worker processes through Optuna's gRPC storage proxy on PostgreSQL.

One proxy process (``optuna.storages.run_grpc_proxy_server``, bound to 127.0.0.1)
holds the database connection; the four workers of ``tests/_worker.py`` and this test
talk to it through ``GrpcStorageProxy``. The checks are those of the distributed test
(``test_distributed.check_workers_share_one_study``): every trial finished, none lost,
no two trials in flight together at the same grid point, no forked episode, and every
worker's Q-table -- incremental and rebuilt -- identical. Then the study read directly
from PostgreSQL, bypassing the proxy, has the same trials and gives the same table.

Needs ``grpcio`` (``pip install 'optuna-qlearn[grpc]'``) and PostgreSQL
(``OPTUNA_QLEARN_PG_URL``); unreachable, it skips locally and fails in CI.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import require
from optuna.trial import TrialState
from test_distributed import PG_URL, SharedStudy, _cleanup, _create, _pg_error
from test_distributed import check_workers_share_one_study as check_workers

from optuna_qlearn import QLearningSampler

pytestmark = pytest.mark.service

N_TRIALS = 120  # 30 per worker: seconds, and still hundreds of overlapping pairs

SERVER = textwrap.dedent(
    """
    import sys
    import optuna
    from optuna.storages import get_storage, run_grpc_proxy_server

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    run_grpc_proxy_server(get_storage(sys.argv[1]), host="127.0.0.1", port=int(sys.argv[2]))
    """
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def proxy(tmp_path: Path) -> Iterator[dict[str, object]]:
    """A running proxy server in front of PostgreSQL, as a storage spec for the workers."""
    try:
        import grpc  # noqa: F401
    except ImportError:
        require(False, "grpcio is not installed (pip install 'optuna-qlearn[grpc]')")
    error = _pg_error()
    require(error is None, f"PostgreSQL unreachable at {PG_URL}: {error}")
    port = _free_port()
    log = (tmp_path / "proxy.stderr").open("w")
    server = subprocess.Popen([sys.executable, "-c", SERVER, PG_URL, str(port)], stderr=log)
    try:
        from optuna.storages import GrpcStorageProxy

        client = GrpcStorageProxy(host="127.0.0.1", port=port)
        try:
            client.wait_server_ready(timeout=60)
        except ConnectionError:
            server.kill()
            pytest.fail(f"the proxy never came up:\n{(tmp_path / 'proxy.stderr').read_text()}")
        client.close()
        yield {"kind": "grpc", "host": "127.0.0.1", "port": port}
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def test_four_workers_through_the_grpc_proxy(proxy: dict[str, object], tmp_path: Path) -> None:
    shared = _create(dict(proxy))
    try:
        study = check_workers(shared, tmp_path, N_TRIALS)
        # Nothing stayed in the proxy: the database itself has every finished trial.
        direct = SharedStudy({"kind": "rdb", "url": PG_URL}, shared.name).load()
        trials = direct.get_trials(deepcopy=False)
        assert [t.number for t in trials] == list(range(N_TRIALS))
        assert all(t.state == TrialState.COMPLETE for t in trials)
        assert [t.params for t in trials] == [t.params for t in study.trials]
        sampler = QLearningSampler(policy="table", stale_after=100_000)
        assert sampler.q_table(direct) == sampler.q_table(study)
    finally:
        _cleanup(shared)
