"""scvis: a variational autoencoder with a t-SNE objective on its 2-D latent space.

Written from the paper (Ding, Condon & Shah 2018, Nat Commun 9:2002,
doi:10.1038/s41467-018-04368-5), not from its code, whose licence is academic-use only.

Model
-----
- Encoder ``q(z | x)``: dense ELU layers (paper: 128-64-32) to the mean and (softplus) standard
  deviation of a 2-D Gaussian; ``z`` sampled with the reparameterisation trick.
- Decoder ``p(x | z)``: dense ELU layers (paper: 32-32-32-64-128) to a per-feature location and
  (softplus) scale. Likelihood: Student's t with a learned degrees-of-freedom per feature (the
  paper's model for heavy-tailed data; ``likelihood="student_t"``) or Gaussian
  (``likelihood="gaussian"``, the paper's alternative). Prior ``p(z) = N(0, I)``.
- Objective per mini-batch, minimised:
  ``mean_i[-log p(x_i | z_i) + KL(q(z | x_i) || p(z))] + tsne_weight * KL(P || Q)``,
  where ``P`` are t-SNE input affinities among the batch's cells (Gaussian kernels calibrated to
  ``perplexity`` by bisection, symmetrised) and ``Q`` Student-t (one degree of freedom)
  affinities of their latent *means*. The paper weights the t-SNE term by the input
  dimensionality, because the log-likelihood is a sum over that many features: that is the
  default (``tsne_weight=None``).

The embedding is the latent mean of every cell. Batches are full (the last partial batch of an
epoch is dropped: t-SNE affinities need a full batch); epochs and batch size default to auto as
the other neural methods (``src/scdrbench/methods/_nn.py``), the batch being at most 512 (the paper's).
Input scaling: :data:`scdrbench.methods._nn.INPUT_SCALING`. Noise for the reparameterisation is
stateless, keyed on (seed, step), so a fit is deterministic on CPU for a fixed seed and threads.
"""

from __future__ import annotations

import logging
import math

import numpy as np

from scdrbench.common.errors import ScdrbenchError
from scdrbench.methods import _nn, _params
from scdrbench.methods._params import choice, integers, number

log = logging.getLogger("scdrbench.methods.scvis")

#: imported by the runner before the fit is timed (TensorFlow start-up is 10-30 s)
BACKEND_MODULES = ("tensorflow", "keras")
VERSIONED = ("tensorflow-cpu", "tensorflow", "keras")
#: short settings for the method tests (tests/test_methods_*.py, a few hundred cells)
TEST_PARAMS: dict = {"epochs": 30, "batch_size": 200}
PARAMS = {
    "perplexity": number(10, gt=0),
    "tsne_weight": number(minimum=0, description="absent: input dimensionality (paper)"),
    "likelihood": choice(["student_t", "gaussian"], "student_t"),
    "encoder_layers": integers(
        [128, 64, 32],
        minimum=3,
        min_items=1,
        unique=True,
        description="strictly decreasing (checked at validation)",
    ),
    "decoder_layers": integers([32, 32, 32, 64, 128], minimum=1, min_items=1),
    "activation": _params.ACTIVATION,
    "epochs": _params.integer(minimum=1, description="absent: auto, ~3000 steps"),
    "batch_size": _params.integer(
        minimum=2, description="absent: auto, <= 512; must exceed 3 x perplexity"
    ),
    "learning_rate": number(0.001, gt=0, maximum=1),
}
NARROWING_LAYERS = ("encoder_layers",)

NAME = "scvis"
LATENT = 2
TARGET_STEPS = 3000
MAX_BATCH = 512
BISECTION_STEPS = 40


def _batch_size(n: int, batch_size: int | None) -> int:
    if batch_size is None:
        batch_size = int(min(MAX_BATCH, 2 ** int(math.floor(math.log2(max(n / 2, 2))))))
    return _nn.auto_batch_size(n, batch_size, NAME)


