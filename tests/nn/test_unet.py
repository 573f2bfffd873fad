import json

import pytest
import torch

from atomlens.nn import UNet, UNetConfig


def test_default_is_small_and_outputs_background_plus_classes():
    net = UNet(UNetConfig(n_classes=2))
    assert 1e5 < net.n_parameters() < 1e6
    out = net(torch.zeros(2, 1, 64, 64))
    assert out.shape == (2, 3, 64, 64)


def test_two_input_channels_and_every_norm():
    for norm in ("group", "batch", "none"):
        net = UNet(UNetConfig(in_channels=2, n_classes=1, width=4, depth=2, norm=norm, dropout=0.1))
        assert net(torch.zeros(1, 2, 16, 16)).shape == (1, 2, 16, 16)


def test_receptive_field_bounds_the_measured_one():
    cfg = UNetConfig(width=4, depth=2, norm="none")
    net = UNet(cfg).double()
    x = torch.zeros(1, 1, 96, 96, dtype=torch.float64, requires_grad=True)
    net(x)[0, 1, 48, 48].backward()
    cols = torch.nonzero(x.grad[0, 0].abs().sum(0)).ravel()
    measured = int(cols.max() - cols.min() + 1)
    assert measured <= cfg.receptive_field_px() <= measured + 2**cfg.depth * 2


def test_config_round_trip_and_errors():
    cfg = UNetConfig(n_classes=3, width=8)
    assert UNetConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown UNetConfig keys"):
        UNetConfig.from_dict({"widht": 8})
    with pytest.raises(ValueError, match="depth must be"):
        UNetConfig(depth=0)
    with pytest.raises(ValueError, match="multiples of 8"):
        UNet(UNetConfig(depth=3, width=4))(torch.zeros(1, 1, 20, 20))


@pytest.mark.parametrize("norm", ["group", "batch", "none"])
def test_the_inference_copy_computes_the_same_logits(norm):
    torch.manual_seed(0)
    net = UNet(UNetConfig(n_classes=2, width=8, depth=2, norm=norm, dropout=0.1)).eval()
    for m in net.modules():  # statistics as training leaves them, not the identity
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.normal_(0, 0.5)
            m.running_var.uniform_(0.2, 3.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.normal_(0, 0.3)
    x = torch.randn(2, 1, 64, 48)
    fast = net.for_inference()
    # batch norms are folded into their convolutions: none is left to run
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fast.modules())
    with torch.no_grad():
        a, b = net(x), fast(x)
    assert b.shape == a.shape == (2, 3, 64, 48)
    torch.testing.assert_close(b, a, atol=1e-4, rtol=1e-4)
    # a copy: the network itself is left as it was (contiguous, trainable)
    assert all(p.is_contiguous() for p in net.parameters())
    with torch.no_grad():
        net.head.bias.add_(1.0)
        assert not torch.allclose(fast(x), net(x), atol=0.1)


def test_channels_per_level_and_their_round_trip():
    cfg = UNetConfig(n_classes=2, depth=3, widths=[8, 32, 64, 128])  # a list, as JSON gives
    assert cfg.widths == (8, 32, 64, 128) and cfg.level_widths() == (8, 32, 64, 128)
    assert UNetConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert UNetConfig(width=12).level_widths() == (12, 24, 48, 96)
    # unset, it is not written: files stay readable by versions that do not know it
    assert "widths" not in UNetConfig().to_dict()
    net = UNet(cfg)
    assert net.down[0][0].out_channels == 8 and net.bottleneck[0].out_channels == 128
    assert net(torch.zeros(1, 1, 32, 32)).shape == (1, 3, 32, 32)
    fast = net.eval().for_inference()
    x = torch.randn(1, 1, 32, 40)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), net(x), atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="widths must be depth"):
        UNetConfig(depth=3, widths=(8, 16, 32))
