"""Joint RNA + protein autoencoder (Keras): the essay's announced next step, for CITE-seq data.

Two input branches, the significant PCs of the RNA and the CLR-normalised antibody counts
(``obsm['protein_counts']``, each scaled as the other autoencoders scale their input), each a
dense layer of its own width, merged and narrowed by the essay's rule (every hidden layer one
unit smaller than the one before) to a 2-D linear bottleneck; the decoder mirrors the ladder and
ends in two linear heads that reconstruct both inputs. The loss is ``rna_weight`` x MSE(RNA) +
``protein_weight`` x MSE(protein); Adam, batch size and epochs *auto* as for ``ae_keras``, a
seeded validation split with early stopping (best weights restored).

It needs protein counts: the grid runs it only on data sets that have them, and a selection
without any such data set is a config error. Its labels caveat: CITE-seq labels made from the
same proteins (``adt_clusters``) make its scores circular; the metrics are also computed
against RNA clusters (``*_rna_labels``).
"""

from __future__ import annotations

import logging

import numpy as np

from scdrbench.methods import _autoencoder as ae
from scdrbench.methods import _nn
from scdrbench.methods._params import number

log = logging.getLogger("scdrbench.methods.ae_citeseq")

BACKEND_MODULES = ("tensorflow", "keras")
VERSIONED = ("tensorflow-cpu", "tensorflow", "keras")
#: the runner passes the data set's ``obsm['protein_counts']`` as ``protein``
NEEDS_PROTEIN = True
PARAMS = {
    **_nn.AUTOENCODER_PARAMS,
    "rna_weight": number(1.0, minimum=0, description="weight of the RNA reconstruction loss"),
    "protein_weight": number(
        1.0, minimum=0, description="weight of the protein reconstruction loss"
    ),
}
NARROWING_LAYERS = ("hidden_layers",)

NAME = "ae_citeseq"


def build(keras, d_rna: int, d_protein: int, widths, activation: str):
    """(encoder, model): two branches, the merged ladder to 2-D, two reconstruction heads."""
    rna = keras.Input(shape=(d_rna,), name="rna")
    protein = keras.Input(shape=(d_protein,), name="protein")
    h = keras.layers.Concatenate(name="merge")(
        [
            keras.layers.Dense(d_rna, activation=activation, name="rna_branch")(rna),
            keras.layers.Dense(d_protein, activation=activation, name="protein_branch")(protein),
        ]
    )
    for i, w in enumerate(widths):
        h = keras.layers.Dense(w, activation=activation, name=f"enc_{i}")(h)
    code = keras.layers.Dense(ae.BOTTLENECK, name="bottleneck")(h)
    h = code
    for i, w in enumerate(reversed(widths)):
        h = keras.layers.Dense(w, activation=activation, name=f"dec_{i}")(h)
    outputs = [
        keras.layers.Dense(d_rna, name="rna_out")(h),
        keras.layers.Dense(d_protein, name="protein_out")(h),
    ]
    encoder = keras.Model([rna, protein], code, name="encoder")
    return encoder, keras.Model([rna, protein], outputs, name="ae_citeseq")


def embed(
    X,
    *,
    seed: int,
    info: dict | None = None,
    threads: int = 1,
    protein=None,
    hidden_layers: list[int] | None = None,
    activation: str = "elu",
    epochs: int | None = None,
    batch_size: int | None = None,
    learning_rate: float = 2e-3,
    early_stopping_patience: int = 10,
    validation_fraction: float = 0.1,
    rna_weight: float = 1.0,
    protein_weight: float = 1.0,
) -> np.ndarray:
    """Train on the RNA ``X`` (cells x significant PCs) and ``protein`` (cells x antibodies, raw
    counts); return the 2-D bottleneck, float32 ``(n, 2)``."""
    # Longer than 80 lines: the signature and numpydoc docstring list every parameter of the method
    # contract (tests/test_registry.py checks them against PARAMS); the code is 67 lines, the seeded
    # steps in the order they draw random numbers.
    from scdrbench.data.citeseq import clr

    X = _nn.check_matrix(X, NAME)
    n, d = X.shape
    if protein is None:
        raise _nn.ScdrbenchError(
            f"{NAME}: needs protein (ADT) counts; the data set has none (give its adt_path, "
            "adt_url, adt_obsm or adt_capture)"
        )
    P = clr(np.asarray(protein, dtype=np.float64)).astype(np.float32)
    if P.shape[0] != n or P.shape[1] < 2:
        raise _nn.ScdrbenchError(
            f"{NAME}: protein counts are {P.shape[0]} x {P.shape[1]} for {n} cells; need every "
            "cell and at least 2 antibodies"
        )
    if rna_weight + protein_weight <= 0:
        raise _nn.ScdrbenchError(f"{NAME}: params.rna_weight + protein_weight must be > 0")
    p = ae.resolve_params(n, d + P.shape[1], name=NAME, seed=seed, **ae.training(locals()))
    tf = _nn.setup_tensorflow(seed, threads)
    import keras

    R = _nn.scaled_dense(X, _nn.Scaler.fit(X))
    Q = _nn.scaled_dense(P, _nn.Scaler.fit(P))
    encoder, model = build(keras, d, P.shape[1], p["widths"], activation)
    model.compile(
        optimizer=keras.optimizers.Adam(p["learning_rate"]),
        loss=["mse", "mse"],
        loss_weights=[float(rna_weight), float(protein_weight)],
        jit_compile=False,
    )
    ae.log_training(log, tf, d + P.shape[1], p, ae.BOTTLENECK, f"{P.shape[1]} antibodies")
    tr, va = p["train_idx"], p["val_idx"]

    def data(idx, shuffle):
        inputs = {"rna": R[idx], "protein": Q[idx]}
        ds = tf.data.Dataset.from_tensor_slices((inputs, (R[idx], Q[idx])))
        if shuffle:
            ds = ds.shuffle(len(idx), seed=seed, reshuffle_each_iteration=True)
        return ds.batch(p["batch_size"] if shuffle else _nn.PREDICT_BATCH)

    callbacks = ae.early_stopping(keras, p, len(va) > 0)
    hist = model.fit(
        data(tr, True),
        epochs=p["epochs"],
        validation_data=data(va, False) if len(va) else None,
        callbacks=callbacks,
        shuffle=False,  # the dataset reshuffles itself, seeded
        verbose=0,
    )
    all_cells = np.arange(n)
    emb = encoder.predict({"rna": R, "protein": Q}, batch_size=_nn.PREDICT_BATCH, verbose=0)
    final = model.evaluate(data(all_cells, False), verbose=0)
    final_loss = float(final[0] if isinstance(final, list) else final)
    log.info("final weighted loss (all cells) %.5f", final_loss)
    ae.report(
        info,
        tf,
        p,
        history=hist.history["loss"],
        val_history=hist.history.get("val_loss", []),
        final_loss=final_loss,
        activation=activation,
        n_antibodies=int(P.shape[1]),
        rna_weight=float(rna_weight),
        protein_weight=float(protein_weight),
    )
    return np.asarray(emb, dtype=np.float32)


def estimate_memory_mb(n_cells: int, n_features: int, **params) -> float:
    """Both inputs and their scaled copies (antibodies counted generously as 50), plus TF."""
    return n_cells * (n_features + 50) * 4 * 4 / 1e6 + 800
