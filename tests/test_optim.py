import copy
import re

import pytest
import torch

from metaplastic import MetaplasticSGD, plasticity_scale
from metaplastic import plasticity as pl


def make_mlp(seed=0, dtype=torch.float32):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(),
                               torch.nn.Linear(16, 4)).to(dtype)


def batches(n, seed=1, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(32, 12, generator=g, dtype=dtype), torch.randint(0, 4, (32,), generator=g))
            for _ in range(n)]


def train(model, opt, data, boundaries=()):
    for k, (x, y) in enumerate(data):
        if k in boundaries:
            opt.consolidate()
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()


def params_of(model):
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("foreach", [True, False])
def test_all_flexible_equals_plain_sgd(foreach):
    data = batches(20)
    ours, theirs = make_mlp(), make_mlp()
    opt = MetaplasticSGD(ours.parameters(), lr=0.05, alpha=4e5, flexibility="conventional",
                         foreach=foreach)
    sgd = torch.optim.SGD(theirs.parameters(), lr=0.05, foreach=True)
    train(ours, opt, data, boundaries={0, 5, 10, 15})
    train(theirs, sgd, data)
    for a, b in zip(params_of(ours), params_of(theirs)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("foreach", [True, False])
def test_all_flexible_equals_sgd_with_momentum_and_weight_decay(foreach):
    data = batches(10)
    ours, theirs = make_mlp(dtype=torch.float64), make_mlp(dtype=torch.float64)
    data = [(x.double(), y) for x, y in data]
    opt = MetaplasticSGD(ours.parameters(), lr=0.05, alpha=1.0, flexibility=1.0, momentum=0.9,
                         weight_decay=1e-3, foreach=foreach)
    sgd = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    train(ours, opt, data, boundaries={0, 5})
    train(theirs, sgd, data)
    for a, b in zip(params_of(ours), params_of(theirs)):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-14)


def test_zero_flexibility_weights_never_change_but_biases_learn():
    model = make_mlp()
    before = params_of(model)
    opt = MetaplasticSGD(model.parameters(), lr=0.1, alpha=4e5, flexibility=0.0)
    train(model, opt, batches(10), boundaries={0, 3, 6})
    after = params_of(model)
    for b, a, p in zip(before, after, model.parameters()):
        if p.dim() >= 2:
            assert torch.equal(a, b)
        else:
            assert not torch.equal(a, b)


def test_mixed_flexibility_zero_entries_frozen_one_entries_plain():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(6, 5))
    f = torch.zeros(6, 5)
    f[::2] = 1.0                                   # even rows flexible, odd rows frozen
    opt = MetaplasticSGD([w], lr=0.1, alpha=4e5, flexibility=f)
    w0 = w.detach().clone()
    reference = w.detach().clone()
    for k in range(6):
        if k % 2 == 0:
            opt.consolidate()
        grad = torch.randn(6, 5)
        w.grad = grad.clone()
        opt.step()
        reference[::2] -= 0.1 * grad[::2]
    assert torch.equal(w[1::2], w0[1::2])
    torch.testing.assert_close(w[::2], reference[::2])


def test_stable_network_changes_less_over_second_item():
    data = batches(40)
    drift = {}
    for name in ("conventional", "stable"):
        model = make_mlp()
        opt = MetaplasticSGD(model.parameters(), lr=0.05, alpha=50.0, flexibility=name)
        train(model, opt, data[:20], boundaries={0})
        after_first = params_of(model)
        train(model, opt, data[20:], boundaries={0})
        drift[name] = sum((a - b).abs().sum().item() for a, b, p in
                          zip(params_of(model), after_first, model.parameters()) if p.dim() >= 2)
    assert drift["stable"] < 0.8 * drift["conventional"]


