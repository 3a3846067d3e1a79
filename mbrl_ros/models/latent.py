"""PlaNet's latent dynamics model (Hafner et al. 2019): a recurrent state-space model learned from pixels.

The state has a deterministic part ``h`` (a GRU's state) and a stochastic part ``z`` (diagonal Gaussian):

    h_t = GRU(h_{t-1}, MLP([z_{t-1}, a_{t-1}]))        deterministic transition
    p(z_t | h_t)                                        prior (what imagination uses)
    q(z_t | h_t, e_t), e_t = encoder(o_t)               posterior (filtering from images)
    p(o_t | h_t, z_t) decoder,  p(r_t | h_t, z_t) reward

trained on sequence chunks with the ELBO: image and reward log-likelihoods minus the KL from posterior to
prior, each step's KL clipped below at ``free_nats``. Sequences are time-major: observations (T, B, 3, 64, 64)
as floats in [-0.5, 0.5] (:func:`preprocess_images`), ``actions[t]`` is the action taken *before* observation t
(zeros at an episode's start) and ``rewards[t]`` the reward that came with observation t.
"""

from typing import Any, NamedTuple

import torch
from torch import Tensor, nn
from torch.distributions import Normal, kl_divergence
from torch.nn import functional

from mbrl_ros.models.registry import register_model_kind

IMAGE_SIZE = 64  # (pixels) PlaNet's observations are 64 x 64 RGB


def preprocess_images(images: Tensor, bit_depth: int = 5, noise: bool = False) -> Tensor:
    """uint8 images (..., 3, 64, 64) -> floats in [-0.5, 0.5], quantised to ``bit_depth`` bits (the paper's 5).

    With ``noise``, uniform noise of one quantisation step is added (the paper's dequantisation in training).
    """
    images = torch.floor(images.float() / 2 ** (8 - bit_depth)) / 2**bit_depth - 0.5
    if noise:
        images = images + torch.rand_like(images) / 2**bit_depth
    return images


class LatentState(NamedTuple):
    """A batch of RSSM states: deterministic (B, H), stochastic sample (B, Z) and its Gaussian's mean and std."""

    deterministic: Tensor
    stochastic: Tensor
    mean: Tensor
    std: Tensor

    def features(self) -> Tensor:
        """(B, H + Z), what the decoder and the reward model read."""
        return torch.cat([self.deterministic, self.stochastic], dim=-1)


class ConvEncoder(nn.Module):
    """(N, 3, 64, 64) -> (N, 32 * depth): four 4x4 stride-2 convolutions (depth, 2, 4, 8 x depth channels)."""

    def __init__(self, depth: int):
        super().__init__()
        channels = [3, depth, 2 * depth, 4 * depth, 8 * depth]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(channels[:-1], channels[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, kernel_size=4, stride=2), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Flatten())
        self.output_dim = 32 * depth

    def forward(self, images: Tensor) -> Tensor:
        return self.net(images)


class ConvDecoder(nn.Module):
    """(N, F) features -> (N, 3, 64, 64) image means: a dense layer then four transposed convolutions."""

    def __init__(self, feature_dim: int, depth: int):
        super().__init__()
        self.dense = nn.Linear(feature_dim, 32 * depth)
        channels, kernels = [32 * depth, 4 * depth, 2 * depth, depth, 3], [5, 5, 6, 6]
        layers: list[nn.Module] = []
        for i, kernel in enumerate(kernels):
            layers.append(nn.ConvTranspose2d(channels[i], channels[i + 1], kernel_size=kernel, stride=2))
            if i < len(kernels) - 1:
                layers.append(nn.ReLU())
        self.net = nn.Sequential(*layers)

    def forward(self, features: Tensor) -> Tensor:
        return self.net(self.dense(features)[:, :, None, None])


