//! Every tree walk of the tool (migrations, rollbacks, the test layout, the manifest, cluster
//! copies) goes through [`tree`], so all of them treat symlinks alike: a symlink to a file or a
//! directory is followed (a symlinked migration is rehearsed, not skipped), entries come sorted by
//! name, and a symlink loop is an error rather than a hang.

use std::path::Path;

use walkdir::WalkDir;

/// A sorted walk of `root` that follows symlinks.
pub fn tree(root: &Path) -> WalkDir {
    WalkDir::new(root).follow_links(true).sort_by_file_name()
}

/// The files directly in `dir` (symlinks followed), sorted; `None` when `dir` cannot be read.
pub fn files_in(dir: &Path) -> Option<Vec<walkdir::DirEntry>> {
    if !dir.is_dir() {
        return None;
    }
    let mut files = Vec::new();
    for entry in tree(dir).min_depth(1).max_depth(1) {
        let entry = entry.ok()?;
        if entry.file_type().is_file() {
            files.push(entry);
        }
    }
    Some(files)
}