def test_scale_is_one_before_first_boundary_and_follows_eq2_after():
    model = make_mlp(dtype=torch.float64)
    f = pl.uniform(0.05, 1.0)
    opt = MetaplasticSGD(model.parameters(), lr=0.05, alpha=30.0, flexibility=f,
                         generator=torch.Generator().manual_seed(4))
    weight = model[0].weight
    assert torch.equal(opt.state[weight]["scale"], torch.ones_like(weight))
    assert "scale" not in opt.state[model[0].bias]        # biases learn at the plain rate
    train(model, opt, [(x.double(), y) for x, y in batches(5)])
    state = opt.state[weight]
    assert torch.equal(state["scale"], torch.ones_like(weight))  # held until consolidate()
    opt.consolidate()
    expected = plasticity_scale(state["flexibility"], weight.detach() - state["initial"], 30.0)
    assert torch.equal(state["scale"], expected)
    assert state["scale"].min() < 0.99


def test_state_holds_three_tensors_per_weight_and_scales_biases_on_request():
    model = make_mlp()
    opt = MetaplasticSGD(model.parameters(), lr=0.1, alpha=1.0, flexibility="hybrid",
                         scale_biases=True)
    for p in model.parameters():
        assert set(opt.state[p]) == {"flexibility", "initial", "scale"}
        assert opt.state[p]["flexibility"].shape == p.shape


def test_scaled_group_flag_overrides_dimension_rule():
    stacked_bias = torch.nn.Parameter(torch.zeros(3, 5))        # [B, out] bias, 2-d
    weight = torch.nn.Parameter(torch.randn(3, 5, 4))
    opt = MetaplasticSGD([{"params": [weight]}, {"params": [stacked_bias], "scaled": False}],
                         lr=0.1, alpha=1.0, flexibility=0.0)
    assert "scale" in opt.state[weight] and "scale" not in opt.state[stacked_bias]


def test_flexibility_drawn_from_generator_is_reproducible():
    def flex(seed):
        model = make_mlp()
        opt = MetaplasticSGD(model.parameters(), lr=0.1, alpha=1.0, flexibility="hybrid",
                             generator=torch.Generator().manual_seed(seed))
        return opt.state[model[0].weight]["flexibility"]

    assert torch.equal(flex(7), flex(7))
    assert not torch.equal(flex(7), flex(8))


def test_param_groups_have_their_own_settings():
    model = make_mlp()
    opt = MetaplasticSGD([{"params": model[0].parameters(), "flexibility": "stable", "lr": 0.01},
                          {"params": model[2].parameters()}], lr=0.1, alpha=2.0,
                         flexibility="conventional")
    assert torch.all(opt.state[model[0].weight]["flexibility"] == 0.3)
    assert torch.all(opt.state[model[2].weight]["flexibility"] == 1.0)
    assert opt.param_groups[0]["lr"] == 0.01 and opt.param_groups[1]["lr"] == 0.1


def test_stacked_parameters_are_elementwise():
    # A [B, out, in] stack updates each slice exactly as a lone [out, in] weight would.
    torch.manual_seed(0)
    stack = torch.nn.Parameter(torch.randn(3, 4, 5))
    flex = torch.rand(3, 4, 5)
    singles = [torch.nn.Parameter(stack[b].detach().clone()) for b in range(3)]
    opt_stack = MetaplasticSGD([stack], lr=0.1, alpha=5.0, flexibility=flex)
    opts = [MetaplasticSGD([s], lr=0.1, alpha=5.0, flexibility=flex[b]) for b, s in enumerate(singles)]
    for k in range(6):
        grad = torch.randn(3, 4, 5)
        if k % 2 == 0:
            opt_stack.consolidate()
            for o in opts:
                o.consolidate()
        stack.grad = grad
        opt_stack.step()
        for b, (s, o) in enumerate(zip(singles, opts)):
            s.grad = grad[b].clone()
            o.step()
    for b in range(3):
        assert torch.equal(stack[b], singles[b])


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_state_dict_round_trip_resumes_bit_identically(momentum):
    data = batches(30)
    model = make_mlp()
    opt = MetaplasticSGD(model.parameters(), lr=0.05, alpha=20.0, flexibility="hybrid",
                         momentum=momentum, generator=torch.Generator().manual_seed(1))
    train(model, opt, data[:10], boundaries={0, 5})
    saved = copy.deepcopy(opt.state_dict())

    clone = make_mlp(seed=99)
    clone.load_state_dict(model.state_dict())
    fresh = MetaplasticSGD(clone.parameters(), lr=0.05, alpha=20.0, flexibility="hybrid",
                           momentum=momentum, generator=torch.Generator().manual_seed(2))
    fresh.load_state_dict(saved)
    for p, q in zip(model.parameters(), clone.parameters()):
        for key in opt.state[p]:
            assert torch.equal(opt.state[p][key], fresh.state[q][key])

    train(model, opt, data[10:], boundaries={0, 10})
    train(clone, fresh, data[10:], boundaries={0, 10})
    for a, b in zip(params_of(model), params_of(clone)):
        assert torch.equal(a, b)


