"""PlaNet's world model: shapes, the ELBO's parts, learning a pixel world, filtering and safe serialization."""

import numpy as np
import pytest
import torch

from mbrl_ros.models import model_from_payload, model_to_payload
from mbrl_ros.models.latent import LatentDynamicsModel, LatentFilter, LatentReturn, LatentState, preprocess_images

from moving_square import SMALL, as_tensors, episodes, trained_model


@pytest.fixture(scope="module")
def trained() -> LatentDynamicsModel:
    return trained_model()


def test_preprocessing_quantises_to_the_bit_depth_and_centres():
    images = torch.tensor([0, 7, 8, 255], dtype=torch.uint8)
    np.testing.assert_allclose(preprocess_images(images, bit_depth=5), [-0.5, -0.5, -0.5 + 1 / 32, 0.5 - 1 / 32])
    noisy = preprocess_images(images.repeat(1000), noise=True)
    assert noisy.min() >= -0.5 and noisy.max() <= 0.5


def test_shapes_through_the_model_and_a_finite_elbo():
    model = LatentDynamicsModel(3, **SMALL)
    observations = preprocess_images(torch.randint(0, 256, (5, 4, 3, 64, 64), dtype=torch.uint8))
    posteriors, priors = model.rssm.observe(model.encode(observations), torch.zeros(5, 4, 3), model.rssm.initial(4))
    assert posteriors.deterministic.shape == (5, 4, 32) and priors.stochastic.shape == (5, 4, 8)
    assert model.decode(posteriors).shape == (5, 4, 3, 64, 64)
    loss, parts = model.loss(observations, torch.zeros(5, 4, 3), torch.zeros(5, 4))
    assert torch.isfinite(loss) and set(parts) == {"image", "reward", "kl"}
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_kl_under_the_free_nats_is_not_penalised():
    model = LatentDynamicsModel(1, **{**SMALL, "free_nats": 1e6})
    observations = preprocess_images(torch.randint(0, 256, (3, 2, 3, 64, 64), dtype=torch.uint8))
    loss, parts = model.loss(observations, torch.zeros(3, 2, 1), torch.zeros(3, 2))
    assert loss.item() == pytest.approx(parts["image"] + parts["reward"] + 1e6, rel=1e-6)


def test_the_model_reconstructs_and_predicts_the_pixel_world(trained):
    observations, actions, _ = as_tensors(*episodes(16, 10, seed=1))
    with torch.no_grad():
        posteriors, _ = trained.rssm.observe(trained.encode(observations[:5]), actions[:5], trained.rssm.initial(16))
        reconstruction_error = (trained.decode(posteriors) - observations[:5]).square().mean().item()
        last = LatentState(*(part[-1] for part in posteriors))
        predicted = trained.decode(trained.rssm.imagine(last, actions[5:], sample=False))
    prediction_error = (predicted - observations[5:]).square().mean().item()
    copy_last_error = (observations[4:5] - observations[5:]).square().mean().item()
    assert reconstruction_error < 0.02
    assert prediction_error < 0.8 * copy_last_error, (prediction_error, copy_last_error)


def test_the_filter_tracks_an_episode_image_by_image_like_observe(trained):
    frames, actions, _ = episodes(1, 6, seed=2)
    latent_filter = LatentFilter(trained)
    torch.manual_seed(3)
    for t in range(6):
        latent_filter.act(torch.as_tensor(actions[t, 0]))
        state = latent_filter.update(torch.as_tensor(frames[t, 0]))
    torch.manual_seed(3)
    observations, action_tensor, _ = as_tensors(frames, actions, np.zeros((6, 1), np.float32))
    with torch.no_grad():
        posteriors, _ = trained.rssm.observe(trained.encode(observations), action_tensor, trained.rssm.initial(1))
    torch.testing.assert_close(state.deterministic, posteriors.deterministic[-1])


def test_latent_return_evaluates_every_candidate_in_one_batch(trained):
    state = LatentFilter(trained).update(torch.as_tensor(episodes(1, 1, seed=4)[0][0, 0]))
    returns = LatentReturn(trained, state)(torch.zeros(7, 12, 2))
    assert returns.shape == (7,) and torch.isfinite(returns).all()


def test_serialization_round_trip_is_exact(trained):
    restored = model_from_payload(model_to_payload(trained), expected_kind="rssm")
    for name, tensor in trained.state_dict().items():
        torch.testing.assert_close(restored.state_dict()[name], tensor, rtol=0, atol=0)
