"""The playground in a real headless Chromium, driven over WebDriver (selenium), against
the `geolb` CLI's own output: the page must show what the CLI says.

Needs wasm-out/playground (scripts/build-playground.sh), Debian's chromium and
chromium-driver, and GEOLB_BIN (the CLI; default target/debug/geolb). Run by
scripts/test.sh; by hand: `.venv/bin/python -m unittest discover -s tests/browser -v`.
It keeps a screenshot in $GEOLB_ARTIFACTS (default target/playground/); with
GEOLB_BLESS=1 it also replaces docs/playground.png, the README's picture.
"""

import gzip
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile
import unittest

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "playground"))
from serve import serve  # noqa: E402

SITE = ROOT / "wasm-out" / "playground"
EXAMPLES = ROOT / "manifests" / "examples"
GEOLB = pathlib.Path(os.environ.get("GEOLB_BIN", ROOT / "target" / "debug" / "geolb")).resolve()
ARTIFACTS = pathlib.Path(os.environ.get("GEOLB_ARTIFACTS", ROOT / "target" / "playground"))
EXAMPLE_SECRET = (EXAMPLES / "route-secret.example").read_text()
SEED_A = "a-failover-distribution"


def geolb(*args, cwd=None):
    """Runs the CLI with the example route secret; returns the completed process."""
    env = {**os.environ, "GEOLB_ROUTE_SECRET": EXAMPLE_SECRET, "NO_COLOR": "1"}
    return subprocess.run(
        [str(GEOLB), *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )


def cli_render(plan, extension_api="wasmplugin"):
    """What `geolb render` writes: {path under the output directory: text}."""
    with tempfile.TemporaryDirectory() as out:
        done = geolb("render", str(plan), "-o", out, "--extension-api", extension_api)
        assert done.returncode == 0, done.stderr
        base = pathlib.Path(out)
        return {
            str(p.relative_to(base)): p.read_bytes().decode("utf-8")
            for p in sorted(base.rglob("*"))
            if p.is_file()
        }


class Playground(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not (SITE / "index.html").is_file():
            raise unittest.SkipTest("wasm-out/playground is missing: run scripts/build-playground.sh")
        cls.server = serve(str(SITE))
        cls.url = f"http://127.0.0.1:{cls.server.server_port}/"
        cls.profile = tempfile.mkdtemp(prefix="geolb-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        # Without the background-networking flags Chromium keeps dialling Google's hosts,
        # which this closed network refuses.
        for flag in (
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
            "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--window-size=1500,950",
            f"--user-data-dir={cls.profile}",
        ):
            options.add_argument(flag)
        cls.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        cls.driver.set_script_timeout(30)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)

    @classmethod
    def tearDownClass(cls):
        cls.driver.quit()
        cls.server.shutdown()
        shutil.rmtree(cls.profile, ignore_errors=True)

    # ---- helpers ----

    def open(self):
        self.driver.get(self.url)
        self.wait_for(lambda: self.figures()["ready"], "the page to render seed A")
        errors = [e for e in self.driver.get_log("browser") if e["level"] == "SEVERE"]
        self.assertEqual(errors, [], "the console shows errors")

    def figures(self):
        return self.driver.execute_script("return window.geolbPlayground || {ready: false}")

    def wait_for(self, condition, what, timeout=30):
        WebDriverWait(self.driver, timeout).until(lambda _: condition(), f"waited for {what}")

    def after_render(self, act):
        """Does `act`, then waits for the page's next render."""
        before = self.figures()["renders"]
        act()
        self.wait_for(lambda: self.figures()["renders"] > before, "a render")

    def by(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def tab(self, name):
        self.by(f'[role=tab][data-view="{name}"]').click()

    def shown_files(self):
        """Every file of the tree, as the viewer shows it after a click."""
        files = {}
        for item in self.driver.find_elements(By.CSS_SELECTOR, "#file-tree li.file"):
            path = item.get_attribute("data-path")
            item.click()
            self.wait_for(lambda: self.by("#file-name").text == path, f"{path} to show")
            files[path] = self.driver.execute_script(
                "return document.getElementById('file-content').textContent"
            )
        return files

    def chart(self, css):
        """{service: {region: percent}} as the chart's segments carry it."""
        return self.driver.execute_script(
            """
            const split = {};
            for (const s of document.querySelectorAll(arguments[0] + ' [data-service]')) {
              split[s.dataset.service] = {};
              for (const seg of s.querySelectorAll('.segment'))
                split[s.dataset.service][seg.dataset.region] = Number(seg.dataset.percent);
            }
            return split;
            """,
            css,
        )

    def set_condition(self, region, condition):
        Select(self.by(f'select[data-region="{region}"]')).select_by_value(condition)

    # ---- tests ----

    def test_the_rendered_files_are_the_clis_byte_for_byte(self):
        self.open()
        self.assertEqual(self.figures()["renders"], 1)
        for example in sorted(p.parent.name for p in EXAMPLES.glob("*/plan.yaml")):
            button = self.by(f'#examples [data-example="{example}"]')
            if example != SEED_A:
                self.after_render(button.click)
            expected = cli_render(EXAMPLES / example / "plan.yaml")
            self.assertEqual(self.shown_files(), expected, example)
        self.after_render(lambda: self.by(f'#examples [data-example="{SEED_A}"]').click())
        self.after_render(lambda: Select(self.by("#extension-api")).select_by_value("trafficextension"))
        expected = cli_render(EXAMPLES / SEED_A / "plan.yaml", "trafficextension")
        self.assertEqual(self.shown_files(), expected, "seed A with TrafficExtension")

    def test_a_broken_plan_shows_validates_diagnostics_as_it_is_typed(self):
        self.open()
        editor = self.by("#editor")
        text = editor.get_attribute("value")
        at = text.index("cn-hangzhou: 90") + len("cn-hangzhou: 9")
        # Type over the 0 of 90: a real key press, then the page re-checks by itself.
        self.driver.execute_script("arguments[0].focus(); arguments[0].setSelectionRange(arguments[1], arguments[1] + 1)", editor, at)
        self.after_render(lambda: ActionChains(self.driver).send_keys("9").perform())
        broken = editor.get_attribute("value")
        self.assertIn("cn-hangzhou: 99", broken)
        with tempfile.TemporaryDirectory() as work:
            (pathlib.Path(work) / "plan.yaml").write_text(broken)
            done = geolb("validate", "plan.yaml", cwd=work)
        self.assertEqual(done.returncode, 1, done.stderr)
        *findings, summary = done.stderr.splitlines(keepends=True)
        shown = self.driver.execute_script(
            "return [...document.querySelectorAll('#diagnostics li pre')].map(p => p.textContent)"
        )
        self.assertEqual("".join(shown), "".join(findings))
        self.assertEqual(self.by("#summary").text, summary.strip())
        marks = self.driver.find_elements(By.CSS_SELECTOR, "#highlight mark.error")
        self.assertEqual(len(marks), 1)
        self.assertIn("sum to 109", marks[0].get_attribute("title"))
        self.assertEqual(self.driver.find_elements(By.CSS_SELECTOR, "#file-tree li"), [])
        self.__class__.rerender_ms = self.figures()["lastRenderMs"]

    def test_a_region_toggled_down_moves_the_chart_as_simulate_says(self):
        self.open()
        self.tab("whatif")
        Select(self.by("#from")).select_by_value("cn-hangzhou")
        self.wait_for(lambda: self.chart("#split-chart"), "the settled split")
        steady = self.chart("#split-chart")
        self.assertGreater(steady["reviews.default"]["cn-hangzhou"], 85)
        self.set_condition("cn-hangzhou", "down")
        self.wait_for(
            lambda: self.chart("#split-chart") != steady, "the chart to follow the toggle"
        )
        done = geolb(
            "simulate", str(EXAMPLES / SEED_A / "plan.yaml"), "--from", "cn-hangzhou",
            "--down", "cn-hangzhou", "--output", "json",
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        expected = {
            service: {region: p for region, p in split.items() if p > 0}
            for service, split in json.loads(done.stdout).items()
        }
        self.assertEqual(self.chart("#split-chart"), expected)
        self.assertEqual(self.chart("#split-chart")["reviews.default"], {"cn-shanghai": 100})
        self.driver.save_screenshot(str(ARTIFACTS / "what-if.png"))

    def test_the_timeline_plays_a_failure_and_its_recovery(self):
        self.open()
        self.tab("whatif")
        Select(self.by("#from")).select_by_value("cn-hangzhou")
        self.set_condition("cn-hangzhou", "down")
        self.tab("timeline")
        for field, value in (("#span-start", "5s"), ("#span-end", "15s"), ("#length", "30s")):
            self.by(field).clear()
            self.by(field).send_keys(value)
        self.by("#play").click()
        self.wait_for(lambda: self.by("#second").get_attribute("value") == "29", "the animation to end")
        self.assertTrue(self.driver.find_elements(By.CSS_SELECTOR, "#timeline-plot svg"))
        self.assertIn("t = 29 s", self.by("#second-label").text)
        done = geolb(
            "simulate", str(EXAMPLES / SEED_A / "plan.yaml"), "--from", "cn-hangzhou",
            "--down", "cn-hangzhou@5s..15s", "--timeline", "30s", "--output", "json",
        )
        self.assertEqual(done.returncode, 0, done.stderr)
        series = json.loads(done.stdout)["services"]["reviews.default"]
        for second in (2, 10, 29):
            self.driver.execute_script(
                "const s = document.getElementById('second'); s.value = arguments[0];"
                "s.dispatchEvent(new Event('input'))",
                second,
            )
            expected = {r: v[second] for r, v in series.items() if v[second] > 0}
            self.assertEqual(self.chart("#timeline-chart")["reviews.default"], expected, f"t={second}")

    def test_the_topology_shows_regions_gateways_and_chains(self):
        self.open()
        self.after_render(lambda: self.by('#examples [data-example="d-multi-network"]').click())
        self.tab("topology")
        regions = self.driver.find_elements(By.CSS_SELECTOR, "#topology-picture g.region")
        done = geolb("plan", str(EXAMPLES / "d-multi-network" / "plan.yaml"), "--output", "json")
        clusters = json.loads(done.stdout)["clusters"]
        self.assertEqual(
            sorted(r.get_attribute("data-region") for r in regions),
            sorted({c["region"] for c in clusters}),
        )
        picture = self.by("#topology-picture").text
        for c in clusters:
            self.assertIn(c["name"], picture)
            if c.get("eastWestGateway"):
                self.assertIn(c["eastWestGateway"], picture)
        self.after_render(lambda: self.by(f'#examples [data-example="{SEED_A}"]').click())
        self.tab("topology")
        row = self.by('#chains tr[data-service="reviews.default"][data-from="cn-hangzhou"]')
        self.assertIn("90% → cn-hangzhou → cn-shanghai\n10% → cn-shanghai → cn-hangzhou", row.text)
        self.driver.save_screenshot(str(ARTIFACTS / "topology.png"))

    def test_z_figures_and_the_picture(self):
        """Last (z): the load and re-render figures, and the README's screenshot."""
        self.open()
        first = self.figures()["firstRenderMs"]
        module = SITE / "geolb_playground_bg.wasm"
        gz = len(gzip.compress(module.read_bytes(), 9))
        self.tab("whatif")
        Select(self.by("#from")).select_by_value("cn-hangzhou")
        self.set_condition("cn-hangzhou", "down")
        self.tab("timeline")
        self.by("#length").clear()
        self.by("#length").send_keys("100s")
        self.by("#play").click()
        self.wait_for(lambda: self.by("#second").get_attribute("value") == "99", "the animation to end")
        # Stop where the recovery ramp is half way: the plot and the bars both show it.
        self.driver.execute_script(
            "const s = document.getElementById('second'); s.value = 75; s.dispatchEvent(new Event('input'))"
        )
        shot = ARTIFACTS / "playground.png"
        self.driver.save_screenshot(str(shot))
        if os.environ.get("GEOLB_BLESS") == "1":
            shutil.copyfile(shot, ROOT / "docs" / "playground.png")
        rerender = getattr(self.__class__, "rerender_ms", None)
        print(
            f"\nplayground: module {module.stat().st_size} bytes ({gz} gzip -9); "
            f"load to first render {first:.0f} ms; "
            + (f"re-render after an edit of seed A {rerender:.1f} ms; " if rerender else "")
            + f"screenshot {shot}",
            file=sys.stderr,
        )


if __name__ == "__main__":
    unittest.main()