@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.8, 0.01)])
def test_foreach_and_single_tensor_kernels_agree(momentum, weight_decay):
    g = torch.Generator().manual_seed(5)
    shapes = [(7, 3), (5,), (2, 4, 6), (1, 1), (9,)]
    results = []
    for foreach in (True, False):
        params = [torch.nn.Parameter(torch.randn(s, generator=torch.Generator().manual_seed(i),
                                                 dtype=torch.float64)) for i, s in enumerate(shapes)]
        opt = MetaplasticSGD(params, lr=0.03, alpha=3.0, flexibility="hybrid", momentum=momentum,
                             weight_decay=weight_decay, foreach=foreach,
                             generator=torch.Generator().manual_seed(0))
        grads_g = torch.Generator().manual_seed(11)
        for k in range(8):
            if k % 3 == 0:
                opt.consolidate()
            for p in params:
                p.grad = torch.randn(p.shape, generator=grads_g, dtype=torch.float64)
            params[3].grad = None                       # a parameter without gradient is skipped
            opt.step()
        results.append([p.detach().clone() for p in params])
    del g
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-15)


def test_converges_on_a_quadratic_with_hybrid_profile():
    torch.manual_seed(0)
    target = torch.randn(20, 10)
    w = torch.nn.Parameter(torch.zeros(20, 10))
    opt = MetaplasticSGD([w], lr=0.2, alpha=0.05, flexibility="hybrid",
                         generator=torch.Generator().manual_seed(0))
    for k in range(400):
        if k % 50 == 0:
            opt.consolidate()
        opt.zero_grad()
        ((w - target) ** 2).sum().mul(0.5).backward()
        opt.step()
    assert ((w - target).norm() / target.norm()).item() < 1e-3


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lr=-0.1), "lr must be in [0, inf), got -0.1"),
        (dict(lr=float("nan")), "lr must be finite"),
        (dict(alpha=-1.0), "alpha must be in [0, inf), got -1.0"),
        (dict(alpha=float("nan")), "alpha must be finite"),
        (dict(momentum=1.5), "momentum must be in [0, 1)"),
        (dict(weight_decay=-1.0), "weight_decay must be in [0, inf)"),
        (dict(flexibility=1.2), "flexibility must be in [0, 1], got 1.2"),
        (dict(flexibility=float("nan")), "flexibility must be in [0, 1], got nan"),
        (dict(flexibility="plastic"), "unknown flexibility profile 'plastic'"),
        (dict(flexibility=torch.full((3, 3), 0.5)), "shape (3, 3) but its parameter has shape (4, 3)"),
        (dict(flexibility=torch.full((4, 3), 2.0)), "[0, 1]"),
    ],
)
def test_bad_arguments_raise_value_errors(kwargs, message):
    settings = dict(lr=0.1, alpha=1.0, flexibility="hybrid") | kwargs
    with pytest.raises(ValueError, match=re.escape(message)):
        MetaplasticSGD([torch.nn.Parameter(torch.zeros(4, 3))], **settings)
