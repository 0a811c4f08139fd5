import copy
import re

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from metaplastic import MetaplasticSGD, plasticity_scale
from metaplastic import optim as optim_module
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
    assert "scale" not in opt.state[weight]               # created lazily, at the first step
    assert "scale" not in opt.state[model[0].bias]        # biases learn at the plain rate
    start = weight.detach().clone()
    train(model, opt, [(x.double(), y) for x, y in batches(5)])
    state = opt.state[weight]
    assert torch.equal(state["initial"], start)
    assert torch.equal(state["scale"], torch.ones_like(weight))  # held until consolidate()
    opt.consolidate()
    expected = plasticity_scale(opt.flexibility_of(weight), weight.detach() - state["initial"], 30.0)
    assert torch.equal(state["scale"], expected)
    assert state["scale"].min() < 0.99


def tensor_bytes(opt, p):
    return sum(v.numel() * v.element_size() for v in opt.state[p].values()
               if isinstance(v, torch.Tensor) and v.numel() == p.numel())


@pytest.mark.parametrize(
    "flexibility, keys, nbytes",
    [
        ("hybrid", {"flexibility_rng", "initial", "scale"}, 8),
        (pl.biased(0.5, toward="stable"), {"flexibility_rng", "initial", "scale"}, 8),
        (pl.beta(2.0, 2.0), {"flexibility", "initial", "scale"}, 12),
        (0.3, {"initial", "scale"}, 8),                  # a constant: no per-weight flexibility
        ("conventional", set(), 0),                      # f = 1: plain SGD, no state at all
        (0.0, set(), 0),                                 # f = 0: frozen, no state at all
    ],
    ids=["hybrid", "biased", "beta", "constant", "conventional", "frozen"],
)
def test_state_per_profile_and_bytes_per_weight(flexibility, keys, nbytes):
    model = make_mlp()
    opt = MetaplasticSGD(model.parameters(), lr=0.1, alpha=1.0, flexibility=flexibility,
                         generator=torch.Generator().manual_seed(0))
    train(model, opt, batches(2), boundaries={0, 1})
    weight = model[0].weight
    assert set(opt.state.get(weight, {})) == keys
    assert tensor_bytes(opt, weight) == nbytes * weight.numel()
    assert not opt.state.get(model[0].bias)


def test_explicit_flexibility_is_stored_once_in_its_own_dtype():
    w = torch.nn.Parameter(torch.randn(6, 5))
    f = torch.rand(6, 5, generator=torch.Generator().manual_seed(0)).half()
    opt = MetaplasticSGD([w], lr=0.1, alpha=1.0, flexibility=f)
    assert opt.param_groups[0]["flexibility"] == {"profile": "explicit", "shape": [6, 5]}
    assert opt.state[w]["flexibility"].dtype == torch.float16      # 2 bytes per weight
    assert torch.equal(opt.flexibility_of(w), f.float())


def test_scale_biases_on_request():
    model = make_mlp()
    opt = MetaplasticSGD(model.parameters(), lr=0.1, alpha=1.0, flexibility="hybrid",
                         scale_biases=True)
    opt.consolidate()
    for p in model.parameters():
        assert opt.state[p]["scale"].shape == p.shape
        assert opt.flexibility_of(p).shape == p.shape


def test_scaled_group_flag_overrides_dimension_rule():
    stacked_bias = torch.nn.Parameter(torch.zeros(3, 5))        # [B, out] bias, 2-d
    weight = torch.nn.Parameter(torch.randn(3, 5, 4))
    opt = MetaplasticSGD([{"params": [weight]}, {"params": [stacked_bias], "scaled": False}],
                         lr=0.1, alpha=1.0, flexibility=0.5)
    opt.consolidate()
    assert "scale" in opt.state[weight] and "scale" not in opt.state[stacked_bias]


def test_flexibility_drawn_from_generator_is_reproducible():
    def flex(seed):
        model = make_mlp()
        opt = MetaplasticSGD(model.parameters(), lr=0.1, alpha=1.0, flexibility="hybrid",
                             generator=torch.Generator().manual_seed(seed))
        opt.consolidate()
        return opt.flexibility_of(model[0].weight)

    assert torch.equal(flex(7), flex(7))
    assert not torch.equal(flex(7), flex(8))
    # The first weight's draw is the generator's first draw, redrawn identically at each boundary.
    assert torch.equal(flex(7), pl.uniform().sample((16, 12), torch.Generator().manual_seed(7)))


