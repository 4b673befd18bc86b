"""FID: the Fréchet distance against closed forms and pytorch-fid, the features against pytorch-fid's network on
the same random weights, and the command line's one-line errors.

pytorch-fid's ``InceptionV3`` is built with its FID blocks (``FIDInceptionA/C/E_1/E_2``) and random weights (its
download is replaced by a seeded random state dict, BatchNorm statistics randomised too); that state dict is
saved and read by ours. Skipped without ``pytorch-fid``. The full 2048-d FID of two folders against pytorch-fid
takes two 2048x2048 ``sqrtm`` (a minute each on a busy CPU): marked slow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from restoration.metrics.fid import FIDError, activation_statistics, folder_features, frechet_distance, main
from restoration.metrics.fid_inception import FIDInceptionV3

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_frechet_distance_of_diagonal_gaussians_is_the_closed_form() -> None:
    rng = np.random.default_rng(0)
    mu1, mu2 = rng.normal(size=6), rng.normal(size=6)
    s1, s2 = rng.uniform(0.1, 3, size=6), rng.uniform(0.1, 3, size=6)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(s1 + s2 - 2 * np.sqrt(s1 * s2))
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-12)
    # equal Gaussians: 0; commuting full covariances: tr((√S1 - √S2)²)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    a, b = q @ np.diag(s1) @ q.T, q @ np.diag(s2) @ q.T
    assert frechet_distance(mu1, a, mu1, a) == pytest.approx(0.0, abs=1e-10)
    assert frechet_distance(mu1, a, mu1, b) == pytest.approx(np.sum((np.sqrt(s1) - np.sqrt(s2)) ** 2), rel=1e-10)


def test_frechet_distance_equals_pytorch_fid_including_the_singular_case() -> None:
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    rng = np.random.default_rng(1)
    for n in (40, 5):  # 5 samples of 16 dimensions: singular covariances, the eps retry and the imaginary part
        x, y = rng.normal(size=(n, 16)), rng.normal(1.0, 2.0, size=(n, 16))
        (m1, c1), (m2, c2) = activation_statistics(x), activation_statistics(y)
        expected = fid_score.calculate_frechet_distance(m1, c1, m2, c2)
        assert frechet_distance(m1, c1, m2, c2) == pytest.approx(expected, rel=1e-9)


def _random_networks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[torch.nn.Module, Path]:
    """pytorch-fid's InceptionV3 with seeded random weights, and those weights saved for ours."""
    inception = pytest.importorskip("pytorch_fid.inception")
    import torchvision

    torch.manual_seed(0)
    net = torchvision.models.inception_v3(num_classes=1008, aux_logits=False, weights=None, init_weights=True)
    for name, block in (("Mixed_5b", inception.FIDInceptionA(192, 32)), ("Mixed_5c", inception.FIDInceptionA(256, 64)),
                        ("Mixed_5d", inception.FIDInceptionA(288, 64)), ("Mixed_6b", inception.FIDInceptionC(768, 128)),
                        ("Mixed_6c", inception.FIDInceptionC(768, 160)), ("Mixed_6d", inception.FIDInceptionC(768, 160)),
                        ("Mixed_6e", inception.FIDInceptionC(768, 192)), ("Mixed_7b", inception.FIDInceptionE_1(1280)),
                        ("Mixed_7c", inception.FIDInceptionE_2(2048))):
        setattr(net, name, block)
    state = net.state_dict()
    for key in state:
        if key.endswith("running_mean"):
            state[key] = 0.1 * torch.randn_like(state[key])
        elif key.endswith("running_var"):
            state[key] = torch.rand_like(state[key]) + 0.5
    monkeypatch.setattr(inception, "load_state_dict_from_url", lambda *args, **kwargs: state)
    official = inception.InceptionV3([3]).eval()
    path = tmp_path / "pt_inception_random.pth"
    torch.save(state, path)
    return official, path


def _folder(path: Path, seed: int, sizes: list[tuple[int, int]]) -> Path:
    path.mkdir()
    rng = np.random.default_rng(seed)
    for i, (h, w) in enumerate(sizes):
        Image.fromarray(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)).save(path / f"{i:02d}.png")
    return path


def test_features_equal_pytorch_fid_on_the_same_random_weights(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    official, weights = _random_networks(tmp_path, monkeypatch)
    folder = _folder(tmp_path / "real", 0, [(40, 56)] * 3)
    files = sorted(folder.iterdir())
    expected = fid_score.get_activations(files, official, batch_size=2, dims=2048, num_workers=0)
    got = folder_features(files, FIDInceptionV3(weights), batch_size=3)
    assert got.shape == (3, 2048) and np.abs(got).max() > 1e-3
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())
    # the distance on those statistics (64 of the 2048 dimensions: a fast sqrtm) matches pytorch-fid's too
    other = folder_features(files[::-1], FIDInceptionV3(weights)) + 0.01
    (m1, c1), (m2, c2) = activation_statistics(got[:, :64]), activation_statistics(other[:, :64])
    assert frechet_distance(m1, c1, m2, c2) == pytest.approx(
        fid_score.calculate_frechet_distance(m1, c1, m2, c2), rel=1e-6)


@pytest.mark.slow
def test_folder_fid_equals_pytorch_fid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fid_score = pytest.importorskip("pytorch_fid.fid_score")
    from restoration.metrics.fid import calculate_fid_folders

    _, weights = _random_networks(tmp_path, monkeypatch)
    real = _folder(tmp_path / "real", 0, [(40, 56)] * 4)
    fake = _folder(tmp_path / "fake", 1, [(40, 56)] * 4)
    expected = fid_score.calculate_fid_given_paths([str(real), str(fake)], 4, "cpu", 2048, num_workers=0)
    assert calculate_fid_folders(real, fake, weights, device="cpu") == pytest.approx(expected, rel=1e-4)


def test_command_line_errors_are_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    real = _folder(tmp_path / "real", 0, [(8, 8)] * 2)
    fake = _folder(tmp_path / "fake", 1, [(8, 8)])
    missing = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    assert main(["--real", str(real), "--fake", str(fake), "--inception-weights", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == (f"FIDError: --fake folder '{fake}' holds 1 image(s); a covariance needs at least 2 "
                   "(.bmp, .jpg, .jpeg, .pgm, .png, .ppm, .tif, .tiff, .webp)\n")
    assert main(["--real", str(real), "--fake", str(real), "--inception-weights", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err == (f"FIDWeightsError: Inception weights file not found: '{missing}' (expected pytorch-fid's "
                   "pt_inception-2015-12-05-6726825d.pth; nothing is downloaded; see docs/losses_metrics.md)\n")
    with pytest.raises(FIDError, match="statistics of different sizes"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))
