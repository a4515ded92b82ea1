"""Shared set-up for the neural embedding methods (ae_keras, ae_tf, scvis, tsne_ae, parametric_umap).

Input scaling (the same for every neural method)
-----------------------------------------------
Each feature is centred on its mean, then *all* features are divided by one number: the largest
per-feature standard deviation (for PCA input that is the first PC's standard deviation). The
scaled input has mean 0 and its widest feature has standard deviation 1.

Why one global factor rather than per-feature standardisation: the inputs are PCs (or
log-expression of highly variable genes), whose relative variances *are* the geometry that the
cell-cell distances rest on. Standardising each PC would give the 19th PC, mostly noise, the
same weight as the first one and change which cells are neighbours. One global factor keeps the
geometry and only fixes the overall scale, which differs by orders of magnitude between data sets
(PC1 of raw log counts vs. of scaled data), so one default learning rate works everywhere.
The scaler is applied batch by batch (:class:`Scaler`), so sparse input is never densified whole.

Determinism
-----------
:func:`setup_tensorflow` seeds Python, NumPy and TensorFlow (``keras.utils.set_random_seed``),
enables TensorFlow's op determinism and sets the intra-op thread pool to ``threads`` (inter-op
to 1) before any op runs. A fit is then bit-reproducible on CPU for a fixed seed and thread
count. Thread pools can only be sized once per process: a later call with another count logs a
warning and keeps the first one.

Training length
---------------
The number of gradient steps, not epochs, is what a fit needs; an epoch of 1M cells is 250 steps
at batch 4096, an epoch of 700 cells one or two. ``epochs=None`` (the registry default) therefore
means *auto*: enough epochs for about ``target_steps`` gradient steps, clipped to
``[min_epochs, max_epochs]`` (:func:`auto_epochs`). ``batch_size=None`` means *auto* too:
the largest power of two not above ``n_train / 20`` (so every epoch has at least ~20 steps),
clipped to ``[64, 8192]`` (:func:`auto_batch_size`). Per-step overhead, not arithmetic, dominates
these small networks on CPU, so big batches are what make 1M cells fast (measured on 2 cores:
~27 ms/step at 4096, ~45 ms/step at 8192 for the 19-PC autoencoder).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from scdrbench.common.errors import ScdrbenchError
from scdrbench.common.runtime import quiet_tensorflow
from scdrbench.methods._params import ACTIVATION, integer, integers, number

log = logging.getLogger("scdrbench.methods.nn")

INPUT_SCALING = (
    "centred per feature, then all features divided by the largest feature standard deviation "
    "(PC1's for PCA input)"
)
#: the parameters of the essay's autoencoder (ae_keras and ae_tf share them)
AUTOENCODER_PARAMS = {
    "hidden_layers": integers(
        minimum=3,
        unique=True,
        description="encoder widths between the input and the 2-D bottleneck; must narrow "
        "strictly (input > w1 > ... > 2), checked when the config is validated. Absent: the "
        "essay's ladder d-1, ..., 3 (each hidden layer one unit smaller).",
    ),
    "activation": ACTIVATION,
    "epochs": integer(minimum=1, description="absent: auto, ~1500 gradient steps (5-500 epochs)"),
    "batch_size": integer(
        minimum=1, description="absent: auto, power of two <= n_train/20 in [64, 8192]"
    ),
    "learning_rate": number(0.002, gt=0, maximum=1),
    "early_stopping_patience": integer(10, minimum=0, description="0: off"),
    "validation_fraction": number(0.1, minimum=0, lt=0.5),
}
#: cells densified, scaled or predicted at a time (scvis, the autoencoders, parametric UMAP)
PREDICT_BATCH = 65536


def import_tensorflow():
    """Import TensorFlow with its C++ start-up logging and Python warnings silenced."""
    with quiet_tensorflow():
        import tensorflow as tf

        tf.get_logger().setLevel(logging.ERROR)
    return tf


def setup_tensorflow(seed: int, threads: int = 1):
    """Seed everything, enable op determinism, size TensorFlow's thread pools; return ``tf``.

    Returns the imported ``tensorflow`` module.
    """
    tf = import_tensorflow()
    import keras

    threads = max(1, int(threads))
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        current = tf.config.threading.get_intra_op_parallelism_threads()
        if current not in (0, threads):
            log.warning(
                "TensorFlow was already initialised with %d intra-op threads; keeping them "
                "(asked for %d)",
                current,
                threads,
            )
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()
    return tf


def device_name(tf) -> str:
    """'GPU:0' when TensorFlow sees a GPU (and uses it by default), else 'CPU'."""
    return "GPU:0" if tf.config.list_physical_devices("GPU") else "CPU"


@dataclass(frozen=True)
class Scaler:
    """Centre per feature, divide by one global factor; works on dense or sparse batches."""

    mean: np.ndarray
    scale: float

    @classmethod
    def fit(cls, X) -> Scaler:
        """Fit on ``X`` (dense or scipy sparse) without densifying it."""
        if sp.issparse(X):
            mean = np.asarray(X.mean(axis=0), dtype=np.float64).ravel()
            sq = np.asarray(X.multiply(X).mean(axis=0), dtype=np.float64).ravel()
            var = np.maximum(sq - mean**2, 0.0)
        else:
            mean = np.asarray(X, dtype=np.float64).mean(axis=0)
            var = np.asarray(X, dtype=np.float64).var(axis=0)
        std = float(np.sqrt(var.max())) if var.size else 0.0
        return cls(mean=mean.astype(np.float32), scale=std if std > 0 else 1.0)

    def transform(self, X) -> np.ndarray:
        """Scaled dense float32 copy of ``X`` (a batch, or all of a dense matrix)."""
        dense = X.toarray() if sp.issparse(X) else np.asarray(X)
        out = dense.astype(np.float32, copy=True)
        out -= self.mean
        out /= np.float32(self.scale)
        return out


def scaled_dense(X, scaler: Scaler) -> np.ndarray:
    """Scale a whole dense matrix in chunks (one float32 copy, no float64 temporaries)."""
    n = X.shape[0]
    out = np.empty(X.shape, dtype=np.float32)
    for start in range(0, n, PREDICT_BATCH):
        stop = start + PREDICT_BATCH
        out[start:stop] = scaler.transform(X[start:stop])
    return out


def check_matrix(X, name: str, *, min_cells: int = 3):
    """Dense float32 (or CSR float32 for sparse) copy of ``X``; rejects NaN/inf and bad shapes."""
    if sp.issparse(X):
        X = sp.csr_matrix(X, dtype=np.float32)
        values = X.data
    else:
        X = np.asarray(X)
        if not np.issubdtype(X.dtype, np.number):
            raise ScdrbenchError(f"{name}: input must be numeric, got dtype {X.dtype}")
        X = X.astype(np.float32, copy=False)
        values = X
    if X.ndim != 2:
        raise ScdrbenchError(f"{name}: input must be a 2-D cells x features matrix, got {X.ndim}-D")
    if X.shape[0] < min_cells:
        raise ScdrbenchError(f"{name}: needs at least {min_cells} cells, got {X.shape[0]}")
    bad = int(np.size(values) - np.count_nonzero(np.isfinite(values)))
    if bad:
        raise ScdrbenchError(
            f"{name}: input contains {bad} NaN or infinite values; check the preprocessing output "
            "(the embedding input must be finite)"
        )
    return X


def check_bottleneck(name: str, n_dims: int, bottleneck: int, *, param: str) -> None:
    """Reject input with fewer dimensions than the code it is squeezed into."""
    if n_dims < bottleneck:
        raise ScdrbenchError(
            f"{name}: input has {n_dims} dimension{'s' if n_dims != 1 else ''} but the bottleneck "
            f"({param}) is {bottleneck}; a bottleneck cannot be wider than its input. Use more "
            "input dimensions (more PCs: the data set's n_significant_pcs, or the method's input "
            "pca instead of significant_pcs) or a smaller bottleneck."
        )


def encoder_widths(
    name: str, n_dims: int, bottleneck: int, hidden_layers, *, from_input: bool = True
) -> list[int]:
    """Hidden widths of the encoder, checked to narrow strictly down to the bottleneck.

    ``hidden_layers=None`` gives the one-unit-smaller ladder ``n_dims - 1, ..., bottleneck + 1``
    (the essay's 19 -> 18 -> ... -> 3 -> 2). An explicit list must be strictly decreasing, every
    width above ``bottleneck``, and (``from_input``) the first width below ``n_dims``; JSON
    schema cannot say "strictly decreasing", so this check is the rule's enforcement.
    """
    if hidden_layers is None:
        return list(range(n_dims - 1, bottleneck, -1))
    widths = [int(w) for w in hidden_layers]
    chain = ([n_dims] if from_input else []) + widths + [bottleneck]
    if any(w < 1 for w in widths) or any(a <= b for a, b in zip(chain[:-1], chain[1:])):
        start = f"the input width {n_dims} " if from_input else ""
        raise ScdrbenchError(
            f"{name}: params.hidden_layers {widths} must narrow strictly from {start}down to the "
            f"bottleneck {bottleneck} (each width smaller than the one before, e.g. "
            f"{list(range(n_dims - 1, bottleneck, -1))[:4]}...)"
        )
    return widths


def auto_batch_size(n_train: int, batch_size: int | None, name: str) -> int:
    """Resolve ``batch_size`` (None: auto) and check there are enough training cells for it."""
    if batch_size is None:
        b = 2 ** int(math.floor(math.log2(max(n_train / 20, 1))))
        batch_size = int(min(8192, max(64, b)))
        batch_size = min(batch_size, n_train)
    batch_size = int(batch_size)
    if batch_size < 1:
        raise ScdrbenchError(f"{name}: params.batch_size must be at least 1, got {batch_size}")
    if n_train < batch_size:
        raise ScdrbenchError(
            f"{name}: only {n_train} training cells for params.batch_size {batch_size}; "
            "lower params.batch_size (or params.validation_fraction), or embed more cells"
        )
    return batch_size


def auto_epochs(
    n_train: int,
    batch_size: int,
    epochs: int | None,
    *,
    target_steps: int,
    min_epochs: int = 5,
    max_epochs: int = 500,
) -> int:
    """Resolve ``epochs`` (None: about ``target_steps`` gradient steps, clipped)."""
    if epochs is not None:
        if int(epochs) < 1:
            raise ScdrbenchError(f"params.epochs must be at least 1, got {epochs}")
        return int(epochs)
    steps_per_epoch = math.ceil(n_train / batch_size)
    return int(min(max_epochs, max(min_epochs, math.ceil(target_steps / steps_per_epoch))))


def split_validation(
    n: int, validation_fraction: float, seed: int, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n)`` into (train, validation) index arrays."""
    if not 0 <= validation_fraction < 1:
        raise ScdrbenchError(
            f"{name}: params.validation_fraction must be in [0, 1), got {validation_fraction}"
        )
    n_val = int(round(n * validation_fraction))
    if validation_fraction > 0:
        n_val = max(1, n_val)
    perm = np.random.default_rng([seed, 7]).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def check_positive(name: str, **params) -> None:
    """Each keyword must be a positive number; the message names the first that is not."""
    for key, value in params.items():
        if value is None or not (float(value) > 0):
            raise ScdrbenchError(f"{name}: params.{key} must be positive, got {value}")


def finish_info(info: dict | None, **values) -> None:
    """Copy HDF5-storable values into ``info`` (lists of floats as float lists)."""
    if info is None:
        return
    for key, value in values.items():
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if isinstance(value, list | tuple):
            value = [float(v) for v in value]
        info[key] = value


def dataset(
    tf, X: np.ndarray, batch_size: int, *, seed: int | None = None, epochs: int = 1, target=True
):
    """A ``tf.data`` pipeline of ``(x, x)`` batches (``x`` alone with ``target=False``).

    With ``seed``, each of the ``epochs`` passes visits the cells in its own permutation,
    ``stateless_shuffle(seed, epoch)``, reproducibly, and the dataset holds all ``epochs`` passes
    back to back: pass ``steps_per_epoch=ceil(n / batch_size)`` to ``fit``. Permuting the index
    vector at once is ~10x faster than ``Dataset.shuffle`` over a million elements, and building
    the pipeline by hand avoids Keras' NumPy adapter, whose parallel-map node makes this
    TensorFlow build print a C++ error line on every ``fit``/``predict``.
    """
    data = tf.constant(X)
    n, b = X.shape[0], int(batch_size)
    starts = tf.data.Dataset.range(0, n, b)
    if seed is None:
        batches = starts.map(lambda s: tf.range(s, tf.minimum(s + b, n)))
    else:

        def one_epoch(epoch):
            key = tf.stack([tf.constant(int(seed), tf.int64), epoch])
            perm = tf.random.experimental.stateless_shuffle(tf.range(n, dtype=tf.int64), key)
            return starts.map(lambda s: perm[s : s + b])

        batches = tf.data.Dataset.range(int(epochs)).flat_map(one_epoch)
    if target:
        return batches.map(lambda i: (tf.gather(data, i), tf.gather(data, i)))
    return batches.map(lambda i: tf.gather(data, i))
