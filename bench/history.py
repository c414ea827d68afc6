"""History benchmark: listing and searching a year of daily one-hour sessions.

A journal of one hour of speech is written with `JournalWriter` (the real format: every line
with its words and their times), then copied to one journal per day for a year, each with its
own date and id. The history index is then built, and listing and searching are timed.

    .venv/bin/python bench/history.py              # 365 sessions of one hour
    .venv/bin/python bench/history.py --days 30    # quicker

Targets (issue 15): the list under 200 ms, a search under 1 s.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from captioner.core.captions import Utterance  # noqa: E402
from captioner.core.messages import Word  # noqa: E402
from captioner.history import History  # noqa: E402
from captioner.journal import FINISHED_SUFFIX, JournalWriter  # noqa: E402

VOCABULARY = [
    "the",
    "a",
    "and",
    "to",
    "of",
    "in",
    "that",
    "we",
    "it",
    "is",
    "for",
    "on",
    "this",
    "with",
    "as",
    "you",
    "they",
    "be",
    "at",
    "have",
    "our",
    "from",
    "meeting",
    "budget",
    "quarter",
    "project",
    "team",
    "customer",
    "release",
    "plan",
    "question",
    "review",
    "design",
    "week",
    "month",
    "today",
    "tomorrow",
    "report",
    "number",
    "people",
    "office",
    "market",
    "product",
    "service",
    "data",
    "time",
    "point",
    "issue",
    "change",
    "support",
    "process",
    "system",
    "result",
    "problem",
    "decision",
    "idea",
]
RARE = "zeppelin"


def one_hour(rng: random.Random) -> list[Utterance]:
    """About 9,000 words in utterances of 8 to 20 words, as an hour of talk."""
    utterances = []
    clock = 0.0
    while clock < 3600:
        count = rng.randint(8, 20)
        words = []
        for _ in range(count):
            text = rng.choice(VOCABULARY)
            words.append(Word(text, clock, clock + 0.3, 0.9, text, None, None))
            clock += 0.4
        words[-1] = Word(words[-1].word, words[-1].start, words[-1].end, 0.9, words[-1].word + ".")
        text = " ".join(w.display for w in words)
        utterances.append(
            Utterance(0, text[0].upper() + text[1:], words[0].start, clock, tuple(words), None)
        )
        clock += 1.0
    return utterances


def make_year(folder: Path, days: int) -> tuple[int, int]:
    """`days` journals, one per day; returns (bytes per journal, lines per journal)."""
    rng = random.Random(7)
    template_dir = folder.parent / "template"
    writer = JournalWriter.create(
        engine="Offline engine", source="USB Microphone", folder=template_dir
    )
    hour = one_hour(rng)
    for utterance in hour:
        writer.append(utterance)
    template = writer.finish()
    head, _, rest = template.read_bytes().partition(b"\n")
    header = json.loads(head)
    folder.mkdir(parents=True, exist_ok=True)
    start = datetime(2025, 12, 1, 9, 0).astimezone()
    for day in range(days):
        when = start + timedelta(days=day)
        header["started"] = when.isoformat(timespec="seconds")
        body = rest
        if day % 73 == 0:  # a rare word in five sessions of the year
            body = body.replace(b'"text":"', f'"text":"{RARE} '.encode(), 1)
        name = when.strftime("%Y%m%d-%H%M%S") + f"-1{FINISHED_SUFFIX}"
        (folder / name).write_bytes(json.dumps(header).encode() + b"\n" + body)
    shutil.rmtree(template_dir)
    return len(head) + 1 + len(rest), len(hour)


def timed(action: Callable[[], object], runs: int = 5) -> tuple[float, object]:
    times, result = [], None
    for _ in range(runs):
        started = time.perf_counter()
        result = action()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "journal"
        started = time.perf_counter()
        size, lines = make_year(folder, args.days)
        made = time.perf_counter() - started
        history = History(folder)
        started = time.perf_counter()
        history.refresh()
        built = time.perf_counter() - started
        index_mb = history.index.stat().st_size / 1e6
        history.close()

        def listing() -> object:
            with History(folder) as fresh:  # as the dialog opens: connect, refresh, list
                fresh.refresh()
                return fresh.sessions()

        list_s, sessions = timed(listing)
        history = History(folder)
        rows = [
            ("list every session (open, refresh, read)", list_s, len(sessions), 0.2),  # type: ignore[arg-type]
        ]
        for label, query in (
            ("search a common word", "budget"),
            ("search two words", "customer release"),
            ("search the start of a word", "proj"),
            ("search a rare word", RARE),
            ("search Japanese, a scan of every line", "天気"),
        ):
            seconds, hits = timed(lambda q=query: history.search(q))
            rows.append((f"{label} ({query!r})", seconds, len(hits), 1.0))  # type: ignore[arg-type]
        history.close()
    print(
        f"{args.days} journals of one hour: {size / 1e6:.1f} MB and {lines} lines each; "
        f"written in {made:.1f} s"
    )
    print(f"first index build: {built:.1f} s; index {index_mb:.0f} MB\n")
    print("| what | median of 5 | results | target |")
    print("|---|---|---|---|")
    for label, seconds, count, target in rows:
        verdict = "ok" if seconds <= target else "MISSED"
        print(
            f"| {label} | {seconds * 1000:.0f} ms | {count} | < {target * 1000:.0f} ms {verdict} |"
        )


if __name__ == "__main__":
    main()
