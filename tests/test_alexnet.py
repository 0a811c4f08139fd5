import torch

from metaplastic.alexnet import table_s1_features


def test_parameter_count_of_table_s1():
    features = table_s1_features()
    assert sum(p.numel() for p in features.parameters()) == 2_334_080


def test_lrn_and_groups_are_present():
    features = table_s1_features()
    lrn = [m for m in features if isinstance(m, torch.nn.LocalResponseNorm)]
    assert len(lrn) == 2 and all((m.size, m.alpha, m.beta, m.k) == (5, 1e-4, 0.75, 1.0) for m in lrn)
    convs = [m for m in features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [96, 256, 384, 384, 256]
    assert [c.groups for c in convs] == [1, 2, 1, 2, 2]
    assert [tuple(c.weight.shape[1:]) for c in convs] == [(3, 11, 11), (48, 5, 5), (256, 3, 3),
                                                            (192, 3, 3), (192, 3, 3)]


def test_output_is_9216_for_a_227_input():
    with torch.no_grad():
        out = table_s1_features()(torch.rand(2, 3, 227, 227))
    assert out.shape == (2, 256, 6, 6) and out.flatten(1).shape[1] == 9216


def test_same_seed_same_network_other_seed_another():
    a, b, c = table_s1_features(3), table_s1_features(3), table_s1_features(4)
    for (name, x), (_, y), (_, z) in zip(a.state_dict().items(), b.state_dict().items(),
                                         c.state_dict().items()):
        assert torch.equal(x, y), name
        if name.endswith("weight"):
            assert not torch.equal(x, z), name


def test_independent_of_the_global_random_state():
    torch.manual_seed(123)
    a = table_s1_features(0)
    torch.manual_seed(456)
    b = table_s1_features(0)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


def test_untrained_s1_backbone_extracts_9216_features_and_says_which_network():
    import numpy as np

    from metaplastic.features import extract, load_backbone

    s1, torchvision_variant = load_backbone("untrained-s1"), load_backbone("untrained")
    assert "Table S1" in s1.describe()["architecture"]
    assert "torchvision" in torchvision_variant.describe()["architecture"]
    assert s1.fingerprint == load_backbone("untrained-s1").fingerprint != torchvision_variant.fingerprint
    images = np.random.default_rng(0).integers(0, 256, size=(2, 56, 56), dtype=np.uint8)
    features = extract(s1, images)
    assert features.shape == (2, 9216) and np.isfinite(features).all()


def test_the_faster_lrn_gives_torchs_numbers_bit_for_bit():
    from metaplastic.alexnet import LRN, LocalResponseNorm
    ours, torchs = LocalResponseNorm(**LRN), torch.nn.LocalResponseNorm(**LRN)
    generator = torch.Generator().manual_seed(0)
    for shape in [(3, 96, 9, 9), (2, 256, 5, 5), (2, 7, 3, 3), (2, 1, 4, 4), (2, 3, 2, 2), (2, 6, 5)]:
        x = torch.relu(torch.randn(shape, generator=generator) * 300)    # the scale of conv1's output
        with torch.no_grad():
            assert torch.equal(ours(x), torchs(x)), shape
    for size in (1, 2, 4):                                             # even and trivial windows
        x = torch.rand(2, 6, 3, 3, generator=generator) * 50
        with torch.no_grad():
            assert torch.equal(LocalResponseNorm(size)(x), torch.nn.LocalResponseNorm(size)(x)), size


def test_the_faster_lrn_still_passes_gradients():
    from metaplastic.alexnet import LRN, LocalResponseNorm
    x = torch.rand(2, 8, 3, 3, requires_grad=True)
    LocalResponseNorm(**LRN)(x).sum().backward()
    expected = torch.autograd.grad(torch.nn.LocalResponseNorm(**LRN)(x).sum(), x)[0]
    assert torch.equal(x.grad, expected)


def test_the_two_pass_max_pool_gives_torchs_numbers_bit_for_bit():
    from metaplastic.alexnet import MaxPool2d
    ours = MaxPool2d(kernel_size=3, stride=2)
    generator = torch.Generator().manual_seed(0)
    # The Table S1 pools' sizes, odd and even sides, the smallest window, an unbatched input.
    for shape in [(2, 96, 55, 55), (2, 256, 13, 13), (1, 3, 8, 9), (2, 2, 3, 4), (4, 7, 7)]:
        x = torch.randn(shape, generator=generator)
        x.view(-1)[5] = float("nan")                                   # NaN propagates in both
        with torch.no_grad():
            expected = torch.nn.functional.max_pool2d(x, 3, 2)
            got = ours(x)
        assert got.shape == expected.shape, shape
        assert torch.equal(got.nan_to_num(7.0), expected.nan_to_num(7.0)), shape
        assert torch.equal(got.isnan(), expected.isnan()), shape


def test_the_two_pass_max_pool_leaves_other_pools_and_gradients_to_torch():
    from metaplastic.alexnet import MaxPool2d
    # Ties: torch's pool sends a window's gradient to one element, torch.maximum splits it, so
    # the two passes used under autograd would give other gradients.
    x = torch.ones(1, 2, 9, 9, requires_grad=True)
    MaxPool2d(3, 2)(x).sum().backward()
    assert torch.equal(x.grad, torch.autograd.grad(torch.nn.functional.max_pool2d(x, 3, 2).sum(), x)[0])
    y = torch.rand(1, 2, 9, 9)
    for kwargs in [dict(kernel_size=2, stride=2), dict(kernel_size=3, stride=2, padding=1),
                   dict(kernel_size=3, stride=2, ceil_mode=True)]:
        assert torch.equal(MaxPool2d(**kwargs)(y), torch.nn.MaxPool2d(**kwargs)(y)), kwargs


def test_layer_shapes_and_state_keys_follow_the_network():
    from metaplastic.alexnet import layer_shapes, state_keys

    network = table_s1_features(0).state_dict()
    for name, index in state_keys().items():
        weight, bias = layer_shapes()[name]
        assert tuple(network[f"{index}.weight"].shape) == weight
        assert tuple(network[f"{index}.bias"].shape) == bias
    assert state_keys() == {"conv1": "0", "conv2": "4", "conv3": "8", "conv4": "10", "conv5": "12"}


def test_weights_go_in_unchanged_and_the_wrong_ones_are_named():
    import pytest

    from metaplastic.alexnet import LAYER_NAMES, table_s1_with_weights

    donor = [m for m in table_s1_features(5) if isinstance(m, torch.nn.Conv2d)]
    layers = {name: (conv.weight.double(), conv.bias) for name, conv in zip(LAYER_NAMES, donor)}
    built = table_s1_with_weights(layers)
    state = torch.random.get_rng_state()
    rebuilt = table_s1_with_weights(layers)
    assert torch.equal(torch.random.get_rng_state(), state)   # torch's global stream is left alone
    for a, b, c in zip(built.state_dict().values(), rebuilt.state_dict().values(),
                       table_s1_features(5).state_dict().values()):
        assert torch.equal(a, c) and torch.equal(b, c)
    with pytest.raises(ValueError, match="no conv4"):
        table_s1_with_weights({k: v for k, v in layers.items() if k != "conv4"})
    with pytest.raises(ValueError, match=r"conv3 weights have shape \[384, 256, 5, 5\]"):
        table_s1_with_weights(layers | {"conv3": (torch.zeros(384, 256, 5, 5), torch.zeros(384))})
    with pytest.raises(ValueError, match="conv1 biases are torch.int64, not floating-point numbers"):
        table_s1_with_weights(layers | {"conv1": (layers["conv1"][0], torch.zeros(96, dtype=torch.long))})
