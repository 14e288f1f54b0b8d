import pytest
import torch

from vqviz.errors import ConfigError
from vqviz.nets import ARCHITECTURES, build_decoder, build_encoder, init_weights

SHAPES = [(1, 8, 8), (1, 28, 28), (3, 32, 32)]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name", ARCHITECTURES)
def test_encoder_decoder_shapes_and_range(name, shape):
    torch.manual_seed(0)
    enc, dec = build_encoder(name, shape, 16), build_decoder(name, shape, 16)
    x = torch.rand(3, *shape)
    z = enc(x)
    assert z.shape == (3, 16)
    x_hat = dec(z)
    assert x_hat.shape == (3, *shape)
    assert x_hat.min() >= 0 and x_hat.max() <= 1


def test_paper_layer_widths():
    lae4 = [m.out_features for m in build_encoder("lae4", (1, 28, 28)) if isinstance(m, torch.nn.Linear)]
    assert lae4 == [1024, 512, 256, 128]
    mlp = [m.out_features for m in build_encoder("mlp", (1, 28, 28), 64) if isinstance(m, torch.nn.Linear)]
    assert mlp == [500, 500, 2000, 64]
    cae4 = build_encoder("cae4", (1, 28, 28))
    convs = [(m.out_channels, m.kernel_size) for m in cae4 if isinstance(m, torch.nn.Conv2d)]
    assert convs == [(32, (5, 5)), (64, (5, 5))]
    assert [m.out_features for m in cae4 if isinstance(m, torch.nn.Linear)] == [1024, 128]
    # The paper's CAE-4 keeps the 28 x 28 map: no pooling, 28 * 28 * 64 inputs to the dense layer.
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in cae4)
    assert next(m for m in cae4 if isinstance(m, torch.nn.Linear)).in_features == 28 * 28 * 64
    pooled = build_encoder("cae4_pool", (1, 28, 28))
    assert sum(isinstance(m, torch.nn.MaxPool2d) for m in pooled) == 2
    assert next(m for m in pooled if isinstance(m, torch.nn.Linear)).in_features == 7 * 7 * 64
    for name in ("cae4", "cae4_pool"):
        for shape in ((1, 28, 28), (3, 9, 7)):
            x = torch.rand(2, *shape)
            assert build_decoder(name, shape, 16)(build_encoder(name, shape, 16)(x)).shape == x.shape


def test_glorot_init_is_uniform_within_the_glorot_bound_with_zero_biases():
    net = init_weights(build_encoder("mlp", (1, 28, 28), 64), "glorot")
    for layer in (m for m in net if isinstance(m, torch.nn.Linear)):
        bound = (6 / (layer.in_features + layer.out_features)) ** 0.5
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
        assert torch.count_nonzero(layer.bias) == 0
    torch.manual_seed(0)
    a = build_encoder("lae2", (1, 8, 8))
    torch.manual_seed(0)
    assert torch.equal(init_weights(build_encoder("lae2", (1, 8, 8)), "torch")[1].weight, a[1].weight)
    with pytest.raises(ConfigError, match="init"):
        init_weights(a, "zeros")


def test_latent_relu_is_non_negative():
    z = build_encoder("lae2", (1, 8, 8), 8, latent_activation="relu")(torch.randn(50, 1, 8, 8))
    assert (z >= 0).all()


@pytest.mark.parametrize("args", [("resnet", (1, 8, 8), 8), ("lae2", (8, 8), 8), ("lae2", (1, 8, 8), 0)])
def test_bad_arguments_raise_config_error(args):
    with pytest.raises(ConfigError):
        build_encoder(*args)


def test_resolve_encoder_checks_shape_and_resolves_auto():
    from vqviz.nets import resolve_encoder

    assert resolve_encoder([1, 28, 28], "auto") == ((1, 28, 28), "mlp")
    assert resolve_encoder((3, 32, 32), "auto") == ((3, 32, 32), "cae4_pool")
    assert resolve_encoder((3, 32, 32), "auto", ("cnn", "mlp"), auto="cnn") == ((3, 32, 32), "cnn")
    with pytest.raises(ConfigError, match="in_shape"):
        resolve_encoder((28, 28), "mlp")
    with pytest.raises(ConfigError, match="unknown encoder 'cnn'"):
        resolve_encoder((1, 8, 8), "cnn")
