"""The model classes: batched members, the predict contract, normaliser refits, member selection."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from mbrl_ros.models import (
    DeterministicMLP,
    DynamicsModel,
    EnsembleLinear,
    EnsembleMLP,
    Normalizer,
    ProbabilisticEnsemble,
    registered_kinds,
)

STATE_DIM, ACTION_DIM = 4, 2


def trained_looking_ensemble(members: int = 5) -> ProbabilisticEnsemble:
    """An ensemble with non-trivial normalisers and biases, so that every term of the maths matters."""
    torch.manual_seed(0)
    model = ProbabilisticEnsemble(STATE_DIM, ACTION_DIM, ensemble_size=members, hidden_layers=3, hidden_units=16)
    model.refit_normalizers(torch.randn(100, STATE_DIM + ACTION_DIM) * 3 + 1, torch.randn(100, STATE_DIM) * 0.2 - 0.1,
                            preserve_function=False)
    with torch.no_grad():
        for parameter in model.network.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    return model


def member_alone(network: EnsembleMLP, member: int, x: torch.Tensor) -> torch.Tensor:
    """Member ``member`` of ``network`` as an ordinary MLP of nn.Linear layers, (B, in) -> (B, out)."""
    layers = []
    for layer in network.layers:
        if isinstance(layer, EnsembleLinear):
            linear = nn.Linear(*layer.weight.shape[1:])
            linear.weight.data.copy_(layer.weight[member].T)
            linear.bias.data.copy_(layer.bias[member, 0])
            layers.append(linear)
        else:
            layers.append(layer)
    return nn.Sequential(*layers)(x)


def test_the_batched_ensemble_forward_equals_each_member_alone():
    model = trained_looking_ensemble()
    inputs = torch.randn(5, 32, STATE_DIM + ACTION_DIM)
    batched = model.network(inputs)
    for member in range(5):
        torch.testing.assert_close(batched[member], member_alone(model.network, member, inputs[member]))


@pytest.mark.parametrize("activation", ["silu", "relu", "tanh", "elu"])
def test_the_inference_forward_in_row_blocks_equals_the_autograd_forward(activation: str):
    torch.manual_seed(0)
    network = EnsembleMLP(3, 6, 4, hidden_layers=2, hidden_units=16, activation=activation)
    network.inference_block_rows = 7
    inputs = torch.randn(3, 30, 6)  # 4 blocks of 7 rows and one of 2
    kept = inputs.clone()
    with_autograd = network(inputs)
    assert with_autograd.requires_grad
    with torch.no_grad():
        in_blocks = network(inputs)
        expanded = network(inputs[0].expand(3, 30, 6))  # (B, D) inputs reach the network expanded to E
    torch.testing.assert_close(in_blocks, with_autograd.detach())
    for member in range(3):
        torch.testing.assert_close(expanded[member], member_alone(network, member, inputs[0]).detach())
    assert torch.equal(inputs, kept), "in-place activations must never touch the caller's tensor"


def test_the_inference_forward_balanced_over_the_threads_equals_the_autograd_forward():
    torch.manual_seed(0)
    network = EnsembleMLP(5, 6, 4, hidden_layers=2, hidden_units=128, activation="silu")
    network.inference_block_rows = 64
    inputs = torch.randn(5, 100, 6)  # blocks of 64 and 36 rows
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # 5 members on 2 threads: a bmm over 4 of them and an mm for the fifth
    try:
        with_autograd = network(inputs)
        with torch.no_grad(), torch.profiler.profile(record_shapes=True) as profile:
            balanced = network(inputs)
    finally:
        torch.set_num_threads(threads)
    torch.testing.assert_close(balanced, with_autograd.detach())
    matmuls = [(event.name, event.input_shapes[0]) for event in profile.events() if event.name in ("aten::bmm",
                                                                                                  "aten::mm")]
    assert matmuls[:4] == [("aten::bmm", [5, 64, 6]), ("aten::bmm", [4, 64, 128]), ("aten::mm", [64, 128]),
                           ("aten::bmm", [5, 4, 128])], "the 128-wide layer balanced, the output layer transposed"


@pytest.mark.parametrize("rows", [5, 300])  # one block, and two blocks of the CPU inference path
def test_the_mean_alone_equals_the_mean_of_the_full_prediction(rows: int):
    model = trained_looking_ensemble()
    state, action = torch.randn(rows, STATE_DIM), torch.randn(rows, ACTION_DIM)
    with torch.no_grad():
        mean, _ = model.predict(state, action)
        torch.testing.assert_close(model.predict_mean(state, action), mean)
        per_member = model.predict_mean(state.expand(5, rows, STATE_DIM), action.expand(5, rows, ACTION_DIM))
        torch.testing.assert_close(per_member, mean)
    columns = model.network(model.normalized_inputs(state, action), output_columns=STATE_DIM)
    assert columns.shape == (5, rows, STATE_DIM) and columns.requires_grad
    torch.testing.assert_close(columns.detach(), model.network(model.normalized_inputs(state, action))[
        ..., :STATE_DIM].detach())
    with pytest.raises(ValueError, match="output_columns"):
        model.network(model.normalized_inputs(state, action), output_columns=2 * STATE_DIM + 1)
    with torch.no_grad(), torch.profiler.profile(record_shapes=True) as profile:
        model.predict_mean(state[:7], action[:7])
    matmuls = [event for event in profile.events() if event.name == "aten::bmm"]
    # the output layer, computed transposed (W^T h^T): its weight enters as (E, columns, hidden)
    assert matmuls[-1].input_shapes[0] == [5, STATE_DIM, 16], "the output layer computes the mean columns only"


def test_the_ensemble_forward_is_one_batched_matmul_per_layer():
    model = trained_looking_ensemble()
    with torch.no_grad(), torch.profiler.profile(record_shapes=True) as profile:
        model.predict(torch.randn(7, STATE_DIM), torch.randn(7, ACTION_DIM))
    matmuls = [event for event in profile.events() if event.name in ("aten::bmm", "aten::baddbmm", "aten::mm",
                                                                     "aten::addmm", "aten::matmul", "aten::linear")]
    assert [event.name for event in matmuls] == ["aten::bmm"] * 4, "one batched matmul per layer, no loop"
    assert all(event.input_shapes[0][0] == 5 for event in matmuls)


def test_predict_routes_blocks_to_members_and_broadcasts_unbatched_inputs():
    model = trained_looking_ensemble()
    with torch.no_grad():
        mean, variance = model.predict(torch.randn(3, STATE_DIM), torch.randn(3, ACTION_DIM))
        assert mean.shape == variance.shape == (5, 3, STATE_DIM)
        states, actions = torch.randn(5, 3, STATE_DIM), torch.randn(5, 3, ACTION_DIM)
        block_mean, block_variance = model.predict(states, actions)
        for member in range(5):
            every_member_mean, every_member_variance = model.predict(states[member], actions[member])
            torch.testing.assert_close(block_mean[member], every_member_mean[member])
            torch.testing.assert_close(block_variance[member], every_member_variance[member])
    assert (variance > 0).all()


def test_predict_returns_raw_next_states_from_the_normalised_network_output():
    model = trained_looking_ensemble()
    states, actions = torch.randn(6, STATE_DIM), torch.randn(6, ACTION_DIM)
    with torch.no_grad():
        mean, variance = model.predict(states, actions)
        inputs = (torch.cat([states, actions], -1) - model.input_normalizer.mean) / model.input_normalizer.std
        normalised_mean, logvar = model(inputs.expand(5, 6, -1))
    std = model.target_normalizer.std
    torch.testing.assert_close(mean, states + normalised_mean * std + model.target_normalizer.mean)
    torch.testing.assert_close(variance, logvar.exp() * std**2)


def test_predict_rejects_inputs_of_mismatched_shapes():
    model = trained_looking_ensemble()
    with pytest.raises(ValueError, match="alike"):
        model.predict(torch.randn(3, STATE_DIM), torch.randn(4, ACTION_DIM))
    with pytest.raises(ValueError, match="E = 5"):
        model.predict(torch.randn(2, 3, STATE_DIM), torch.randn(2, 3, ACTION_DIM))


def test_log_variance_stays_within_the_learned_soft_bounds():
    model = trained_looking_ensemble()
    with torch.no_grad():
        model.network.linear_layers()[-1].bias[..., STATE_DIM:] += torch.linspace(-100, 100, STATE_DIM)
        _, logvar = model(torch.randn(5, 10, STATE_DIM + ACTION_DIM))
    # soft bounds: the min bound applied after the max one lifts values at the max by softplus(-10.5) ~ 3e-5
    assert (logvar <= model.max_logvar + 1e-4).all() and (logvar >= model.min_logvar - 1e-4).all()


def test_the_deterministic_mlp_is_one_member_without_variance():
    model = DeterministicMLP(STATE_DIM, ACTION_DIM)
    assert isinstance(model, DynamicsModel) and model.ensemble_size == 1
    mean, variance = model.predict(torch.randn(8, STATE_DIM), torch.randn(8, ACTION_DIM))
    assert mean.shape == (1, 8, STATE_DIM) and variance is None
    assert len(model.network.linear_layers()) == 3  # two hidden layers of 500 units, as in the paper
    assert model.network.linear_layers()[1].weight.shape == (1, 500, 500)


@pytest.mark.parametrize("kind", ["ensemble", "mlp"])
def test_refitting_the_normalisers_keeps_the_function_of_raw_inputs(kind):
    model = trained_looking_ensemble() if kind == "ensemble" else DeterministicMLP(STATE_DIM, ACTION_DIM, 2, 32)
    if kind == "mlp":
        model.refit_normalizers(torch.randn(50, STATE_DIM + ACTION_DIM), torch.randn(50, STATE_DIM),
                                preserve_function=False)
    states, actions = torch.randn(20, STATE_DIM) * 2, torch.randn(20, ACTION_DIM)
    with torch.no_grad():
        before = model.predict(states, actions)
        model.refit_normalizers(torch.randn(300, STATE_DIM + ACTION_DIM) * 10 - 4, torch.randn(300, STATE_DIM) * 5 + 2)
        after = model.predict(states, actions)
    assert not torch.allclose(model.input_normalizer.std, torch.ones(STATE_DIM + ACTION_DIM))
    torch.testing.assert_close(after[0], before[0], rtol=1e-4, atol=1e-4)
    if kind == "ensemble":
        torch.testing.assert_close(after[1], before[1], rtol=1e-4, atol=1e-7)


def test_refitting_without_preserving_changes_the_function():
    model = trained_looking_ensemble()
    states, actions = torch.randn(20, STATE_DIM), torch.randn(20, ACTION_DIM)
    with torch.no_grad():
        before, _ = model.predict(states, actions)
        model.refit_normalizers(torch.randn(300, STATE_DIM + ACTION_DIM) * 10, torch.randn(300, STATE_DIM) * 5,
                                preserve_function=False)
        after, _ = model.predict(states, actions)
    assert (after - before).abs().max() > 0.1


def test_selected_members_predict_as_they_did_in_the_full_ensemble():
    model = trained_looking_ensemble()
    model.set_elites([1, 3])
    assert model.elites() == [1, 3]
    subset = model.select_members(model.elites())
    assert subset.ensemble_size == 2 and subset.elites() == [0, 1]
    states, actions = torch.randn(9, STATE_DIM), torch.randn(9, ACTION_DIM)
    with torch.no_grad():
        full_mean, full_variance = model.predict(states, actions)
        mean, variance = subset.predict(states, actions)
    torch.testing.assert_close(mean, full_mean[[1, 3]])
    torch.testing.assert_close(variance, full_variance[[1, 3]])
    with pytest.raises(ValueError, match="subset"):
        model.select_members([5])


@pytest.mark.parametrize("arguments", [
    {"state_dim": 0}, {"ensemble_size": 0}, {"hidden_units": -3}, {"activation": "sigmoidish"},
    {"hidden_layers": 2.5}, {"nll_beta": -0.1}, {"nll_beta": 1.5}, {"nll_beta": float("nan")}, {"nll_beta": True},
])
def test_invalid_architectures_are_rejected(arguments):
    with pytest.raises(ValueError):
        ProbabilisticEnsemble(**{"state_dim": 3, "action_dim": 1, **arguments})


def test_normaliser_refuses_bad_data_and_keeps_constant_dimensions_finite():
    normalizer = Normalizer(2)
    assert not normalizer.fitted
    with pytest.raises(ValueError, match="NaN"):
        normalizer.fit(torch.tensor([[0.0, float("nan")]]))
    with pytest.raises(ValueError, match="shape"):
        normalizer.fit(torch.zeros(4, 3))
    normalizer.fit(torch.tensor([[1.0, 5.0], [3.0, 5.0]]))
    assert normalizer.fitted
    torch.testing.assert_close(normalizer.normalize(torch.tensor([[2.0, 6.0]])), torch.tensor([[0.0, 1.0]]))


def loss_gradients(model: ProbabilisticEnsemble, inputs: torch.Tensor, targets: torch.Tensor):
    """The training loss's gradients with respect to the network's mean and log-variance outputs, and those."""
    outputs = {}

    def keep(module, args, output):
        for name, tensor in zip(("mean", "logvar"), output, strict=True):
            tensor.retain_grad()
            outputs[name] = tensor

    handle = model.register_forward_hook(keep)
    model.training_loss(inputs, targets).backward()
    handle.remove()
    return outputs["mean"].grad, outputs["logvar"].grad, outputs["mean"].detach(), outputs["logvar"].detach()


@pytest.mark.parametrize("nll_beta", [0.0, 0.5, 1.0])
def test_beta_nll_weights_each_element_by_its_variance_to_the_power_beta(nll_beta: float):
    """beta-NLL (Seitzer et al. 2022): the gradient of the plain NLL, times variance**beta (not differentiated).
    At beta 1 the mean's gradient is the MSE's, whatever variance the member predicts."""
    model = trained_looking_ensemble(members=3)
    model.nll_beta = nll_beta
    inputs, targets = torch.randn(3, 32, STATE_DIM + ACTION_DIM), torch.randn(3, 32, STATE_DIM)
    mean_grad, logvar_grad, mean, logvar = loss_gradients(model, inputs, targets)
    elements = 32 * STATE_DIM
    weight = torch.exp(nll_beta * logvar)
    error = mean - targets
    torch.testing.assert_close(mean_grad, weight * 2 * error * torch.exp(-logvar) / elements)
    torch.testing.assert_close(logvar_grad, weight * (1 - error.square() * torch.exp(-logvar)) / elements)
    if nll_beta == 1.0:
        torch.testing.assert_close(mean_grad, 2 * error / elements)
    assert not torch.allclose(logvar, torch.zeros_like(logvar), atol=0.1)  # the weights differ from 1


def test_nll_beta_survives_serialization_and_member_selection():
    from mbrl_ros.models import model_from_payload, model_to_payload

    model = ProbabilisticEnsemble(STATE_DIM, ACTION_DIM, ensemble_size=3, hidden_units=8, nll_beta=0.5)
    assert model_from_payload(model_to_payload(model)).nll_beta == 0.5
    assert model.select_members([0, 2]).nll_beta == 0.5


def test_both_kinds_are_registered():
    assert {"ensemble", "mlp"} <= set(registered_kinds())


def test_weight_decay_is_set_per_layer_and_never_on_biases_bounds_or_normalisers():
    model = ProbabilisticEnsemble(STATE_DIM, ACTION_DIM, ensemble_size=3, hidden_layers=3, hidden_units=8)
    decays = [2.5e-5, 5e-5, 7.5e-5, 1e-4]
    groups = model.weight_decay_parameter_groups(decays)
    layers = model.network.linear_layers()
    assert [group["weight_decay"] for group in groups[:-1]] == decays
    assert [group["params"] for group in groups[:-1]] == [[layer.weight] for layer in layers]
    assert groups[-1]["weight_decay"] == 0.0
    grouped = [id(p) for group in groups for p in group["params"]]
    assert sorted(grouped) == sorted(id(p) for p in model.parameters()) and len(set(grouped)) == len(grouped)
    with pytest.raises(ValueError, match="one value per layer"):
        model.weight_decay_parameter_groups([1e-4, 1e-4])


def test_a_layer_with_more_decay_ends_with_smaller_weights():
    torch.manual_seed(1)
    model = ProbabilisticEnsemble(STATE_DIM, ACTION_DIM, ensemble_size=2, hidden_layers=1, hidden_units=16)
    start = [layer.weight.detach().norm().item() for layer in model.network.linear_layers()]
    optimizer = torch.optim.Adam(model.weight_decay_parameter_groups([0.0, 10.0]), lr=1e-2)
    inputs, targets = torch.randn(2, 64, STATE_DIM + ACTION_DIM), torch.randn(2, 64, STATE_DIM)
    for _ in range(50):
        optimizer.zero_grad()
        model.training_loss(inputs, targets).backward()
        optimizer.step()
    end = [layer.weight.detach().norm().item() for layer in model.network.linear_layers()]
    assert end[1] < 0.5 * start[1] and end[0] > 0.5 * start[0]


@pytest.mark.parametrize("kind", ["mlp", "ensemble"])
def test_angle_dims_are_seen_as_sin_and_cos_and_survive_serialization(kind):
    from mbrl_ros.models import model_class, model_from_payload, model_to_payload

    torch.manual_seed(0)
    model = model_class(kind)(4, 1, hidden_layers=1, hidden_units=16, angle_dims=[1])
    state, action = torch.randn(8, 4), torch.randn(8, 1)
    turned = state.clone()
    turned[:, 1] += 2 * math.pi
    moved = state.clone()
    moved[:, 0] += 2 * math.pi
    with torch.no_grad():
        base, turned_prediction, moved_prediction = (model.predict(s, action)[0] - s for s in (state, turned, moved))
    torch.testing.assert_close(turned_prediction, base, rtol=0, atol=1e-5)  # a full turn changes nothing
    assert not torch.allclose(moved_prediction, base, atol=1e-3), "a non-angle dimension must not wrap"
    assert model.raw_inputs(state, action).shape == (8, 6)
    rebuilt = model_from_payload(model_to_payload(model))
    assert rebuilt.angle_dims == [1]
    torch.testing.assert_close(rebuilt.predict(state, action)[0], model.predict(state, action)[0])


@pytest.mark.parametrize("angle_dims", [[4], [-1], [1, 1], [True]])
def test_angle_dims_outside_the_state_are_refused(angle_dims):
    with pytest.raises(ValueError, match="angle_dims"):
        DeterministicMLP(4, 1, angle_dims=angle_dims)


@pytest.mark.parametrize("kind", ["mlp", "ensemble"])
def test_invariant_dims_are_not_seen_and_survive_serialization(kind):
    from mbrl_ros.models import model_class, model_from_payload, model_to_payload

    torch.manual_seed(0)
    model = model_class(kind)(4, 1, hidden_layers=1, hidden_units=16, angle_dims=[1], invariant_dims=[0])
    state, action = torch.randn(8, 4), torch.randn(8, 1)
    shifted, changed = state.clone(), state.clone()
    shifted[:, 0] += 5.0
    changed[:, 2] += 0.5
    with torch.no_grad():
        base, shifted_change, other_change = (model.predict(s, action)[0] - s for s in (state, shifted, changed))
    torch.testing.assert_close(shifted_change, base, rtol=0, atol=1e-5)  # the invariant dimension is not an input
    assert not torch.allclose(other_change, base, atol=1e-3), "the other dimensions must still be inputs"
    assert model.raw_inputs(state, action).shape == (8, 5)  # x_dot, theta_dot, sin, cos, action
    assert model.predict(state, action)[0].shape == (1 if kind == "mlp" else 5, 8, 4)  # its change still predicted
    rebuilt = model_from_payload(model_to_payload(model))
    assert rebuilt.invariant_dims == [0]
    torch.testing.assert_close(rebuilt.predict(state, action)[0], model.predict(state, action)[0])


@pytest.mark.parametrize("invariant_dims", [[4], [-1], [0, 0], [False], [1]])
def test_invariant_dims_outside_the_state_or_among_the_angles_are_refused(invariant_dims):
    with pytest.raises(ValueError, match="invariant_dims"):
        DeterministicMLP(4, 1, angle_dims=[1], invariant_dims=invariant_dims)


def test_a_model_with_invariant_dims_predicts_a_cart_far_from_where_it_learnt():
    from mbrl_ros.data.transitions import TransitionBatch
    from mbrl_ros.models import ModelTrainer, TrainerConfig

    rng = np.random.default_rng(0)

    def cart(count: int, low: float, high: float) -> TransitionBatch:
        """A damped cart pushed along a rail: the change depends on velocity and force, not on position."""
        position, velocity, force = rng.uniform(low, high, count), rng.uniform(-1, 1, count), rng.uniform(-1, 1, count)
        next_velocity = velocity + 0.05 * (force - 0.5 * velocity)
        states = np.stack([position, velocity], 1).astype(np.float32)
        next_states = np.stack([position + 0.05 * next_velocity, next_velocity], 1).astype(np.float32)
        return TransitionBatch(states, force[:, None].astype(np.float32), next_states,
                               np.zeros(count, np.float32), np.zeros(count, bool))

    def far_error(invariant_dims: list[int]) -> float:
        torch.manual_seed(0)
        model = ProbabilisticEnsemble(2, 1, ensemble_size=2, hidden_layers=2, hidden_units=64,
                                      invariant_dims=invariant_dims)
        ModelTrainer(model, TrainerConfig(max_epochs=40, batch_size=64, progress=False, seed=0)).fit(
            cart(2000, -0.3, 0.3))
        test = cart(500, 2.0, 3.0)  # ten times as far out as any position it trained on
        with torch.no_grad():
            predicted = model.predict(torch.tensor(test.states), torch.tensor(test.actions))[0].mean(0).numpy()
        change = test.next_states - test.states
        return float(np.abs(predicted - test.next_states).mean(0)[1] / np.abs(change[:, 1]).mean())

    invariant, plain = far_error([0]), far_error([])
    assert invariant < 0.1, invariant
    assert plain > 2 * invariant, (plain, invariant)


def test_a_model_with_angle_dims_learns_a_pendulum_across_the_full_turn():
    from mbrl_ros.data.transitions import TransitionBatch
    from mbrl_ros.models import ModelTrainer, ProbabilisticEnsemble, TrainerConfig

    rng = np.random.default_rng(0)

    def pendulum(count: int, low: float, high: float) -> TransitionBatch:
        angle, velocity = rng.uniform(low, high, count), rng.uniform(-2, 2, count)
        torque = rng.uniform(-1, 1, count)
        next_velocity = velocity + 0.05 * (-9.81 * np.sin(angle) + torque)
        states = np.stack([angle, velocity], 1).astype(np.float32)
        next_states = np.stack([angle + 0.05 * next_velocity, next_velocity], 1).astype(np.float32)
        return TransitionBatch(states, torque[:, None].astype(np.float32), next_states,
                               np.zeros(count, np.float32), np.zeros(count, bool))

    torch.manual_seed(0)
    model = ProbabilisticEnsemble(2, 1, ensemble_size=2, hidden_layers=2, hidden_units=64, angle_dims=[0])
    ModelTrainer(model, TrainerConfig(max_epochs=60, batch_size=64, progress=False, seed=0)).fit(
        pendulum(2000, -np.pi, np.pi))
    # Angles one turn further than any it trained on: the same dynamics, which sin and cos make obvious.
    test = pendulum(500, np.pi, 3 * np.pi)
    with torch.no_grad():
        predicted = model.predict(torch.tensor(test.states), torch.tensor(test.actions))[0].mean(0).numpy()
    error = np.abs(predicted - test.next_states)[:, 1].mean()
    assert error < 0.05 * np.abs(test.next_states[:, 1] - test.states[:, 1]).mean() + 0.01, error


def random_unit_quaternions(count: int, generator: torch.Generator) -> torch.Tensor:
    q = torch.randn(count, 4, generator=generator)
    return q / q.norm(dim=-1, keepdim=True)


def turn_quaternions(rotation_vectors: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (N, 4) of rotations by ``rotation_vectors`` (N, 3): axis times angle (rad)."""
    angle = rotation_vectors.norm(dim=-1, keepdim=True)
    axis = rotation_vectors / angle.clamp_min(1e-12)
    return torch.cat([torch.cos(angle / 2), axis * torch.sin(angle / 2)], dim=-1)


