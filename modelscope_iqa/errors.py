"""Exception types raised by modelscope_iqa.

Every error names the offending input (file, checkpoint or hub id) in its message, so a
caller scoring thousands of files can tell which one failed and why.
"""


class IqaError(Exception):
    """Base class of every error this package raises on purpose."""


class InputError(IqaError, ValueError):
    """An image input that cannot be scored (unreadable, unsupported, corrupt)."""


class UnreadableImageError(InputError):
    """A file or URL that does not exist, cannot be read, or does not decode as an image."""


class UnreadableVideoError(UnreadableImageError):
    """A file named like a video that is missing, is not a video (an image, audio only),
    or whose sampled frames do not all decode."""


class NoInputsError(IqaError, ValueError):
    """Command-line inputs (folders, globs) in which no image or video file was found."""


class UnsupportedArrayError(InputError):
    """A numpy array whose shape or dtype has no documented meaning as an image."""


class CheckpointError(IqaError):
    """A weights file that is missing, not a state dict, or does not fit the network."""


class ModelFolderError(IqaError):
    """A model folder that lacks a configuration.json or a weights file, a model that is
    neither a folder nor a hub id, or an unusable exported model file."""


# Deprecated: its name up to version 0.3.0, kept so that code catching it still works.
ModelDirError = ModelFolderError


class HubUnreachableError(IqaError, ConnectionError):
    """A hub model id was given but the ModelScope hub could not be reached."""


class DatasetError(IqaError, ValueError):
    """Evaluation or training data with missing columns or values."""


class OutputError(IqaError, OSError):
    """An output file or folder cannot be written."""


class ExportError(IqaError):
    """An exported model that does not give our scores (it is not written)."""


class MissingExtraError(IqaError, ImportError):
    """An optional dependency is not installed; the message names the extra that
    installs it."""

    def __init__(self, needed_for: str, extra: str):
        super().__init__(f'{needed_for}: install the {extra!r} extra ({install_extra(extra)})')


def install_extra(extra: str) -> str:
    """How to install one of the package's extras: it is installed from its source
    folder (it is not on PyPI)."""
    return f'in the modelscope-iqa folder: .venv/bin/pip install ".[{extra}]"'

