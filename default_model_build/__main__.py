"""``python -m default_model_build STEP --work-dir WORK --seed SEED``: the command line."""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from . import __doc__ as BUILD_DOC
from .export import DEFAULT_EXPORT_DIR
from .recipe import load_stages
from .stages import Build, steps

LOG = logging.getLogger('default_model_build')


def parse_settings(items, steps_run) -> dict:
    """``['KEY=JSON', ...]`` -> ``{KEY: value}``, each KEY a setting of some training
    stage among ``steps_run`` (argparse's error otherwise)."""
    known = set().union(*(s.overridable() for s in load_stages() if s.name in steps_run))
    settings = {}
    for item in items:
        key, sep, text = item.partition('=')
        if not sep or key not in known:
            raise ValueError(f'--set {item!r}: expected KEY=JSON with KEY a setting of the '
                             f'training stages run ({sorted(known) or "none"})')
        try:
            settings[key] = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f'--set {item!r}: the value is not JSON ({exc})') from None
    return settings


def main(argv=None) -> int:
    ordered = steps()
    stages = load_stages()
    parser = argparse.ArgumentParser(prog='python -m default_model_build', description=BUILD_DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('step', choices=list(ordered) + ['all'])
    parser.add_argument('--work-dir', type=Path, required=True)
    parser.add_argument('--seed', type=int, default=0,
                        help="the build's seed; each stage adds its recipe's seed_offset")
    parser.add_argument('--epochs', type=int, help="override the training stages' epochs")
    parser.add_argument('--iters-per-epoch', type=int, help='override the training stages\' '
                        'iterations per epoch (' + ', '.join(
                            f'{s.name}: {s.iters_per_epoch}' for s in stages) + ')')
    parser.add_argument('--set', dest='settings', action='append', default=[],
                        metavar='KEY=JSON', help='override a setting of the training stages '
                        'run, in those whose recipe has it (a partial family_weights changes '
                        'the families it names), e.g. --set lr=0.0001 --set "scales=[1, 0.5]"')
    parser.add_argument('--device', help="the ladder stages: ModelScope's device ('cpu', "
                        "'gpu', 'cuda:0'); by default a GPU when there is one")
    parser.add_argument('--init', type=Path, help=f'{stages[1].name}: the weights it starts '
                        f'from (default: those {stages[0].name} hands on)')
    parser.add_argument('--export-dir', type=Path, default=DEFAULT_EXPORT_DIR)
    args = parser.parse_args(argv)
    run = list(ordered) if args.step == 'all' else [args.step]
    overrides = {k: v for k, v in (('epochs', args.epochs),
                                   ('iters_per_epoch', args.iters_per_epoch)) if v is not None}
    try:
        overrides.update(parse_settings(args.settings, run))
        # Each override converted (and checked) as its stages' recipes hold it.
        for recipe in stages:
            if recipe.name in run:
                recipe.with_overrides({k: v for k, v in overrides.items()
                                       if k in recipe.overridable()})
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format='%(asctime)s %(message)s')
    args.work_dir.mkdir(parents=True, exist_ok=True)
    build = Build(work_dir=args.work_dir, seed=args.seed, overrides=overrides,
                  device=args.device, init=args.init, export_dir=args.export_dir)
    for step in run:
        LOG.info('== %s', step)
        ordered[step](build)
    return 0


if __name__ == '__main__':
    sys.exit(main())
