//! D's string subroutines, with the semantics of DTrace's implementation: substr's negative
//! positions, index/rindex's Perl-like positions, basename and dirname of "" and "/",
//! lltostr's prefixes for bases 8 and 16. Strings are byte strings of at most strsize
//! bytes; results longer than that are cut by the caller.

/// `substr(s, index[, length])`.
pub fn substr(bytes: &[u8], index: i64, length: Option<i64>, strsize: usize) -> &[u8] {
    let len = bytes.len() as i64;
    let size = strsize as i64;
    let mut index = index;
    let mut remaining = length.unwrap_or(size);
    if index < 0 {
        index += len;
        if index < 0 && index + remaining > 0 {
            remaining += index;
            index = 0;
        }
    }
    if index >= len || index < 0 {
        remaining = 0;
    } else if remaining < 0 {
        remaining += len - index;
    } else if index.saturating_add(remaining) > size {
        remaining = size - index;
    }
    let start = index.clamp(0, len) as usize;
    let end = (index.saturating_add(remaining.max(0))).clamp(0, len) as usize;
    &bytes[start..end.max(start)]
}

/// `strstr(s, sub)`: `s` from the first occurrence of `sub`, or None (NULL) when there is
/// none.
pub fn strstr<'s>(s: &'s [u8], sub: &[u8]) -> Option<&'s [u8]> {
    (0..=s.len())
        .find(|&at| s[at..].starts_with(sub))
        .map(|at| &s[at..])
}

/// `strchr(s, c)` / `strrchr(s, c)`: `s` from the first / last `c`, or None (NULL).
pub fn strchr(s: &[u8], c: u8, last: bool) -> Option<&[u8]> {
    let at = if last {
        s.iter().rposition(|&b| b == c)
    } else {
        s.iter().position(|&b| b == c)
    };
    at.map(|at| &s[at..])
}

/// One step of `strtok`: skips leading delimiters of `s`, and returns the token there, if
/// any, and where the next call resumes: at the delimiter that ends the token, which the
/// next call skips only if it is one of that call's delimiters (as in DTrace).
pub fn strtok<'s>(s: &'s [u8], delims: &[u8]) -> (Option<&'s [u8]>, &'s [u8]) {
    let start = s.iter().position(|b| !delims.contains(b));
    let Some(start) = start else {
        return (None, &s[s.len()..]);
    };
    let rest = &s[start..];
    match rest.iter().position(|b| delims.contains(b)) {
        Some(end) => (Some(&rest[..end]), &rest[end..]),
        None => (Some(rest), &rest[rest.len()..]),
    }
}

/// `cleanpath(path)`: the path without `.` components, repeated slashes, a trailing slash,
/// or `..` components that follow a name (a `..` at the root stays at the root).
pub fn cleanpath(path: &[u8]) -> Vec<u8> {
    if path.is_empty() {
        return Vec::new();
    }
    let rooted = path[0] == b'/';
    let mut parts: Vec<&[u8]> = Vec::new();
    for part in path.split(|&b| b == b'/') {
        match part {
            b"" | b"." => {}
            b".." if parts.last().is_some_and(|p| *p != b"..") => {
                parts.pop();
            }
            b".." if rooted => {}
            _ => parts.push(part),
        }
    }
    let joined = parts.join(&b'/');
    match (rooted, joined.is_empty()) {
        (true, _) => [&b"/"[..], &joined].concat(),
        (false, true) => b".".to_vec(),
        (false, false) => joined,
    }
}

/// `index(s, sub[, start])`.
pub fn index(hay: &[u8], needle: &[u8], start: Option<i64>) -> i64 {
    let len = hay.len() as i64;
    if hay.is_empty() && needle.is_empty() {
        return 0;
    }
    let mut from = 0;
    if let Some(pos) = start {
        from = pos.max(0);
        if from >= len {
            return if needle.is_empty() { len } else { -1 };
        }
    }
    (from..len)
        .find(|&i| hay[i as usize..].starts_with(needle))
        .unwrap_or(-1)
}