class RSSM(nn.Module):
    """The recurrent state-space model's transition, prior and posterior.

    Args:
        action_dim: A.
        embedding_dim: E, the encoder's output size.
        deterministic: H, GRU state size (paper: 200).
        stochastic: Z, Gaussian latent size (paper: 30).
        hidden: width of the MLPs (paper: 200).
        min_std: lower bound of the latent Gaussians' standard deviation.
    """

    def __init__(self, action_dim: int, embedding_dim: int, deterministic: int, stochastic: int, hidden: int,
                 min_std: float = 0.1):
        super().__init__()
        self.deterministic_dim, self.stochastic_dim, self.min_std = deterministic, stochastic, min_std
        self.input = nn.Sequential(nn.Linear(stochastic + action_dim, hidden), nn.ELU())
        self.cell = nn.GRUCell(hidden, deterministic)
        self.prior = nn.Sequential(nn.Linear(deterministic, hidden), nn.ELU(), nn.Linear(hidden, 2 * stochastic))
        self.posterior = nn.Sequential(
            nn.Linear(deterministic + embedding_dim, hidden), nn.ELU(), nn.Linear(hidden, 2 * stochastic)
        )

    def initial(self, batch: int, device: torch.device | None = None) -> LatentState:
        zeros_h = torch.zeros(batch, self.deterministic_dim, device=device)
        zeros_z = torch.zeros(batch, self.stochastic_dim, device=device)
        return LatentState(zeros_h, zeros_z, zeros_z, torch.ones_like(zeros_z))

    def _gaussian(self, deterministic: Tensor, parameters: Tensor, sample: bool) -> LatentState:
        mean, raw_std = parameters.chunk(2, dim=-1)
        std = functional.softplus(raw_std) + self.min_std
        stochastic = mean + std * torch.randn_like(std) if sample else mean
        return LatentState(deterministic, stochastic, mean, std)

    def imagine_step(self, state: LatentState, action: Tensor, sample: bool = True) -> LatentState:
        """Prior of the next state after ``action`` (B, A): what the model expects without seeing an image."""
        deterministic = self.cell(self.input(torch.cat([state.stochastic, action], dim=-1)), state.deterministic)
        return self._gaussian(deterministic, self.prior(deterministic), sample)

    def observe_step(self, state: LatentState, action: Tensor, embedding: Tensor) -> tuple[LatentState, LatentState]:
        """Posterior and prior of the next state after ``action`` (B, A), given its image's embedding (B, E)."""
        prior = self.imagine_step(state, action)
        posterior = self._gaussian(
            prior.deterministic, self.posterior(torch.cat([prior.deterministic, embedding], dim=-1)), sample=True
        )
        return posterior, prior

    def observe(self, embeddings: Tensor, actions: Tensor, initial: LatentState) -> tuple[LatentState, LatentState]:
        """Filters a sequence: embeddings (T, B, E) and actions (T, B, A) -> posteriors and priors (T, B, ...)."""
        posteriors, priors = [], []
        state = initial
        for embedding, action in zip(embeddings, actions, strict=True):
            state, prior = self.observe_step(state, action, embedding)
            posteriors.append(state)
            priors.append(prior)
        return _stack(posteriors), _stack(priors)

    def imagine(self, initial: LatentState, actions: Tensor, sample: bool = True) -> LatentState:
        """Rolls the prior forward through actions (T, B, A) from ``initial`` -> states (T, B, ...)."""
        states, state = [], initial
        for action in actions:
            state = self.imagine_step(state, action, sample)
            states.append(state)
        return _stack(states)


def _stack(states: list[LatentState]) -> LatentState:
    return LatentState(*(torch.stack(parts) for parts in zip(*states, strict=True)))


