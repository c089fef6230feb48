//! This process's memory, for the benches and tests that put figures on it
//! (Linux `/proc/self/status`; 0 where it cannot be read).

/// Current resident set (`VmRSS`), in bytes.
pub fn resident_bytes() -> u64 {
    status_kib("VmRSS:") * 1024
}

/// Peak resident set so far (`VmHWM`), in bytes.
pub fn peak_resident_bytes() -> u64 {
    status_kib("VmHWM:") * 1024
}

/// Bytes as MiB, for printing.
pub fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1u64 << 20) as f64
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_is_resident() {
        let now = super::resident_bytes();
        assert!(now > 1 << 20, "{now}");
        assert!(super::peak_resident_bytes() >= now);
    }
}
