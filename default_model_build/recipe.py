"""The default model's recipe: one YAML file a stage in ``recipes/``, loaded into typed
dataclasses that refuse unknown, missing and mistyped keys.

``recipes/N_NAME.yaml`` is training stage N, run by the build's step NAME; each holds
every setting of its stage, including the stage it starts from, which must be the one
before it. ``recipes/calibration.yaml`` is the calibration that follows the last stage.
The build takes every training setting from these files; from ``configuration.json``
(the model's deployment configuration, and the defaults of a user's fine-tuning) it takes
only the trainer's plumbing: hooks, the evaluation metric, the data loaders' shuffling.
"""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Literal, Mapping, Tuple, Union

import yaml

from modelscope_iqa.synthetic.distortions import FAMILIES

from .photos import PHOTO_SETS

RECIPES_DIR = Path(__file__).resolve().parent / 'recipes'
CALIBRATION_FILE = 'calibration.yaml'
# What the first stage starts from: a seeded random initialisation.
RANDOM_INIT = 'random'
# Settings a command line may not override: they chain the stages and record them.
FIXED_SETTINGS = frozenset({'starts_from', 'seed_offset', 'hands_on', 'dataset', 'ran'})


@dataclass(frozen=True)
class Stage:
    """Every setting of a training stage (the YAML keys, in the files' order).
    ``name`` and ``order`` come from the file name, not from its keys."""
    name: str
    order: int
    # What it starts from: RANDOM_INIT or the name of the stage before it; and what it
    # hands on: its best epoch by SRCC (WORK/NAME/output_best) or its last (WORK/NAME/output).
    starts_from: str
    seed_offset: int
    hands_on: Literal['best_epoch', 'last_epoch']
    # The data: the dataset class, its photos and crops, one epoch's iterations.
    dataset: Literal['SyntheticDistortionDataset', 'SyntheticLadderDataset']
    photo_sets: Tuple[str, ...]
    crop_size: Tuple[int, int]
    iters_per_epoch: int
    # The trainer: configuration.json's model and train sections are set from these.
    epochs: int
    batch_size: int
    workers: int
    optimizer: str
    lr: float
    lr_scheduler: Literal['CosineAnnealingLR']
    train_precision: Literal['fp32', 'bf16', 'fp16']
    l1_loss_weight: float
    rank_loss_weight: float
    rank_margin_cap: float
    rank_cross_min_gap: float
    freeze_batchnorm: bool
    # Where it ran and how long: a record, which the build does not read.
    ran: str

    def __post_init__(self):
        unknown = set(self.photo_sets) - set(PHOTO_SETS)
        if unknown or not self.photo_sets:
            raise ValueError(f'{self.name}: photo_sets must name some of {list(PHOTO_SETS)}, '
                             f'got {list(self.photo_sets)}')
        for key in ('iters_per_epoch', 'epochs', 'batch_size'):
            if getattr(self, key) < 1:
                raise ValueError(f'{self.name}: {key} must be >= 1, got {getattr(self, key)}')
        if self.workers < 0 or self.seed_offset < 0 or self.lr <= 0:
            raise ValueError(f'{self.name}: workers and seed_offset must be >= 0 and lr > 0')

    @classmethod
    def overridable(cls) -> frozenset:
        """The settings a command line may override (all but the chain's and the record's)."""
        return frozenset(f.name for f in dataclasses.fields(cls)) - FIXED_SETTINGS - {
            'name', 'order'}

    def with_overrides(self, overrides: Mapping[str, Any]) -> 'Stage':
        """This stage with ``overrides`` (setting -> value, e.g. from the command line)
        applied, converted as the file's values are. ``family_weights`` given in part
        change only the families they name."""
        known = self.overridable()
        unknown = set(overrides) - known
        if unknown:
            raise ValueError(f'{self.name}: no setting {sorted(unknown)}; its settings: '
                             f'{sorted(known)}')
        hints = typing.get_type_hints(type(self))
        changes = {}
        for key, value in overrides.items():
            if key == 'family_weights':
                value = {**self.family_weights, **value}
            changes[key] = _convert(hints[key], value, f'{self.name}: {key}')
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class LadderStage(Stage):
    """A stage of ladders (SyntheticLadderDataset): groups of ``rungs`` views of one
    window (the most detailed of ``windows`` random ones) at rising severities of one
    family, exposure faults relative to the whole photo's key."""
    rungs: int
    scales: Tuple[float, ...]
    mixture_share: float
    windows: int
    dead_leaves_charts: int
    family_weights: Dict[str, float]
    grid_period: int

    def __post_init__(self):
        super().__post_init__()
        if set(self.family_weights) != set(FAMILIES):
            raise ValueError(f'{self.name}: family_weights must give every family '
                             f'{sorted(FAMILIES)} its weight, got {sorted(self.family_weights)}')


STAGE_CLASSES = {'SyntheticDistortionDataset': Stage, 'SyntheticLadderDataset': LadderStage}


