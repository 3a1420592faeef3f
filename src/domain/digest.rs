//! Digests that bind approvals to exactly what was shown: SHA-256 over canonical bytes.

use sha2::{Digest, Sha256};

/// `sha256:<hex>` of some bytes.
pub fn of_bytes(bytes: &[u8]) -> String {
    let d = Sha256::digest(bytes);
    let mut s = String::with_capacity(7 + 64);
    s.push_str("sha256:");
    for b in d {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

/// Digest of a JSON value in canonical form (object keys sorted, as serde_json's map keeps them).
pub fn of_json(v: &serde_json::Value) -> String {
    of_bytes(serde_json::to_string(v).unwrap_or_default().as_bytes())
}

/// The first 12 hex digits, for display and tokens.
pub fn short(d: &str) -> &str {
    let hex = d.strip_prefix("sha256:").unwrap_or(d);
    &hex[..hex.len().min(12)]
}

#[cfg(test)]
mod tests {
    #[test]
    fn key_order_does_not_matter() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":[1,2]}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"b":[1,2],"a":1}"#).unwrap();
        assert_eq!(super::of_json(&a), super::of_json(&b));
        assert_ne!(super::of_bytes(b"x"), super::of_bytes(b"y"));
    }
}
