"""The session report: pictures and page from in-memory data; a real headless Chromium renders it."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread

from bridge.export.report import PitchTrack, ReportData, StemView, free_report_name, write_report
from bridge.export.report.figures import bar_ticks, seconds_to_beats
from conditioning.drums import drums_from_notes
from conditioning.timeline import Section, TempoMap
from conditioning.types import Audio, ChordProgression, ChordSpan, Melody, Note

HOSTILE = 'Chorus <b>"1"</b> & \x00\x1b/..\\:*?|'


class _Page(HTMLParser):
    """Collects img sources, links and the visible text of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        a = dict(attrs)
        if tag == "img":
            self.images.append(str(a["src"]))
        if tag == "a":
            self.links.append(str(a["href"]))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def _data(tm: TempoMap, sections: list[Section], stems: int = 2, sr: int = 8000) -> ReportData:
    end = sections[-1].end_beat
    chords = ChordProgression(tuple(
        ChordSpan(label, 4.0 * i, 4.0 * i + 4) for i, label in zip(range(int(end // 4)), ["A:min", "F:maj", "C:maj", "G:7"] * 999,
                                                                     strict=False)))
    melody = Melody(tuple(Note(57 + i % 7, 2.0 * i, 2.0 * i + 1.5) for i in range(int(end // 2))))
    drums = drums_from_notes([Note(36 if i % 2 == 0 else 38, float(i), i + 0.1, 60 + i % 60) for i in range(int(end))],
                             what="test drums")
    times = np.arange(0.0, tm.beat_to_seconds(end), 0.01)
    hum = PitchTrack(times, np.where(np.sin(times) > 0, 60 + 2 * np.sin(3 * times), np.nan))
    rng = np.random.default_rng(1)
    views = []
    for sec in sections[:stems]:
        n = sec.length_samples(tm, sr)
        views.append(StemView("drums", sec, 1, f"{sec.slug}_drums_take1.wav",
                              Audio(rng.normal(0, 0.2, (2, n)).astype(np.float32), sr)))
    return ReportData(title=f"Song {HOSTILE}", job_id="J1", tempo_map=tm, sections=sections, model="arranger",
                      seed=7, key="A minor", chords=chords, drums=drums, melody=melody, hum=hum, stems=tuple(views),
                      links=(("REAPER project", "arrangement.rpp"), ("odd name", "a b#?.txt")))


def test_report_page_pictures_and_links(tmp_path: Path) -> None:
    tm = TempoMap.from_json([{"beat": 0, "bpm": 92, "time_signature": [4, 4]},
                             {"beat": 16, "bpm": 130, "time_signature": [3, 4]}])
    sections = [Section.from_bars("Intro", 1, 5, tm), Section.from_bars(HOSTILE, 5, 9, tm)]
    page = write_report(tmp_path, _data(tm, sections))
    assert page == tmp_path / "report.html"
    parsed = _parse(page)
    assert parsed.images == ["report/timeline.png", "report/melody.png", "report/drums.png", "report/track-01.png"]
    for src in parsed.images:
        img = imread(str(tmp_path / src))
        assert img.shape[1] == 960 and img.shape[0] > 100  # 12 in at 80 dpi
        assert img[..., :3].std() > 0.05  # not a blank picture
    # musician's text shows as text: never as markup, never a control character
    text = "".join(parsed.text)
    assert '<b>"1"</b>' in text and "\x00" not in page.read_text(encoding="utf-8")
    assert "b" not in parsed.tags
    assert "intro_drums_take1.wav" in parsed.links and "chorus-b-1-b_drums_take1.wav" in parsed.links and "a%20b%23%3F.txt" in parsed.links
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    with pytest.raises(FileExistsError):
        write_report(tmp_path, _data(tm, sections))
    assert free_report_name(tmp_path) == "report-2"
    second = write_report(tmp_path, _data(tm, sections, stems=0), free_report_name(tmp_path))
    assert second.name == "report-2.html" and (tmp_path / "report-2" / "timeline.png").is_file()
    assert page.read_text(encoding="utf-8").count("<img") == 4  # the first report is untouched


def test_200_sections_and_100_tempo_changes_render(tmp_path: Path) -> None:
    points, beat = [], 0.0
    for i in range(100):
        points.append({"beat": beat, "bpm": 70 + (i * 13) % 110, "time_signature": [2 + i % 6, 4]})
        beat += 2 + i % 6
    tm = TempoMap.from_json(points)
    start = 1
    sections = []
    for i in range(200):
        sections.append(Section.from_bars(f"Part {i} {HOSTILE}", start, start + 1, tm))
        start += 1
    lines, labelled, labels = bar_ticks(tm, sections[-1].end_beat)
    assert len(lines) == 200 and len(labelled) <= 24 and labels[0] == "1"
    page = write_report(tmp_path, _data(tm, sections, stems=1))
    parsed = _parse(page)
    assert len(parsed.images) == 4
    assert "".join(parsed.text).count("Part 199") == 1


def test_seconds_to_beats_follows_the_tempo_map() -> None:
    tm = TempoMap.from_json([{"beat": 0, "bpm": 60}, {"beat": 4, "bpm": 120}])
    got = seconds_to_beats(tm, np.array([-1.0, 0.0, 2.0, 4.0, 5.0, 100.0]))
    assert got == pytest.approx([-1.0, 0.0, 2.0, 4.0, 6.0, 4 + 96 * 2])
    assert got[3:] == pytest.approx([tm.seconds_to_beat(s) for s in (4.0, 5.0, 100.0)])


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install -y chromium; scripts/setup.sh)")
def test_headless_chromium_renders_the_report(tmp_path: Path) -> None:
    tm = TempoMap.constant(100)
    sections = [Section.from_bars("Verse", 1, 3, tm), Section.from_bars("Chorus", 3, 5, tm)]
    page = write_report(tmp_path, _data(tm, sections, stems=1))
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [str(CHROMIUM), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
         "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1000,1400",
         f"--screenshot={shot}", page.as_uri()],
        capture_output=True, text=True, timeout=90,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    img = imread(str(shot))[..., :3]
    assert img.shape[:2] == (1400, 1000)
    # the verse and chorus colours of the timeline picture reached the screen: the browser
    # loaded and drew the PNGs, not just the text
    for colour in ("#90be6d", "#f8961e"):
        rgb = np.array([int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
        assert (np.abs(img - rgb).max(axis=2) < 0.03).sum() > 500, colour


def test_track_picture_keeps_each_placement_at_its_bars_under_a_tempo_change() -> None:
    from bridge.export.report.figures import beats_to_seconds, newest_takes, track_figure

    tm = TempoMap.from_json([{"beat": 0, "bpm": 60}, {"beat": 4, "bpm": 120}])
    assert beats_to_seconds(tm, np.array([-2.0, 0.0, 4.0, 6.0, 100.0])) == pytest.approx([-2.0, 0.0, 4.0, 5.0, 52.0])
    verse, chorus = Section.from_bars("Verse", 1, 2, tm), Section.from_bars("Chorus", 2, 4, tm)
    sr = 1000
    loud = Audio(np.ones((1, verse.length_samples(tm, sr)), dtype=np.float32) * 0.5, sr)
    quiet = Audio(np.full((1, chorus.length_samples(tm, sr)), 0.1, dtype=np.float32), sr)
    old = Audio(np.full((1, chorus.length_samples(tm, sr)), 0.9, dtype=np.float32), sr)
    views = [StemView("bass", verse, 1, "v1.wav", loud), StemView("bass", chorus, 1, "c1.wav", old),
             StemView("bass", chorus, 2, "c2.wav", quiet)]
    assert [v.file for v in newest_takes(views)] == ["v1.wav", "c2.wav"]
    data = ReportData(title="t", job_id="J", tempo_map=tm, sections=[verse, chorus], stems=tuple(views))
    fig = track_figure(data, views)
    wave, spec = fig.axes
    # the chorus (bar 2 = beat 4) spans 8 beats = 4 s at 120 bpm; its envelope sits at beats 4..12
    xs = np.concatenate([c.get_paths()[0].vertices[:, 0] for c in wave.collections if c.get_paths()])
    assert xs.min() == pytest.approx(0.0, abs=0.1) and xs.max() == pytest.approx(12.0, abs=0.1)
    assert wave.get_ylim()[1] == pytest.approx(0.5 * 1.05)  # the old 0.9 take is not drawn
    extents = sorted(tuple(im.get_extent()[:2]) for im in spec.get_images())
    assert extents == [(0.0, 4.0), (4.0, 12.0)]