def test_the_same_turn_is_the_same_target_at_every_orientation_and_next_state_applies_it():
    from mbrl_ros.rotations import quaternion_angle, quaternion_multiply

    generator = torch.Generator().manual_seed(0)
    model = DeterministicMLP(6, 1, hidden_layers=1, hidden_units=8, quaternion_dims=[1])
    q = random_unit_quaternions(16, generator)
    turn = turn_quaternions(torch.tensor([[0.1, -0.2, 0.3]]))
    state = torch.cat([torch.randn(16, 1, generator=generator), q, torch.randn(16, 1, generator=generator)], -1)
    next_state = torch.cat([state[:, :1] + 0.5, quaternion_multiply(turn, q), state[:, 5:] - 0.25], -1)
    next_state[::2, 1:5] *= -1  # the same orientations, written with the other sign
    change = model.state_change(state, next_state)
    torch.testing.assert_close(change[:, 1:5], (turn - torch.tensor([1.0, 0, 0, 0])).expand(16, 4))
    torch.testing.assert_close(change[:, [0, 5]], torch.tensor([0.5, -0.25]).expand(16, 2))
    rebuilt = model.next_state(state, change)
    torch.testing.assert_close(rebuilt[:, [0, 5]], next_state[:, [0, 5]])
    assert quaternion_angle(rebuilt[:, 1:5], next_state[:, 1:5]).max() < 1e-3
    torch.testing.assert_close(rebuilt[:, 1:5].norm(dim=-1), torch.ones(16))


