"""Reading the prompt: genre and instrument words -> a :class:`Style`; section roles -> a :class:`Shape`."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Style:
    """How the band plays.

    Attributes:
        name: genre name ("pop", "funk", "jazz", ...).
        groove: drum groove key understood by :mod:`models.arranger.drums`.
        swing: 0 (straight) to 1 (triplet swing) applied to off-beat eighths/sixteenths.
        drum_kit: General MIDI drum kit (bank 128 preset: 0 standard, 25 TR-808, 32 jazz, 40 brush).
        bass_rhythm: bass rhythm key understood by :mod:`models.arranger.bass`.
        bass_program: General MIDI program of the bass.
        comp: keys comping key understood by :mod:`models.arranger.keys`.
        keys_program: General MIDI program of the keys part.
        lead_program: General MIDI program of the lead.
        velocity: overall velocity scale (lo-fi plays softer).
    """

    name: str
    groove: str
    swing: float
    drum_kit: int
    bass_rhythm: str
    bass_program: int
    comp: str
    keys_program: int
    lead_program: int
    velocity: float = 1.0


GENRES: dict[str, Style] = {
    "pop": Style("pop", "pop", 0.0, 0, "eighths", 33, "pulse", 0, 81),
    "rock": Style("rock", "rock", 0.0, 16, "eighths", 34, "strum", 29, 29),
    "funk": Style("funk", "funk", 0.15, 0, "funk", 36, "funk", 7, 65),
    "jazz": Style("jazz", "jazz", 0.65, 32, "walking", 32, "charleston", 0, 65),
    "techno": Style("techno", "techno", 0.0, 24, "offbeat", 38, "sustain", 89, 81),
    "house": Style("house", "house", 0.0, 25, "offbeat", 38, "offbeat", 4, 81),
    "country": Style("country", "train", 0.0, 0, "rootfifth", 33, "strum", 25, 40),
    "hiphop": Style("hip hop", "hiphop", 0.35, 25, "kick", 38, "sustain", 4, 81),
    "lofi": Style("lo-fi", "lofi", 0.5, 0, "kick", 33, "lazy", 4, 65, 0.82),
    "reggae": Style("reggae", "onedrop", 0.3, 0, "reggae", 33, "offbeat", 16, 56),
    "bossa": Style("bossa nova", "bossa", 0.0, 40, "bossa", 32, "bossa", 24, 73),
    "ballad": Style("ballad", "ballad", 0.0, 0, "sustain", 33, "arpeggio", 0, 73, 0.9),
    "latin": Style("latin", "bossa", 0.0, 0, "bossa", 33, "bossa", 0, 56),
    "rnb": Style("r&b", "hiphop", 0.3, 0, "kick", 33, "sustain", 4, 65, 0.9),
    "metal": Style("metal", "rock", 0.0, 16, "eighths", 34, "strum", 30, 30),
    "disco": Style("disco", "disco", 0.0, 0, "octaves", 33, "funk", 48, 48),
    "ambient": Style("ambient", "ballad", 0.0, 0, "sustain", 38, "sustain", 89, 73, 0.8),
}

#: Words (regular expressions) naming a genre, tried against the lower-cased prompt.
_GENRE_WORDS: tuple[tuple[str, str], ...] = (
    ("lofi", r"lo[\s-]?fi|chill[\s-]?hop"),
    ("hiphop", r"hip[\s-]?hop|boom[\s-]?bap|trap|rap"),
    ("funk", r"funk(y)?"),
    ("rock", r"rock|punk|grunge"),
    ("metal", r"metal"),
    ("jazz", r"jazz|swing|bebop|big[\s-]?band"),
    ("techno", r"techno|edm|trance"),
    ("house", r"house|dance"),
    ("disco", r"disco"),
    ("country", r"country|bluegrass|folk|train[\s-]?beat"),
    ("reggae", r"reggae|dub|ska|one[\s-]?drop"),
    ("bossa", r"bossa([\s-]?nova)?|samba"),
    ("latin", r"latin|salsa|cumbia"),
    ("ballad", r"ballad|slow|piano[\s-]?ballad"),
    ("rnb", r"r&b|rnb|soul|neo[\s-]?soul"),
    ("ambient", r"ambient|cinematic"),
    ("pop", r"pop"),
)

#: Keys instrument words -> General MIDI program.
_KEYS_WORDS: tuple[tuple[str, int], ...] = (
    (r"rhodes|electric piano|e\.?\s?piano|\bep\b", 4),
    (r"wurli(tzer)?", 5),
    (r"clav(inet)?", 7),
    (r"vibraphone|vibes (?:solo|chords|comping)", 11),  # not "chill vibes"
    (r"hammond|organ", 16),
    (r"accordion", 21),
    (r"nylon|classical guitar|acoustic guitar", 24),
    (r"(?<!lead )guitar(?! (solo|lead))", 27),
    (r"string(s)?|orchestra(l)?", 48),
    (r"choir", 52),
    (r"(synth|warm|soft)[\s-]?pad|\bpad(s)?\b", 89),
    (r"harp", 46),
    (r"\bpiano\b|grand", 0),
)

#: Lead instrument words -> General MIDI program.
_LEAD_WORDS: tuple[tuple[str, int], ...] = (
    (r"tenor sax", 66),
    (r"sax(ophone)?", 65),
    (r"trumpet|horn(s)?", 56),
    (r"trombone", 57),
    (r"flute", 73),
    (r"clarinet", 71),
    (r"oboe", 68),
    (r"whistl(e|es|ing)", 78),
    (r"harmonica", 22),
    (r"violin|fiddle", 40),
    (r"cello", 42),
    (r"(lead|solo|distorted|overdriven) guitar|guitar (solo|lead)", 29),
    (r"square lead|chiptune|8[\s-]?bit", 80),
    (r"synth(esizer)?[\s-]?lead|lead[\s-]?synth|\bsynth\b", 81),
    (r"vocal|voice|ooh", 53),
)

#: Bass instrument words -> General MIDI program.
_BASS_WORDS: tuple[tuple[str, int], ...] = (
    (r"upright|double bass|acoustic bass", 32),
    (r"synth[\s-]?bass|808", 38),
    (r"fretless", 35),
    (r"slap", 36),
    (r"picked bass", 34),
)

#: Drum kit words -> bank-128 preset.
_KIT_WORDS: tuple[tuple[str, int], ...] = (
    (r"brush(es)?", 40),
    (r"808", 25),
    (r"electronic drums|drum machine", 24),
)


#: Endings a genre word may take ("funky", "jazzy", "soulful", "rocking").
_GENRE_SUFFIX = r"(?:y|s|ish|ful|ing)?"


def _whole_word(pattern: str, suffix: str = "(?:s|es)?") -> str:
    """``pattern`` as whole words: "rap" must not match "rapid", nor "organ" "organic"."""
    return rf"(?<![a-z0-9])(?:{pattern}){suffix}(?![a-z0-9])"


def _first_match(text: str, table: tuple[tuple[str, int], ...]) -> int | None:
    best: tuple[int, int] | None = None
    for pattern, value in table:
        m = re.search(_whole_word(pattern), text)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), value)
    return None if best is None else best[1]


def style_from_prompt(prompt: str) -> Style:
    """The style the prompt names: the earliest genre word, then instrument words override.

    "lo-fi funk, warm rhodes, dusty drums" gives the lo-fi groove with Electric Piano 1 keys.
    A prompt with no genre word plays pop.
    """
    text = prompt.lower()
    genre, pos = "pop", len(text) + 1
    for name, pattern in _GENRE_WORDS:
        m = re.search(_whole_word(pattern, _GENRE_SUFFIX), text)
        if m and m.start() < pos:
            genre, pos = name, m.start()
    style = GENRES[genre]
    keys = _first_match(text, _KEYS_WORDS)
    lead = _first_match(text, _LEAD_WORDS)
    bass = _first_match(text, _BASS_WORDS)
    kit = _first_match(text, _KIT_WORDS)
    return replace(
        style,
        keys_program=style.keys_program if keys is None else keys,
        lead_program=style.lead_program if lead is None else lead,
        bass_program=style.bass_program if bass is None else bass,
        drum_kit=style.drum_kit if kit is None else kit,
    )


#: Dynamics words (regular expressions) -> what they do; see :class:`Dynamics`.
_DYNAMICS_WORDS: tuple[tuple[str, str], ...] = (
    (r"fad(?:e|es|ed|ing)(?: out)?|fade[\s-]?out", "fade"),
    (r"sparse(?:r)?|minimal|stripped(?:[\s-]down)?", "sparse"),
    (r"soft(?:er|ly)?(?! pad)|quiet(?:er)?|gentle|gently", "soft"),
    (r"loud(?:er)?|more energy|energetic|powerful", "loud"),
)


@dataclass(frozen=True)
class Dynamics:
    """How loud and how busy the musician's words ask a section to be.

    Attributes:
        velocity: scale for the velocity of every part, the musician's drum track included.
        fade: velocities fall linearly over the section to :data:`FADE_END` of their value.
        sparse: drums keep only the hits on the pulses, keys hold their chords, the lead plays
            half as many notes.
    """

    velocity: float = 1.0
    fade: bool = False
    sparse: bool = False


#: Fraction of its velocity a note keeps at the end of a fading section.
FADE_END = 0.35
_SOFT, _LOUD = 0.72, 1.15


def dynamics_from_prompt(prompt: str) -> Dynamics:
    """The :class:`Dynamics` the words of ``prompt`` ask for ("fading, sparse", "soft", "loud")."""
    text = prompt.lower()
    found = {what for pattern, what in _DYNAMICS_WORDS if re.search(_whole_word(pattern, ""), text)}
    velocity = (_SOFT if "soft" in found else 1.0) * (_LOUD if "loud" in found else 1.0)
    return Dynamics(velocity=velocity, fade="fade" in found, sparse="sparse" in found)


#: Every word the arranger understands, by what it changes; the README lists them and a test
#: renders each one against a prompt without it. Each pattern of the word tables above is
#: represented by at least one word here.
PROMPT_WORDS: dict[str, tuple[str, ...]] = {
    "genre": (
        "lo-fi", "chillhop", "hip hop", "boom bap", "trap", "rap", "funk", "rock", "punk", "grunge",
        "metal", "jazz", "swing", "bebop", "big band", "techno", "edm", "trance", "house", "dance",
        "disco", "country", "bluegrass", "folk", "train beat", "reggae", "dub", "ska", "one drop",
        "bossa nova", "samba", "latin", "salsa", "cumbia", "ballad", "slow", "r&b", "soul",
        "neo-soul", "ambient", "cinematic", "pop",
    ),
    "keys": (
        "rhodes", "electric piano", "wurlitzer", "clavinet", "vibraphone", "hammond", "organ",
        "accordion", "nylon", "acoustic guitar", "guitar", "strings", "orchestra", "choir",
        "synth pad", "pad", "harp", "piano", "grand",
    ),
    "lead": (
        "tenor sax", "sax", "trumpet", "horns", "trombone", "flute", "clarinet", "oboe", "whistle",
        "harmonica", "violin", "fiddle", "cello", "lead guitar", "guitar solo", "square lead",
        "chiptune", "8-bit", "synth lead", "synth", "vocal", "voice", "ooh",
    ),
    "bass": ("upright", "double bass", "acoustic bass", "synth bass", "808", "fretless", "slap", "picked bass"),
    "drum kit": ("brushes", "drum machine", "electronic drums"),
    "dynamics": ("fading", "fade out", "sparse", "minimal", "stripped down", "soft", "quiet", "gentle",
                 "loud", "more energy", "energetic", "powerful"),
}


@dataclass(frozen=True)
class Shape:
    """How a section role shapes the arrangement.

    Attributes:
        energy: 0 (sparse, soft) to 1 (full, loud).
        velocity: velocity scale for every part.
        drums: "full", "light" (hats/ride and soft kick), "minimal" (a few hits) or "build".
        crash: a crash cymbal on the first downbeat.
        keys_sustain: keys hold chords instead of comping.
        lead_density: 0-1, how busy an improvised lead is.
        alternate: play the style's alternate feel (bridges: half-time/ride, other voicing register).
        ending: finish on a held chord and a last hit when no section follows.
    """

    energy: float
    velocity: float
    drums: str
    crash: bool
    keys_sustain: bool
    lead_density: float
    alternate: bool = False
    ending: bool = False


ROLE_SHAPES: dict[str, Shape] = {
    "intro": Shape(0.35, 0.75, "light", False, True, 0.3),
    "verse": Shape(0.6, 0.88, "full", False, False, 0.45),
    "pre-chorus": Shape(0.7, 0.92, "build", False, False, 0.5),
    "chorus": Shape(1.0, 1.08, "full", True, False, 0.75),
    "post-chorus": Shape(0.9, 1.02, "full", True, False, 0.6),
    "bridge": Shape(0.55, 0.9, "full", True, True, 0.5, alternate=True),
    "break": Shape(0.25, 0.7, "minimal", False, True, 0.25),
    "breakdown": Shape(0.3, 0.75, "minimal", False, True, 0.3),
    "drop": Shape(1.0, 1.1, "full", True, False, 0.7),
    "build": Shape(0.7, 0.9, "build", False, False, 0.5),
    "solo": Shape(0.85, 1.0, "full", True, False, 1.0),
    "interlude": Shape(0.45, 0.82, "light", False, True, 0.4, alternate=True),
    "outro": Shape(0.35, 0.78, "light", False, True, 0.3, ending=True),
    "section": Shape(0.6, 0.9, "full", False, False, 0.5),
}


def shape_for_role(role: str) -> Shape:
    """The :class:`Shape` of a section role; unknown roles play like a plain ``"section"``."""
    return ROLE_SHAPES.get(role, ROLE_SHAPES["section"])


def clamp_velocity(value: float) -> int:
    """A MIDI velocity 1-127 from a float."""
    return int(min(127, max(1, round(value))))