def test_param_groups_have_their_own_settings():
    model = make_mlp()
    opt = MetaplasticSGD([{"params": model[0].parameters(), "flexibility": "stable", "lr": 0.01},
                          {"params": model[2].parameters()}], lr=0.1, alpha=2.0,
                         flexibility="conventional")
    assert torch.all(opt.flexibility_of(model[0].weight) == 0.3)
    assert torch.all(opt.flexibility_of(model[2].weight) == 1.0)
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
        assert opt.state[p].keys() == fresh.state[q].keys()
        for key, value in opt.state[p].items():
            assert _same(value, fresh.state[q][key])

    train(model, opt, data[10:], boundaries={0, 10})
    train(clone, fresh, data[10:], boundaries={0, 10})
    for a, b in zip(params_of(model), params_of(clone)):
        assert torch.equal(a, b)


def _same(a, b):
    if isinstance(a, torch.Tensor):
        return a.dtype == b.dtype and torch.equal(a, b)
    return a == b


@pytest.mark.parametrize("scale_dtype", [None, torch.float16])
@pytest.mark.parametrize("momentum, weight_decay", [(0.0, 0.0), (0.8, 0.01)])
def test_foreach_and_single_tensor_kernels_agree(momentum, weight_decay, scale_dtype):
    # float32 and float64 parameters in one group (two buckets), scaled and plain ones in each,
    # S possibly in a third dtype: the foreach kernel groups by the parameters alone.
    shapes = [(7, 3), (5,), (2, 4, 6), (1, 1), (9,), (3, 3)]
    dtypes = [torch.float64, torch.float32, torch.float32, torch.float64, torch.float64, torch.float32]
    results = []
    for foreach in (True, False):
        params = [torch.nn.Parameter(torch.randn(s, generator=torch.Generator().manual_seed(i),
                                                 dtype=dtype))
                  for i, (s, dtype) in enumerate(zip(shapes, dtypes))]
        start = [p.detach().clone() for p in params]
        opt = MetaplasticSGD(params, lr=0.03, alpha=3.0, flexibility="hybrid", momentum=momentum,
                             weight_decay=weight_decay, foreach=foreach, scale_dtype=scale_dtype,
                             generator=torch.Generator().manual_seed(0))
        grads_g = torch.Generator().manual_seed(11)
        for k in range(8):
            if k % 3 == 0:
                opt.consolidate()
            for p in params:
                p.grad = torch.randn(p.shape, generator=grads_g, dtype=torch.float64).to(p.dtype)
            params[3].grad = None                       # a parameter without gradient is skipped
            opt.step()
        assert torch.equal(params[3], start[3])
        assert all(not torch.equal(p, p0) for i, (p, p0) in enumerate(zip(params, start)) if i != 3)
        results.append([p.detach().clone() for p in params])
    for a, b in zip(*results):
        assert torch.equal(a, b)


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


# ----------------------------------------------------------- state that follows the model


def test_weights_loaded_after_construction_are_the_initial_weights():
    # Build the optimizer, then load pretrained weights: S must measure drift from the loaded ones.
    pretrained = make_mlp(seed=42).state_dict()
    data = batches(10)
    late = make_mlp(seed=0)
    opt_late = MetaplasticSGD(late.parameters(), lr=0.05, alpha=10.0, flexibility="hybrid",
                              generator=torch.Generator().manual_seed(3))
    late.load_state_dict(pretrained)
    early = make_mlp(seed=0)
    early.load_state_dict(pretrained)
    opt_early = MetaplasticSGD(early.parameters(), lr=0.05, alpha=10.0, flexibility="hybrid",
                               generator=torch.Generator().manual_seed(3))
    for model, opt in ((late, opt_late), (early, opt_early)):
        train(model, opt, data, boundaries={0, 5})          # two items
    weight = late[0].weight
    assert torch.equal(opt_late.state[weight]["initial"], pretrained["0.weight"])
    assert opt_late.state[weight]["scale"].mean() > 0.9      # small drift, not "every S is 0"
    for a, b in zip(params_of(late), params_of(early)):
        assert torch.equal(a, b)


