"""The core API: Optimizer, Module, Objective, specs, state, closures, batch evaluation."""
from __future__ import annotations

import io
import json
import pickle

import pytest
import torch

import torchzero as tz
from torchzero.core.evaluation import FunctionEvaluator, ThreadPoolEvaluator


def quad_params() -> list[torch.Tensor]:
    return [torch.tensor([1.0, -2.0], requires_grad=True), torch.tensor([[0.5], [3.0]], requires_grad=True)]


def quad_loss(ps: list[torch.Tensor]) -> torch.Tensor:
    return sum(((p - 0.1) ** 2).sum() * (i + 1) for i, p in enumerate(ps))


def make_closure(opt, ps):
    def closure(backward: bool = True):
        loss = quad_loss(ps)
        if backward:
            opt.zero_grad()
            loss.backward()
        return loss
    return closure


# --------------------------------------------------------------------------- Optimizer
def test_accepts_params_named_params_groups_and_module() -> None:
    model = torch.nn.Linear(3, 2)
    for params in (model.parameters(), model.named_parameters(), [{"params": model.weight}, {"params": [model.bias], "lr": 0.5}], model):
        opt = tz.Optimizer(params, tz.m.LR(0.1))
        assert sum(len(g["params"]) for g in opt.param_groups) == 2
    opt = tz.Optimizer(model.named_parameters(), tz.m.LR(0.1))
    assert opt.param_groups[0]["param_names"] == ["weight", "bias"]
    assert tz.Optimizer(model, tz.m.LR(0.1)).model is model


def test_bad_construction_raises_clear_errors() -> None:
    p = torch.zeros(2, requires_grad=True)
    with pytest.raises(ValueError, match="at least one module"):
        tz.Optimizer([p])
    with pytest.raises(TypeError, match="torchzero modules"):
        tz.Optimizer([p], torch.optim.SGD)
    with pytest.raises(ValueError, match="empty"):
        tz.Optimizer([], tz.m.LR(1))
    with pytest.raises(ValueError, match="more than one parameter group"):
        tz.Optimizer([{"params": [p]}, {"params": [p]}], tz.m.LR(1))


def test_step_returns_loss_and_counts_evaluations() -> None:
    ps = quad_params()
    opt = tz.Optimizer(ps, tz.m.LR(0.1))
    loss = opt.step(make_closure(opt, ps))
    assert float(loss.detach()) == pytest.approx(float(quad_loss(quad_params())))
    assert opt.num_evaluations == 1
    opt.zero_grad()
    quad_loss(ps).backward()
    assert opt.step() is None
    assert opt.num_evaluations == 2 and opt.current_step == 2


def test_per_group_settings_and_set_param_groups() -> None:
    a, b = torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True)
    lr = tz.m.LR(0.1)
    opt = tz.Optimizer([{"params": [a]}, {"params": [b], "lr": 0.5}], lr)
    (a.sum() + b.sum()).backward()
    opt.step()
    assert torch.allclose(a, torch.full((2,), 0.9)) and torch.allclose(b, torch.full((2,), 0.5))
    # module-specific override beats the group
    lr2 = tz.m.LR(0.1).set_param_groups([{"params": [a], "lr": 0.01}])
    a2 = a
    opt2 = tz.Optimizer([{"params": [a2], "lr": 0.5}], lr2)
    a2.grad = torch.ones(2)
    before = a2.detach().clone()
    opt2.step()
    assert torch.allclose(before - a2.detach(), torch.full((2,), 0.01))


def test_lr_scheduler_drives_lr_module() -> None:
    p = torch.zeros(1, requires_grad=True)
    opt = tz.Optimizer([p], tz.m.LR(1.0))
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    deltas = []
    for _ in range(3):
        p.grad = torch.ones(1)
        before = float(p)
        opt.step()
        sched.step()
        deltas.append(before - float(p))
    assert deltas == [1.0, 0.5, 0.25]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("build", [
    lambda: (tz.m.Adam(), tz.m.LR(1e-2)),
    lambda: (tz.m.Adam(beta1=0.5, amsgrad=True), tz.m.LR(3e-2)),
])
def test_adam_matches_torch(build, fused: bool) -> None:
    """Last before LR, Adam runs torch's fused kernel; elsewhere in a chain (here followed by a
    no-op multiplication) it runs foreach kernels equal to the default torch.optim.Adam."""
    torch.manual_seed(0)
    X, y = torch.randn(32, 4), torch.randn(32)
    runs = []
    for kind in ("tz", "torch"):
        w = torch.zeros(4, requires_grad=True)
        b = torch.zeros(1, requires_grad=True)
        mods = build()
        if kind == "tz":
            opt = tz.Optimizer([w, b], *mods) if fused else tz.Optimizer([w, b], mods[0], tz.m.StepSize(1.0), mods[1])
        else:
            a = mods[0].defaults
            opt = torch.optim.Adam([w, b], lr=mods[1].defaults["lr"], betas=(a["beta1"], a["beta2"]), eps=a["eps"],
                                   amsgrad=a["amsgrad"], fused=fused)
        for _ in range(25):
            opt.zero_grad()
            ((X @ w + b - y) ** 2).mean().backward()
            opt.step()
        runs.append(torch.cat([w.detach(), b.detach()]))
    if fused:
        assert torch.equal(runs[0], runs[1])
    else:  # the learning rate is applied by a later module: equal to rounding
        assert torch.allclose(runs[0], runs[1], rtol=1e-5, atol=1e-5)


