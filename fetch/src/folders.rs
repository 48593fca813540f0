//! Where spamlens keeps its files outside any checkout, so an installed `spamlens` or
//! `spamlens-train` works from every directory: downloads in the user's cache folder, made models
//! (the converted backbone) in the user's data folder, both XDG and overridable by environment.

use std::path::PathBuf;

/// Environment variable overriding the download cache folder.
pub const CACHE_ENV: &str = "SPAMLENS_CACHE";
/// Environment variable overriding the data folder (the converted backbone lives there).
pub const DATA_ENV: &str = "SPAMLENS_DATA";

/// The download cache: `$SPAMLENS_CACHE`, else `$XDG_CACHE_HOME/spamlens`, else
/// `~/.cache/spamlens`, else `spamlens-cache` in the temporary folder (no home at all).
pub fn cache_dir() -> PathBuf {
    user_folder(CACHE_ENV, "XDG_CACHE_HOME", &[".cache"], "spamlens-cache")
}

/// The data folder: `$SPAMLENS_DATA`, else `$XDG_DATA_HOME/spamlens`, else
/// `~/.local/share/spamlens`, else `spamlens-data` in the temporary folder (no home at all).
pub fn data_dir() -> PathBuf {
    user_folder(DATA_ENV, "XDG_DATA_HOME", &[".local", "share"], "spamlens-data")
}

fn user_folder(own: &str, xdg: &str, under_home: &[&str], fallback: &str) -> PathBuf {
    let set = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = set(own) {
        return dir;
    }
    // The XDG base directory spec ignores relative values.
    if let Some(dir) = set(xdg).filter(|d| d.is_absolute()) {
        return dir.join("spamlens");
    }
    if let Some(home) = set("HOME") {
        return under_home.iter().fold(home, |dir, part| dir.join(part)).join("spamlens");
    }
    std::env::temp_dir().join(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    // One test touches the environment, so no other test in this binary races with it.
    #[test]
    fn folders_follow_the_override_then_xdg_then_home() {
        let saved: Vec<_> = [CACHE_ENV, DATA_ENV, "XDG_CACHE_HOME", "XDG_DATA_HOME", "HOME"]
            .iter()
            .map(|name| (*name, std::env::var_os(name)))
            .collect();
        // SAFETY: this is the only test in the crate that reads or writes these variables.
        unsafe {
            std::env::set_var("HOME", "/home/u");
            std::env::remove_var(CACHE_ENV);
            std::env::remove_var(DATA_ENV);
            std::env::remove_var("XDG_CACHE_HOME");
            std::env::remove_var("XDG_DATA_HOME");
        }
        assert_eq!(cache_dir(), PathBuf::from("/home/u/.cache/spamlens"));
        assert_eq!(data_dir(), PathBuf::from("/home/u/.local/share/spamlens"));
        unsafe {
            std::env::set_var("XDG_DATA_HOME", "/x/data");
            std::env::set_var("XDG_CACHE_HOME", "relative/is/ignored");
        }
        assert_eq!(data_dir(), PathBuf::from("/x/data/spamlens"));
        assert_eq!(cache_dir(), PathBuf::from("/home/u/.cache/spamlens"));
        unsafe {
            std::env::set_var(DATA_ENV, "/opt/spamlens");
            std::env::set_var(CACHE_ENV, "/var/cache/spamlens");
        }
        assert_eq!(data_dir(), PathBuf::from("/opt/spamlens"));
        assert_eq!(cache_dir(), PathBuf::from("/var/cache/spamlens"));
        unsafe {
            for (name, value) in saved {
                match value {
                    Some(v) => std::env::set_var(name, v),
                    None => std::env::remove_var(name),
                }
            }
        }
    }
}
