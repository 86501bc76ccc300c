"""The demo page: what it computes (without a browser), its client API, and the page
itself driven in headless Chromium (Debian's chromium + chromium-driver, Selenium).

The browser tests skip where no Chromium is installed, unless
MODELSCOPE_IQA_REQUIRE_BROWSER=1 (``.ci/run`` sets it after installing Chromium), where
a missing browser fails them.
"""
import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from modelscope.outputs import OutputKeys
from modelscope.pipelines import pipeline
from modelscope.utils.constant import Tasks

from conftest import identity_columns, png_header_only
import modelscope_iqa
from modelscope_iqa import DEFAULT_MODEL_DIR
from modelscope_iqa.config import EXACT_PRECISION
from modelscope_iqa.demo import DemoScorer
from modelscope_iqa.demo.scoring import (SCORE_DECIMALS, comparison, example_images,
                                         table_rows, write_csv)
from modelscope_iqa.hub import load_model, open_model_folder
from modelscope_iqa.scoring import score_files
from modelscope_iqa.video.timeline import FIGURE_DPI, FIGURE_SIZE, LINE_COLOUR

SAMPLES = Path(__file__).resolve().parent.parent / 'samples'
PRISTINE, JPEG = SAMPLES / 'cups_pristine.jpg', SAMPLES / 'cups_jpeg_q12.jpg'
REQUIRE_BROWSER_ENV = 'MODELSCOPE_IQA_REQUIRE_BROWSER'
SERVER_START_S = 180
PAGE_WAIT_S = 120
LOOPBACK = ('127.0.0.1', '::1', 'localhost')
# The test video: 12 frames, 320 x 180, H.264; frame 5 is flat grey (a poor frame).
CLIP_FRAMES, CLIP_SIZE, GREY_FRAME = 12, (320, 180), 5
SAMPLED_FRAMES = [0, 2, 3, 5, 6, 8, 9, 11]  # 8 frames spread over 12
TIMELINE_SIZE = tuple(round(inches * FIGURE_DPI) for inches in FIGURE_SIZE)


@pytest.fixture(scope='module')
def exact_scores():
    iqa = pipeline(Tasks.image_quality_assessment_mos, model=DEFAULT_MODEL_DIR)
    return {path.name: iqa(str(path))[OutputKeys.SCORE] for path in SAMPLES.glob('*.jpg')}


@pytest.fixture(scope='module')
def bad_uploads(tmp_path_factory):
    """A text file, a truncated JPEG and a PNG whose header claims 10 gigapixels."""
    folder = tmp_path_factory.mktemp('bad_uploads')
    (folder / 'notes.jpg').write_text('this is not an image')
    (folder / 'truncated.jpg').write_bytes(PRISTINE.read_bytes()[:20000])
    png_header_only(folder / 'huge.png', 100_000, 100_000)
    return [folder / 'notes.jpg', folder / 'truncated.jpg', folder / 'huge.png']


