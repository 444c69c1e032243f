"""The model report: one self-contained HTML page from a real card (no Ray, no browser).

The cards come from tests/unit/report_cards.py, built as the pipeline builds them; each page
is rendered once per session. Pages are read back with html.parser, never by matching text
across the whole document, so markup in user data cannot pass for structure.
"""

from __future__ import annotations

import ast
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from pathlib import Path

import pytest

from reasoning import report
from reasoning.report import (
    charts,
    drawing,
    filter_text,
    fmt_number,
    render_report,
    safe_url,
    sections,
    words,
)
from reasoning.schemas import PredictResponse, ReasoningFitRequest
from tests.unit import report_cards

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
        "track", "wbr"}
URL_ATTRIBUTES = {"src", "href", "xlink:href", "action", "formaction", "srcset", "poster",
                  "data", "background", "ping", "manifest", "cite", "longdesc"}
NAMESPACE = re.compile(r"http://www\.w3\.org/[\w./-]+")


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    nodes: list[str | Element] = field(default_factory=list)
    """Text and child elements in document order."""

    @property
    def children(self) -> list[Element]:
        return [n for n in self.nodes if isinstance(n, Element)]

    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def all_text(self) -> str:
        return "".join(n if isinstance(n, str) else n.all_text() for n in self.nodes)

    def find(self, tag: str, cls: str | None = None) -> list[Element]:
        found = [c for c in self.children if c.tag == tag and (cls is None or cls in c.classes())]
        for c in self.children:
            found += c.find(tag, cls)
        return found


