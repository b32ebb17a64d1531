//! Registry-shaped key sets for tests and benchmarks of gc-audit's S3 backend.
//!
//! Real registries are lopsided: blob data spread evenly over `blobs/sha256/<2 hex>/`, and
//! repositories of very different sizes (a few huge, many small, some nested) holding
//! `_layers` links, manifest revisions and tags. Listing strategies must be measured on that
//! shape, not on uniform keys.

/// A deterministic 64-hex string.
pub fn hex64(seed: u64) -> String {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    let mut out = String::with_capacity(64);
    for _ in 0..4 {
        x ^= x >> 33;
        x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
        x ^= x >> 33;
        out.push_str(&format!("{x:016x}"));
    }
    out
}

/// About `n` registry-shaped storage keys (without root), with sizes: blobs in
/// `blobs/sha256/xx/`, and per repository `_layers` links, revisions and tags, in repositories
/// of very different sizes (some nested), like a real registry.
pub fn registry_keys(n: usize) -> Vec<(String, usize)> {
    let v2 = "docker/registry/v2";
    let mut keys = Vec::with_capacity(n + 64);
    let blobs = n * 2 / 5;
    for i in 0..blobs {
        let h = hex64(i as u64);
        keys.push((
            format!("{v2}/blobs/sha256/{}/{h}/data", &h[..2]),
            100 + i % 5000,
        ));
    }
    let mut i = 0u64;
    let mut repo = 0usize;
    while keys.len() < n {
        // Repository sizes: a few huge, many small.
        let size = match repo % 10 {
            0 => 2000,
            1 | 2 => 300,
            _ => 40,
        };
        let name = match repo % 4 {
            0 => format!("library/app{repo}"),
            1 => format!("team-{}/svc{repo}/api", repo % 7),
            2 => format!("z{repo}"),
            _ => format!("mirror/docker.io/library/img{repo}"),
        };
        let base = format!("{v2}/repositories/{name}");
        for j in 0..size {
            if keys.len() >= n {
                break;
            }
            let h = hex64(1_000_000 + i);
            i += 1;
            let key = match j % 8 {
                0 => format!("{base}/_manifests/revisions/sha256/{h}/link"),
                1 => format!("{base}/_manifests/tags/v{j}/current/link"),
                2 => format!("{base}/_manifests/tags/v{}/index/sha256/{h}/link", j - 1),
                _ => format!("{base}/_layers/sha256/{h}/link"),
            };
            keys.push((key, 71));
        }
        repo += 1;
    }
    keys.sort();
    keys.dedup_by(|a, b| a.0 == b.0);
    keys
}
