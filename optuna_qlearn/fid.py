"""Frechet distance, kernel distance and feature extractors for image folders.

The Frechet Inception Distance (FID, Heusel et al. 2017) compares two image sets by fitting
a Gaussian to the features of each set and measuring the Frechet (2-Wasserstein) distance
between the two Gaussians:

.. math::

    d^2 = \\lVert \\mu_1 - \\mu_2 \\rVert^2
          + \\operatorname{tr}\\bigl(\\Sigma_1 + \\Sigma_2
          - 2 (\\Sigma_1^{1/2} \\Sigma_2 \\Sigma_1^{1/2})^{1/2}\\bigr).

What the number means depends entirely on the feature extractor:

- ``extractor="random"`` (the default, :class:`RandomConvFeatures`) needs no download. It is
  the Frechet distance in the 64-d features of a *fixed, seeded, untrained* convolutional
  network. It separates image distributions (see the tests) but it is **not** FID and its
  values are not comparable to published FID numbers.
- ``extractor="inception"`` (:class:`InceptionV3Features`) is the standard FID network
  (InceptionV3 pool3, 2048-d), taken from the maintained ``torch-fidelity`` package (its
  TensorFlow-exact resize included). Its weights come from a file you supply; nothing is ever
  downloaded here. With the ``inception-2015-12-05`` weights (torch-fidelity's file, or
  pytorch-fid's, whose name carries the same sha256 prefix and whose state dict has the same
  keys and shapes) the result is the usual FID.
- Any callable mapping a float array of images ``(N, 3, H, W)`` in ``[0, 1]`` to an ``(N, d)``
  feature array works as well.

The distance functions need only NumPy; the built-in extractors import PyTorch when built.
"""

from __future__ import annotations

import hashlib
import math
import pickle
import re
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = [
    "FID_INCEPTION_WEIGHTS_FILENAME",
    "FID_INCEPTION_WEIGHTS_SHA256_PREFIX",
    "FID_INCEPTION_WEIGHTS_URL",
    "IMAGE_SUFFIXES",
    "TORCHVISION_INCEPTION_WEIGHTS_FILENAME",
    "TORCHVISION_INCEPTION_WEIGHTS_URL",
    "FIDSampleSizeWarning",
    "FeatureExtractor",
    "InceptionV3Features",
    "RandomConvFeatures",
    "calculate_fid",
    "calculate_kid",
    "extract_features",
    "feature_statistics",
    "fid_from_images",
    "frechet_distance",
    "get_extractor",
    "kernel_distance",
    "read_image_folder",
]

#: Where ``torch-fidelity`` publishes the InceptionV3 weights ported from the TensorFlow FID
#: code (``inception-2015-12-05``). Recorded for users; this package never downloads it.
#: ``pytorch-fid``'s ``pt_inception-2015-12-05-6726825d.pth`` carries the same sha256 prefix
#: in its name and a state dict of the same keys and shapes, and loads as well.
FID_INCEPTION_WEIGHTS_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/"
    "weights-inception-2015-12-05-6726825d.pth"
)
#: The file name of those weights.
FID_INCEPTION_WEIGHTS_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
#: The first 8 hex digits of the file's sha256 (the torch hub naming convention).
FID_INCEPTION_WEIGHTS_SHA256_PREFIX = "6726825d"
#: torchvision's ImageNet InceptionV3 weights (not the FID network; different numbers).
TORCHVISION_INCEPTION_WEIGHTS_URL = (
    "https://download.pytorch.org/models/inception_v3_google-0cc3c7bd.pth"
)
TORCHVISION_INCEPTION_WEIGHTS_FILENAME = "inception_v3_google-0cc3c7bd.pth"

#: File suffixes read from image folders (case-insensitive).
IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg")

_HUB_HASH = re.compile(r"-([a-f0-9]{8,64})\.\w+$")


class FIDSampleSizeWarning(UserWarning):
    """Too few images for the feature dimension: the covariance is singular.

    With ``N <= d`` images in ``d``-dimensional features the sample covariance has rank at
    most ``N - 1``; the Frechet distance is still defined but strongly biased (upwards, and
    by an amount that depends on ``N``), so values computed from different ``N`` are not
    comparable.
    """


@runtime_checkable
class FeatureExtractor(Protocol):
    """What :func:`calculate_fid` needs from a feature extractor.

    A feature extractor is any callable taking a float32 array of shape ``(N, 3, H, W)`` with
    values in ``[0, 1]`` (all images of one call share ``H`` and ``W``) and returning an
    ``(N, d)`` array. Grey images are tiled to three channels before the call.
    """

    def __call__(self, images: np.ndarray) -> np.ndarray: ...


# ---------------------------------------------------------------------------------------------
# Distances on statistics and features (NumPy only)
# ---------------------------------------------------------------------------------------------


#: Relative tolerance of the covariance checks: asymmetry up to this fraction of the largest
#: entry, and negative eigenvalues down to minus this fraction of the largest eigenvalue, are
#: round-off (they are symmetrized and clipped); anything beyond is an invalid covariance.
_COV_RTOL = 1e-6


