"""Deep autoencoder in Keras 3; the 2-D linear bottleneck is the embedding.

The essay's network: on the ``d`` significant PCs (19 there), every hidden layer one unit smaller
than the one before, ``d -> d-1 -> ... -> 3 -> 2 -> 3 -> ... -> d-1 -> d``, ELU activations, a
linear bottleneck and a linear output, trained to reconstruct its (scaled) input with the mean
squared error and Adam. ``scripts/methods/ae_tf.py`` is the same network written with bare
TensorFlow.

Training length and batch size default to *auto* (see ``scripts/methods/_nn.py``): batches of up
to 8192 cells and about ``TARGET_STEPS`` (1500) gradient steps at learning rate 2e-3, so 1M cells
train for 14 epochs (4.5-6.5 s each on 2 cores: a 65-90 s fit; final loss 0.0132 on the
benchmark's synthetic data, against 0.0116-0.0130 for 3000 steps at batch 4096 in twice the time) and a few thousand cells for up to ``MAX_EPOCHS`` epochs; a seeded
``validation_fraction`` of the cells is held out for early stopping (best weights restored).
"""

from __future__ import annotations

import logging
import math

import numpy as np

from scripts.methods import _nn
from scripts.methods._params import ACTIVATIONS

log = logging.getLogger("scdrbench.methods.ae_keras")

#: imported by the runner before the fit is timed (TensorFlow start-up is 10-30 s)
BACKEND_MODULES = ("tensorflow", "keras")
VERSIONED = ("tensorflow-cpu", "tensorflow", "keras")
PARAMS = _nn.AUTOENCODER_PARAMS
#: encoder widths that must narrow strictly towards the bottleneck (checked at validation)
NARROWING_LAYERS = ("hidden_layers",)

NAME = "ae_keras"
BOTTLENECK = 2
TARGET_STEPS = 1500
MAX_EPOCHS = 500
PREDICT_BATCH = 65536


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


def build_autoencoder(keras, n_dims: int, widths: list[int], bottleneck: int, activation: str):
    """(encoder, autoencoder) Keras models sharing layers; linear bottleneck and output."""
    inputs = keras.Input(shape=(n_dims,), name="input")
    h = inputs
    for i, w in enumerate(widths):
        h = keras.layers.Dense(w, activation=activation, name=f"enc_{i}")(h)
    code = keras.layers.Dense(bottleneck, name="bottleneck")(h)
    h = code
    for i, w in enumerate(reversed(widths)):
        h = keras.layers.Dense(w, activation=activation, name=f"dec_{i}")(h)
    outputs = keras.layers.Dense(n_dims, name="reconstruction")(h)
    return keras.Model(inputs, code, name="encoder"), keras.Model(inputs, outputs, name="ae")


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
    """Train the autoencoder on ``X`` (cells x PCs) and return the bottleneck, float32 ``(n, 2)``.

    Parameters
    ----------
    X
        Cells x input dimensions (the significant PCs). Not modified.
    seed
        Seeds weights, the validation split and the batch order.
    info
        Filled with ``history`` (training loss per epoch), ``val_history``, ``final_loss``
        (mean squared error of the whole scaled input), ``epochs_run``, ``device``,
        ``input_scaling``, ``batch_size``, ``widths``.
    threads
        TensorFlow intra-op threads.
    hidden_layers
        Encoder widths between the input and the 2-D bottleneck, strictly narrowing; the
        decoder mirrors them. Default: the one-unit-smaller ladder ``d-1, ..., 3``.
    activation
        Hidden-layer activation (a Keras name), default ELU as in the essay.
    epochs, batch_size
        ``None``: auto (see the module docstring).
    learning_rate
        Adam's step size.
    early_stopping_patience
        Epochs without a better validation loss before stopping; 0 disables early stopping.
    validation_fraction
        Share of cells held out for early stopping; 0 trains on all cells (no early stopping).
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
    import keras

    scaler = _nn.Scaler.fit(X)
    Xs = _nn.scaled_dense(X, scaler)
    x_train = Xs[p["train_idx"]]
    x_val = Xs[p["val_idx"]] if len(p["val_idx"]) else None

    encoder, model = build_autoencoder(keras, d, p["widths"], BOTTLENECK, activation)
    # no XLA: Keras turns jit_compile off under op determinism anyway
    model.compile(
        optimizer=keras.optimizers.Adam(p["learning_rate"]), loss="mse", jit_compile=False
    )
    log.info(
        "training %d -> %s -> %d on %d cells (%d held out), batch %d, up to %d epochs, device %s",
        d,
        p["widths"],
        BOTTLENECK,
        len(x_train),
        len(p["val_idx"]),
        p["batch_size"],
        p["epochs"],
        _nn.device_name(tf),
    )

    def log_epoch(epoch, logs):
        val = logs.get("val_loss")
        log.info(
            "epoch %d/%d: loss %.5f%s",
            epoch + 1,
            p["epochs"],
            logs["loss"],
            "" if val is None else f", val_loss {val:.5f}",
        )

    callbacks = [keras.callbacks.LambdaCallback(on_epoch_end=log_epoch)]
    if x_val is not None and p["patience"] > 0:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss", patience=p["patience"], restore_best_weights=True
            )
        )
    hist = model.fit(
        _nn.dataset(tf, x_train, p["batch_size"], seed=seed, epochs=p["epochs"]),
        epochs=p["epochs"],
        steps_per_epoch=math.ceil(len(x_train) / p["batch_size"]),
        validation_data=None if x_val is None else _nn.dataset(tf, x_val, PREDICT_BATCH),
        callbacks=callbacks,
        shuffle=False,  # the dataset reshuffles itself, seeded
        verbose=0,
    )
    emb = encoder.predict(_nn.dataset(tf, Xs, PREDICT_BATCH, target=False), verbose=0)
    final_loss = float(model.evaluate(_nn.dataset(tf, Xs, PREDICT_BATCH), verbose=0))
    log.info("final reconstruction loss (all cells) %.5f", final_loss)
    _nn.finish_info(
        info,
        history=hist.history["loss"],
        val_history=hist.history.get("val_loss", []),
        final_loss=final_loss,
        epochs_run=len(hist.history["loss"]),
        device=_nn.device_name(tf),
        input_scaling=_nn.INPUT_SCALING,
        batch_size=p["batch_size"],
        widths=p["widths"],
        activation=activation,
    )
    return np.asarray(emb, dtype=np.float32)


def estimate_memory_mb(n_cells: int, n_features: int, **params) -> float:
    """Input, its scaled copy, the train/validation copies and prediction buffers, plus TF."""
    return n_cells * n_features * 4 * 4 / 1e6 + n_cells * 2 * 4 * 2 / 1e6 + 800