def tsne_input_affinities(tf, x, perplexity: float):
    """Symmetric t-SNE affinities ``P`` (b x b, sums to 1) of the rows of ``x``."""
    b = tf.shape(x)[0]
    sq = tf.reduce_sum(tf.square(x), axis=1)
    d2 = tf.maximum(sq[:, None] + sq[None, :] - 2.0 * tf.matmul(x, x, transpose_b=True), 0.0)
    eye = tf.eye(b, dtype=x.dtype)
    d2 = d2 + eye * 1e10
    d2 = d2 - tf.reduce_min(d2, axis=1, keepdims=True)  # stable exp; P is shift-invariant
    target = tf.math.log(tf.cast(perplexity, x.dtype))
    lo = tf.fill([b], tf.constant(-20.0, x.dtype))  # bisection on log(beta), beta = 1/(2 s^2)
    hi = tf.fill([b], tf.constant(20.0, x.dtype))
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        w = tf.exp(-tf.exp(mid)[:, None] * d2)
        sw = tf.reduce_sum(w, axis=1) + 1e-12
        entropy = tf.math.log(sw) + tf.exp(mid) * tf.reduce_sum(w * d2, axis=1) / sw
        too_flat = entropy > target  # entropy falls as beta grows
        lo = tf.where(too_flat, mid, lo)
        hi = tf.where(too_flat, hi, mid)
    w = tf.exp(-tf.exp(0.5 * (lo + hi))[:, None] * d2) * (1.0 - eye)
    p_cond = w / (tf.reduce_sum(w, axis=1, keepdims=True) + 1e-12)
    p = p_cond + tf.transpose(p_cond)
    return tf.stop_gradient(p / tf.reduce_sum(p))


def tsne_kl(tf, p, y):
    """KL(P || Q) with Q the Student-t (1 d.o.f.) affinities of the rows of ``y``."""
    b = tf.shape(y)[0]
    sq = tf.reduce_sum(tf.square(y), axis=1)
    d2 = tf.maximum(sq[:, None] + sq[None, :] - 2.0 * tf.matmul(y, y, transpose_b=True), 0.0)
    w = (1.0 - tf.eye(b, dtype=y.dtype)) / (1.0 + d2)
    q = w / tf.reduce_sum(w)
    return tf.reduce_sum(p * (tf.math.log(p + 1e-12) - tf.math.log(q + 1e-12)))


def _dense_stack(keras, widths, activation, prefix):
    return [
        keras.layers.Dense(w, activation=activation, name=f"{prefix}_{i}")
        for i, w in enumerate(widths)
    ]


def embed(
    X,
    *,
    seed: int,
    info: dict | None = None,
    threads: int = 1,
    perplexity: float = 10.0,
    tsne_weight: float | None = None,
    likelihood: str = "student_t",
    encoder_layers: tuple[int, ...] | list[int] = (128, 64, 32),
    decoder_layers: tuple[int, ...] | list[int] = (32, 32, 32, 64, 128),
    activation: str = "elu",
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 1e-3,
) -> np.ndarray:
    """Fit scvis to ``X`` (cells x PCs); return the latent means, float32 ``(n, 2)``.

    Parameters
    ----------
    perplexity
        Perplexity of the within-batch t-SNE input affinities (paper: 10).
    tsne_weight
        Weight of the t-SNE term; ``None``: the input dimensionality (the paper's choice).
    likelihood
        ``"student_t"`` (default) or ``"gaussian"``.
    encoder_layers, decoder_layers
        Hidden widths; defaults ``[128, 64, 32]`` and ``[32, 32, 32, 64, 128]`` (the paper's).
        The encoder must narrow strictly towards the 2-D latent space.
    activation
        Hidden-layer activation (a Keras name).
    epochs, batch_size
        ``None``: auto (module docstring).
    learning_rate
        Adam's step size.

    ``info`` gets ``history`` (loss per epoch), ``tsne_kl_history``, ``final_loss``,
    ``epochs_run``, ``device``, ``input_scaling``, ``batch_size``, ``tsne_weight``.
    """
    X = _nn.check_matrix(X, NAME)
    n, d = X.shape
    enc, dec, batch, weight = _checked(
        d, n, likelihood, encoder_layers, decoder_layers, perplexity, learning_rate, batch_size,
        tsne_weight,
    )  # fmt: skip
    steps_per_epoch = n // batch
    n_epochs = _nn.auto_epochs(n, batch, epochs, target_steps=TARGET_STEPS, max_epochs=1000)

    tf = _nn.setup_tensorflow(seed, threads)
    import keras

    Xs = _nn.scaled_dense(X, _nn.Scaler.fit(X))
    encode, log_likelihood, variables = _network(tf, keras, d, enc, dec, activation, likelihood)
    optimizer = keras.optimizers.Adam(learning_rate)
    optimizer.build(variables)
    train_step, latent_mean = _steps(
        tf, d, encode, log_likelihood, variables, optimizer, perplexity, weight
    )
    log.info(
        "scvis on %d cells x %d dims: encoder %s, decoder %s, %s likelihood, perplexity %g, "
        "t-SNE weight %g, batch %d, %d epochs of %d steps, device %s",
        n, d, enc, dec, likelihood, perplexity, weight, batch, n_epochs, steps_per_epoch,
        _nn.device_name(tf),
    )  # fmt: skip
    history, kl_history = _fit(train_step, Xs, seed, n_epochs, batch)
    step = _nn.PREDICT_BATCH
    emb = np.concatenate([np.asarray(latent_mean(Xs[s : s + step])) for s in range(0, n, step)])
    _nn.finish_info(
        info,
        history=history,
        tsne_kl_history=kl_history,
        final_loss=history[-1],
        epochs_run=len(history),
        device=_nn.device_name(tf),
        input_scaling=_nn.INPUT_SCALING,
        batch_size=batch,
        tsne_weight=weight,
        likelihood=likelihood,
    )
    return emb.astype(np.float32)


