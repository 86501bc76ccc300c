"""Result files of ``score``: CSV or JSON Lines by extension, one row per input (and per
frame with ``--per-frame``), each row flushed as written and recording the weights that
produced it; resuming, the output lock and the per-rank part files of multi-process
runs."""

from ..._lazy import lazy_namespace

# name -> the module that defines it, imported on first use
_EXPORTS = {
    'check_output_path': '.formats', 'read_rows': '.formats',
    'OutputLock': '.lock',
    'ResumePlan': '.resume', 'plan_resume': '.resume',
    'RunOutput': '.run_output',
    'ResultWriter': '.writer',
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_namespace(__name__, _EXPORTS)
