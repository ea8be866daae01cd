//! D's probe-description globs: `*` (any run), `?` (any one character) and `[...]` (a set,
//! with ranges `a-z` and negation `!` or `^`), matched against a whole probe-name part. An
//! empty pattern matches everything, as an empty part of a description does in D.

/// Whether `pattern` has glob characters (otherwise it names one thing exactly).
pub fn is_glob(pattern: &str) -> bool {
    pattern.contains(['*', '?', '['])
}

/// Whether `text` matches `pattern` entirely.
pub fn matches(pattern: &str, text: &str) -> bool {
    if pattern.is_empty() {
        return true;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    match_from(&p, &t)
}

/// Backtracking match; the backtracking is bounded by remembering the last `*` only, which
/// is enough because a later `*` subsumes what an earlier one could still absorb.
fn match_from(p: &[char], t: &[char]) -> bool {
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
            continue;
        }
        if let Some(width) = (pi < p.len()).then(|| one(&p[pi..], t[ti])).flatten() {
            pi += width;
            ti += 1;
            continue;
        }
        match star {
            Some((sp, st)) => {
                pi = sp + 1;
                ti = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// If the pattern element at the start of `p` matches `c`, how many pattern characters it
/// spans.
fn one(p: &[char], c: char) -> Option<usize> {
    match p[0] {
        '?' => Some(1),
        '[' => set(p, c),
        '*' => None,
        literal => (literal == c).then_some(1),
    }
}

/// `[...]` at the start of `p`: Some(width) when it matches `c`. An unclosed `[` is a literal.
fn set(p: &[char], c: char) -> Option<usize> {
    let Some(close) = p.iter().skip(2).position(|&x| x == ']').map(|i| i + 2) else {
        return (c == '[').then_some(1);
    };
    let body = &p[1..close];
    let (negated, body) = match body.first() {
        Some('!' | '^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut found = false;
    let mut i = 0;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == '-' {
            found |= body[i] <= c && c <= body[i + 2];
            i += 3;
        } else {
            found |= body[i] == c;
            i += 1;
        }
    }
    (found != negated).then_some(close + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_questions_and_sets() {
        assert!(matches("open*", "openat"));
        assert!(matches("open*", "open"));
        assert!(!matches("open*", "xopen"));
        assert!(matches("*at", "openat"));
        assert!(matches("*en*", "openat"));
        assert!(matches("re?d", "read"));
        assert!(!matches("re?d", "reed2"));
        assert!(matches("[rw]*", "write"));
        assert!(!matches("[!rw]*", "write"));
        assert!(matches("sys_[a-c]*", "sys_brk"));
        assert!(matches("a*b*c", "aXbYbZc"));
        assert!(!matches("a*b*c", "aXbYbZ"));
        assert!(matches("[", "["));
        assert!(matches("", "anything"));
        assert!(!matches("exact", "exactly"));
    }

    #[test]
    fn glob_characters_are_recognised() {
        assert!(is_glob("python*"));
        assert!(is_glob("a?c"));
        assert!(is_glob("[ab]"));
        assert!(!is_glob("python123"));
    }
}
