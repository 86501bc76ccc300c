from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def read_version() -> str:
    """``VERSION`` in modelscope_iqa/config.py (read as text: setup.py runs before the
    package's dependencies are installed)."""
    for line in (HERE / 'modelscope_iqa' / 'config.py').read_text().splitlines():
        if line.startswith('VERSION ='):
            return line.split('=')[1].strip().strip("'\"")
    raise RuntimeError('VERSION not found in modelscope_iqa/config.py')


# ModelScope's trainer, pipeline and dataset modules import these at run time although
# ModelScope lists them only under its (very large) `cv` extra.
MODELSCOPE_RUNTIME = [
    'modelscope>=1.40.2,<1.41',
    'addict',
    'simplejson>=3.3.0',
    'sortedcontainers>=1.5.9',
    'PyYAML>=5.4',
    'python-dateutil>=2.1',
    # ModelScope 1.40's cv extra pins datasets<=4.8.4; datasets 5 needs a
    # huggingface-hub that other ModelScope users' transformers cannot take.
    'datasets>=4.0.0,<=4.8.4',
]

# The demo page (modelscope-iqa demo, app.py). Gradio 6 moved options to launch().
DEMO = ['gradio>=6,<7']
# ONNX export (torch's exporter needs onnxscript) and onnxruntime scoring; the versions
# tested here.
ONNX = ['onnx>=1.23', 'onnxscript>=0.7', 'onnxruntime>=1.32']
# Scoring data sets on Ray Data (modelscope_iqa.ray, score --engine ray); the version
# tested here.
RAY = ['ray[data]>=2.60']

setup(
    name='modelscope-iqa',
    version=read_version(),
    description='No-reference image quality assessment (MOS) for user-generated '
    'photos and videos, as a ModelScope plugin',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.10',  # Gradio 6 (the demo) and Selenium need 3.10
    packages=find_packages(include=['modelscope_iqa', 'modelscope_iqa.*']),
    package_data={'modelscope_iqa': ['default_model/*', 'demo/examples/*']},
    install_requires=MODELSCOPE_RUNTIME + [
        'torch>=2.1',
        'torchvision>=0.16',
        'numpy>=1.24',
        'av>=18',  # video decoding; its wheels bundle FFmpeg
        'scipy>=1.10',
        'Pillow>=10.1',  # ImageFont.load_default(size=...) for the quality maps
        'opencv-python-headless>=4.8',
        'matplotlib>=3.5',
        'tqdm',
    ],
    entry_points={'console_scripts': ['modelscope-iqa = modelscope_iqa.cli.main:main']},
    extras_require={
        'demo': DEMO,
        'onnx': ONNX,
        'ray': RAY,
        # tests/test_demo.py drives the page in Chromium (Debian's chromium and
        # chromium-driver) through Selenium
        # lint-imports checks the package's layers (.importlinter)
        'test': ['pytest>=7', 'hypothesis>=6,<7', 'selenium>=4.10', 'import-linter>=2.17,<3']
        + DEMO + ONNX + RAY,
        # python -m default_model_build: the BRISQUE baseline of its report
        'train': ['brisque==0.2.0', 'scikit-image'],
    },
)
