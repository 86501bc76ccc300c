"""Resuming a result file, without processes: reading rows changes no file, a partial last
line is cut once and on purpose, and :func:`plan_resume` says what to append and what is
left to score (the command-line runs of it are in test_cli, test_faults and
test_distributed)."""
import json

import pytest

from modelscope_iqa.cli.results import ResultWriter, RunOutput, plan_resume, read_rows
from modelscope_iqa.cli.results import formats, run_output
from modelscope_iqa.errors import OutputError
from modelscope_iqa.identity import ModelIdentity

OURS = ModelIdentity('ab' * 32, '1.0')
OTHER = ModelIdentity('cd' * 32, None)
FIELDS = ['path', 'score', 'error', 'frames', 'frame', 'time', 'model_version',
          'model_sha256']


def row(path, score='0.5', frame=None, identity=OURS, **columns):
    """A row as it is read back from a CSV file (every value a string)."""
    fields = {key: value or '' for key, value in identity.fields().items()}
    return {'path': path, 'score': score, 'error': '', 'frames': '',
            'frame': '' if frame is None else str(frame), 'time': '', **fields, **columns}


def video(path, frames, identity=OURS):
    """A video's rows as ``--per-frame`` writes them: its frames, then its own row."""
    return [row(path, '0.25', frame=i, identity=identity) for i in range(frames)] + [
        row(path, '0.25', frames=str(frames), identity=identity)]


def paths(rows):
    return [(r['path'], r['frame']) for r in rows]


# --- reading and repairing files ----------------------------------------------------

@pytest.mark.parametrize('name', ['scores.csv', 'scores.jsonl'])
def test_reading_leaves_a_partial_last_line_in_place_and_repair_cuts_it_once(tmp_path,
                                                                            name):
    output = str(tmp_path / name)
    writer = ResultWriter(output, FIELDS, stamp=OURS.fields())
    writer.write({'path': 'a.jpg', 'score': 0.5})
    writer.write({'path': 'b.jpg', 'score': 0.75})
    writer.close()
    with open(output, 'a', encoding='utf-8') as f:
        f.write('c.jpg,0.2' if name.endswith('.csv') else '{"path": "c.jp')  # killed mid-row
    before = open(output, 'rb').read()
    first, second = read_rows(output), read_rows(output)
    assert open(output, 'rb').read() == before  # reading is no repair
    assert first == second and [r['path'] for r in first] == ['a.jpg', 'b.jpg']
    assert float(first[1]['score']) == 0.75 and first[1]['model_sha256'] == OURS.short_sha256
    assert formats.drop_partial_last_line(output) is True
    assert open(output, 'rb').read() == before[:before.rindex(b'\n') + 1]
    assert formats.drop_partial_last_line(output) is False  # once
    assert read_rows(output) == first


def test_a_missing_or_half_written_file_has_no_rows(tmp_path):
    assert read_rows(str(tmp_path / 'absent.csv')) == []
    assert formats.drop_partial_last_line(str(tmp_path / 'absent.csv')) is False
    header_only = tmp_path / 'cut.csv'
    header_only.write_text('path,sco')  # killed while writing the header
    assert read_rows(str(header_only)) == []
    part = tmp_path / 'scores.jsonl.rank0.part'  # a part file: its format is the output's
    part.write_text(json.dumps(row('a.jpg')) + '\n')
    assert read_rows(str(part), like='scores.jsonl') == [row('a.jpg')]


# --- planning -------------------------------------------------------------------------

def test_inputs_in_the_output_are_not_scored_again():
    output = [row('a.jpg'), row('b.jpg', score='', error='b.jpg: unreadable')]
    plan = plan_resume(output, [], ['a.jpg', 'b.jpg', 'c.jpg', 'd.jpg'], OURS)
    assert plan.append == [] and plan.todo == ['c.jpg', 'd.jpg'] and plan.done == 2


def test_frame_rows_precede_the_whole_file_row_and_an_unfinished_video_is_rescored():
    inputs = ['a.mp4', 'b.mp4', 'c.jpg']
    finished = video('a.mp4', 3)
    unfinished = video('b.mp4', 4)[:2]  # killed before its own row: not complete
    plan = plan_resume([], unfinished + finished + [row('c.jpg')], inputs, OURS)
    assert paths(plan.append) == [('a.mp4', '0'), ('a.mp4', '1'), ('a.mp4', '2'),
                                  ('a.mp4', ''), ('c.jpg', '')]
    assert plan.append[:4] == finished
    assert plan.todo == ['b.mp4'] and plan.done == 2


def test_frame_rows_of_an_unfinished_video_in_the_output_do_not_complete_it():
    output = video('a.mp4', 3)[:2]
    plan = plan_resume(output, [], ['a.mp4'], OURS)
    assert plan.todo == ['a.mp4'] and plan.done == 0


