"""Our preprocessor builds exactly ModelScope's tensor (BGR, [0, 1], cover-resize,
centre crop, portrait rotation) for every input kind."""
import numpy as np
import pytest
import torch
from modelscope.preprocessors.cv import \
    ImageQualityAssessmentMosPreprocessor as BuiltinPreprocessor
from PIL import Image

from modelscope_iqa.config import PreprocessConfig
from modelscope_iqa.errors import UnreadableImageError, UnsupportedArrayError
from modelscope_iqa.preprocessors import ImageQualityAssessmentMosPreprocessor

from conftest import make_image

# landscape, portrait, square, small (< 720p), tiny, large (> 4K), odd aspect ratios
SIZES = [(1080, 1920), (1920, 1080), (500, 500), (240, 426), (9, 17), (2400, 4400),
         (4400, 2400), (731, 1283), (100, 1900)]


@pytest.fixture(scope='module')
def builtin():
    return BuiltinPreprocessor()


@pytest.fixture(scope='module')
def ours():
    return ImageQualityAssessmentMosPreprocessor()


def _assert_same(ours_tensor, builtin_tensor):
    assert ours_tensor.shape == builtin_tensor.shape == (1, 3, 720, 1280)
    assert ours_tensor.dtype == torch.float32
    assert torch.equal(ours_tensor, builtin_tensor)


@pytest.mark.parametrize('size', SIZES, ids=lambda s: f'{s[0]}x{s[1]}')
def test_file_paths(tmp_path, builtin, ours, size):
    path = tmp_path / 'image.png'
    Image.fromarray(make_image(*size, seed=3)).save(path)
    _assert_same(ours(str(path))['input'], builtin(str(path))['input'])


@pytest.mark.parametrize('size', SIZES[:4], ids=lambda s: f'{s[0]}x{s[1]}')
def test_pil_images(builtin, ours, size):
    image = Image.fromarray(make_image(*size, seed=4))
    _assert_same(ours(image)['input'], builtin(image)['input'])


@pytest.mark.parametrize('mode', ['L', 'RGBA', 'P'])
def test_pil_images_of_other_modes(builtin, ours, mode):
    image = Image.fromarray(make_image(300, 500, seed=5)).convert(mode)
    _assert_same(ours(image)['input'], builtin(image)['input'])


@pytest.mark.parametrize('size', SIZES[:4], ids=lambda s: f'{s[0]}x{s[1]}')
def test_bgr_arrays(builtin, ours, size):
    bgr = make_image(*size, seed=6)
    _assert_same(ours(bgr)['input'], builtin(bgr)['input'])


def test_grey_and_bgra_arrays(builtin, ours):
    grey = make_image(400, 300, seed=7)[:, :, 0]
    _assert_same(ours(grey)['input'], builtin(grey.copy())['input'])
    bgra = np.dstack([make_image(300, 400, seed=8), np.full((300, 400), 7, np.uint8)])
    _assert_same(ours(bgra)['input'], builtin(bgra)['input'])


def test_exif_rotation_is_applied_to_files(tmp_path, builtin, ours):
    path = tmp_path / 'rotated.jpg'
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 CW to display
    Image.fromarray(make_image(400, 700, seed=9)).save(path, exif=exif)
    _assert_same(ours(str(path))['input'], builtin(str(path))['input'])


def test_array_is_bgr_and_tensor_is_bgr(ours):
    """A pure-red BGR array reaches the network with red in channel 2."""
    bgr = np.zeros((720, 1280, 3), np.uint8)
    bgr[:, :, 2] = 255
    tensor = ours(bgr)['input'][0]
    assert tensor[2].min().item() == 1.0
    assert tensor[0].max().item() == 0.0 and tensor[1].max().item() == 0.0


def test_portrait_is_rotated_counter_clockwise(ours):
    """The top-left of a portrait crop ends up bottom-left of the landscape tensor."""
    rgb = np.zeros((1280, 720, 3), np.uint8)
    # Resized 1.5x to 1920x1080, the centre crop keeps rows 320-1600, cols 180-900:
    # original rows 220-260, cols 130-170 land near the crop's top-left corner.
    rgb[220:260, 130:170] = 255
    tensor = ours(Image.fromarray(rgb))['input'][0]
    assert tensor[:, 655:695, 20:60].min().item() == 1.0
    assert tensor[:, :100, :100].max().item() == 0.0


def test_other_array_dtypes_follow_the_documented_conventions(ours):
    bgr8 = make_image(300, 400, seed=10)
    expected = ours(bgr8)['input']
    as_uint16 = bgr8.astype(np.uint16) * 257
    as_float = bgr8.astype(np.float32) / 255
    assert torch.equal(ours(as_uint16)['input'], expected)
    assert torch.equal(ours(as_float)['input'], expected)
    assert torch.equal(ours(bgr8[:, :, :1])['input'], ours(bgr8[:, :, 0])['input'])


@pytest.mark.parametrize('array', [
    np.zeros((10, 10, 2), np.uint8), np.zeros((2, 10, 10, 3), np.uint8),
    np.zeros((10, 10, 3), np.int64), np.full((10, 10, 3), 1.5, np.float32),
    np.full((10, 10), np.nan, np.float32), np.zeros((0, 10, 3), np.uint8)
], ids=['2ch', '4d', 'int64', 'float>1', 'nan', 'empty'])
def test_unsupported_arrays_are_refused(ours, array):
    with pytest.raises(UnsupportedArrayError, match='array'):
        ours(array)


def test_unreadable_files_name_the_file(tmp_path, ours):
    text = tmp_path / 'notes.jpg'
    text.write_text('not an image')
    for path, reason in ((tmp_path / 'missing.png', 'no such file'), (text, 'not a recognised'),
                         (tmp_path, 'directory')):
        with pytest.raises(UnreadableImageError, match=reason) as info:
            ours(str(path))
        assert str(path) in str(info.value)


def test_options_come_from_the_configuration():
    config = PreprocessConfig.from_mapping()
    assert config.resize_size == (1080, 1920)
    assert config.crop_size == (720, 1280)
    assert config.channel_order == 'BGR'
    small = ImageQualityAssessmentMosPreprocessor(resize_size=[270, 480], crop_size=[180, 320])
    assert small(make_image(300, 400, seed=1))['input'].shape == (1, 3, 180, 320)
    with pytest.raises(ValueError, match='interpolation'):
        ImageQualityAssessmentMosPreprocessor(interpolation='nearest')
    with pytest.raises(ValueError, match='unknown preprocessor option'):
        PreprocessConfig.from_mapping({'mean': [0.5]})


def test_dataset_options_refuse_unknown_keys_and_keep_modelscopes():
    from modelscope_iqa.config import DatasetConfig
    config = DatasetConfig.from_mapping({'mos_scale': 0.25, 'train': {'x': 1}, 'name': 'n'})
    assert config.mos_scale == 0.25 and config.target('4') == 1.0
    with pytest.raises(ValueError, match="unknown dataset option 'mos_scael'"):
        DatasetConfig.from_mapping({'mos_scael': 0.25})
