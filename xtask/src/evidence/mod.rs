//! The evidence a run leaves: the rehearsal dir and its transcripts, `summary.json` (one typed
//! schema), SUMMARY.md and the screen, the manifest, the data plan and its attempt lines, and the
//! day's feedback file. [`record::Record`] owns the summary while the steps fill it and writes it
//! all at the end.

pub mod artifacts;
pub mod ci;
pub mod feedback;
pub mod impact;
pub mod junit;
pub mod manifest;
pub mod markdown;
pub mod next;
pub mod page;
pub mod plan;
pub mod provenance;
pub mod record;
pub mod report;
pub mod summary;
mod verdict;