def _finite_array(value: Any, name: str, ndim: int) -> np.ndarray:
    """``value`` as a float64 array of ``ndim`` dimensions with finite entries."""
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    if ndim == 1:
        arr = np.atleast_1d(arr)
    elif ndim == 2 and arr.ndim < 2:
        arr = np.atleast_2d(arr)
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-d, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _max_abs(*arrays: np.ndarray) -> float:
    return max((float(np.max(np.abs(a), initial=0.0)) for a in arrays), default=0.0)


def _scaled_covariance(sigma: np.ndarray, scale: float, name: str) -> np.ndarray:
    """``sigma / scale``, checked symmetric and positive semi-definite (up to round-off)."""
    s = sigma / scale
    asym = float(np.max(np.abs(s - s.T), initial=0.0))
    peak = float(np.max(np.abs(s), initial=0.0))
    if asym > _COV_RTOL * max(peak, np.finfo(np.float64).tiny):
        raise ValueError(
            f"{name} is not symmetric (largest |{name} - {name}.T| is {asym * scale:.3g}, "
            f"largest entry {peak * scale:.3g}): not a covariance matrix"
        )
    s = 0.5 * (s + s.T)
    eig = np.linalg.eigvalsh(s)
    top = float(np.max(np.abs(eig), initial=0.0))
    if eig.size and float(eig[0]) < -_COV_RTOL * max(top, np.finfo(np.float64).tiny):
        raise ValueError(
            f"{name} is not positive semi-definite (smallest eigenvalue {eig[0] * scale:.3g}, "
            f"largest |eigenvalue| {top * scale:.3g}): not a covariance matrix"
        )
    return s


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    eigval, eigvec = np.linalg.eigh(matrix)
    eigval = np.clip(eigval, 0.0, None)
    return (eigvec * np.sqrt(eigval)) @ eigvec.T


def _squared_norm(diff: np.ndarray) -> float:
    """``diff @ diff`` without overflow in the intermediate squares."""
    scale = _max_abs(diff)
    if scale == 0.0:
        return 0.0
    unit = diff / scale
    return float(unit @ unit) * scale * scale


