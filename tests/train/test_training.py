import numpy as np
import pytest
import torch

from atomlens.ensemble import Model
from atomlens.metrics import score_atoms
from atomlens.simulate import simulate_image
from atomlens.train import (
    Augmentation,
    TrainConfig,
    augment_batch,
    normalize_batch,
    segmentation_loss,
)
from tests.common import train_tiny_model


def test_short_training_finds_atoms(tiny_model):
    """≈ 15 s of CPU training on easy images: F1 ≥ 0.98 on new images."""
    from atomlens import find_atoms

    tp = fp = fn = 0
    for seed in (101, 102):
        sim = simulate_image("graphene", shape=200, pixel_size=0.12, rng=seed)
        found = find_atoms(sim.image, model=tiny_model, pixel_size=0.12)
        s = score_atoms(found, sim.truth, shape=sim.image.shape, pixel_size=0.12)
        tp, fp, fn = tp + s["tp"], fp + s["fp"], fn + s["fn"]
    f1 = 2 * tp / (2 * tp + fp + fn)
    assert f1 >= 0.98, (tp, fp, fn)
    prov = tiny_model.config.provenance
    assert prov["materials"] == ["graphene"] and "atomlens_version" in prov
    assert prov["validation"]["f1"] >= 0.98


def test_killed_training_resumes_exactly(tmp_path):
    """Kill after 3 of 6 steps, resume: the weights equal an uninterrupted run's."""
    full = train_tiny_model(tmp_path / "full", steps=6, val_every=3).model
    with pytest.raises(KeyboardInterrupt):
        _interrupted(tmp_path / "resumed", stop_after=4)
    assert (tmp_path / "resumed" / "checkpoint" / "state.json").exists()
    assert not (tmp_path / "resumed" / "config.json").exists()
    resumed = train_tiny_model(tmp_path / "resumed", steps=6, val_every=3).model
    for (k, a), b in zip(
        full.network.state_dict().items(), resumed.network.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)
    lines = (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()
    assert any('"resume"' in line for line in lines)
    assert not (tmp_path / "resumed" / "checkpoint").exists()


def _interrupted(out, *, stop_after):
    import atomlens.train.trainer as tr

    real_fit = tr.Trainer.fit

    def fit(self):
        self.stop_after = stop_after
        return real_fit(self)

    tr.Trainer.fit = fit
    try:
        train_tiny_model(out, steps=6, val_every=3)
    finally:
        tr.Trainer.fit = real_fit


def test_finished_model_is_not_overwritten_silently(tiny_model_dir):
    from atomlens.train.trainer import Trainer

    with pytest.raises(FileExistsError, match="already holds a trained model"):
        Trainer(Model.load(tiny_model_dir), None, _FakeSource(), out=tiny_model_dir)  # type: ignore[arg-type]


def test_a_run_killed_before_its_first_checkpoint_starts_again(tiny_model, tmp_path):
    from atomlens.train.trainer import Trainer

    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text('{"step": 1, "loss": 1.0}\n')  # all it left
    Trainer(tiny_model, None, _FakeSource(), out=out)  # type: ignore[arg-type]
    assert not out.exists()  # cleared; fit() starts from step 0
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not a training run"):
        Trainer(tiny_model, None, _FakeSource(), out=tmp_path / "other")  # type: ignore[arg-type]


class _FakeSource:
    class_names = ("C",)


#: Every augmentation off (the tests switch one on at a time).
ALL_OFF = Augmentation(
    flips=False, scale=0.0, scan_jitter_px=0.0, blur_px=0.0, gamma=0.0, background=0.0, noise=0.0
)


def test_augmentation_moves_image_and_masks_together():
    g = torch.Generator().manual_seed(0)
    img = torch.zeros(4, 1, 32, 32)
    img[:, :, 5:9, 20:24] = 100.0  # a bright square, labelled by the mask
    masks = torch.zeros(4, 2, 32, 32)
    masks[:, 1] = (img[:, 0] > 0).float()
    masks[:, 0] = 1 - masks[:, 1]
    aug = Augmentation(
        scale=0.0, scan_jitter_px=0.0, blur_px=0.0, gamma=0.0, background=0.0, noise=0.0
    )
    x, m = augment_batch(img, masks, aug=aug, generator=g)
    torch.testing.assert_close(m[:, 1], (x[:, 0] > 50).float())
    torch.testing.assert_close(m.sum(1), torch.ones(4, 32, 32))
    x2, m2 = augment_batch(img, masks, aug=Augmentation(), generator=g)
    torch.testing.assert_close(m2.sum(1), torch.ones(4, 32, 32), atol=1e-5, rtol=0)
    bright = normalize_batch(x2)[:, 0] > 0.5
    assert (m2[:, 1][bright] > 0.5).float().mean() > 0.8


def test_line_noise_streaks_rows_and_leaves_the_masks():
    """Scan-line noise: constant along each row, different between rows, masks untouched."""
    g = torch.Generator().manual_seed(0)
    img = torch.rand(3, 1, 32, 32, generator=g) * 10 + 100
    masks = torch.zeros(3, 2, 32, 32)
    masks[:, 0] = 1
    off = ALL_OFF
    base, _ = augment_batch(img, masks, aug=off, generator=torch.Generator().manual_seed(1))
    x, m = augment_batch(
        img,
        masks,
        aug=Augmentation(**{**off.to_dict(), "line_noise": 1.0}),
        generator=torch.Generator().manual_seed(1),
    )
    torch.testing.assert_close(m, masks)
    row_means = (x - base).mean(dim=3)
    assert float(row_means.std(dim=2).min()) > 0.5  # rows differ by a fraction of σ ≈ 2.9
    # within a row the change is a gain and an offset: a straight line in the input
    for i in range(3):
        for r in (0, 17):
            a = torch.stack([base[i, 0, r], torch.ones(32)], 1)
            coef = torch.linalg.lstsq(a, x[i, 0, r][:, None]).solution
            torch.testing.assert_close(a @ coef, x[i, 0, r][:, None], atol=1e-3, rtol=0)


def test_correlated_noise_is_correlated_between_pixels_and_leaves_the_masks():
    """The added noise has the drawn correlation along both axes, a bounded level, on about
    half the images, and moves no label; off, it draws nothing (older recipes keep their
    images) and is not written to the config (older versions read those files)."""
    g = torch.Generator().manual_seed(0)
    img = torch.rand(16, 1, 64, 64, generator=g) * 10 + 100
    masks = torch.zeros(16, 2, 64, 64)
    masks[:, 1, 20:30, 10:40] = 1  # a labelled patch that must stay where it is
    masks[:, 0] = 1 - masks[:, 1]
    off = ALL_OFF
    assert "correlated_noise" not in off.to_dict()
    assert "correlated_noise" not in TrainConfig(augmentation=off).to_dict()["augmentation"]
    on = Augmentation(**{**off.to_dict(), "correlated_noise": 1.0, "correlated_noise_px": 2.0})
    assert TrainConfig(augmentation=on).to_dict()["augmentation"]["correlated_noise"] == 1.0
    g_off, g_on = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    base, _ = augment_batch(img, masks, aug=off, generator=g_off)
    x, m = augment_batch(img, masks, aug=on, generator=g_on)
    assert torch.equal(g_off.get_state(), torch.Generator().manual_seed(1).get_state())
    assert not torch.equal(g_on.get_state(), g_off.get_state())
    torch.testing.assert_close(m, masks)
    d = (x - base)[:, 0]
    level = d.std(dim=(1, 2)) / base[:, 0].std(dim=(1, 2))
    noisy = level > 1e-4
    assert 3 <= int(noisy.sum()) <= 13  # half of 16 on average
    assert float(level.max()) <= 1.0 + 1e-4
    dn = d[noisy] - d[noisy].mean(dim=(1, 2), keepdim=True)
    var = (dn**2).mean(dim=(1, 2))
    # blurred white noise of σ in [0.5, 2] px correlates exp(−1/(4σ²)) = 0.37–0.94 at 1 px
    # (white noise: 0)
    for lag1 in (
        (dn[:, :, 1:] * dn[:, :, :-1]).mean(dim=(1, 2)) / var,
        (dn[:, 1:, :] * dn[:, :-1, :]).mean(dim=(1, 2)) / var,
    ):
        assert float(lag1.min()) > 0.3
    with pytest.raises(ValueError, match="correlated_noise_px"):
        Augmentation(correlated_noise=0.5, correlated_noise_px=0.1)


def test_loss_is_lower_for_the_right_answer():
    t = torch.zeros(1, 2, 8, 8)
    t[:, 1, 2:4, 2:4] = 1
    t[:, 0] = 1 - t[:, 1]
    good = segmentation_loss(torch.log(t.clamp(1e-4)), t, dice_weight=1)
    bad = segmentation_loss(torch.log((1 - t).clamp(1e-4)), t, dice_weight=1)
    assert float(good) < 0.01 < float(bad)
    np.testing.assert_array_less(0, float(bad))


def test_pairs_from_coordinates_make_aligned_masks_and_train(tmp_path):
    from atomlens.ensemble import ModelConfig
    from atomlens.nn import UNet, UNetConfig
    from atomlens.train import PairSource, TrainConfig, Trainer, ValidationSet

    sims = [simulate_image("graphene", shape=160, pixel_size=0.1, rng=s) for s in (0, 1)]
    src = PairSource(
        [s.image for s in sims],
        [s.truth for s in sims],
        pixel_size=0.1,
        model_pixel_size=0.25,
        class_names=("C",),
        crop=48,
        seed=0,
    )
    x, m = src.batch(0, batch_size=4)
    assert x.shape == (4, 1, 48, 48) and m.shape == (4, 2, 48, 48)
    # label disks sit on the bright columns
    xn = normalize_batch(x)
    assert float(xn[m[:, 1:] > 0.5].mean()) > float(xn[m[:, 1:] < 0.5].mean()) + 0.2
    torch.testing.assert_close(src.batch(3, batch_size=4)[0], src.batch(3, batch_size=4)[0])
    arch = UNetConfig(n_classes=1, width=4, depth=2)
    model = Model(UNet(arch), ModelConfig(architecture=arch, pixel_size_A=0.25, class_names=("C",)))
    val = ValidationSet.from_pairs([sims[0].image], [sims[0].truth], pixel_size=0.1)
    res = Trainer(
        model,
        TrainConfig(steps=2, val_every=1, batch_size=2, device="cpu"),
        src,
        out=tmp_path / "m",
        validation=val,
    ).fit()
    assert res.steps_done == 2 and "f1" in res.best
    assert res.model.config.provenance["data"]["source"] == "pairs"


def test_loss_ignores_pixels_whose_targets_are_all_zero():
    """Pseudo-labels mark uncertain pixels with all-zero targets; the loss must not see them."""
    g = torch.Generator().manual_seed(0)
    t = torch.zeros(2, 3, 16, 16)
    t[:, 0] = 1.0
    t[:, 1, 4:8, 4:8], t[:, 0, 4:8, 4:8] = 1.0, 0.0
    t[:, :, 10:, :] = 0.0  # ignored rows
    logits = torch.randn(2, 3, 16, 16, generator=g)
    other = logits.clone()
    other[:, :, 10:, :] = 50 * torch.randn(2, 3, 6, 16, generator=g)
    for w in (0.0, 1.0):
        a = segmentation_loss(logits, t, dice_weight=w)
        b = segmentation_loss(other, t, dice_weight=w)
        assert torch.allclose(a, b), (w, a, b)
    # and the cross-entropy is the mean over the labelled pixels only
    ce = segmentation_loss(logits, t, dice_weight=0)
    logp = torch.log_softmax(logits, 1)
    ref = -(t * logp).sum(1)[:, :10].mean()
    assert torch.allclose(ce, ref)


def test_ctrl_c_saves_the_step_it_stops_at(tmp_path):
    """Ctrl-C after step 4 of 6 (a checkpoint every 3): the step finishes, a checkpoint of
    step 4 is written, and the resumed run equals an uninterrupted one bit for bit."""
    import json
    import signal

    import atomlens.train.trainer as tr

    full = train_tiny_model(tmp_path / "full", steps=6, val_every=3).model
    real_step = tr.Trainer._step
    # the handler the run must put back: Python's default, or SIG_IGN where the suite was
    # started in the background by a non-interactive shell (nohup, `&`)
    before = signal.getsignal(signal.SIGINT)

    def step(self, step, *args):
        out = real_step(self, step, *args)
        if out[0] == 4:
            signal.raise_signal(signal.SIGINT)  # as a user's Ctrl-C
        return out

    tr.Trainer._step = step
    try:
        with pytest.raises(KeyboardInterrupt, match="interrupted at step 4 of 6"):
            train_tiny_model(tmp_path / "resumed", steps=6, val_every=3)
    finally:
        tr.Trainer._step = real_step
    state = json.loads((tmp_path / "resumed" / "checkpoint" / "state.json").read_text())
    assert state["step"] == 4
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    resumed = train_tiny_model(tmp_path / "resumed", steps=6, val_every=3).model
    for (k, a), b in zip(
        full.network.state_dict().items(), resumed.network.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=k)


@pytest.mark.parametrize("amx", [True, False])
def test_training_on_a_cpu_runs_bfloat16_only_where_it_is_native(tmp_path, monkeypatch, amx):
    """``amp`` takes bfloat16 autocast on CPUs with AMX units (as inference's "auto"),
    float32 on other CPUs and with ``amp=False``; the loss is float32 either way."""
    import atomlens._shared.device as device
    from atomlens.nn.unet import UNet

    monkeypatch.setattr(device, "_cpu_has_amx_bf16", lambda: amx)
    seen = []
    real_forward = UNet.forward

    def forward(self, x):
        out = real_forward(self, x)
        if self.training:
            seen.append((torch.is_autocast_enabled("cpu"), out.dtype))
        return out

    monkeypatch.setattr(UNet, "forward", forward)
    train_tiny_model(tmp_path / "amp", steps=2, device="cpu")
    assert seen and all(s == ((True, torch.bfloat16) if amx else (False, torch.float32))
                        for s in seen), seen  # fmt: skip
    seen.clear()
    train_tiny_model(tmp_path / "f32", steps=2, device="cpu", amp=False)
    assert seen and all(s == (False, torch.float32) for s in seen), seen