class Page(HTMLParser):
    """A tree of the page, checking as it goes that every element closes in order."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.stack = [self.root]
        self.problems: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.style_text: list[str] = []
        self.feed(text)
        self.close()
        if len(self.stack) != 1:
            self.problems.append(f"unclosed: {[e.tag for e in self.stack[1:]]}")

    def _open(self, tag: str, attrs: list[tuple[str, str | None]]) -> Element:
        element = Element(tag, {k: v or "" for k, v in attrs})
        self.attributes += [(tag, k, v or "") for k, v in attrs]
        self.stack[-1].nodes.append(element)
        return element

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = self._open(tag, attrs)
        if tag not in VOID:
            self.stack.append(element)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._open(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            return
        if self.stack[-1].tag != tag:
            self.problems.append(f"</{tag}> closes <{self.stack[-1].tag}>")
            return
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.stack[-1].nodes.append(data)
        if self.stack[-1].tag == "style":
            self.style_text.append(data)

    def charts(self, kind: str | None = None) -> list[Element]:
        found = self.root.find("figure", "chart")
        return [f for f in found if kind is None or kind in f.classes()]

    def section(self, id_: str) -> Element:
        (found,) = [s for s in self.root.find("section") if s.attrs.get("id") == id_]
        return found

    def table(self, cls: str) -> list[list[str]]:
        (table,) = self.root.find("table", cls)
        return [[td.all_text().strip() for td in tr.find("td")] for tr in table.find("tr")
                if tr.find("td")]


def svg_texts(figure: Element) -> list[str]:
    return [t.all_text() for t in figure.find("text")]


@cache
def page(name: str) -> str:
    built = report_cards.ALL[name]()
    return render_report(built.card, built.examples)


@cache
def parsed(name: str) -> Page:
    return Page(page(name))


NAMES = list(report_cards.ALL)


@pytest.mark.parametrize("name", NAMES)
def test_page_parses_with_every_element_closed_and_ids_unique(name: str) -> None:
    doc = parsed(name)
    assert doc.problems == []
    assert page(name).startswith("<!DOCTYPE html>")
    ids = [v for _, k, v in doc.attributes if k == "id"]
    assert len(ids) == len(set(ids)), "every chart's ids are its own"
    for figure in doc.charts():
        (svg,) = figure.find("svg")
        assert figure.find("figcaption"), figure.attrs
        assert svg.find("text") and (svg.find("path") or svg.find("use"))


@pytest.mark.parametrize("name", NAMES)
def test_page_references_nothing_off_the_page(name: str) -> None:
    doc = parsed(name)
    for tag, key, value in doc.attributes:
        if key in URL_ATTRIBUTES or key.endswith(":href"):
            assert value.startswith(("#", "data:")), (tag, key, value)
        if key == "xmlns" or key.startswith("xmlns:"):
            assert NAMESPACE.fullmatch(value), (tag, key, value)
        elif "//" in value and key != "content":
            pytest.fail(f"<{tag} {key}={value!r}> names another place")
    styles = " ".join(doc.style_text) + " ".join(v for _, k, v in doc.attributes if k == "style")
    assert re.findall(r"url\(\s*['\"]?(?!#)", styles) == []
    assert "@import" not in styles and "@font-face" not in styles
    assert doc.root.find("script") == [] and doc.root.find("img") == []
    assert doc.root.find("link") == [] and doc.root.find("iframe") == []
    (csp,) = [m for m in doc.root.find("meta")
              if m.attrs.get("http-equiv") == "Content-Security-Policy"]
    assert "default-src 'none'" in csp.attrs["content"]
    assert "<?xml" not in page(name) and "<!DOCTYPE svg" not in page(name)
    assert "<metadata" not in page(name)


def test_regression_report_shows_card_trials_importance_shapes_and_examples() -> None:
    built = report_cards.regression()
    card, doc = built.card, parsed("regression")
    title = doc.root.find("h1")[0].all_text()
    assert "regression of price" in title and "GAM" in title
    card_text = doc.section("card").all_text()
    for needle in (str(card.model_id), str(card.dataset_id), "reasoning fit",
                   'listed_at >= 2020-01-01 or not (neighborhood in (hills, "old town"))',
                   f"{card.rows.train} train / {card.rows.validation} validation / "
                   f"{card.rows.test} test", card.summary):
        assert needle in card_text
    params = {row[0]: row[1] for row in doc.table("hyperparameters")}
    assert params == {k: fmt_number(v) for k, v in card.hyperparameters.items()}
    metrics = {row[0]: row[1] for row in doc.table("metrics-test")}
    assert metrics == {words.METRIC_NAMES[k]: fmt_number(v) for k, v in card.metrics.test.items()}

    trials = doc.table("trials")
    assert len(trials) == len(card.trials) == 5
    best = [row for row in trials if "best" in row[3]]
    assert len(best) == 1 and best[0][0] == "2"
    assert best[0][2] == "alpha=0.1, n_knots=8, n_pairs=3"
    assert trials[2][3] == "LinAlgError: <b>singular</b> matrix"  # text, escaped
    assert len(doc.charts("trials-chart")) == 1

    (importance,) = doc.charts("importance-chart")
    labels = svg_texts(importance)
    assert all(f.name in labels for f in card.features)
    shapes = doc.charts("shape-chart")
    assert [s.attrs["data-column"] for s in shapes] == [f.name for f in card.features]
    assert "2022" in svg_texts(shapes[-1]), "listed_at's x axis is in dates"
    # The best trial's three pair terms: listed by importance, each with its surface.
    pairs = card.explanation.pairs
    assert len(pairs) == 3
    assert [row[0] for row in doc.table("pairs")] == [" & ".join(t.columns) for t in pairs]
    surfaces = doc.charts("pair-chart")
    assert [s.attrs["data-columns"] for s in surfaces] == [" & ".join(t.columns) for t in pairs]
    for chart, term in zip(surfaces, pairs, strict=True):
        texts = svg_texts(chart)
        assert set(term.columns) <= set(texts) and any("contribution" in t for t in texts)
    waterfalls = doc.charts("waterfall-chart")
    assert len(waterfalls) == len(card.examples) == 3
    for chart, row in zip(waterfalls, built.examples.explanations, strict=True):
        texts = svg_texts(chart)
        assert "base value" in texts and "output" in texts
        for reason in row.reasons:
            assert any(t.startswith(f"{reason.column} = ") for t in texts), reason
    predictions = [a.find("p", "value")[0].all_text() for a in doc.root.find("aside")]
    assert predictions == [fmt_number(p) for p in built.examples.predictions]


def test_multiclass_report_draws_a_series_per_class_and_probabilities() -> None:
    built = report_cards.multiclass()
    card, doc = built.card, parsed("multiclass")
    assert card.classes == ["budget", "mid", "premium"]
    assert "classification of segment (budget / mid / premium)" in doc.root.find("h1")[0].all_text()
    for chart in doc.charts("shape-chart"):
        assert {"budget", "mid", "premium"} <= set(svg_texts(chart)), chart.attrs
    assert {row[1] for row in doc.table("trials")} == {"gam", "linear"}
    waterfalls = doc.charts("waterfall-chart")
    assert len(waterfalls) == 3
    asides = doc.root.find("aside")
    for aside, predicted, proba in zip(asides, built.examples.predictions,
                                       built.examples.probabilities or [], strict=True):
        assert aside.find("p", "value")[0].all_text() == predicted
        (table,) = aside.find("table", "probabilities")
        rows = [[td.all_text().strip() for td in tr.find("td")] for tr in table.find("tr")][1:]
        assert [r[1] for r in rows] == [f"{p:.3f}" for p in proba]
    caption = waterfalls[0].find("figcaption")[0].all_text()
    assert f"class {built.examples.predictions[0]}" in caption


def test_distilled_report_compares_with_the_label_only_fit_and_shows_gradient_agreement() -> None:
    built = report_cards.diffmodel()
    card, doc = built.card, parsed("diffmodel")
    assert card.teacher is not None and card.teacher["kind"] == "diffmodel"
    cosine = card.metrics.fidelity["gradient_cosine"]
    fidelity = {row[0]: row[1] for row in doc.table("metrics-fidelity")}
    assert fidelity == {words.METRIC_NAMES[k]: fmt_number(v)
                        for k, v in card.metrics.fidelity.items() if k != "gradient_cosine"}
    compare = {row[0]: row[1:3] for row in doc.table("metrics-compare")}
    assert card.metrics.label_only and set(card.metrics.label_only) == set(card.metrics.test)
    assert compare == {words.METRIC_NAMES[k]: [fmt_number(v),
                                                 fmt_number(card.metrics.label_only[k])]
                       for k, v in card.metrics.test.items()}
    gradients = doc.section("gradients")
    assert gradients.find("strong", "gradient-cosine")[0].all_text() == fmt_number(cosine)
    assert "No trials on this card" in doc.section("trials").all_text()
    assert doc.charts("trials-chart") == []
    teacher_text = doc.section("card").all_text()
    assert "teacher.example/predict" in teacher_text and "diffmodel" in teacher_text
    for secret in ("s3cr3t-pass", "k3y-value", "hdr-secret"):
        assert secret not in page("diffmodel")


def test_teacher_header_values_are_never_printed() -> None:
    teacher = {"kind": "url", "url": "https://t.example/p", "headers": {"Authorization": "tok"},
               "synth_gen_nodes": ["10.0.0.7"]}
    doc = Page(sections._teacher_facts(teacher))
    text = doc.root.all_text()
    assert "tok" not in text.replace("not shown", "")
    assert "Authorization" in text and "10.0.0.7" in text and "https://t.example/p" in text


def test_hostile_names_and_levels_stay_text() -> None:
    doc = parsed("hostile")
    assert doc.root.find("script") == [] and doc.root.find("img") == []
    hostile, level = report_cards.HOSTILE_COLUMN, report_cards.HOSTILE_LEVEL
    assert hostile in doc.section("card").all_text()
    (importance,) = doc.charts("importance-chart")
    assert hostile in svg_texts(importance)
    assert report_cards.MATH_COLUMN in svg_texts(importance), "a $ is not mathtext"
    assert any(s.attrs["data-column"] == hostile for s in doc.charts("shape-chart"))
    neighborhood = [s for s in doc.charts("shape-chart") if s.attrs["data-column"] ==
                    "neighborhood"]
    assert level in svg_texts(neighborhood[0])
    assert "</code><b>x" in doc.section("card").all_text()
    assert "<script>alert" not in page("hostile")


def test_a_card_without_examples_says_so() -> None:
    card = report_cards.hostile().card.model_copy(update={"examples": []})
    doc = Page(render_report(card, None))
    assert doc.problems == []
    assert doc.charts("waterfall-chart") == []
    assert doc.root.find("p", "no-examples")
    assert len(doc.charts("shape-chart")) == len(card.features)
    empty = PredictResponse(model_id=card.model_id, predictions=[], explanations=[])
    section = Page(sections.examples_section(card, words.ReportTask(card), empty))
    assert section.root.find("p", "no-examples") and section.charts() == []


def test_filters_read_as_expressions() -> None:
    request = ReasoningFitRequest.model_validate({
        "dataset_id": "00000000-0000-0000-0000-000000000001",
        "task": {"label_column": "y"},
        "filter": {"kind": "and", "filters": [
            {"col": "listed_at", "op": ">=", "value": "2020-01-01"},
            {"kind": "or", "filters": [{"col": "rooms", "op": "in", "value": [2, 3]},
                                       {"col": "city name", "op": "is_null"}]},
            {"kind": "not", "filter": {"col": "garden", "op": "==", "value": True}},
            {"col": "city", "op": "not_in", "value": ["New York", "true"]},
        ]},
    })
    assert filter_text(request.filter) == (
        "listed_at >= 2020-01-01 and (rooms in (2, 3) or `city name` is null) and "
        'not (garden == true) and city not in ("New York", "true")')
    assert filter_text(None) == ""


def test_teacher_urls_lose_passwords_and_query_values() -> None:
    assert safe_url("https://u:pw@h.example:8443/p?key=abc&x=1#f") == (
        "https://***@h.example:8443/p?key=…&x=…")
    assert safe_url("https://ghp_token@h.example/p") == "https://***@h.example/p"
    assert safe_url("http://h.example/predict") == "http://h.example/predict"


def test_timestamp_shapes_read_iso_strings_and_epoch_days() -> None:
    iso = charts._timestamps(["2020-01-20T00:00:00", "2021-06-01T12:00:00+00:00"])
    days = charts._timestamps([18_281.0, 18_779.5])
    assert iso is not None and days is not None and iso == days
    assert charts._timestamps(["not a time"]) is None
    shape = {"x": [18_281.0, 18_779.5, 19_500.0], "contribution": [1.0, -2.0, 0.5]}
    svg = drawing.draw_svg(lambda: charts.shape_chart("t", "timestamp", shape, "y", None)[0], "t")
    assert "2021" in svg or "2022" in svg


def test_concurrent_charts_match_and_leave_rc_params_alone() -> None:
    import matplotlib

    built = report_cards.hostile()
    row = built.examples.explanations[0]
    importance = built.card.explanation.importance

    def draw_both() -> list[str]:
        return [drawing.draw_svg(lambda: charts.waterfall_chart(row, "price"), "w"),
                drawing.draw_svg(lambda: charts.importance_chart(importance, "price"), "i")]

    before = dict(matplotlib.rcParams)
    alone = draw_both()
    drawn: list[list[str]] = []
    threads = [threading.Thread(target=lambda: drawn.append(draw_both())) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert drawn == [alone] * 3, "charts are deterministic, also drawn side by side"
    assert 'font-family' in alone[0] and "<text" in alone[0], "text stays text"
    assert dict(matplotlib.rcParams) == before


def test_importing_the_package_loads_no_matplotlib() -> None:
    modules = sorted(Path(report.__file__).parent.glob("*.py"))
    assert len(modules) > 1, "the report is a package of modules"
    top = [n for path in modules for n in ast.parse(path.read_text()).body
           if isinstance(n, ast.Import | ast.ImportFrom)]
    names = [a.name for n in top if isinstance(n, ast.Import) for a in n.names]
    names += [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n.startswith("matplotlib")]