def _finite_result(value: float, what: str) -> float:
    if not math.isfinite(value):
        raise ValueError(
            f"{what} is {value}: it exceeds the float64 range for features this large; "
            "divide the features by a constant (the Frechet distance scales with its square)"
        )
    return value


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """Frechet distance between the Gaussians ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    Computed in float64 without ``scipy.linalg.sqrtm``: with ``A = sigma1^(1/2)`` (from a
    symmetric eigendecomposition), ``tr((sigma1 sigma2)^(1/2))`` equals the sum of the square
    roots of the eigenvalues of the symmetric positive semi-definite matrix ``A sigma2 A``.
    Tiny negative eigenvalues from round-off are clipped to zero, so singular covariances
    (fewer samples than dimensions) are handled, and the result is real and never negative.
    Both covariances are divided by their largest entry before any square root or product
    (the trace term is homogeneous of degree 1 in the covariances), and the mean term is
    scaled likewise, so features of any finite magnitude (1e-150 or 1e150) give the same
    relative accuracy as features near 1.

    Args:
        mu1: Mean of the first Gaussian, shape ``(d,)``.
        sigma1: Covariance of the first Gaussian, shape ``(d, d)``, symmetric PSD.
        mu2: Mean of the second Gaussian, shape ``(d,)``.
        sigma2: Covariance of the second Gaussian, shape ``(d, d)``, symmetric PSD.

    Returns:
        The squared Frechet distance ``||mu1 - mu2||^2 + tr(sigma1 + sigma2 -
        2 (sigma1^(1/2) sigma2 sigma1^(1/2))^(1/2))`` as a Python float (>= 0).

    Raises:
        TypeError: If an input is not an array of real numbers.
        ValueError: If the shapes disagree, an input is not finite, a covariance is not
            symmetric or not positive semi-definite (beyond round-off, relative tolerance
            1e-6), or the distance exceeds the float64 range.

    Example:

        .. code-block:: python

            import numpy as np
            from optuna_qlearn.fid import frechet_distance

            d = frechet_distance(np.zeros(2), np.eye(2), np.ones(2), np.eye(2))
            assert abs(d - 2.0) < 1e-12
    """
    m1 = _finite_array(mu1, "mu1", 1)
    m2 = _finite_array(mu2, "mu2", 1)
    s1 = _finite_array(sigma1, "sigma1", 2)
    s2 = _finite_array(sigma2, "sigma2", 2)
    if m1.shape != m2.shape:
        raise ValueError(f"mean vectors must be 1-d of equal length, got {m1.shape} and {m2.shape}")
    d = m1.shape[0]
    if s1.shape != (d, d) or s2.shape != (d, d):
        raise ValueError(
            f"covariances must have shape ({d}, {d}) to match the means, "
            f"got {s1.shape} and {s2.shape}"
        )
    mean_term = _squared_norm(m1 - m2)
    scale = _max_abs(s1, s2)
    if scale == 0.0:
        return _finite_result(mean_term, "the Frechet distance")
    u1 = _scaled_covariance(s1, scale, "sigma1")
    u2 = _scaled_covariance(s2, scale, "sigma2")
    root1 = _psd_sqrt(u1)
    middle = root1 @ u2 @ root1
    eig = np.linalg.eigvalsh(0.5 * (middle + middle.T))
    tr_covmean = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    cov_term = max(float(np.trace(u1)) + float(np.trace(u2)) - 2.0 * tr_covmean, 0.0)
    return _finite_result(mean_term + cov_term * scale, "the Frechet distance")


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, ``N - 1``) covariance of a feature matrix, in float64.

    The features are divided by their largest magnitude (and the centred ones by theirs)
    before the sums, so no intermediate overflows or underflows for finite features of any
    magnitude.

    Args:
        features: Array of shape ``(N, d)`` with ``N >= 2``.

    Returns:
        ``(mu, sigma)`` with shapes ``(d,)`` and ``(d, d)``.

    Raises:
        ValueError: If ``features`` is not 2-d, has fewer than two rows, is not finite, or
            its covariance exceeds the float64 range (features beyond about 1e154).
    """
    feats = _finite_array(features, "features", 2)
    if feats.shape[0] < 2:
        raise ValueError(f"need at least 2 feature vectors for a covariance, got {feats.shape[0]}")
    scale = _max_abs(feats)
    d = feats.shape[1]
    if scale == 0.0:
        return np.zeros(d), np.zeros((d, d))
    unit = feats / scale
    mu_unit = unit.mean(axis=0)
    centred = unit - mu_unit
    spread = _max_abs(centred)
    sigma = np.zeros((d, d))
    if spread > 0.0:
        root = spread * scale
        if root >= math.sqrt(float(np.finfo(np.float64).max)):
            raise ValueError(
                f"the covariance of features spread over {spread * scale:.3g} exceeds the "
                "float64 range; divide the features by a constant"
            )
        sigma = np.atleast_2d(np.cov(centred / spread, rowvar=False)) * root * root
    return mu_unit * scale, sigma


def _warn_sample_size(n: int, d: int, which: str) -> None:
    if n <= d:
        warnings.warn(
            f"{which} has {n} images but the features are {d}-dimensional: the covariance is "
            f"singular and the Frechet distance is strongly biased (values from different image "
            f"counts are not comparable). Use more than {d} images, or an extractor with fewer "
            f"feature dimensions.",
            FIDSampleSizeWarning,
            stacklevel=3,
        )


def _polynomial_mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    d = x.shape[1]
    with np.errstate(over="ignore", invalid="ignore"):
        return _checked_mmd2(x, y, d)


def _checked_mmd2(x: np.ndarray, y: np.ndarray, d: int) -> float:
    kxx = (x @ x.T / d + 1.0) ** 3
    kyy = (y @ y.T / d + 1.0) ** 3
    kxy = (x @ y.T / d + 1.0) ** 3
    n, m = x.shape[0], y.shape[0]
    sum_xx = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    sum_yy = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    value = float(sum_xx + sum_yy - 2.0 * kxy.mean())
    if not math.isfinite(value):
        peak = _max_abs(x, y)
        raise ValueError(
            f"features up to {peak:.3g} are too large for KID's cubic kernel (x . y / d + 1)^3: "
            "it overflows float64 (the kernel is not scale-invariant, so no rescaling inside "
            "can fix it); divide the features by a constant (the result then refers to the "
            "scaled features)"
        )
    return value


def kernel_distance(
    features_a: np.ndarray,
    features_b: np.ndarray,
    *,
    subset_size: int = 1000,
    n_subsets: int = 100,
    seed: int = 0,
) -> float:
    """Unbiased squared MMD with the cubic polynomial kernel (the KID of Binkowski et al.).

    The kernel is ``k(x, y) = (x . y / d + 1)^3``. The estimator excludes the diagonal terms, so
    it is unbiased for any sample size (but can be slightly negative when the two sets come
    from the same distribution). When both sets have at most ``subset_size`` rows the estimate
    uses all rows once and is deterministic; otherwise it averages ``n_subsets`` estimates on
    random subsets of ``subset_size`` rows per set, drawn with ``seed``.

    Args:
        features_a: ``(N, d)`` features of the first set (``N >= 2``).
        features_b: ``(M, d)`` features of the second set (``M >= 2``).
        subset_size: Rows per subset when a set is larger than this.
        n_subsets: Number of subsets averaged in that case.
        seed: Seed of the subset draws.

    Returns:
        The KID estimate as a float.

    Raises:
        TypeError: If the features are not arrays of real numbers, or a subset setting is
            not an integer.
        ValueError: On mismatched dimensions, fewer than two rows, NaN or infinite features,
            features so large that the cubic kernel overflows float64, or subset settings
            out of range.
    """
    a = _finite_array(features_a, "features_a", 2)
    b = _finite_array(features_b, "features_b", 2)
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"features must be (N, d) and (M, d) arrays, got {a.shape} and {b.shape}")
    if min(a.shape[0], b.shape[0]) < 2:
        raise ValueError(
            f"KID needs at least 2 feature vectors per set, got {a.shape[0]} and {b.shape[0]}"
        )
    for name, value, low in (("subset_size", subset_size, 2), ("n_subsets", n_subsets, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an integer, got {value!r}")
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if a.shape[0] <= subset_size and b.shape[0] <= subset_size:
        return _polynomial_mmd2_unbiased(a, b)
    rng = np.random.default_rng(seed)
    sa, sb = min(subset_size, a.shape[0]), min(subset_size, b.shape[0])
    values = [
        _polynomial_mmd2_unbiased(
            a[rng.choice(a.shape[0], sa, replace=False)],
            b[rng.choice(b.shape[0], sb, replace=False)],
        )
        for _ in range(n_subsets)
    ]
    return float(np.mean(values))


# ---------------------------------------------------------------------------------------------
# Image folders
# ---------------------------------------------------------------------------------------------


def read_image_folder(folder: str | Path) -> list[np.ndarray]:
    """Read every PNG/JPEG file directly inside ``folder`` (sorted by name).

    Grey images (modes ``1``, ``L``, ``I``, ``I;16``, ``F``, with or without alpha) are read as
    one channel, everything else as RGB; alpha is dropped. 16-bit and float images are scaled
    by their nominal range (65535 for 16-bit, clipped to [0, 1] for float).

    Args:
        folder: A directory holding ``*.png``, ``*.jpg`` or ``*.jpeg`` files (any case).
            Other files and subdirectories are ignored.

    Returns:
        A list of float32 arrays of shape ``(H, W, C)`` with ``C`` in ``{1, 3}`` and values in
        ``[0, 1]``; sizes may differ between images.

    Raises:
        FileNotFoundError: If ``folder`` does not exist.
        NotADirectoryError: If ``folder`` is a file.
        ValueError: If it holds no image files, or a file cannot be decoded (the message names
            the file).
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(folder)
    if not path.exists():
        raise FileNotFoundError(f"image folder not found: {path}")
    if not path.is_dir():
        raise NotADirectoryError(f"not a folder: {path}")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ValueError(
            f"no images in {path}: expected files ending in {', '.join(IMAGE_SUFFIXES)}"
        )
    images: list[np.ndarray] = []
    for file in files:
        try:
            with Image.open(file) as img:
                img.load()
                images.append(_pil_to_array(img))
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise ValueError(f"cannot read image {file}: {exc}") from exc
    return images


