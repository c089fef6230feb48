//! Environment names: one rule for `weftapp.toml` (checked in the apps
//! component) and `weft.toml` (checked by the kernel).

/// Longest environment name.
pub const MAX_ENV_NAME: usize = 32;

/// Is `name` a valid environment name: 1 to 32 of `[a-z0-9-]`, starting
/// with a letter?
pub fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_ENV_NAME
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(valid_env_name("dev"));
        assert!(valid_env_name("eu-west-2"));
        assert!(!valid_env_name(""));
        assert!(!valid_env_name("Dev"));
        assert!(!valid_env_name("2x"));
        assert!(!valid_env_name(&"a".repeat(33)));
    }
}