@pytest.mark.parametrize("kind", ["mlp", "ensemble"])
def test_quaternion_dims_are_seen_as_rotation_matrices_and_survive_serialization(kind):
    from mbrl_ros.models import model_class, model_from_payload, model_to_payload
    from mbrl_ros.rotations import quaternion_angle

    torch.manual_seed(0)
    model = model_class(kind)(6, 1, hidden_layers=1, hidden_units=16, quaternion_dims=[1])
    state = torch.cat([torch.randn(8, 1), random_unit_quaternions(8, torch.Generator().manual_seed(1)),
                       torch.randn(8, 1)], -1)
    action = torch.randn(8, 1)
    flipped = state.clone()
    flipped[:, 1:5] *= -1
    assert model.raw_inputs(state, action).shape == (8, 2 + 9 + 1)
    torch.testing.assert_close(model.raw_inputs(flipped, action), model.raw_inputs(state, action))
    with torch.no_grad():
        prediction, from_flipped = model.predict(state, action)[0], model.predict(flipped, action)[0]
    torch.testing.assert_close(from_flipped[..., [0, 5]], prediction[..., [0, 5]])
    assert quaternion_angle(from_flipped[..., 1:5], prediction[..., 1:5]).max() < 1e-3
    torch.testing.assert_close(prediction[..., 1:5].norm(dim=-1), torch.ones(prediction.shape[:-1]))
    rebuilt = model_from_payload(model_to_payload(model))
    assert rebuilt.quaternion_dims == [1]
    torch.testing.assert_close(rebuilt.predict(state, action)[0], prediction)


