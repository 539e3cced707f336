"""Frechet distance, KID, image folders and feature extractors (optuna_qlearn.fid)."""

from __future__ import annotations

import hashlib
import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from optuna_qlearn.fid import (
    FIDSampleSizeWarning,
    InceptionV3Features,
    RandomConvFeatures,
    calculate_fid,
    calculate_kid,
    extract_features,
    feature_statistics,
    fid_from_images,
    frechet_distance,
    get_extractor,
    kernel_distance,
    read_image_folder,
)


def _spd(rng: np.random.Generator, d: int, rank: int | None = None) -> np.ndarray:
    a = rng.standard_normal((d, rank or d))
    return a @ a.T / (rank or d)


# --------------------------------------------------------------------------------------------
# frechet_distance: closed forms, properties, reference implementation
# --------------------------------------------------------------------------------------------


def test_diagonal_covariances_match_closed_form() -> None:
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    a, b = rng.uniform(0.1, 3.0, 6), rng.uniform(0.1, 3.0, 6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_pure_mean_shift_gives_squared_shift() -> None:
    rng = np.random.default_rng(1)
    sigma = _spd(rng, 20)
    mu = rng.standard_normal(20)
    shift = rng.standard_normal(20)
    value = frechet_distance(mu, sigma, mu + shift, sigma)
    assert value == pytest.approx(float(shift @ shift), rel=1e-9)


def test_distance_to_itself_is_zero_and_symmetric() -> None:
    rng = np.random.default_rng(2)
    s1, s2 = _spd(rng, 30), _spd(rng, 30)
    m1, m2 = rng.standard_normal(30), rng.standard_normal(30)
    assert frechet_distance(m1, s1, m1, s1) == pytest.approx(0.0, abs=1e-9)
    assert frechet_distance(m1, s1, m2, s2) == pytest.approx(
        frechet_distance(m2, s2, m1, s1), rel=1e-10
    )


def test_singular_covariances_give_a_real_nonnegative_float() -> None:
    rng = np.random.default_rng(3)
    for _ in range(20):
        s1, s2 = _spd(rng, 40, rank=5), _spd(rng, 40, rank=3)
        m = rng.standard_normal(40)
        value = frechet_distance(m, s1, m, s2)
        assert isinstance(value, float)
        assert np.isfinite(value) and value >= 0.0
    zero = np.zeros((10, 10))
    assert frechet_distance(np.zeros(10), zero, np.zeros(10), zero) == 0.0


def test_matches_torch_fidelity_on_the_same_features() -> None:
    """Cross-check against the maintained library: same features -> same distance (1e-6)."""
    import torch
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric

    rng = np.random.default_rng(4)
    # (d=1 is left out: torch-fidelity 0.4's statistics give a 0-d covariance there, which its
    # own distance then rejects; ours handles d=1, see test_diagonal_covariances...)
    for d in (2, 8, 64):
        fa = rng.standard_normal((300, d))
        fb = rng.standard_normal((300, d)) @ rng.standard_normal((d, d)) * 0.5 + 0.3
        ref_a = fid_features_to_statistics(torch.from_numpy(fa))
        ref_b = fid_features_to_statistics(torch.from_numpy(fb))
        expected = fid_statistics_to_metric(ref_a, ref_b, verbose=False)
        expected_value = float(expected["frechet_inception_distance"])
        ours = frechet_distance(*feature_statistics(fa), *feature_statistics(fb))
        assert ours == pytest.approx(expected_value, rel=1e-6, abs=1e-6), d
        # ... and our statistics are torch-fidelity's.
        mu, sigma = feature_statistics(fa)
        np.testing.assert_allclose(mu, ref_a["mu"], rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(np.atleast_2d(sigma), np.atleast_2d(ref_a["sigma"]),
                                   rtol=1e-10, atol=1e-14)  # fmt: skip
    x, y = rng.standard_normal((300, 1)), rng.standard_normal((300, 1)) * 2.0 + 1.0
    closed = (x.mean() - y.mean()) ** 2 + (x.std(ddof=1) - y.std(ddof=1)) ** 2
    assert frechet_distance(*feature_statistics(x), *feature_statistics(y)) == pytest.approx(
        closed, rel=1e-12
    )


def test_frechet_distance_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="equal length"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="covariances must have shape"):
        frechet_distance(np.zeros(2), np.eye(3), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="NaN"):
        frechet_distance(np.array([np.nan, 0.0]), np.eye(2), np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="at least 2"):
        feature_statistics(np.zeros((1, 3)))


# --------------------------------------------------------------------------------------------
# KID
# --------------------------------------------------------------------------------------------


def test_kernel_distance_matches_brute_force_unbiased_estimator() -> None:
    rng = np.random.default_rng(5)
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((5, 3)) + 0.5

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return float((a @ b / 3 + 1) ** 3)

    xx = np.mean([k(x[i], x[j]) for i in range(7) for j in range(7) if i != j])
    yy = np.mean([k(y[i], y[j]) for i in range(5) for j in range(5) if i != j])
    xy = np.mean([k(a, b) for a in x for b in y])
    assert kernel_distance(x, y) == pytest.approx(xx + yy - 2 * xy, rel=1e-12)


def test_kernel_distance_separates_and_is_near_zero_for_same_distribution() -> None:
    rng = np.random.default_rng(6)
    a, b = rng.standard_normal((400, 8)), rng.standard_normal((400, 8))
    shifted = rng.standard_normal((400, 8)) + 1.0
    same = kernel_distance(a, b)
    diff = kernel_distance(a, shifted)
    assert abs(same) < 0.05 * diff
    # subsets path: deterministic for a seed
    sub = kernel_distance(a, shifted, subset_size=100, n_subsets=10, seed=3)
    assert sub == kernel_distance(a, shifted, subset_size=100, n_subsets=10, seed=3)
    assert sub == pytest.approx(diff, rel=0.3)
    with pytest.raises(ValueError, match="at least 2"):
        kernel_distance(a[:1], b)


# --------------------------------------------------------------------------------------------
# Image folders
# --------------------------------------------------------------------------------------------


def _write_digits(folder: Path, images: np.ndarray, fmt: str = "png", rgb: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, img in enumerate(images):
        arr = np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)
        pil = Image.fromarray(arr, mode="L")
        if rgb:
            pil = pil.convert("RGB")
        pil.save(folder / f"{i:04d}.{fmt}")
    return folder


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images / 16.0).astype(np.float32), d.target


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not found"):
        calculate_fid(tmp_path / "missing", tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("not an image")
    with pytest.raises(ValueError, match="no images"):
        calculate_fid(empty, empty)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.png").write_bytes(b"this is not a png")
    with pytest.raises(ValueError, match=r"cannot read image .*broken\.png"):
        read_image_folder(bad)
    one = _write_digits(tmp_path / "one", np.ones((1, 8, 8)) * 0.5)
    with pytest.raises(ValueError, match="at least 2"):
        calculate_fid(one, one)
    with pytest.raises(ValueError, match="at least 2"):
        calculate_kid(one, one)


def test_mixed_grey_rgb_sizes_and_formats(tmp_path: Path, digits: tuple) -> None:
    images, _ = digits
    folder = tmp_path / "mixed"
    _write_digits(folder, images[:3])
    Image.fromarray(np.full((20, 30, 3), 200, np.uint8)).save(folder / "rgb.JPG")
    Image.fromarray(np.full((12, 12), 60000, np.uint16)).save(folder / "grey16.png")
    read = read_image_folder(folder)
    assert len(read) == 5
    shapes = sorted(a.shape for a in read)
    assert (8, 8, 1) in shapes and (20, 30, 3) in shapes and (12, 12, 1) in shapes
    assert all(a.dtype == np.float32 and a.min() >= 0 and a.max() <= 1 for a in read)
    seen: list[tuple[int, ...]] = []

    def spy(batch: np.ndarray) -> np.ndarray:
        seen.append(batch.shape)
        return batch.reshape(len(batch), 3, -1).mean(axis=2)

    feats = extract_features(read, spy)
    assert feats.shape == (5, 3)
    assert all(s[1] == 3 for s in seen)  # grey tiled to 3 channels
    # order is preserved although images were grouped by size
    rgb_index = next(i for i, a in enumerate(read) if a.shape == (20, 30, 3))
    assert feats[rgb_index][0] == pytest.approx(200 / 255, abs=1e-6)


def test_single_channel_extractor_gets_luminance() -> None:
    class Grey:
        channels = 1

        def __call__(self, images: np.ndarray) -> np.ndarray:
            assert images.shape[1] == 1
            return images.reshape(len(images), -1)[:, :2]

    rgb = np.zeros((4, 4, 3), np.float32)
    rgb[..., 1] = 1.0
    feats = extract_features([rgb, rgb], Grey())
    assert feats[0, 0] == pytest.approx(0.587, abs=1e-6)


def test_extractor_with_wrong_output_is_rejected() -> None:
    with pytest.raises(ValueError, match="must return an"):
        extract_features(np.zeros((3, 8, 8)), lambda b: np.zeros(len(b)))
    with pytest.raises(ValueError, match="unknown extractor"):
        get_extractor("vgg")
    with pytest.raises(ValueError, match="weights=PATH"):
        get_extractor("inception")


def test_identical_folders_give_zero_and_sample_size_warning(tmp_path: Path, digits: tuple) -> None:
    images, _ = digits
    small = _write_digits(tmp_path / "small", images[:20])
    with pytest.warns(FIDSampleSizeWarning, match="20 images but the features are 64"):
        assert calculate_fid(small, small) == pytest.approx(0.0, abs=1e-9)
    big_a = _write_digits(tmp_path / "a", images[:100])
    big_b = _write_digits(tmp_path / "b", images[100:200], fmt="jpg", rgb=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FIDSampleSizeWarning)
        value = calculate_fid(big_a, big_b)
        kid = calculate_kid(big_a, big_b)
    assert 0.0 < value < 1.0
    assert np.isfinite(kid)


# --------------------------------------------------------------------------------------------
# The offline default extractor separates distributions
# --------------------------------------------------------------------------------------------


def test_random_features_are_deterministic() -> None:
    x = np.random.default_rng(0).random((5, 3, 16, 16)).astype(np.float32)
    a, b = RandomConvFeatures(seed=0)(x), RandomConvFeatures(seed=0)(x)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (5, 64)
    assert not np.allclose(a, RandomConvFeatures(seed=1)(x))


def test_distance_rises_monotonically_with_noise(digits: tuple) -> None:
    images, _ = digits
    clean = images[:400]
    eps = np.random.default_rng(0).standard_normal(clean.shape).astype(np.float32)
    values = [
        fid_from_images(clean, np.clip(clean + s * eps, 0, 1))
        for s in (0.0, 0.05, 0.1, 0.2, 0.4, 0.8)
    ]
    assert values[0] == pytest.approx(0.0, abs=1e-9)
    assert all(b > a for a, b in itertools.pairwise(values)), values


def test_sixes_vs_nines_farther_than_two_halves_of_sixes(digits: tuple) -> None:
    images, target = digits
    six, nine = images[target == 6], images[target == 9]
    h = len(six) // 2
    between = fid_from_images(six[:h], nine[:h])
    within = fid_from_images(six[:h], six[h : 2 * h])
    assert between > 5 * within, (between, within)
    kid_between = kernel_distance(
        extract_features(six[:h], RandomConvFeatures()),
        extract_features(nine[:h], RandomConvFeatures()),
    )
    kid_within = kernel_distance(
        extract_features(six[:h], RandomConvFeatures()),
        extract_features(six[h : 2 * h], RandomConvFeatures()),
    )
    assert kid_between > 5 * abs(kid_within)


# --------------------------------------------------------------------------------------------
# InceptionV3 loading and feature path, with RANDOM weights (these values are not FID)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def random_fid_inception(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, dict]:
    import torch

    torch.manual_seed(0)
    net = InceptionV3Features.build_network("fid")
    state = {k: v.clone() for k, v in net.state_dict().items()}
    # non-trivial batch-norm statistics so a wrong layer order would show
    for k, v in state.items():
        if k.endswith("running_var"):
            state[k] = torch.rand_like(v) + 0.5
        elif k.endswith("running_mean"):
            state[k] = torch.randn_like(v) * 0.1
    path = tmp_path_factory.mktemp("weights") / "random_inception.pth"
    torch.save(state, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return path, digest, state


def test_inception_features_match_torch_fidelity_network(
    random_fid_inception: tuple[Path, str, dict],
) -> None:
    """Our extractor is torch-fidelity's FID network: the same features for the same pixels."""
    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    path, digest, _ = random_fid_inception
    ext = InceptionV3Features(path, sha256=digest)
    pixels = np.random.default_rng(0).integers(0, 256, (2, 3, 40, 40)).astype(np.uint8)
    feats = ext(pixels.astype(np.float32) / 255.0)
    assert feats.shape == (2, 2048)
    assert np.all(np.isfinite(feats)) and np.all(feats >= 0)
    # torch-fidelity's own constructor, given the (test-made) file directly.
    ref = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"], str(path))
    with torch.no_grad():
        expected = ref(torch.from_numpy(pixels))[0].numpy()
    np.testing.assert_allclose(feats, expected, rtol=1e-5, atol=1e-6)


def test_inception_loading_never_downloads_or_unpickles(
    random_fid_inception: tuple[Path, str, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch
    import torch_fidelity.feature_extractor_inceptionv3 as tfi

    path, digest, _ = random_fid_inception
    loads: list[object] = []
    real_load = torch.load

    def spy_load(*args: object, **kwargs: object) -> object:
        loads.append(kwargs.get("weights_only"))
        return real_load(*args, **kwargs)  # type: ignore[arg-type]

    def no_download(*args: object, **kwargs: object) -> object:
        raise AssertionError("tried to download weights")

    monkeypatch.setattr(torch, "load", spy_load)
    monkeypatch.setattr(tfi, "load_state_dict_from_url", no_download)
    InceptionV3Features(path, sha256=digest)
    assert loads == [True]
    assert tfi.load_state_dict_from_url is no_download  # restored after the build


def test_inception_weights_are_checked(
    random_fid_inception: tuple[Path, str, dict], tmp_path: Path
) -> None:
    path, digest, _ = random_fid_inception
    with pytest.raises(ValueError, match="sha256 mismatch"):
        InceptionV3Features(path, sha256="0" * 64)
    with pytest.raises(FileNotFoundError, match="never downloads"):
        InceptionV3Features(tmp_path / "pt_inception-2015-12-05-6726825d.pth")
    hub_named = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    hub_named.write_bytes(path.read_bytes())
    with pytest.raises(ValueError, match="file name promises"):
        InceptionV3Features(hub_named)
    with pytest.raises(ValueError, match="do not fit"):
        InceptionV3Features(path, sha256=digest[:8], variant="torchvision")
    with pytest.raises(ValueError, match="variant"):
        InceptionV3Features(path, variant="vgg")


def test_torchvision_inception_variant_loads(tmp_path: Path) -> None:
    import torch

    torch.manual_seed(1)
    net = InceptionV3Features.build_network("torchvision")
    path = tmp_path / "tv.pth"
    torch.save(net.state_dict(), path)
    ext = get_extractor("inception-torchvision", weights=path)
    assert isinstance(ext, InceptionV3Features)
    feats = ext(np.random.default_rng(0).random((1, 3, 32, 32)).astype(np.float32))
    assert feats.shape == (1, 2048) and np.all(np.isfinite(feats))


def test_inception_extractor_by_name(random_fid_inception: tuple[Path, str, dict]) -> None:
    path, digest, _ = random_fid_inception
    ext = get_extractor("inception", weights=path, sha256=digest[:16])
    assert isinstance(ext, InceptionV3Features) and ext.variant == "fid"


# --------------------------------------------------------------------------------------------
# Numerics (issue 15, defect 8): non-finite and invalid inputs refused, large inputs accurate
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_kernel_distance_refuses_non_finite_features(bad: float) -> None:
    """Before: NaN features gave a NaN KID (frechet_distance refused them)."""
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((20, 4)), rng.standard_normal((20, 4))
    a[3, 1] = bad
    with pytest.raises(ValueError, match="features_a contains NaN or infinite"):
        kernel_distance(a, b)
    with pytest.raises(ValueError, match="features_b contains NaN or infinite"):
        kernel_distance(b, a)
    with pytest.raises(ValueError, match="features contains NaN or infinite"):
        feature_statistics(a)


def test_kernel_distance_refuses_bad_subset_settings() -> None:
    x = np.zeros((4, 2))
    with pytest.raises(TypeError, match="subset_size must be an integer"):
        kernel_distance(x, x, subset_size=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_subsets must be >= 1"):
        kernel_distance(x, x, n_subsets=0)


@pytest.mark.parametrize("scale", [1e150, 1e-150, 1e100])
def test_frechet_distance_is_accurate_for_features_of_any_magnitude(scale: float) -> None:
    """Before: features near 1e150 gave inf (overflowing covariance) or a LinAlgError."""
    rng = np.random.default_rng(8)
    fa = rng.standard_normal((400, 16))
    fb = rng.standard_normal((400, 16)) @ rng.standard_normal((16, 16)) * 0.5 + 0.3
    unit = frechet_distance(*feature_statistics(fa), *feature_statistics(fb))
    big = frechet_distance(*feature_statistics(fa * scale), *feature_statistics(fb * scale))
    assert np.isfinite(big)
    assert big == pytest.approx(unit * scale**2, rel=1e-9)
    # The same through the image API, with an extractor whose features are that large.
    images = np.random.default_rng(9).random((30, 8, 8, 3)).astype(np.float32)

    def flat(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1)[:, :6].astype(np.float64)

    def flat_scaled(x: np.ndarray) -> np.ndarray:
        return flat(x) * scale

    ref = fid_from_images(images[:15], images[15:], extractor=flat)
    got = fid_from_images(images[:15], images[15:], extractor=flat_scaled)
    assert got == pytest.approx(ref * scale**2, rel=1e-9)


def test_frechet_distance_of_large_statistics_directly() -> None:
    rng = np.random.default_rng(10)
    s1, s2 = _spd(rng, 12), _spd(rng, 12)
    m1, m2 = rng.standard_normal(12), rng.standard_normal(12)
    unit = frechet_distance(m1, s1, m2, s2)
    big = frechet_distance(m1 * 1e150, s1 * 1e300, m2 * 1e150, s2 * 1e300)
    assert big == pytest.approx(unit * 1e300, rel=1e-9)


def test_frechet_distance_beyond_float64_is_refused_not_inf() -> None:
    fa = np.random.default_rng(11).standard_normal((50, 3)) * 1e160
    with pytest.raises(ValueError, match="exceeds the float64 range"):
        feature_statistics(fa)
    mu = np.full(3, 1e160)
    with pytest.raises(ValueError, match="exceeds the float64 range"):
        frechet_distance(mu, np.eye(3), -mu, np.eye(3))


def test_frechet_distance_refuses_covariances_that_are_not_covariances() -> None:
    """Before: a non-PSD covariance (-I) gave 0.0."""
    z = np.zeros(3)
    with pytest.raises(ValueError, match="sigma1 is not positive semi-definite"):
        frechet_distance(z, -np.eye(3), z, np.eye(3))
    with pytest.raises(ValueError, match="sigma2 is not positive semi-definite"):
        frechet_distance(z, np.eye(3), z, np.diag([1.0, 1.0, -0.5]))
    asym = np.eye(3)
    asym[0, 2] = 0.5
    with pytest.raises(ValueError, match="sigma2 is not symmetric"):
        frechet_distance(z, np.eye(3), z, asym)
    with pytest.raises(ValueError, match="sigma1 contains NaN"):
        frechet_distance(z, np.full((3, 3), np.inf), z, np.eye(3))
    with pytest.raises(TypeError, match="mu1 must be an array of real numbers"):
        frechet_distance(["a", "b"], np.eye(2), np.zeros(2), np.eye(2))  # type: ignore[arg-type]
    # Round-off (a singular sample covariance, tiny asymmetry) is still accepted.
    feats = np.random.default_rng(12).standard_normal((5, 10))
    mu, sigma = feature_statistics(feats)
    sigma[0, 1] += 1e-12
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_kernel_distance_too_large_features_are_refused_not_inf() -> None:
    rng = np.random.default_rng(13)
    a, b = rng.standard_normal((10, 4)) * 1e150, rng.standard_normal((10, 4)) * 1e150
    with pytest.raises(ValueError, match="too large for KID's cubic kernel"):
        kernel_distance(a, b)