def _pil_to_array(img: Any) -> np.ndarray:
    mode = img.mode
    if mode in {"I;16", "I;16B", "I;16L", "I"}:
        arr = np.asarray(img, dtype=np.float64)
        scale = 65535.0 if mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        out = np.clip(arr / scale, 0.0, 1.0)[..., None]
    elif mode == "F":
        out = np.clip(np.asarray(img, dtype=np.float64), 0.0, 1.0)[..., None]
    elif mode in {"1", "L", "LA", "La"}:
        out = np.asarray(img.convert("L"), dtype=np.float64)[..., None] / 255.0
    else:
        out = np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0
    return out.astype(np.float32)


def _to_channels(image: np.ndarray, channels: int) -> np.ndarray:
    """(H, W, C) or (H, W) -> (channels, H, W) float32."""
    arr = np.asarray(image, dtype=np.float32)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3):
        raise ValueError(f"images must be (H, W), (H, W, 1) or (H, W, 3), got shape {arr.shape}")
    if arr.shape[2] == 1 and channels == 3:
        arr = np.repeat(arr, 3, axis=2)
    elif arr.shape[2] == 3 and channels == 1:
        arr = arr @ np.array([0.299, 0.587, 0.114], dtype=np.float32)[:, None]
    return np.ascontiguousarray(arr.transpose(2, 0, 1))


