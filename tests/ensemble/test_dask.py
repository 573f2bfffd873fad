"""Scale-out on Dask: a LocalCluster with two worker processes."""

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    with (
        LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",  # any free port: runs beside another may hold 8787
        ) as cluster,
        Client(cluster) as c,
    ):
        yield c


def test_members_train_on_the_workers(client, tmp_path):
    from distributed import get_task_stream

    from atomlens.ensemble import Ensemble
    from atomlens.nn import UNetConfig
    from atomlens.train import TrainConfig, train_ensemble
    from tests.common import TINY_GRAPHENE

    with get_task_stream(client) as stream:
        ens = train_ensemble(
            members=2,
            out=tmp_path / "e",
            architecture=UNetConfig(width=4, depth=2),
            n_validation=1,
            config=TrainConfig(steps=2, val_every=1, device="cpu"),
            cluster=client,
            fit_sigma=False,
            **TINY_GRAPHENE,
        )
    assert len(ens) == 2
    assert [p["seed"] for p in Ensemble.load(tmp_path / "e").member_provenance] == [0, 1000]
    ran = [t for t in stream.data if "atomlens-train-member" in str(t["key"])]
    assert len(ran) == 2  # each member was one task on a worker
    assert {t["worker"] for t in ran} <= set(client.scheduler_info()["workers"])


def test_frames_are_mapped_to_the_workers(client, tiny_model_dir):
    from atomlens.pipeline import find, find_frames
    from atomlens.simulate import simulate_image

    frames = np.stack(
        [simulate_image("graphene", shape=96, pixel_size=0.1, rng=s).image for s in range(5)]
    )
    here = find_frames(frames, model=tiny_model_dir, pixel_size=0.1, chunk=2)
    there = find_frames(frames, model=tiny_model_dir, pixel_size=0.1, chunk=2, client=client)
    assert sorted(there["frame"].unique()) == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(
        here[["frame", "x_px", "y_px"]].to_numpy(float),
        there[["frame", "x_px", "y_px"]].to_numpy(float),
        atol=1e-6,
    )
    one = find(frames[3], model=tiny_model_dir, pixel_size=0.1).atoms
    np.testing.assert_allclose(
        there[there.frame == 3][["x_px", "y_px"]].to_numpy(),
        one[["x_px", "y_px"]].to_numpy(),
        atol=1e-6,
    )


def test_find_files_on_a_cluster_gives_the_in_process_atoms(client, tiny_model_dir, tmp_path):
    from atomlens.pipeline import find_files
    from atomlens.simulate import simulate_image

    frames = np.stack(
        [simulate_image("graphene", shape=96, pixel_size=0.1, rng=s).image for s in range(3)]
    ).astype(np.float32)
    np.save(tmp_path / "s.npy", frames)
    here = find_files(
        [tmp_path / "s.npy"], model=tiny_model_dir, out=tmp_path / "a", pixel_size=0.1
    )
    there = find_files(
        [tmp_path / "s.npy"],
        model=tiny_model_dir,
        out=tmp_path / "b",
        pixel_size=0.1,
        client=client,
        chunk=2,
    )
    cols = ["frame", "x_px", "y_px"]
    np.testing.assert_allclose(there.atoms[cols].to_numpy(), here.atoms[cols].to_numpy(), atol=1e-9)
    assert (tmp_path / "b" / "report.html").exists()
