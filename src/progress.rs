//! The progress bar of the long commands (`build`, `import`): drawn on
//! stderr when it is a terminal, hidden otherwise, so logs and CI stay quiet.

use std::io::IsTerminal as _;

/// A bar of `len` steps, drawn with indicatif's `template`.
pub fn bar(len: usize, template: &str) -> indicatif::ProgressBar {
    if !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}