/// `rindex(s, sub[, start])`.
pub fn rindex(hay: &[u8], needle: &[u8], start: Option<i64>) -> i64 {
    let len = hay.len() as i64;
    if hay.is_empty() && needle.is_empty() {
        return 0;
    }
    let mut from = len;
    if let Some(pos) = start {
        if pos < 0 {
            return if needle.is_empty() { 0 } else { -1 };
        }
        from = pos.min(len);
    }
    // DTrace compares at each position from `from` down, with strncmp, which stops at the
    // end of the string: at position len only the empty string matches.
    (0..=from)
        .rev()
        .find(|&i| hay[i as usize..].starts_with(needle))
        .unwrap_or(-1)
}

/// Where the last component of a path starts and ends, and where its directory ends, as
/// DTrace's basename/dirname find them (an all-slash path is "/", "" is ".").
fn split_path(path: &[u8]) -> (&[u8], &[u8]) {
    let b = if path.is_empty() { &b"."[..] } else { path };
    let Some(last_base) = b.iter().rposition(|&c| c != b'/') else {
        return (b"/", b"/");
    };
    let first_base = b[..last_base]
        .iter()
        .rposition(|&c| c == b'/')
        .map(|i| i + 1);
    let base = &b[first_base.unwrap_or(0)..=last_base];
    let dir = match first_base {
        None => b".",
        Some(fb) => match b[..fb].iter().rposition(|&c| c != b'/') {
            Some(last_dir) => &b[..=last_dir],
            None => b"/",
        },
    };
    (base, dir)
}

pub fn basename(path: &[u8]) -> &[u8] {
    split_path(path).0
}

pub fn dirname(path: &[u8]) -> &[u8] {
    split_path(path).1
}

/// Why a base is not usable by `lltostr`.
#[derive(Debug, PartialEq, Eq)]
pub struct BadBase;

