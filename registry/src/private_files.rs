//! What in the data folder only its owner may read: the folder itself
//! (0700) and the files in it (0600: the database, the host key). On
//! Windows the folder's inherited ACL applies.

use std::path::Path;

/// Create `dir` and its parents (owner only); one that exists already is
/// fine and keeps its mode.
pub(crate) fn create_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir)
}

/// Open options that create a new file readable by its owner only.
pub(crate) fn new_file() -> std::fs::OpenOptions {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts
}

/// Restrict an existing file to its owner; a failure is logged, not fatal.
pub(crate) fn restrict(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
            tracing::warn!(%e, path = %path.display(), "cannot restrict the file to its owner");
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}
