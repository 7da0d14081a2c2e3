//! medic's launchctl adapter: inspect a job with `launchctl print` (or `list`)
//! into facts and a classification (healthy / idle / failed / missing), start
//! it with `kickstart -k` or `bootstrap`, take it down with `bootout`, and keep
//! its plist as last known good to roll back to.
//!
//! Architecture invariant: no recovery decisions here; the core decides, this
//! crate does one launchctl thing per call and reports what happened. The only
//! loops are launchctl protocol facts (see `client.rs`), bounded by deadlines.
//! Everything but the location of launchctl compiles and is tested on Linux.

mod client;
mod error;
mod facts;
pub mod names;
pub mod plist;
mod verdict;

pub use client::{
    BOOTOUT_WAIT, BOOTSTRAP_TRIES, DEFAULT_PROGRAM, EXIT_IO_ERROR, EXIT_NOT_FOUND, Launchctl,
    current_uid,
};
pub use error::LaunchdError;
pub use facts::{JobFacts, LastExit, ListEntry, Source, parse_list, parse_list_table, parse_print};
pub use plist::PlistCopy;
pub use verdict::{Classification, Expect, Verdict, classify};
