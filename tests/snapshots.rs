//! The seed entry's bytes in RSS and Atom, pinned with insta. Reviewed by hand:
//! see the .snap files under tests/snapshots/.

mod common;

use vestnik::model::Scope;
use vestnik::render::{Format, render};

fn feed(format: Format) -> String {
    let site = vestnik::load_site(&common::root().join("tests/data/seed")).expect("fixture");
    assert!(site.diagnostics.is_empty(), "{:#?}", site.diagnostics);
    let section = site
        .config
        .section("informatizatsiia-organov-mestnogo-samoupravleniia")
        .unwrap();
    String::from_utf8(render(
        &site.feed(Scope::Section(section)),
        format,
        vestnik::render::Retain::Keep,
    ))
    .unwrap()
}

#[test]
fn seed_entry_rss() {
    insta::assert_snapshot!(feed(Format::Rss));
}

#[test]
fn seed_entry_atom() {
    insta::assert_snapshot!(feed(Format::Atom));
}
