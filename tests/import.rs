//! `vestnik import` over saved pages in `tests/data/import`: the seed page
//! becomes the shipped entry byte for byte, every fixture's file is pinned,
//! problems are reported without stopping the run, nothing is overwritten.

mod common;

use std::path::{Path, PathBuf};

use common::{root, run};
use vestnik::model::Scope;
use vestnik::render::{Format, render};

const SEED_ENTRY: &str =
    "entries/2022/2022-08-22-ano-dialog-u-vsekh-gorodov-i-raionov-rossii-poiavilis.md";
const SEED_SECTION: &str = "informatizatsiia-organov-mestnogo-samoupravleniia";

/// A temporary data directory with the shipped `site.toml` and `sources.toml`.
fn data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in ["site.toml", "sources.toml"] {
        std::fs::copy(root().join("data").join(name), dir.path().join(name)).unwrap();
    }
    dir
}

fn fixture(name: &str) -> String {
    format!("tests/data/import/{name}")
}

/// Runs `vestnik import` into `data` and returns (exit code, stdout, stderr).
fn import(data: &Path, args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["import", "--data", data.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = run(&all);
    eprintln!(
        "vestnik {}\nexit {}\nstdout:\n{}\nstderr:\n{}",
        all.join(" "),
        out.0,
        out.1,
        out.2
    );
    out
}

/// Asserts the file at `rel` inside `data` holds exactly `expected`.
fn check_file(data: &Path, rel: &str, expected: &str) {
    let path = data.join(rel);
    let got = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    assert_eq!(got, expected, "{}", path.display());
}

/// Every file under `DATA/entries`, relative to `DATA`, sorted.
fn written(data: &Path) -> Vec<String> {
    let mut files: Vec<String> = walk(&data.join("entries"))
        .into_iter()
        .map(|p| {
            p.strip_prefix(data)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/")
        })
        .collect();
    files.sort();
    files
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    read.flat_map(|e| {
        let p = e.unwrap().path();
        if p.is_dir() { walk(&p) } else { vec![p] }
    })
    .collect()
}

/// The `<item>` of `rss` that contains `needle`.
fn item<'a>(rss: &'a str, needle: &str) -> &'a str {
    rss.split("<item>")
        .skip(1)
        .map(|s| s.split("</item>").next().unwrap())
        .find(|s| s.contains(needle))
        .unwrap_or_else(|| panic!("no <item> containing {needle}"))
}

#[test]
fn seed_page_becomes_the_shipped_entry() {
    let data = data_dir();
    let (code, stdout, stderr) = import(
        data.path(),
        &[&fixture("seed.txt"), "--section", SEED_SECTION],
    );
    assert_eq!(code, 0);
    assert_eq!(written(data.path()), [SEED_ENTRY]);
    let shipped = std::fs::read(root().join("data").join(SEED_ENTRY)).unwrap();
    let ours = std::fs::read(data.path().join(SEED_ENTRY)).unwrap();
    // Compared as text first for a readable diff, then byte for byte.
    assert_eq!(
        String::from_utf8_lossy(&ours),
        String::from_utf8_lossy(&shipped)
    );
    assert!(ours == shipped, "the bytes differ");
    assert!(
        stdout.contains(&format!(
            "tests/data/import/seed.txt: imported as {}",
            data.path().join(SEED_ENTRY).display()
        )),
        "{stdout}"
    );
    assert!(
        stderr.contains("imported 1, skipped 0 (existing files), problems 0"),
        "{stderr}"
    );

    let (code, stdout, stderr) = run(&["check", data.path().to_str().unwrap()]);
    assert_eq!((code, stdout.as_str()), (0, ""), "{stderr}");

    let id = "2022-08-22-ano-dialog-u-vsekh-gorodov-i-raionov-rossii-poiavilis";
    let imported = vestnik::load_site(data.path()).unwrap();
    let reference = vestnik::load_site(&root().join("data")).unwrap();
    let find = |site: &vestnik::model::Site| {
        site.entries
            .iter()
            .find(|e| e.id == id)
            .cloned()
            .unwrap_or_else(|| panic!("no entry {id}"))
    };
    assert_eq!(find(&imported), find(&reference));

    let rss = |site: &vestnik::model::Site| {
        let section = site.config.section(SEED_SECTION).unwrap();
        String::from_utf8(render(
            &site.feed(Scope::Section(section)),
            Format::Rss,
            vestnik::render::Retain::Keep,
        ))
        .unwrap()
    };
    let (ours, theirs) = (rss(&imported), rss(&reference));
    assert_eq!(item(&ours, id), item(&theirs, id));
}

