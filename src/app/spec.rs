//! Reading a spec file: the only place its bytes are read ([`crate::domain::spec`] parses them).

use std::path::Path;

use crate::domain::spec::{self, Error, ErrorKind, Spec};

/// Read and parse a spec file.
pub fn read(path: &Path) -> Result<Spec, Error> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| Error {
        path: shown.clone(),
        line: None,
        kind: ErrorKind::Missing(match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            _ => e.to_string(),
        }),
        source_line: None,
    })?;
    spec::parse_bytes(&shown, &bytes)
}