def extract_features(
    images: Sequence[np.ndarray] | np.ndarray,
    extractor: Callable[[np.ndarray], np.ndarray],
    *,
    batch_size: int = 50,
) -> np.ndarray:
    """Run ``extractor`` over images of possibly different sizes, preserving their order.

    Images are converted to the extractor's channel count (its ``channels`` attribute, 3 when
    absent: grey is tiled to RGB) and grouped by size; each call gets up to ``batch_size``
    images of one size as a float32 ``(n, C, H, W)`` array in ``[0, 1]``.

    Args:
        images: A sequence of ``(H, W)``/``(H, W, C)`` arrays, or one ``(N, H, W)`` or
            ``(N, H, W, C)`` array, values in ``[0, 1]``.
        extractor: The feature extractor (see :class:`FeatureExtractor`).
        batch_size: Images per extractor call.

    Returns:
        A float64 array of shape ``(N, d)``.

    Raises:
        ValueError: If there are no images, ``batch_size < 1``, or the extractor returns
            something other than one finite ``d``-vector per image.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    seq = list(images)
    if not seq:
        raise ValueError("no images to extract features from")
    channels = int(getattr(extractor, "channels", 3))
    chw = [_to_channels(img, channels) for img in seq]
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, arr in enumerate(chw):
        groups.setdefault(arr.shape, []).append(i)
    out: np.ndarray | None = None
    for indices in groups.values():
        for start in range(0, len(indices), batch_size):
            chunk = indices[start : start + batch_size]
            batch = np.stack([chw[i] for i in chunk])
            feats = np.asarray(extractor(batch), dtype=np.float64)
            if feats.ndim != 2 or feats.shape[0] != len(chunk):
                raise ValueError(
                    f"the extractor must return an ({len(chunk)}, d) array for {len(chunk)} "
                    f"images, got shape {feats.shape}"
                )
            if out is None:
                out = np.empty((len(chw), feats.shape[1]), dtype=np.float64)
            elif feats.shape[1] != out.shape[1]:
                raise ValueError("the extractor returned different feature sizes across batches")
            out[chunk] = feats
    assert out is not None
    if not np.all(np.isfinite(out)):
        raise ValueError("the extractor returned NaN or infinite features")
    return out


# ---------------------------------------------------------------------------------------------
# Feature extractors (PyTorch)
# ---------------------------------------------------------------------------------------------


class RandomConvFeatures:
    """The offline default extractor: a fixed, seeded, untrained convolutional network.

    Images are resized (bilinear, antialiased) to ``image_size`` x ``image_size``, mapped to
    ``[-1, 1]`` and passed through three 3x3 convolutions with ReLU (3 -> 8 -> 16 -> 16
    channels, 2x2 average pooling after the first two) whose weights are drawn once from
    ``numpy.random.default_rng(seed)`` (He-normal, zero bias). The last map is average-pooled
    onto a 2x2 grid, giving ``16 * 4 = 64`` features that keep coarse position (a loop at the
    top or at the bottom of a digit). Weights come from NumPy's PCG64 generator, so they are
    the same on every platform and PyTorch version.

    The Frechet distance in these features is a meaningful two-sample distance (random
    convolutional features separate image distributions; see ``tests/test_fid.py``), but it
    is **not** the FID: it is not comparable with published FID numbers, nor across
    different ``seed``/``image_size`` settings.

    Args:
        seed: Seed of the weights.
        image_size: Side length the images are resized to.
        device: Torch device for the forward pass.
    """

    channels = 3
    feature_dim = 64

    def __init__(self, seed: int = 0, image_size: int = 32, device: str = "cpu") -> None:
        import torch

        if image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {image_size}")
        self.seed = seed
        self.image_size = image_size
        self.device = torch.device(device)
        rng = np.random.default_rng(seed)
        shapes = [(8, 3), (16, 8), (16, 16)]
        self._weights = [
            torch.from_numpy(
                rng.standard_normal((c_out, c_in, 3, 3)) * math.sqrt(2.0 / (9 * c_in))
            ).to(device=self.device, dtype=torch.float32)
            for c_out, c_in in shapes
        ]

    def __repr__(self) -> str:
        return f"RandomConvFeatures(seed={self.seed}, image_size={self.image_size})"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Map ``(N, 3, H, W)`` images in ``[0, 1]`` to ``(N, 64)`` features."""
        import torch
        import torch.nn.functional as F

        with torch.no_grad():
            x = torch.as_tensor(np.asarray(images, dtype=np.float32), device=self.device)
            if x.ndim != 4 or x.shape[1] != 3:
                raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(x.shape)}")
            size = (self.image_size, self.image_size)
            if tuple(x.shape[2:]) != size:
                x = F.interpolate(
                    x, size=size, mode="bilinear", align_corners=False, antialias=True
                )
            x = 2.0 * x - 1.0
            w1, w2, w3 = self._weights
            x = F.avg_pool2d(F.relu(F.conv2d(x, w1, padding=1)), 2)
            x = F.avg_pool2d(F.relu(F.conv2d(x, w2, padding=1)), 2)
            x = F.adaptive_avg_pool2d(F.relu(F.conv2d(x, w3, padding=1)), 2)
            return x.flatten(1).cpu().numpy().astype(np.float64)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_weights_file(path: Path, sha256: str | None) -> None:
    if not path.is_file():
        raise FileNotFoundError(
            f"Inception weights not found at {path}. Download them yourself (for FID: "
            f"{FID_INCEPTION_WEIGHTS_URL}) and pass the local path; this package never "
            f"downloads weights."
        )
    actual = _sha256(path)
    if sha256 is not None:
        expected = sha256.lower()
        if not re.fullmatch(r"[0-9a-f]{8,64}", expected):
            raise ValueError(f"sha256 must be 8 to 64 hex digits, got {sha256!r}")
        if not actual.startswith(expected):
            raise ValueError(
                f"sha256 mismatch for {path}: expected {expected}, got {actual}. The file is "
                f"corrupt or not the weights you meant."
            )
        return
    match = _HUB_HASH.search(path.name)
    if match is not None and not actual.startswith(match.group(1)):
        raise ValueError(
            f"sha256 mismatch for {path}: the file name promises a hash starting with "
            f"{match.group(1)} (torch hub convention) but the file's sha256 is {actual}"
        )