const CP1251_ENTRY: &str = r#"+++
title = "В Томске обсудили развитие муниципальных геоинформационных систем"
date = "12.10.2022"
sections = ["informatizatsiia-organov-mestnogo-samoupravleniia"]

[source]
name = "Информационное агентство URA.RU"
url = "https://ura.news/"
+++

Специалисты администраций городов Сибири и Дальнего Востока обменялись опытом внедрения геоинформационных систем в муниципальном управлении.

По словам участников, «цифровые двойники» городов уже помогают планировать ремонт дорог и инженерных сетей — на 15% дешевле, чем год назад.

Следующая встреча рабочей группы пройдёт в Красноярске; доклады принимаются до 1 ноября.
"#;

const TWO_SECTIONS_ENTRY: &str = r#"+++
title = "Иркутск готовится к отопительному сезону"
date = "20.09.2022"
sections = ["zhilishchno-kommunalnoe-khoziaistvo-i-stroitelstvo", "po-voprosam-go-chs-i-opb"]

[source]
name = "Информационное агентство URA.RU"
url = "https://ura.news/"
+++

В Иркутске завершается подготовка жилого фонда и котельных к отопительному сезону 2022–2023 годов.

Штаб по ГО и ЧС проверил резервные источники питания на социальных объектах.
"#;

const CRLF_ENTRY: &str = r#"+++
title = "Омск получил первые электробусы"
date = "05.09.2022"
sections = ["gorodskoi-passazhirskii-transport"]

[source]
name = "Пресс-служба администрации Омска"
+++

На маршруты Омска вышли первые десять электробусов, закупленных по национальному проекту «Безопасные качественные дороги».

Зарядные станции установлены на конечных остановках маршрутов № 60 и № 69.
"#;

const NO_SOURCE_ENTRY: &str = r#"+++
title = "В Чите утвердили новые правила благоустройства"
date = "07.07.2023"
sections = ["gradoustroistvo"]
+++

Городская дума Читы утвердила новую редакцию правил благоустройства территории городского округа.

Документ уточняет требования к содержанию фасадов, вывесок и придомовых территорий.
"#;

const MARKDOWN_ENTRY: &str = r#"+++
title = "Новосибирск: итоги конкурса «Лучший муниципальный сайт»"
date = "28.11.2022"
sections = ["informatizatsiia-organov-mestnogo-samoupravleniia"]

[source]
name = "Пресс-служба мэрии Новосибирска"
+++

Жюри подвело итоги конкурса среди городов АСДГ:

1\. Новосибирск — 96 баллов;

\- Томск и Омск разделили второе место;

\# оценивались &lt;доступность> и скорость загрузки страниц, а также \*удобство\* поиска.
"#;

