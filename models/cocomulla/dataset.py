"""Training windows from a folder of songs: each a mix audio file plus its MIDI.

Layout: ``DATA/<song>/`` holds one audio file (``.wav``, ``.flac``, ``.aiff``, ``.ogg``), one
``.mid`` file and optionally ``prompt.txt`` (the text prompt; default "a song"). Our own
conditioning gives the content: chords recognised from the MIDI, the piano roll of its pitched
notes (sustain pedal applied), and the drums as EnCodec codes of the MIDI's drum tracks
rendered with FluidSynth, or of Demucs' drum stem of the mix when the MIDI has no drums.
Songs are cut into windows of at most 1,000 frames (20 s) with a 10-s hop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from conditioning.chord_features import coco_mulla_frames
from conditioning.chords import analyze_midi_chords
from conditioning.io.audio import read_audio, resample
from conditioning.io.midi import read_midi
from conditioning.piano_roll import notes_piano_roll
from conditioning.types import Audio
from models.cocomulla.features import ContentFrames
from models.cocomulla.training import TrainExample

log = logging.getLogger(__name__)

AUDIO_SUFFIXES = (".wav", ".flac", ".aiff", ".aif", ".ogg")
#: Encodes mono audio at the model rate: ``(samples,) -> (K, frames)``.
Encoder = Callable[[np.ndarray], np.ndarray]


def _one(folder: Path, suffixes: tuple[str, ...], what: str) -> Path:
    found = sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes)
    if len(found) != 1:
        raise ValueError(
            f"song folder {folder} must hold exactly one {what} ({', '.join(suffixes)}); found {len(found)}"
        )
    return found[0]


def song_windows(
    folder: Path, *, sample_rate: int, frame_rate: float, encode: Encoder,
    drums_audio: Callable[[Any, Audio], np.ndarray], window_frames: int = 1000, hop_frames: int = 500,
) -> list[TrainExample]:
    """Training windows of one song folder.

    Args:
        folder: the song folder.
        sample_rate: the model's audio rate (Hz).
        frame_rate: codec frames per second (50).
        encode: the model's EnCodec encoder.
        drums_audio: ``(midi, mix) -> mono drums at sample_rate`` (renders the MIDI drums or
            separates them from the mix).
        window_frames: frames per window (at most 1,000).
        hop_frames: frames between window starts.
    """
    midi = read_midi(_one(folder, (".mid", ".midi"), "MIDI file"))
    mix = read_audio(_one(folder, AUDIO_SUFFIXES, "mix audio file"))
    prompt_file = folder / "prompt.txt"
    text = prompt_file.read_text(encoding="utf-8").strip() if prompt_file.is_file() else "a song"
    mono = resample(mix, sample_rate).samples.mean(axis=0)
    codes = encode(mono)
    frames = codes.shape[1]
    tm = midi.tempo_map
    end_beat = tm.seconds_to_beat((frames + 1) / frame_rate)
    chords = coco_mulla_frames(analyze_midi_chords(midi), tm, 0.0, end_beat, frame_rate, frames + 1)
    roll = notes_piano_roll(midi.notes, tm, 0.0, end_beat, frame_rate, frames + 1, pedal_spans=midi.pedal_spans)
    drum_codes = np.zeros((codes.shape[0], frames + 1), np.int64)
    got = encode(drums_audio(midi, mix))
    n = min(frames + 1, got.shape[1])
    drum_codes[:, :n] = got[:, :n]
    present = np.zeros(frames + 1, bool)
    present[:n] = True
    piano = np.ones(frames + 1, bool)
    out = []
    for start in range(0, max(1, frames - 1), hop_frames):
        t = min(window_frames, frames - start)
        if t < 2:
            break
        sl = slice(start, start + t + 1)
        content = ContentFrames(chords[sl], roll[sl], drum_codes[:, sl], piano[sl], present[sl])
        out.append(TrainExample(codes[:, start : start + t], content, text))
        if start + t >= frames:
            break
    log.info("%s: %d frames, %d windows", folder.name, frames, len(out))
    return out


def dataset_windows(data: Path, **kwargs: Any) -> dict[str, list[TrainExample]]:
    """Windows of every song folder under ``data`` (song name -> windows).

    Raises:
        ValueError: ``data`` is not a folder or holds no song folders.
    """
    if not data.is_dir():
        raise ValueError(f"--data {data} is not a folder; give a folder of song folders (mix audio + MIDI each)")
    songs = sorted(p for p in data.iterdir() if p.is_dir())
    if not songs:
        raise ValueError(f"{data} holds no song folders; put each song (mix audio + .mid) in its own folder")
    return {song.name: song_windows(song, **kwargs) for song in songs}
