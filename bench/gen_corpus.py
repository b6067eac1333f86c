#!/usr/bin/env python3
"""Generate a deterministic Vestnik data directory for benchmarks.

Usage: bench/gen_corpus.py OUT --entries N [--sections S] [--seed K]

Writes OUT/site.toml with S sections and OUT/entries/{year}/{n}.md with N
entries in the data contract: ~1.5 KB Markdown bodies, one or two sections
each, and every date form (TOML dates and datetimes, YYYY-MM-DD, RFC 3339,
DD.MM.YYYY, DD.MM.YYYY HH:MM). The same arguments always give the same bytes.
"""

import argparse
import os
import random

WORDS = (
    "город администрация секция транспорт автобус маршрут жители бюджет "
    "проект программа совет депутаты ремонт дорога школа спорт молодежь "
    "выборы цифровизация услуги портал обращение экономика финансы закон "
    "земельный участок строительство жилье отопление благоустройство "
    "парк площадь трамвай троллейбус фестиваль форум ассоциация Сибирь "
    "Новосибирск Омск Томск Красноярск Иркутск Барнаул Хабаровск Владивосток"
).split()


def sentence(rng):
    n = rng.randint(8, 16)
    words = [rng.choice(WORDS) for _ in range(n)]
    words[0] = words[0].capitalize()
    return " ".join(words) + "."


def paragraph(rng):
    return " ".join(sentence(rng) for _ in range(rng.randint(2, 4)))


def body(rng):
    parts = []
    size = 0
    while size < 1400:
        p = paragraph(rng)
        if rng.random() < 0.15:
            p = "**" + p.split(".")[0] + ".**" + p[len(p.split(".")[0]) + 1:]
        parts.append(p)
        size += len(p.encode("utf-8"))
    return "\n\n".join(parts)


def date_value(rng, i):
    year = 2015 + (i * 7919) % 11
    month = rng.randint(1, 12)
    day = rng.randint(1, 28)
    hour, minute = rng.randint(0, 23), rng.randint(0, 59)
    form = i % 7
    if form == 0:
        return f"{year:04}-{month:02}-{day:02}", year
    if form == 1:
        return f"{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:00", year
    if form == 2:
        return f"{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:00+07:00", year
    if form == 3:
        return f'"{year:04}-{month:02}-{day:02}"', year
    if form == 4:
        return f'"{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:00+09:00"', year
    if form == 5:
        return f'"{day:02}.{month:02}.{year:04}"', year
    return f'"{day:02}.{month:02}.{year:04} {hour:02}:{minute:02}"', year


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--entries", type=int, required=True)
    ap.add_argument("--sections", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--base-url", default="http://localhost:8080/")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    slugs = [f"section-{k:02}" for k in range(args.sections)]
    os.makedirs(os.path.join(args.out, "entries"), exist_ok=True)
    with open(os.path.join(args.out, "site.toml"), "w", encoding="utf-8") as f:
        f.write('title = "Бенчмарк"\n')
        f.write('description = "Сгенерированный корпус"\n')
        f.write(f'base_url = "{args.base_url}"\n')
        f.write('language = "ru"\ntimezone = "Asia/Novosibirsk"\nauthor = "Bench"\n')
        for k, slug in enumerate(slugs):
            f.write(f'\n[[sections]]\nslug = "{slug}"\ntitle = "Секция {k}"\n')
    for i in range(args.entries):
        date, year = date_value(rng, i)
        secs = rng.sample(slugs, rng.randint(1, 2))
        title = sentence(rng)[:-1]
        source = ""
        if i % 3 == 0:
            source = '\n[source]\nname = "Информационное агентство URA.RU"\nurl = "https://ura.news/"\n'
        text = (
            "+++\n"
            f'title = "{title}"\n'
            f"date = {date}\n"
            f"sections = [{', '.join(chr(34) + s + chr(34) for s in secs)}]\n"
            f"{source}"
            "+++\n\n"
            f"{body(rng)}\n"
        )
        d = os.path.join(args.out, "entries", str(year))
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"e{i:06}.md"), "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    main()