#[test]
fn good_pages_are_imported_and_bad_ones_reported() {
    let data = data_dir();
    let files = [
        "cp1251.txt",
        "no-date.txt",
        "crlf.txt",
        "no-source.txt",
        "unknown-section.txt",
        "two-sections.txt",
        "markdown-lines.txt",
    ]
    .map(fixture);
    let mut args: Vec<&str> = files.iter().map(String::as_str).collect();
    args.extend(["--section", SEED_SECTION]);
    let (code, stdout, stderr) = import(data.path(), &args);
    assert_eq!(code, 1, "a page with a problem makes the exit code 1");

    let cases = [
        (
            "entries/2022/2022-10-12-v-tomske-obsudili-razvitie-munitsipalnykh.md",
            CP1251_ENTRY,
        ),
        (
            "entries/2022/2022-09-05-omsk-poluchil-pervye-elektrobusy.md",
            CRLF_ENTRY,
        ),
        (
            "entries/2023/2023-07-07-v-chite-utverdili-novye-pravila-blagoustroistva.md",
            NO_SOURCE_ENTRY,
        ),
        (
            "entries/2022/2022-09-20-irkutsk-gotovitsia-k-otopitelnomu-sezonu.md",
            TWO_SECTIONS_ENTRY,
        ),
        (
            "entries/2022/2022-11-28-novosibirsk-itogi-konkursa-luchshii-munitsipalnyi-sait.md",
            MARKDOWN_ENTRY,
        ),
    ];
    for (rel, expected) in cases {
        check_file(data.path(), rel, expected);
    }
    let mut expected_files: Vec<&str> = cases.iter().map(|(rel, _)| *rel).collect();
    expected_files.sort();
    assert_eq!(
        written(data.path()),
        expected_files,
        "nothing is written for a page with a problem"
    );

    // Problems come last on stdout, each as `FILE: reason`, in input order.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[lines.len() - 2..],
        [
            "tests/data/import/no-date.txt: no date line (DD.MM.YYYY) found; put the publication date on its own line after the title",
            "tests/data/import/unknown-section.txt: unknown section \"Потребительский рынок\" on the «Секции АСДГ:» line (known: Информатизация органов местного самоуправления, Земельно-имущественные отношения, По информационной политике, По местному самоуправлению, Жилищно-коммунальное хозяйство и строительство, Потребительский рынок и услуги, Городской пассажирский транспорт, Градоустройство, Юридическая секция, Муниципальное образование, Экономика и финансы города, Муниципальная молодежная политика, Организационная и кадровая работа органов местного самоуправления, Внешнеэкономическая и международная деятельность, Социально-трудовые отношения, По вопросам организации муниципальных выборов, По вопросам ГО,ЧС и ОПБ, Муниципальный спорт и физическая культура); fix the name on the page or add the section to site.toml",
        ]
    );
    assert!(
        stdout.contains("tests/data/import/cp1251.txt: imported as "),
        "{stdout}"
    );
    assert!(
        stderr.contains("imported 5, skipped 0 (existing files), problems 2"),
        "{stderr}"
    );

    // What was written is valid data: check finds nothing, and every entry loads.
    let (code, check_out, check_err) = run(&["check", data.path().to_str().unwrap()]);
    assert_eq!((code, check_out.as_str()), (0, ""), "{check_err}");
    let site = vestnik::load_site(data.path()).unwrap();
    let two = site
        .entries
        .iter()
        .find(|e| e.id == "2022-09-20-irkutsk-gotovitsia-k-otopitelnomu-sezonu")
        .unwrap();
    assert_eq!(
        two.sections,
        [
            "zhilishchno-kommunalnoe-khoziaistvo-i-stroitelstvo",
            "po-voprosam-go-chs-i-opb"
        ]
    );
    let md = site
        .entries
        .iter()
        .find(|e| e.id.starts_with("2022-11-28-"))
        .unwrap();
    let html = md.body.get(vestnik::render::Retain::Keep);
    assert!(
        html.contains(
            "<p>1. Новосибирск — 96 баллов;</p>\n<p>- Томск и Омск разделили второе место;</p>\n<p># оценивались &lt;доступность&gt; и скорость загрузки страниц, а также *удобство* поиска.</p>"
        ),
        "the escaped lines render as the page's text: {html}"
    );
}

#[test]
fn page_without_sections_needs_a_valid_section_flag() {
    let data = data_dir();
    let seed = fixture("seed.txt");
    let (code, stdout, _) = import(data.path(), &[&seed]);
    assert_eq!(code, 1);
    assert_eq!(
        stdout.trim_end(),
        "tests/data/import/seed.txt: no section named on the page; pass --section SLUG"
    );
    let (code, stdout, _) = import(data.path(), &[&seed, "--section", "informatizatsiia"]);
    assert_eq!(code, 1);
    assert!(
        stdout.starts_with("tests/data/import/seed.txt: no section named on the page and --section \"informatizatsiia\" is not a section slug in site.toml (known: informatizatsiia-organov-mestnogo-samoupravleniia, "),
        "{stdout}"
    );
    assert!(written(data.path()).is_empty());
}