@pytest.mark.parametrize('where', ['output', 'part file'])
@pytest.mark.parametrize('identity', [OTHER, None])
def test_rows_of_other_weights_or_of_none_are_refused(where, identity):
    stranger = row('b.jpg', identity=OTHER)
    if identity is None:  # written by a version that recorded no identity
        stranger = {k: v for k, v in stranger.items() if not k.startswith('model_')}
    output, parts = [row('a.jpg')], [row('c.jpg')]
    (output if where == 'output' else parts).append(stranger)
    with pytest.raises(OutputError) as refusal:
        plan_resume(output, parts, ['a.jpg', 'b.jpg', 'c.jpg'], OURS, 'scores.csv',
                    'scores.csv.rank*.part')
    source = 'scores.csv' if where == 'output' else 'scores.csv.rank*.part'
    recorded = OTHER.short_sha256 if identity else 'no model identity (an older version)'
    assert str(refusal.value).startswith(
        f"{source!r}: its rows were written by other weights ({recorded}), not by this "
        f'model 1.0 ({OURS.short_sha256})')


def test_the_part_files_are_checked_before_the_output():
    with pytest.raises(OutputError, match=r"^'parts': its rows"):
        plan_resume([row('a.jpg', identity=OTHER)], [row('b.jpg', identity=OTHER)],
                    ['a.jpg', 'b.jpg'], OURS, 'output', 'parts')


def test_inputs_of_an_earlier_run_with_other_arguments_come_last_in_their_own_order():
    parts = [row('old2.jpg'), row('b.jpg'), row('old1.jpg'), row('a.jpg')]
    plan = plan_resume([], parts, ['a.jpg', 'b.jpg', 'c.jpg'], OURS)
    assert [r['path'] for r in plan.append] == ['a.jpg', 'b.jpg', 'old2.jpg', 'old1.jpg']
    assert plan.todo == ['c.jpg'] and plan.done == 4


def test_nothing_is_repeated():
    """Ranks sharing a file system read the same part files (each row twice), and a
    part file may hold an input the output already has."""
    output = [row('a.jpg', score='0.1')]
    one_rank = [row('a.jpg', score='0.9'), *video('v.mp4', 2), row('b.jpg')]
    plan = plan_resume(output, one_rank + one_rank, ['a.jpg', 'b.jpg', 'v.mp4', 'c.jpg'],
                       OURS)
    assert paths(plan.append) == [('b.jpg', ''), ('v.mp4', '0'), ('v.mp4', '1'),
                                  ('v.mp4', '')]
    assert plan.todo == ['c.jpg'] and plan.done == 3
    # what is appended and what is scored never overlap, and with the output cover all
    appended = {r['path'] for r in plan.append}
    assert not appended & set(plan.todo) and not appended & {'a.jpg'}


# --- the thin class over the files, in one process ------------------------------------

def test_resume_reads_the_output_once_repairs_it_and_folds_in_the_parts(tmp_path,
                                                                       monkeypatch):
    output = str(tmp_path / 'scores.csv')
    writer = ResultWriter(output, FIELDS)
    writer.write(row('a.jpg'))
    writer.close()
    with open(output, 'a') as f:
        f.write('b.jpg,0.')  # killed mid-row
    part = ResultWriter(output + '.rank1.part', FIELDS, like=output)
    for r in video('v.mp4', 2) + [row('a.jpg', score='0.9')]:
        part.write(r)
    part.close()
    reads = []
    monkeypatch.setattr(run_output, 'read_rows',
                        lambda path, **kw: reads.append(path) or read_rows(path, **kw))
    run = RunOutput(output, FIELDS, resume=True, identity=OURS)
    try:
        todo = run.start(['a.jpg', 'b.jpg', 'v.mp4', 'c.jpg'])
    finally:
        run.close()
    assert todo == ['b.jpg', 'c.jpg']
    assert reads.count(output) == 1
    assert read_rows(output) == [row('a.jpg'), *video('v.mp4', 2)]
    assert open(output).read().endswith('\n')  # the half row is gone, nothing glued to it
    assert sorted(p.name for p in tmp_path.iterdir()) == ['scores.csv']  # part and lock


def test_a_refused_resume_changes_no_file(tmp_path):
    output = tmp_path / 'scores.csv'
    writer = ResultWriter(str(output), FIELDS)
    writer.write(row('a.jpg', identity=OTHER))
    writer.close()
    with open(output, 'a') as f:
        f.write('b.jpg,0.')
    before = output.read_bytes()
    run = RunOutput(str(output), FIELDS, resume=True, identity=OURS)
    with pytest.raises(OutputError, match='written by other weights'):
        run.start(['a.jpg', 'b.jpg'])
    run.close()
    assert output.read_bytes() == before  # not even the partial line is cut