def test_cube_rotations_are_the_24_rotations_that_map_a_cube_onto_itself():
    from mbrl_ros.rotations import cube_rotations

    rotations = cube_rotations()
    assert rotations.shape == (24, 3, 3)
    torch.testing.assert_close(rotations[0], torch.eye(3))
    torch.testing.assert_close(rotations @ rotations.transpose(-1, -2), torch.eye(3).expand(24, 3, 3))
    torch.testing.assert_close(torch.linalg.det(rotations), torch.ones(24))
    assert len({tuple(r.flatten().tolist()) for r in rotations}) == 24
    products = {tuple((a @ b).flatten().tolist()) for a in rotations for b in rotations}
    assert products == {tuple(r.flatten().tolist()) for r in rotations}  # a group


def test_the_canonical_cube_rotation_is_the_closest_to_the_identity_of_the_24_alike_and_the_same_for_all():
    from mbrl_ros.rotations import canonical_cube_rotation, cube_rotations, quaternion_to_matrix

    rotation = quaternion_to_matrix(random_unit_quaternions(64, torch.Generator().manual_seed(0)))
    canonical = canonical_cube_rotation(rotation)
    alike = rotation[:, None] @ cube_rotations()  # (64, 24, 3, 3)
    traces = alike.diagonal(dim1=-2, dim2=-1).sum(-1)
    torch.testing.assert_close(canonical.diagonal(dim1=-2, dim2=-1).sum(-1), traces.max(dim=1).values)
    differences = (alike - canonical[:, None]).abs().flatten(-2).amax(-1)
    assert (differences.min(dim=1).values < 1e-6).all()  # canonical is one of the 24
    for k in range(24):
        torch.testing.assert_close(canonical_cube_rotation(alike[:, k]), canonical)


