"""Build the embedded default model, reproducibly, from freely licensed photos.

    pip install -e ".[train]"          # BRISQUE for the report; apt-get for the photos
    python -m default_model_build all --work-dir WORK --seed 0

Each step runs alone too (``python -m default_model_build STEP --work-dir WORK``); ``all``
runs them in this order, which builds the shipped model:

  photos     apt-get download + dpkg -x the Debian wallpaper packages, pick the
             photographs (recipes/photos.yaml), bring each to the model's working
             scale (1080x1920; smaller photos stay as they are), split them by whole
             photo into train, holdout and audit, and draw dead-leaves charts for
             training.
  valset     degrade every holdout photo (WORK/valset) and every audit photo
             (WORK/auditset) by each family at severities 1-4, plus the pristine photo,
             and write the images and a CSV with their targets.
  train      stage 1 (recipes/1_train.yaml): random degraded crops, from a seeded random
             initialisation.
  pack       stage 1's best epoch in float16 -> WORK/model, the candidate.
  finetune   stage 2 (recipes/2_finetune.yaml): ladders of one window at rising
             severities of one family, L1 + a pairwise ranking hinge.
  refine, regrid, expose, extend, reexpose
             stages 3-7 (recipes/3_refine.yaml ... 7_reexpose.yaml), each continuing
             the stage before it. The ladder stages run on a GPU when there is one
             (--device) and resume from their last epoch checkpoint.
  calibrate  fit sigmoid(a * logit + b) on the validation set and fold it into the last
             stage's weights (recipes/calibration.yaml) -> WORK/model.
  brisque    score both held-out sets with BRISQUE (cached; needs the train extra).
  report     score each held-out set with WORK/model and with BRISQUE: report.json, .md,
             .png (holdout), audit_report.* (audit).
  export     copy WORK/model's weights into modelscope_iqa/default_model/.
  golden     score the committed samples with the exported weights (exact mode) and write
             tests/golden/default_model_samples.json with the weights' SHA-256.

The whole recipe is recipes/: one file a stage, each with every setting of its stage,
why it is so, and where it ran and how long; calibration.yaml; photos.yaml, the photo
catalogue. Stages 1, 2 and 6 are not bit-reproducible (stage 1 ran with its head under
bf16; GPU training is not deterministic): a rebuild gives close, not identical, weights.
``python -m default_model_build.report_by_scene_key WORK`` splits a report's measures by
how dark each clean photo is.

This package runs from the checkout (``pip install .`` installs modelscope_iqa only).
"""
from pathlib import Path

# The checkout: samples/, tests/golden/ and the package the build exports into.
REPO = Path(__file__).resolve().parent.parent