def test_model_moved_to_float64_after_construction_gets_float64_state():
    data = [(x.double(), y) for x, y in batches(6)]
    moved = make_mlp()
    opt = MetaplasticSGD(moved.parameters(), lr=0.05, alpha=10.0, flexibility="hybrid",
                         generator=torch.Generator().manual_seed(3))
    moved.to(torch.float64)
    built = make_mlp(dtype=torch.float64)
    reference = MetaplasticSGD(built.parameters(), lr=0.05, alpha=10.0, flexibility="hybrid",
                               generator=torch.Generator().manual_seed(3))
    train(moved, opt, data, boundaries={0, 3})
    train(built, reference, data, boundaries={0, 3})
    state = opt.state[moved[0].weight]
    assert state["initial"].dtype == torch.float64 and state["scale"].dtype == torch.float64
    for a, b in zip(params_of(moved), params_of(built)):
        assert torch.equal(a, b)


def test_state_follows_a_move_after_training_started():
    model = make_mlp()
    opt = MetaplasticSGD(model.parameters(), lr=0.05, alpha=10.0, flexibility="hybrid", momentum=0.5)
    train(model, opt, batches(4), boundaries={0, 2})
    initial = opt.state[model[0].weight]["initial"].clone()
    model.double()
    train(model, opt, [(x.double(), y) for x, y in batches(4)], boundaries={0})
    state = opt.state[model[0].weight]
    assert state["initial"].dtype == state["scale"].dtype == state["momentum_buffer"].dtype == torch.float64
    assert torch.equal(state["initial"], initial.double())


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_low_precision_weights_are_refused_with_a_clear_message(dtype):
    with pytest.raises(ValueError, match=r"torch\.(bfloat16|float16): .*float32 master weights"):
        MetaplasticSGD(make_mlp().to(dtype).parameters(), lr=0.1, alpha=1.0, flexibility="hybrid")
    model = make_mlp()
    opt = MetaplasticSGD(model.parameters(), lr=0.1, alpha=1.0, flexibility="hybrid")
    model.to(dtype)                                  # moved after construction: refused at the boundary
    with pytest.raises(ValueError, match="float32 master weights"):
        opt.consolidate()
    # Conventional (f = 1) is plain SGD and keeps no state: low precision is the user's choice.
    MetaplasticSGD(make_mlp().to(dtype).parameters(), lr=0.1, alpha=1.0, flexibility=1.0)


def test_frozen_parameters_get_no_state_and_draw_when_unfrozen():
    model = make_mlp()
    model[0].weight.requires_grad_(False)
    opt = MetaplasticSGD(model.parameters(), lr=0.05, alpha=10.0, flexibility="hybrid",
                         generator=torch.Generator().manual_seed(0))
    train(model, opt, batches(4), boundaries={0, 2})
    assert not opt.state.get(model[0].weight)
    assert set(opt.state[model[2].weight]) == {"flexibility_rng", "initial", "scale"}
    model[0].weight.requires_grad_(True)              # unfrozen: flexibility drawn at its first boundary
    before = model[0].weight.detach().clone()
    train(model, opt, batches(4), boundaries={0, 2})
    assert torch.equal(opt.state[model[0].weight]["initial"], before)
    assert not torch.equal(model[0].weight, before)


def test_reanchor_takes_current_weights_as_initial():
    model = make_mlp()
    opt = MetaplasticSGD(model.parameters(), lr=0.5, alpha=50.0, flexibility="hybrid")
    train(model, opt, batches(10), boundaries={0, 5})
    opt.consolidate()
    weight = model[0].weight
    assert opt.state[weight]["scale"].min() < 0.5
    opt.reanchor()
    opt.consolidate()
    assert torch.equal(opt.state[weight]["initial"], weight.detach())
    f = opt.flexibility_of(weight)
    assert torch.equal(opt.state[weight]["scale"], (f > 0).float())


