"""`atomlens vae`, `im2spec` and `spec2im` on an atoms table, its image and a spectrum image:
the tables join the atoms, the model files reload to the same numbers."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from atomlens.cli import app
from atomlens.vae import Translator, VAEModel, load_samples, spectra_at_atoms
from atomlens.vae.synthetic import spectrum_image


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("vae_cli")
    image, cube, atoms = spectrum_image(cells=8, length=32, rng=0)
    inner = atoms[(atoms.x_A > 3) & (atoms.y_A > 3) & (atoms.x_A < 21) & (atoms.y_A < 21)]
    inner = inner.reset_index(drop=True).assign(label=lambda t: [f"a{i}" for i in range(len(t))])
    np.save(d / "image.npy", image)
    np.save(d / "cube.npy", cube)
    inner.to_csv(d / "atoms.csv", index=False)
    return d, inner, cube


def test_vae_writes_latents_joined_to_the_atoms_and_a_model_that_reloads(files):
    d, atoms, _ = files
    out = d / "rvae"
    args = ["vae", str(d / "atoms.csv"), "--image", str(d / "image.npy"), "--pixel-size", "0.3"]
    r = CliRunner().invoke(app, [*args, "--kind", "jrvae", "--epochs", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    lat = pd.read_csv(out / "latents.csv")
    added = ["angle_rad", "dx_px", "dy_px", "z1", "z2", "class", "class_prob"]
    assert list(lat.columns) == [*atoms.columns, *added]
    assert len(lat) == len(atoms) == 36
    pd.testing.assert_frame_equal(lat[atoms.columns], atoms, check_dtype=False)
    assert set(lat["class"]) <= {0, 1} and lat["class_prob"].between(0.5, 1).all()
    # an atoms table with its own class (find's) keeps it; the VAE's becomes vae_class
    atoms.assign(**{"class": "C"}).to_csv(d / "atoms-c.csv", index=False)
    args2 = ["vae", str(d / "atoms-c.csv"), *args[2:], "--kind", "jrvae", "--epochs", "1"]
    r = CliRunner().invoke(app, [*args2, "--out", str(d / "with-class")])
    assert r.exit_code == 0, r.output
    both = pd.read_csv(d / "with-class" / "latents.csv")
    assert set(both["class"]) == {"C"} and set(both["vae_class"]) <= {0, 1}
    assert "class.1" not in both and "vae_class_prob" in both
    for name in ("traversal.png", "reconstructions.png", "latent_map.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert {p.name for p in (out / "model").iterdir()} == {"config.json", "weights.safetensors"}
    assert not (d / ".rvae.checkpoint").exists()  # the default checkpoint is cleaned up
    # the saved model gives the table's latents back from the same patches
    model = VAEModel.load(out / "model")
    patches, _ = load_samples(d / "atoms.csv", image=d / "image.npy", pixel_size=0.3)
    again = model.encode(patches)
    np.testing.assert_allclose(again[added].to_numpy(float), lat[added].to_numpy(float), atol=1e-5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == 36 and summary["config"]["kind"] == "jrvae"


@pytest.mark.parametrize("direction", ["im2spec", "spec2im"])
def test_translators_write_held_out_predictions_that_the_model_reproduces(files, direction):
    d, atoms, cube = files
    out = d / direction
    pair = ["--images", str(d / "image.npy"), "--spectra", str(d / "cube.npy")]
    r = CliRunner().invoke(
        app, [direction, *pair, "--atoms", str(d / "atoms.csv"), "--epochs", "3", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    held = pd.read_csv(out / "holdout.csv")["index"].to_numpy()
    assert len(held) == round(0.2 * 36) and len(set(held)) == len(held)
    pred = np.load(out / "predictions.npy")
    patches, _ = load_samples(d / "atoms.csv", image=d / "image.npy")
    spectra = spectra_at_atoms(cube, atoms)
    assert pred.shape == ((len(held), 32) if direction == "im2spec" else (len(held), 21, 21))
    source = patches if direction == "im2spec" else spectra
    again = Translator.load(out / "model").predict(source[held])
    np.testing.assert_allclose(again, pred, rtol=1e-4, atol=1e-5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["pairs"] == 36 and summary["holdout"] == len(held)
    assert f"{summary['r2_holdout']:.3f}" in r.output


def test_mismatched_images_and_spectra_get_one_line_errors(files, tmp_path):
    d, _, _ = files
    np.save(tmp_path / "p.npy", np.zeros((6, 8, 8)))
    np.save(tmp_path / "s.npy", np.zeros((4, 10)))
    base = ["im2spec", "--images", str(tmp_path / "p.npy"), "--out", str(tmp_path / "o")]
    r = CliRunner().invoke(app, [*base, "--spectra", str(tmp_path / "s.npy")])
    assert r.exit_code == 2
    assert "--images gives 6 patches but --spectra has 4 spectra" in r.output
    r = CliRunner().invoke(app, [*base, "--spectra", str(d / "cube.npy")])
    assert r.exit_code == 2 and "give --atoms" in r.output
    r = CliRunner().invoke(app, ["vae", str(d / "atoms.csv"), "--out", str(tmp_path / "v")])
    assert r.exit_code == 2 and "give the --image the atoms were found in" in r.output
    assert not (tmp_path / "o").exists() and not (tmp_path / "v").exists()
