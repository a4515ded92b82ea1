"""The ae_keras autoencoder written with bare TensorFlow: what Keras does for you, spelled out.

Same network, loss, defaults and input scaling as ``scripts/methods/ae_keras.py``; here the
weights are ``tf.Variable``\\ s created by hand (Glorot-uniform weights from a seeded NumPy
generator, zero biases, like Keras' ``Dense``), the forward pass is a loop of matrix products,
Adam is written out (Kingma & Ba 2015, with bias correction), one training step is a
``tf.GradientTape`` compiled with ``tf.function``, and mini-batches are cut by hand from a seeded
permutation of the training cells each epoch. Early stopping keeps the weights of the best
validation epoch, as ``keras.callbacks.EarlyStopping(restore_best_weights=True)`` does.

:func:`train_autoencoder` takes a batch *function*, not an array, so ``tsne_ae`` reuses it to train
on sparse gene-expression matrices densified one batch at a time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from scripts.methods import _nn
from scripts.methods.ae_keras import BOTTLENECK, resolve_params

log = logging.getLogger("scdrbench.methods.ae_tf")

#: imported by the runner before the fit is timed (TensorFlow start-up is 10-30 s)
BACKEND_MODULES = ("tensorflow",)
VERSIONED = ("tensorflow-cpu", "tensorflow")
PARAMS = _nn.AUTOENCODER_PARAMS
NARROWING_LAYERS = ("hidden_layers",)

NAME = "ae_tf"
PREDICT_BATCH = 65536


class Autoencoder:
    """Dense autoencoder held in plain ``tf.Variable``\\ s; linear bottleneck and output."""

    def __init__(self, tf, n_dims, widths, bottleneck, activation, learning_rate, seed):
        self.tf = tf
        self.act = getattr(tf.nn, activation) if activation != "tanh" else tf.tanh
        rng = np.random.default_rng([seed, 11])
        sizes = [n_dims, *widths, bottleneck, *reversed(widths), n_dims]
        self.n_encoder = len(widths) + 1
        self.weights, self.biases = [], []
        for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            limit = np.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, size=(fan_in, fan_out)).astype(np.float32)
            self.weights.append(tf.Variable(w, name=f"W{i}"))
            self.biases.append(tf.Variable(np.zeros(fan_out, np.float32), name=f"b{i}"))
        self.variables = self.weights + self.biases
        # Adam state: first and second moment per variable, and the step count
        self.lr, self.beta1, self.beta2, self.eps = float(learning_rate), 0.9, 0.999, 1e-7
        self.m = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables]
        self.v = [tf.Variable(tf.zeros_like(v), trainable=False) for v in self.variables]
        self.t = tf.Variable(0.0, trainable=False)
        spec = tf.TensorSpec(shape=[None, n_dims], dtype=tf.float32)
        # no XLA, like ae_keras (Keras disables it under op determinism; per-shape recompiles
        # also made small data sets slower)
        self.train_step = tf.function(self._train_step, input_signature=[spec])
        self.loss = tf.function(self._loss, input_signature=[spec])
        self.encode = tf.function(self._encode, input_signature=[spec])

    def _layers(self, x, start, stop):
        n_layers = len(self.weights)
        for i in range(start, stop):
            x = self.tf.matmul(x, self.weights[i]) + self.biases[i]
            if i != self.n_encoder - 1 and i != n_layers - 1:  # linear bottleneck and output
                x = self.act(x)
        return x

    def _encode(self, x):
        return self._layers(x, 0, self.n_encoder)

    def _loss(self, x):
        tf = self.tf
        code = self._encode(x)
        recon = self._layers(code, self.n_encoder, len(self.weights))
        return tf.reduce_mean(tf.square(recon - x))

    def _train_step(self, x):
        tf = self.tf
        with tf.GradientTape() as tape:
            loss = self._loss(x)
        grads = tape.gradient(loss, self.variables)
        self.t.assign_add(1.0)
        lr_t = self.lr * tf.sqrt(1.0 - self.beta2**self.t) / (1.0 - self.beta1**self.t)
        for var, g, m, v in zip(self.variables, grads, self.m, self.v):
            m.assign(self.beta1 * m + (1.0 - self.beta1) * g)
            v.assign(self.beta2 * v + (1.0 - self.beta2) * tf.square(g))
            var.assign_sub(lr_t * m / (tf.sqrt(v) + self.eps))
        return loss

    def get_weights(self) -> list[np.ndarray]:
        return [v.numpy() for v in self.variables]

    def set_weights(self, values: list[np.ndarray]) -> None:
        for var, value in zip(self.variables, values):
            var.assign(value)


def mean_loss(model: Autoencoder, get_batch: Callable, n: int, batch: int = PREDICT_BATCH):
    total = 0.0
    for start in range(0, n, batch):
        idx = np.arange(start, min(n, start + batch))
        total += float(model.loss(get_batch(idx))) * len(idx)
    return total / n


def train_autoencoder(
    tf,
    get_batch: Callable[[np.ndarray], np.ndarray],
    train_idx: np.ndarray,
    val_idx: np.ndarray,
    *,
    n_dims: int,
    widths: list[int],
    bottleneck: int,
    activation: str,
    epochs: int,
    batch_size: int,
    learning_rate: float,
    patience: int,
    seed: int,
    logger: logging.Logger = log,
) -> tuple[Autoencoder, dict]:
    """Train on the cells ``train_idx`` (``get_batch(indices)`` returns them scaled, dense).

    Returns the model (best validation weights when early stopping) and a history dict with
    ``loss`` and ``val_loss`` per epoch.
    """
    model = Autoencoder(tf, n_dims, widths, bottleneck, activation, learning_rate, seed)
    rng = np.random.default_rng([seed, 13])
    history: dict[str, list[float]] = {"loss": [], "val_loss": []}
    best, best_weights, waited = np.inf, None, 0
    n_train = len(train_idx)
    for epoch in range(epochs):
        order = train_idx[rng.permutation(n_train)]
        total = 0.0
        for start in range(0, n_train, batch_size):
            idx = np.sort(order[start : start + batch_size])
            total += float(model.train_step(get_batch(idx))) * len(idx)
        history["loss"].append(total / n_train)
        msg = f"epoch {epoch + 1}/{epochs}: loss {history['loss'][-1]:.5f}"
        if len(val_idx):
            val = mean_loss(model, lambda i: get_batch(val_idx[i]), len(val_idx))
            history["val_loss"].append(val)
            msg += f", val_loss {val:.5f}"
        logger.info(msg)
        if len(val_idx) and patience > 0:
            if history["val_loss"][-1] < best:
                best, best_weights, waited = history["val_loss"][-1], model.get_weights(), 0
            else:
                waited += 1
                if waited >= patience:
                    logger.info("early stopping: no better val_loss for %d epochs", patience)
                    break
    if best_weights is not None:
        model.set_weights(best_weights)
    return model, history


def encode_all(model: Autoencoder, get_batch: Callable, n: int) -> np.ndarray:
    """Bottleneck codes of all ``n`` cells, computed in chunks."""
    parts = []
    for start in range(0, n, PREDICT_BATCH):
        parts.append(model.encode(get_batch(np.arange(start, min(n, start + PREDICT_BATCH)))))
    return np.concatenate([np.asarray(p) for p in parts]).astype(np.float32)


def embed(
    X,
    *,
    seed: int,
    info: dict | None = None,
    threads: int = 1,
    hidden_layers: list[int] | None = None,
    activation: str = "elu",
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 2e-3,
    early_stopping_patience: int = 10,
    validation_fraction: float = 0.1,
) -> np.ndarray:
    """Train the autoencoder on ``X`` (cells x PCs); return the 2-D bottleneck, float32 ``(n, 2)``.

    Parameters and ``info`` keys are those of :func:`scripts.methods.ae_keras.embed`.
    """
    X = _nn.check_matrix(X, NAME)
    n, d = X.shape
    p = resolve_params(
        n,
        d,
        name=NAME,
        hidden_layers=hidden_layers,
        activation=activation,
        batch_size=batch_size,
        epochs=epochs,
        learning_rate=learning_rate,
        early_stopping_patience=early_stopping_patience,
        validation_fraction=validation_fraction,
        seed=seed,
    )
    tf = _nn.setup_tensorflow(seed, threads)
    Xs = _nn.scaled_dense(X, _nn.Scaler.fit(X))

    def get_batch(idx):
        return Xs[idx]

    log.info(
        "training %d -> %s -> %d on %d cells (%d held out), batch %d, up to %d epochs, device %s",
        d,
        p["widths"],
        BOTTLENECK,
        len(p["train_idx"]),
        len(p["val_idx"]),
        p["batch_size"],
        p["epochs"],
        _nn.device_name(tf),
    )
    model, hist = train_autoencoder(
        tf,
        get_batch,
        p["train_idx"],
        p["val_idx"],
        n_dims=d,
        widths=p["widths"],
        bottleneck=BOTTLENECK,
        activation=activation,
        epochs=p["epochs"],
        batch_size=p["batch_size"],
        learning_rate=p["learning_rate"],
        patience=p["patience"],
        seed=seed,
    )
    emb = encode_all(model, get_batch, n)
    final_loss = mean_loss(model, get_batch, n)
    log.info("final reconstruction loss (all cells) %.5f", final_loss)
    _nn.finish_info(
        info,
        history=hist["loss"],
        val_history=hist["val_loss"],
        final_loss=final_loss,
        epochs_run=len(hist["loss"]),
        device=_nn.device_name(tf),
        input_scaling=_nn.INPUT_SCALING,
        batch_size=p["batch_size"],
        widths=p["widths"],
        activation=activation,
    )
    return emb


def estimate_memory_mb(n_cells: int, n_features: int, **params) -> float:
    """Input and its scaled copy, batch copies, the embedding, plus TensorFlow itself."""
    return n_cells * n_features * 4 * 3 / 1e6 + n_cells * 2 * 4 * 2 / 1e6 + 700