#[test]
fn existing_files_are_never_overwritten() {
    let data = data_dir();
    let page = fixture("two-sections.txt");
    let rel = "entries/2022/2022-09-20-irkutsk-gotovitsia-k-otopitelnomu-sezonu.md";
    let (code, _, _) = import(data.path(), &[&page]);
    assert_eq!(code, 0);
    check_file(data.path(), rel, TWO_SECTIONS_ENTRY);

    // An editor has since corrected the entry; a second import keeps the edit.
    let edited = TWO_SECTIONS_ENTRY.replace("Штаб", "Городской штаб");
    std::fs::write(data.path().join(rel), &edited).unwrap();
    let (code, stdout, stderr) = import(data.path(), &[&page]);
    assert_eq!(code, 0, "an existing file is not a problem");
    assert_eq!(
        stdout.trim_end(),
        format!(
            "tests/data/import/two-sections.txt: skipped, {} already exists",
            data.path().join(rel).display()
        )
    );
    assert!(
        stderr.contains("imported 0, skipped 1 (existing files), problems 0"),
        "{stderr}"
    );
    check_file(data.path(), rel, &edited);

    // The same page twice in one run: the second is a skip, in a dry run too.
    let other = data_dir();
    let (code, stdout, stderr) = import(other.path(), &[&page, &page, "--dry-run"]);
    assert_eq!(code, 0);
    assert!(stdout.contains("skipped"), "{stdout}");
    assert!(
        stderr.contains("would import 1, skipped 1 (existing files), problems 0"),
        "{stderr}"
    );
}

#[test]
fn dry_run_prints_path_and_content_and_writes_nothing() {
    let data = data_dir();
    let (code, stdout, stderr) = import(
        data.path(),
        &[&fixture("cp1251.txt"), &fixture("no-date.txt"), "--dry-run"],
    );
    assert_eq!(code, 1, "problems count in a dry run too");
    let path = data
        .path()
        .join("entries/2022/2022-10-12-v-tomske-obsudili-razvitie-munitsipalnykh.md");
    assert!(
        stdout.starts_with(&format!(
            "tests/data/import/cp1251.txt: would write {}\n{CP1251_ENTRY}\n",
            path.display()
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("tests/data/import/no-date.txt: no date line"),
        "{stdout}"
    );
    assert!(
        stderr.contains(
            "dry run: would import 1, skipped 0 (existing files), problems 1; nothing written"
        ),
        "{stderr}"
    );
    assert!(!data.path().join("entries").exists(), "nothing written");
}

#[test]
fn without_sources_toml_no_url_is_added() {
    let data = data_dir();
    std::fs::remove_file(data.path().join("sources.toml")).unwrap();
    let (code, _, _) = import(data.path(), &[&fixture("cp1251.txt")]);
    assert_eq!(code, 0);
    check_file(
        data.path(),
        "entries/2022/2022-10-12-v-tomske-obsudili-razvitie-munitsipalnykh.md",
        &CP1251_ENTRY.replace("url = \"https://ura.news/\"\n", ""),
    );
}

#[test]
fn broken_configuration_stops_the_run() {
    let data = data_dir();
    std::fs::write(
        data.path().join("sources.toml"),
        "[[sources]]\nname = \"ТАСС\"\nurl = \"tass.ru\"\n",
    )
    .unwrap();
    let (code, _, stderr) = import(data.path(), &[&fixture("cp1251.txt")]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("sources.toml:3:7: source url \"tass.ru\" must be an absolute http(s) URL"),
        "{stderr}"
    );
    assert!(written(data.path()).is_empty());

    let empty = tempfile::tempdir().unwrap();
    let (code, _, stderr) = import(empty.path(), &[&fixture("cp1251.txt")]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("site.toml:1:1: cannot read site configuration"),
        "{stderr}"
    );
}
