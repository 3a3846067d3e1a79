"""The optimizers on objectives with known optima, their sampling, batching and configuration."""

import math
import time

import pytest
import torch

from mbrl_ros.planning import CEM, ICEM, MPPI, OPTIMIZERS, RandomShooting, make_optimizer, optimizer_parameters
from mbrl_ros.planning.sampling import colored_noise, make_generators

HORIZON, ACTIONS = 6, 2
LOW, HIGH = [-1.0, -2.0], [1.0, 2.0]
TARGET = torch.tensor([0.3, -0.8]).expand(HORIZON, -1) * torch.linspace(1.0, 0.5, HORIZON)[:, None]

SMALL = {
    "random_shooting": {"population": 2000},
    "cem": {"population": 200, "iterations": 6},
    "mppi": {"population": 300, "iterations": 8, "gamma": 20.0, "sigma": 0.3},
    "icem": {"population": 100, "iterations": 6},
}


def quadratic(sequences):
    """Concave objective (..., N, H, A) -> (..., N) with its maximum 0 at TARGET (inside the bounds)."""
    return -(sequences - TARGET).square().sum(dim=(-1, -2))


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_each_optimizer_finds_the_maximum_of_a_quadratic_within_the_bounds(name):
    optimizer = make_optimizer(name, LOW, HIGH, **SMALL[name])
    generator = make_generators([0])[0]
    mean = optimizer.default_mean(HORIZON)
    for _ in range(3 if name != "random_shooting" else 1):  # warm-started repeats, as in MPC
        mean = optimizer.optimize(quadratic, mean, generator)
    assert mean.shape == (HORIZON, ACTIONS)
    assert (mean >= torch.tensor(LOW)).all() and (mean <= torch.tensor(HIGH)).all()
    # one uniform candidate averages a cost of about 10 here; the best of 2000 in 12 dimensions about 2.4
    tolerance = 3.5 if name == "random_shooting" else 0.01
    assert -quadratic(mean[None])[0] < tolerance
    assert optimizer.last_stats.iterations >= 1 and optimizer.last_stats.evaluations > 0


def test_random_shooting_returns_the_best_of_its_candidates():
    seen = []

    def objective(sequences):
        seen.append(sequences.clone())
        return quadratic(sequences)

    best = RandomShooting(LOW, HIGH, population=500).optimize(objective, torch.zeros(HORIZON, ACTIONS),
                                                              make_generators([1])[0])
    candidates = seen[0]
    assert len(seen) == 1 and candidates.shape == (500, HORIZON, ACTIONS)
    assert torch.equal(best, candidates[quadratic(candidates).argmax()])
    assert (candidates >= torch.tensor(LOW)).all() and (candidates <= torch.tensor(HIGH)).all()
    # uniform over the box: each dimension spans it
    assert (candidates.amin(dim=(0, 1)) < torch.tensor(LOW) + 0.05).all()


@pytest.mark.parametrize("bound_handling", ["truncate", "pets"])
def test_cem_samples_stay_inside_the_bounds_even_when_the_mean_sits_on_one(bound_handling):
    cem = CEM(LOW, HIGH, population=1000, iterations=1, bound_handling=bound_handling)
    mean = torch.tensor(HIGH).expand(1, HORIZON, -1).clone()
    mean[..., 0] = -1.0
    samples = cem.sample_population(mean, cem.initial_variance(mean), make_generators([0]))
    assert (samples >= torch.tensor(LOW)).all() and (samples <= torch.tensor(HIGH)).all()
    spread = (samples - mean[:, None]).abs().mean().item()
    if bound_handling == "truncate":  # a half-normal of std 0.25 x range: mean |x| = 0.8 std
        assert abs(spread - 0.8 * 0.25 * (2.0 + 4.0) / 2) < 0.05
    else:  # PETS shrinks the variance to nothing at a bound
        assert spread < 1e-6


@pytest.mark.parametrize(("bound_handling", "std_factor"), [("truncate", 1.0), ("pets", 0.880)])
def test_cem_samples_away_from_the_bounds_have_the_distribution_variance(bound_handling, std_factor):
    cem = CEM(LOW, HIGH, population=20000, bound_handling=bound_handling)
    samples = cem.sample_population(torch.zeros(1, HORIZON, ACTIONS), torch.full((1, HORIZON, ACTIONS), 0.04),
                                    make_generators([0]))
    # PETS truncates at 2 std: a normal truncated there has 0.880 of the std
    assert torch.allclose(samples.std(dim=1), torch.tensor(0.2 * std_factor), atol=0.01)
    assert torch.allclose(samples.mean(dim=1), torch.tensor(0.0), atol=0.01)


def test_cem_returns_the_mean_not_the_best_sample():
    """With a noisy objective, the single best sample chases noise; the mean of the elites does not."""
    generator = torch.Generator().manual_seed(5)

    def noisy(sequences):
        return quadratic(sequences) + 2.0 * torch.randn(sequences.shape[:-2], generator=generator)

    cem = CEM(LOW, HIGH, population=400, elites=40, iterations=5)
    result = cem.optimize(noisy, torch.zeros(HORIZON, ACTIONS), make_generators([2])[0])
    assert -quadratic(result[None])[0] < 0.3


