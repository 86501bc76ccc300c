"""The build's steps, in the order ``all`` runs them: each a small function of the
build's options (:class:`Build`)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Mapping, Optional

from . import calibration, export, heldout, photos, report, training
from .export import DEFAULT_EXPORT_DIR
from .recipe import LadderStage, Stage, load_stages


@dataclass(frozen=True)
class Build:
    """What the command line gives every step."""
    work_dir: Path
    seed: int = 0
    # Setting -> value, over each training stage's recipe (where it has that setting).
    overrides: Mapping[str, Any] = field(default_factory=dict)
    # ModelScope's device for the ladder stages; None: a GPU when there is one.
    device: Optional[str] = None
    # The weights the stage after the first starts from, in place of the first's.
    init: Optional[Path] = None
    export_dir: Path = DEFAULT_EXPORT_DIR


def recipe_for(build: Build, recipe: Stage) -> Stage:
    """``recipe`` with the build's overrides that it has settings for."""
    names = recipe.overridable()
    return recipe.with_overrides({k: v for k, v in build.overrides.items() if k in names})


def fetch_photos(build: Build) -> None:
    photos.fetch_photos(build.work_dir, build.seed)


def write_held_out_sets(build: Build) -> None:
    for held_out in heldout.HELD_OUT_SETS:
        heldout.write_validation_set(build.work_dir, build.seed, held_out)


def first_stage(build: Build) -> None:
    recipe = load_stages()[0]
    training.train_crops(build.work_dir, build.seed + recipe.seed_offset,
                         recipe=recipe_for(build, recipe))


def pack(build: Build) -> None:
    training.pack(build.work_dir, load_stages()[0].name)


def starting_weights(build: Build, recipe: Stage) -> Path:
    """The weights ``recipe`` starts from: those its ``starts_from`` stage hands on, or
    ``build.init`` where that stage is the first."""
    if build.init is not None and recipe.starts_from == load_stages()[0].name:
        return build.init
    return training.weights_of(build.work_dir, recipe.starts_from)


def ladder_stage(recipe: LadderStage) -> Callable[[Build], None]:
    """The step of a ladder stage: its recipe from its :func:`starting_weights`, ladders
    drawn with the build's seed + its ``seed_offset``."""

    def run(build: Build) -> None:
        training.train_ladders(build.work_dir, build.seed + recipe.seed_offset,
                               recipe=recipe_for(build, recipe),
                               init=starting_weights(build, recipe), device=build.device)

    run.__name__ = recipe.name
    run.__doc__ = f'Stage {recipe.order} (recipes/{recipe.order}_{recipe.name}.yaml).'
    return run


def calibrate(build: Build) -> None:
    calibration.calibrate(build.work_dir)


def brisque(build: Build) -> None:
    for held_out in heldout.present(build.work_dir):
        report.brisque_baseline(build.work_dir, held_out)


def write_reports(build: Build) -> None:
    for held_out in heldout.present(build.work_dir):
        report.report(build.work_dir, held_out)


def export_weights(build: Build) -> None:
    export.export(build.work_dir, build.export_dir)


def golden(build: Build) -> None:
    export.write_golden_scores(build.export_dir)


def steps() -> Dict[str, Callable[[Build], None]]:
    """Step name -> its function, in the order ``all`` runs them: the photos and held-out
    sets, stage 1 and its candidate, the ladder stages in their recipes' order, then the
    calibration (which replaces the candidate), the report and shipping."""
    stages = load_stages()
    ordered = {'photos': fetch_photos, 'valset': write_held_out_sets,
               stages[0].name: first_stage, 'pack': pack}
    ordered.update((s.name, ladder_stage(s)) for s in stages[1:])
    ordered.update({'calibrate': calibrate, 'brisque': brisque, 'report': write_reports,
                    'export': export_weights, 'golden': golden})
    return ordered