def test_adam_per_group_betas_match_torch() -> None:
    torch.manual_seed(0)
    out = []
    for kind in ("tz", "torch"):
        a, b = torch.ones(3, requires_grad=True), torch.ones(2, requires_grad=True)
        groups = [{"params": [a]}, {"params": [b], "beta1": 0.5} if kind == "tz" else {"params": [b], "betas": (0.5, 0.999)}]
        opt = tz.Optimizer(groups, tz.m.Adam(), tz.m.LR(0.1)) if kind == "tz" else torch.optim.Adam(groups, lr=0.1, foreach=False)
        for i in range(10):
            opt.zero_grad()
            ((a * torch.arange(3.0)).pow(2).sum() + (b - i).pow(2).sum()).backward()
            opt.step()
        out.append(torch.cat([a.detach(), b.detach()]))
    assert torch.equal(out[0], out[1])


def test_lr_only_matches_sgd() -> None:
    out = []
    for kind in ("tz", "torch"):
        ps = quad_params()
        opt = tz.Optimizer(ps, tz.m.LR(0.05)) if kind == "tz" else torch.optim.SGD(ps, lr=0.05)
        for _ in range(10):
            opt.zero_grad()
            quad_loss(ps).backward()
            opt.step()
        out.append(torch.cat([p.detach().reshape(-1) for p in ps]))
    assert torch.equal(out[0], out[1])


def test_gradients_are_not_modified_by_the_step() -> None:
    ps = quad_params()
    opt = tz.Optimizer(ps, tz.m.Adam(), tz.m.LR(0.1))
    quad_loss(ps).backward()
    grads = [p.grad.clone() for p in ps]
    opt.step()
    assert all(torch.equal(g, p.grad) for g, p in zip(grads, ps))


# --------------------------------------------------------------------------- closures
def test_step_with_every_parameter_frozen_changes_nothing_and_counts() -> None:
    """As torch.optim skips parameters without gradients: no update, no state; the step counts and
    a closure is evaluated once, without backward, for the loss."""
    w = torch.nn.Parameter(torch.ones(3))
    opt = tz.Optimizer([w], tz.m.Adam(), tz.m.LR(0.1))
    w.requires_grad_(False)
    calls = []

    def closure(backward=True):
        calls.append(backward)
        return (w ** 2).sum()
    assert opt.step() is None
    assert float(opt.step(closure)) == 3.0 and calls == [False]
    assert opt.current_step == 2 and torch.equal(w.detach(), torch.ones(3))
    w.requires_grad_(True)
    w.grad = torch.ones(3)
    opt.step()
    assert torch.allclose(w.detach(), torch.full((3,), 0.9))  # Adam's first step, from fresh state


def test_plain_closure_with_and_without_backward_inside() -> None:
    results = []
    for style in ("protocol", "torch", "no_backward"):
        ps = quad_params()
        opt = tz.Optimizer(ps, tz.m.Adam(), tz.m.LR(0.1))

        def torch_style():
            opt.zero_grad()
            loss = quad_loss(ps)
            loss.backward()
            return loss

        closure = {"protocol": make_closure(opt, ps), "torch": torch_style, "no_backward": lambda: quad_loss(ps)}[style]
        for _ in range(3):
            opt.step(closure)
        results.append(torch.cat([p.detach().reshape(-1) for p in ps]))
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])