def test_missing_flexibilities_are_drawn_in_parameter_order_at_a_boundary():
    # A kept w0 without its flexibility (a) before a wiped state (b), in one group, from torch's
    # global generator: a draws first, then b, as each would at its own place in the group.
    a, b = (torch.nn.Parameter(torch.randn(4, 3)), torch.nn.Parameter(torch.randn(5, 2)))
    profile = pl.beta(2.0, 2.0)
    opt = MetaplasticSGD([a, b], lr=0.1, alpha=10.0, flexibility=profile)
    opt.consolidate()
    del opt.state[a]["flexibility"]
    opt.state[b] = {}
    torch.manual_seed(3)
    opt.consolidate()
    g = torch.Generator().manual_seed(3)
    assert torch.equal(opt.state[a]["flexibility"], profile.sample(a.shape, g))
    assert torch.equal(opt.state[b]["flexibility"], profile.sample(b.shape, g))
    assert torch.equal(opt.state[b]["initial"], b.detach())


def test_a_wiped_state_is_rebuilt_not_a_crash():
    # What a framework resetting the optimizer (optimizer.state = defaultdict(dict)) leaves behind.
    from collections import defaultdict

    model = make_mlp()
    opt = MetaplasticSGD(model.parameters(), lr=0.05, alpha=10.0, flexibility="hybrid")
    opt.state = defaultdict(dict)
    train(model, opt, batches(4), boundaries={0, 2})
    assert set(opt.state[model[0].weight]) == {"flexibility_rng", "initial", "scale"}


# ------------------------------------------------------------------ plain-data state dict


@pytest.mark.parametrize("scale_dtype", [None, torch.bfloat16])
@pytest.mark.parametrize("flexibility", ["hybrid", 0.4, pl.beta(2.0, 3.0), "explicit"])
def test_state_dict_loads_with_weights_only_and_resumes_bit_identically(flexibility, scale_dtype):
    import io

    data = batches(16)
    model = make_mlp()
    if flexibility == "explicit":
        flexibility = torch.rand(16, 12, generator=torch.Generator().manual_seed(0))
        groups = [{"params": [model[0].weight], "flexibility": flexibility},
                  {"params": [model[0].bias, model[2].weight, model[2].bias], "flexibility": 0.7}]
    else:
        groups = model.parameters()
    settings = dict(lr=0.05, alpha=20.0, flexibility=0.5, momentum=0.5, scale_dtype=scale_dtype)
    opt = MetaplasticSGD(groups, **(settings | ({} if isinstance(groups, list) else
                                                {"flexibility": flexibility})),
                         generator=torch.Generator().manual_seed(1))
    train(model, opt, data[:8], boundaries={0, 4})
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": opt.state_dict()}, buffer)
    buffer.seek(0)
    saved = torch.load(buffer, weights_only=True)

    clone = make_mlp(seed=99)
    clone.load_state_dict(saved["model"])
    groups = ([{"params": [clone[0].weight], "flexibility": torch.full((16, 12), 0.5)},
               {"params": [clone[0].bias, clone[2].weight, clone[2].bias], "flexibility": 0.7}]
              if isinstance(groups, list) else clone.parameters())
    fresh = MetaplasticSGD(groups, **(settings | {"flexibility": 1.0}),
                           generator=torch.Generator().manual_seed(2))
    fresh.load_state_dict(saved["optimizer"])
    for p, q in zip(model.parameters(), clone.parameters()):
        assert opt.state[p].keys() == fresh.state[q].keys()
        for key, value in opt.state[p].items():
            assert _same(value, fresh.state[q][key]), key
    train(model, opt, data[8:], boundaries={0, 4})
    train(clone, fresh, data[8:], boundaries={0, 4})
    for a, b in zip(params_of(model), params_of(clone)):
        assert torch.equal(a, b)


def test_param_groups_are_plain_data():
    import json

    opt = MetaplasticSGD([{"params": make_mlp().parameters(), "flexibility": pl.biased(0.5)}],
                         lr=0.1, alpha=1.0, flexibility="hybrid", scale_dtype=torch.bfloat16,
                         generator=torch.Generator().manual_seed(0))
    groups = opt.state_dict()["param_groups"]
    text = json.dumps(groups)                           # numbers, strings, lists, None only
    assert '"profile": "biased"' in text and '"scale_dtype": "bfloat16"' in text


# ------------------------------------------------------------------ S stored in bfloat16