def test_mppi_relative_sigma_scales_the_noise_by_half_each_range():
    low, high = [-1.0, 0.0, -3.0], [1.0, 0.5, 5.0]
    mppi = MPPI(low, high, population=20000, sigma=0.9, relative_sigma=True, beta=1.0)
    noise = mppi.sample_noise([torch.Generator().manual_seed(0)], 4, torch.device("cpu"), torch.float32)
    torch.testing.assert_close(noise.std(dim=(0, 1, 2)), torch.tensor([0.9, 0.225, 3.6]), rtol=0.03, atol=0)
    torch.testing.assert_close(MPPI(low, high, sigma=0.9).sigma, torch.full((3,), 0.9))
    with pytest.raises(ValueError, match="relative_sigma"):
        MPPI(low, high, relative_sigma="yes")


def mppi_noise(beta, population=40000, horizon=8, sigma=0.5):
    mppi = MPPI([-100.0], [100.0], population=population, beta=beta, sigma=sigma)
    samples = mppi.sample_population(torch.zeros(1, horizon, 1), make_generators([0]))
    return samples[0, :, :, 0]  # (N, H), no clipping at these bounds


def test_mppi_noise_with_beta_one_is_white():
    noise = mppi_noise(beta=1.0)
    assert torch.allclose(noise.std(dim=0), torch.tensor(0.5), atol=0.01)
    lag1 = torch.corrcoef(torch.cat([noise[:, :-1], noise[:, 1:]], dim=1).T)
    horizon = noise.shape[1]
    correlations = torch.stack([lag1[t, horizon - 1 + t] for t in range(horizon - 1)])
    assert correlations.abs().max() < 0.03


@pytest.mark.parametrize("beta", [0.3, 0.6])
def test_mppi_filtered_noise_has_the_lag_one_autocorrelation_theory_predicts(beta):
    """n_t = beta u_t + (1 - beta) n_{t-1}, n_{-1} = 0: Var n_t = beta^2 sigma^2 sum_{k<=t} rho^{2k} with
    rho = 1 - beta, and corr(n_t, n_{t+1}) = rho sqrt(Var n_t / Var n_{t+1})."""
    noise = mppi_noise(beta=beta)
    rho, horizon = 1.0 - beta, noise.shape[1]
    variance = torch.tensor([beta**2 * 0.25 * sum(rho ** (2 * k) for k in range(t + 1)) for t in range(horizon)])
    assert torch.allclose(noise.var(dim=0), variance, rtol=0.03)
    for t in range(horizon - 1):
        measured = torch.corrcoef(noise[:, t : t + 2].T)[0, 1]
        predicted = rho * math.sqrt(variance[t] / variance[t + 1])
        assert abs(measured - predicted) < 0.015, (t, measured, predicted)


def test_mppi_weights_returns_exponentially():
    """Two fixed candidates: the mean is their average weighted by exp(gamma (R - max R))."""
    mppi = MPPI([-1.0], [1.0], population=2, gamma=2.0, sigma=0.1)
    candidates = torch.tensor([[[0.5]], [[-0.5]]])  # (2, H=1, A=1)
    mppi.sample_population = lambda mean, generators: candidates.unsqueeze(0)
    mean = mppi.optimize(lambda s: torch.tensor([1.0, 0.0]), torch.zeros(1, 1))
    weight = math.exp(-2.0)
    assert mean.item() == pytest.approx((0.5 - 0.5 * weight) / (1 + weight), abs=1e-6)


def test_colored_noise_has_unit_variance_and_smoothness_growing_with_the_exponent():
    correlations = []
    for exponent in (0.0, 1.0, 2.0, 3.0):
        noise = colored_noise(make_generators([0]), (20000, 12, 1), exponent, torch.device("cpu"), torch.float32)
        noise = noise[0, :, :, 0]
        assert torch.allclose(noise.var(dim=0), torch.tensor(1.0), atol=0.06)
        correlations.append(torch.corrcoef(noise[:, 5:7].T)[0, 1].item())
    assert abs(correlations[0]) < 0.03
    assert correlations == sorted(correlations) and correlations[-1] > 0.8


