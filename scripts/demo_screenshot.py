"""Screenshot of the demo page for the docs: serves ``modelscope-iqa demo``, opens it in
headless Chromium (Debian's chromium + chromium-driver), drops the five samples and
saves the page once every score and map is shown.

    python scripts/demo_screenshot.py docs/demo_page.png
"""
import argparse
import io
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

SAMPLES = Path(__file__).resolve().parent.parent / 'samples'
WINDOW = (1280, 2100)
WAIT_S = 300


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _wait_for(url: str, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + WAIT_S
    while True:
        try:
            urllib.request.urlopen(url, timeout=5).read()
            return
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError('the demo did not start')
            time.sleep(0.5)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('output', help='PNG file to write')
    parser.add_argument('--chromium', default='/usr/bin/chromium')
    parser.add_argument('--chromedriver', default='/usr/bin/chromedriver')
    args = parser.parse_args(argv)
    port = _free_port()
    url = f'http://127.0.0.1:{port}/'
    server = subprocess.Popen([sys.executable, '-m', 'modelscope_iqa', 'demo', '--port',
                               str(port)], stdout=subprocess.DEVNULL)
    options = Options()
    options.binary_location = args.chromium
    for argument in ('--headless=new', '--no-sandbox', '--disable-dev-shm-usage',
                     '--disable-gpu', '--hide-scrollbars',
                     f'--window-size={WINDOW[0]},{WINDOW[1]}'):
        options.add_argument(argument)
    driver = None
    try:
        _wait_for(url, server)
        driver = webdriver.Chrome(service=Service(args.chromedriver), options=options)
        driver.get(url)
        wait = WebDriverWait(driver, WAIT_S)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, '#uploads input[type=file]'))
        samples = sorted(SAMPLES.glob('*.jpg'))
        driver.find_element(By.CSS_SELECTOR, '#uploads input[type=file]').send_keys(
            '\n'.join(map(str, samples)))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, '#maps img')) == len(samples))
        time.sleep(2)  # let the images finish drawing
        png = driver.get_screenshot_as_png()
        # 256 colours keep the page legible at a third of the bytes
        Image.open(io.BytesIO(png)).convert('RGB').quantize(256).save(args.output,
                                                                       optimize=True)
    finally:
        if driver is not None:
            driver.quit()
        server.terminate()
        server.wait(timeout=30)
    return 0


if __name__ == '__main__':
    sys.exit(main())