@pytest.mark.parametrize("foreach", [True, False])
def test_bfloat16_scale_is_stored_small_and_steps_like_rounded_fp32(foreach):
    data = batches(12)
    results = []
    for scale_dtype in (torch.bfloat16, None):
        model = make_mlp()
        opt = MetaplasticSGD(model.parameters(), lr=0.5, alpha=30.0, flexibility="hybrid",
                             generator=torch.Generator().manual_seed(0), scale_dtype=scale_dtype,
                             foreach=foreach)
        train(model, opt, data[:6], boundaries={0, 3})
        results.append((model, opt))
    (m16, o16), (m32, o32) = results
    w16, w32 = m16[0].weight, m32[0].weight
    assert o16.state[w16]["scale"].dtype == torch.bfloat16
    assert tensor_bytes(o16, w16) == 6 * w16.numel()
    torch.testing.assert_close(o16.state[w16]["scale"].float(), o32.state[w32]["scale"],
                               rtol=2**-8, atol=0)
    # One step with S rounded to bfloat16 is the fp32 step with that rounded S.
    o32.state[w32]["scale"].copy_(o16.state[w16]["scale"])
    m32.load_state_dict(m16.state_dict())
    train(m16, o16, data[6:7])
    train(m32, o32, data[6:7])
    assert torch.equal(w16, w32)


def test_bad_scale_dtype_is_refused():
    with pytest.raises(ValueError, match="scale_dtype must be None or a floating dtype"):
        MetaplasticSGD(make_mlp().parameters(), lr=0.1, alpha=1.0, flexibility="hybrid",
                       scale_dtype=torch.int8)


def test_drifts_are_the_weights_minus_their_initial_values():
    model = make_mlp()
    opt = MetaplasticSGD(model.parameters(), lr=0.1, alpha=0.0, flexibility="hybrid")
    start = [model[0].weight.detach().clone(), model[2].weight.detach().clone()]
    train(model, opt, batches(3), boundaries={0})
    drifts = opt.drifts()
    assert len(drifts) == 2                                       # weights only, not biases
    for d, w, w0 in zip(drifts, (model[0].weight, model[2].weight), start):
        assert torch.equal(d, w.detach() - w0) and d.abs().max() > 0


def test_loads_a_state_dict_saved_by_the_previous_version():
    # Before: param groups held the profile object, and every scaled weight kept f, w0 and S.
    model = make_mlp()
    opt = MetaplasticSGD(model.parameters(), lr=0.05, alpha=20.0, flexibility="hybrid")
    train(model, opt, batches(4), boundaries={0, 2})
    f = opt.flexibility_of(model[0].weight)
    old = opt.state_dict()
    for group in old["param_groups"]:
        group["flexibility"] = pl.Uniform(0.0, 1.0)
        del group["scale_dtype"], group["generator_device"]
    for index, state in old["state"].items():
        if "flexibility_rng" in state:
            del state["flexibility_rng"]
            state["flexibility"] = f if index == 0 else opt.flexibility_of(model[2].weight)
    fresh = MetaplasticSGD(make_mlp().parameters(), lr=0.05, alpha=20.0, flexibility=1.0)
    fresh.load_state_dict(old)
    weight = list(fresh.param_groups[0]["params"])[0]
    assert fresh.param_groups[0]["flexibility"] == {"profile": "uniform", "low": 0.0, "high": 1.0}
    assert torch.equal(fresh.flexibility_of(weight), f)


# ------------------------------------------------------------------ fused kernel (S read compactly)


def _train_bfloat16(fused, data, momentum=0.8, weight_decay=1e-3):
    model = make_mlp()
    opt = MetaplasticSGD(model.parameters(), lr=0.5, alpha=30.0, flexibility="hybrid",
                         generator=torch.Generator().manual_seed(0), scale_dtype=torch.bfloat16,
                         momentum=momentum, weight_decay=weight_decay, fused=fused)
    train(model, opt, data, boundaries={0, 3, 6})
    return model, opt


def _within_one_rounding(a, b):
    """Equal, or neighbours: one rounding of the product lr * S * d apart at most."""
    return bool(((a == b) | (torch.nextafter(a, b) == b)).all())