@dataclass(frozen=True)
class Calibration:
    """``sigmoid(a * logit + b)`` fitted after the last stage (calibration.py)."""
    # The stage whose weights it calibrates: the last one.
    starts_from: str
    # Each degraded committed sample must score this far below the pristine one.
    sample_margin: float
    # The fit keeps sample_margin + margin_room (room for the fold's float16 rounding).
    margin_room: float
    pristine_sample: str
    # Where a kept fit is searched, and the grid's steps (a, then b).
    scale_range: Tuple[float, float]
    shift_range: Tuple[float, float]
    grid_step: Tuple[float, float]
    lbfgs_max_iter: int

    @property
    def margin(self) -> float:
        """The margin the fit keeps between the samples."""
        return self.sample_margin + self.margin_room


def _convert(hint, value, where: str):
    """``value`` (from YAML or JSON) as the type ``hint`` says, or ValueError."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is bool:
        ok = isinstance(value, bool)
    elif hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif hint is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif hint is str:
        ok = isinstance(value, str)
    elif origin is Literal:
        ok = value in args
    elif origin is tuple and isinstance(value, (list, tuple)):
        items = args[:1] * len(value) if args[-1] is Ellipsis else args
        if len(items) != len(value):
            raise ValueError(f'{where}: expected {len(items)} values, got {value!r}')
        return tuple(_convert(h, v, where) for h, v in zip(items, value))
    elif origin is dict and isinstance(value, Mapping):
        return {_convert(args[0], k, where): _convert(args[1], v, f'{where}.{k}')
                for k, v in value.items()}
    else:
        ok = False
    if not ok:
        raise ValueError(f'{where}: expected {_name(hint)}, got {value!r}')
    return value


def _name(hint) -> str:
    return getattr(hint, '__name__', None) or str(hint).replace('typing.', '')


def from_mapping(cls, data: Mapping[str, Any], source: str, **given):
    """``cls`` from a file's mapping: every field but those ``given`` must be there,
    nothing else may be."""
    if not isinstance(data, Mapping):
        raise ValueError(f'{source}: expected a mapping of settings, got {type(data).__name__}')
    hints = typing.get_type_hints(cls)
    expected = [f.name for f in dataclasses.fields(cls) if f.name not in given]
    unknown = sorted(set(data) - set(expected))
    missing = [key for key in expected if key not in data]
    if unknown:
        raise ValueError(f'{source}: unknown settings {unknown}; expected {expected}')
    if missing:
        raise ValueError(f'{source}: missing settings {missing}')
    values = {key: _convert(hints[key], data[key], f'{source}: {key}') for key in expected}
    return cls(**values, **given)


def _read(path: Path) -> Any:
    with open(path, encoding='utf-8') as f:
        return yaml.safe_load(f)


def load_stage(path: Union[str, Path]) -> Stage:
    """One stage's recipe, ``N_NAME.yaml``."""
    path = Path(path)
    order, sep, name = path.stem.partition('_')
    if not (sep and order.isdigit() and name):
        raise ValueError(f'{path}: a stage recipe is named N_STEP.yaml')
    data = _read(path)
    dataset = data.get('dataset') if isinstance(data, Mapping) else None
    if dataset not in STAGE_CLASSES:
        raise ValueError(f'{path}: dataset must be one of {sorted(STAGE_CLASSES)}, '
                         f'got {dataset!r}')
    return from_mapping(STAGE_CLASSES[dataset], data, str(path), name=name, order=int(order))


def check_chain(stages) -> None:
    """The stages are numbered 1, 2, ... and each starts from the one before it (the
    first from a random initialisation); ValueError otherwise."""
    if not stages:
        raise ValueError('no stage recipes')
    previous = RANDOM_INIT
    for number, stage in enumerate(stages, start=1):
        if stage.order != number:
            raise ValueError(f'stage {stage.name!r} is numbered {stage.order}, expected {number}')
        if stage.starts_from != previous:
            raise ValueError(f'stage {stage.name!r} starts from {stage.starts_from!r}, '
                             f'expected {previous!r} (the stage before it)')
        previous = stage.name


def load_stages(folder: Path = RECIPES_DIR) -> Tuple[Stage, ...]:
    """Every stage's recipe in ``folder``, in order, checked to chain."""
    stages = sorted((load_stage(p) for p in Path(folder).glob('[0-9]*_*.yaml')),
                    key=lambda s: s.order)
    check_chain(stages)
    return tuple(stages)


def stage(name: str, folder: Path = RECIPES_DIR) -> Stage:
    for candidate in load_stages(folder):
        if candidate.name == name:
            return candidate
    raise KeyError(f'no stage {name!r} in {folder}')


def load_calibration(folder: Path = RECIPES_DIR) -> Calibration:
    """The calibration's settings, checked to start from the last stage."""
    path = Path(folder) / CALIBRATION_FILE
    calibration = from_mapping(Calibration, _read(path), str(path))
    last = load_stages(folder)[-1].name
    if calibration.starts_from != last:
        raise ValueError(f'{path}: starts_from must be the last stage, {last!r}, '
                         f'got {calibration.starts_from!r}')
    return calibration
