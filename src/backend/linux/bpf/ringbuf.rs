//! The BPF ring buffer (`BPF_MAP_TYPE_RINGBUF`, kernel ≥ 5.8) and its memory-mapped reader.
//!
//! Layout, from the kernel's `kernel/bpf/ringbuf.c`: the first page of the map holds the
//! consumer position, which user space writes; the next page holds the producer position,
//! which the kernel writes; the data area follows and is mapped twice in a row, so a record
//! that wraps around the end reads as one contiguous slice. Each record starts with an 8-byte
//! header: a u32 length whose top bits mean "still being written" (BUSY) and "discarded by
//! the program" (DISCARD), and a u32 page offset used by the kernel only. Records are padded
//! to 8 bytes.
//!
//! The ring buffer itself never counts lost records: when it is full, `bpf_ringbuf_reserve`
//! returns NULL and `bpf_ringbuf_output` an error, and the program must count those failures
//! itself (dtk's programs add them to a per-CPU array that user space sums with
//! `Map::sum_u64`).
//!
//! The reader waits with epoll on the map fd rather than spinning; the kernel wakes it when a
//! record is submitted and the reader had caught up. Other fds can join the same wait
//! ([`RingBuf::wake_on`]: a target's pidfd), so that one blocking epoll_wait covers all the
//! reasons to wake.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::maps::{self, MapError, MapType};

const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;
const HEADER: usize = 8;

/// epoll tokens: the ring buffer, and the fds added with `RingBuf::wake_on`.
const RING_FD: u64 = 0;
const OTHER_FD: u64 = 1;

/// A ring buffer map and its reader.
#[derive(Debug)]
pub struct RingBuf {
    fd: OwnedFd,
    epoll: OwnedFd,
    /// The writable consumer page.
    consumer: *mut u8,
    /// The read-only producer page followed by the data area, mapped twice.
    producer: *mut u8,
    page: usize,
    size: usize,
    discarded: u64,
}

// SAFETY: the mappings are owned by this value alone (nothing else holds the pointers), and
// all access goes through `&mut self`, so moving the reader to another thread is sound.
unsafe impl Send for RingBuf {}

impl RingBuf {
    /// Creates a ring buffer of `size` bytes, a power of two and a multiple of the page size.
    pub fn create(size: u32, name: &str) -> Result<RingBuf, MapError> {
        let page = page_size();
        if !size.is_power_of_two() || (size as usize) % page != 0 {
            return Err(MapError::RingBufSize { size });
        }
        let fd = maps::create_fd(MapType::RingBuf, 0, 0, size, name)?;
        let epoll = epoll_for(&fd)?;
        let size = size as usize;
        let consumer = map(&fd, page, libc::PROT_READ | libc::PROT_WRITE, 0)?;
        let producer = match map(&fd, page + 2 * size, libc::PROT_READ, page) {
            Ok(p) => p,
            Err(e) => {
                unmap(consumer, page);
                return Err(e);
            }
        };
        let ring = RingBuf {
            epoll,
            fd,
            consumer,
            producer,
            page,
            size,
            discarded: 0,
        };
        Ok(ring)
    }

    /// The fd to put in a program with `Asm::ld_map_fd`.
    pub fn fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Data area size in bytes.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Records the program discarded (`bpf_ringbuf_discard`) that the reader skipped so far.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Waits up to `timeout` (forever if None) for records, then hands each available one to
    /// `on_record`. Returns how many were delivered; 0 on timeout or when a signal interrupted
    /// the wait, so that the caller can check for Ctrl-C.
    pub fn poll(
        &mut self,
        timeout: Option<Duration>,
        on_record: impl FnMut(&[u8]),
    ) -> Result<usize, MapError> {
        if !self.has_data() {
            self.wait(timeout)?;
        }
        Ok(self.consume(on_record))
    }

