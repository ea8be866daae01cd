//! Which Python frames pyflow shows: the user's own code by default, with the standard
//! library, installed packages and frozen or builtin modules hidden unless asked for.

use crate::config::FrameFilter;

impl FrameFilter {
    /// Whether a frame from `file`, called by a frame that is shown or not (None: by no
    /// Python frame), is shown. Code compiled from a string (`<string>`: `python -c`, exec;
    /// `<stdin>`) is the user's where the user's code runs it, or where nothing does: the
    /// program given to `python -c` is the user's, but the functions that the standard
    /// library makes with exec (dataclasses, namedtuple) stay hidden while the library runs them.
    pub fn shows_frame(&self, file: &str, caller: Option<bool>) -> bool {
        if self.default_rule(file) && is_compiled_string(file) {
            return caller != Some(false);
        }
        self.shows(file)
    }

    /// Whether only the default rule (library code hidden) decides for `file`.
    fn default_rule(&self, file: &str) -> bool {
        !self.all
            && self.include.is_empty()
            && !self.exclude.iter().any(|r| r.is_match(file))
            && !self.modules.iter().any(|m| in_module(file, m))
    }

    /// Whether a frame from `file` is shown, whoever called it.
    fn shows(&self, file: &str) -> bool {
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

/// Code compiled from a string: `python -c`, `exec(text)`, the interactive prompt.
fn is_compiled_string(file: &str) -> bool {
    file == "<string>" || file == "<stdin>"
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

    /// `python -c` code is the user's; what the standard library compiles and runs with exec
    /// is the library's.
    #[test]
    fn code_compiled_from_a_string_is_shown_where_the_user_runs_it() {
        let f = FrameFilter::default();
        assert!(f.shows_frame("<string>", None));
        assert!(f.shows_frame("<string>", Some(true)));
        assert!(!f.shows_frame("<string>", Some(false)));
        assert!(f.shows_frame("<stdin>", None));
        assert!(!f.shows_frame("<frozen importlib._bootstrap>", None));
        let excluded = FrameFilter {
            exclude: vec![regex::Regex::new("^<string>$").unwrap()],
            ..FrameFilter::default()
        };
        assert!(!excluded.shows_frame("<string>", None));
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
