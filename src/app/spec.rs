//! Reading a spec file: the only place its bytes are read ([`crate::domain::spec`] parses them).

use std::path::Path;

use crate::domain::spec::{self, Error, ErrorKind, Spec};

/// The largest spec read (bytes): a requirements document is far smaller; a device or a
/// mistaken path (`/dev/zero`) is not read until memory runs out.
pub const MAX_SPEC: u64 = 16 << 20;

/// Read and parse a spec file.
pub fn read(path: &Path) -> Result<Spec, Error> {
    use std::io::Read;
    let shown = path.display().to_string();
    let fail =
        |why: String| Error { path: shown.clone(), line: None, kind: ErrorKind::Missing(why), source_line: None };
    let file = std::fs::File::open(path).map_err(|e| {
        fail(match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            _ => e.to_string(),
        })
    })?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        return Err(fail("a directory, not a spec file".into()));
    }
    let mut bytes = Vec::new();
    file.take(MAX_SPEC + 1).read_to_end(&mut bytes).map_err(|e| fail(e.to_string()))?;
    if bytes.len() as u64 > MAX_SPEC {
        return Err(fail(format!("larger than {} MiB: not read (is it a requirements document?)", MAX_SPEC >> 20)));
    }
    spec::parse_bytes(&shown, &bytes)
}