    /// Sleeps until the kernel wakes the reader (a record written without
    /// `BPF_RB_NO_WAKEUP`), an fd added with [`RingBuf::wake_on`] is readable, `timeout`
    /// passes, or a signal arrives, whether or not records are waiting. The wait on the ring
    /// buffer is edge-triggered: records written with `BPF_RB_NO_WAKEUP` do not end it, so a
    /// program can batch its records for a reader that reads at intervals. Returns whether an
    /// fd added with `wake_on` is readable.
    ///
    /// The timeout is rounded up to whole milliseconds: rounded down, the last fraction of a
    /// millisecond before a deadline would be spent in zero-timeout calls.
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool, MapError> {
        let ms = timeout.map_or(-1, |t| {
            t.as_nanos().div_ceil(1_000_000).min(i32::MAX as u128) as i32
        });
        let mut events = [libc::epoll_event { events: 0, u64: 0 }; 4];
        // SAFETY: `events` is a valid buffer for its length and the epoll fd is ours.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                ms,
            )
        };
        if n < 0 {
            let err = io::Error::last_os_error();
            if err.kind() != io::ErrorKind::Interrupted {
                return Err(MapError::Epoll(err));
            }
            return Ok(false);
        }
        Ok(events[..n as usize].iter().any(|e| e.u64 == OTHER_FD))
    }

    /// Makes [`RingBuf::wait`] also end while `fd` is readable (level-triggered). The fd must
    /// stay open as long as this ring buffer waits.
    pub fn wake_on(&self, fd: RawFd) -> Result<(), MapError> {
        epoll_add(&self.epoll, fd, libc::EPOLLIN as u32, OTHER_FD)
    }

    /// Hands every record available now to `on_record`, without waiting.
    pub fn consume(&mut self, on_record: impl FnMut(&[u8])) -> usize {
        self.consume_to(u64::MAX, usize::MAX, on_record)
    }

    /// Hands at most `max` of the records available now to `on_record`, without waiting.
    pub fn consume_some(&mut self, max: usize, on_record: impl FnMut(&[u8])) -> usize {
        self.consume_to(u64::MAX, max, on_record)
    }

    /// Whether records are waiting to be read.
    pub fn has_data(&self) -> bool {
        self.consumer_pos().load(Ordering::Relaxed) < self.producer_pos().load(Ordering::Acquire)
    }

    /// The producer position: where the next record will be reserved. Records before it were
    /// reserved already; see [`RingBuf::drain`].
    pub fn end(&self) -> u64 {
        self.producer_pos().load(Ordering::Acquire)
    }

    /// Hands on up to `max` of the records reserved before position `end` (from
    /// [`RingBuf::end`]) and none after it, waiting until `deadline` for those still being
    /// written. Once the programs are disarmed (`bpf::gate`), the records before `end` are
    /// all they recorded before the stop. Returns whether it got to `end`.
    pub fn drain(
        &mut self,
        end: u64,
        max: usize,
        deadline: Instant,
        mut on_record: impl FnMut(&[u8]),
    ) -> bool {
        let mut left = max;
        loop {
            left -= self.consume_to(end, left, &mut on_record);
            if self.consumer_pos().load(Ordering::Relaxed) >= end {
                return true;
            }
            if left == 0 || Instant::now() >= deadline {
                return false;
            }
            // A record still being written (BUSY) holds the ones after it back.
            std::thread::yield_now();
        }
    }

    /// Hands on, in order, at most `max` of the complete records before position `end`.
    fn consume_to(&mut self, end: u64, max: usize, mut on_record: impl FnMut(&[u8])) -> usize {
        let mut delivered = 0;
        let mut cons = self.consumer_pos().load(Ordering::Relaxed);
        while delivered < max {
            let prod = self.producer_pos().load(Ordering::Acquire).min(end);
            if cons >= prod {
                break;
            }
            let offset = (cons as usize) & (self.size - 1);
            let header = self.header(offset).load(Ordering::Acquire);
            if header & BUSY != 0 {
                break;
            }
            let len = (header & !(BUSY | DISCARD)) as usize;
            if header & DISCARD != 0 {
                self.discarded += 1;
            } else {
                on_record(self.record(offset, len));
                delivered += 1;
            }
            cons += (HEADER + len).next_multiple_of(8) as u64;
            // Release: the kernel may reuse the space only after the record was read.
            self.consumer_pos().store(cons, Ordering::Release);
        }
        delivered
    }

    fn consumer_pos(&self) -> &AtomicU64 {
        // SAFETY: the consumer page is mapped read-write for our lifetime and page-aligned;
        // the kernel reads this u64 concurrently, hence the atomic.
        unsafe { AtomicU64::from_ptr(self.consumer.cast()) }
    }

    fn producer_pos(&self) -> &AtomicU64 {
        // SAFETY: the producer page is mapped for our lifetime and page-aligned; the kernel
        // writes this u64 concurrently and we only read it atomically.
        unsafe { AtomicU64::from_ptr(self.producer.cast()) }
    }

    fn header(&self, offset: usize) -> &AtomicU32 {
        // SAFETY: offset < size and is 8-aligned (records are padded to 8), so the header lies
        // inside the first data mapping; the kernel flips its BUSY bit concurrently.
        unsafe { AtomicU32::from_ptr(self.producer.add(self.page + offset).cast()) }
    }

    fn record(&self, offset: usize, len: usize) -> &[u8] {
        // The kernel limits a record to less than the data size, so with the double mapping
        // the bytes after the header are contiguous; clamp anyway so a corrupt length cannot
        // read outside the mapping.
        let len = len.min(self.size - HEADER);
        // SAFETY: offset < size and len ≤ size − 8, so [page+offset+8, +len) lies within the
        // producer page + two copies of the data area that we mapped.
        unsafe { std::slice::from_raw_parts(self.producer.add(self.page + offset + HEADER), len) }
    }
}

