//! Progress bars of long work (ingest, budget runs, synthesis batches, generated corpora).
//!
//! A command-line run draws each bar on standard error. A program that embeds tdscale installs an
//! observer with [`observe`] instead: every bar started from then on stays off the terminal and is
//! handed to the observer, which shows its position and length its own way (the Python package
//! turns them into notebook progress bars).

use std::sync::OnceLock;

use indicatif::ProgressBar;

/// What a bar counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    Items,
    Bytes,
}

/// Receives each bar as it starts, with its label and units.
pub type Observer = Box<dyn Fn(&ProgressBar, &str, Units) + Send + Sync>;

static OBSERVER: OnceLock<Observer> = OnceLock::new();

/// Installs the observer of every bar started from now on in this process. Returns false (and
/// keeps the first) when one is installed already.
pub fn observe(observer: Observer) -> bool {
    OBSERVER.set(observer).is_ok()
}

/// A bar of `len` units (a spinner when the length is unknown) for the work called `label`, or a
/// hidden bar when `enabled` is false. Position and length are kept either way.
///
/// ```
/// let bar = tdscale::progress::bar(false, Some(10), "demo", tdscale::progress::Units::Items);
/// bar.inc(3);
/// assert_eq!((bar.position(), bar.length()), (3, None));
/// ```
pub fn bar(enabled: bool, len: Option<u64>, label: &str, units: Units) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    match OBSERVER.get() {
        Some(observer) => {
            let bar = ProgressBar::hidden();
            if let Some(len) = len {
                bar.set_length(len);
            }
            observer(&bar, label, units);
            bar
        }
        None => match len {
            Some(len) => ProgressBar::new(len),
            None => ProgressBar::new_spinner(),
        },
    }
}
