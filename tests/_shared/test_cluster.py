"""A Dask client from a scheduler address: made and closed here, or passed through."""

import pytest

distributed = pytest.importorskip("distributed")

from atomlens._shared.cluster import as_client, dask_client  # noqa: E402


def test_an_address_gives_a_client_closed_after_the_block_and_a_client_passes_through():
    from distributed import Client, LocalCluster

    with LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        dashboard_address=":0",  # any free port: runs beside another may hold 8787
    ) as cluster:
        with dask_client(cluster.scheduler_address) as client:
            assert client.submit(sum, [1, 2]).result() == 3
        assert client.status == "closed"
        with Client(cluster) as mine:
            assert as_client(mine) == (mine, False)
            with dask_client(mine) as same:
                assert same is mine
            assert mine.status == "running"
    with dask_client(None) as none:
        assert none is None
    with pytest.raises(TypeError, match=r"--scheduler must be a dask\.distributed Client"):
        as_client(8786, name="--scheduler")