@pytest.mark.slow   # compiles a kernel / starts a fresh interpreter: about 10-20 s
def test_fused_kernel_computes_the_eager_update_without_recompiling(monkeypatch):
    # The one test that compiles (seconds; torch caches the kernel on disk for later runs).
    data = batches(8)
    calls = []
    kernel = optim_module._compiled_kernel
    monkeypatch.setattr(optim_module, "_compiled_kernel", lambda: calls.append(1) or kernel())
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    fused_model, fused_opt = _train_bfloat16(True, data)
    compiled = torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs
    eager_model, _ = _train_bfloat16(None, data)
    for a, b in zip(fused_model.parameters(), eager_model.parameters()):
        assert _within_one_rounding(a.detach(), b.detach())
    if optim_module._fused_unavailable is not None:
        pytest.skip(f"no compiler for torch.compile here: {optim_module._fused_unavailable}")
    # Two weight matrices of different shapes, many steps: one compiled loop (dynamic shape),
    # at most one more if this process compiled it before under another guard.
    assert len(calls) == 2 * len(data)                 # every weight's update went through it
    assert compiled <= 1
    assert fused_opt.state[fused_model[0].weight]["scale"].dtype == torch.bfloat16


def test_fused_falls_back_to_the_eager_kernel_with_one_warning(monkeypatch):
    def no_compiler(*args, **kwargs):
        raise RuntimeError("InvalidCxxCompiler: no working C++ compiler found")

    monkeypatch.setattr(optim_module, "_compiled_update", None)
    monkeypatch.setattr(optim_module, "_fused_unavailable", None)
    monkeypatch.setattr(torch, "compile", no_compiler)
    data = batches(8)
    with pytest.warns(RuntimeWarning, match="could not build the fused kernel") as caught:
        fused_model, _ = _train_bfloat16(True, data)
    assert len([w for w in caught if issubclass(w.category, RuntimeWarning)]) == 1
    assert "InvalidCxxCompiler" in optim_module._fused_unavailable
    eager_model, _ = _train_bfloat16(None, data)
    for a, b in zip(fused_model.parameters(), eager_model.parameters()):
        assert torch.equal(a, b)                        # the fallback is the eager kernel itself


def test_fused_with_scale_in_the_parameter_dtype_is_the_foreach_kernel(monkeypatch):
    monkeypatch.setattr(torch, "compile", None)         # nothing may be compiled on this path
    data = batches(6)
    results = []
    for fused in (True, None):
        model = make_mlp()
        opt = MetaplasticSGD(model.parameters(), lr=0.5, alpha=30.0, flexibility="hybrid",
                             generator=torch.Generator().manual_seed(0), fused=fused)
        train(model, opt, data, boundaries={0, 3})
        results.append(params_of(model))
    for a, b in zip(*results):
        assert torch.equal(a, b)


def test_fused_and_foreach_together_are_refused():
    with pytest.raises(ValueError, match="fused=True and foreach=True"):
        MetaplasticSGD(make_mlp().parameters(), lr=0.1, alpha=1.0, flexibility="hybrid",
                       fused=True, foreach=True)


def test_fused_flag_survives_a_state_dict_and_old_dicts_load_without_it():
    model = make_mlp()
    opt = MetaplasticSGD(model.parameters(), lr=0.1, alpha=1.0, flexibility="hybrid", fused=True)
    saved = opt.state_dict()
    assert saved["param_groups"][0]["fused"] is True
    for group in saved["param_groups"]:
        del group["fused"]                              # a state saved before the option existed
    fresh = MetaplasticSGD(make_mlp().parameters(), lr=0.1, alpha=1.0, flexibility="hybrid")
    fresh.load_state_dict(saved)
    assert fresh.param_groups[0]["fused"] is None


# ------------------------------------------------------------------ consolidate in chunks