impl Drop for RingBuf {
    fn drop(&mut self) {
        unmap(self.consumer, self.page);
        unmap(self.producer, self.page + 2 * self.size);
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if n > 0 {
        n as usize
    } else {
        4096
    }
}

fn map(fd: &OwnedFd, len: usize, prot: i32, offset: usize) -> Result<*mut u8, MapError> {
    // SAFETY: a fresh shared mapping of the map fd at a kernel-chosen address; it aliases no
    // Rust object, and the kernel validates len/offset against the map.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            prot,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            offset as libc::off_t,
        )
    };
    if ptr == libc::MAP_FAILED {
        return Err(MapError::Mmap(io::Error::last_os_error()));
    }
    Ok(ptr.cast())
}

fn unmap(ptr: *mut u8, len: usize) {
    // SAFETY: `ptr`/`len` are exactly a mapping created by `map` and not used afterwards.
    unsafe { libc::munmap(ptr.cast(), len) };
}

fn epoll_for(fd: &OwnedFd) -> Result<OwnedFd, MapError> {
    // SAFETY: epoll_create1 has no memory preconditions.
    let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if raw < 0 {
        return Err(MapError::Epoll(io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a fresh descriptor that nobody else owns.
    let epoll = unsafe { OwnedFd::from_raw_fd(raw) };
    // Edge-triggered: see `wait`.
    epoll_add(
        &epoll,
        fd.as_raw_fd(),
        (libc::EPOLLIN | libc::EPOLLET) as u32,
        RING_FD,
    )?;
    Ok(epoll)
}

fn epoll_add(epoll: &OwnedFd, fd: RawFd, events: u32, token: u64) -> Result<(), MapError> {
    let mut event = libc::epoll_event { events, u64: token };
    // SAFETY: `event` is a valid epoll_event; epoll_ctl checks that both fds are open.
    let ret = unsafe { libc::epoll_ctl(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, fd, &mut event) };
    if ret < 0 {
        return Err(MapError::Epoll(io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_that_are_not_pages_are_refused() {
        assert!(matches!(
            RingBuf::create(1000, "x"),
            Err(MapError::RingBufSize { size: 1000 })
        ));
        assert!(matches!(
            RingBuf::create(3 * 4096, "x"),
            Err(MapError::RingBufSize { .. })
        ));
    }
}
