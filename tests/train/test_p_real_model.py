"""The logistic ``p_real`` fitted on simulated images under shifted conditions: it tells
false atoms from real ones on a condition it was not fitted on, and ``fit_calibration``
then uses it as it is."""

from __future__ import annotations

import logging

import pytest
import torch

from atomlens.bundled import BUNDLED_DIR
from atomlens.ensemble import Calibration, Ensemble
from atomlens.train import fit_calibration
from atomlens.train.calibration import (
    SHIFTED_CONDITIONS,
    fit_p_real_model,
    sigma_calibration_images,
)

CONDITIONS = {k: SHIFTED_CONDITIONS[k] for k in ("clean", "film", "scan noise", "wide probe")}


@pytest.fixture(scope="module")
def fitted():
    torch.set_num_threads(1)
    ens = Ensemble.load(BUNDLED_DIR / "haadf-generic")
    # low doses, films and wide probes: where it reports false atoms
    images = sigma_calibration_images(
        ["graphene", "mos2"], 0.2, shape=128, seed=5, doses=(1e3, 1e4), conditions=CONDITIONS
    )
    # the incumbent: p_real from the vote share alone (the table of a calibration
    # without a logistic), scored on the same atoms
    table = Calibration(
        p_detect=[0.25, 0.5, 0.75, 1.0], p_real=[0.1, 0.4, 0.7, 0.99], counts=[1, 1, 1, 1],
        sigma_scale=1.0, ece_raw=0.0, n_images=1,
    )  # fmt: skip
    fields, validation = fit_p_real_model(ens, images, incumbent=table)
    return ens, images, fields, validation


def test_p_real_from_shifted_images_ranks_false_atoms_of_a_condition_left_out(fitted):
    _, _, fields, val = fitted
    assert fields is not None and fields["p_real_validation"] == val
    assert set(val) == {*CONDITIONS, "dose 1e+03", "dose 1e+04", "all"}
    assert val["all"]["n_false"] >= 20, val["all"]
    # each condition scored by a model fitted without it: false atoms rank below real
    # ones better than by the members' vote share alone, and far better than chance
    # (pooled over the conditions left out)
    a = val["all"]
    assert a["auroc"] >= 0.8 and a["auroc"] >= a["auroc_p_detect"] + 0.05, a
    # the incumbent (a table of the vote share, capped at Φ(signal_snr) as find caps it)
    # is scored on the same atoms, and loses to the logistic too
    assert a["auroc_incumbent"] < a["auroc"], a
    assert sum(val[c]["n_false"] for c in CONDITIONS) == val["all"]["n_false"]


def test_fit_calibration_keeps_a_logistic_fitted_elsewhere(fitted):
    ens, images, fields, val = fitted
    sims = [s for _, s in images[:3]]
    cal = fit_calibration(
        ens,
        [s.image for s in sims],
        [s.truth for s in sims],
        [s.pixel_size for s in sims],
        hidden=[s.hidden for s in sims],
        logistic=fields,
    )
    assert cal.coef == fields["coef"] and cal.intercept == fields["intercept"]
    assert cal.feature_mean == fields["feature_mean"] and cal.p_real_validation == val
    # the F1 of each threshold measured with it, on these images
    assert cal.p_real_thresholds is not None and len(cal.f1) == len(cal.p_real_thresholds)
    assert all(0 < f <= 1 for f in cal.f1)
    # an incomplete logistic is refused by name, before any image is looked at
    with pytest.raises(ValueError, match="logistic lacks coef"):
        fit_calibration(ens, [], [], [], logistic={k: v for k, v in fields.items() if k != "coef"})


def test_p_real_validation_round_trips_through_the_model_files(fitted, tmp_path):
    _, _, fields, val = fitted
    cal = Calibration(
        p_detect=[1.0], p_real=[1.0], counts=[10], sigma_scale=1.0, ece_raw=0.0, n_images=1,
        **fields,
    )  # fmt: skip
    cal.save(tmp_path)
    again = Calibration.load(tmp_path)
    assert again == cal and again.p_real_validation["all"] == val["all"]


def test_too_few_false_atoms_fit_nothing_and_say_so(fitted, caplog):
    ens, _, _, _ = fitted
    clean = sigma_calibration_images(
        ["graphene"], 0.2, shape=64, seed=6, doses=(1e6,), conditions={"clean": CONDITIONS["clean"]}
    )
    with caplog.at_level(logging.WARNING, logger="atomlens.train.calibration"):
        fields, val = fit_p_real_model(ens, clean)
    assert fields is None and val == {}
    assert "no logistic p_real fitted" in caplog.text


def test_one_condition_is_fitted_but_not_validated(fitted):
    """Nothing to leave it out of: the logistic is fitted, its validation is empty."""
    ens, images, _, _ = fitted
    film = [im for im in images if im[0] == "wide probe"]
    fields, val = fit_p_real_model(ens, film)
    assert fields is not None and val == {} and fields["p_real_validation"] == {}