def _checked(
    d, n, likelihood, encoder_layers, decoder_layers, perplexity, learning_rate, batch_size,
    tsne_weight,
):  # fmt: skip
    """The checked parameters: ``(encoder widths, decoder widths, batch size, t-SNE weight)``;
    a bad one is a ScdrbenchError naming ``params.<key>``."""
    _nn.check_bottleneck(NAME, d, LATENT, param="the 2-D latent space")
    if likelihood not in ("student_t", "gaussian"):
        raise ScdrbenchError(
            f"{NAME}: params.likelihood must be 'student_t' or 'gaussian', got {likelihood!r}"
        )
    enc = list(encoder_layers)
    enc = _nn.encoder_widths(NAME, d, LATENT, enc, from_input=False)
    dec = [int(w) for w in decoder_layers]
    if any(w < 1 for w in dec):
        raise ScdrbenchError(f"{NAME}: params.decoder_layers must be positive widths, got {dec}")
    _nn.check_positive(NAME, perplexity=perplexity, learning_rate=learning_rate)
    batch = _batch_size(n, batch_size)
    if 3 * perplexity >= batch:
        raise ScdrbenchError(
            f"{NAME}: params.perplexity {perplexity} is too large for batches of {batch} cells "
            f"(needs 3 x perplexity < params.batch_size); lower the perplexity"
        )
    weight = float(d if tsne_weight is None else tsne_weight)
    if weight < 0:
        raise ScdrbenchError(f"{NAME}: params.tsne_weight must be >= 0, got {tsne_weight}")
    return enc, dec, batch, weight


def _network(tf, keras, d, enc, dec, activation, likelihood):
    """The encoder and decoder, built (weights drawn) in a fixed order:
    ``(encode, log_likelihood, trainable variables)``."""
    enc_layers = _dense_stack(keras, enc, activation, "enc")
    z_mean = keras.layers.Dense(LATENT, name="z_mean")
    z_scale = keras.layers.Dense(LATENT, activation="softplus", name="z_scale")
    dec_layers = _dense_stack(keras, dec, activation, "dec")
    x_loc = keras.layers.Dense(d, name="x_loc")
    x_scale = keras.layers.Dense(d, activation="softplus", name="x_scale")
    # degrees of freedom per feature, softplus-parameterised, starting near 5
    nu_raw = tf.Variable(np.full(d, np.log(np.expm1(5.0)), np.float32), name="nu_raw")
    for layer, width in [(z_mean, enc[-1]), (z_scale, enc[-1]), (x_loc, dec[-1])]:
        layer.build((None, width))
    x_scale.build((None, dec[-1]))
    width = d
    for layer in enc_layers:
        layer.build((None, width))
        width = layer.units
    width = LATENT
    for layer in dec_layers:
        layer.build((None, width))
        width = layer.units
    layers = [*enc_layers, z_mean, z_scale, *dec_layers, x_loc, x_scale]
    variables = [v.value for layer in layers for v in layer.trainable_weights]
    if likelihood == "student_t":
        variables.append(nu_raw)

    def encode(x):
        h = x
        for layer in enc_layers:
            h = layer(h)
        return z_mean(h), z_scale(h) + 1e-4

    def log_likelihood(x, z):
        h = z
        for layer in dec_layers:
            h = layer(h)
        loc, scale = x_loc(h), x_scale(h) + 1e-4
        r = (x - loc) / scale
        if likelihood == "gaussian":
            ll = -0.5 * tf.square(r) - tf.math.log(scale) - 0.5 * math.log(2 * math.pi)
        else:
            nu = tf.nn.softplus(nu_raw) + 1e-2
            ll = (
                tf.math.lgamma((nu + 1.0) / 2.0)
                - tf.math.lgamma(nu / 2.0)
                - 0.5 * tf.math.log(nu * math.pi)
                - tf.math.log(scale)
                - (nu + 1.0) / 2.0 * tf.math.log1p(tf.square(r) / nu)
            )
        return tf.reduce_sum(ll, axis=1)

    return encode, log_likelihood, variables


