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
