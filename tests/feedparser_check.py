"""Parse feed files with Python's feedparser and report what it saw as JSON.

Usage: python3 tests/feedparser_check.py FILE...

Prints one JSON object per file: bozo flag, the bozo exception if any, the
detected version, the entry count, and each entry's id, link, published date
(as an RFC 3339 UTC string) and title. The Rust tests decide what is right.
"""

import calendar
import datetime
import json
import sys

import feedparser


def iso(parsed):
    if not parsed:
        return None
    ts = calendar.timegm(parsed)
    return datetime.datetime.fromtimestamp(ts, datetime.timezone.utc).isoformat()


def main(paths):
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        d = feedparser.parse(data)
        print(json.dumps({
            "file": path,
            "bozo": int(d.bozo),
            "bozo_exception": str(d.get("bozo_exception", "")),
            "version": d.version,
            "title": d.feed.get("title"),
            "entries": [
                {
                    "id": e.get("id"),
                    "link": e.get("link"),
                    "title": e.get("title"),
                    "published": iso(e.get("published_parsed")),
                }
                for e in d.entries
            ],
        }, ensure_ascii=False))


if __name__ == "__main__":
    main(sys.argv[1:])