@pytest.fixture(scope='module')
def clip(tmp_path_factory):
    """A small H.264 video: a gradient and a checkerboard drifting, one grey frame."""
    import av
    path = tmp_path_factory.mktemp('clip') / 'clip.mp4'
    width, height = CLIP_SIZE
    y, x = np.mgrid[0:height, 0:width]
    with av.open(str(path), 'w') as output:
        stream = output.add_stream('libx264', rate=12)
        stream.width, stream.height, stream.pix_fmt = width, height, 'yuv420p'
        for number in range(CLIP_FRAMES):
            shifted = x + 8 * number
            pixels = np.stack([shifted * 255 // (width + 8 * CLIP_FRAMES), y * 255 // height,
                               (shifted // 20 + y // 20) % 2 * 255], axis=-1)
            if number == GREY_FRAME:
                pixels = np.full_like(pixels, 128)
            frame = av.VideoFrame.from_ndarray(pixels.astype(np.uint8), format='rgb24')
            output.mux(stream.encode(frame))
        output.mux(stream.encode())
    return path


@pytest.fixture(scope='module')
def clip_as_scored(clip):
    """The clip as ``modelscope-iqa score`` scores it on the CPU by default: the default
    model in fp32, one crop a forward, decoded in a worker process, no maps."""
    folder = open_model_folder(DEFAULT_MODEL_DIR)
    network = load_model(folder).inference_network(EXACT_PRECISION, 'cpu',
                                                   folder.preprocess_config)
    result, = score_files(network, [str(clip)], folder.preprocess_config, workers=1)
    assert result.error is None and result.frame_numbers == SAMPLED_FRAMES
    return result


def _shown(score):
    return f'{score:.{SCORE_DECIMALS}f}'


def test_scorer_scores_as_the_pipeline_and_reports_bad_uploads(exact_scores, bad_uploads,
                                                               tmp_path):
    scorer = DemoScorer()
    results = scorer.score([str(JPEG), *map(str, bad_uploads), str(PRISTINE)])
    by_name = {r.name: r for r in results}
    assert by_name[PRISTINE.name].score == exact_scores[PRISTINE.name]
    assert by_name[JPEG.name].score == exact_scores[JPEG.name]
    assert by_name[PRISTINE.name].overlay.mode == 'RGB'
    assert 'not a recognised image format' in by_name['notes.jpg'].error
    assert 'corrupt image' in by_name['truncated.jpg'].error
    assert 'decompression-bomb limit' in by_name['huge.png'].error
    for bad in bad_uploads:  # errors name the upload, not the server's file
        assert str(bad.parent) not in by_name[bad.name].error
    # The table: best first, failures last; the CSV keeps every digit.
    rows = table_rows(results)
    assert [row[0] for row in rows[:2]] == [PRISTINE.name, JPEG.name]
    assert rows[0][1] == _shown(exact_scores[PRISTINE.name])
    assert [row[0] for row in rows[2:]] == [bad.name for bad in bad_uploads]
    with open(write_csv(results, str(tmp_path / 'scores.csv')), newline='') as f:
        written = list(csv.DictReader(f))
    assert float(written[0]['score']) == exact_scores[PRISTINE.name]
    assert written[-1]['score'] == '' and 'decompression' in written[-1]['error']
    assert comparison(by_name[JPEG.name], by_name[PRISTINE.name]).startswith(
        f'**{PRISTINE.name}** ({rows[0][1]}) scores higher than **{JPEG.name}**')
    assert 'could not be scored' in comparison(by_name['notes.jpg'], by_name[JPEG.name])


def test_scorer_scores_a_video_as_the_command(clip, clip_as_scored, exact_scores,
                                               tmp_path):
    zeros = tmp_path / 'zeros.mp4'
    zeros.write_bytes(bytes(64))
    video, broken, photo = DemoScorer().score([str(clip), str(zeros), str(PRISTINE)])
    assert video.is_video and video.score == clip_as_scored.score
    assert video.frame_numbers == SAMPLED_FRAMES
    assert video.frame_scores == clip_as_scored.frame_scores
    assert video.frame_times == clip_as_scored.frame_times
    assert video.frame_times[1] == pytest.approx(2 / 12)
    assert video.pooling == 'mean'
    assert video.score == sum(video.frame_scores) / len(video.frame_scores)
    # The worst frame is the grey one, and its map is that frame's.
    assert video.statistics.worst_frame == GREY_FRAME
    assert video.quality_map.score == min(video.frame_scores)
    assert min(video.frame_scores) < 0.5 < video.score
    assert video.quality_map.grid.shape == (23, 40)
    assert video.quality_map.photo.shape == (*CLIP_SIZE[::-1], 3)
    assert (abs(video.quality_map.photo.astype(int) - 128) <= 4).all()  # the grey frame
    # The timeline plot: the size --timeline draws, with the frame scores' line on it.
    timeline = np.asarray(video.timeline)
    assert video.timeline.mode == 'RGB' and video.timeline.size == TIMELINE_SIZE
    line = tuple(int(LINE_COLOUR[i:i + 2], 16) for i in (1, 3, 5))
    assert (timeline == line).all(axis=-1).sum() > 1000
    # On the page: the timeline above the worst frame's map, and what they show.
    panel = np.asarray(video.video_panel)
    assert panel.shape[1] == TIMELINE_SIZE[0] and panel.shape[0] > 2 * TIMELINE_SIZE[1]
    assert (panel[:TIMELINE_SIZE[1]] == timeline).all()
    assert video.video_caption() == (
        f'clip.mp4: {_shown(video.score)}, the mean of 8 frames; below, its worst frame '
        f'({GREY_FRAME}, at {GREY_FRAME / 12:.2f} s): {min(video.frame_scores):.3f}')
    # A photo beside it is scored as before; a broken video is a row with its error.
    assert not photo.is_video and photo.timeline is None and photo.video_panel is None
    assert photo.score == exact_scores[PRISTINE.name]
    assert broken.score is None and not broken.is_video and broken.timeline is None
    assert broken.error.startswith("'zeros.mp4': cannot open as a video")
    rows = table_rows([video, broken, photo])
    assert [clip.name, _shown(video.score), ''] in rows[:2]
    assert rows[2][:2] == ['zeros.mp4', ''] and rows[2][2] == broken.error


def test_the_examples_are_the_committed_samples():
    examples = example_images()
    assert sorted(Path(path).name for path in examples) == sorted(
        path.name for path in SAMPLES.glob('*.jpg'))
    for path in examples:
        assert Path(path).read_bytes() == (SAMPLES / Path(path).name).read_bytes()


def test_demo_without_gradio_says_how_to_install_it(tmp_path):
    """The command names the extra to install when Gradio is missing."""
    blocker = tmp_path / 'gradio.py'
    blocker.write_text('raise ImportError("no gradio here")\n')
    result = subprocess.run(
        [sys.executable, '-m', 'modelscope_iqa', 'demo', '--port', '1'],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, 'PYTHONPATH': str(tmp_path)})
    assert result.returncode == 3
    assert 'pip install ".[demo]"' in result.stderr


# --- the running page -------------------------------------------------------------

# Put first in the demo's process: records every connection to, and every name lookup
# of, a host that is not this machine.
AUDIT_HOOK = textwrap.dedent('''
    import sys
    LOOPBACK = {loopback!r}
    def record(event, args):
        if event == 'socket.connect' and isinstance(args[1], tuple):
            host = args[1][0]
        elif event == 'socket.getaddrinfo':
            host = args[0]
        else:
            return
        if host is not None and str(host) not in LOOPBACK:
            with open({log!r}, 'a') as f:
                f.write(f'{{event}} {{host}}\\n')
    sys.addaudithook(record)
''')
LAUNCH_DEMO = textwrap.dedent('''
    from modelscope_iqa.cli.main import main
    sys.exit(main(['demo', '--port', '{port}']))
''')


def test_the_audit_hook_records_remote_connections(tmp_path):
    """The check that the demo calls nowhere can fail: a lookup and a connection to
    other hosts are recorded (a TEST-NET address: nothing answers, nothing leaves)."""
    log = tmp_path / 'remote.log'
    attempt = textwrap.dedent('''
        import socket
        for call in (lambda: socket.getaddrinfo('example.invalid', 80),
                     lambda: socket.create_connection(('192.0.2.1', 9), timeout=0.2),
                     lambda: socket.create_connection(('127.0.0.1', 9), timeout=0.2)):
            try:
                call()
            except OSError:
                pass
    ''')
    subprocess.run([sys.executable, '-c',
                    AUDIT_HOOK.format(loopback=LOOPBACK, log=str(log)) + attempt],
                   check=True, timeout=60)
    # create_connection looks the address up before it connects
    assert log.read_text().splitlines() == ['socket.getaddrinfo example.invalid',
                                            'socket.getaddrinfo 192.0.2.1',
                                            'socket.connect 192.0.2.1']


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


@pytest.fixture(scope='module')
def demo_server(tmp_path_factory):
    pytest.importorskip('gradio')
    folder = tmp_path_factory.mktemp('demo_server')
    port, remote_log = _free_port(), folder / 'remote_connections.log'
    script = (AUDIT_HOOK.format(loopback=LOOPBACK, log=str(remote_log))
              + LAUNCH_DEMO.format(port=port))
    log = open(folder / 'server.log', 'w')
    server = subprocess.Popen([sys.executable, '-c', script], stdout=log,
                              stderr=subprocess.STDOUT)
    url = f'http://127.0.0.1:{port}/'
    deadline = time.monotonic() + SERVER_START_S
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).read()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail('the demo did not start: '
                            + (folder / 'server.log').read_text()[-2000:])
            time.sleep(0.5)
    yield url, remote_log
    server.terminate()
    server.wait(timeout=30)
    log.close()


@pytest.mark.slow
def test_client_api_scores_as_the_pipeline(demo_server, exact_scores, bad_uploads):
    from gradio_client import Client, handle_file
    url, remote_log = demo_server
    client = Client(url, verbose=False)
    result = client.predict(handle_file(str(PRISTINE)), api_name='/score')
    assert result['score'] == exact_scores[PRISTINE.name] and result['error'] is None
    identity = identity_columns(DEFAULT_MODEL_DIR)  # the weights behind the answer
    assert identity['model_version'] == modelscope_iqa.__version__
    assert {key: result[key] for key in identity} == identity
    assert set(result) == {'score', 'error', 'grid', *identity}  # a photo: no frames
    assert len(result['grid']) == 23 and len(result['grid'][0]) == 40
    bad = client.predict(handle_file(str(bad_uploads[0])), api_name='/score')
    assert bad['score'] is None and 'not a recognised image format' in bad['error']
    assert bad['model_sha256'] == identity['model_sha256']
    verdict, _, _ = client.predict(handle_file(str(JPEG)), handle_file(str(PRISTINE)),
                                   api_name='/compare')
    assert verdict.startswith(f'**{PRISTINE.name}**')
    assert not remote_log.exists(), remote_log.read_text()


@pytest.mark.slow
def test_client_api_scores_a_video_as_the_command(demo_server, clip, clip_as_scored,
                                                  tmp_path):
    from gradio_client import Client, handle_file
    url, remote_log = demo_server
    client = Client(url, verbose=False)
    result = client.predict(handle_file(str(clip)), api_name='/score')
    assert result['score'] == clip_as_scored.score and result['error'] is None
    assert result['frame_numbers'] == SAMPLED_FRAMES
    assert result['frame_scores'] == clip_as_scored.frame_scores
    assert result['frame_times'] == clip_as_scored.frame_times
    assert result['pooling'] == 'mean'
    assert len(result['grid']) == 23 and len(result['grid'][0]) == 40  # the worst frame's
    zeros = tmp_path / 'zeros.mp4'
    zeros.write_bytes(bytes(64))
    bad = client.predict(handle_file(str(zeros)), api_name='/score')
    assert bad['score'] is None and bad['frame_scores'] is None
    assert bad['error'].startswith("'zeros.mp4': cannot open as a video")
    assert not remote_log.exists(), remote_log.read_text()


@pytest.mark.slow
def test_readme_client_snippet_runs(demo_server, exact_scores, tmp_path, monkeypatch,
                                    capsys):
    from test_readme import python_blocks
    url, _ = demo_server
    snippet = python_blocks()[2]
    assert "Client('http://127.0.0.1:7860/'" in snippet
    monkeypatch.chdir(PRISTINE.parent.parent)  # the README's folder
    exec(compile(snippet.replace('http://127.0.0.1:7860/', url), 'README-client', 'exec'),
         {})
    assert capsys.readouterr().out.split() == [repr(exact_scores[PRISTINE.name]), 'None']


@pytest.fixture(scope='module')
def browser():
    chromium, driver = shutil.which('chromium'), shutil.which('chromedriver')
    if not (chromium and driver):
        if os.environ.get(REQUIRE_BROWSER_ENV) == '1':
            pytest.fail('Chromium and chromedriver are required here: '
                        'apt-get install chromium chromium-driver')
        pytest.skip('no Chromium: apt-get install chromium chromium-driver')
    pytest.importorskip('selenium')
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    options = Options()
    options.binary_location = chromium
    for argument in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
                     '--disable-gpu', '--window-size=1400,1800'):
        options.add_argument(argument)
    options.set_capability('goog:loggingPrefs', {'performance': 'ALL'})
    driver = webdriver.Chrome(service=Service(driver), options=options)
    yield driver
    driver.quit()