_FIDELITY_LOCK = threading.Lock()
#: Stands for "keep the freshly initialized weights" while building an untrained network.
_UNTRAINED: dict[str, Any] = {}


def _fidelity_inception(state: dict[str, Any]) -> torch.nn.Module:
    """torch-fidelity's FID InceptionV3 with ``state`` loaded (``_UNTRAINED``: none).

    torch-fidelity's constructor fetches its weights itself -- from its release URL, or with
    ``torch.load(weights_only=False)`` from a path, which unpickles the file. Neither is
    acceptable here, so its URL loader is replaced, for the duration of the call, by one that
    returns the state dict this package already loaded with ``weights_only=True``: nothing is
    downloaded and nothing is unpickled.
    """
    try:
        import torch_fidelity.feature_extractor_inceptionv3 as tfi
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise ImportError(
            "variant='fid' needs the torch-fidelity package (the FID InceptionV3): "
            'pip install "optuna-qlearn[vision]"'
        ) from exc

    class _Network(tfi.FeatureExtractorInceptionV3):
        def load_state_dict(self, sd: Any, strict: bool = True, assign: bool = False) -> Any:
            if sd is _UNTRAINED:
                return None
            return super().load_state_dict(sd, strict=strict, assign=assign)

    with _FIDELITY_LOCK:
        original = tfi.load_state_dict_from_url
        tfi.load_state_dict_from_url = lambda *args, **kwargs: state
        try:
            return _Network("inception-v3-compat", ["2048"])
        finally:
            tfi.load_state_dict_from_url = original


