"""Decoding: files that OpenCV decodes give exactly Pillow's pixels (ModelScope's
reference decoder); everything else goes through Pillow, and broken files are refused."""
import numpy as np
import pytest
from PIL import Image, ImageOps

from conftest import make_image
import modelscope_iqa.preprocessors.decoding as decoding
from modelscope_iqa.errors import UnreadableImageError
from modelscope_iqa.preprocessors import decode


def pillow_rgb(path):
    with Image.open(path) as opened:
        return np.asarray(ImageOps.exif_transpose(opened).convert('RGB'))


def _rgb(seed=0, size=(123, 157)):
    return make_image(*size, seed=seed)


def _with_exif_orientation(image, path, orientation):
    exif = Image.Exif()
    exif[decoding.EXIF_ORIENTATION] = orientation
    image.save(path, exif=exif, quality=90)


CASES = {
    # name: (writer, decoded by OpenCV)
    'rgb.jpg': (lambda p: Image.fromarray(_rgb()).save(p, quality=85), True),
    'progressive.jpg': (lambda p: Image.fromarray(_rgb(1)).save(p, progressive=True), True),
    'subsampled_444.jpg': (lambda p: Image.fromarray(_rgb(2)).save(p, subsampling=0), True),
    'grey.jpg': (lambda p: Image.fromarray(_rgb(3)[:, :, 0]).save(p), True),
    'rgb.png': (lambda p: Image.fromarray(_rgb(4)).save(p), True),
    'rgba.png': (lambda p: Image.fromarray(
        np.dstack([_rgb(5), _rgb(6)[:, :, 0]])).save(p), True),
    'grey.png': (lambda p: Image.fromarray(_rgb(7)[:, :, 1]).save(p), True),
    'palette.png': (lambda p: Image.fromarray(_rgb(8)).convert('P').save(p), False),
    'rgb16.png': (lambda p: Image.fromarray(
        (_rgb(9)[:, :, 0].astype(np.uint16) * 257)).save(p), False),
    'cmyk.jpg': (lambda p: Image.fromarray(_rgb(10)).convert('CMYK').save(p), False),
    'rotated.jpg': (lambda p: _with_exif_orientation(Image.fromarray(_rgb(11)), p, 6), False),
    'exif_upright.jpg': (lambda p: _with_exif_orientation(Image.fromarray(_rgb(12)), p, 1),
                         True),
    'exif.png': (lambda p: _with_exif_orientation(Image.fromarray(_rgb(13)), p, 8), False),
    'trailing_bytes.jpg': (lambda p: (Image.fromarray(_rgb(14)).save(p),
                                      open(p, 'ab').write(b'\0' * 7)), False),
    'webp.webp': (lambda p: Image.fromarray(_rgb(15)).save(p, lossless=True), False),
}


@pytest.mark.parametrize('name', sorted(CASES))
def test_decoded_pixels_equal_pillows(name, tmp_path, monkeypatch):
    writer, by_opencv = CASES[name]
    path = str(tmp_path / name)
    writer(path)
    calls = []
    imread = decoding.cv2.imread
    monkeypatch.setattr(decoding.cv2, 'imread',
                        lambda *args: calls.append(args[0]) or imread(*args))
    pixels = decode(path)
    assert (pixels.order == 'BGR') == by_opencv == bool(calls)
    np.testing.assert_array_equal(pixels.rgb(), pillow_rgb(path))


@pytest.mark.parametrize('name', ['rgb.jpg', 'rgb.png', 'progressive.jpg'])
@pytest.mark.parametrize('keep', [0.3, 0.9])
def test_truncated_files_are_refused(name, keep, tmp_path):
    whole = tmp_path / f'whole_{name}'
    CASES[name][0](str(whole))
    data = whole.read_bytes()
    cut = tmp_path / name
    cut.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(UnreadableImageError, match=name):
        decode(str(cut))


@pytest.mark.parametrize('name', sorted(CASES))
def test_bytes_in_memory_decode_as_their_file(name, tmp_path):
    """A Parquet cell or WebDataset member holds a file's bytes: decoded by the same
    decoder as the file (OpenCV's imdecode where imread is used), the same pixels."""
    path = tmp_path / name
    CASES[name][0](str(path))
    from_file = decode(str(path))
    from_bytes = decode(decoding.EncodedImage(name, path.read_bytes()))
    assert from_bytes.order == from_file.order
    np.testing.assert_array_equal(from_bytes.array, from_file.array)


def test_bad_bytes_in_memory_are_refused_naming_them():
    with pytest.raises(UnreadableImageError, match="'cell 3': empty file"):
        decode(decoding.EncodedImage('cell 3', b''))
    with pytest.raises(UnreadableImageError, match="'cell 4': not a recognised image"):
        decode(decoding.EncodedImage('cell 4', b'hello'))