@pytest.mark.parametrize("kind", ["mlp", "ensemble"])
def test_a_cube_turned_by_one_of_its_symmetries_gets_the_same_inputs_and_the_same_predicted_turn(kind):
    from mbrl_ros.models import model_class, model_from_payload, model_to_payload
    from mbrl_ros.rotations import quaternion_angle, quaternion_multiply

    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(1)
    q = random_unit_quaternions(8, generator)
    state = torch.cat([torch.randn(8, 1, generator=generator), q, torch.randn(8, 1, generator=generator)], -1)
    action = torch.randn(8, 1, generator=generator)
    symmetry = turn_quaternions(torch.tensor([[torch.pi / 2, 0.0, 0.0]]))  # a quarter turn about the body's x
    alike = state.clone()
    alike[:, 1:5] = quaternion_multiply(q, symmetry)
    plain = model_class(kind)(6, 1, hidden_layers=1, hidden_units=16, quaternion_dims=[1])
    assert not torch.allclose(plain.raw_inputs(alike, action), plain.raw_inputs(state, action), atol=1e-3)
    model = model_class(kind)(6, 1, hidden_layers=1, hidden_units=16, quaternion_dims=[1], cube_quaternion_dims=[1])
    torch.testing.assert_close(model.raw_inputs(alike, action), model.raw_inputs(state, action))
    with torch.no_grad():
        prediction, from_alike = model.predict(state, action)[0], model.predict(alike, action)[0]
    torch.testing.assert_close(from_alike[..., [0, 5]], prediction[..., [0, 5]])
    assert quaternion_angle(from_alike[..., 1:5], quaternion_multiply(prediction[..., 1:5], symmetry)).max() < 1e-3
    rebuilt = model_from_payload(model_to_payload(model))
    assert rebuilt.cube_quaternion_dims == [1]
    torch.testing.assert_close(rebuilt.predict(alike, action)[0], from_alike)


