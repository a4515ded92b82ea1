"""The shared core of the autoencoder methods (ae_keras, ae_tf, tsne_ae): parameters and the
network trained with bare TensorFlow.

- :func:`resolve_params` checks the parameters against the data and fills in the *auto* values
  (the essay's narrowing ladder of widths, batch size and epochs; see ``_nn``), for every
  autoencoder method;
- :class:`Autoencoder`, :func:`train_autoencoder`, :func:`encode_all` and :func:`mean_loss` are
  the network written with bare TensorFlow (``ae_tf``'s whole method; ``tsne_ae`` trains it on
  sparse genes one densified batch at a time): weights are ``tf.Variable``\\ s created by hand
  (Glorot-uniform from a seeded NumPy generator, zero biases, like Keras' ``Dense``), the
  forward pass a loop of matrix products, Adam written out (Kingma & Ba 2015, with bias
  correction), one training step a ``tf.GradientTape`` compiled with ``tf.function``, and
  mini-batches cut from a seeded permutation each epoch; early stopping keeps the best
  validation epoch's weights, as ``keras.callbacks.EarlyStopping(restore_best_weights=True)``;
- :func:`log_training` and :func:`report` write the same log line and ``info`` keys for all.

``ae_keras`` builds the same network with Keras layers; the methods import this module side by
side and never each other.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from scdrbench.methods import _nn
from scdrbench.methods._params import ACTIVATIONS

log = logging.getLogger("scdrbench.methods.autoencoder")

#: the parameters :func:`resolve_params` takes from a method's own (``ae.training(locals())``)
TRAINING_PARAMS = (
    "hidden_layers",
    "activation",
    "batch_size",
    "epochs",
    "learning_rate",
    "early_stopping_patience",
    "validation_fraction",
)

BOTTLENECK = 2
TARGET_STEPS = 1500
MAX_EPOCHS = 500


def training(given: dict) -> dict:
    """The training parameters among a method's arguments (pass ``locals()``)."""
    return {k: given[k] for k in TRAINING_PARAMS}


def resolve_params(
    n_cells: int,
    n_dims: int,
    *,
    name: str,
    hidden_layers=None,
    activation: str = "elu",
    batch_size: int | None = None,
    epochs: int | None = None,
    learning_rate: float = 2e-3,
    early_stopping_patience: int = 10,
    validation_fraction: float = 0.1,
    seed: int = 0,
    bottleneck: int = BOTTLENECK,
    bottleneck_param: str = "the 2-D embedding",
    target_steps: int = TARGET_STEPS,
) -> dict:
    """Check the parameters against the data and fill in the auto values (shared with ae_tf)."""
    if activation not in ACTIVATIONS:
        raise _nn.ScdrbenchError(
            f"{name}: params.activation {activation!r} is not one of {', '.join(ACTIVATIONS)}"
        )
    _nn.check_bottleneck(name, n_dims, bottleneck, param=bottleneck_param)
    widths = _nn.encoder_widths(name, n_dims, bottleneck, hidden_layers)
    _nn.check_positive(name, learning_rate=learning_rate)
    if int(early_stopping_patience) < 0:
        raise _nn.ScdrbenchError(
            f"{name}: params.early_stopping_patience must be >= 0, got {early_stopping_patience}"
        )
    train_idx, val_idx = _nn.split_validation(n_cells, validation_fraction, seed, name)
    batch = _nn.auto_batch_size(len(train_idx), batch_size, name)
    n_epochs = _nn.auto_epochs(
        len(train_idx), batch, epochs, target_steps=target_steps, max_epochs=MAX_EPOCHS
    )
    return {
        "widths": widths,
        "batch_size": batch,
        "epochs": n_epochs,
        "train_idx": train_idx,
        "val_idx": val_idx,
        "learning_rate": float(learning_rate),
        "patience": int(early_stopping_patience),
    }


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


def mean_loss(model: Autoencoder, get_batch: Callable, n: int, batch: int = _nn.PREDICT_BATCH):
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


def fit(tf, get_batch, p: dict, *, n_dims, bottleneck, activation, seed, logger=log):
    """:func:`train_autoencoder` with the resolved parameters ``p`` (:func:`resolve_params`)."""
    return train_autoencoder(
        tf,
        get_batch,
        p["train_idx"],
        p["val_idx"],
        n_dims=n_dims,
        widths=p["widths"],
        bottleneck=bottleneck,
        activation=activation,
        epochs=p["epochs"],
        batch_size=p["batch_size"],
        learning_rate=p["learning_rate"],
        patience=p["patience"],
        seed=seed,
        logger=logger,
    )


def encode_all(model: Autoencoder, get_batch: Callable, n: int) -> np.ndarray:
    """Bottleneck codes of all ``n`` cells, computed in chunks."""
    parts = []
    for start in range(0, n, _nn.PREDICT_BATCH):
        stop = min(n, start + _nn.PREDICT_BATCH)
        parts.append(model.encode(get_batch(np.arange(start, stop))))
    return np.concatenate([np.asarray(p) for p in parts]).astype(np.float32)


def early_stopping(keras, p: dict, has_validation: bool) -> list:
    """Keras' early stopping on the validation loss, best weights restored (none without a
    validation split or with patience 0)."""
    if not has_validation or p["patience"] <= 0:
        return []
    return [
        keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=p["patience"], restore_best_weights=True
        )
    ]


def log_training(logger, tf, n_dims: int, p: dict, bottleneck: int, what: str = "") -> None:
    """One line: the network, the cells, the batch, the epochs and the device."""
    logger.info(
        "training %d -> %s -> %d on %d cells (%d held out%s), batch %d, up to %d epochs, device %s",
        n_dims,
        p["widths"],
        bottleneck,
        len(p["train_idx"]),
        len(p["val_idx"]),
        f", {what}" if what else "",
        p["batch_size"],
        p["epochs"],
        _nn.device_name(tf),
    )


def report(info, tf, p: dict, *, history, val_history, final_loss: float, **extra) -> None:
    """The ``info`` every autoencoder method records, plus its own ``extra`` keys."""
    _nn.finish_info(
        info,
        history=history,
        val_history=val_history,
        final_loss=final_loss,
        epochs_run=len(history),
        device=_nn.device_name(tf),
        input_scaling=_nn.INPUT_SCALING,
        batch_size=p["batch_size"],
        widths=p["widths"],
        **extra,
    )
