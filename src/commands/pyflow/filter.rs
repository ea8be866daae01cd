//! Which Python frames pyflow shows: the user's own code by default, with the standard
//! library, installed packages and frozen or builtin modules hidden unless asked for.

use crate::config::FrameFilter;

impl FrameFilter {
    /// Whether a frame from `file` is shown.
    pub fn shows(&self, file: &str) -> bool {
        if self.exclude.iter().any(|r| r.is_match(file)) {
            return false;
        }
        if !self.include.is_empty() {
            return self.include.iter().any(|r| r.is_match(file));
        }
        if self.all || self.modules.iter().any(|m| in_module(file, m)) {
            return true;
        }
        !is_library(file)
    }
}

/// Frames of the standard library, installed packages, and frozen or builtin modules.
pub fn is_library(file: &str) -> bool {
    file.starts_with('<')
        || file.contains("/site-packages/")
        || file.contains("/dist-packages/")
        || is_stdlib(file)
}

/// `/usr/lib/python3.11/json/decoder.py`, `/root/.pyenv/versions/3.12.1/lib/python3.12/x.py`.
fn is_stdlib(file: &str) -> bool {
    file.split('/').collect::<Vec<_>>().windows(2).any(|w| {
        (w[0] == "lib" || w[0] == "lib64")
            && w[1]
                .strip_prefix("python")
                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// Whether `file` belongs to the package or module `name` (`requests`, `app.db`).
pub fn in_module(file: &str, name: &str) -> bool {
    let rel = name.replace('.', "/");
    file.contains(&format!("/{rel}/")) || file.ends_with(&format!("/{rel}.py"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_frames_are_recognised() {
        for lib in [
            "/usr/lib/python3.11/json/decoder.py",
            "/root/.pyenv/versions/3.12.1/lib/python3.12/os.py",
            "/usr/lib/python3/dist-packages/apt/cache.py",
            "/home/u/.venv/lib/python3.11/site-packages/requests/api.py",
            "<frozen importlib._bootstrap>",
        ] {
            assert!(is_library(lib), "{lib}");
        }
        for user in ["/home/u/app.py", "app/db.py", "/srv/python3/app.py"] {
            assert!(!is_library(user), "{user}");
        }
    }

    #[test]
    fn module_option_follows_a_package() {
        let f = FrameFilter {
            modules: vec!["requests".into()],
            ..FrameFilter::default()
        };
        assert!(f.shows("/x/site-packages/requests/api.py"));
        assert!(!f.shows("/x/site-packages/urllib3/poolmanager.py"));
    }
}