def _steps(tf, d, encode, log_likelihood, variables, optimizer, perplexity, weight):
    """The compiled steps: ``train_step(x, noise_key) -> (loss, t-SNE KL)`` (one Adam step on
    the negative ELBO plus ``weight`` x the t-SNE KL of the latent means) and ``latent_mean(x)``."""
    spec = tf.TensorSpec([None, d], tf.float32)

    @tf.function(input_signature=[spec, tf.TensorSpec([2], tf.int64)])
    def train_step(x, noise_key):
        p = tsne_input_affinities(tf, x, perplexity)
        with tf.GradientTape() as tape:
            mu, sigma = encode(x)
            z = mu + sigma * tf.random.stateless_normal(tf.shape(mu), seed=noise_key)
            kl_z = 0.5 * tf.reduce_sum(
                tf.square(mu) + tf.square(sigma) - 1.0 - 2.0 * tf.math.log(sigma), axis=1
            )
            neg_elbo = tf.reduce_mean(kl_z - log_likelihood(x, z))
            kl_tsne = tsne_kl(tf, p, mu)
            loss = neg_elbo + weight * kl_tsne
        grads = tape.gradient(loss, variables)
        optimizer.apply_gradients(zip(grads, variables))
        return loss, kl_tsne

    @tf.function(input_signature=[spec])
    def latent_mean(x):
        return encode(x)[0]

    return train_step, latent_mean


def _fit(train_step, Xs, seed: int, n_epochs: int, batch: int) -> tuple[list, list]:
    """Train for ``n_epochs`` over seeded permutations of the cells (each batch's indices
    sorted); ``(loss per epoch, t-SNE KL per epoch)``; a diverged loss is a ScdrbenchError."""
    n = Xs.shape[0]
    steps_per_epoch = n // batch
    rng = np.random.default_rng([seed, 17])
    history, kl_history, step = [], [], 0
    for epoch in range(n_epochs):
        order = rng.permutation(n)
        total = total_kl = 0.0
        for k in range(steps_per_epoch):
            idx = np.sort(order[k * batch : (k + 1) * batch])
            loss, kl = train_step(Xs[idx], np.array([seed, step], np.int64))
            total += float(loss)
            total_kl += float(kl)
            step += 1
        history.append(total / steps_per_epoch)
        kl_history.append(total_kl / steps_per_epoch)
        log.info(
            "epoch %d/%d: loss %.4f, t-SNE KL %.4f",
            epoch + 1,
            n_epochs,
            history[-1],
            kl_history[-1],
        )
        if not np.isfinite(history[-1]):
            raise ScdrbenchError(
                f"{NAME}: the loss diverged (epoch {epoch + 1}); lower params.learning_rate"
            )
    return history, kl_history


def estimate_memory_mb(n_cells: int, n_features: int, **params) -> float:
    """Input and its scaled copy, the embedding, batch-sized affinity matrices, plus TF."""
    return n_cells * n_features * 4 * 3 / 1e6 + n_cells * 2 * 4 * 2 / 1e6 + 800