class Page:
    """The demo page in the browser, read as a user reads it."""

    def __init__(self, driver, url):
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait
        self.driver, self.url, self.by = driver, url, By
        self.wait = lambda condition: WebDriverWait(driver, PAGE_WAIT_S).until(condition)
        driver.get(url)
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, '#uploads input[type=file]'))

    def upload(self, element_id, *paths):
        field = self.driver.find_element(self.by.CSS_SELECTOR,
                                         f'#{element_id} input[type=file]')
        field.send_keys('\n'.join(str(path) for path in paths))

    def table(self):
        """The table's rows as shown: lists of cell texts (ARIA grid roles)."""
        rows = self.driver.find_elements(self.by.CSS_SELECTOR,
                                         '#results [role=row]:has([role=gridcell])')
        return [[cell.text for cell in row.find_elements(self.by.CSS_SELECTOR,
                                                          '[role=gridcell]')]
                for row in rows]

    def table_of(self, count):
        self.wait(lambda d: len(self.table()) == count)
        return self.table()

    def text(self, element_id):
        return self.driver.find_element(self.by.ID, element_id).text

    def shown(self, selector):
        """The elements matching ``selector`` that are displayed."""
        return [element for element in self.driver.find_elements(self.by.CSS_SELECTOR,
                                                                  selector)
                if element.is_displayed()]

    def requested_urls(self):
        urls = []
        for entry in self.driver.get_log('performance'):
            message = json.loads(entry['message'])['message']
            if message['method'] == 'Network.requestWillBeSent':
                urls.append(message['params']['request']['url'])
        return urls