@register_model_kind
class LatentDynamicsModel(nn.Module):
    """PlaNet's world model: encoder, RSSM, decoder and reward model (saved and published as kind "rssm").

    Args:
        action_dim: A.
        depth: convolution channel multiplier (paper: 32, giving a 1024-wide embedding).
        deterministic: GRU state size H (paper: 200).
        stochastic: latent size Z (paper: 30).
        hidden: MLP width (paper: 200).
        free_nats: KL below this (per step, summed over latent dimensions) is not penalised (paper: 3).
    """

    kind = "rssm"

    def __init__(self, action_dim: int, depth: int = 32, deterministic: int = 200, stochastic: int = 30,
                 hidden: int = 200, free_nats: float = 3.0):
        super().__init__()
        self.action_dim, self.depth, self.hidden, self.free_nats = action_dim, depth, hidden, free_nats
        self.encoder = ConvEncoder(depth)
        self.rssm = RSSM(action_dim, self.encoder.output_dim, deterministic, stochastic, hidden)
        feature_dim = deterministic + stochastic
        self.decoder = ConvDecoder(feature_dim, depth)
        self.reward = nn.Sequential(nn.Linear(feature_dim, hidden), nn.ELU(), nn.Linear(hidden, hidden), nn.ELU(),
                                    nn.Linear(hidden, 1))

    def architecture(self) -> dict[str, Any]:
        return {"action_dim": self.action_dim, "depth": self.depth,
                "deterministic": self.rssm.deterministic_dim, "stochastic": self.rssm.stochastic_dim,
                "hidden": self.hidden, "free_nats": self.free_nats}

    def encode(self, observations: Tensor) -> Tensor:
        """(T, B, 3, 64, 64) -> embeddings (T, B, E)."""
        time, batch = observations.shape[:2]
        return self.encoder(observations.flatten(0, 1)).unflatten(0, (time, batch))

    def decode(self, states: LatentState) -> Tensor:
        """States (T, B, ...) -> image means (T, B, 3, 64, 64)."""
        features = states.features()
        return self.decoder(features.flatten(0, 1)).unflatten(0, features.shape[:2])

    def predict_reward(self, states: LatentState) -> Tensor:
        """States (..., H) / (..., Z) -> rewards (...)."""
        return self.reward(states.features()).squeeze(-1)

    def loss(self, observations: Tensor, actions: Tensor, rewards: Tensor) -> tuple[Tensor, dict[str, float]]:
        """Negative ELBO of a batch of sequences, and its parts (per sequence step).

        Args:
            observations: (T, B, 3, 64, 64) preprocessed images.
            actions: (T, B, A), actions[t] taken before observation t.
            rewards: (T, B), the reward that came with observation t.
        """
        posteriors, priors = self.rssm.observe(
            self.encode(observations), actions, self.rssm.initial(observations.shape[1], observations.device)
        )
        image_loss = (self.decode(posteriors) - observations).square().sum(dim=(2, 3, 4)).mean() / 2
        reward_loss = (self.predict_reward(posteriors) - rewards).square().mean() / 2
        kl = kl_divergence(Normal(posteriors.mean, posteriors.std), Normal(priors.mean, priors.std)).sum(-1)
        kl_loss = kl.clamp(min=self.free_nats).mean()
        total = image_loss + reward_loss + kl_loss
        return total, {"image": image_loss.item(), "reward": reward_loss.item(), "kl": kl.mean().item()}


class LatentFilter:
    """Tracks the latent state of a running episode from its images and the actions taken (PlaNet's filter).

    Args:
        model: the world model.
    """

    def __init__(self, model: LatentDynamicsModel):
        self.model = model
        self.reset()

    def reset(self) -> None:
        """Forgets the episode: the next image starts from the initial state."""
        self.state = self.model.rssm.initial(1, next(self.model.parameters()).device)
        self._previous_action = torch.zeros(1, self.model.action_dim, device=self.state.deterministic.device)

    @torch.no_grad()
    def update(self, image: Tensor) -> LatentState:
        """Folds in the image (3, 64, 64) uint8 that followed the last :meth:`act`; returns the posterior (B=1)."""
        embedding = self.model.encoder(preprocess_images(image[None].to(self._previous_action.device)))
        self.state, _ = self.model.rssm.observe_step(self.state, self._previous_action, embedding)
        return self.state

    def act(self, action: Tensor) -> None:
        """Records the action (A,) applied after the last image."""
        self._previous_action = action.reshape(1, -1).to(self._previous_action.device, torch.float32)


class LatentReturn:
    """A planning objective: the RSSM's predicted return of action sequences from one latent state.

    All N candidates are rolled forward together (batch N) for H steps on the prior; the return is the sum of
    predicted rewards. Called with actions (N, H, A), returns (N,).
    """

    def __init__(self, model: LatentDynamicsModel, state: LatentState):
        self.model, self.state = model, state

    @torch.no_grad()
    def __call__(self, actions: Tensor) -> Tensor:
        count = actions.shape[0]
        state = LatentState(*(part.expand(count, -1) for part in self.state))
        total = actions.new_zeros(count)
        for action in actions.transpose(0, 1):  # step by step: no (H, N, ...) stack of the states is kept
            state = self.model.rssm.imagine_step(state, action, sample=True)
            total += self.model.predict_reward(state)
        return total