/// `lltostr(value[, base])`: base 10 is signed; other bases print the 64-bit pattern, with
/// "0" before octal and "0x" before hexadecimal digits.
pub fn lltostr(value: i64, base: Option<i64>) -> Result<String, BadBase> {
    let base = base.unwrap_or(10);
    if !(2..=36).contains(&base) {
        return Err(BadBase);
    }
    let mut magnitude = if base == 10 {
        value.unsigned_abs()
    } else {
        value as u64
    };
    let mut digits = Vec::new();
    while magnitude != 0 {
        let d = (magnitude % base as u64) as u32;
        digits.push(char::from_digit(d, 36).unwrap_or('?'));
        magnitude /= base as u64;
    }
    if value == 0 && base == 16 {
        digits.push('0');
    }
    if base == 16 {
        digits.push('x');
    }
    if value == 0 || base == 8 || base == 16 {
        digits.push('0');
    }
    if value < 0 && base == 10 {
        digits.push('-');
    }
    Ok(digits.iter().rev().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substr_follows_dtrace() {
        let s = b"coconut";
        assert_eq!(substr(s, 0, None, 256), b"coconut");
        assert_eq!(substr(s, 2, None, 256), b"conut");
        assert_eq!(substr(s, 2, Some(3), 256), b"con");
        assert_eq!(substr(s, -3, None, 256), b"nut");
        assert_eq!(substr(s, -3, Some(2), 256), b"nu");
        assert_eq!(substr(s, -10, Some(5), 256), b"co");
        assert_eq!(substr(s, -10, Some(2), 256), b"");
        assert_eq!(substr(s, 7, None, 256), b"");
        assert_eq!(substr(s, 1, Some(-2), 256), b"ocon");
        assert_eq!(substr(s, 3, Some(100), 256), b"onut");
        assert_eq!(substr(b"", 0, None, 256), b"");
        assert_eq!(
            substr(b"\xff\xfe\x00", 1, Some(1), 256),
            b"\xfe",
            "bytes, not UTF-8"
        );
    }

    #[test]
    fn index_and_rindex_follow_dtrace() {
        let s = &b"hello world, hello"[..];
        assert_eq!(index(s, b"hello", None), 0);
        assert_eq!(index(s, b"hello", Some(1)), 13);
        assert_eq!(index(s, b"hello", Some(-5)), 0);
        assert_eq!(index(s, b"xyz", None), -1);
        assert_eq!(index(s, b"", Some(100)), s.len() as i64);
        assert_eq!(index(s, b"o", Some(100)), -1);
        assert_eq!(rindex(s, b"hello", None), 13);
        assert_eq!(rindex(s, b"hello", Some(12)), 0);
        assert_eq!(rindex(s, b"hello", Some(-1)), -1);
        assert_eq!(rindex(s, b"", Some(-1)), 0);
        assert_eq!(rindex(s, b"", None), s.len() as i64);
        assert_eq!(index(b"", b"", Some(5)), 0);
        assert_eq!(strstr(s, b"world"), Some(&b"world, hello"[..]));
        assert_eq!(strstr(s, b"nope"), None);
    }

    #[test]
    fn strchr_strrchr_and_strtok_follow_dtrace() {
        let s = &b"fooeyfooeyfoo"[..];
        assert_eq!(strchr(s, b'y', false), Some(&b"yfooeyfoo"[..]));
        assert_eq!(strchr(s, b'y', true), Some(&b"yfoo"[..]));
        assert_eq!(strchr(s, b'a', false), None);
        let mut rest = &b",,,Carrots,,Barley,Oatmeal,,,Beans,"[..];
        let mut tokens = Vec::new();
        while let (Some(token), next) = strtok(rest, b",") {
            tokens.push(token);
            rest = next;
        }
        assert_eq!(tokens, [&b"Carrots"[..], b"Barley", b"Oatmeal", b"Beans"]);
        assert_eq!(strtok(b"a b", b""), (Some(&b"a b"[..]), &b""[..]));
        assert_eq!(strtok(b"xyAbc", b"A"), (Some(&b"xy"[..]), &b"Abc"[..]));
        assert_eq!(strtok(b"", b","), (None, &b""[..]));
    }

    #[test]
    fn cleanpath_follows_dtrace() {
        let cases = [
            ("/foo/bar///baz/", "/foo/bar/baz"),
            ("/foo/bar/../../baz/.//", "/baz"),
            ("/../../", "/"),
            ("./", "."),
            ("", ""),
            ("../..", "../.."),
            ("a/..", "."),
            ("z/a/b/../../././c///d/e", "z/c/d/e"),
            ("/a/..", "/"),
        ];
        for (path, clean) in cases {
            assert_eq!(cleanpath(path.as_bytes()), clean.as_bytes(), "{path:?}");
        }
    }

    #[test]
    fn basename_and_dirname_edges() {
        let cases = [
            ("/usr/lib/libc.so", "libc.so", "/usr/lib"),
            ("/usr/lib/", "lib", "/usr"),
            ("usr", "usr", "."),
            ("/", "/", "/"),
            ("///", "/", "/"),
            ("", ".", "."),
            ("/a", "a", "/"),
            ("//a//b//", "b", "//a"),
            ("a/b", "b", "a"),
        ];
        for (path, base, dir) in cases {
            assert_eq!(
                basename(path.as_bytes()),
                base.as_bytes(),
                "basename({path:?})"
            );
            assert_eq!(
                dirname(path.as_bytes()),
                dir.as_bytes(),
                "dirname({path:?})"
            );
        }
    }

    #[test]
    fn lltostr_bases() {
        assert_eq!(lltostr(0, None).unwrap(), "0");
        assert_eq!(lltostr(-42, None).unwrap(), "-42");
        assert_eq!(lltostr(i64::MIN, None).unwrap(), "-9223372036854775808");
        assert_eq!(lltostr(255, Some(16)).unwrap(), "0xff");
        assert_eq!(lltostr(0, Some(16)).unwrap(), "0x0");
        assert_eq!(lltostr(8, Some(8)).unwrap(), "010");
        assert_eq!(lltostr(5, Some(2)).unwrap(), "101");
        assert_eq!(lltostr(-1, Some(16)).unwrap(), "0xffffffffffffffff");
        assert_eq!(lltostr(1, Some(1)), Err(BadBase));
    }
}