# --------------------------------------------------------------------------- state
def test_state_dict_is_weights_only_and_index_keyed() -> None:
    ps = quad_params()
    opt = tz.Optimizer(ps, tz.m.Adam(exp_avg_tfm=tz.m.Adam()), tz.m.LR(0.1))
    for _ in range(2):
        opt.step(make_closure(opt, ps))
    sd = opt.state_dict()
    assert set(sd["modules"][0]["state"]) == {0, 1}
    buf = io.BytesIO()
    torch.save(sd, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)
    ps2 = [p.detach().clone().requires_grad_(True) for p in ps]
    opt2 = tz.Optimizer(ps2, tz.m.Adam(exp_avg_tfm=tz.m.Adam()), tz.m.LR(0.1))
    opt2.load_state_dict(loaded)
    for _ in range(3):
        opt.step(make_closure(opt, ps))
        opt2.step(make_closure(opt2, ps2))
    assert all(torch.equal(a, b) for a, b in zip(ps, ps2))
    assert opt2.current_step == opt.current_step


def test_load_state_dict_rejects_mismatch() -> None:
    ps = quad_params()
    opt = tz.Optimizer(ps, tz.m.Adam(), tz.m.LR(0.1))
    sd = opt.state_dict()
    with pytest.raises(ValueError, match="modules"):
        tz.Optimizer(quad_params(), tz.m.LR(0.1)).load_state_dict(sd)
    with pytest.raises(ValueError, match="format"):
        opt.load_state_dict({"state": {}})


def test_state_with_unportable_value_is_refused() -> None:
    m = tz.m.LR(0.1)
    m.global_state["bad"] = object()
    with pytest.raises(TypeError, match="cannot be saved portably"):
        m.state_dict()


def test_pickle_and_deepcopy_optimizer() -> None:
    import copy
    ps = quad_params()
    opt = tz.Optimizer(ps, tz.m.Adam(), tz.m.LR(0.1))
    opt.step(make_closure(opt, ps))
    copies = [pickle.loads(pickle.dumps((ps, opt))), copy.deepcopy((ps, opt))]
    opt.step(make_closure(opt, ps))
    for ps2, opt2 in copies:
        opt2.step(make_closure(opt2, ps2))
        assert all(torch.equal(a, b) for a, b in zip(ps, ps2))
        assert opt2.current_step == opt.current_step


# --------------------------------------------------------------------------- specs
def test_spec_round_trip_nested_and_json_safe() -> None:
    m = tz.m.Adam(beta1=0.8, exp_avg_tfm=tz.m.LR(float("inf")))
    spec = tz.to_spec(m)
    text = json.dumps(spec)
    m2 = tz.from_spec(json.loads(text))
    assert isinstance(m2, tz.m.Adam) and m2.defaults["beta1"] == 0.8
    assert tz.to_spec(m2) == spec
    assert m2.children["exp_avg"].defaults["lr"] == float("inf")


def test_from_spec_refuses_unknown_and_bad() -> None:
    with pytest.raises(tz.SpecError, match="unknown module"):
        tz.from_spec({"module": "os.system", "args": ["rm -rf /"]})
    with pytest.raises(tz.SpecError, match="bad arguments"):
        tz.from_spec({"module": "Adam", "kwargs": {"nonsense": 1}})
    with pytest.raises(tz.SpecError, match="unknown callable"):
        tz.from_spec({"module": "LR", "args": [{"__callable__": "builtins.eval"}]})
    with pytest.raises(tz.SpecError):
        tz.from_spec("Adam")
    # any exception of a constructor on values it cannot take is a spec error
    with pytest.raises(tz.SpecError, match="Previous: bad arguments: OverflowError"):
        tz.from_spec({"module": "Previous", "kwargs": {"n": float("inf")}})
    with pytest.raises(tz.SpecError, match="ScipyMinimizeScalar: bad arguments: AttributeError"):
        tz.from_spec({"module": "ScipyMinimizeScalar", "kwargs": {"method": -1}})


def test_from_spec_refuses_strings_for_numbers() -> None:
    """``lr: "1e-3"`` (a YAML number read as a string) is refused when the spec is rebuilt, not at the
    first step; parameters whose annotation offers a string option still take one."""
    with pytest.raises(tz.SpecError, match=r"LR\.lr: expected a number, got the string '1e-3'"):
        tz.from_spec({"module": "LR", "kwargs": {"lr": "1e-3"}})
    with pytest.raises(tz.SpecError, match=r"LR\.lr: expected a number"):
        tz.from_spec({"module": "LR", "args": ["0.1"]})
    with pytest.raises(tz.SpecError, match=r"Adam\.beta1: expected a number"):
        tz.from_spec({"module": "Adam", "kwargs": {"beta1": "0.9"}})
    assert type(tz.from_spec({"module": "ProjectedGradientMethod", "kwargs": {"init_scale": "auto"}})).__name__ == \
        "ProjectedGradientMethod"
    assert tz.from_spec({"module": "Adam", "kwargs": {"beta1": 0.8}}).defaults["beta1"] == 0.8
    with pytest.raises(tz.SpecError, match=r"LR\.lr: expected a number, got a list"):
        tz.from_spec({"module": "LR", "kwargs": {"lr": [0.1]}})
    with pytest.raises(tz.SpecError, match=r"Adam\.eps: expected a number, got None"):
        tz.from_spec({"module": "Adam", "kwargs": {"eps": None}})