@pytest.mark.parametrize("cube_quaternion_dims", [[0], [1, 1], [5], [True], [1.0]])
def test_cube_quaternion_dims_that_are_not_quaternion_dims_are_refused(cube_quaternion_dims):
    with pytest.raises(ValueError, match="cube_quaternion_dims"):
        DeterministicMLP(6, 1, quaternion_dims=[1], cube_quaternion_dims=cube_quaternion_dims)


@pytest.mark.parametrize("quaternion_dims", [[3], [-1], [0, 2], [True], [0.5], [1]])
def test_quaternion_dims_outside_the_state_overlapping_or_among_the_angles_are_refused(quaternion_dims):
    with pytest.raises(ValueError, match="quaternion"):
        DeterministicMLP(6, 1, angle_dims=[2], quaternion_dims=quaternion_dims)


def test_a_model_with_quaternion_dims_learns_turns_at_every_orientation():
    from mbrl_ros.data.transitions import TransitionBatch
    from mbrl_ros.models import ModelTrainer, TrainerConfig
    from mbrl_ros.rotations import quaternion_angle, quaternion_multiply

    generator = torch.Generator().manual_seed(0)

    def spun_body(count: int) -> TransitionBatch:
        """A body at any orientation turned for one step by the angular velocity it is commanded (world frame)."""
        q, velocity = random_unit_quaternions(count, generator), torch.rand(count, 3, generator=generator) * 2 - 1
        next_q = quaternion_multiply(turn_quaternions(0.3 * velocity), q)
        return TransitionBatch(q.numpy(), velocity.numpy(), next_q.numpy(), np.zeros(count, np.float32),
                               np.zeros(count, bool))

    train, test = spun_body(3000), spun_body(500)

    def turn_error(quaternion_dims: list[int]) -> float:
        torch.manual_seed(0)
        model = ProbabilisticEnsemble(4, 3, ensemble_size=2, hidden_layers=2, hidden_units=64,
                                      quaternion_dims=quaternion_dims)
        ModelTrainer(model, TrainerConfig(max_epochs=30, batch_size=64, progress=False, seed=0)).fit(train)
        with torch.no_grad():
            predicted = model.predict_mean(torch.tensor(test.states), torch.tensor(test.actions))
        errors = quaternion_angle(predicted, torch.tensor(test.next_states))
        return float(errors.mean() / quaternion_angle(torch.tensor(test.states), torch.tensor(test.next_states)).mean())

    turns, differences = turn_error([0]), turn_error([])
    assert turns < 0.05, turns
    assert differences > 2 * turns, (differences, turns)
