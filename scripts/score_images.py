"""Score image files with the embedded default model (or --model DIR) and print
``score<TAB>path`` per file, best first."""
import argparse
import sys

import modelscope_iqa
from modelscope.outputs import OutputKeys
from modelscope.pipelines import pipeline
from modelscope.utils.constant import Tasks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('images', nargs='+', help='image files')
    parser.add_argument('--model', default=modelscope_iqa.DEFAULT_MODEL_DIR,
                        help='model directory (default: the embedded default model)')
    args = parser.parse_args(argv)
    scorer = pipeline(Tasks.image_quality_assessment_mos, model=args.model)
    scores = [(scorer(path)[OutputKeys.SCORE], path) for path in args.images]
    for score, path in sorted(scores, reverse=True):
        print(f'{score:.4f}\t{path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
