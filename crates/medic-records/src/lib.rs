//! medic's records on disk, shared by the daemon that writes them and the
//! commands that read them back: how a file is written (`files`: 0600, atomic
//! replace, `FileHealth`), the append-only journals and the formats of their
//! lines (`journal`, each writer's open file in `journal_file`), reading lines back (`lines`: a torn last line skipped,
//! any other bad line reported), rotated files (`rotation`), the availability history
//! file (`history`), where the writers run (`writers`: off the loop, or in
//! step with it in a simulation), and the report built from the recovery log and that
//! history (`report`, also the scheduled digest's Markdown).
//!
//! Architecture invariant: nothing here decides about recovery or talks to an
//! engine; it writes and reads files, and the wire formats are its own serde
//! types (core types derive no Serialize).

pub mod files;
pub mod history;
pub mod journal;
mod journal_file;
pub mod lines;
pub mod report;
pub mod rotation;
pub mod writers;