@pytest.mark.slow
def test_the_page_in_chromium(demo_server, browser, exact_scores, bad_uploads, tmp_path):
    url, remote_log = demo_server
    page = Page(browser, url)
    browser.get_log('performance')  # from here on, every request the page makes

    # Two photos: the scores shown are the pipeline's, best first.
    page.upload('uploads', JPEG, PRISTINE)
    rows = page.table_of(2)
    assert rows == [[PRISTINE.name, _shown(exact_scores[PRISTINE.name]), ''],
                    [JPEG.name, _shown(exact_scores[JPEG.name]), '']]
    page.wait(lambda d: len(d.find_elements(page.by.CSS_SELECTOR, '#maps img')) >= 2)
    assert page.text('status') == '2 of 2 photos scored.'
    assert not page.shown('#videos img')  # photos only: no video section
    link = browser.find_element(page.by.CSS_SELECTOR, '#csv a[href]').get_attribute('href')
    downloaded = list(csv.DictReader(io.StringIO(
        urllib.request.urlopen(link, timeout=30).read().decode())))
    assert [(r['photo'], float(r['score'])) for r in downloaded] == [
        (PRISTINE.name, exact_scores[PRISTINE.name]), (JPEG.name, exact_scores[JPEG.name])]
    browser.save_screenshot(str(tmp_path / 'page.png'))
    assert (tmp_path / 'page.png').stat().st_size > 10_000

    # Bad uploads become rows with their reason; the page keeps working.
    page = Page(browser, url)
    page.upload('uploads', *bad_uploads, PRISTINE)
    rows = page.table_of(4)
    assert rows[0] == [PRISTINE.name, _shown(exact_scores[PRISTINE.name]), '']
    errors = {row[0]: row[2] for row in rows[1:]}
    assert 'not a recognised image format' in errors['notes.jpg']
    assert 'corrupt image' in errors['truncated.jpg']
    assert 'decompression-bomb limit' in errors['huge.png']
    assert page.text('status').startswith('1 of 4 photos scored. Could not score:')
    page = Page(browser, url)
    page.upload('uploads', JPEG)
    assert page.table_of(1) == [[JPEG.name, _shown(exact_scores[JPEG.name]), '']]

    # An example: one click scores a committed sample.
    page = Page(browser, url)
    first_example = sorted(exact_scores)[0]
    browser.find_element(page.by.XPATH, f"//*[@id='examples']//button[contains(., "
                                        f"'{first_example}')]").click()
    assert page.table_of(1) == [[first_example, _shown(exact_scores[first_example]), '']]

    # Two photos side by side.
    browser.find_element(page.by.XPATH, "//button[@role='tab' and "
                                        "contains(., 'Compare two photos')]").click()
    page.wait(lambda d: d.find_elements(page.by.CSS_SELECTOR, '#photo-a input[type=file]'))
    page.upload('photo-a', JPEG)
    page.upload('photo-b', PRISTINE)
    page.wait(lambda d: len(d.find_elements(page.by.CSS_SELECTOR,
                                            '#photo-b .file-preview, #photo-b a')) > 0)
    browser.find_element(page.by.ID, 'compare').click()
    page.wait(lambda d: 'scores higher' in page.text('verdict'))
    assert page.text('verdict').startswith(
        f'{PRISTINE.name} ({_shown(exact_scores[PRISTINE.name])}) scores higher than '
        f'{JPEG.name}')
    page.wait(lambda d: d.find_elements(page.by.CSS_SELECTOR, '#map-a img, #map-b img'))

    # Nothing left this machine: every request of the page went to the demo's server,
    # and the server connected to nothing but itself.
    origin = url.rstrip('/')
    requested = page.requested_urls()
    assert any(u.startswith(origin) for u in requested)  # the log did record requests
    assert not [u for u in requested if not u.startswith((origin, 'data:', 'blob:'))]
    assert not remote_log.exists(), remote_log.read_text()