class InceptionV3Features:
    """InceptionV3 pool3 features (2048-d), the standard FID network.

    The weights are read from a file you supply, never downloaded. Two architectures:

    - ``variant="fid"`` (default): the InceptionV3 of the TensorFlow FID graph, as the
      maintained ``torch-fidelity`` package builds it (``FeatureExtractorInceptionV3``), with
      its TensorFlow-1.x-exact bilinear resize to 299x299; images are quantized to 8 bits
      first, as that network expects (``round(255 x)``). With the weights
      :data:`FID_INCEPTION_WEIGHTS_FILENAME` (from :data:`FID_INCEPTION_WEIGHTS_URL`, or
      pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth``, same keys and shapes) the
      Frechet distance in these features is the FID.
    - ``variant="torchvision"``: torchvision's ImageNet InceptionV3
      (:data:`TORCHVISION_INCEPTION_WEIGHTS_FILENAME`, e.g. from your torch hub cache
      ``~/.cache/torch/hub/checkpoints``), images resized with PyTorch's bilinear
      interpolation and scaled to ``[-1, 1]``. Close to, but not the same numbers as, FID.

    The file is checked before loading: against ``sha256`` when given (a full digest or a
    prefix of at least 8 hex digits), otherwise against the hash prefix in a torch-hub-style
    file name (``name-<hex>.pth``). It is loaded with ``torch.load(weights_only=True)``; the
    library's own loader (which would download, or unpickle the file) is never used.

    Args:
        weights: Path to the state-dict file.
        sha256: Expected sha256 of the file (full or prefix); ``None`` checks only a hash
            embedded in the file name.
        variant: ``"fid"`` or ``"torchvision"``.
        device: Torch device.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: On a checksum mismatch, a bad ``variant``, or weights that do not fit.
        ImportError: If ``variant="fid"`` and ``torch-fidelity`` is not installed.

    Example:
        .. code-block:: python

            ext = InceptionV3Features(
                "weights-inception-2015-12-05-6726825d.pth", sha256="6726825d"
            )
            value = calculate_fid("real/", "generated/", extractor=ext)
    """

    channels = 3
    feature_dim = 2048

    def __init__(
        self,
        weights: str | Path,
        *,
        sha256: str | None = None,
        variant: str = "fid",
        device: str = "cpu",
    ) -> None:
        import torch

        if variant not in ("fid", "torchvision"):
            raise ValueError(f"variant must be 'fid' or 'torchvision', got {variant!r}")
        self.weights = Path(weights).expanduser()
        _check_weights_file(self.weights, sha256)
        self.variant = variant
        self.device = torch.device(device)
        try:
            state = torch.load(self.weights, map_location="cpu", weights_only=True)
        except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError) as exc:
            raise ValueError(f"cannot read the weights in {self.weights}: {exc}") from exc
        if not isinstance(state, dict):
            raise ValueError(f"{self.weights} does not hold a state dict")
        try:
            if variant == "fid":
                model = _fidelity_inception(state)
            else:
                model = self.build_network(variant)
                model.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ValueError(
                f"weights in {self.weights} do not fit the {variant!r} InceptionV3: {exc}"
            ) from exc
        self.model = model.to(self.device).eval()

    @staticmethod
    def build_network(variant: str = "fid") -> torch.nn.Module:
        """Build the (untrained) InceptionV3 of a variant, with no weights loaded.

        Args:
            variant: ``"fid"`` (torch-fidelity's ``FeatureExtractorInceptionV3``) or
                ``"torchvision"`` (``torchvision.models.Inception3``).

        Returns:
            The network with freshly initialized weights; its ``state_dict()`` has the keys
            and shapes a weights file for that variant must have.

        Raises:
            ValueError: If ``variant`` is unknown.
            ImportError: If ``variant="fid"`` and ``torch-fidelity`` is not installed.
        """
        if variant == "fid":
            return _fidelity_inception(_UNTRAINED)
        if variant != "torchvision":
            raise ValueError(f"variant must be 'fid' or 'torchvision', got {variant!r}")
        import torchvision

        return torchvision.models.inception_v3(
            weights=None, aux_logits=True, init_weights=False, transform_input=False
        )

    def __repr__(self) -> str:
        return f"InceptionV3Features(weights={str(self.weights)!r}, variant={self.variant!r})"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Map ``(N, 3, H, W)`` images in ``[0, 1]`` to ``(N, 2048)`` pool3 features."""
        import torch
        import torch.nn.functional as F

        m: Any = self.model
        with torch.no_grad():
            x = torch.as_tensor(np.asarray(images, dtype=np.float32), device=self.device)
            if x.ndim != 4 or x.shape[1] != 3:
                raise ValueError(f"expected images of shape (N, 3, H, W), got {tuple(x.shape)}")
            if self.variant == "fid":
                pixels = torch.round(x.clamp(0.0, 1.0) * 255.0).to(torch.uint8)
                return m(pixels)[0].cpu().numpy().astype(np.float64)
            x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
            x = 2.0 * x - 1.0
            for layer in (
                m.Conv2d_1a_3x3, m.Conv2d_2a_3x3, m.Conv2d_2b_3x3, m.maxpool1,
                m.Conv2d_3b_1x1, m.Conv2d_4a_3x3, m.maxpool2,
                m.Mixed_5b, m.Mixed_5c, m.Mixed_5d, m.Mixed_6a, m.Mixed_6b, m.Mixed_6c,
                m.Mixed_6d, m.Mixed_6e, m.Mixed_7a, m.Mixed_7b, m.Mixed_7c, m.avgpool,
            ):  # fmt: skip
                x = layer(x)
            return x.flatten(1).cpu().numpy().astype(np.float64)


ExtractorSpec = str | Callable[[np.ndarray], np.ndarray]


def get_extractor(
    extractor: ExtractorSpec = "random",
    *,
    weights: str | Path | None = None,
    sha256: str | None = None,
    device: str = "cpu",
) -> Callable[[np.ndarray], np.ndarray]:
    """Resolve an extractor name or callable.

    Args:
        extractor: ``"random"`` (:class:`RandomConvFeatures`, seed 0), ``"inception"``
            (:class:`InceptionV3Features`, FID variant, needs ``weights``),
            ``"inception-torchvision"`` (torchvision's ImageNet weights, needs ``weights``), or a
            callable, returned unchanged.
        weights: Weights file for the Inception extractors.
        sha256: Expected sha256 (or prefix) of ``weights``.
        device: Torch device for the built-in extractors.

    Returns:
        A feature extractor.

    Raises:
        ValueError: For an unknown name, or an Inception extractor without ``weights``.
    """
    if callable(extractor):
        return extractor
    if extractor == "random":
        return RandomConvFeatures(device=device)
    if extractor in ("inception", "inception-torchvision"):
        if weights is None:
            raise ValueError(
                f"extractor={extractor!r} needs weights=PATH to a local weights file (for FID: "
                f"{FID_INCEPTION_WEIGHTS_FILENAME} from {FID_INCEPTION_WEIGHTS_URL}); nothing is "
                f"downloaded"
            )
        variant = "fid" if extractor == "inception" else "torchvision"
        return InceptionV3Features(weights, sha256=sha256, variant=variant, device=device)
    raise ValueError(
        f"unknown extractor {extractor!r}: use 'random', 'inception', 'inception-torchvision' "
        f"or a callable"
    )


def _features_of(
    folder: str | Path, extractor: Callable[[np.ndarray], np.ndarray], batch_size: int
) -> np.ndarray:
    images = read_image_folder(folder)
    if len(images) < 2:
        raise ValueError(
            f"{folder} holds {len(images)} image; at least 2 are needed for a covariance"
        )
    return extract_features(images, extractor, batch_size=batch_size)


def fid_from_images(
    images_a: Sequence[np.ndarray] | np.ndarray,
    images_b: Sequence[np.ndarray] | np.ndarray,
    *,
    extractor: ExtractorSpec = "random",
    batch_size: int = 50,
    weights: str | Path | None = None,
    sha256: str | None = None,
    device: str = "cpu",
) -> float:
    """Frechet distance between two in-memory image sets (see :func:`calculate_fid`).

    Args:
        images_a: Images as accepted by :func:`extract_features`, values in ``[0, 1]``.
        images_b: The other set.
        extractor: See :func:`get_extractor`.
        batch_size: Images per extractor call.
        weights: Weights file for the Inception extractors.
        sha256: Expected sha256 of ``weights``.
        device: Torch device for the built-in extractors.

    Returns:
        The Frechet distance in the extractor's features.

    Raises:
        ValueError: If a set has fewer than two images.
    """
    ext = get_extractor(extractor, weights=weights, sha256=sha256, device=device)
    seq_a, seq_b = list(images_a), list(images_b)
    for name, seq in (("images_a", seq_a), ("images_b", seq_b)):
        if len(seq) < 2:
            raise ValueError(f"{name} has {len(seq)} images; at least 2 are needed")
    fa = extract_features(seq_a, ext, batch_size=batch_size)
    fb = extract_features(seq_b, ext, batch_size=batch_size)
    return _frechet_of_features(fa, fb, "images_a", "images_b")


def _frechet_of_features(fa: np.ndarray, fb: np.ndarray, name_a: str, name_b: str) -> float:
    """Frechet distance of two feature sets, warning when either is too small."""
    _warn_sample_size(fa.shape[0], fa.shape[1], name_a)
    _warn_sample_size(fb.shape[0], fb.shape[1], name_b)
    return frechet_distance(*feature_statistics(fa), *feature_statistics(fb))


def calculate_fid(
    folder_a: str | Path,
    folder_b: str | Path,
    *,
    extractor: ExtractorSpec = "random",
    batch_size: int = 50,
    device: str = "cpu",
    weights: str | Path | None = None,
    sha256: str | None = None,
) -> float:
    """Frechet distance between the images of two folders, in an extractor's features.

    With ``extractor="inception"`` and the FID weights this is the FID. With the default
    ``extractor="random"`` it is the Frechet distance in the features of
    :class:`RandomConvFeatures`: useful for comparing and tuning models offline, not
    comparable to published FID values.

    Args:
        folder_a: Folder of PNG/JPEG images (grey or RGB, any size; see
            :func:`read_image_folder`).
        folder_b: The other folder.
        extractor: ``"random"``, ``"inception"``, ``"inception-torchvision"`` or a callable
            (see :func:`get_extractor`).
        batch_size: Images per extractor call.
        device: Torch device for the built-in extractors (ignored for a callable).
        weights: Weights file for the Inception extractors.
        sha256: Expected sha256 (or prefix) of ``weights``.

    Returns:
        The distance (>= 0).

    Raises:
        FileNotFoundError: If a folder (or the weights file) is missing.
        ValueError: If a folder has no images, fewer than two images, or an unreadable image.

    Warns:
        FIDSampleSizeWarning: If a folder has no more images than the feature dimension.

    Example:

        .. code-block:: python

            from optuna_qlearn.fid import calculate_fid

            value = calculate_fid("stimuli/", "reconstructions/")
    """
    ext = get_extractor(extractor, weights=weights, sha256=sha256, device=device)
    fa = _features_of(folder_a, ext, batch_size)
    fb = _features_of(folder_b, ext, batch_size)
    return _frechet_of_features(fa, fb, str(folder_a), str(folder_b))


def calculate_kid(
    folder_a: str | Path,
    folder_b: str | Path,
    *,
    subset_size: int = 1000,
    n_subsets: int = 100,
    seed: int = 0,
    extractor: ExtractorSpec = "random",
    weights: str | Path | None = None,
    sha256: str | None = None,
    device: str = "cpu",
    batch_size: int = 50,
) -> float:
    """Kernel distance (KID) between the images of two folders, in an extractor's features.

    Unlike the Frechet distance, the KID estimator is unbiased, so it stays meaningful for
    small image sets (it needs only two images per folder). See :func:`kernel_distance`.

    Args:
        folder_a: Folder of PNG/JPEG images.
        folder_b: The other folder.
        extractor: As in :func:`calculate_fid`.
        batch_size: Images per extractor call.
        device: Torch device for the built-in extractors.
        weights: Weights file for the Inception extractors.
        sha256: Expected sha256 (or prefix) of ``weights``.
        subset_size: Subset size when a folder holds more images than this.
        n_subsets: Number of subsets averaged in that case.
        seed: Seed of the subset draws.

    Returns:
        The KID estimate (can be slightly negative for identical distributions).

    Raises:
        FileNotFoundError: If a folder (or the weights file) is missing.
        ValueError: If a folder has no images, fewer than two images, or an unreadable image.
    """
    ext = get_extractor(extractor, weights=weights, sha256=sha256, device=device)
    fa = _features_of(folder_a, ext, batch_size)
    fb = _features_of(folder_b, ext, batch_size)
    return kernel_distance(fa, fb, subset_size=subset_size, n_subsets=n_subsets, seed=seed)