@pytest.mark.parametrize("chunk", [1, 7, 64, 10_000])
def test_scale_computed_in_chunks_is_bit_identical_to_the_whole(chunk):
    g = torch.Generator().manual_seed(2)
    w0 = torch.randn(3, 17, 11, generator=g, dtype=torch.float64)
    w = w0 + 1e-2 * torch.randn(3, 17, 11, generator=g, dtype=torch.float64)
    w[0, 0] = w0[0, 0]                                  # dw = 0: S = 1
    f = torch.rand(3, 17, 11, generator=g)
    f[1, :3] = 0.0                                      # f = 0: S = 0, not NaN
    f[2, :3] = 1.0
    cases = [(f, w, w0), (f.half(), w, w0), (torch.tensor(0.3), w, w0),
             (f.transpose(1, 2), w.transpose(1, 2), w0.transpose(1, 2))]   # strided, not contiguous
    for flexibility, weight, initial in cases:
        f_full = flexibility.expand(weight.shape) if flexibility.dim() == 0 else flexibility
        expected = plasticity_scale(f_full.to(weight.dtype), weight - initial, 20.0)
        for out_dtype in (torch.float64, torch.bfloat16):
            out = torch.empty(weight.shape, dtype=out_dtype)
            pl.plasticity_scale_(out, flexibility, weight, initial, 20.0, chunk=chunk)
            assert torch.equal(out, expected.to(out_dtype))


class _NewTensors(TorchDispatchMode):
    """Records the size of every tensor an operation creates (not views, not in-place results)."""

    def __init__(self):
        super().__init__()
        self.sizes = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = {t.untyped_storage().data_ptr() for t in tree_leaves((args, kwargs))
                  if isinstance(t, torch.Tensor)}
        self.sizes += [t.numel() for t in tree_leaves(out) if isinstance(t, torch.Tensor)
                       and t.untyped_storage().data_ptr() not in inputs]
        return out


@pytest.mark.parametrize("flexibility, full_size_tensors", [
    ("explicit", 0),                       # the lab: f stored, float32
    ("explicit float16", 0),               # f stored compactly: converted a chunk at a time
    (0.3, 0),                              # a constant
    ("hybrid", 1),                         # f redrawn: the one tensor of the weight's size
    (pl.biased(0.4, toward="stable"), 1),
])
def test_consolidate_holds_no_temporary_larger_than_a_chunk_but_a_redrawn_f(
        monkeypatch, flexibility, full_size_tensors):
    monkeypatch.setattr(pl, "CHUNK_ELEMENTS", 64)
    shape = (3, 20, 30)                                   # B = 3 stacked networks
    w = torch.nn.Parameter(torch.randn(shape, generator=torch.Generator().manual_seed(0)))
    if isinstance(flexibility, str) and flexibility.startswith("explicit"):
        dtype = torch.float16 if flexibility.endswith("float16") else torch.float32
        flexibility = torch.rand(shape, generator=torch.Generator().manual_seed(1)).to(dtype)
    opt = MetaplasticSGD([w], lr=0.1, alpha=30.0, flexibility=flexibility,
                         generator=torch.Generator().manual_seed(2))
    opt.consolidate()
    with torch.no_grad():
        w.add_(torch.randn(shape, generator=torch.Generator().manual_seed(3)) * 0.01)
    with _NewTensors() as created:
        opt.consolidate()
    large = [n for n in created.sizes if n > 64]
    assert large == [w.numel()] * full_size_tensors
    state = opt.state[w]
    expected = plasticity_scale(opt.flexibility_of(w), w.detach() - state["initial"], 30.0)
    assert torch.equal(state["scale"], expected)


def test_profiles_drawn_in_place_are_their_formulas(monkeypatch):
    monkeypatch.setattr(pl, "CHUNK_ELEMENTS", 50)        # Biased transforms its draw in chunks
    shape = (13, 17)
    for a, toward in [(0.3, "flexible"), (0.0, "stable"), (1.0, "flexible"), (0.7, "stable")]:
        u = torch.rand(shape, generator=torch.Generator().manual_seed(5))
        root = torch.sqrt(a**2 + 4 * (1 - a) * u)
        x = torch.where(a + root > 0, 2 * u / (a + root).clamp_min(1e-30), torch.zeros_like(u))
        x = x.clamp(0, 1)
        expected = x if toward == "flexible" else 1 - x
        drawn = pl.biased(a, toward).sample(shape, torch.Generator().manual_seed(5))
        assert torch.equal(drawn, expected)
    u = torch.rand(shape, generator=torch.Generator().manual_seed(6))
    assert torch.equal(pl.uniform(0.2, 0.9).sample(shape, torch.Generator().manual_seed(6)),
                       0.2 + (0.9 - 0.2) * u)
