//! An in-memory C stream (open_memstream) that libdtrace formats printf() output into.
//!
//! Oracle's buffered handler does not see per-probe printf output when dtrace_work gets a
//! NULL stream, so the consumer passes this stream instead and takes the text that each
//! printf action added, right after libdtrace has written it.

use std::ffi::c_char;
use std::io;
use std::slice;

use super::ffi;

/// The buffer pointer and size that glibc updates on every flush; boxed so that their
/// addresses, given to open_memstream, stay put.
struct Location {
    buf: *mut c_char,
    size: usize,
}

pub struct MemStream {
    fp: *mut libc::FILE,
    location: Box<Location>,
}

impl MemStream {
    pub fn open() -> io::Result<MemStream> {
        let mut location = Box::new(Location {
            buf: std::ptr::null_mut(),
            size: 0,
        });
        // SAFETY: both out-pointers point into the box, which lives as long as the stream.
        let fp = unsafe { libc::open_memstream(&mut location.buf, &mut location.size) };
        if fp.is_null() {
            return Err(io::Error::last_os_error());
        }
        Ok(MemStream { fp, location })
    }

    /// The stream, as libdtrace's bindings type it.
    pub fn file(&self) -> *mut ffi::FILE {
        self.fp.cast()
    }

    /// Takes the bytes written since the last call, and starts the buffer over.
    pub fn take(&mut self) -> Vec<u8> {
        // SAFETY: fp is open; after fflush, buf holds `size` bytes (glibc's contract).
        unsafe {
            libc::fflush(self.fp);
            if self.location.buf.is_null() || self.location.size == 0 {
                return Vec::new();
            }
            let bytes = slice::from_raw_parts(self.location.buf.cast::<u8>(), self.location.size);
            let text = bytes.to_vec();
            libc::fseeko(self.fp, 0, libc::SEEK_SET);
            text
        }
    }
}

impl Drop for MemStream {
    fn drop(&mut self) {
        // SAFETY: fp is open and closed once; after fclose the buffer is ours to free.
        unsafe {
            libc::fclose(self.fp);
            libc::free(self.location.buf.cast());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_returns_each_write_once() {
        let mut stream = MemStream::open().unwrap();
        // SAFETY: the stream is open and the format takes no arguments.
        unsafe { libc::fputs(c"hello\n".as_ptr(), stream.fp) };
        assert_eq!(stream.take(), b"hello\n");
        assert_eq!(stream.take(), b"");
        // SAFETY: as above.
        unsafe { libc::fputs(c"x".as_ptr(), stream.fp) };
        assert_eq!(stream.take(), b"x");
    }
}