def test_icem_shrinks_its_population_reuses_elites_and_adds_the_mean():
    icem = ICEM(LOW, HIGH, population=100, elites=10, iterations=3, population_decay=2.0, keep_elites=0.5)
    sizes, batches = [], []

    def objective(sequences):
        sizes.append(sequences.shape[0])
        batches.append(sequences.clone())
        return quadratic(sequences)

    icem.optimize(objective, torch.zeros(HORIZON, ACTIONS), make_generators([0])[0])
    # 100, 50, 25 samples (>= 2 * elites = 20) + 5 kept elites from iteration 2 on + the mean at the end
    assert sizes == [100, 50 + 5, 25 + 5 + 1]
    first_elites = batches[0][quadratic(batches[0]).topk(5).indices]
    assert torch.equal(batches[1][-5:], first_elites)
    kept = batches[2][quadratic(batches[2]).topk(10).indices][:5]
    icem.shift(2)
    sizes.clear()
    batches.clear()
    icem.optimize(objective, torch.zeros(HORIZON, ACTIONS), make_generators([1])[0])
    assert sizes[0] == 100 + 5
    carried = batches[0][-5:]
    assert torch.equal(carried[:, : HORIZON - 2], kept[:, 2:])  # shifted with the horizon
    icem.reset()
    sizes.clear()
    icem.optimize(objective, torch.zeros(HORIZON, ACTIONS), make_generators([1])[0])
    assert sizes[0] == 100


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_a_batch_of_problems_equals_separate_runs_with_the_same_generators(name):
    targets = torch.tensor([[0.2, 0.4], [-0.5, 1.0], [0.9, -1.5]])

    def batched(sequences):  # (B, N, H, A): problem b wants targets[b] at every step
        return -(sequences - targets[:, None, None, :]).square().sum(dim=(-1, -2))

    optimizer = make_optimizer(name, LOW, HIGH, **SMALL[name])
    together = optimizer.optimize(batched, torch.zeros(3, HORIZON, ACTIONS), make_generators([7, 8, 9]))
    for b in range(3):
        alone = make_optimizer(name, LOW, HIGH, **SMALL[name]).optimize(
            lambda s, b=b: -(s - targets[b]).square().sum(dim=(-1, -2)), torch.zeros(HORIZON, ACTIONS),
            make_generators([7 + b])[0])
        assert torch.allclose(together[b], alone, atol=1e-6)


def test_a_past_deadline_stops_after_one_iteration():
    cem = CEM(LOW, HIGH, population=50, iterations=10)
    cem.optimize(quadratic, torch.zeros(HORIZON, ACTIONS), deadline=time.monotonic() - 1.0)
    assert cem.last_stats.iterations == 1
    icem = ICEM(LOW, HIGH, population=50, iterations=10)
    icem.optimize(quadratic, torch.zeros(HORIZON, ACTIONS), deadline=time.monotonic() - 1.0)
    assert icem.last_stats.iterations == 1


def test_nan_returns_count_as_the_worst_and_do_not_poison_the_result():
    def objective(sequences):
        values = quadratic(sequences)
        return torch.where(sequences[..., 0, 0] > 0.5, torch.nan, values)

    for name in sorted(OPTIMIZERS):
        result = make_optimizer(name, LOW, HIGH, **SMALL[name]).optimize(objective, torch.zeros(HORIZON, ACTIONS))
        assert torch.isfinite(result).all() and result[0, 0] <= 0.5


def test_configuration_errors_are_clear():
    assert optimizer_parameters("cem")["population"] == 350
    with pytest.raises(ValueError, match="unknown optimizer"):
        make_optimizer("cmaes", LOW, HIGH)
    with pytest.raises(ValueError, match=r"unknown parameter\(s\) \['populaton'\]"):
        make_optimizer("cem", LOW, HIGH, populaton=10)
    with pytest.raises(ValueError, match="elite count"):
        make_optimizer("cem", LOW, HIGH, population=10, elites=20)
    with pytest.raises(ValueError, match="beta"):
        make_optimizer("mppi", LOW, HIGH, beta=0.0)
    with pytest.raises(ValueError, match="sigma"):
        make_optimizer("mppi", LOW, HIGH, sigma=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="population"):
        make_optimizer("random_shooting", LOW, HIGH, population=0)
    with pytest.raises(ValueError, match="lower < upper"):
        make_optimizer("cem", HIGH, LOW)
    with pytest.raises(ValueError, match="initial_mean"):
        make_optimizer("cem", LOW, HIGH).optimize(quadratic, torch.zeros(HORIZON, 3))
    with pytest.raises(ValueError, match="objective returned shape"):
        make_optimizer("cem", LOW, HIGH).optimize(lambda s: s.sum(-1), torch.zeros(HORIZON, ACTIONS))


@pytest.mark.parametrize(("name", "parameter"), [
    ("random_shooting", "population"), ("cem", "iterations"), ("cem", "population"), ("mppi", "gamma"),
    ("mppi", "beta"), ("icem", "noise_exponent"), ("icem", "population_decay"),
])
def test_a_bool_is_not_a_number_of_anything(name, parameter):
    """YAML's ``true`` where a count or a number belongs is refused, not read as 1."""
    with pytest.raises(ValueError, match=parameter):
        make_optimizer(name, LOW, HIGH, **{parameter: True})


@pytest.mark.parametrize(("name", "parameter"), [("cem", "alpha"), ("icem", "keep_elites"), ("mppi", "beta")])
def test_a_fraction_given_as_text_is_refused_with_a_value_error(name, parameter):
    """A YAML string where a fraction belongs gets the same clear error as a number outside the interval."""
    with pytest.raises(ValueError, match=parameter):
        make_optimizer(name, LOW, HIGH, **{parameter: "0.5"})
