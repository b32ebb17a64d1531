//! Replacing a file whole: written into a temporary file beside it, then renamed over it, so
//! a reader (a script, node_exporter's textfile collector) never sees half of it. The file is
//! made readable by all (0644) before the rename: the temporary file is created 0600, which a
//! collector running as another user could not read.

use anyhow::{Context, Result};
use std::io::Write;
use std::path::Path;

/// Replace `path` with `bytes` atomically.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".gc-audit-")
        .tempfile_in(dir)
        .with_context(|| format!("{}: creating a temporary file beside it", path.display()))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("{}: writing", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o644))
            .with_context(|| format!("{}: setting its permissions", path.display()))?;
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("{}: putting it in place", path.display()))?;
    Ok(())
}
