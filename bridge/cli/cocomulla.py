"""``stembridge cocomulla train``: fine-tune a Coco-Mulla adapter on your own songs.

The training code lives in the worker-side package ``models.cocomulla`` and imports torch;
it is loaded by name only when the command runs, so the bridge itself never imports torch.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Any

EXIT_INPUT = 2


def cmd_train(args: argparse.Namespace) -> int:
    """Run the training and print the held-out loss of every epoch."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from models.base import ModelUnavailableError

    trainer: Any = importlib.import_module("models.cocomulla.train_main")
    with Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(),
                  disable=args.quiet) as bar:
        task = bar.add_task("training", total=None)

        def on_step(step: int, total: int, loss: float) -> None:
            bar.update(task, completed=step, total=total, description=f"training  loss {loss:.3f}")

        def on_epoch(epoch: int, held: float) -> None:
            bar.console.print(f"epoch {epoch}: held-out loss {held:.4f}")

        try:
            summary = trainer.run_training(
                data=args.data, out=args.out, model_path=args.model_path, debug=args.debug, init=args.init,
                epochs=args.epochs, lr=args.lr, clip=args.clip, held_out_songs=args.held_out,
                device=args.device, drop_conditions=args.drop_conditions, drop_text=args.drop_text,
                seed=args.seed, on_step=on_step, on_epoch=on_epoch,
            )
        except (ValueError, FileNotFoundError, FileExistsError, ModelUnavailableError) as exc:
            print(f"stembridge: {exc}", file=sys.stderr)
            return EXIT_INPUT
    print(
        f"trained on {summary.train_windows} windows of {summary.songs} songs "
        f"(held out: {summary.held_out_windows}); loss {summary.first_loss:.3f} -> {summary.last_loss:.3f}"
    )
    drop = summary.dropout
    print(
        f"condition dropout: piano roll and drums {drop['drop_conditions']:g} each, "
        f"text {drop['drop_text']:g} (seed {drop['seed']})"
    )
    print(f"adapter: {summary.out}  (use it with --adapter {summary.out})")
    return 0


def probability(text: str) -> float:
    """argparse type: a probability from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number; give a probability from 0 to 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not a probability; give a value from 0 to 1")
    return value


def add_cocomulla_commands(sub: Any) -> None:
    """Add ``cocomulla train`` to the ``stembridge`` sub-commands."""
    p = sub.add_parser("cocomulla", help="Coco-Mulla adapter tools")
    inner = p.add_subparsers(dest="cocomulla_command", required=True)
    t = inner.add_parser("train", help="fine-tune an adapter on a folder of songs (mix audio + MIDI each)")
    t.add_argument("--data", required=True, help="folder of song folders, each with one mix audio file and one .mid")
    t.add_argument("--out", required=True, help="adapter file to write (never overwritten)")
    t.add_argument("--model-path", help="local base model folder (default: facebook/musicgen-large from the cache)")
    t.add_argument("--init", help="adapter checkpoint to start from")
    t.add_argument("--epochs", type=int, default=10)
    t.add_argument("--lr", type=float, default=1e-4)
    t.add_argument("--clip", type=float, default=0.1, help="gradient-norm clip")
    t.add_argument("--held-out", type=int, default=1, help="songs kept out of training and scored per epoch")
    t.add_argument("--drop-conditions", type=probability, default=0.2, metavar="P",
                   help="per example, mask the piano roll with probability P and, apart, the drums "
                   "(the mask used where a song lacks them; default 0.2)")
    t.add_argument("--drop-text", type=probability, default=0.1, metavar="P",
                   help="per example, train on the empty prompt with probability P (what guidance "
                   "contrasts with; default 0.1)")
    t.add_argument("--seed", type=int, default=0, help="seed of the shuffling and the dropout (default 0)")
    t.add_argument("--device", help="cuda, mps or cpu (default: best available)")
    t.add_argument("--debug", action="store_true", help="tiny random base model (for tests)")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)