@pytest.mark.slow
def test_a_video_in_chromium(demo_server, browser, clip, clip_as_scored, tmp_path):
    url, remote_log = demo_server
    zeros = tmp_path / 'zeros.mp4'
    zeros.write_bytes(bytes(64))
    page = Page(browser, url)
    page.upload('uploads', clip, zeros)
    rows = page.table_of(2)
    assert rows[0] == [clip.name, _shown(clip_as_scored.score), '']
    assert rows[1][:2] == [zeros.name, ''] and 'cannot open as a video' in rows[1][2]
    assert page.text('status').startswith('1 of 2 files scored. Could not score:')
    # The video's timeline above its worst frame's map, and what they show.
    page.wait(lambda d: page.shown('#videos img'))
    image = max(page.shown('#videos img'), key=lambda shown: shown.size['width'])  # large
    width, height = browser.execute_script(
        'return [arguments[0].naturalWidth, arguments[0].naturalHeight]', image)
    assert width == TIMELINE_SIZE[0] and height > 2 * TIMELINE_SIZE[1]
    assert image.size['width'] > 800  # drawn large enough to read
    assert (f'{clip.name}: {_shown(clip_as_scored.score)}, the mean of 8 frames; below, '
            f'its worst frame ({GREY_FRAME}, ') in page.text('videos')
    assert not page.shown('#maps img')  # a video's map is in its own section
    browser.save_screenshot(str(tmp_path / 'video_page.png'))
    assert (tmp_path / 'video_page.png').stat().st_size > 10_000
    assert not remote_log.exists(), remote_log.read_text()