def test_setting_problem_follows_the_constructor_annotation() -> None:
    from torchzero.core.spec import setting_problem
    lr, adam = tz.m.LR(0.1), tz.m.Adam()
    assert setting_problem(lr, "lr", 0.5) is None and setting_problem(lr, "lr", torch.tensor(0.5)) is None
    assert setting_problem(lr, "lr", "0.5") == "expected a number, got the string '0.5'"
    assert setting_problem(adam, "beta1", (0.9,)) == "expected a number, got a tuple"
    assert setting_problem(adam, "not_a_setting", "x") is None  # unknown keys are the caller's business
    pgm = tz.m.ProjectedGradientMethod()
    assert setting_problem(pgm, "init_scale", "auto") is None  # the annotation offers a string


def test_to_spec_refuses_unregistered_callables_and_classes() -> None:
    class Mine(tz.m.LR):
        pass
    with pytest.raises(tz.SpecError, match="not registered"):
        tz.to_spec(Mine(0.1))


def test_every_seed_module_is_implemented_and_stubs_refuse_to_build() -> None:
    assert tz.m.missing() == []
    assert len(tz.m.implemented()) == 280
    from torchzero.modules import _missing_stub
    stub = _missing_stub("Adam")  # what a seed module without an implementation would be
    with pytest.raises(NotImplementedError, match=r"tz.m.Adam .* is not implemented"):
        stub(0.1)


# --------------------------------------------------------------------------- objective / evaluation
def test_hessian_vector_products_agree() -> None:
    A = torch.tensor([[3.0, 1.0], [1.0, 2.0]], dtype=torch.float64)
    x = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)

    def closure(backward=True):
        loss = 0.5 * x @ A @ x + (x ** 3).sum()
        if backward:
            x.grad = None
            loss.backward()
        return loss
    z = [torch.tensor([1.0, 0.5], dtype=torch.float64)]
    exact = A @ z[0] + 6 * x.detach() * z[0]
    for method, tol in (("autograd", 1e-12), ("batched_autograd", 1e-12), ("fd_forward", 1e-2), ("fd_central", 1e-5)):
        obj = tz.Objective([x], closure)
        hz, _ = obj.hessian_vector_product(z, None, True, method, 1e-4)
        assert torch.allclose(hz[0], exact, atol=tol), method


def test_evaluate_batch_sequential_vs_thread_pool_vs_function() -> None:
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    fn = lambda ps: (ps[0] ** 2).sum()

    def closure(backward=True):
        loss = fn([x])
        if backward:
            x.grad = None
            loss.backward()
        return loss
    points = [[torch.tensor([float(i), 1.0])] for i in range(5)]
    seq = tz.Objective([x], closure).evaluate_batch(points, backward=True)
    for ev in (FunctionEvaluator(fn), ThreadPoolEvaluator(fn, 3)):
        res = tz.Objective([x], ev).evaluate_batch(points, backward=True)
        assert [float(r.loss) for r in res] == [float(r.loss) for r in seq]
        assert all(torch.equal(a.grads[0], b.grads[0]) for a, b in zip(res, seq))
    assert torch.equal(x.detach(), torch.tensor([1.0, 2.0]))


def test_evaluator_as_closure_and_counting() -> None:
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    opt = tz.Optimizer([x], tz.m.LR(0.25))
    opt.step(FunctionEvaluator(lambda ps: (ps[0] ** 2).sum()))
    assert torch.allclose(x.detach(), torch.tensor([0.5, 1.0]))
    assert opt.num_evaluations == 1


def test_aliases_exist() -> None:
    assert tz.Modular is tz.Optimizer and tz.Var is tz.Objective and tz.TensorwiseTransform is tz.TensorTransform
    assert tz.maybe_chain(tz.m.LR(1)).__class__ is tz.m.LR
    assert isinstance(tz.maybe_chain(tz.m.LR(1), tz.m.LR(2)), tz.Chain)
